"""Dask integration (``pip install 'binrec[dask]'``): record files too big
for one machine, decoded in parallel partitions.

Each partition is a byte range of one file, cut on record boundaries, read
with a seek and decoded by the same codec as everywhere else, so the result
equals :meth:`binrec.Struct.read_file` on the same files.  Dask is imported
lazily: ``import binrec`` never needs it.
"""

from __future__ import annotations

import glob
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from ._compat import renamed_keywords
from ._errors import Error
from .files import file_offset, file_span
from .records import Struct

if TYPE_CHECKING:  # pragma: no cover
    # the optional extra: imported for the annotations only
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

#: one path, or several (each may be a glob pattern)
StrPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

__all__ = ["read_records", "partitions"]


@dataclass(frozen=True)
class Partition:
    path: str
    offset: int  # byte offset of the first record
    count: int  # records


def _import_dask(module: str = "dask.utils") -> Any:
    """Import a dask module, or say how to install it (as binrec does for
    pandas and pyarrow)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f'binrec.dask needs {module}: pip install "binrec[dask]" ({exc})') from exc


def _expand(paths: StrPaths) -> list[str]:
    """Paths and glob matches, in order; every one a regular file (a glob
    skips directories it matches; a directory named outright is an error)."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        item = os.fspath(item)
        if glob.has_magic(item):
            matched = [m for m in sorted(glob.glob(item)) if not os.path.isdir(m)]
            if not matched:
                raise FileNotFoundError(f"no record files match {item!r}")
            out.extend(matched)
        elif os.path.isdir(item):
            raise IsADirectoryError(
                f"{item!r} is a directory, not a record file (to read the files in it, pass a glob such as "
                f"{os.path.join(item, '*.bin')!r})"
            )
        elif not os.path.exists(item):
            raise FileNotFoundError(f"no such record file: {item!r}")
        else:
            out.append(item)
    if not out:
        raise ValueError("no record files given")
    return out


def _parse_blocksize(blocksize: int | str) -> int:
    if isinstance(blocksize, str):
        _import_dask()
        from dask.utils import parse_bytes

        return int(parse_bytes(blocksize))
    return int(blocksize)


@renamed_keywords(s="struct")
def partitions(paths: StrPaths, struct: Struct, *, offset: int = 0, blocksize: int | str = "64MiB") -> list[Partition]:
    """Cut every file into record-aligned byte ranges of about ``blocksize``.

    Parameters
    ----------
    paths : path, glob pattern, or list of them
        The record files (a glob matches files only, in sorted order).
    struct : Struct
        The record layout.
    offset : int
        Header bytes to skip at the start of every file.
    blocksize : int or str
        Target bytes per partition (``"64MiB"``; a string needs dask to
        parse it).  A partition holds at least one record.

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
    for path in _expand(paths):
        n = file_span(struct, os.path.getsize(path), offset, None, path)
        if n == 0:
            parts.append(Partition(path, offset, 0))
        for start in range(0, n, per_block):
            parts.append(Partition(path, offset + start * struct.size, min(per_block, n - start)))
    return parts


def _read_part(part: Partition, struct: Struct) -> np.ndarray:
    if part.count == 0:
        return np.empty(0, dtype=struct.dtype)
    return struct.read_file(part.path, offset=part.offset, count=part.count)


def _frame_part(part: Partition, struct: Struct, text: Any) -> pd.DataFrame:
    import pandas as pd

    with open(part.path, "rb") as fh:
        fh.seek(part.offset)
        raw = fh.read(part.count * struct.size)
    if len(raw) != part.count * struct.size:
        raise Error(f"{part.path}: file shrank while reading records at byte offset {part.offset}")
    return pd.DataFrame(struct.unpack_columns(raw, text=text), copy=False)


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
) -> dd.DataFrame | da.Array:
    """Read record files as a ``dask.dataframe.DataFrame`` (or, with
    ``to_array=True``, a 1-D ``dask.array`` of the structured dtype).

    Each partition is a record-aligned byte range of one file (see
    :func:`partitions`), decoded by the same codec as
    :meth:`binrec.Struct.read_file`, which gives the same values.

    Parameters
    ----------
    paths : path, glob pattern, or list of them
        The record files.
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

    Returns
    -------
    dask.dataframe.DataFrame or dask.array.Array
        Lazy: nothing is read until it is computed.

    Raises
    ------
    binrec.Error
        A file whose length after ``offset`` is not a whole number of
        records (the message names the file), or a negative ``offset``.
    FileNotFoundError, IsADirectoryError
        A path that does not exist, a glob that matches no file, or a
        directory given as a path.
    ImportError
        dask is not installed (``pip install "binrec[dask]"``).

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
    ...     print(frame.npartitions, frame.compute(scheduler="synchronous")["n"].tolist())
    ...     records = binrec_dask.read_records(os.path.join(folder, "*.bin"), s, to_array=True)
    ...     print(records.compute(scheduler="synchronous")["x"].tolist())
    4 [0, 1, 2, 10, 11, 12]
    [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]
    """
    _import_dask()
    s = format if isinstance(format, Struct) else Struct(format, names)
    parts = partitions(paths, s, offset=offset, blocksize=blocksize)
    if to_array:
        _import_dask("dask.array")
        import dask
        import dask.array as da

        chunks = [da.from_delayed(dask.delayed(_read_part)(p, s), shape=(p.count,), dtype=s.dtype) for p in parts]
        return da.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    _import_dask("dask.dataframe")
    import dask
    import dask.dataframe as dd
    import pandas as pd

    meta = pd.DataFrame(s.unpack_columns(b"", text=text), copy=False)
    # Dask's default string conversion would decode bytes fields as UTF-8
    # (and fail on other bytes); binrec keeps them as bytes, as read_file
    # does, and text= fields as str.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(_frame_part, parts, struct=s, text=text, meta=meta, divisions=None, enforce_metadata=False)
