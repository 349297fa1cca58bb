"""Golden files pin every on-disk format binrec writes.

``tests/golden/`` holds files written by binrec 0.1.0 (``make_golden.py``
made them from the literals in ``golden_values.py``).  For each format the
tests below

* decode the stored file and compare with the stated values (and, where the
  format is documented, with an encoder written here from the spec: struct
  for record files, hmac/hashlib/json for envelopes, tags and checkpoints,
  plain pickle for payloads; the blake3 and xxhash packages and the zstd
  library's own decoder for the BLAKE3, XXH3 and compressed files that
  binrec 0.2.0 added, which skip, naming the package, where it is missing);
* re-encode the stated values and compare byte for byte where the format is
  deterministic;
* fail when the code writes a format version that has no golden file yet.

A failure here means a release would write (or stop reading) bytes that an
earlier release wrote.  If the change is intended, bump the format's version
and run ``python tests/golden/make_golden.py``: it adds a file for the new
version and keeps the old ones, which must go on decoding.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import importlib.util
import json
import pickle
import shutil
import sqlite3
import struct
import sys
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import binrec
from binrec import checkpoint, pickling, shelf, signing

GOLDEN = Path(__file__).resolve().parent / "golden"
REMAKE = "run `python tests/golden/make_golden.py` to add it (keep the old golden files)"


def _load_values():
    spec = importlib.util.spec_from_file_location("binrec_golden_values", GOLDEN / "golden_values.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gv = _load_values()
MADE_WITH = json.loads((GOLDEN / "generated-with.json").read_text(encoding="utf-8"))


def goldens(pattern: str) -> list[Path]:
    found = sorted(GOLDEN.glob(pattern))
    assert found, f"no golden file matches tests/golden/{pattern}; {REMAKE}"
    return found


def golden_file(name: str) -> Path:
    """The golden file for the version the code writes now; missing means a
    format version changed without a new golden file."""
    path = GOLDEN / name
    assert path.is_file(), f"tests/golden/{name} is missing: {REMAKE}"
    return path


def by_name(paths: list[Path]):
    return pytest.mark.parametrize("path", paths, ids=[p.name for p in paths])


def test_golden_files_are_the_ones_recorded_and_small():
    """generated-with.json lists every golden file with its SHA-256; a file
    edited by hand (or remade without the script) shows up here."""
    data_files = sorted(p.name for p in GOLDEN.iterdir() if p.suffix not in (".py", ".json", ".pyc") and p.is_file())
    assert data_files == sorted(MADE_WITH)
    for name, made in MADE_WITH.items():
        assert hashlib.sha256((GOLDEN / name).read_bytes()).hexdigest() == made["sha256"], name
    assert sum((GOLDEN / n).stat().st_size for n in data_files) < 200_000


# -- record files ---------------------------------------------------------------------------

#: The native file was made on x86_64 Linux: little-endian, 'q'/'d' aligned
#: to 8, 'e'/'H' to 2, so the record is 44 bytes with padding after '?' and
#: 'b'.  Any platform whose struct agrees decodes it identically.
_NATIVE_LIKE_GOLDEN = (
    sys.byteorder == "little"
    and struct.calcsize("@" + gv.RECORD_CODES) == 44
    and struct.calcsize("@bq") == 16
    and struct.calcsize("@be") == 4
)
RECORD_ORDERS = [
    "<",
    ">",
    pytest.param(
        "@",
        marks=pytest.mark.skipif(
            not _NATIVE_LIKE_GOLDEN,
            reason=f"{gv.RECORD_FILES['@']} pins the x86_64 native layout; this platform's native layout differs",
        ),
    ),
]


def _record_struct(order: str) -> binrec.Struct:
    return binrec.Struct(order + gv.RECORD_CODES, names=gv.RECORD_NAMES)


def _as_struct_row(rec: tuple, s: binrec.Struct) -> tuple:
    """A decoded record as struct.unpack returns it: numpy strips trailing
    NULs from 's' fields, struct keeps the full width."""
    out = []
    for value, f in zip(rec, s.layout.fields):
        if f.code == "s":
            value = value.ljust(s.dtype[f.name].itemsize, b"\x00")
        out.append(value)
    return tuple(out)


@pytest.mark.parametrize("order", RECORD_ORDERS)
def test_record_file_matches_struct(order):
    """struct is the oracle: the golden bytes are the stated rows, packed."""
    fmt = order + gv.RECORD_CODES
    raw = (GOLDEN / gv.RECORD_FILES[order]).read_bytes()
    assert list(struct.iter_unpack(fmt, raw)) == gv.RECORD_ROWS
    assert raw == b"".join(struct.pack(fmt, *row) for row in gv.RECORD_ROWS)


@pytest.mark.parametrize("order", RECORD_ORDERS)
def test_record_file_decodes_to_stated_rows(backend, order):
    s = _record_struct(order)
    path = GOLDEN / gv.RECORD_FILES[order]
    for recs in (s.read_file(path), s.read_file(path, mmap=True), s.unpack(path.read_bytes())):
        assert [_as_struct_row(r, s) for r in recs.tolist()] == gv.RECORD_ROWS
        assert np.signbit(recs["half"][2]) and np.signbit(recs["x"][2])  # -0.0 stays negative
    cols = s.unpack_columns(path.read_bytes())
    assert cols["name"].tolist() == [row[1] for row in gv.RECORD_ROWS]
    assert cols["flag"].dtype == np.bool_ and cols["flag"].tolist() == [row[2] for row in gv.RECORD_ROWS]
    assert cols["half"].dtype == np.float16 and cols["half"].tolist() == [row[3] for row in gv.RECORD_ROWS]
    assert _as_struct_row(tuple(s.read_record(path, -1).tolist()), s) == gv.RECORD_ROWS[-1]


@pytest.mark.parametrize("order", RECORD_ORDERS)
def test_record_file_reencodes_byte_for_byte(backend, order, tmp_path):
    s = _record_struct(order)
    golden = (GOLDEN / gv.RECORD_FILES[order]).read_bytes()
    assert s.pack(gv.RECORD_ROWS) == golden
    assert s.pack(s.unpack(golden)) == golden
    assert s.pack(s.unpack_columns(golden)) == golden
    s.write_file(tmp_path / "r.bin", gv.RECORD_ROWS)
    assert (tmp_path / "r.bin").read_bytes() == golden


# -- signed envelopes and detached tags -------------------------------------------------------


def _subkey(context: bytes) -> bytes:
    return hmac.digest(gv.KEY, b"binrec.signing.v1\x00" + context, "sha256")


@by_name(goldens("envelope-v*.bin"))
def test_envelope_decodes(path):
    env = path.read_bytes()
    assert signing.verify(env, gv.KEY, context=gv.ENVELOPE_CONTEXT) == gv.ENVELOPE_PAYLOAD
    now = gv.ENVELOPE_CREATED_NS + 500_000_000
    assert signing.verify(env, [gv.KEY], context=gv.ENVELOPE_CONTEXT, max_age=1.0, now_ns=now) == gv.ENVELOPE_PAYLOAD
    with pytest.raises(signing.BadSignature):
        signing.verify(env, gv.KEY, context=b"another context")
    # The documented layout, read with struct (signing.py's module docstring).
    magic, version, alg, kid, clen = struct.unpack_from("<4sBB8sH", env, 0)
    assert (magic, alg, kid.hex(), clen) == (b"BRSG", 1, gv.KEY_ID_HEX, len(gv.ENVELOPE_CONTEXT))
    assert path.name == f"envelope-v{version}.bin"
    assert env[16 : 16 + clen] == gv.ENVELOPE_CONTEXT
    created, length = struct.unpack_from("<qQ", env, 16 + clen)
    assert (created, length) == (gv.ENVELOPE_CREATED_NS, len(gv.ENVELOPE_PAYLOAD))
    body_end = 32 + clen + length
    assert env[32 + clen : body_end] == gv.ENVELOPE_PAYLOAD
    assert env[body_end:] == hmac.digest(_subkey(gv.ENVELOPE_CONTEXT), env[:body_end], "sha256")
    assert len(env) == body_end + 32


def test_envelope_reencodes_byte_for_byte():
    golden = golden_file(f"envelope-v{signing.VERSION}.bin").read_bytes()
    made = signing.sign(gv.ENVELOPE_PAYLOAD, gv.KEY, context=gv.ENVELOPE_CONTEXT, created_ns=gv.ENVELOPE_CREATED_NS)
    assert made == golden


@by_name(goldens("detached-tag-v*.bin"))
def test_detached_tag_decodes(path):
    tag = path.read_bytes()
    assert signing.verify_detached(gv.TAG_PAYLOAD, tag, [gv.KEY], context=gv.TAG_CONTEXT) is True
    with pytest.raises(signing.BadSignature):
        signing.verify_detached(gv.TAG_PAYLOAD + b"!", tag, [gv.KEY], context=gv.TAG_CONTEXT)
    magic, version, alg, kid = struct.unpack_from("<4sBB8s", tag, 0)
    assert (magic, alg, kid.hex(), len(tag)) == (b"BRDT", 1, gv.KEY_ID_HEX, 46)
    assert path.name == f"detached-tag-v{version}.bin"
    expected = hmac.digest(_subkey(b"detached\x00" + gv.TAG_CONTEXT), tag[:14] + gv.TAG_PAYLOAD, "sha256")
    assert tag[14:] == expected


def test_detached_tag_reencodes_byte_for_byte():
    golden = golden_file(f"detached-tag-v{signing.VERSION}.bin").read_bytes()
    assert signing.sign_detached(gv.TAG_PAYLOAD, gv.KEY, context=gv.TAG_CONTEXT) == golden


# -- versioned pickles ---------------------------------------------------------------------------


@by_name(goldens("versioned-pickle-v*.pkl"))
def test_versioned_pickle_decodes(path):
    assert pickling.read_version(path) == gv.VERSIONED_VERSION
    assert pickling.load_versioned(path, current=gv.VERSIONED_VERSION) == gv.VERSIONED_DATA
    assert pickling.load_versioned(path, current=gv.VERSIONED_VERSION, allow=None) == gv.VERSIONED_DATA
    upgraded = pickling.load_versioned(path, current=4, migrations={3: lambda d: {**d, "v4": True}})
    assert upgraded == {**gv.VERSIONED_DATA, "v4": True}
    raw = path.read_bytes()
    # Documented layout: 8-byte magic, u64 LE data version, one plain pickle.
    assert raw[:5] == b"BRVER" and path.name == f"versioned-pickle-v{raw[6]}.pkl"
    assert struct.unpack_from("<Q", raw, 8)[0] == gv.VERSIONED_VERSION
    assert pickle.loads(raw[16:]) == gv.VERSIONED_DATA
    assert raw[16:] == pickle.dumps(gv.VERSIONED_DATA, protocol=gv.PICKLE_PROTOCOL)


def _current_versioned_pickle(tmp_path: Path) -> bytes:
    pickling.save_versioned(tmp_path / "v.pkl", gv.VERSIONED_DATA, gv.VERSIONED_VERSION, protocol=gv.PICKLE_PROTOCOL)
    return (tmp_path / "v.pkl").read_bytes()


def test_versioned_pickle_reencodes_byte_for_byte(tmp_path):
    made = _current_versioned_pickle(tmp_path)
    assert made == golden_file(f"versioned-pickle-v{made[6]}.pkl").read_bytes()


# -- checkpoints --------------------------------------------------------------------------------------

CHECKPOINTS = goldens("checkpoint-v*.ckpt") + goldens("checkpoint-signed-v*.ckpt")


def _is_signed(path: Path) -> bool:
    return path.name.startswith("checkpoint-signed-")


def _store_with(path: Path, tmp_path: Path) -> checkpoint.CheckpointStore:
    """A store holding a copy of the golden file (loading never touches tests/)."""
    shutil.copyfile(path, tmp_path / path.name)
    return checkpoint.CheckpointStore(tmp_path, key=gv.KEY if _is_signed(path) else None)


def _assert_state_equal(got: dict, expected: dict) -> None:
    got_arrays, want_arrays = got.pop("arrays"), expected.pop("arrays")
    assert got == expected
    assert sorted(got_arrays) == sorted(want_arrays)
    for name, want in want_arrays.items():
        arr = got_arrays[name]
        assert isinstance(arr, np.ndarray), name
        # the golden checkpoints were written on a little-endian host: each
        # array there was native, so '<', except counts_be, '>' by its
        # astype(">i4"); raw sections load so everywhere.  strided is
        # pickled in the skeleton, where numpy's own unpickling gives the
        # reader's native order (plain pickle of an x86 '<f4' array loads as
        # '>f4' on s390x).  Spelled by name: on a big-endian reader numpy
        # calls both '>i4' and the native order '='
        if name == "strided":
            want_dtype = want.dtype.newbyteorder("=")
        else:
            want_dtype = want.dtype.newbyteorder(">" if name == "counts_be" else "<")
        assert (arr.dtype, arr.shape) == (want_dtype, want.shape), name
        np.testing.assert_array_equal(arr, want, err_msg=name)
    assert got_arrays["counts_be"].dtype == np.dtype(">i4")
    assert got_arrays["fortran"].flags.f_contiguous and not got_arrays["fortran"].flags.c_contiguous


@by_name(CHECKPOINTS)
@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
def test_checkpoint_decodes(path, mmap, tmp_path):
    store = _store_with(path, tmp_path)
    name = path.name[: -len(checkpoint.SUFFIX)]
    _assert_state_equal(store.load(name, mmap=mmap), gv.checkpoint_state())
    info = store.verify(name)
    assert (info.name, info.created, info.metadata, info.version) == (
        name,
        gv.CHECKPOINT_CREATED,
        gv.CHECKPOINT_METADATA,
        gv.CHECKPOINT_VERSION,
    )
    assert [i.name for i in store.list()] == [name]


@by_name(goldens("checkpoint-signed-v*.ckpt"))
def test_signed_checkpoint_needs_its_key(path, tmp_path):
    shutil.copyfile(path, tmp_path / path.name)
    name = path.name[: -len(checkpoint.SUFFIX)]
    with pytest.raises(signing.BadSignature):
        checkpoint.CheckpointStore(tmp_path).load(name)
    with pytest.raises(signing.BadSignature):
        checkpoint.CheckpointStore(tmp_path, key=bytes(32)).load(name)


def _parse_checkpoint(raw: bytes) -> tuple[dict, bytes, list[bytes]]:
    magic, version, flags, hlen = struct.unpack_from("<8sIIQ", raw, 0)
    assert magic == b"BINRECCK"
    header = json.loads(raw[24 : 24 + hlen])
    sk = header["skeleton"]
    skeleton = raw[sk["offset"] : sk["offset"] + sk["length"]]
    buffers = [raw[b["offset"] : b["offset"] + b["length"]] for b in header["buffers"]]
    return header, skeleton, buffers


def _encode_checkpoint_from_spec(header: dict, skeleton: bytes, buffers: list[bytes], key: bytes | None) -> bytes:
    """docs/checkpoint-format.md, written out with struct, json and hashlib."""
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    out = bytearray(struct.pack("<8sIIQ", b"BINRECCK", header["format_version"], 1 if key else 0, len(head)) + head)
    out += bytes(header["skeleton"]["offset"] - len(out)) + skeleton
    head_end = len(out)
    for b, data in zip(header["buffers"], buffers):
        assert b["offset"] % 64 == 0 and b["crc32"] == zlib.crc32(data) and b["length"] == len(data)
        out += bytes(b["offset"] - len(out)) + data
    assert header["footer_offset"] % 64 == 0 and header["skeleton"]["crc32"] == zlib.crc32(skeleton)
    out += bytes(header["footer_offset"] - len(out))
    if key:
        subkey = hmac.digest(key, b"binrec.signing.v1\x00binrec.checkpoint", "sha256")
        head_digest = hmac.digest(subkey, out[:head_end], "sha256")
        file_digest = hmac.digest(subkey, out, "sha256")
    else:
        head_digest, file_digest = hashlib.sha256(out[:head_end]).digest(), hashlib.sha256(out).digest()
    footer = b"BRCKFOOT" + head_digest + file_digest
    out += footer + struct.pack("<I", zlib.crc32(footer))
    assert len(out) == header["file_size"]
    return bytes(out)


@by_name(CHECKPOINTS)
def test_checkpoint_follows_the_documented_layout(path):
    raw = path.read_bytes()
    header, skeleton, buffers = _parse_checkpoint(raw)
    signed = _is_signed(path)
    assert path.name.endswith(f"-v{header['format_version']}.ckpt")
    assert struct.unpack_from("<I", raw, 12)[0] == (1 if signed else 0)
    assert header["digest"] == ("hmac-sha256" if signed else "sha256")
    assert header["key_id"] == (gv.KEY_ID_HEX if signed else None)
    assert (header["created"], header["metadata"], header["version"]) == (
        gv.CHECKPOINT_CREATED,
        gv.CHECKPOINT_METADATA,
        gv.CHECKPOINT_VERSION,
    )
    # Every contiguous array went out of band; the strided one stayed inside.
    arrays = gv.checkpoint_state()["arrays"]
    out_of_band = [a for a in arrays.values() if a.flags.c_contiguous or a.flags.f_contiguous]
    assert [len(b) for b in buffers] == [a.nbytes for a in out_of_band]
    # A Fortran-order array is exported as its transpose (C order).
    shapes = [list(a.shape if a.flags.c_contiguous else a.T.shape) for a in out_of_band]
    assert [b["shape"] for b in header["buffers"]] == shapes
    assert _encode_checkpoint_from_spec(header, skeleton, buffers, gv.KEY if signed else None) == raw


class _FrozenClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def time(self) -> float:
        return self._now


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_checkpoint_reencodes_byte_for_byte(signed, tmp_path):
    """Deterministic once the clock is fixed: save() has no clock argument,
    so binrec.checkpoint's ``time`` is replaced while it saves.  The
    skeleton is pickle's (and numpy's) output and buffer formats are the
    platform's: where they differ from the golden's, only the container is
    compared (by test_checkpoint_follows_the_documented_layout)."""
    label = "checkpoint-signed" if signed else "checkpoint"
    name = f"{label}-v{checkpoint.FORMAT_VERSION}"
    golden = golden_file(name + checkpoint.SUFFIX).read_bytes()
    header, skeleton, _ = _parse_checkpoint(golden)
    buffers: list[pickle.PickleBuffer] = []
    here = pickle.dumps(gv.checkpoint_state(), protocol=5, buffer_callback=buffers.append)
    formats = [memoryview(b).format for b in buffers]
    made = MADE_WITH[name + checkpoint.SUFFIX]
    if here != skeleton or formats != [b["format"] for b in header["buffers"]]:
        pytest.skip(
            f"numpy {np.__version__} on {sys.platform} pickles the state differently from numpy {made['numpy']} "
            f"on {made['platform']}, which made the golden file"
        )
    store = checkpoint.CheckpointStore(tmp_path, key=gv.KEY if signed else None)
    with mock.patch.object(checkpoint, "time", _FrozenClock(gv.CHECKPOINT_CREATED)):
        info = store.save(name, gv.checkpoint_state(), gv.CHECKPOINT_METADATA, version=gv.CHECKPOINT_VERSION)
    assert Path(info.path).read_bytes() == golden


# -- BLAKE3, XXH3 and compressed files (golden since 0.2.0) ---------------------------------------------------

_BLAKE3_DERIVE = "binrec 2026-11-28 signing subkey v1"  # docs/envelope-format.md


def _need(module: str):
    """The module, or a skip naming it (these files need an optional extra)."""
    return pytest.importorskip(module, reason=f"{module} is not installed (binrec[fast] / binrec[compress])")


def _blake3_subkey(blake3, context: bytes) -> bytes:
    return blake3.blake3(gv.KEY + context, derive_key_context=_BLAKE3_DERIVE).digest()


@by_name(goldens("envelope-blake3-v*.bin"))
def test_blake3_envelope_decodes(path):
    blake3 = _need("blake3")
    env = path.read_bytes()
    assert signing.verify(env, gv.KEY, context=gv.ENVELOPE_CONTEXT) == gv.ENVELOPE_PAYLOAD
    magic, version, alg, kid, clen = struct.unpack_from("<4sBB8sH", env, 0)
    assert (magic, alg, kid.hex(), clen) == (b"BRSG", 2, gv.KEY_ID_HEX, len(gv.ENVELOPE_CONTEXT))
    assert path.name == f"envelope-blake3-v{version}.bin"
    body_end = 32 + clen + len(gv.ENVELOPE_PAYLOAD)
    assert env[32 + clen : body_end] == gv.ENVELOPE_PAYLOAD
    sub = _blake3_subkey(blake3, gv.ENVELOPE_CONTEXT)
    assert env[body_end:] == blake3.blake3(env[:body_end], key=sub).digest()


def test_blake3_envelope_reencodes_byte_for_byte():
    _need("blake3")
    golden = golden_file(f"envelope-blake3-v{signing.VERSION}.bin").read_bytes()
    made = signing.sign(
        gv.ENVELOPE_PAYLOAD, gv.KEY, context=gv.ENVELOPE_CONTEXT, created_ns=gv.ENVELOPE_CREATED_NS, alg="blake3"
    )
    assert made == golden


@by_name(goldens("detached-tag-blake3-v*.bin"))
def test_blake3_detached_tag_decodes(path):
    blake3 = _need("blake3")
    tag = path.read_bytes()
    assert signing.verify_detached(gv.TAG_PAYLOAD, tag, [gv.KEY], context=gv.TAG_CONTEXT) is True
    magic, version, alg, kid = struct.unpack_from("<4sBB8s", tag, 0)
    assert (magic, alg, kid.hex(), len(tag)) == (b"BRDT", 2, gv.KEY_ID_HEX, 46)
    assert path.name == f"detached-tag-blake3-v{version}.bin"
    sub = _blake3_subkey(blake3, b"detached\x00" + gv.TAG_CONTEXT)
    assert tag[14:] == blake3.blake3(tag[:14] + gv.TAG_PAYLOAD, key=sub).digest()


def test_blake3_detached_tag_reencodes_byte_for_byte():
    _need("blake3")
    golden = golden_file(f"detached-tag-blake3-v{signing.VERSION}.bin").read_bytes()
    assert signing.sign_detached(gv.TAG_PAYLOAD, gv.KEY, context=gv.TAG_CONTEXT, alg="blake3") == golden


def test_blake3_shelf_reads_and_its_rows_are_blake3_envelopes(tmp_path):
    _need("blake3")
    path = tmp_path / gv.BLAKE3_SHELF_FILE
    shutil.copyfile(golden_file(gv.BLAKE3_SHELF_FILE), path)
    with shelf.open(path, "r", key=gv.KEY) as db:
        assert dict(db.items()) == gv.SHELF_ITEMS
    _, rows, _ = _rows(path)
    for k, value in gv.SHELF_ITEMS.items():
        context = b"binrec.shelf\x00" + k.encode("utf-8")
        assert rows[k][5] == 2, k  # the envelope's algorithm id: keyed BLAKE3
        assert signing.verify(rows[k], gv.KEY, context=context) == pickle.dumps(value, protocol=gv.PICKLE_PROTOCOL)


def test_blake3_shelf_accepts_writes(tmp_path):
    _need("blake3")
    path = tmp_path / gv.BLAKE3_SHELF_FILE
    shutil.copyfile(golden_file(gv.BLAKE3_SHELF_FILE), path)
    with shelf.open(path, "w", key=gv.KEY, alg="blake3") as db:
        db["new"] = [1]
    with shelf.open(path, "r", key=gv.KEY) as db:
        assert dict(db.items()) == {**gv.SHELF_ITEMS, "new": [1]}


def _zstd_decompress(data: bytes) -> bytes:
    """The zstd library's own decoder (the standard library's on 3.14+)."""
    try:
        from compression import zstd  # type: ignore[import-not-found]

        return zstd.decompress(data)
    except ImportError:
        return _need("zstandard").ZstdDecompressor().decompress(data)


def _need_zstd() -> None:
    try:
        checkpoint._zstd()
    except signing.UnsupportedAlgorithm:
        pytest.skip("no zstd module: zstandard is not installed and this Python has no compression.zstd")


#: name -> (what it needs, store options, the state saved in it)
FAST_CHECKPOINTS = {
    f"checkpoint-blake3-v{checkpoint.FORMAT_VERSION}": ("blake3", {"key": gv.KEY, "alg": "blake3"}),
    f"checkpoint-xxh3-v{checkpoint.FORMAT_VERSION}": ("xxhash", {"checksum": "xxh3"}),
    f"checkpoint-zstd-v{checkpoint.FORMAT_VERSION}": ("zstd", {"compress": gv.CHECKPOINT_COMPRESS}),
}


def _fast_state(name: str) -> dict:
    return gv.compressed_checkpoint_state() if "-zstd-" in name else gv.checkpoint_state()


def _need_for(name: str) -> dict:
    module, options = FAST_CHECKPOINTS[name]
    _need_zstd() if module == "zstd" else _need(module)
    return options


@pytest.mark.parametrize("name", FAST_CHECKPOINTS)
@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
def test_fast_checkpoint_decodes(name, mmap, tmp_path):
    options = _need_for(name)
    shutil.copyfile(golden_file(name + checkpoint.SUFFIX), tmp_path / (name + checkpoint.SUFFIX))
    store = checkpoint.CheckpointStore(tmp_path, key=options.get("key"))
    _assert_state_equal(store.load(name, mmap=mmap), _fast_state(name))
    info = store.verify(name)
    assert (info.created, info.metadata, info.version) == (
        gv.CHECKPOINT_CREATED,
        gv.CHECKPOINT_METADATA,
        gv.CHECKPOINT_VERSION,
    )
    assert info.digest == {"checkpoint-blake3": "blake3", "checkpoint-xxh3": "xxh3-128"}.get(name[:-3], "sha256")
    assert info.checksum == options.get("checksum", "crc32")
    assert info.compression == options.get("compress")


def test_blake3_checkpoint_footer_is_keyed_blake3():
    blake3 = _need("blake3")
    raw = golden_file(f"checkpoint-blake3-v{checkpoint.FORMAT_VERSION}.ckpt").read_bytes()
    header, skeleton, buffers = _parse_checkpoint(raw)
    assert struct.unpack_from("<I", raw, 12)[0] == 1 and header["digest"] == "blake3"
    assert header["key_id"] == gv.KEY_ID_HEX
    assert all(b["crc32"] == zlib.crc32(data) for b, data in zip(header["buffers"], buffers))
    sub = _blake3_subkey(blake3, b"binrec.checkpoint")
    fo, head_end = header["footer_offset"], header["skeleton"]["offset"] + len(skeleton)
    assert raw[fo + 8 : fo + 40] == blake3.blake3(raw[:head_end], key=sub).digest()
    assert raw[fo + 40 : fo + 72] == blake3.blake3(raw[:fo], key=sub).digest()


def test_xxh3_checkpoint_sections_and_footer_are_xxh3():
    xxh = _need("xxhash")
    raw = golden_file(f"checkpoint-xxh3-v{checkpoint.FORMAT_VERSION}.ckpt").read_bytes()
    header, skeleton, buffers = _parse_checkpoint(raw)
    assert (header["checksum"], header["digest"]) == ("xxh3", "xxh3-128")
    assert header["skeleton"]["xxh3"] == xxh.xxh3_64_intdigest(skeleton)
    assert all(b["xxh3"] == xxh.xxh3_64_intdigest(data) for b, data in zip(header["buffers"], buffers))
    fo, head_end = header["footer_offset"], header["skeleton"]["offset"] + len(skeleton)
    assert raw[fo + 8 : fo + 40] == xxh.xxh3_128_digest(raw[:head_end]) + bytes(16)
    assert raw[fo + 40 : fo + 72] == xxh.xxh3_128_digest(raw[:fo]) + bytes(16)


def test_zstd_checkpoint_sections_decompress_to_the_arrays():
    """Each compressed section, decompressed by the zstd library itself and
    unshuffled with numpy, is the array's bytes; the CRC32 is of the stored
    bytes; small arrays are stored raw."""
    _need_zstd()
    raw = golden_file(f"checkpoint-zstd-v{checkpoint.FORMAT_VERSION}.ckpt").read_bytes()
    header, _, buffers = _parse_checkpoint(raw)
    assert header["compression"] == list(gv.CHECKPOINT_COMPRESS)
    arrays = gv.compressed_checkpoint_state()["arrays"]
    out_of_band = [(n, a) for n, a in arrays.items() if a.flags.c_contiguous or a.flags.f_contiguous]
    assert len(out_of_band) == len(buffers)
    compressed = 0
    for b, data, (name, want) in zip(header["buffers"], buffers, out_of_band):
        assert b["crc32"] == zlib.crc32(data)
        # the bytes a little-endian writer stored (as in _assert_state_equal)
        want = want.astype(want.dtype.newbyteorder(">" if name == "counts_be" else "<"), order="K")
        want_bytes = want.tobytes(order="A")
        if "codec" not in b:
            assert data == want_bytes
            continue
        compressed += 1
        assert (b["codec"], b["raw_length"], b["shuffle"]) == ("zstd", want.nbytes, want.itemsize)
        plain = np.frombuffer(_zstd_decompress(data), np.uint8)
        assert plain.reshape(want.itemsize, -1).T.tobytes() == want_bytes
    assert compressed == 2


@pytest.mark.parametrize("name", FAST_CHECKPOINTS)
def test_fast_checkpoint_reencodes_byte_for_byte(name, tmp_path):
    """As test_checkpoint_reencodes_byte_for_byte; the compressed one only
    under the zstandard version that made it (zstd's output may change)."""
    options = _need_for(name)
    golden = golden_file(name + checkpoint.SUFFIX).read_bytes()
    header, skeleton, _ = _parse_checkpoint(golden)
    made = MADE_WITH[name + checkpoint.SUFFIX]
    buffers: list[pickle.PickleBuffer] = []
    here = pickle.dumps(_fast_state(name), protocol=5, buffer_callback=buffers.append)
    if here != skeleton or [memoryview(b).format for b in buffers] != [b["format"] for b in header["buffers"]]:
        pytest.skip(f"numpy {np.__version__} pickles the state differently from numpy {made['numpy']}")
    if "zstandard" in made:
        try:
            here_zstd = importlib.metadata.version("zstandard")
        except importlib.metadata.PackageNotFoundError:
            here_zstd = None
        if here_zstd != made["zstandard"]:
            pytest.skip(f"zstandard {here_zstd} here, {made['zstandard']} made the file: zstd output may differ")
    store = checkpoint.CheckpointStore(tmp_path, **options)
    with mock.patch.object(checkpoint, "time", _FrozenClock(gv.CHECKPOINT_CREATED)):
        info = store.save(name, _fast_state(name), gv.CHECKPOINT_METADATA, version=gv.CHECKPOINT_VERSION)
    assert Path(info.path).read_bytes() == golden


# -- shelves ------------------------------------------------------------------------------------------------

SHELVES = [pytest.param(kind, id=kind) for kind in gv.SHELF_FILES]


def _shelf_copy(kind: str, tmp_path: Path) -> Path:
    """Shelves are opened as copies: SQLite may create -wal/-shm files."""
    dst = tmp_path / gv.SHELF_FILES[kind]
    shutil.copyfile(GOLDEN / gv.SHELF_FILES[kind], dst)
    return dst


def _key(kind: str) -> bytes | None:
    return gv.KEY if kind == "signed" else None


def _rows(path: Path) -> tuple[list[str | None], dict[str, bytes], tuple[int, int]]:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        schema = [r[0] for r in con.execute("SELECT sql FROM sqlite_master ORDER BY name")]
        rows = dict(con.execute("SELECT key, value FROM binrec_shelf"))
        pragmas = (con.execute("PRAGMA user_version").fetchone()[0], con.execute("PRAGMA application_id").fetchone()[0])
    finally:
        con.close()
    return schema, rows, pragmas


@pytest.mark.parametrize("kind", SHELVES)
@pytest.mark.parametrize("flag", ["r", "w", "c"])
def test_shelf_opens_and_reads(kind, flag, tmp_path):
    path = _shelf_copy(kind, tmp_path)
    with shelf.open(path, flag, key=_key(kind)) as db:
        assert list(db) == sorted(gv.SHELF_ITEMS)
        assert dict(db.items()) == gv.SHELF_ITEMS
        assert len(db) == len(gv.SHELF_ITEMS)


@pytest.mark.parametrize("kind", SHELVES)
def test_shelf_accepts_writes(kind, tmp_path):
    path = _shelf_copy(kind, tmp_path)
    with shelf.open(path, "w", key=_key(kind)) as db:
        db["new"] = {"added": True}
        del db["beta"]
    with shelf.open(path, "r", key=_key(kind)) as db:
        assert dict(db.items()) == {**{k: v for k, v in gv.SHELF_ITEMS.items() if k != "beta"}, "new": {"added": True}}


@pytest.mark.parametrize("kind", SHELVES)
def test_shelf_rows_are_pickles_or_envelopes(kind, tmp_path):
    """Each row's value is pickle.dumps(value) (protocol 5), or that pickle
    in an envelope whose context binds the row's key.  The signing time is
    not injectable through the shelf, so signed rows are re-signed with the
    time read from each envelope."""
    _, rows, _ = _rows(_shelf_copy(kind, tmp_path))
    assert sorted(rows) == sorted(gv.SHELF_ITEMS)
    for k, value in gv.SHELF_ITEMS.items():
        pickled = pickle.dumps(value, protocol=gv.PICKLE_PROTOCOL)
        if kind == "unsigned":
            assert rows[k] == pickled, k
            continue
        context = b"binrec.shelf\x00" + k.encode("utf-8")
        assert signing.verify(rows[k], gv.KEY, context=context) == pickled
        (created,) = struct.unpack_from("<q", rows[k], 16 + len(context))
        assert signing.sign(pickled, gv.KEY, context=context, created_ns=created) == rows[k]


@pytest.mark.parametrize("kind", SHELVES)
def test_shelf_reencodes(kind, tmp_path):
    """A shelf made now has the golden's schema and pragmas, and the same
    rows (unsigned rows byte for byte).  The whole file is compared only for
    the unsigned shelf under the SQLite that made it: SQLite writes its own
    version number into the file header."""
    golden_path = GOLDEN / gv.SHELF_FILES[kind]
    g_schema, g_rows, g_pragmas = _rows(_shelf_copy(kind, tmp_path))
    path = tmp_path / "new" / gv.SHELF_FILES[kind]
    path.parent.mkdir()
    with shelf.open(path, "n", key=_key(kind), protocol=gv.PICKLE_PROTOCOL) as db:
        for k, v in gv.SHELF_ITEMS.items():
            db[k] = v
    schema, rows, pragmas = _rows(path)
    assert (schema, pragmas) == (g_schema, g_pragmas), f"the shelf layout changed: {REMAKE}"
    if kind == "unsigned":
        assert rows == g_rows
        if sqlite3.sqlite_version == MADE_WITH[gv.SHELF_FILES[kind]]["sqlite"]:
            assert path.read_bytes() == golden_path.read_bytes()


# -- format versions -----------------------------------------------------------------------------------------


def _current_versions(tmp_path: Path) -> dict[str, str]:
    """The golden file each format needs, from what the code writes now."""
    env = signing.sign(b"x", gv.KEY, context=b"c", created_ns=0)
    tag = signing.sign_detached(b"x", gv.KEY)
    assert env[4] == tag[4] == signing.VERSION
    pkl = _current_versioned_pickle(tmp_path)
    ckpt = Path(checkpoint.CheckpointStore(tmp_path / "ck").save("c", {"a": np.zeros(1)}).path).read_bytes()
    assert struct.unpack_from("<I", ckpt, 8)[0] == checkpoint.FORMAT_VERSION
    v = checkpoint.FORMAT_VERSION
    return {
        "envelope": f"envelope-v{env[4]}.bin",
        "detached tag": f"detached-tag-v{tag[4]}.bin",
        "versioned pickle": f"versioned-pickle-v{pkl[6]}.pkl",
        "checkpoint": f"checkpoint-v{v}.ckpt",
        "signed checkpoint": f"checkpoint-signed-v{v}.ckpt",
    }


def test_every_current_format_version_has_a_golden_file(tmp_path):
    needed = _current_versions(tmp_path)
    missing = [f"{fmt} (tests/golden/{name})" for fmt, name in needed.items() if not (GOLDEN / name).is_file()]
    assert not missing, f"binrec now writes format versions with no golden file: {', '.join(missing)}; {REMAKE}"


def test_versioned_pickle_magic_is_pinned(tmp_path):
    made = _current_versioned_pickle(tmp_path)
    golden = golden_file(f"versioned-pickle-v{made[6]}.pkl").read_bytes()
    assert made[:8] == golden[:8], f"the versioned-pickle magic changed without a version bump: {REMAKE}"
