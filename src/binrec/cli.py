"""The ``binrec`` command.

Exit status: 0 on success, 2 on usage errors (bad arguments), 1 on data
errors (including an input that cannot be opened, in decode and encode
alike), 130 on Ctrl-C, 143 on SIGTERM; errors are one line on stderr, never a traceback.
``pickle inspect`` has statuses of its own (see its ``--help``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import numpy as np

from . import _backend, _fs
from ._atomic import TEMP_PREFIX, atomic_writer
from ._coerce import field_error
from ._errors import Error
from ._text import DEFAULT_STRIP, arrow_strings
from ._textfmt import csv_chunk, csv_header, have_arrow, jsonl_chunk
from .files import file_span, remaining_bytes, source_name
from .records import Struct

if TYPE_CHECKING:  # pragma: no cover
    # optional extras: imported for the annotations only
    from types import FrameType

    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from ._layout import Field
    from .framing import Framing

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
    import tempfile  # the demo's alone: not paid by every run of the CLI

    n = args.records
    s = Struct(SENSOR_FORMAT, SENSOR_NAMES)
    with tempfile.TemporaryDirectory(prefix="binrec-demo-") as tmp:
        path = os.path.join(tmp, "sensors.bin")
        raw = s.pack(sensor_records(n))
        with open(path, "wb") as fh:
            fh.write(raw)
        with open(path, "rb") as fh:
            data = fh.read()
        recs = s.unpack(data)
        rows = list(struct.iter_unpack(SENSOR_FORMAT, data))
        repeat = args.repeat
        t_binrec = _median_seconds(lambda: s.unpack(data), repeat)
        t_struct = _median_seconds(lambda: list(struct.iter_unpack(SENSOR_FORMAT, data)), repeat)
    assert len(rows) == len(recs)
    mb = len(data) / 1e6
    print(f"binrec {SENSOR_FORMAT!r} demo: {n:,} sensor records ({mb:.1f} MB), backend: {_backend.backend}")
    print(f"{'id':>6}  {'name':<10}  {'temp':>7}")
    for rec in recs[: args.head]:
        print(f"{int(rec['id']):>6}  {rec['name'].decode('ascii'):<10}  {float(rec['temp']):>7.2f}")
    runs = f"median of {repeat} run{'s' if repeat != 1 else ''}"
    print(f"binrec.unpack:        {mb / t_binrec:10.1f} MB/s  ({runs})")
    print(f"struct.iter_unpack:   {mb / t_struct:10.1f} MB/s  ({runs})")
    print(f"speed-up:             {t_struct / t_binrec:10.1f}x     (ratio of the medians of {repeat} runs each)")
    return 0


def _median_seconds(work: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` runs of ``work``: one run swings
    with the machine's load, the median much less."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    import statistics  # the demo's alone

    return statistics.median(times)


def _cmd_info(args: argparse.Namespace) -> int:
    if args.file is None and args.offset:  # before any output: a usage error prints nothing else
        raise _Usage("--offset applies to a FILE: binrec info FORMAT FILE --offset N")
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
    if args.file is not None:
        _file_info(s, args.file, args.offset, _storage_options(args))
    return 0


def _file_info(s: Struct, path: str, offset: int, storage_options: dict[str, Any] | None = None) -> None:
    """How many records ``path`` holds after ``offset``, and whether it ends
    on a record boundary (and if not, how many bytes are left over)."""
    src, where, size = _open_input(path, storage_options)
    try:
        if size is None:  # a pipe: count what it holds
            size = sum(len(block) for block in iter(lambda: src.read(1 << 20), b""))
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    if offset > size:
        raise Error(f"{where}: offset {offset} is past the end of the file ({size} bytes)")
    whole, partial = divmod(size - offset, s.size) if s.size else (0, size - offset)
    print(f"file:   {where} ({size} bytes, offset {offset})")
    print(f"records: {whole}")
    if partial:
        print(
            f"end:    a partial record: {partial} trailing bytes after the last whole record (a record is {s.size} bytes)"
        )
    else:
        print("end:    clean (a whole number of records)")


#: exit status of ``binrec pickle inspect`` for each report status
PICKLE_INSPECT_EXIT = {"safe": 0, "unsafe": 1, "empty": 3, "unreadable": 4}

_PICKLE_INSPECT_EPILOG = """\
verdicts and exit statuses:
  0  safe        well-formed pickle(s) using only allowed globals and opcodes
  1  unsafe      a global or opcode the restricted loader refuses (also when
                 the bytes turn malformed after it: pickle runs opcodes
                 before it fails)
  2  usage error (bad arguments)
  3  empty       the file holds no bytes, hence no pickle
  4  unreadable  not a well-formed pickle, or the file cannot be read
"""


def _cmd_pickle_inspect(args: argparse.Namespace) -> int:
    import json

    from .pickling import PickleReport, inspect

    try:
        report = inspect(sys.stdin.buffer.read() if args.file == "-" else args.file)
    except OSError as exc:
        message = f"cannot read {args.file}: {exc.strerror or exc}"
        if args.json:  # machine consumers get a report whatever happens: the "unreadable" verdict
            print(json.dumps(PickleReport(size=0, protocol=0, pickles=0, error=message).as_dict(), indent=2))
        print(f"binrec: error: {message}", file=sys.stderr)
        return PICKLE_INSPECT_EXIT["unreadable"]
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
    return PICKLE_INSPECT_EXIT[report.status]


# -- decode / encode ------------------------------------------------------------

_PROGRESS_MIN_BYTES = 4 << 20
_CHUNK = 65536


def _open_input(path: str, storage_options: dict[str, Any] | None = None) -> tuple[BinaryIO, str, int | None]:
    """(binary file, name for messages, bytes left in it or None for a
    pipe).  An input that cannot be opened is a data error (exit 1), in
    decode and encode alike; ``-`` is standard input.  A remote fsspec URL
    is sized with one ``info`` and read with large ranged requests; a
    ``file://`` URL is the local file it names."""
    fh: BinaryIO
    if _fs.is_url(path) and _fs.local_path(path) is None:
        try:
            entry = _fs.stat_entry(path, storage_options)
        except (ImportError, OSError, ValueError) as exc:
            raise Error(f"cannot open {path}: {_url_reason(exc, path)}") from None
        # buffered: CSV input is read line by line
        return io.BufferedReader(_fs.RangeReader(entry), buffer_size=1 << 20), path, entry.size
    if path == "-":
        fh = sys.stdin.buffer
    else:
        try:
            fh = open(_fs.local_path(path) or path, "rb")
        except OSError as exc:
            raise Error(f"cannot open {path}: {exc.strerror or exc}") from None
    remaining = remaining_bytes(fh)  # None for a pipe, even one named by a path
    return fh, source_name(fh) if path == "-" else path, None if remaining is None else remaining()


def _url_reason(exc: BaseException, url: str) -> str:
    """What went wrong with ``url``, without naming it twice."""
    if isinstance(exc, FileNotFoundError):
        return "no such file or object"
    reason = str(exc)
    for shown in (url, repr(url)):
        if reason.startswith(shown + ": "):
            return reason[len(shown) + 2 :]
    return reason


def _storage_option(text: str) -> tuple[str, Any]:
    """``--storage-option KEY=VALUE``: VALUE is JSON when it parses as JSON
    (``true``, ``5``, ``{"endpoint_url": "..."}``), else the string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _storage_options(args: argparse.Namespace) -> dict[str, Any] | None:
    pairs = getattr(args, "storage_option", None)
    return dict(pairs) if pairs else None


def _add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-option",
        type=_storage_option,
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="for fsspec URLs (s3://...; needs binrec[cloud]): an option of the filesystem, repeatable; "
        'VALUE is JSON when it parses (client_kwargs={"endpoint_url": "http://..."}), else a string',
    )


@contextlib.contextmanager
def _output_file(path: str, storage_options: dict[str, Any] | None = None) -> Iterator[BinaryIO]:
    """atomic_writer, with errors that name the user's path, not the
    temporary file next to it.  A remote fsspec URL is written to a local
    temporary file first and uploaded only once the output is complete
    (committed as one object), so a failed run leaves no object."""
    if _fs.is_url(path) and _fs.local_path(path) is None:
        with _remote_output(path, storage_options) as remote_fh:
            yield remote_fh
        return
    path = _fs.local_path(path) or path
    try:
        with atomic_writer(path) as fh:
            yield fh
            if _signalled:
                # a signal arrived but its exception never reached us (a
                # library swallowed it): give up rather than commit
                raise KeyboardInterrupt if _signalled == _SIGINT else _Terminated
    except OSError as exc:
        if exc.filename == path or TEMP_PREFIX in os.path.basename(str(exc.filename or "")):
            raise Error(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


@contextlib.contextmanager
def _remote_output(url: str, storage_options: dict[str, Any] | None) -> Iterator[BinaryIO]:
    try:
        _fs.url_to_fs(url, storage_options)  # a missing fsspec or protocol package: before any work
    except (ImportError, ValueError) as exc:
        raise Error(f"cannot write {url}: {_url_reason(exc, url)}") from None
    with tempfile.TemporaryFile(prefix=TEMP_PREFIX) as tmp:
        yield tmp
        if _signalled:
            raise KeyboardInterrupt if _signalled == _SIGINT else _Terminated
        tmp.seek(0)
        try:
            _fs.upload(tmp, url, storage_options)
        except (ImportError, OSError, ValueError) as exc:
            raise Error(f"cannot write {url}: {_url_reason(exc, url)}") from None


def _progress(total: int | None, quiet: bool, desc: str) -> tqdm[NoReturn] | None:
    """A tqdm bar on stderr for large inputs on a terminal, else a no-op."""
    if quiet or not total or total < _PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr, leave=False)


class _Writer:
    """Writes decoded chunks to one output format (one subclass each).
    ``text``: the --text fields, decoded to str where the format has text."""

    def __init__(self, fh: BinaryIO, s: Struct, text: list[str]) -> None:
        self.fh, self.s, self.text = fh, s, text
        self.names = list(s.names)
        self.rows = 0
        self.encoding = "ascii"  # of the --text fields: set from --encoding by _decode_into

    def write(self, chunk: np.ndarray) -> None:
        self.rows += len(chunk)
        self._write(chunk)

    def _write(self, chunk: np.ndarray) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """After an error (Ctrl-C included): let go of the output without
        finishing it."""

    def close(self) -> None:
        """Finish the output after the last chunk."""


class _CsvWriter(_Writer):
    """A header line, then a line per record: see :mod:`binrec._textfmt`
    (the same bytes with and without pyarrow)."""

    def __init__(self, fh: BinaryIO, s: Struct, text: list[str]) -> None:
        super().__init__(fh, s, text)
        self.arrow = have_arrow()
        self.fh.write(csv_header(self.names))

    def write(self, chunk: np.ndarray) -> None:
        self.fh.write(csv_chunk(self.s.layout.fields, chunk, self.text, self.encoding, self.rows, self.arrow))
        self.rows += len(chunk)


class _JsonlWriter(_Writer):
    """A JSON object per record: see :mod:`binrec._textfmt`."""

    def __init__(self, fh: BinaryIO, s: Struct, text: list[str]) -> None:
        super().__init__(fh, s, text)
        self.arrow = have_arrow()

    def write(self, chunk: np.ndarray) -> None:
        self.fh.write(jsonl_chunk(self.s.layout.fields, chunk, self.text, self.encoding, self.rows, self.arrow))
        self.rows += len(chunk)


class _NpyWriter(_Writer):
    def __init__(self, fh: BinaryIO, s: Struct, text: list[str]) -> None:
        super().__init__(fh, s, text)  # --text is refused for .npy before this
        self._header(0)

    def _header(self, n: int) -> None:
        from numpy.lib import format as npformat

        dtype_descr = npformat.dtype_to_descr(self.s.dtype)
        # the shape is written with a fixed width, so the header can be
        # rewritten in place once the record count is known (pipes)
        header = f"{{'descr': {dtype_descr!r}, 'fortran_order': False, 'shape': ({n:20d},), }}"
        pad = 64 - (10 + len(header) + 1) % 64
        body = (header + " " * pad + "\n").encode("latin-1")
        self.fh.write(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body)

    def _write(self, chunk: np.ndarray) -> None:
        self.fh.write(chunk.tobytes())

    def close(self) -> None:
        self.fh.seek(0)
        self._header(self.rows)
        self.fh.seek(0, os.SEEK_END)


class _ParquetWriter(_Writer):
    """Row groups of ``row_group_size`` rows (pyarrow's own default for
    ``pq.write_table``: 1,048,576), not one per decoded chunk: decoded
    chunks wait as Arrow tables until a whole group is there, so memory
    holds at most ``row_group_size + 65,536`` rows as Arrow columns (plus
    the writer's encoding of one group)."""

    row_group_size = 1024 * 1024

    def __init__(self, fh: BinaryIO, s: Struct, text: list[str]) -> None:
        super().__init__(fh, s, text)
        self.pq_writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def _write(self, chunk: np.ndarray) -> None:
        table = _table_from_rows(self.s, chunk, self.text, self.encoding, self.rows - len(chunk))
        self.pending.append(table)
        self.pending_rows += len(table)
        if self.pending_rows >= self.row_group_size:
            self._flush(whole_groups=True)

    def _flush(self, whole_groups: bool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        size = self.row_group_size
        n = (len(table) // size) * size if whole_groups else len(table)
        if self.pq_writer is None:
            self.pq_writer = pq.ParquetWriter(self.fh, table.schema)
        if n:
            self.pq_writer.write_table(table.slice(0, n), row_group_size=size)
        rest = table.slice(n)
        self.pending, self.pending_rows = ([rest] if len(rest) else []), len(rest)

    def abort(self) -> None:
        # a Parquet writer left open would be closed by the garbage collector
        # after the file, printing "Exception ignored"
        if self.pq_writer is not None:
            writer, self.pq_writer = self.pq_writer, None
            with contextlib.suppress(Exception):
                writer.close()

    def close(self) -> None:
        self._flush(whole_groups=False)
        if self.pq_writer is None:
            import pyarrow.parquet as pq

            table = self.s.unpack_table(b"")
            self.pq_writer = pq.ParquetWriter(self.fh, table.schema)
        self.pq_writer.close()


_WRITERS: dict[str, type[_Writer]] = {
    "csv": _CsvWriter,
    "jsonl": _JsonlWriter,
    "npy": _NpyWriter,
    "parquet": _ParquetWriter,
}


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


_EXIT_STATUS = """exit status:
  0  success
  1  data error: an input that cannot be opened or read, bad or partial
     records, too few records for --count, an output that cannot be written
  2  usage error: bad arguments (format, option values, output extension,
     --text on a field that is not a string)
  130 interrupted (Ctrl-C); 143 terminated (SIGTERM)
Errors are one line on stderr; a file output is then not written at all."""


_ENCODE_EXIT_STATUS = """exit status:
  0  success
  1  data error: an input that cannot be opened or read (or is not
     UTF-8), a bad line or record (a value out of range for its field,
     text that does not encode or fit its field, an unknown or missing
     column or key, a wrong number of values), a --header file whose size
     is not --offset, an output that cannot be written
  2  usage error: bad arguments (format, option values, input extension)
  130 interrupted (Ctrl-C); 143 terminated (SIGTERM)
Errors are one line on stderr; a file output is then not written at all
(a FIFO or device output gets what was written before the error)."""


def _struct(args: argparse.Namespace) -> Struct:
    try:
        return Struct(args.format, args.names)
    except Error as exc:
        raise _Usage(str(exc)) from None


def _check_text_fields(s: Struct, text: list[str], kind: str) -> None:
    """--text names string fields only: a usage error otherwise, whatever
    the output format (the Python API raises binrec.Error likewise)."""
    for name in text:
        if name not in s.names:
            raise _Usage(f"--text {name!r}: no such field (fields: {', '.join(s.names)})")
        f = s.layout.field(name)
        if not f.is_string:
            raise _Usage(
                f"--text {name!r}: field {name!r} has format code {f.code!r}, not a string; --text applies to c, s and p fields"
            )
    if kind == "npy" and text:
        raise _Usage("--text does not apply to .npy output (it stores the raw structured dtype)")


def _check_file_span(s: Struct, size: int, args: argparse.Namespace, where: str) -> None:
    """Before writing anything: the checks a regular file allows up front
    (a pipe gets the same ones as it is read)."""
    file_span(s, size, args.offset, 0, where)  # the offset is inside the file
    whole, partial = divmod(size - args.offset, s.size)
    if args.count is not None and args.count > whole:
        raise Error(
            f"{where}: --count {args.count} but the file holds only {_plural(whole, 'whole record')} after offset {args.offset}"
        )
    limit = args.count if args.count is not None else args.head
    if partial and args.trailing == "error" and (limit is None or limit > whole):
        file_span(s, size, args.offset, None, where)  # the partial record is reached: its error


def _cmd_decode(args: argparse.Namespace) -> int:
    s = _struct(args)
    kind = _output_kind(args.output)
    text = args.text or []
    _check_text_fields(s, text, kind)
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise _Usage("parquet output needs pyarrow: pip install 'binrec[arrow]'") from None
        for f in s.layout.fields:
            if f.kind == "complex":  # the same error as unpack_table gives, before any output
                raise Error(f"field {f.name!r}: Arrow has no complex type")
    src, where, size = _open_input(args.input, _storage_options(args))
    try:
        if size is not None:
            _check_file_span(s, size, args, where)
        header = _read_header(src, where, args) if args.save_header is not None else None
        bar = _progress(size, args.quiet, "decode")
        try:
            if args.output is None or args.output == "-":
                _decode_into(s, src, where, sys.stdout.buffer, kind, text, args, bar)
                sys.stdout.buffer.flush()
            else:
                with _output_file(args.output, _storage_options(args)) as out_fh:
                    _decode_into(s, src, where, out_fh, kind, text, args, bar)
            if header is not None:  # only once the records decoded: no header file left by a failed decode
                with _output_file(args.save_header, _storage_options(args)) as header_fh:
                    header_fh.write(header)
        finally:
            if bar is not None:
                bar.close()
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    return 0


def _read_header(src: BinaryIO, where: str, args: argparse.Namespace) -> bytes:
    """The ``--offset`` bytes that decode skips, for ``--save-header``.  A
    regular file is read at its start with ``pread`` (its position is left
    alone); from a pipe they are read here, and decoding goes on after them."""
    offset: int = args.offset
    if remaining_bytes(src) is not None:
        header = os.pread(src.fileno(), offset, 0)
    else:
        parts = []
        got = 0
        while got < offset:
            block = src.read(offset - got)
            if not block:
                break
            parts.append(block)
            got += len(block)
        header = b"".join(parts)
        args.offset = 0  # already consumed from the pipe
    if len(header) != offset:
        raise Error(f"{where}: offset {offset} is past the end of the input ({len(header)} bytes)")
    return header


def _decode_into(
    s: Struct,
    src: BinaryIO,
    where: str,
    out_fh: BinaryIO,
    kind: str,
    text: list[str],
    args: argparse.Namespace,
    bar: tqdm[NoReturn] | None,
) -> int:
    limit = args.count if args.count is not None else args.head
    writer = _WRITERS[kind](out_fh, s, text)
    writer.encoding = args.encoding
    if isinstance(writer, _ParquetWriter):
        writer.row_group_size = args.row_group_size
    try:
        done = 0
        # with a limit of 0 nothing is read, so nothing (no partial record) is reached
        chunks = s.iter_unpack(src, chunk_size=_CHUNK, offset=args.offset, trailing=args.trailing) if limit != 0 else ()
        for chunk in chunks:
            if limit is not None and done + len(chunk) > limit:
                chunk = chunk[: limit - done]
            try:
                writer.write(chunk)
            except Error as exc:  # a --text value that does not decode: name the input too
                raise Error(f"{where}: {exc}") from None
            done += len(chunk)
            if bar is not None:
                bar.update(len(chunk) * s.size)
            if limit is not None and done >= limit:
                break  # the records after the limit are not reached: a partial one among them is no error
        if args.count is not None and done < args.count:
            raise Error(
                f"{where}: --count {args.count} but the input holds only {_plural(done, 'whole record')} after offset {args.offset}"
            )
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return done


def _table_from_rows(
    s: Struct, rows: np.ndarray, text: list[str], encoding: str = "ascii", first_row: int = 0
) -> pa.Table:
    import pyarrow as pa

    arrays = []
    for f in s.layout.fields:
        col = rows[f.name]
        if f.name in text and col.dtype.kind == "S":
            # Arrow strings from the raw bytes (the text kernels), row numbers from the stream's start
            arrays.append(arrow_strings(f, col, encoding, DEFAULT_STRIP, first_row=first_row))
            continue
        if col.dtype.kind == "S":
            arrays.append(pa.array(col.tolist(), type=pa.binary()))
        elif col.dtype.kind == "U":
            arrays.append(pa.array(col, type=pa.string()))
        else:
            arrays.append(pa.array(np.ascontiguousarray(col)))
    return pa.Table.from_arrays(arrays, names=list(s.names))


_NOT_A = {"int": "an integer", "float": "a float", "complex": "a complex"}


def _cell_error(f: Field, name: str, line: int, message: str) -> Error:
    """A per-cell error in the words of a range error from pack:
    ``name: line N: field 'x' (format 'I'): message``."""
    return Error(f"{name}: line {line}: {field_error(f, None, message)}")


def _parse_cell(
    f: Field, value: str, line: int, name: str, text: bool = False
) -> int | float | complex | bool | bytes | str:
    kind = f.kind
    try:
        if kind == "int":
            return int(value)
        if kind in ("float",):
            return float(value)
        if kind == "complex":
            return complex(value)
    except ValueError:
        # struct's words for a value of the wrong type, then the cell itself
        raise _cell_error(f, name, line, f"required argument is not {_NOT_A[kind]} (got {value!r})") from None
    if kind == "bool":
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", ""):
            return False
        raise _cell_error(f, name, line, f"not a boolean (got {value!r}; use true/false, 1/0 or yes/no)")
    if text:
        return value  # a --text field: Struct.pack encodes it with --encoding and checks it fits
    try:
        return _fitting(f, value.encode("latin-1"), line, name)
    except UnicodeEncodeError as exc:
        raise _cell_error(f, name, line, str(exc)) from None


def _fitting(f: Field, value: bytes, line: int, name: str) -> bytes:
    """``value``, or an error if it is longer than its s or p field holds:
    struct truncates such bytes, but text read from a file is the user's
    data and encode never cuts it short."""
    room = f.count if f.code == "s" else f.count - 1 if f.code == "p" else len(value)
    if len(value) > room:
        raise _cell_error(
            f, name, line, f"{len(value)} bytes do not fit the field's {room} (encode never truncates a value)"
        )
    return value


def _json_cell(f: Field, value: Any, line: int, name: str, text: bool = False) -> Any:
    if f.kind == "complex":
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            return complex(value[0], value[1])
        if isinstance(value, str):
            try:
                return complex(value)
            except ValueError:
                raise _cell_error(f, name, line, f"required argument is not a complex (got {value!r})") from None
        if isinstance(value, list):
            raise _cell_error(f, name, line, "a complex number is a [real, imag] pair of numbers")
    if isinstance(value, str) and f.kind in ("char", "bytes", "pascal") and not text:
        try:
            return _fitting(f, value.encode("latin-1"), line, name)
        except UnicodeEncodeError as exc:
            raise _cell_error(f, name, line, str(exc)) from None
    return value


def _batched(numbered_rows: Iterator[tuple[int, tuple[Any, ...]]]) -> Iterator[tuple[list[int], list[tuple[Any, ...]]]]:
    """Group (line number, row) pairs into batches of ``_CHUNK`` rows."""
    lines: list[int] = []
    rows: list[tuple[Any, ...]] = []
    for line, row in numbered_rows:
        lines.append(line)
        rows.append(row)
        if len(rows) == _CHUNK:
            yield lines, rows
            lines, rows = [], []
    if rows:
        yield lines, rows


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _EncodeInput:
    """What encode learns while reading its input: the Struct (named from
    the CSV header or the first JSONL object when --names is absent) and the
    bytes read so far (for the progress bar)."""

    def __init__(self, s: Struct, names_given: bool, text: Sequence[str]) -> None:
        self.s = s
        self.names_given = names_given
        self.text = frozenset(text)
        self.consumed = 0

    def lines(self, src: BinaryIO, name: str) -> Iterator[tuple[int, str]]:
        """(line number, text) for each line of a UTF-8 input, a BOM dropped.
        Each line is decoded alone, so a byte that is not UTF-8 is reported
        with its line."""
        for number, raw in enumerate(src, start=1):
            self.consumed += len(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Error(
                    f"{name}: line {number}: not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
                ) from None
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]  # the byte-order mark Excel writes
            yield number, line

    def adopt(self, keys: Sequence[str], where: str, what: str) -> list[str]:
        """The input's own names when --names is absent: the header's (or
        first object's) columns in order, one per field; with --names the
        columns are matched by name, in any order.  Returns the input's key
        for each field, in field order."""
        s = self.s
        if what == "column" and keys and all(_is_number(k) for k in keys):
            raise Error(
                f"{where}: the first line {','.join(keys)} looks like a record, not a header: binrec encode "
                f"reads a CSV's first line as the column names, so add a header line (e.g. "
                f"{','.join(s.names)})"
            )
        if not self.names_given:
            if len(keys) != len(s.names):
                raise Error(
                    f"{where}: {len(keys)} {what}s {list(keys)} but the format {s.format!r} has {len(s.names)} fields"
                )
            with contextlib.suppress(Error):  # names that are not identifiers keep f0, f1, ... in messages
                self.s = Struct(s.format, list(keys))
            _check_text_fields(self.s, sorted(self.text), "csv")  # --text names the input's columns
            return list(keys)
        dup = sorted({k for k in keys if list(keys).count(k) > 1})
        if dup:
            raise Error(f"{where}: duplicate {what} {', '.join(map(repr, dup))}")
        unknown = [k for k in keys if k not in s.names]
        missing = [n for n in s.names if n not in keys]
        if unknown or missing:
            parts = [f"unknown {what} {', '.join(map(repr, unknown))}"] if unknown else []
            parts += [f"missing {what} {', '.join(map(repr, missing))}"] if missing else []
            raise Error(f"{where}: {'; '.join(parts)} (the fields are {', '.join(s.names)})")
        _check_text_fields(s, sorted(self.text), "csv")
        return list(s.names)


def _csv_rows(
    state: _EncodeInput, lines: Iterator[tuple[int, str]], name: str
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    import csv

    # one string per line of the file, so reader.line_num is the file's line
    reader = csv.reader(content for _, content in lines)

    def rows() -> Iterator[list[str]]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a lone CR inside an unquoted line
                raise Error(f"{name}: line {reader.line_num}: malformed CSV: {exc}") from None
            yield row

    records = rows()
    header: list[str] | None = None
    for row in records:
        if row:  # blank lines before the header are skipped too
            header = [h.strip() for h in row]  # "id, name, temp" names the columns id, name and temp
            break
    if header is None:
        return
    keys = state.adopt(header, f"{name}: line {reader.line_num}", "column")
    order = [header.index(k) for k in keys]
    fields = state.s.layout.fields
    text = [f.name in state.text for f in fields]
    for row in records:
        line = reader.line_num  # the record's last line when a quoted value spans lines
        if not row:
            continue  # a blank line, as JSONL skips them
        if len(row) != len(header):
            raise Error(f"{name}: line {line}: expected {len(header)} values, got {len(row)}")
        yield line, tuple(_parse_cell(f, row[j], line, name, t) for f, j, t in zip(fields, order, text))


def _jsonl_rows(
    state: _EncodeInput, lines: Iterator[tuple[int, str]], name: str
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    import json

    keys: list[str] | None = None
    text: list[bool] = []
    for line, content in lines:
        if not content.strip():
            continue
        try:
            obj = json.loads(content)
        except json.JSONDecodeError as exc:
            raise Error(f"{name}: line {line}: invalid JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise Error(f"{name}: line {line}: expected a JSON object, got {type(obj).__name__}")
        if keys is None:
            keys = state.adopt(list(obj), f"{name}: line {line}", "key")
            text = [f.name in state.text for f in state.s.layout.fields]
        if len(obj) != len(keys) or any(k not in obj for k in keys):
            unknown = [k for k in obj if k not in keys]
            missing = [k for k in keys if k not in obj]
            parts = [f"unknown key {', '.join(map(repr, unknown))}"] if unknown else []
            parts += [f"missing key {', '.join(map(repr, missing))}"] if missing else []
            raise Error(f"{name}: line {line}: {'; '.join(parts)} (the keys are {', '.join(keys)})")
        fields = state.s.layout.fields
        yield line, tuple(_json_cell(f, obj[k], line, name, t) for f, k, t in zip(fields, keys, text))


class _NotFast(Exception):
    """The pyarrow CSV reader cannot promise the Python path's answer for
    this input: encode reads it again with the Python path."""


#: Bytes of CSV handed to pyarrow at a time (plus the rest of the last line).
_ARROW_CSV_BLOCK = 1 << 23


def _arrow_csv_blocks(
    state: _EncodeInput, src: BinaryIO, name: str, encoding: str
) -> Iterator[tuple[dict[str, Any], int]]:
    """The CSV input as ``(columns, rows)`` blocks read by pyarrow's CSV
    reader, each the columns :func:`_csv_rows` would have produced.

    Only inputs where both readers must agree take this path: no quote, NUL
    or lone CR anywhere, a plain first line as the header, fields of int,
    float, c and s kinds, no NaN.  Anything else, and any cell pyarrow
    refuses, raises :class:`_NotFast` or pyarrow's error; the caller then
    starts again with the Python path, which names file, line and key."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    first = src.readline()
    state.consumed += len(first)
    line = _plain_csv_line(first, bom=True)
    header = [h.strip() for h in line.split(",")]
    keys = state.adopt(header, f"{name}: line 1", "column")
    fields = state.s.layout.fields
    if any(f.kind not in ("int", "float", "char", "bytes") for f in fields):
        raise _NotFast
    order = [header.index(k) for k in keys]
    types = {}
    for j in order:
        types[f"c{j}"] = pa.string()  # numbers too: checked against Python's grammar, then cast
    read = pacsv.ReadOptions(column_names=[f"c{j}" for j in range(len(header))], block_size=_ARROW_CSV_BLOCK + 4096)
    parse = pacsv.ParseOptions(quote_char=False, ignore_empty_lines=True)
    convert = pacsv.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False, check_utf8=True)
    while True:
        block = src.read(_ARROW_CSV_BLOCK)
        if not block:
            return
        if not block.endswith(b"\n"):
            block += src.readline()
        state.consumed += len(block)
        if b'"' in block or b"\x00" in block or block.count(b"\r") != block.count(b"\r\n"):
            raise _NotFast
        table = pacsv.read_csv(pa.py_buffer(block), read_options=read, parse_options=parse, convert_options=convert)
        yield (
            {
                f.name: _arrow_csv_column(f, table.column(j), f.name in state.text, encoding)
                for f, j in zip(fields, order)
            },
            (table.num_rows),
        )


def _arrow_csv_ok() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _arrow_json_ok() -> bool:
    try:
        import pyarrow.json  # noqa: F401
    except ImportError:
        return False
    return True


#: Bytes below 0x20 other than LF and CR (tabs too: they only send a line
#: to the Python path).
_JSON_CONTROLS = bytes(c for c in range(0x20) if c not in (0x0A, 0x0D))


def _arrow_jsonl_blocks(
    state: _EncodeInput, src: BinaryIO, name: str, encoding: str
) -> Iterator[tuple[dict[str, Any], int]]:
    """The JSONL input as ``(columns, rows)`` blocks read by pyarrow's JSON
    reader with the fields' own types, each the columns :func:`_jsonl_rows`
    would have produced.

    Only inputs where both readers must agree take this path: valid UTF-8
    with no BOM, one object on every line (no blank or indented line, no
    control character or lone CR), fields of int, float, c and s kinds,
    every key present, no NaN.  Anything else, and any value pyarrow
    refuses (a float for an int, a number for a string, a repeated key, an
    escaped lone surrogate...), raises :class:`_NotFast` or pyarrow's error;
    the caller then starts again with the Python path."""
    import json

    import pyarrow as pa
    import pyarrow.json as pajson

    first = src.readline()
    try:
        obj = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _NotFast from None
    if not isinstance(obj, dict) or not obj:
        raise _NotFast
    keys = state.adopt(list(obj), f"{name}: line 1", "key")
    fields = state.s.layout.fields
    if any(f.kind not in ("int", "float", "char", "bytes") for f in fields):
        raise _NotFast

    def kind(f: Field) -> pa.DataType:
        if f.kind == "int":
            return pa.uint64() if f.native.kind == "u" and f.native.itemsize == 8 else pa.int64()
        return pa.float64() if f.kind == "float" else pa.string()

    schema = pa.schema([(k, kind(f)) for f, k in zip(fields, keys)])
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    read = pajson.ReadOptions(use_threads=False, block_size=2 * _ARROW_CSV_BLOCK + 4096)
    pending = first
    while True:
        block = pending + src.read(_ARROW_CSV_BLOCK)
        pending = b""
        if not block:
            return
        if not block.endswith(b"\n"):
            block += src.readline()
        state.consumed += len(block)
        lines = block.count(b"\n") + (not block.endswith(b"\n"))
        if (
            block.startswith((b"\n", b"\r", b" ", b"\t"))
            or any(gap in block for gap in (b"\n\n", b"\n\r", b"\n "))
            or block.count(b"\r") != block.count(b"\r\n")
        ):
            raise _NotFast  # blank, indented or odd lines: the Python path
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            raise _NotFast from None
        if len(block.translate(None, _JSON_CONTROLS)) != len(block):
            raise _NotFast  # a control character json.loads refuses in a string
        table = pajson.read_json(pa.py_buffer(block), read_options=read, parse_options=parse)
        if table.num_rows != lines:
            raise _NotFast  # e.g. two objects on one line, which json.loads refuses
        columns: dict[str, Any] = {}
        for f, k in zip(fields, keys):
            col = table.column(k)
            if col.null_count:
                raise _NotFast  # a missing key or null: the Python path's error
            if f.kind in ("int", "float"):
                values = col.to_numpy()
                if f.kind == "float" and np.isnan(values).any():
                    raise _NotFast
                columns[f.name] = values
            else:
                columns[f.name] = _arrow_csv_column(f, col, f.name in state.text, encoding)
        yield columns, table.num_rows


def _encode_csv_with_arrow(
    state: _EncodeInput,
    src: BinaryIO,
    name: str,
    out: BinaryIO,
    encoding: str,
    bar: tqdm[NoReturn] | None,
    blocks: Callable[[_EncodeInput, BinaryIO, str, str], Iterator[tuple[dict[str, Any], int]]] = _arrow_csv_blocks,
) -> int | None:
    """Encode a CSV file with pyarrow's reader (:func:`_arrow_csv_blocks`):
    the records written, or None when it gave up, its output undone and the
    input rewound for the Python path (which then names the bad cell's file,
    line and key as always).  ``blocks`` reads the input (JSONL:
    :func:`_arrow_jsonl_blocks`)."""
    import codecs

    import pyarrow as pa

    start = out.tell()
    total = 0
    try:
        for columns, rows in blocks(state, src, name, codecs.lookup(encoding).name):
            out.write(state.s.pack(columns, encoding=encoding))
            total += rows
            if bar is not None:
                bar.update(state.consumed - bar.n)
    except (_NotFast, Error, ValueError, TypeError, ArithmeticError, pa.ArrowException):
        out.seek(start)
        out.truncate()
        src.seek(0)
        return None
    return total


def _plain_csv_line(raw: bytes, bom: bool) -> str:
    """A CSV line that csv.reader would split at every comma: UTF-8, no
    quote, NUL or lone CR, not blank (its line ending removed)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _NotFast from None
    if bom and line.startswith("\ufeff"):
        line = line[1:]
    line = line.removesuffix("\n").removesuffix("\r")
    if not line or any(c in line for c in '"\x00\r'):
        raise _NotFast
    return line


def _arrow_csv_column(f: Field, col: Any, text: bool, encoding: str) -> np.ndarray:
    """One column of a pyarrow-read CSV block as the values _parse_cell
    gives, or their bytes: numbers as they are; string fields as the bytes
    their text encodes to (``encoding`` for --text fields, else Latin-1),
    or, for other encodings, --text fields as str (numpy U) for pack."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks()
    if f.kind in ("int", "float"):
        # pyarrow also reads 0x10 as an integer, which int() refuses: only
        # text both read alike is cast (anything else: the Python path)
        grammar = _INT_TEXT if f.kind == "int" else _FLOAT_TEXT
        if len(arr) and not pc.all(pc.match_substring_regex(arr, grammar)).as_py():
            raise _NotFast
        kind = pa.uint64() if f.native.kind == "u" and f.native.itemsize == 8 else pa.int64()
        values: np.ndarray = pc.cast(arr, kind if f.kind == "int" else pa.float64()).to_numpy(zero_copy_only=False)
        if f.kind == "float" and np.isnan(values).any():
            raise _NotFast  # float("-nan") keeps a sign bit pyarrow may not
        return values
    ascii_only = bool(pc.all(pc.string_is_ascii(arr)).as_py() is not False)
    if (text and (encoding == "utf-8" or (ascii_only and encoding in ("ascii", "iso8859-1")))) or (
        not text and ascii_only
    ):
        # the UTF-8 Arrow holds is the text's encoding: no str per value
        room = 1 if f.code == "c" else f.count
        lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False)
        if room == 0 or (len(lengths) and int(lengths.max()) > room):
            raise _NotFast  # pack's own error for a value too long
        if f.code == "c" and not text and len(lengths) and int(lengths.min()) != 1:
            raise _NotFast  # struct's error for a char that is not one byte
        return _fixed_bytes(arr, lengths, room)
    strings: np.ndarray = arr.to_numpy(zero_copy_only=False).astype(str)
    if text:
        return strings
    try:
        encoded: np.ndarray = np.strings.encode(strings, "latin-1")
    except UnicodeEncodeError:
        raise _NotFast from None
    if f.code == "c" and len(strings) and not (np.strings.str_len(strings) == 1).all():
        raise _NotFast
    if f.code != "c" and len(encoded) and int(np.strings.str_len(encoded).max()) > f.count:
        raise _NotFast  # the Python path's error for a value too long
    return encoded


#: Number text that int() and float() read as pyarrow does (a subset of
#: what Python takes: spaces, underscores and the rest go the Python path).
_INT_TEXT = r"^[+-]?[0-9]+$"
_FLOAT_TEXT = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity))$"


def _fixed_bytes(arr: Any, lengths: np.ndarray, width: int) -> np.ndarray:
    """The bytes of an Arrow string array (each at most ``width`` long) as
    a numpy ``S<width>`` array, NUL-padded."""
    n = len(arr)
    out = np.zeros((n, width), dtype=np.uint8)
    total = int(lengths.sum())
    if total:
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=4 * arr.offset)
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(total) - np.repeat(offsets[:-1] - offsets[0], lengths)
        out[rows, cols] = data
    return out.view(f"S{width}").reshape(n)


def _input_kind(path: str, forced: str | None) -> str:
    if forced is not None:
        return forced
    if path == "-":
        return "csv"
    ext = os.path.splitext(path)[1].lower()
    kinds = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".npy": "npy", ".parquet": "parquet"}
    if ext not in kinds:
        raise _Usage(f"unknown input extension {ext!r} (use .csv, .jsonl, .npy or .parquet, or --input-format)")
    return kinds[ext]


def _load_npy(src: BinaryIO, name: str) -> np.ndarray:
    arr: np.ndarray  # what np.load returns for an .npy file (typed Any: it also reads .npz)
    mapped = src is not sys.stdin.buffer and remaining_bytes(src) is not None
    data = b"" if mapped else src.read()
    magic = os.pread(src.fileno(), 6, 0) if mapped else data[:6]
    if magic != b"\x93NUMPY":
        # np.load would guess a pickle and suggest allow_pickle=: binrec never unpickles
        raise Error(f"{name}: not a .npy file (it does not start with numpy's magic bytes \\x93NUMPY)")
    try:
        if mapped:
            arr = np.load(src.name, mmap_mode="r", allow_pickle=False)  # a regular file: mapped, not read
            return arr
        arr = np.load(io.BytesIO(data), allow_pickle=False)  # a pipe
        return arr
    except (ValueError, EOFError) as exc:
        if "allow_pickle" in str(exc) or "Python objects" in str(exc):
            raise Error(f"{name}: the .npy file holds Python objects, which binrec never unpickles") from None
        raise Error(f"{name}: cannot read as .npy: {exc}") from None


def _encode_batches(
    state: _EncodeInput, src: BinaryIO, name: str, kind: str
) -> Iterator[tuple[str, Sequence[int], Any]]:
    """Yield (what a number counts, the number of each row, rows) batches
    from an open binary input holding CSV, JSONL (line numbers) or .npy
    (record numbers)."""
    if kind == "npy":
        arr = _load_npy(src, name)
        if arr.dtype.names is not None:
            state.adopt(arr.dtype.names, name, "field")
        for start in range(0, len(arr), _CHUNK):
            rows = arr[start : start + _CHUNK]
            state.consumed += rows.nbytes
            yield "record", range(start, start + len(rows)), rows
        return
    if kind == "parquet":
        yield from _parquet_batches(state, src, name)
        return
    lines = state.lines(src, name)
    numbered = _csv_rows(state, lines, name) if kind == "csv" else _jsonl_rows(state, lines, name)
    for numbers, batch in _batched(numbered):
        yield "line", numbers, batch


def _parquet_batches(state: _EncodeInput, src: BinaryIO, name: str) -> Iterator[tuple[str, Sequence[int], Any]]:
    """Record batches of a Parquet input (as ``decode -o x.parquet`` writes
    it); ``Struct.pack`` takes them as they are."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = remaining_bytes(src)
    total = size() if size is not None else 0
    try:
        pf = pq.ParquetFile(src if size is not None else pa.BufferReader(src.read()))
    except (pa.ArrowException, OSError) as exc:
        raise Error(f"{name}: cannot read as Parquet: {exc}") from None
    state.adopt(pf.schema_arrow.names, name, "column")
    rows = max(1, pf.metadata.num_rows)
    start = 0
    for batch in pf.iter_batches(batch_size=_CHUNK):
        state.consumed = total * (start + batch.num_rows) // rows
        yield "record", range(start, start + batch.num_rows), batch
        start += batch.num_rows


def _read_header_file(args: argparse.Namespace) -> bytes:
    """``--header FILE``'s bytes, checked against ``--offset`` when given
    (the header size the matching ``decode --offset`` skips)."""
    if args.header is None:
        if args.offset is not None:
            raise _Usage("--offset on encode checks the size of a --header FILE: give --header too")
        return b""
    try:
        with open(args.header, "rb") as fh:
            header = fh.read()
    except OSError as exc:
        raise Error(f"cannot open header {args.header}: {exc.strerror or exc}") from None
    if args.offset is not None and len(header) != args.offset:
        raise Error(f"header {args.header}: holds {len(header)} bytes, but --offset is {args.offset}")
    return header


def _cmd_encode(args: argparse.Namespace) -> int:
    s = _struct(args)
    kind = _input_kind(args.input, args.input_format)
    text = args.text or []
    if args.names is not None:
        _check_text_fields(s, text, "csv")  # else once the input's own names are known
    if text and kind == "npy":
        raise _Usage("--text does not apply to .npy input (it holds bytes, not text)")
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise _Usage("parquet input needs pyarrow: pip install 'binrec[arrow]'") from None
    header = _read_header_file(args)
    state = _EncodeInput(s, args.names is not None, text)
    src, name, size = _open_input(args.input, _storage_options(args))
    to_stdout = args.output == "-"
    bar = _progress(size, args.quiet, "encode")
    try:
        with (
            contextlib.nullcontext(sys.stdout.buffer)
            if to_stdout
            else _output_file(args.output, _storage_options(args)) as out_fh
        ):
            out_fh.write(header)
            total = 0
            fast = None
            if kind == "csv" and not to_stdout and size is not None and out_fh.seekable() and _arrow_csv_ok():
                # its output is undone when it gives up: a file it can seek in
                fast_state = _EncodeInput(s, args.names is not None, text)
                fast = _encode_csv_with_arrow(fast_state, src, name, out_fh, args.encoding, bar)
            elif kind == "jsonl" and not to_stdout and size is not None and out_fh.seekable() and _arrow_json_ok():
                fast_state = _EncodeInput(s, args.names is not None, text)
                fast = _encode_csv_with_arrow(
                    fast_state, src, name, out_fh, args.encoding, bar, blocks=_arrow_jsonl_blocks
                )
            for unit, numbers, rows in () if fast is not None else _encode_batches(state, src, name, kind):
                try:
                    out_fh.write(state.s.pack(rows, encoding=args.encoding))
                except Error as exc:
                    m = re.search(r"row (\d+)", str(exc))
                    if m:
                        raise Error(f"{name}: {unit} {numbers[int(m.group(1))]}: {exc}") from None
                    raise Error(f"{name}: {exc}") from None
                total += len(rows)
                if bar is not None:
                    bar.update(state.consumed - bar.n)
            total += fast or 0
            out_fh.flush()
    finally:
        if bar is not None:
            bar.close()
        if src is not sys.stdin.buffer:
            src.close()
    if not args.quiet:
        where = "<stdout>" if to_stdout else args.output
        extra = f" after a {len(header)}-byte header" if header else ""
        print(f"binrec: wrote {_plural(total, 'record')} ({total * s.size} bytes){extra} to {where}", file=sys.stderr)
    return 0


# -- frames ---------------------------------------------------------------------

_FRAMES_EXIT_STATUS = """exit status:
  0  success
  1  data error: an input that cannot be opened or read, a bad frame (a
     length past the end or above max_length, an unknown tag, a body that
     does not fit its format, a partial frame at the end), an output that
     cannot be written
  2  usage error: bad arguments (a SPEC that cannot be read or is not a
     framing with formats, --to parquet without pyarrow)
  130 interrupted (Ctrl-C); 143 terminated (SIGTERM)
Errors are one line on stderr; the outputs are then not written at all."""

_FRAMES_EXT = {"parquet": ".parquet", "npy": ".npy", "csv": ".csv", "jsonl": ".jsonl"}


def _load_framing(path: str) -> Framing:
    """The framing of a SPEC file (``Framing.to_json``'s document): any
    problem with it is a usage error, as a bad format is for decode."""
    from .framing import Framing

    try:
        with open(path, "rb") as fh:
            document = fh.read()
    except OSError as exc:
        raise _Usage(f"cannot read the framing spec {path}: {exc.strerror or exc}") from None
    try:
        framing = Framing.from_json(document)
    except (Error, TypeError, ValueError, KeyError) as exc:
        raise _Usage(f"{path}: not a framing spec: {exc}") from None
    if framing.formats is None:
        raise _Usage(f"{path}: the framing has no formats: nothing to decode bodies with")
    return framing


def _frames_file_stem(tag: Any) -> str:
    """The output name of one type: ``frames`` without a tag, the value of
    an integer tag, the hex code of a ``c`` tag then its letter or digit
    (``41_A``, ``68_h``: names that differ in case only would collide on
    case-insensitive file systems)."""
    if tag is None:
        return "frames"
    if isinstance(tag, bytes):
        char = tag.decode("latin-1")
        return f"{tag[0]:02x}_{char}" if char.isascii() and char.isalnum() else f"{tag[0]:02x}"
    return str(tag)


def _cmd_frames(args: argparse.Namespace) -> int:
    framing = _load_framing(args.spec)
    kind = args.to
    if kind is None:
        kind = "parquet" if have_arrow() else "csv"
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise _Usage("parquet output needs pyarrow: pip install 'binrec[arrow]' (or --to csv)") from None
    formats = framing.formats
    assert formats is not None  # _load_framing refuses a framing without
    bodies = formats if isinstance(formats, dict) else {None: formats}
    structs = {tag: Struct(body.format + "q", [*body.names, "_frame"]) for tag, body in bodies.items()}
    if kind == "parquet":
        for s in structs.values():
            for f in s.layout.fields:
                if f.kind == "complex":
                    raise Error(f"field {f.name!r}: Arrow has no complex type")
    src, where, _ = _open_input(args.input)
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as exc:
        raise Error(f"cannot create {args.output}: {exc.strerror or exc}") from None
    try:
        with contextlib.ExitStack() as outputs:
            writers: dict[Any, _Writer] = {}
            try:
                runs = framing.iter_unpack(
                    src, chunk_size=_CHUNK, offset=args.offset, trailing=args.trailing, unknown=args.unknown
                )
                for run in runs:
                    assert not isinstance(run, bytes)  # only trailing="return" yields bytes
                    tables = run if isinstance(run, dict) else {None: run}
                    for tag, rows in tables.items():
                        writer = writers.get(tag)
                        if writer is None:
                            path = os.path.join(args.output, _frames_file_stem(tag) + _FRAMES_EXT[kind])
                            fh = outputs.enter_context(_output_file(path))
                            writer = writers[tag] = _WRITERS[kind](fh, structs[tag], [])
                        s = structs[tag]
                        try:
                            writer.write(rows if rows.dtype == s.dtype else rows.astype(s.dtype))
                        except Error as exc:
                            raise Error(f"{where}: {exc}") from None
            except BaseException:
                for writer in writers.values():
                    writer.abort()
                raise
            for writer in writers.values():
                writer.close()
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    return 0


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _positive_int(value: str) -> int:
    """--row-group-size: a whole number of rows, at least 1 (a usage error otherwise)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def _encoding(value: str) -> str:
    """--encoding: a codec Python knows (a usage error otherwise)."""
    import codecs

    try:
        return codecs.lookup(value).name
    except LookupError:
        raise argparse.ArgumentTypeError(f"unknown encoding {value!r}") from None


_FORMAT_HELP = "struct format; quote it for the shell, e.g. binrec info '>I10sf' (an unquoted > is a redirect)"

_MAIN_EXIT_STATUS = """exit status:
  0  success
  1  data error: an input that cannot be read, bad or partial records, a
     value that does not fit its field, an output that cannot be written
  2  usage error: bad arguments
  130 interrupted (Ctrl-C); 143 terminated (SIGTERM)
  binrec pickle inspect: 0 safe, 1 unsafe, 3 empty, 4 unreadable
Errors are one line on stderr; a file output is then not written at all."""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(
        prog="binrec",
        description="Binary records <-> numpy, from the shell.",
        epilog=_MAIN_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"binrec {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="write a sample sensor file, decode it, compare with struct")
    d.add_argument("--records", type=int, default=1_000_000, help="records to generate (default 1,000,000)")
    d.add_argument("--head", type=int, default=5, help="rows to print")
    d.add_argument(
        "--repeat", type=_positive, default=5, help="timed runs of each decoder; the median is reported (default 5)"
    )
    d.set_defaults(func=_cmd_demo, usage_parser=d)  # usage errors print this parser's usage
    i = sub.add_parser(
        "info",
        help="describe a struct format (and a record file: how many records, whether it ends cleanly)",
        epilog=_MAIN_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("format", help=_FORMAT_HELP)
    i.add_argument("file", nargs="?", default=None, help="a record file (or - for standard input) to count records in")
    i.add_argument("--names", default=None, help="field names, comma or space separated")
    i.add_argument("--offset", type=int, default=0, help="header bytes before the first record of FILE")
    _add_storage_option(i)
    i.set_defaults(func=_cmd_info, usage_parser=i)  # usage errors print this parser's usage
    dec = sub.add_parser(
        "decode",
        help="decode a record file to .csv, .jsonl, .npy or .parquet (stdout: CSV)",
        epilog=_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dec.add_argument("format", help=_FORMAT_HELP)
    dec.add_argument("input", help="record file or fsspec URL (s3://bucket/key.bin), or - for standard input")
    dec.add_argument("-o", "--output", default=None, help="output file or fsspec URL; its extension picks the format")
    dec.add_argument("--names", default=None, help="field names, comma or space separated")
    dec.add_argument("--offset", type=int, default=0, help="header bytes to skip")
    dec.add_argument(
        "--save-header",
        default=None,
        metavar="FILE",
        help="write the --offset bytes skipped to FILE (encode --header FILE puts them back)",
    )
    limit = dec.add_mutually_exclusive_group()
    limit.add_argument("--count", type=int, default=None, help="decode exactly N records (error if fewer)")
    limit.add_argument("--head", type=int, default=None, help="decode at most the first N records")
    dec.add_argument(
        "--trailing",
        choices=("error", "ignore"),
        default="error",
        help="a partial record at the end, when reached: an error (default) or dropped",
    )
    dec.add_argument(
        "--text",
        nargs="+",
        default=None,
        metavar="FIELD",
        help="string fields to decode as text (--encoding, default ASCII), padding stripped; other string fields are written as Latin-1",
    )
    dec.add_argument(
        "--encoding", type=_encoding, default="ascii", help="codec of the --text fields (default ascii), e.g. utf-8"
    )
    dec.add_argument(
        "--row-group-size",
        type=_positive_int,
        default=_ParquetWriter.row_group_size,
        metavar="ROWS",
        help="rows per Parquet row group (default %(default)s, as pyarrow); memory holds about this many rows",
    )
    dec.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_storage_option(dec)
    dec.set_defaults(func=_cmd_decode, usage_parser=dec)  # usage errors print this parser's usage
    fr = sub.add_parser(
        "frames",
        help="decode a framed stream (pcap, ITCH, TFRecord...) into one output file per frame type",
        epilog=_FRAMES_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fr.add_argument("spec", help="the framing: a JSON file as binrec.Framing.to_json writes")
    fr.add_argument("input", help="framed file, or - for standard input")
    fr.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the outputs (made if missing)")
    fr.add_argument(
        "--to",
        choices=tuple(_FRAMES_EXT),
        default=None,
        help="output format (default parquet, or csv without pyarrow); files are named by tag: 41_A.parquet...",
    )
    fr.add_argument("--offset", type=int, default=0, help="header bytes before the first frame (pcap: 24)")
    fr.add_argument(
        "--unknown",
        choices=("error", "skip"),
        default="error",
        help="a frame whose tag has no format: an error (default) or dropped",
    )
    fr.add_argument(
        "--trailing",
        choices=("error", "ignore"),
        default="error",
        help="a partial frame at the end: an error (default) or dropped",
    )
    fr.set_defaults(func=_cmd_frames, usage_parser=fr)  # usage errors print this parser's usage
    enc = sub.add_parser(
        "encode",
        help="encode a .csv, .jsonl, .npy or .parquet file into records, with struct's range checks",
        epilog=_ENCODE_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    enc.add_argument("format", help=_FORMAT_HELP)
    enc.add_argument(
        "input", help="a .csv, .jsonl, .npy or .parquet file, or - for standard input (CSV unless --input-format)"
    )
    enc.add_argument("-o", "--output", required=True, help="record file to write, or - for standard output")
    enc.add_argument(
        "--names",
        default=None,
        help="field names: CSV columns and JSONL keys are matched by name, in any order "
        "(default: the CSV header or the first JSONL object, in field order)",
    )
    enc.add_argument(
        "--header", default=None, metavar="FILE", help="bytes to write before the records (decode --save-header)"
    )
    enc.add_argument(
        "--offset", type=int, default=None, help="the --header FILE's size in bytes (checked: an error if it differs)"
    )
    enc.add_argument(
        "--text",
        nargs="+",
        default=None,
        metavar="FIELD",
        help="string fields whose values are text in --encoding (other string fields are Latin-1, as decode writes them)",
    )
    enc.add_argument("--encoding", type=_encoding, default="ascii", help="codec of the --text fields (default ascii)")
    enc.add_argument(
        "--input-format",
        choices=("csv", "jsonl", "npy", "parquet"),
        default=None,
        help="the input's format (default: from its extension; CSV for -)",
    )
    enc.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary line")
    _add_storage_option(enc)
    enc.set_defaults(func=_cmd_encode, usage_parser=enc)  # usage errors print this parser's usage
    pk = sub.add_parser("pickle", help="pickle tools")
    pk_sub = pk.add_subparsers(dest="pickle_command", required=True)
    pi = pk_sub.add_parser(
        "inspect",
        help="what a pickle would import and call, without running it (exit 0 safe, 1 unsafe, 3 empty, 4 unreadable)",
        description="Read a pickle (or a stream of them) the way the unpickler would, without running it.",
        epilog=_PICKLE_INSPECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pi.add_argument("file", help="pickle file, or - for standard input")
    pi.add_argument("--json", action="store_true", help="machine-readable output")
    pi.set_defaults(func=_cmd_pickle_inspect, usage_parser=pi)  # usage errors print this parser's usage
    return p


class _Terminated(BaseException):
    """Raised by the SIGTERM handler: unwinds like KeyboardInterrupt, so
    temporary files are removed on the way out."""


#: set by the SIGINT and SIGTERM handlers: an output file is never
#: committed once one arrived, even where a library swallowed the exception
#: it raised (pyarrow's lazy pandas import can)
_signalled = 0  # the signal's number
_SIGINT = int(signal.SIGINT)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _signalled
    _signalled = signum
    raise _Terminated


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _signalled
    _signalled = signum
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    import threading

    global _signalled
    _signalled = 0
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, _on_sigint)
        if hasattr(signal, "SIGTERM") and os.name == "posix":
            previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(argv)
    except _Terminated:
        print("binrec: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        for opt in ("offset", "count", "head"):
            value = getattr(args, opt, None)
            if value is not None and value < 0:
                raise _Usage(f"--{opt} must be >= 0")
        status: int = args.func(args)
        return status
    except _Usage as exc:
        args.usage_parser.print_usage(sys.stderr)  # the subcommand's usage, as argparse's own errors print
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
