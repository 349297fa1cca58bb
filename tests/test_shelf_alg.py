"""binrec.shelf: signed shelves with either algorithm (HMAC-SHA256, keyed BLAKE3).

Oracles: :mod:`sqlite3` to read the rows as stored, the ``blake3`` package
and :mod:`hmac` to recompute each row's tag from the documented envelope
layout, plain :mod:`pickle` for the payload.  The missing-package path
blocks the import (``sys.modules["blake3"] = None``).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import sqlite3
import struct
import sys

import pytest

from binrec import shelf
from binrec.signing import UnsupportedAlgorithm

KEY = bytes(range(32))
LONG_KEY = bytes(range(40))
DERIVE_CONTEXT = "binrec 2026-11-28 signing subkey v1"  # docs/envelope-format.md


@pytest.fixture
def b3():
    return pytest.importorskip("blake3")


def _row(path, key: str) -> bytes:
    con = sqlite3.connect(path)
    try:
        return bytes(con.execute("SELECT value FROM binrec_shelf WHERE key = ?", (key,)).fetchone()[0])
    finally:
        con.close()


def test_blake3_rows_are_blake3_envelopes_bound_to_their_key(tmp_path, b3):
    path = tmp_path / "s.db"
    with shelf.open(path, key=KEY, alg="blake3") as db:
        db["alice"] = {"age": 30}
    row = _row(path, "alice")
    assert row[5] == 2
    context = b"binrec.shelf\x00alice"
    (clen,) = struct.unpack_from("<H", row, 14)
    assert row[16 : 16 + clen] == context
    sub = b3.blake3(KEY + context, derive_key_context=DERIVE_CONTEXT).digest()
    assert row[-32:] == b3.blake3(row[:-32], key=sub).digest()
    assert pickle.loads(row[16 + clen + 16 : -32]) == {"age": 30}


def test_default_rows_stay_hmac_sha256(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path, key=KEY) as db:
        db["k"] = 1
    row = _row(path, "k")
    sub = hmac.new(KEY, b"binrec.signing.v1\x00binrec.shelf\x00k", hashlib.sha256).digest()
    assert row[5] == 1 and row[-32:] == hmac.new(sub, row[:-32], hashlib.sha256).digest()


def test_rows_of_both_algorithms_read_back_in_one_shelf(tmp_path, b3):
    path = tmp_path / "s.db"
    with shelf.open(path, key=KEY) as db:
        db["old"] = "hmac"
    with shelf.open(path, key=KEY, alg="blake3") as db:
        db["new"] = "blake3"
    with shelf.open(path, "r", key=KEY) as db:
        assert dict(db) == {"new": "blake3", "old": "hmac"}
    assert (_row(path, "old")[5], _row(path, "new")[5]) == (1, 2)


def test_a_blake3_row_read_without_the_package_is_unsupported_algorithm(tmp_path, b3, monkeypatch):
    path = tmp_path / "s.db"
    with shelf.open(path, key=KEY, alg="blake3") as db:
        db["k"] = 1
    monkeypatch.setitem(sys.modules, "blake3", None)
    with shelf.open(path, "r", key=KEY) as db:
        with pytest.raises(UnsupportedAlgorithm, match=r'needs the blake3 package: pip install "binrec\[fast\]"'):
            db["k"]


def test_opening_a_blake3_shelf_without_the_package_is_unsupported_algorithm(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "blake3", None)
    with pytest.raises(UnsupportedAlgorithm, match=r"binrec\[fast\]"):
        shelf.open(tmp_path / "s.db", key=KEY, alg="blake3")
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": LONG_KEY, "alg": "blake3"}, "key of 40 bytes refused: alg='blake3' takes keys of exactly 32 bytes"),
        ({"alg": "blake3"}, "alg='blake3' chooses the signature algorithm: give key= too"),
        ({"key": KEY, "alg": "crc32"}, "alg='crc32' is not a signature algorithm"),
    ],
    ids=["long-key", "no-key", "unknown"],
)
def test_bad_alg_options_are_value_errors_naming_the_option(tmp_path, b3, kwargs, message):
    with pytest.raises(ValueError, match=message):
        shelf.open(tmp_path / "s.db", **kwargs)
    assert not (tmp_path / "s.db").exists()
