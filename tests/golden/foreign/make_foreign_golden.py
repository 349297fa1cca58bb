"""Write this machine's native-byte-order golden files (issue 17).

Run on the machine whose native formats are to be pinned, with the binrec
to pin: natively on x86_64, and under qemu on big-endian s390x
(``scripts/check_foreign_arch.sh s390x --golden`` runs it there)::

    python tests/golden/foreign/make_foreign_golden.py

It writes ``tests/golden/foreign/<machine>/``:

* ``records-at.bin`` and ``records-eq.bin``: the golden rows of
  ``tests/golden/golden_values.py`` written by ``Struct.write_file`` with the
  native formats ``@`` + codes and ``=`` + codes; ``records-long.bin``: rows of
  the native-only codes (``l L n N P``: C long, size_t, pointers) in ``@``;
* ``checkpoint.ckpt`` and ``checkpoint-signed.ckpt``: a checkpoint of
  native-order arrays (float64, int32, uint16, complex128, bool, float32)
  beside plain data, saved at a fixed clock;
* ``envelope.bin`` (``signing.sign``) and ``signed-pickle.bin``
  (``signing.signed_dumps`` of native arrays);
* ``manifest.json``: what every file must decode to, worked out here with
  the oracles alone: ``struct`` (record layouts as explicit-byte-order
  formats with the native padding spelled as ``x``, and the rows unpacked
  by struct from struct's own packing) and ``numpy.ndarray.tobytes`` with
  the dtype's explicit byte order (array bytes).

Nothing is written unless binrec's bytes equal struct's for every record
file: a generator that pinned a wrong encoding would make the test agree
with the bug.  ``tests/test_golden_foreign.py`` decodes every machine's
folder on whatever machine runs the suite.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
import platform
import re
import struct
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

import binrec
from binrec import checkpoint, signing

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gv = _load("binrec_golden_values", GOLDEN / "golden_values.py")
fv = _load("binrec_foreign_values", HERE / "foreign_values.py")


class _FrozenClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def time(self) -> float:
        return self._now


def explicit_format(fmt: str) -> str:
    """``fmt`` (native ``@`` or ``=``) as a format with this machine's byte
    order spelled out (``<``/``>``) and native padding as ``x`` codes,
    worked out with struct.calcsize alone.  Native-only codes become the
    standard code of the same size and signedness."""
    order = "<" if sys.byteorder == "little" else ">"
    prefix = fmt[0]
    assert prefix in "@=", fmt
    tokens = re.findall(r"(\d*)([a-zA-Z?])", fmt[1:])
    out, done = [], ""
    for count, code in tokens:
        token = count + code
        before = struct.calcsize(prefix + done)
        size = struct.calcsize(prefix + token)
        pad = struct.calcsize(prefix + done + token) - size - before
        std = fv.STANDARD_CODE[code][struct.calcsize(prefix + code)] if code in fv.STANDARD_CODE else code
        out.append("x" * pad + count + std)
        done += token
    tail = struct.calcsize(fmt) - struct.calcsize(order + "".join(out))
    return order + "".join(out) + "x" * tail


def record_file(fmt: str, names, rows) -> tuple[bytes, dict]:
    s = binrec.Struct(fmt, names=names)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.bin"
        s.write_file(path, rows)
        data = path.read_bytes()
    oracle = b"".join(struct.pack(fmt, *row) for row in rows)
    if data != oracle:
        raise SystemExit(f"{fmt}: binrec wrote bytes that struct.pack does not: refusing to pin them")
    explicit = explicit_format(fmt)
    if struct.calcsize(explicit) != struct.calcsize(fmt) or b"".join(struct.pack(explicit, *r) for r in rows) != data:
        raise SystemExit(f"{fmt}: the explicit spelling {explicit} does not reproduce the native bytes")
    entry = {
        "format": fmt,
        "explicit_format": explicit,
        "record_size": struct.calcsize(fmt),
        "names": list(names),
        "rows": [fv.encode_row(r) for r in struct.iter_unpack(fmt, data)],
    }
    return data, entry


def array_entry(a: np.ndarray) -> dict:
    """The oracle for an array: its dtype with the byte order spelled out,
    its shape and its bytes in that order (numpy's own tobytes)."""
    explicit = a.dtype.newbyteorder("=") if a.dtype.byteorder == "|" else a.dtype
    if explicit.byteorder == "=":
        explicit = explicit.newbyteorder("<" if sys.byteorder == "little" else ">")
    return {"dtype": explicit.str, "shape": list(a.shape), "hex": a.astype(explicit).tobytes().hex()}


def checkpoint_file(key: bytes | None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        store = checkpoint.CheckpointStore(tmp, key=key)
        with mock.patch.object(checkpoint, "time", _FrozenClock(gv.CHECKPOINT_CREATED)):
            store.save("c", fv.checkpoint_state(), gv.CHECKPOINT_METADATA, version=gv.CHECKPOINT_VERSION)
        return store.path("c").read_bytes()


def main() -> None:
    machine = platform.machine().lower()
    out = HERE / machine
    files: dict[str, bytes] = {}
    manifest: dict = {
        "machine": machine,
        "byteorder": sys.byteorder,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "binrec": binrec.__version__,
        "backend": binrec.backend,
        "records": {},
    }
    for name, fmt, names, rows in (
        ("records-at.bin", "@" + gv.RECORD_CODES, gv.RECORD_NAMES, gv.RECORD_ROWS),
        ("records-eq.bin", "=" + gv.RECORD_CODES, gv.RECORD_NAMES, gv.RECORD_ROWS),
        ("records-long.bin", "@" + fv.LONG_CODES, fv.LONG_NAMES, fv.long_rows()),
    ):
        files[name], manifest["records"][name] = record_file(fmt, names, rows)

    state = fv.checkpoint_state()
    manifest["checkpoint"] = {
        "arrays": {k: array_entry(v) for k, v in state["arrays"].items()},
        "plain": pickle.dumps({k: v for k, v in state.items() if k != "arrays"}, protocol=2).hex(),
        "metadata": gv.CHECKPOINT_METADATA,
        "version": gv.CHECKPOINT_VERSION,
    }
    files["checkpoint.ckpt"] = checkpoint_file(None)
    files["checkpoint-signed.ckpt"] = checkpoint_file(gv.KEY)

    files["envelope.bin"] = signing.sign(
        fv.ENVELOPE_PAYLOAD, gv.KEY, context=gv.ENVELOPE_CONTEXT, created_ns=gv.ENVELOPE_CREATED_NS
    )
    manifest["envelope"] = {"payload": fv.ENVELOPE_PAYLOAD.hex(), "created_ns": gv.ENVELOPE_CREATED_NS}
    arrays = fv.pickled_arrays()
    files["signed-pickle.bin"] = signing.signed_dumps(arrays, gv.KEY, protocol=gv.PICKLE_PROTOCOL)
    manifest["signed_pickle"] = {k: array_entry(v) for k, v in arrays.items()}

    manifest["sha256"] = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    out.mkdir(exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(files)} files and manifest.json to {out} ({sys.byteorder}-endian {machine})")


if __name__ == "__main__":
    main()
