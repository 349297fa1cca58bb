"""binrec.checkpoint: signed checkpoints with either algorithm (HMAC-SHA256, keyed BLAKE3).

Oracles: the ``blake3`` package (keyed and derive-key modes over the bytes
of the file, as docs/checkpoint-format.md lays them out), :mod:`struct` and
:mod:`json` for the prefix and header, :mod:`hmac` for the key id, numpy
for the arrays.  The missing-package path blocks the import
(``sys.modules["blake3"] = None``).
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np
import pytest

from binrec import signing
from binrec.checkpoint import CheckpointCorrupted, CheckpointStore
from binrec.signing import BadSignature, UnsupportedAlgorithm

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
LONG_KEY = bytes(range(40))
DERIVE_CONTEXT = "binrec 2026-11-28 signing subkey v1"  # docs/envelope-format.md
STATE = {"w": np.arange(1000, dtype=np.float64), "i": np.arange(10, dtype=np.int64).reshape(2, 5), "step": 3}


@pytest.fixture
def b3():
    return pytest.importorskip("blake3")


def _header(raw: bytes) -> tuple[int, dict]:
    magic, fmt, flags, hlen = struct.unpack_from("<8sIIQ", raw)
    return flags, json.loads(raw[24 : 24 + hlen])


def _same_state(got) -> None:
    assert got["step"] == 3
    np.testing.assert_array_equal(got["w"], STATE["w"])
    np.testing.assert_array_equal(got["i"], STATE["i"])


def test_blake3_footer_digests_are_keyed_blake3_under_the_derived_subkey(tmp_path, b3):
    store = CheckpointStore(tmp_path, key=KEY, alg="blake3")
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    flags, header = _header(raw)
    assert flags & 1 and header["digest"] == "blake3" and header["key_id"] == signing.key_id(KEY).hex()
    sub = b3.blake3(KEY + b"binrec.checkpoint", derive_key_context=DERIVE_CONTEXT).digest()
    fo = header["footer_offset"]
    sk_end = header["skeleton"]["offset"] + header["skeleton"]["length"]
    assert raw[fo + 8 : fo + 40] == b3.blake3(raw[:sk_end], key=sub).digest()
    assert raw[fo + 40 : fo + 72] == b3.blake3(raw[:fo], key=sub).digest()


@pytest.mark.parametrize("use_mmap", [False, True])
def test_blake3_checkpoint_round_trips(tmp_path, b3, use_mmap):
    store = CheckpointStore(tmp_path, key=KEY, alg="blake3")
    store.save("c", STATE)
    _same_state(store.load("c", mmap=use_mmap))
    assert store.verify("c").digest == "blake3"


def test_info_reports_the_digest_algorithm(tmp_path, b3):
    CheckpointStore(tmp_path / "a").save("c", STATE)
    CheckpointStore(tmp_path / "b", key=KEY).save("c", STATE)
    CheckpointStore(tmp_path / "d", key=KEY, alg="blake3").save("c", STATE)
    got = [CheckpointStore(tmp_path / d, key=KEY if d != "a" else None).info("c").digest for d in "abd"]
    assert got == ["sha256", "hmac-sha256", "blake3"]


def test_a_store_reads_each_file_by_its_own_algorithm(tmp_path, b3):
    CheckpointStore(tmp_path, key=KEY, alg="blake3").save("fast", STATE)
    CheckpointStore(tmp_path, key=OTHER).save("std", STATE)
    reader = CheckpointStore(tmp_path, key=[OTHER, KEY])  # default alg: only saves use it
    _same_state(reader.load("fast"))
    _same_state(reader.load("std"))


def test_a_changed_array_byte_in_a_blake3_checkpoint_is_caught(tmp_path, b3):
    store = CheckpointStore(tmp_path, key=KEY, alg="blake3")
    store.save("c", STATE)
    _, header = _header(store.path("c").read_bytes())
    data = bytearray(store.path("c").read_bytes())
    data[header["buffers"][0]["offset"] + 5] ^= 1
    store.path("c").write_bytes(data)
    with pytest.raises(CheckpointCorrupted, match="checksum mismatch in buffer 0"):
        store.verify("c")


def test_a_blake3_checkpoint_under_the_wrong_key_is_bad_signature(tmp_path, b3):
    CheckpointStore(tmp_path, key=KEY, alg="blake3").save("c", STATE)
    with pytest.raises(BadSignature, match="not among the store's keys"):
        CheckpointStore(tmp_path, key=OTHER).load("c")


@pytest.mark.parametrize(("key", "old", "new"), [(KEY, b'"blake3"', b'"blake4"'), (None, b'"sha256"', b'"sha257"')])
def test_an_unknown_digest_algorithm_is_refused(tmp_path, b3, key, old, new):
    alg = "blake3" if key else "hmac-sha256"
    store = CheckpointStore(tmp_path, key=key, alg=alg)
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    assert raw.count(old) == 1
    store.path("c").write_bytes(raw.replace(old, new))
    with pytest.raises(CheckpointCorrupted, match=f"unknown digest algorithm {new.decode()[1:-1]!r}"):
        store.load("c")


def test_a_signed_flag_with_an_unsigned_digest_name_is_refused(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("c", STATE)
    data = bytearray(store.path("c").read_bytes())
    data[12] |= 1  # the signed flag, header still says sha256
    store.path("c").write_bytes(data)
    with pytest.raises(CheckpointCorrupted, match="unknown digest algorithm 'sha256' for a signed checkpoint"):
        CheckpointStore(tmp_path, key=KEY).load("c")


def test_loading_a_blake3_checkpoint_without_the_package_is_unsupported_algorithm(tmp_path, b3, monkeypatch):
    store = CheckpointStore(tmp_path, key=KEY, alg="blake3")
    store.save("c", STATE)
    monkeypatch.setitem(sys.modules, "blake3", None)
    reader = CheckpointStore(tmp_path, key=KEY)
    for call in (reader.load, reader.verify):
        with pytest.raises(UnsupportedAlgorithm, match=r'needs the blake3 package: pip install "binrec\[fast\]"'):
            call("c")
    assert [i.digest for i in reader.list()] == ["blake3"]  # the header alone needs no package


def test_a_blake3_store_without_the_package_is_refused_when_made(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "blake3", None)
    with pytest.raises(UnsupportedAlgorithm, match=r"binrec\[fast\]"):
        CheckpointStore(tmp_path / "s", key=KEY, alg="blake3")
    assert not (tmp_path / "s").exists()


def test_hmac_checkpoints_need_no_blake3(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "blake3", None)
    store = CheckpointStore(tmp_path, key=KEY)
    store.save("c", STATE)
    _same_state(store.load("c"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": LONG_KEY, "alg": "blake3"}, "key of 40 bytes refused: alg='blake3' takes keys of exactly 32 bytes"),
        ({"alg": "blake3"}, "alg='blake3' chooses the signature algorithm: give key= too"),
        ({"key": KEY, "alg": "sha1"}, "alg='sha1' is not a signature algorithm"),
    ],
    ids=["long-key", "no-key", "unknown"],
)
def test_bad_alg_options_are_value_errors_naming_the_option(tmp_path, b3, kwargs, message):
    with pytest.raises(ValueError, match=message):
        CheckpointStore(tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_blake3_verifier_keys_of_any_length_are_accepted_after_the_signer(tmp_path, b3):
    # only the first (signing) key must suit BLAKE3; the others verify older files
    CheckpointStore(tmp_path, key=LONG_KEY).save("old", STATE)
    store = CheckpointStore(tmp_path, key=[KEY, LONG_KEY], alg="blake3")
    _same_state(store.load("old"))
