"""The ``binrec`` command.

Exit status: 0 on success, 2 on usage errors, 1 on data errors; errors are
one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import struct
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import _backend
from ._atomic import atomic_writer
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
    s = _struct(args)
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


# -- decode / encode ------------------------------------------------------------

_PROGRESS_MIN_BYTES = 4 << 20
_CHUNK = 65536


def _open_input(path: str):
    if path == "-":
        return sys.stdin.buffer, None
    size = os.path.getsize(path)
    return open(path, "rb"), size


def _progress(total: int | None, quiet: bool, desc: str):
    """A tqdm bar on stderr for large inputs on a terminal, else a no-op."""
    if quiet or not total or total < _PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr, leave=False)


def _text_value(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")  # every byte maps to one code point: reversible
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value


class _Writer:
    """Writes decoded chunks to one output format."""

    def __init__(self, kind: str, fh, s: Struct):
        self.kind, self.fh, self.s = kind, fh, s
        self.names = list(s.names)
        self.rows = 0
        if kind == "csv":
            import csv

            self.text_fh = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
            self.csv = csv.writer(self.text_fh)
            self.csv.writerow(self.names)
        elif kind == "jsonl":
            self.text_fh = io.TextIOWrapper(fh, encoding="utf-8", newline="\n", write_through=True)
        elif kind == "npy":
            self._npy_header(0)
        elif kind == "parquet":
            self.pq_writer = None

    def _npy_header(self, n: int) -> None:
        from numpy.lib import format as npformat

        dtype_descr = npformat.dtype_to_descr(self.s.dtype)
        # the shape is written with a fixed width, so the header can be
        # rewritten in place once the record count is known (pipes)
        header = f"{{'descr': {dtype_descr!r}, 'fortran_order': False, 'shape': ({n:20d},), }}"
        pad = 64 - (10 + len(header) + 1) % 64
        body = (header + " " * pad + "\n").encode("latin-1")
        self.fh.write(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body)

    def write(self, chunk: np.ndarray, cols: dict | None) -> None:
        self.rows += len(chunk)
        if self.kind == "csv":
            self.csv.writerows([[_text_value(v) for v in row] for row in chunk.tolist()])
        elif self.kind == "jsonl":
            import json

            out = []
            for row in chunk.tolist():
                out.append(json.dumps({k: _text_value(v) for k, v in zip(self.names, row)}))
            self.text_fh.write("\n".join(out) + "\n")
        elif self.kind == "npy":
            self.fh.write(chunk.tobytes())
        elif self.kind == "parquet":
            import pyarrow.parquet as pq

            table = self.s.unpack_table(self.s.pack(chunk)) if cols is None else cols
            if self.pq_writer is None:
                self.pq_writer = pq.ParquetWriter(self.fh, table.schema)
            self.pq_writer.write_table(table)

    def close(self) -> None:
        if self.kind in ("csv", "jsonl"):
            self.text_fh.flush()
            self.text_fh.detach()
        elif self.kind == "npy":
            self.fh.seek(0)
            self._npy_header(self.rows)
            self.fh.seek(0, os.SEEK_END)
        elif self.kind == "parquet":
            if self.pq_writer is None:
                import pyarrow.parquet as pq

                table = self.s.unpack_table(b"")
                self.pq_writer = pq.ParquetWriter(self.fh, table.schema)
            self.pq_writer.close()


def _output_kind(path: str | None) -> str:
    if path is None or path == "-":
        return "csv"
    ext = os.path.splitext(path)[1].lower()
    kinds = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".npy": "npy", ".parquet": "parquet"}
    if ext not in kinds:
        raise _Usage(f"unknown output extension {ext!r} (use .csv, .jsonl, .npy or .parquet)")
    return kinds[ext]


class _Usage(Exception):
    """A usage error: exit status 2."""


def _struct(args: argparse.Namespace) -> Struct:
    try:
        return Struct(args.format, args.names)
    except Error as exc:
        raise _Usage(str(exc)) from None


def _cmd_decode(args: argparse.Namespace) -> int:
    s = _struct(args)
    kind = _output_kind(args.output)
    text = args.text or []
    for name in text:
        if name not in s.names:
            raise _Usage(f"--text {name!r}: no such field (fields: {', '.join(s.names)})")
    if kind == "npy" and text:
        raise _Usage("--text does not apply to .npy output (it stores the raw structured dtype)")
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise _Usage("parquet output needs pyarrow: pip install 'binrec[arrow]'") from None
    src, size = _open_input(args.input)
    limit = args.count if args.count is not None else args.head
    if args.count is not None and size is not None:
        available = (size - args.offset) // s.size
        if args.count > available:
            raise Error(
                f"{args.input}: --count {args.count} but the file holds {available} records after offset {args.offset}"
            )
    bar = _progress(size, args.quiet, "decode")

    def run(out_fh) -> int:
        writer = _Writer(kind, out_fh, s)
        done = 0
        for chunk in s.iter_unpack(
            src, chunk_size=_CHUNK, offset=args.offset, trailing="ignore" if limit is not None else "error"
        ):
            if limit is not None and done + len(chunk) > limit:
                chunk = chunk[: limit - done]
            cols = None
            if text and kind in ("csv", "jsonl"):
                chunk = s._with_text(chunk, set(text), "ascii", b"\x00 ")
            if kind == "parquet":
                cols = _table_from_rows(s, chunk, text)
            writer.write(chunk, cols)
            done += len(chunk)
            if bar is not None:
                bar.update(len(chunk) * s.size)
            if limit is not None and done >= limit:
                break
        writer.close()
        return done

    try:
        if args.output is None or args.output == "-":
            run(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with atomic_writer(args.output) as out_fh:
                run(out_fh)
    finally:
        if bar is not None:
            bar.close()
        if src is not sys.stdin.buffer:
            src.close()
    return 0


def _table_from_rows(s: Struct, rows: np.ndarray, text: list[str]):
    import pyarrow as pa

    arrays = []
    for f in s.layout.fields:
        col = rows[f.name]
        if f.name in text and col.dtype.kind == "S":
            col = np.strings.decode(np.strings.rstrip(col, b"\x00 "), "ascii")
        if col.dtype.kind == "S":
            arrays.append(pa.array(col.tolist(), type=pa.binary()))
        elif col.dtype.kind == "U":
            arrays.append(pa.array(col, type=pa.string()))
        else:
            arrays.append(pa.array(np.ascontiguousarray(col)))
    return pa.Table.from_arrays(arrays, names=list(s.names))


def _parse_cell(f, value: str, line: int):
    kind = f.kind
    try:
        if kind == "int":
            return int(value)
        if kind in ("float",):
            return float(value)
        if kind == "complex":
            return complex(value)
        if kind == "bool":
            low = value.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no", ""):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        return value.encode("latin-1")
    except (ValueError, UnicodeEncodeError) as exc:
        raise Error(f"line {line}: field {f.name!r}: {exc}") from None


def _json_cell(f, value, line: int):
    if isinstance(value, str) and f.kind in ("char", "bytes", "pascal"):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise Error(f"line {line}: field {f.name!r}: {exc}") from None
    return value


def _batched(numbered_rows: Iterator[tuple[int, tuple]]) -> Iterator[tuple[list[int], list[tuple]]]:
    """Group (line number, row) pairs into batches of ``_CHUNK`` rows."""
    lines: list[int] = []
    rows: list[tuple] = []
    for line, row in numbered_rows:
        lines.append(line)
        rows.append(row)
        if len(rows) == _CHUNK:
            yield lines, rows
            lines, rows = [], []
    if rows:
        yield lines, rows


def _csv_rows(s: Struct, path: str) -> Iterator[tuple[int, tuple]]:
    import csv

    fields = s.layout.fields
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        if header != list(s.names):
            raise Error(f"{path}: line 1: header {header} does not match the field names {list(s.names)}")
        for row in reader:
            line = reader.line_num  # right even when a quoted value spans lines
            if len(row) != len(fields):
                raise Error(f"{path}: line {line}: expected {len(fields)} values, got {len(row)}")
            yield line, tuple(_parse_cell(f, v, line) for f, v in zip(fields, row))


def _jsonl_rows(s: Struct, path: str) -> Iterator[tuple[int, tuple]]:
    import json

    fields = s.layout.fields
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise Error(f"{path}: line {line}: invalid JSON: {exc.msg}") from None
            if not isinstance(obj, dict) or set(obj) != set(s.names):
                raise Error(f"{path}: line {line}: expected an object with keys {list(s.names)}")
            yield line, tuple(_json_cell(f, obj[f.name], line) for f in fields)


def _encode_batches(s: Struct, path: str) -> Iterator[tuple[str, Sequence[int], Any]]:
    """Yield (what a number counts, the number of each row, rows) batches
    from a .csv, .jsonl (line numbers) or .npy (record numbers)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        for start in range(0, len(arr), _CHUNK):
            rows = arr[start : start + _CHUNK]
            yield "record", range(start, start + len(rows)), rows
        return
    if ext == ".csv":
        numbered = _csv_rows(s, path)
    elif ext in (".jsonl", ".ndjson"):
        numbered = _jsonl_rows(s, path)
    else:
        raise _Usage(f"unknown input extension {ext!r} (use .csv, .jsonl or .npy)")
    for lines, rows in _batched(numbered):
        yield "line", lines, rows


def _cmd_encode(args: argparse.Namespace) -> int:
    s = _struct(args)
    if not os.path.exists(args.input):
        raise _Usage(f"input file not found: {args.input}")
    with atomic_writer(args.output) as out_fh:
        total = 0
        for unit, numbers, rows in _encode_batches(s, args.input):
            try:
                out_fh.write(s.pack(rows))
            except Error as exc:
                m = re.search(r"row (\d+)", str(exc))
                if m:
                    raise Error(f"{args.input}: {unit} {numbers[int(m.group(1))]}: {exc}") from None
                raise
            total += len(rows)
    if not args.quiet:
        print(f"binrec: wrote {total} records ({total * s.size} bytes) to {args.output}", file=sys.stderr)
    return 0


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
    dec = sub.add_parser("decode", help="decode a record file to .csv, .jsonl, .npy or .parquet (stdout: CSV)")
    dec.add_argument("format")
    dec.add_argument("input", help="record file, or - for standard input")
    dec.add_argument("-o", "--output", default=None, help="output file; its extension picks the format")
    dec.add_argument("--names", default=None, help="field names, comma or space separated")
    dec.add_argument("--offset", type=int, default=0, help="header bytes to skip")
    dec.add_argument("--count", type=int, default=None, help="decode exactly N records (error if fewer)")
    dec.add_argument("--head", type=int, default=None, help="decode at most the first N records")
    dec.add_argument(
        "--text",
        nargs="+",
        default=None,
        metavar="FIELD",
        help="string fields to decode as ASCII text, padding stripped",
    )
    dec.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    dec.set_defaults(func=_cmd_decode)
    enc = sub.add_parser("encode", help="encode a .csv, .jsonl or .npy file into records, with struct's range checks")
    enc.add_argument("format")
    enc.add_argument("input")
    enc.add_argument("-o", "--output", required=True)
    enc.add_argument("--names", default=None)
    enc.add_argument("-q", "--quiet", action="store_true")
    enc.set_defaults(func=_cmd_encode)
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
    for opt in ("offset", "count", "head"):
        value = getattr(args, opt, None)
        if value is not None and value < 0:
            parser.error(f"--{opt} must be >= 0")
    try:
        return args.func(args)
    except _Usage as exc:
        parser.print_usage(sys.stderr)
        print(f"binrec: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `binrec decode ... | head`
        # point stdout at devnull so the interpreter's final flush stays quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (Error, struct.error, ValueError, OSError) as exc:
        print(f"binrec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
