"""Spark data source (``pip install 'binrec[spark]'``): record files as a
Spark DataFrame, read by PySpark 4's Python data source API.

>>> import binrec.spark                                   # doctest: +SKIP
>>> binrec.spark.register(spark)                          # doctest: +SKIP
>>> df = (spark.read.format("binrec")                     # doctest: +SKIP
...       .option("format", ">I10sf").option("names", "id name temp")
...       .option("offset", 16).load("logs/*.bin"))

Each Spark partition is a record-aligned byte range of one file (as in
:mod:`binrec.dask`), decoded on the executor by the same codec as
:meth:`binrec.Struct.read_file` and handed to Spark as Arrow record
batches, so the values equal ``read_file``'s.  The schema follows from the
format (see :func:`spark_schema`).

PySpark is imported here, not by ``import binrec``.  Without it the classes
still import (their docs and examples need only pyarrow), but there is no
Spark session to register them with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import Error
from ._fs import FileEntry, expand, iter_ranges
from ._layout import Field
from ._text import text_fields
from .files import file_offset, file_span, unpack_table
from .records import Struct

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

try:
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
except ImportError:  # pragma: no cover - exercised without pyspark
    # Stand-ins with the same constructor, so the module imports (and its
    # examples run) without the extra; Spark itself needs the real ones.
    class DataSource:  # type: ignore[no-redef]
        def __init__(self, options: Any) -> None:
            self.options = options

    class DataSourceReader:  # type: ignore[no-redef]
        pass

    @dataclass
    class InputPartition:  # type: ignore[no-redef]
        value: Any


__all__ = ["BinrecDataSource", "BinrecReader", "register", "spark_schema"]

#: the name the source is registered under: spark.read.format("binrec")
NAME = "binrec"
#: target bytes of record data per Spark partition when no blocksize is given
DEFAULT_BLOCKSIZE = 64 << 20
#: bytes of records decoded into one Arrow batch (bounds an executor's memory)
BATCH_BYTES = 8 << 20

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
_SIZE = re.compile(r"\s*(\d+)\s*([a-z]*)\s*", re.IGNORECASE)


def _parse_blocksize(value: str) -> int:
    """``"64MiB"``, ``"100MB"`` or a number of bytes, as a positive int."""
    match = _SIZE.fullmatch(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS or int(match.group(1)) <= 0:
        raise Error(f"binrec data source: option blocksize={value!r} is not a size such as 64MiB, 100MB or 1048576")
    return int(match.group(1)) * _UNITS[unit]


def _split_names(value: str | None) -> list[str]:
    return [n for n in re.split(r"[\s,]+", value) if n] if value else []


# -- types -----------------------------------------------------------------------

# Spark has no unsigned integers: each unsigned width widens to the next
# signed one, and uint64 to DECIMAL(20,0), the smallest exact type.
_INT_TYPES = {
    ("i", 1): ("tinyint", "int8"),
    ("i", 2): ("smallint", "int16"),
    ("i", 4): ("int", "int32"),
    ("i", 8): ("bigint", "int64"),
    ("u", 1): ("smallint", "int16"),
    ("u", 2): ("int", "int32"),
    ("u", 4): ("bigint", "int64"),
    ("u", 8): ("decimal(20,0)", "decimal(20,0)"),
}
_FLOAT_TYPES = {2: ("float", "float32"), 4: ("float", "float32"), 8: ("double", "float64")}


def _column_type(f: Field, text: bool) -> tuple[str, str]:
    """(Spark SQL type, Arrow type name) of one field."""
    kind = f.native.kind
    if f.is_string:
        return ("string", "string") if text else ("binary", "binary")
    if kind == "b":
        return "boolean", "bool"
    if kind in "iu":
        return _INT_TYPES[kind, f.native.itemsize]
    if kind == "f":
        return _FLOAT_TYPES[f.native.itemsize]
    raise Error(f"field {f.name!r} (format {f.code!r}): Spark has no {f.kind} type; binrec cannot read it as a column")


def _columns(struct: Struct, text: list[str]) -> list[tuple[str, str, str]]:
    """(name, Spark type, Arrow type) for each field; ``text`` fields are
    checked to exist and to be string fields."""
    text_fields(struct.layout, text, struct.layout.fields)  # unknown or non-string names: binrec.Error
    return [(f.name, *_column_type(f, f.name in text)) for f in struct.layout.fields]


def spark_schema(
    format: str | Struct, names: str | Sequence[str] | None = None, *, text: str | Sequence[str] = ()
) -> str:
    """The Spark schema of a record format, as a DDL string.

    - ``b h i q`` (and ``l n`` by size): TINYINT, SMALLINT, INT, BIGINT
    - ``B H I`` (and ``L`` by size): widened to SMALLINT, INT, BIGINT (Spark
      has no unsigned types); ``Q N P``: DECIMAL(20,0)
    - ``e f``: FLOAT; ``d``: DOUBLE; ``?``: BOOLEAN
    - ``c s p``: BINARY, or STRING for ``text`` fields
    - ``F D`` (complex): refused, Spark has no complex type

    Parameters
    ----------
    format : str or Struct
        The record format.
    names : str or list of str, optional
        Field names (with a format string), as for :class:`binrec.Struct`.
    text : str or list of str
        String fields to read as STRING (decoded) instead of BINARY.

    Returns
    -------
    str
        ``"`id` BIGINT, ..."``: what :meth:`BinrecDataSource.schema` gives Spark.

    Raises
    ------
    binrec.Error
        A bad format, an unknown or non-string ``text`` field, or a
        complex field.

    Examples
    --------
    >>> from binrec.spark import spark_schema
    >>> spark_schema(">I10sf", "id name temp")
    '`id` BIGINT, `name` BINARY, `temp` FLOAT'
    >>> spark_schema("<Qc?", "n flag ok", text="flag")
    '`n` DECIMAL(20,0), `flag` STRING, `ok` BOOLEAN'
    """
    struct = format if isinstance(format, Struct) else Struct(format, names)
    chosen = [text] if isinstance(text, str) else list(text)
    return ", ".join(f"`{name.replace('`', '``')}` {sql.upper()}" for name, sql, _ in _columns(struct, chosen))


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    if name == "decimal(20,0)":
        return pa.decimal128(20, 0)
    return pa.type_for_alias(name)


# -- the source ----------------------------------------------------------------------


@dataclass(frozen=True)
class _RecordRange:
    """One Spark partition: ``count`` records of ``file`` starting at byte
    ``offset`` (never a partial record, never two files).  Pickled to the
    executors, the file's fsspec filesystem (and its storage options) with it."""

    file: FileEntry
    offset: int
    count: int


class _Options:
    """The options of one ``spark.read.format("binrec")`` call, checked."""

    def __init__(self, options: Mapping[str, str]) -> None:
        options = {k.lower(): v for k, v in options.items()}  # Spark's own map is case-insensitive
        if not options.get("format"):
            raise Error('binrec data source: no record format: add .option("format", ...), e.g. ">I10sf"')
        self.struct = Struct(options["format"], options.get("names") or None)
        self.text = _split_names(options.get("text"))
        self.encoding = options.get("encoding", "ascii")
        self.offset = file_offset(_int_option(options, "offset", 0), "binrec data source")
        blocksize = options.get("blocksize")
        self.blocksize = DEFAULT_BLOCKSIZE if blocksize is None else _parse_blocksize(blocksize)
        self.paths = _paths(options)
        self.storage_options = _storage_options(options)
        self.columns = _columns(self.struct, self.text)


def _int_option(options: Mapping[str, str], key: str, default: int) -> int:
    value = options.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise Error(f"binrec data source: option {key}={value!r} is not an integer") from None


def _paths(options: Mapping[str, str]) -> list[str]:
    """``load(path)`` arrives as option ``path``, ``load([a, b])`` as a JSON
    list in ``paths``."""
    paths = json.loads(options["paths"]) if options.get("paths") else []
    if options.get("path"):
        paths.insert(0, options["path"])
    return [str(p) for p in paths]


def _storage_options(options: Mapping[str, str]) -> dict[str, Any]:
    raw = options.get("storage_options")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise Error(f"binrec data source: option storage_options is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Error("binrec data source: option storage_options must be a JSON object")
    return value


def _ranges(options: Mapping[str, str]) -> list[_RecordRange]:
    """The partitions of one read: each file cut into record-aligned ranges
    of about ``blocksize`` bytes (an empty file gives none)."""
    opts = _Options(options)
    size = opts.struct.size
    per_part = max(1, opts.blocksize // size)
    if not opts.paths:
        raise Error("binrec data source: no path: pass one to .load(path)")
    ranges: list[_RecordRange] = []
    for entry in expand(opts.paths, opts.storage_options or None):
        n = file_span(opts.struct, entry.size, opts.offset, None, entry.url)
        for start in range(0, n, per_part):
            ranges.append(_RecordRange(entry, opts.offset + start * size, min(per_part, n - start)))
    return ranges


class BinrecReader(DataSourceReader):  # type: ignore[misc]  # pyspark is read as Any (pyproject.toml)
    """Reads the partitions of one ``spark.read.format("binrec")`` call.

    Made by :meth:`BinrecDataSource.reader`; Spark pickles it to the
    executors, which call :meth:`read` once per partition.

    Parameters
    ----------
    options : mapping of str to str
        The data source's options (see :class:`BinrecDataSource`).

    Examples
    --------
    >>> import os, tempfile
    >>> import binrec
    >>> from binrec.spark import BinrecReader
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "a.bin")
    ...     _ = binrec.Struct("<hd").write_file(path, [(i, i / 2) for i in range(5)])
    ...     reader = BinrecReader({"format": "<hd", "names": "n x", "path": path, "blocksize": "20"})
    ...     parts = reader.partitions()
    ...     print([p.value.count for p in parts], [b.num_rows for b in reader.read(parts[0])])
    [2, 2, 1] [2]
    """

    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = dict(options)
        opts = _Options(self.options)  # a bad option fails here, on the driver
        self.struct = opts.struct
        self.text = opts.text
        self.encoding = opts.encoding

    def partitions(self) -> list[InputPartition]:
        """The record-aligned byte ranges to read, one per Spark task.

        Returns
        -------
        list of InputPartition
            Each one's ``value`` a record range: file, byte offset of its
            first record, record count.

        Raises
        ------
        binrec.Error
            A file whose length after ``offset`` is not a whole number of
            records (the message names the file).
        FileNotFoundError, IsADirectoryError
            A missing path, a glob that matches nothing, a directory.
        OSError, ValueError
            The filesystem of a URL refused (credentials, a missing
            bucket: the message names the URL); ``storage_options`` with a
            local path.

        Examples
        --------
        >>> import os, tempfile
        >>> import binrec
        >>> from binrec.spark import BinrecReader
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = binrec.Struct("<i").write_file(os.path.join(folder, "a.bin"), [(i,) for i in range(10)])
        ...     reader = BinrecReader({"format": "<i", "path": os.path.join(folder, "*.bin"), "blocksize": "16"})
        ...     print([(p.value.offset, p.value.count) for p in reader.partitions()])
        [(0, 4), (16, 4), (32, 2)]
        """
        return [InputPartition(r) for r in _ranges(self.options)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        """Decode one partition into Arrow record batches (of about 8 MiB
        of records each), typed as :func:`spark_schema` says.

        Parameters
        ----------
        partition : InputPartition
            One of :meth:`partitions`.

        Returns
        -------
        iterator of pyarrow.RecordBatch

        Raises
        ------
        OSError
            The file is shorter than planned (it shrank), or the filesystem
            failed; the message names the file.

        Examples
        --------
        >>> import os, tempfile
        >>> import binrec
        >>> from binrec.spark import BinrecReader
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "a.bin")
        ...     _ = binrec.Struct("<H3s").write_file(path, [(1, b"ab"), (65535, b"xyz")])
        ...     reader = BinrecReader({"format": "<H3s", "names": "n tag", "path": path, "text": "tag"})
        ...     batch = next(reader.read(reader.partitions()[0]))
        ...     print(batch.to_pydict(), batch.schema.types)
        {'n': [1, 65535], 'tag': ['ab', 'xyz']} [DataType(int32), DataType(string)]
        """
        import pyarrow as pa

        part: _RecordRange | None = partition.value
        if part is None:  # no ranges (empty files): Spark reads one InputPartition(None)
            return
        schema = pa.schema([(name, _arrow_type(arrow)) for name, _, arrow in _Options(self.options).columns])
        size = self.struct.size
        stop = part.offset + part.count * size
        # pieces of whole records; on object storage a few ranged requests in flight
        for raw in iter_ranges(part.file, part.offset, stop, piece=BATCH_BYTES, align=size):
            table = unpack_table(self.struct, raw, text=self.text or None, encoding=self.encoding)
            yield from table.cast(schema).to_batches()


class BinrecDataSource(DataSource):  # type: ignore[misc]  # pyspark is read as Any (pyproject.toml)
    """The ``"binrec"`` Spark data source: register it with :func:`register`
    (or ``spark.dataSource.register(BinrecDataSource)``), then
    ``spark.read.format("binrec")``.

    Options (strings, as Spark passes them):

    ``format`` (required), ``names``
        The record format and field names, as for :class:`binrec.Struct`.
    ``offset``
        Header bytes to skip at the start of every file (default 0).
    ``blocksize``
        Target bytes per partition: ``64MiB`` (the default), ``100MB``,
        or a number of bytes.  A partition never splits a record or
        spans two files.
    ``text``, ``encoding``
        String fields (space or comma separated) to read as STRING, decoded
        with ``encoding`` (default ascii); the others are BINARY.

    ``load()`` takes a path, a glob, or a list of them.

    Parameters
    ----------
    options : mapping of str to str
        Filled in by Spark from ``.option()`` and ``.load()``.

    Examples
    --------
    >>> from binrec.spark import BinrecDataSource
    >>> BinrecDataSource.name()
    'binrec'
    >>> BinrecDataSource({"format": ">I10sf", "names": "id name temp"}).schema()
    '`id` BIGINT, `name` BINARY, `temp` FLOAT'
    """

    @classmethod
    def name(cls) -> str:
        """The format name, ``"binrec"``.

        Returns
        -------
        str

        Examples
        --------
        >>> from binrec.spark import BinrecDataSource
        >>> BinrecDataSource.name()
        'binrec'
        """
        return NAME

    def schema(self) -> str:
        """The schema, derived from the format (see :func:`spark_schema`).

        Returns
        -------
        str
            A DDL string.

        Raises
        ------
        binrec.Error
            A missing or bad ``format``, or another bad option.

        Examples
        --------
        >>> from binrec.spark import BinrecDataSource
        >>> BinrecDataSource({"format": "<hd"}).schema()
        '`f0` SMALLINT, `f1` DOUBLE'
        """
        opts = _Options(self.options)
        return spark_schema(opts.struct, text=opts.text)

    def reader(self, schema: Any) -> BinrecReader:
        """A reader for these options.

        Parameters
        ----------
        schema : pyspark.sql.types.StructType
            What Spark will expect: the derived schema, or one the user set
            with ``spark.read.schema(...)``, which must have the same field
            names and types (None: no check).

        Returns
        -------
        BinrecReader

        Raises
        ------
        binrec.Error
            A user schema that differs from the derived one.

        Examples
        --------
        >>> from binrec.spark import BinrecDataSource
        >>> BinrecDataSource({"format": "<hd", "path": "a.bin"}).reader(None).struct
        binrec.Struct('<hd', names=('f0', 'f1'))
        """
        reader = BinrecReader(self.options)
        if schema is not None:
            _check_user_schema(schema, _Options(self.options).columns)
        return reader


def _check_user_schema(schema: Any, columns: list[tuple[str, str, str]]) -> None:
    """Spark hands a user's ``.schema(...)`` to the reader instead of asking
    for ours; the Arrow batches must match it, so it must be ours."""
    given = [(f.name, f.dataType.simpleString()) for f in schema.fields]
    wanted = [(name, sql) for name, sql, _ in columns]
    if given != wanted:
        raise Error(
            "binrec data source: the schema follows from the format ("
            + ", ".join(f"{n} {t}" for n, t in wanted)
            + "); a different one was given ("
            + ", ".join(f"{n} {t}" for n, t in given)
            + "): leave .schema() out and select or cast the columns instead"
        )


def register(spark: Any) -> None:
    """Register :class:`BinrecDataSource` with a Spark session, so that
    ``spark.read.format("binrec")`` reads record files.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The session.

    Examples
    --------
    >>> import binrec.spark
    >>> binrec.spark.register(spark)  # doctest: +SKIP
    >>> spark.read.format("binrec").option("format", "<hd").load("a.bin")  # doctest: +SKIP
    DataFrame[f0: smallint, f1: double]
    """
    spark.dataSource.register(BinrecDataSource)
