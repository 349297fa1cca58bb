"""Dask integration (``pip install 'binrec[dask]'``): record files too big
for one machine, decoded in parallel partitions.

Each partition is a byte range of one file, cut on record boundaries and
decoded by the same codec as everywhere else, so the result equals
:meth:`binrec.Struct.read_file` on the same files.  Files may be local paths
or any fsspec URL (``s3://bucket/logs/*.bin``, ``memory://``, ``file://``;
``pip install 'binrec[cloud]'`` and the filesystem's own package, such as
s3fs): the client asks the filesystem for each file's size (``info``, never
an open), and each task reads its whole byte range with one ranged request
(a local file: one seek and ``readinto``).

The DataFrame's index is the record number across all the files in sorted
order (named ``_record``), with known divisions: ``ddf.loc[n]`` is record
``n``, ``len(ddf)`` follows from the file sizes without reading a record,
and ``to_parquet`` writes the index as the ``_record`` column.

Dask is imported lazily: ``import binrec`` never needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import _fs
from ._compat import renamed_keywords
from ._errors import Error
from .files import file_offset, file_span
from .framing import FRAME_FIELD, Framing
from .records import Struct

if TYPE_CHECKING:  # pragma: no cover
    # the optional extra: imported for the annotations only
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd


#: one path or URL, or several (each may be a glob pattern)
StrPaths = _fs.StrPaths

#: the name of read_records' index (the record number across the files)
INDEX = "_record"
#: the name of read_frames' index (the file's number in sorted order)
FILE_INDEX = "_file"

__all__ = ["read_records", "read_frames", "partitions"]


@dataclass(frozen=True)
class Partition:
    """A record-aligned byte range of one file: what one task reads."""

    #: the file: a local path or the URL it was given as
    path: str
    #: byte offset of the first record
    offset: int
    #: records in the range
    count: int
    #: the file as found and sized (its filesystem, None for a local file
    #: read with seek and readinto); not part of equality
    entry: _fs.FileEntry | None = field(default=None, compare=False, repr=False)


def _import_dask(module: str = "dask.utils") -> Any:
    """Import a dask module, or say how to install it (as binrec does for
    pandas and pyarrow)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f'binrec.dask needs {module}: pip install "binrec[dask]" ({exc})') from exc


def _parse_blocksize(blocksize: int | str) -> int:
    if isinstance(blocksize, str):
        _import_dask()
        from dask.utils import parse_bytes

        return int(parse_bytes(blocksize))
    return int(blocksize)


@renamed_keywords(s="struct")
def partitions(
    paths: StrPaths,
    struct: Struct,
    *,
    offset: int = 0,
    blocksize: int | str = "64MiB",
    storage_options: dict[str, Any] | None = None,
) -> list[Partition]:
    """Cut every file into record-aligned byte ranges of about ``blocksize``.

    Only the files' sizes are read (the filesystem's ``info``, or a local
    ``stat``): nothing is opened.

    Parameters
    ----------
    paths : path, URL, glob pattern, or list of them
        The record files (a glob matches files only, in sorted order; a URL
        glob is expanded by its filesystem's own glob).
    struct : Struct
        The record layout.
    offset : int
        Header bytes to skip at the start of every file.
    blocksize : int or str
        Target bytes per partition (``"64MiB"``; a string needs dask to
        parse it).  A partition holds at least one record.
    storage_options : dict, optional
        Passed to the fsspec filesystem of URLs (as by Dask and pandas).

    Returns
    -------
    list of Partition
        ``(path, offset, count)`` of each range: byte offset of its first
        record and how many records it holds.  An empty file gets one
        partition of 0 records.

    Raises
    ------
    binrec.Error
        A file whose length after ``offset`` is not a whole number of
        records (the message names the file).
    FileNotFoundError, IsADirectoryError
        As for :func:`read_records`.

    Examples
    --------
    >>> import os, tempfile
    >>> import binrec
    >>> from binrec import dask as binrec_dask
    >>> s = binrec.Struct("<hd")  # 10-byte records
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = s.write_file(os.path.join(folder, "a.bin"), [(i, 0.0) for i in range(5)])
    ...     parts = binrec_dask.partitions(os.path.join(folder, "*.bin"), s, blocksize=20)
    ...     print([(os.path.basename(p.path), p.offset, p.count) for p in parts])
    [('a.bin', 0, 2), ('a.bin', 20, 2), ('a.bin', 40, 1)]
    """
    per_block = max(1, _parse_blocksize(blocksize) // struct.size)
    parts: list[Partition] = []
    offset = file_offset(offset, "binrec.dask")
    for entry in _fs.expand(paths, storage_options):
        n = file_span(struct, entry.size, offset, None, entry.url)
        if n == 0:
            parts.append(Partition(entry.url, offset, 0, entry))
        for start in range(0, n, per_block):
            parts.append(Partition(entry.url, offset + start * struct.size, min(per_block, n - start), entry))
    return parts


def _read_range(part: Partition, nbytes: int) -> Any:
    """The partition's bytes: one ranged request on a filesystem, one seek and
    readinto on a local file."""
    entry = part.entry if part.entry is not None else _fs.stat_entry(part.path)
    if not entry.is_local:
        return _fs.read_range(entry, part.offset, nbytes)  # an OSError naming the URL if it fails or is short
    buf = bytearray(nbytes)
    with open(entry.path, "rb") as fh:
        fh.seek(part.offset)
        got = fh.readinto(buf)
    if got != nbytes:
        raise Error(
            f"{part.path}: the file shrank while its records were read: {got} of {nbytes} bytes "
            f"at byte offset {part.offset}"
        )
    return buf


def _read_part(part: Partition, struct: Struct) -> np.ndarray:
    if part.count == 0:
        return np.empty(0, dtype=struct.dtype)
    return struct.unpack(_read_range(part, part.count * struct.size))


def _frame_part(part: Partition, start: int, struct: Struct, text: Any, index: str) -> pd.DataFrame:
    import pandas as pd

    raw = _read_range(part, part.count * struct.size) if part.count else b""
    return pd.DataFrame(
        struct.unpack_columns(raw, text=text), index=pd.RangeIndex(start, start + part.count, name=index), copy=False
    )


def _records_frame(parts: list[Partition], struct: Struct, text: Any, index: str) -> dd.DataFrame:
    """The DataFrame of ``parts``, indexed by record number, divisions known."""
    import dask
    import dask.dataframe as dd
    import pandas as pd

    meta = pd.DataFrame(struct.unpack_columns(b"", text=text), index=pd.RangeIndex(0, 0, name=index), copy=False)
    total = sum(p.count for p in parts)
    # Divisions must increase: an empty file adds no partition (unless every
    # file is empty, and then there is no record number to divide on).
    kept = [p for p in parts if p.count] or parts[:1]
    starts = np.cumsum([0] + [p.count for p in kept])[:-1].tolist()
    divisions = (*starts, total - 1) if total else (None, None)
    kwargs = {"struct": struct, "text": text, "index": index}
    # Dask's default string conversion would decode bytes fields as UTF-8
    # (and fail on other bytes); binrec keeps them as bytes, as read_file
    # does, and text= fields as str.
    with dask.config.set({"dataframe.convert-string": False}):
        try:
            from dask.dataframe.dask_expr._collection import new_collection

            from ._dask_expr import CountedFromMap
        except ImportError:  # pragma: no cover - a dask whose internals differ: len() reads the partitions
            return dd.from_map(
                _frame_part, kept, starts, meta=meta, divisions=divisions, label="read-records", **kwargs
            )
        return new_collection(
            CountedFromMap(_frame_part, [kept, starts], [], kwargs, meta, False, divisions, "read-records")
        )


@overload
def read_records(
    paths: StrPaths,
    format: str | Struct,
    names: str | Sequence[str] | None = ...,
    *,
    offset: int = ...,
    blocksize: int | str = ...,
    to_array: Literal[False] = ...,
    text: str | Sequence[str] | None = ...,
    index: str = ...,
    storage_options: dict[str, Any] | None = ...,
) -> dd.DataFrame: ...


@overload
def read_records(
    paths: StrPaths,
    format: str | Struct,
    names: str | Sequence[str] | None = ...,
    *,
    offset: int = ...,
    blocksize: int | str = ...,
    to_array: Literal[True],
    text: str | Sequence[str] | None = ...,
    index: str = ...,
    storage_options: dict[str, Any] | None = ...,
) -> da.Array: ...


@overload
def read_records(
    paths: StrPaths,
    format: str | Struct,
    names: str | Sequence[str] | None = ...,
    *,
    offset: int = ...,
    blocksize: int | str = ...,
    to_array: bool,
    text: str | Sequence[str] | None = ...,
    index: str = ...,
    storage_options: dict[str, Any] | None = ...,
) -> dd.DataFrame | da.Array: ...


def read_records(
    paths: StrPaths,
    format: str | Struct,
    names: str | Sequence[str] | None = None,
    *,
    offset: int = 0,
    blocksize: int | str = "64MiB",
    to_array: bool = False,
    text: str | Sequence[str] | None = None,
    index: str = INDEX,
    storage_options: dict[str, Any] | None = None,
) -> dd.DataFrame | da.Array:
    """Read record files as a ``dask.dataframe.DataFrame`` (or, with
    ``to_array=True``, a 1-D ``dask.array`` of the structured dtype).

    Each partition is a record-aligned byte range of one file (see
    :func:`partitions`), read by its task with one ranged request (a local
    file: one seek and ``readinto``) and decoded by the same codec as
    :meth:`binrec.Struct.read_file`, which gives the same values.

    Parameters
    ----------
    paths : path, URL, glob pattern, or list of them
        The record files: local paths or any fsspec URL
        (``"s3://bucket/logs/*.bin"``); globs are expanded by the file's
        filesystem, in sorted order.
    format : str or Struct
        The record format.
    names : str or sequence of str, optional
        Field names, as for :class:`binrec.Struct` (with a format string).
    offset : int
        Header bytes to skip at the start of every file.
    blocksize : int or str
        Target bytes per partition (``"64MiB"``); partitions never split a
        record or span two files.
    to_array : bool
        Return a dask array of structured records instead of a DataFrame.
    text : str or list of str
        String fields to decode to ``str`` (DataFrame only).
    index : str
        Name of the DataFrame's index, the record number counted across
        all the files in order (default ``"_record"``); it must not be a
        field name.  Its divisions are known, so ``ddf.loc[n]`` is record
        ``n`` and ``to_parquet`` stores it as a column of this name.
    storage_options : dict, optional
        Passed to the fsspec filesystem of URLs (credentials, endpoint), as
        by Dask and pandas.

    Returns
    -------
    dask.dataframe.DataFrame or dask.array.Array
        Lazy: nothing is read until it is computed, except the files' sizes
        (the DataFrame's ``len()`` needs nothing more).

    Raises
    ------
    binrec.Error
        A file whose length after ``offset`` is not a whole number of
        records (the message names the file), a negative ``offset``, or an
        ``index`` name that is also a field name.  Reading a range that is
        no longer there (a file that shrank, a server that went away) fails
        the compute with an error naming the file or URL.
    FileNotFoundError, IsADirectoryError
        A path or URL that does not exist, a glob that matches no file, or
        a directory given as a path.
    ImportError
        dask is not installed (``pip install "binrec[dask]"``), or a URL's
        filesystem needs fsspec (``pip install "binrec[cloud]"``) or its own
        package (s3fs for ``s3://``).

    Examples
    --------
    >>> import os, tempfile
    >>> import binrec
    >>> from binrec import dask as binrec_dask
    >>> s = binrec.Struct("<hd", names="n x")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for i in range(2):
    ...         _ = s.write_file(os.path.join(folder, f"part{i}.bin"), [(10 * i + j, j / 2) for j in range(3)])
    ...     frame = binrec_dask.read_records(os.path.join(folder, "*.bin"), "<hd", names="n x", blocksize=20)
    ...     print(frame.npartitions, frame.divisions, len(frame))
    ...     print(frame.compute(scheduler="synchronous")["n"].tolist())
    ...     print(frame.loc[4].compute(scheduler="synchronous")["n"].tolist())
    ...     records = binrec_dask.read_records(os.path.join(folder, "*.bin"), s, to_array=True)
    ...     print(records.compute(scheduler="synchronous")["x"].tolist())
    4 (0, 2, 3, 5, 5) 6
    [0, 1, 2, 10, 11, 12]
    [11]
    [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]
    """
    _import_dask()
    s = format if isinstance(format, Struct) else Struct(format, names)
    if not to_array and index in s.names:
        raise Error(f"index={index!r} is also a field name: pass another name for the record-number index")
    parts = partitions(paths, s, offset=offset, blocksize=blocksize, storage_options=storage_options)
    if to_array:
        _import_dask("dask.array")
        import dask
        import dask.array as da

        chunks = [da.from_delayed(dask.delayed(_read_part)(p, s), shape=(p.count,), dtype=s.dtype) for p in parts]
        return da.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    _import_dask("dask.dataframe")
    return _records_frame(parts, s, text, index)


# -- framed files -------------------------------------------------------------


def _body_struct(framing: Framing, tag_value: Any) -> Struct:
    """The body layout ``framing`` decodes for ``tag_value``."""
    formats = framing.formats
    if formats is None:
        raise Error("this framing has no formats: pass formats= to decode bodies")
    if isinstance(formats, Struct):
        if tag_value is not None:
            raise Error(f"this framing has no tag field: pass tag_value=None, not {tag_value!r}")
        return formats
    if tag_value not in formats:
        raise Error(f"the framing has no format for tag {tag_value!r}: it has formats for {sorted(formats)}")
    return formats[tag_value]


def _frames_part(
    entry: _fs.FileEntry, number: int, framing: str, tag_value: Any, body: Struct, offset: int
) -> pd.DataFrame:
    import pandas as pd

    # the framing travels as its JSON document (a Framing holds struct.Struct
    # readers, which neither pickle nor tokenize)
    raw = _read_local(entry.path) if entry.is_local else _fs.read_range(entry, 0, entry.size)
    try:
        decoded = Framing.from_json(framing).unpack(raw, offset=offset, unknown="skip")
    except Error as exc:
        raise Error(f"{entry.url}: {exc}") from None
    if isinstance(decoded, dict):
        got = decoded.get(tag_value)
        arr = (
            np.empty(0, dtype=[(n, body.dtype[n]) for n in body.names] + [(FRAME_FIELD, np.int64)])
            if got is None
            else got
        )
    else:
        arr = decoded
    columns = {name: arr[name] for name in (*body.names, FRAME_FIELD)}
    return pd.DataFrame(columns, index=pd.Index(np.full(len(arr), number, dtype=np.int64), name=FILE_INDEX), copy=False)


def _read_local(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def read_frames(
    paths: StrPaths,
    framing: Framing,
    tag_value: Any = None,
    *,
    offset: int = 0,
    storage_options: dict[str, Any] | None = None,
) -> dd.DataFrame:
    """Read one type of frame from many framed files as a Dask DataFrame.

    One partition per file: a framed file cannot be split into byte ranges
    without an index of where its frames start (each frame's length is in
    the frame before it), so each task reads and scans one whole file with
    :meth:`binrec.Framing.unpack` and keeps the frames of ``tag_value``.

    Parameters
    ----------
    paths : path, URL, glob pattern, or list of them
        The framed files, as for :func:`read_records`.
    framing : Framing
        The framing (its ``formats`` must have one for ``tag_value``).
    tag_value : int or bytes, optional
        The type to read (``b"A"`` for a ``c`` tag field, an int for an
        integer one); None for a framing without a tag.  Frames of other
        types are skipped, with or without a format.
    offset : int
        Header bytes to skip at the start of every file (pcap: 24).
    storage_options : dict, optional
        Passed to the fsspec filesystem of URLs.

    Returns
    -------
    dask.dataframe.DataFrame
        The body's fields, then ``_frame`` (the frame's position in its
        file's stream), indexed by ``_file``: the file's number among
        ``paths`` in order, with known divisions (``ddf.loc[2]`` is the third
        file's frames).  Bytes fields stay bytes.

    Raises
    ------
    binrec.Error
        A ``tag_value`` the framing has no format for; when computed, a
        corrupt frame (the message names the file, the frame and its byte
        offset).
    FileNotFoundError, IsADirectoryError, ImportError
        As for :func:`read_records`.

    Examples
    --------
    >>> import os, struct, tempfile
    >>> import binrec
    >>> from binrec import dask as binrec_dask
    >>> f = binrec.Framing(">HB", names="n t", length="n", tag="t", formats={1: ">h", 2: ">d"})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for k in range(2):
    ...         with open(os.path.join(folder, f"{k}.log"), "wb") as fh:
    ...             _ = fh.write(struct.pack(">HBh", 2, 1, k) + struct.pack(">HBd", 8, 2, 0.5) + struct.pack(">HBh", 2, 1, -k))
    ...     frame = binrec_dask.read_frames(os.path.join(folder, "*.log"), f, 1)
    ...     print(frame.npartitions, frame.divisions)
    ...     print(frame.compute(scheduler="synchronous").reset_index().values.tolist())
    2 (0, 1, 1)
    [[0, 0, 0], [0, 0, 2], [1, 1, 0], [1, -1, 2]]
    """
    _import_dask("dask.dataframe")
    import dask
    import dask.dataframe as dd
    import pandas as pd

    if not isinstance(framing, Framing):
        raise TypeError(f"framing must be a binrec.Framing, not {type(framing).__name__}")
    body = _body_struct(framing, tag_value)
    offset = file_offset(offset, "binrec.dask.read_frames")
    entries = _fs.expand(paths, storage_options)
    columns = body.unpack_columns(b"")
    columns[FRAME_FIELD] = np.empty(0, dtype=np.int64)
    meta = pd.DataFrame(columns, index=pd.Index(np.empty(0, dtype=np.int64), name=FILE_INDEX), copy=False)
    numbers = list(range(len(entries)))
    kwargs = {"framing": framing.to_json(), "tag_value": tag_value, "body": body, "offset": offset}
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            _frames_part, entries, numbers, meta=meta, divisions=(*numbers, numbers[-1]), label="read-frames", **kwargs
        )
