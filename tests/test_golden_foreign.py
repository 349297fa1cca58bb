"""Golden files across byte orders: another machine's native formats decode here.

``tests/golden/foreign/<machine>/`` holds record files written with the
native ``@`` and ``=`` formats, checkpoints of native-order arrays, a signed
envelope and a signed pickle of native arrays, each made on that machine by
``make_foreign_golden.py`` (big-endian s390x under qemu, see
``scripts/check_foreign_arch.sh s390x --golden``; little-endian x86_64
natively).  Beside them, ``manifest.json`` states what every file holds,
worked out on that machine from the oracles alone: struct (the rows, and each
native layout spelled with an explicit byte order and ``x`` padding) and
numpy's ``tobytes`` with an explicit-order dtype (the arrays).

Every machine's folder is decoded on whatever machine runs the suite, so the
native x86_64 suite reads s390x's big-endian files and the s390x run reads
x86_64's: a byte-order bug in either direction fails an ordinary run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import binrec
from binrec import checkpoint, signing

FOREIGN = Path(__file__).resolve().parent / "golden" / "foreign"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gv = _load("binrec_golden_values", FOREIGN.parent / "golden_values.py")
fv = _load("binrec_foreign_values", FOREIGN / "foreign_values.py")
MACHINES = sorted(p.name for p in FOREIGN.iterdir() if (p / "manifest.json").is_file())
MANIFESTS = {m: json.loads((FOREIGN / m / "manifest.json").read_text(encoding="utf-8")) for m in MACHINES}
RECORD_CASES = [(m, name) for m in MACHINES for name in MANIFESTS[m]["records"]]
BIG_ENDIAN_NATIVE = "s390x"  # the folder whose '@' and '=' files are big-endian


def by_machine(argnames: str = "machine"):
    return pytest.mark.parametrize(argnames, MACHINES)


def _path(machine: str, name: str) -> Path:
    return FOREIGN / machine / name


def _struct_row(rec: tuple, s: binrec.Struct) -> tuple:
    """A decoded record as struct.unpack returns it ('s' fields at full width)."""
    return tuple(
        v.ljust(s.dtype[f.name].itemsize, b"\x00") if f.code == "s" else v for v, f in zip(rec, s.layout.fields)
    )


def _expected_array(entry: dict) -> np.ndarray:
    """The oracle: the manifest's bytes read by numpy with the explicit dtype."""
    return np.frombuffer(bytes.fromhex(entry["hex"]), dtype=np.dtype(entry["dtype"])).reshape(entry["shape"])


def _same_array(got: np.ndarray, entry: dict) -> bool:
    want = _expected_array(entry)
    return (
        got.shape == want.shape
        and got.dtype.newbyteorder("=") == want.dtype.newbyteorder("=")
        and got.astype(want.dtype).tobytes() == want.tobytes()
    )


def test_both_byte_orders_are_present():
    """The point of the folder: one little-endian and one big-endian machine."""
    assert {MANIFESTS[m]["byteorder"] for m in MACHINES} == {"little", "big"}
    assert MANIFESTS[BIG_ENDIAN_NATIVE]["byteorder"] == "big"
    assert all(MANIFESTS[m]["backend"] == "compiled" for m in MACHINES)


@by_machine()
def test_files_are_the_ones_the_manifest_lists(machine):
    data_files = sorted(p.name for p in (FOREIGN / machine).iterdir() if p.name != "manifest.json")
    assert data_files == sorted(MANIFESTS[machine]["sha256"])
    for name, digest in MANIFESTS[machine]["sha256"].items():
        assert hashlib.sha256(_path(machine, name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize(("machine", "name"), RECORD_CASES)
def test_explicit_spelling_of_a_foreign_native_layout_matches_struct(machine, name):
    """struct alone: the file is the manifest's rows packed with the
    explicit-order spelling of the writer's native layout."""
    entry = MANIFESTS[machine]["records"][name]
    raw = _path(machine, name).read_bytes()
    rows = [fv.decode_row(r) for r in entry["rows"]]
    assert struct.calcsize(entry["explicit_format"]) == entry["record_size"]
    assert raw == b"".join(struct.pack(entry["explicit_format"], *row) for row in rows)


@pytest.mark.parametrize(("machine", "name"), RECORD_CASES)
def test_foreign_native_records_decode_with_the_explicit_format(backend, machine, name):
    """binrec reads another machine's native file through the explicit
    spelling: file, memory map, bytes and columns all give struct's rows."""
    entry = MANIFESTS[machine]["records"][name]
    path = _path(machine, name)
    rows = [fv.decode_row(r) for r in entry["rows"]]
    names = [f"f{i}" for i in range(len(rows[0]))]
    s = binrec.Struct(entry["explicit_format"], names=names)
    assert s.size == entry["record_size"]
    for recs in (s.read_file(path), s.read_file(path, mmap=True), s.unpack(path.read_bytes())):
        assert [_struct_row(r, s) for r in recs.tolist()] == rows
    cols = s.unpack_columns(path.read_bytes())
    assert [tuple(_struct_row(r, s)) for r in zip(*(cols[n].tolist() for n in names))] == rows


@pytest.mark.parametrize(("machine", "name"), RECORD_CASES)
def test_foreign_native_records_reencode_byte_for_byte(backend, machine, name):
    entry = MANIFESTS[machine]["records"][name]
    rows = [fv.decode_row(r) for r in entry["rows"]]
    s = binrec.Struct(entry["explicit_format"], names=[f"f{i}" for i in range(len(rows[0]))])
    assert s.pack(rows) == _path(machine, name).read_bytes()


@pytest.mark.parametrize(("machine", "name"), RECORD_CASES)
def test_native_format_decodes_where_the_layout_is_the_writers(backend, machine, name):
    """Where this machine's struct gives the writer's layout (same byte
    order and sizes), the file's own native format decodes it too."""
    entry = MANIFESTS[machine]["records"][name]
    fmt = entry["format"]
    if sys.byteorder != MANIFESTS[machine]["byteorder"] or struct.calcsize(fmt) != entry["record_size"]:
        pytest.skip(f"{fmt} here is not {machine}'s layout")
    rows = [fv.decode_row(r) for r in entry["rows"]]
    s = binrec.Struct(fmt, names=[f"f{i}" for i in range(len(rows[0]))])
    raw = _path(machine, name).read_bytes()
    assert [_struct_row(r, s) for r in s.unpack(raw).tolist()] == rows
    assert s.pack(rows) == raw


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@by_machine()
def test_foreign_checkpoint_loads_with_the_writers_values(machine, signed, tmp_path):
    """Arrays saved in the writer's native order come back with the same
    values (numpy's frombuffer of the manifest's explicit-order bytes is the
    oracle); the plain part equals plain pickle's; the header its metadata."""
    name = "checkpoint-signed" if signed else "checkpoint"
    (tmp_path / ("c" + checkpoint.SUFFIX)).write_bytes(_path(machine, name + ".ckpt").read_bytes())
    store = checkpoint.CheckpointStore(tmp_path, key=gv.KEY if signed else None)
    manifest = MANIFESTS[machine]["checkpoint"]
    for mmap in (False, True):
        state = store.load("c", mmap=mmap)
        arrays = state.pop("arrays")
        assert state == pickle.loads(bytes.fromhex(manifest["plain"]))
        assert sorted(arrays) == sorted(manifest["arrays"])
        for key, entry in manifest["arrays"].items():
            assert _same_array(arrays[key], entry), key
    info = store.info("c")
    assert info.metadata == manifest["metadata"] and info.version == manifest["version"]
    store.verify("c")


@by_machine()
def test_foreign_envelope_verifies_and_reencodes(machine):
    raw = _path(machine, "envelope.bin").read_bytes()
    entry = MANIFESTS[machine]["envelope"]
    payload = bytes.fromhex(entry["payload"])
    assert signing.verify(raw, gv.KEY, context=gv.ENVELOPE_CONTEXT) == payload
    assert signing.sign(payload, gv.KEY, context=gv.ENVELOPE_CONTEXT, created_ns=entry["created_ns"]) == raw


@by_machine()
def test_foreign_signed_pickle_of_native_arrays_loads(machine):
    blob = _path(machine, "signed-pickle.bin").read_bytes()
    arrays = signing.signed_loads(blob, gv.KEY)
    manifest = MANIFESTS[machine]["signed_pickle"]
    assert sorted(arrays) == sorted(manifest)
    for key, entry in manifest.items():
        assert _same_array(arrays[key], entry), key
