"""binrec.checkpoint: the checksum= option (zlib CRC32 + SHA-256 default, XXH3).

Oracles: :mod:`zlib`, :mod:`hashlib` and the ``xxhash`` package over the
file's sections as docs/checkpoint-format.md lays them out (:mod:`struct`
and :mod:`json` to find them), :mod:`hmac` for signed footers, numpy for
the arrays.  The missing-package path blocks the import
(``sys.modules["xxhash"] = None``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import sys
import zlib

import numpy as np
import pytest

from binrec.checkpoint import CheckpointCorrupted, CheckpointStore
from binrec.signing import UnsupportedAlgorithm

KEY = bytes(range(32))
STATE = {"w": np.arange(1000, dtype=np.float64), "i": np.arange(10, dtype=np.int64).reshape(2, 5), "step": 3}


@pytest.fixture
def xxh():
    return pytest.importorskip("xxhash")


def _parse(raw: bytes) -> dict:
    _, _, _, hlen = struct.unpack_from("<8sIIQ", raw)
    return json.loads(raw[24 : 24 + hlen])


def _sections(raw: bytes, header: dict) -> list[tuple[dict, bytes]]:
    return [(s, raw[s["offset"] : s["offset"] + s["length"]]) for s in [header["skeleton"], *header["buffers"]]]


def _same_state(got) -> None:
    assert got["step"] == 3
    np.testing.assert_array_equal(got["w"], STATE["w"])
    np.testing.assert_array_equal(got["i"], STATE["i"])


def test_xxh3_sections_and_unsigned_footer_follow_the_documented_layout(tmp_path, xxh):
    store = CheckpointStore(tmp_path, checksum="xxh3")
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    header = _parse(raw)
    assert header["checksum"] == "xxh3" and header["digest"] == "xxh3-128"
    for section, data in _sections(raw, header):
        assert section["xxh3"] == xxh.xxh3_64_intdigest(data) and "crc32" not in section
    fo = header["footer_offset"]
    sk_end = header["skeleton"]["offset"] + header["skeleton"]["length"]
    assert raw[fo + 8 : fo + 40] == xxh.xxh3_128_digest(raw[:sk_end]) + bytes(16)
    assert raw[fo + 40 : fo + 72] == xxh.xxh3_128_digest(raw[:fo]) + bytes(16)


def test_default_files_keep_the_crc32_layout(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    header = _parse(raw)
    assert "checksum" not in header and header["digest"] == "sha256"
    for section, data in _sections(raw, header):
        assert section["crc32"] == zlib.crc32(data)
    fo = header["footer_offset"]
    assert raw[fo + 40 : fo + 72] == hashlib.sha256(raw[:fo]).digest()


@pytest.mark.parametrize("use_mmap", [False, True])
def test_xxh3_checkpoint_round_trips(tmp_path, xxh, use_mmap):
    store = CheckpointStore(tmp_path, checksum="xxh3")
    store.save("c", STATE)
    _same_state(CheckpointStore(tmp_path).load("c", mmap=use_mmap))  # any store reads it
    assert store.verify("c").checksum == "xxh3"


@pytest.mark.parametrize("checksum", ["crc32", "xxh3"])
def test_an_array_longer_than_one_read_piece_is_checked_whole(tmp_path, checksum):
    # 9 MiB: the load pipeline checksums it in two pieces (8 MiB + 1 MiB), in order
    if checksum == "xxh3":
        pytest.importorskip("xxhash")
    big = np.random.default_rng(5).integers(0, 256, 9 << 20, dtype=np.uint8)
    store = CheckpointStore(tmp_path, checksum=checksum)
    store.save("c", {"big": big})
    np.testing.assert_array_equal(store.load("c")["big"], big)
    data = bytearray(store.path("c").read_bytes())
    data[_parse(bytes(data))["buffers"][0]["offset"] + (9 << 20) - 1] ^= 1  # the last byte, in the second piece
    store.path("c").write_bytes(data)
    with pytest.raises(CheckpointCorrupted, match="checksum mismatch in buffer 0"):
        store.load("c")


def test_save_checksum_overrides_the_store(tmp_path, xxh):
    store = CheckpointStore(tmp_path, checksum="xxh3")
    assert store.save("a", STATE, checksum="crc32").checksum == "crc32"
    assert "checksum" not in _parse(store.path("a").read_bytes())
    assert CheckpointStore(tmp_path).save("b", STATE, checksum="xxh3").checksum == "xxh3"
    assert [i.checksum for i in store.list()] == ["crc32", "xxh3"]


@pytest.mark.parametrize("check", ["load", "verify"])
def test_a_flipped_array_byte_in_an_xxh3_checkpoint_is_caught(tmp_path, xxh, check):
    store = CheckpointStore(tmp_path, checksum="xxh3")
    store.save("c", STATE)
    data = bytearray(store.path("c").read_bytes())
    data[_parse(bytes(data))["buffers"][0]["offset"] + 3] ^= 0x10
    store.path("c").write_bytes(data)
    with pytest.raises(CheckpointCorrupted, match="checksum mismatch in buffer 0"):
        getattr(store, check)("c")


def test_verify_catches_a_flipped_padding_byte_with_the_xxh3_file_digest(tmp_path, xxh):
    store = CheckpointStore(tmp_path, checksum="xxh3")
    store.save("c", STATE)
    data = bytearray(store.path("c").read_bytes())
    fo = _parse(bytes(data))["footer_offset"]
    assert data[fo - 1] == 0  # padding before the footer (the last buffer is 80 bytes)
    data[fo - 1] = 1
    store.path("c").write_bytes(data)
    with pytest.raises(CheckpointCorrupted, match="whole-file"):
        store.verify("c")


def test_signed_xxh3_checkpoint_has_xxh3_sections_and_an_hmac_footer(tmp_path, xxh):
    store = CheckpointStore(tmp_path, key=KEY, checksum="xxh3")
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    header = _parse(raw)
    assert header["digest"] == "hmac-sha256" and header["checksum"] == "xxh3"
    sub = hmac.new(KEY, b"binrec.signing.v1\x00binrec.checkpoint", hashlib.sha256).digest()
    fo = header["footer_offset"]
    assert raw[fo + 40 : fo + 72] == hmac.new(sub, raw[:fo], hashlib.sha256).digest()
    _same_state(store.load("c"))


def test_loading_an_xxh3_checkpoint_without_the_package_is_unsupported_algorithm(tmp_path, xxh, monkeypatch):
    CheckpointStore(tmp_path, checksum="xxh3").save("c", STATE)
    monkeypatch.setitem(sys.modules, "xxhash", None)
    store = CheckpointStore(tmp_path)
    for call in (store.load, store.verify):
        with pytest.raises(UnsupportedAlgorithm, match=r'needs the xxhash package: pip install "binrec\[fast\]"'):
            call("c")
    assert [i.checksum for i in store.list()] == ["xxh3"]  # the header alone needs no package


def test_asking_for_xxh3_without_the_package_is_unsupported_algorithm(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "xxhash", None)
    with pytest.raises(UnsupportedAlgorithm, match=r"binrec\[fast\]"):
        CheckpointStore(tmp_path / "s", checksum="xxh3")
    store = CheckpointStore(tmp_path)
    with pytest.raises(UnsupportedAlgorithm, match=r"binrec\[fast\]"):
        store.save("c", STATE, checksum="xxh3")
    assert list(tmp_path.iterdir()) == []
    store.save("c", STATE)  # the default needs nothing
    _same_state(store.load("c"))


def test_an_unknown_checksum_option_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"checksum='crc32c' is not a checkpoint checksum: use one of 'crc32', 'xxh3'"):
        CheckpointStore(tmp_path, checksum="crc32c")
    with pytest.raises(ValueError, match=r"checksum='md5' is not a checkpoint checksum"):
        CheckpointStore(tmp_path).save("c", STATE, checksum="md5")


def test_an_unknown_checksum_in_a_header_is_refused(tmp_path, xxh):
    store = CheckpointStore(tmp_path, checksum="xxh3")
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    assert raw.count(b'"checksum":"xxh3"') == 1
    store.path("c").write_bytes(raw.replace(b'"checksum":"xxh3"', b'"checksum":"xxh9"'))
    with pytest.raises(CheckpointCorrupted, match="unknown section checksum 'xxh9'"):
        store.info("c")
