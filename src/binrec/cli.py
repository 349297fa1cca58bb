"""The ``binrec`` command.

Exit status: 0 on success, 2 on usage errors, 1 on data errors; errors are
one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
from typing import Sequence

import numpy as np

from . import _backend
from ._errors import Error
from .records import Struct

SENSOR_FORMAT = ">I10sf"
SENSOR_NAMES = ("id", "name", "temp")


def sensor_records(n: int, seed: int = 0) -> np.ndarray:
    """n sample sensor-log records (id, 10-byte name, temperature)."""
    rng = np.random.default_rng(seed)
    s = Struct(SENSOR_FORMAT, SENSOR_NAMES)
    recs = np.zeros(n, dtype=s.dtype)
    recs["id"] = np.arange(n, dtype=np.uint32)
    stations = np.array([b"north", b"south", b"east", b"west", b"roof", b"cellar"], dtype="S10")
    recs["name"] = stations[rng.integers(0, len(stations), n)]
    recs["temp"] = np.round(rng.normal(20.0, 5.0, n), 2).astype(np.float32)
    return recs


def _cmd_demo(args: argparse.Namespace) -> int:
    n = args.records
    s = Struct(SENSOR_FORMAT, SENSOR_NAMES)
    with tempfile.TemporaryDirectory(prefix="binrec-demo-") as tmp:
        path = os.path.join(tmp, "sensors.bin")
        raw = s.pack(sensor_records(n))
        with open(path, "wb") as fh:
            fh.write(raw)
        with open(path, "rb") as fh:
            data = fh.read()
        t0 = time.perf_counter()
        recs = s.unpack(data)
        t_binrec = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = list(struct.iter_unpack(SENSOR_FORMAT, data))
        t_struct = time.perf_counter() - t0
    assert len(rows) == len(recs)
    mb = len(data) / 1e6
    print(f"binrec {SENSOR_FORMAT!r} demo: {n:,} sensor records ({mb:.1f} MB), backend: {_backend.backend}")
    print(f"{'id':>6}  {'name':<10}  {'temp':>7}")
    for rec in recs[: args.head]:
        print(f"{int(rec['id']):>6}  {rec['name'].decode('ascii'):<10}  {float(rec['temp']):>7.2f}")
    print(f"binrec.unpack:        {mb / t_binrec:10.1f} MB/s")
    print(f"struct.iter_unpack:   {mb / t_struct:10.1f} MB/s")
    print(f"speed-up:             {t_struct / t_binrec:10.1f}x")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    s = Struct(args.format, args.names)
    order = {"<": "little-endian", ">": "big-endian"}[s.layout.byteorder]
    mode = "native sizes and alignment" if s.layout.native_mode else "standard sizes, no alignment"
    print(f"format: {s.format}")
    print(f"size:   {s.size} bytes")
    print(f"order:  {order} ({mode})")
    print(f"{'name':<16} {'code':<6} {'offset':>6} {'size':>5}  numpy")
    for f in s.layout.fields:
        code = f"{f.count}{f.code}" if f.code in "sp" else f.code
        print(f"{f.name:<16} {code:<6} {f.offset:>6} {f.size:>5}  {f.native.str}")
    return 0


def _cmd_pickle_inspect(args: argparse.Namespace) -> int:
    import json

    from .pickling import inspect

    report = inspect(args.file)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"file:      {args.file}")
        print(f"size:      {report.size} bytes, {report.pickles} pickle(s), protocol {report.protocol}")
        print(f"calls:     {report.calls} (REDUCE/NEWOBJ/BUILD/INST/OBJ opcodes)")
        print(f"verdict:   {report.verdict}")
        print(f"{'global':<48} allowed")
        offending = set(report.offending)
        for module, name in report.globals:
            full = f"{module}.{name}"
            print(f"{full:<48} {'NO' if full in offending else 'yes'}")
    return 0 if report.safe else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="binrec", description="Binary records <-> numpy, from the shell.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="write a sample sensor file, decode it, compare with struct")
    d.add_argument("--records", type=int, default=1_000_000, help="records to generate (default 1,000,000)")
    d.add_argument("--head", type=int, default=5, help="rows to print")
    d.set_defaults(func=_cmd_demo)
    i = sub.add_parser("info", help="describe a struct format")
    i.add_argument("format")
    i.add_argument("--names", default=None, help="field names, comma or space separated")
    i.set_defaults(func=_cmd_info)
    pk = sub.add_parser("pickle", help="pickle tools")
    pk_sub = pk.add_subparsers(dest="pickle_command", required=True)
    pi = pk_sub.add_parser("inspect", help="what a pickle would import and call, without running it (exit 1 if unsafe)")
    pi.add_argument("file")
    pi.add_argument("--json", action="store_true", help="machine-readable output")
    pi.set_defaults(func=_cmd_pickle_inspect)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (Error, struct.error, ValueError, OSError) as exc:
        print(f"binrec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
