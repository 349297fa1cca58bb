"""binrec.checkpoint: the compress= option (zstd after a byte-shuffle).

Oracles: the zstd library's own decompressor (``zstandard``, or
``compression.zstd`` on 3.14+) run on each section's
stored bytes (found with :mod:`struct` and :mod:`json` as
docs/checkpoint-format.md lays them out) and unshuffled with numpy, numpy's
``array_equal`` for loaded arrays, :mod:`zlib` for the checksum of the
stored bytes, and the bytes of a store saved without the option.  The
missing-package path blocks the imports (``sys.modules[...] = None``).
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib
from unittest import mock

import numpy as np
import pytest

from binrec import checkpoint
from binrec.checkpoint import CheckpointCorrupted, CheckpointStore
from binrec.signing import UnsupportedAlgorithm

try:
    checkpoint._zstd()
    HAVE_ZSTD = True
except UnsupportedAlgorithm:
    HAVE_ZSTD = False
needs_zstd = pytest.mark.skipif(
    not HAVE_ZSTD, reason="no zstd module: zstandard is not installed and this Python has no compression.zstd"
)


def _zstd_decompress(data: bytes) -> bytes:
    """The zstd library's own decoder (the standard library's on 3.14+)."""
    try:
        from compression import zstd  # type: ignore[import-not-found]

        return bytes(zstd.decompress(data))
    except ImportError:
        return bytes(pytest.importorskip("zstandard").ZstdDecompressor().decompress(data))


RNG = np.random.default_rng(15)
WEIGHTS = RNG.normal(0, 0.02, 1 << 16).astype(np.float32)
BF16 = ((WEIGHTS.view(np.uint32) + 0x8000) & 0xFFFF0000).view(np.float32)  # bfloat16-rounded float32
STEPS = np.arange(1 << 14, dtype=np.int64) * 3
NOISE = RNG.integers(0, 256, (1 << 17) + 8, dtype=np.uint8)  # does not compress: stored raw
SMALL = np.arange(10, dtype=np.float64)  # under 64 KiB: stored raw
FORTRAN = np.asfortranarray(RNG.normal(size=(128, 96)))
STATE = {"w": BF16, "steps": STEPS, "noise": NOISE, "small": SMALL, "f": FORTRAN, "lr": 0.1}


class _FrozenClock:
    def time(self) -> float:
        return 1_700_000_000.0


def _header(raw: bytes) -> dict:
    _, _, _, hlen = struct.unpack_from("<8sIIQ", raw)
    return json.loads(raw[24 : 24 + hlen])


def _by_length(header: dict, raw_length: int) -> dict:
    (entry,) = [b for b in header["buffers"] if b.get("raw_length", b["length"]) == raw_length]
    return entry


def _assert_state(got: dict) -> None:
    assert got["lr"] == 0.1
    for k in ("w", "steps", "noise", "small", "f"):
        assert np.array_equal(got[k], STATE[k]), k
    assert got["f"].flags.f_contiguous


@needs_zstd
@pytest.mark.parametrize("mmap", [False, True])
def test_compressed_checkpoint_round_trips(tmp_path, mmap):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", STATE)
    _assert_state(store.load("c", mmap=mmap))


@needs_zstd
def test_mmap_maps_the_raw_sections_and_decompresses_the_rest(tmp_path):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", STATE)
    got = store.load("c", mmap=True)
    assert not got["noise"].flags.writeable and not got["small"].flags.writeable  # views of the map
    assert got["w"].flags.writeable and got["steps"].flags.writeable  # decompressed into memory


@needs_zstd
@pytest.mark.parametrize("name", ["w", "steps", "f"])
def test_section_is_a_zstd_frame_of_the_shuffled_array_bytes(tmp_path, name):
    store = CheckpointStore(tmp_path, compress=("zstd", 5))
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    header = _header(raw)
    array = STATE[name]
    entry = _by_length(header, array.nbytes)
    assert (entry["codec"], entry["shuffle"]) == ("zstd", array.itemsize)
    section = raw[entry["offset"] : entry["offset"] + entry["length"]]
    assert entry["length"] < array.nbytes
    plain = _zstd_decompress(section)
    unshuffled = np.frombuffer(plain, np.uint8).reshape(array.itemsize, -1).T.tobytes()
    assert unshuffled == array.tobytes(order="A")


@needs_zstd
def test_checksum_covers_the_stored_bytes(tmp_path):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    entry = _by_length(_header(raw), BF16.nbytes)
    assert entry["crc32"] == zlib.crc32(raw[entry["offset"] : entry["offset"] + entry["length"]])


@needs_zstd
def test_header_records_the_codec_and_level(tmp_path):
    info = CheckpointStore(tmp_path).save("c", STATE, compress=("zstd", 7))
    assert info.compression == ("zstd", 7)
    assert _header(CheckpointStore(tmp_path).path("c").read_bytes())["compression"] == ["zstd", 7]


@needs_zstd
@pytest.mark.parametrize("name", ["noise", "small"])
def test_small_and_incompressible_arrays_are_stored_raw(tmp_path, name):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    entry = _by_length(_header(raw), STATE[name].nbytes)
    assert "codec" not in entry
    assert raw[entry["offset"] : entry["offset"] + entry["length"]] == STATE[name].tobytes()


@needs_zstd
@pytest.mark.parametrize("how", ["save-false", "store-none"])
def test_without_compression_the_file_is_unchanged_byte_for_byte(tmp_path, how):
    plain = CheckpointStore(tmp_path / "plain")
    other = CheckpointStore(tmp_path / "other", compress="zstd" if how == "save-false" else None)
    with mock.patch.object(checkpoint, "time", _FrozenClock()):
        plain.save("c", STATE)
        other.save("c", STATE, compress=False if how == "save-false" else None)
    raw = other.path("c").read_bytes()
    assert raw == plain.path("c").read_bytes()
    assert "compression" not in _header(raw)


@needs_zstd
def test_per_save_compress_overrides_the_store(tmp_path):
    store = CheckpointStore(tmp_path)
    assert store.save("c", STATE, compress="zstd").compression == ("zstd", 1)
    assert store.save("d", STATE).compression is None


@needs_zstd
@pytest.mark.parametrize("mmap", [False, True])
def test_flipped_byte_in_a_compressed_section_is_caught_before_decompressing(tmp_path, mmap):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", STATE)
    raw = bytearray(store.path("c").read_bytes())
    entry = _by_length(_header(bytes(raw)), BF16.nbytes)
    raw[entry["offset"] + entry["length"] // 2] ^= 0x10
    store.path("c").write_bytes(raw)
    with mock.patch.object(checkpoint._Zstd, "decompress", side_effect=AssertionError("decompressed")) as spy:
        with pytest.raises(CheckpointCorrupted, match="checksum mismatch in buffer"):
            store.load("c", mmap=mmap)
    assert not spy.called


@needs_zstd
def test_verify_finds_a_flipped_byte_in_a_compressed_section(tmp_path):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", STATE)
    raw = bytearray(store.path("c").read_bytes())
    entry = _by_length(_header(bytes(raw)), STEPS.nbytes)
    raw[entry["offset"] + 3] ^= 1
    store.path("c").write_bytes(raw)
    with pytest.raises(CheckpointCorrupted, match="checksum mismatch in buffer"):
        store.verify("c")


@needs_zstd
@pytest.mark.parametrize("alg", ["hmac-sha256", "blake3"])
def test_signed_compressed_checkpoint_round_trips(tmp_path, alg):
    if alg == "blake3":
        pytest.importorskip("blake3")
    store = CheckpointStore(tmp_path, key=bytes(range(32)), alg=alg, compress="zstd")
    store.save("c", STATE)
    _assert_state(store.load("c"))
    assert store.verify("c").compression == ("zstd", 1)


@needs_zstd
def test_xxh3_compressed_checkpoint_round_trips(tmp_path):
    xxh = pytest.importorskip("xxhash")
    store = CheckpointStore(tmp_path, checksum="xxh3", compress="zstd")
    store.save("c", STATE)
    raw = store.path("c").read_bytes()
    entry = _by_length(_header(raw), BF16.nbytes)
    assert entry["xxh3"] == xxh.xxh3_64_intdigest(raw[entry["offset"] : entry["offset"] + entry["length"]])
    _assert_state(store.load("c"))


@pytest.mark.parametrize("bad", ["lz4", ("zstd", 0), ("zstd", 23), ("zstd", "3"), 3, ("zstd",)])
def test_bad_compress_is_a_value_error_naming_the_option(tmp_path, bad):
    with pytest.raises(ValueError, match="compress="):
        CheckpointStore(tmp_path, compress=bad)
    with pytest.raises(ValueError, match="compress="):
        CheckpointStore(tmp_path).save("c", STATE, compress=bad)
    assert not CheckpointStore(tmp_path).path("c").exists()


def test_compress_true_is_refused(tmp_path):
    with pytest.raises(ValueError, match="compress=True"):
        CheckpointStore(tmp_path).save("c", STATE, compress=True)


@needs_zstd
def test_unknown_codec_in_a_header_is_refused(tmp_path):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", STATE)
    raw = store.path("c").read_bytes().replace(b'"codec":"zstd"', b'"codec":"zstx"')
    store.path("c").write_bytes(raw)
    with pytest.raises(CheckpointCorrupted, match="unknown compression codec 'zstx'"):
        store.load("c")


@pytest.fixture
def no_zstd(monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)
    monkeypatch.setitem(sys.modules, "compression.zstd", None)


def test_saving_compressed_without_zstd_names_the_extra(tmp_path, no_zstd):
    with pytest.raises(UnsupportedAlgorithm, match=r"binrec\[compress\]"):
        CheckpointStore(tmp_path, compress="zstd")
    with pytest.raises(UnsupportedAlgorithm, match=r"binrec\[compress\]"):
        CheckpointStore(tmp_path).save("c", STATE, compress="zstd")
    assert list(tmp_path.iterdir()) == []


@needs_zstd
def test_loading_compressed_without_zstd_names_the_extra(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", STATE)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    for mmap in (False, True):
        with pytest.raises(UnsupportedAlgorithm, match=r"binrec\[compress\]"):
            store.load("c", mmap=mmap)
    assert store.info("c").compression == ("zstd", 1)  # the header needs no package


def test_uncompressed_checkpoint_loads_without_zstd(tmp_path, no_zstd):
    store = CheckpointStore(tmp_path)
    store.save("c", STATE)
    _assert_state(store.load("c"))


@needs_zstd
@pytest.mark.parametrize(
    "dtype", ["<f2", "<f4", ">f8", "<i2", "<u8", "<c16", "?", "i1", [("a", "<i4"), ("b", "<f8")]], ids=str
)
def test_every_element_type_round_trips_compressed(tmp_path, dtype):
    """Shuffled by the element size, whatever it is (2, 4, 8, 16, 1, 12)."""
    n = 80_000  # 80 KB and up: large enough to be compressed
    codes = np.arange(n) % 97
    array = np.zeros(n, dtype=dtype)
    for name in array.dtype.names or [None]:
        target = array if name is None else array[name]
        target[...] = codes.astype(target.dtype)
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", {"a": array})
    entry = _header(store.path("c").read_bytes())["buffers"][0]
    assert entry["codec"] == "zstd" and entry["shuffle"] == max(array.dtype.itemsize, 1)
    got = store.load("c")["a"]
    assert got.dtype == array.dtype and np.array_equal(got, array)


def _resealed(raw: bytes, header: dict, sections: dict[int, bytes] | None = None) -> bytes:
    """The file with its header replaced (same length) and sections
    overwritten, and the footer's SHA-256 digests and CRC made anew: a
    file whose every checksum holds (a buggy or hostile writer), by
    docs/checkpoint-format.md."""
    hlen = struct.unpack_from("<8sIIQ", raw)[3]
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    assert len(head) == hlen, "the test must keep the header's length"
    out = bytearray(raw)
    out[24 : 24 + hlen] = head
    for offset, data in (sections or {}).items():
        out[offset : offset + len(data)] = data
    head_end = header["skeleton"]["offset"] + header["skeleton"]["length"]
    fo = header["footer_offset"]
    footer = b"BRCKFOOT" + hashlib.sha256(out[:head_end]).digest() + hashlib.sha256(out[:fo]).digest()
    out[fo:] = footer + struct.pack("<I", zlib.crc32(footer))
    return bytes(out)


@needs_zstd
def test_frame_that_does_not_decompress_is_corrupted_not_a_zstd_error(tmp_path):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", {"w": BF16})
    raw = store.path("c").read_bytes()
    header = _header(raw)
    entry = header["buffers"][0]
    frame = bytearray(raw[entry["offset"] : entry["offset"] + entry["length"]])
    for pos in range(len(frame) // 2, len(frame)):  # a flip whose new CRC32 has as many digits
        frame[pos] ^= 0xFF
        if len(str(zlib.crc32(frame))) == len(str(entry["crc32"])):
            break
        frame[pos] ^= 0xFF
    entry["crc32"] = zlib.crc32(frame)
    store.path("c").write_bytes(_resealed(raw, header, {entry["offset"]: bytes(frame)}))
    with pytest.raises(CheckpointCorrupted, match=r"buffer 0 .* does not decompress"):
        store.load("c")


@needs_zstd
def test_frame_of_another_length_than_the_header_says_is_refused_before_decompressing(tmp_path):
    store = CheckpointStore(tmp_path, compress="zstd")
    store.save("c", {"w": BF16})
    raw = store.path("c").read_bytes()
    header = _header(raw)
    header["buffers"][0]["raw_length"] = BF16.nbytes - 64  # as many digits
    header["buffers"][0]["shape"] = [BF16.size - 16]
    store.path("c").write_bytes(_resealed(raw, header))
    store.verify("c")  # every checksum holds
    with mock.patch.object(checkpoint._Zstd, "decompress", side_effect=AssertionError("decompressed")):
        with pytest.raises(CheckpointCorrupted, match=f"zstd frame declares {BF16.nbytes} bytes, the header says"):
            store.load("c")
