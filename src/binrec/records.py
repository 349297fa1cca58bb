"""``Struct``: a compiled record layout that decodes and encodes many records.

This module validates every argument (buffer, offset, count, values) and
then hands plain, already-checked work to the chosen kernels, so both
backends share one set of checks and one set of error messages.
"""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import _backend
from ._coerce import DEFAULT_ENCODING, byte_view, coerce_column, native_rows, plain_array, user_values
from ._errors import Error, OverlapError
from ._kernels import PackKind, PackSpec
from ._layout import Field, Layout, build_layout, int_range
from ._text import DEFAULT_STRIP, decode_field, decode_field_at, reads_in_place, text_fields, unpack_text, with_text

if TYPE_CHECKING:  # pragma: no cover
    # optional extras: imported for the annotations only
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "Struct",
    "unpack",
    "unpack_columns",
    "pack",
    "pack_into",
    "calcsize",
    "dtype",
    "Error",
]

#: Below this many bytes a second thread costs more than it saves.
_MIN_BYTES_PER_THREAD = 1 << 20


def _private_copy(buf: memoryview, offset: int, nbytes: int) -> tuple[memoryview, int]:
    """``(copy, 0)``: the ``nbytes`` source bytes at ``offset``, copied.

    The kernels read their input and write their output block by block, so
    an output that shares memory with its own input (in-place decoding, or
    values that live in the ``pack_into`` target) would read bytes already
    overwritten.  Both backends compare the address ranges (O(1)) and raise
    :class:`OverlapError` before writing anything; the caller then runs the
    kernel again on this copy.  Exact in-place decoding therefore works, on
    both backends, at the cost of one copy of the input.
    """
    return memoryview(bytes(buf[offset : offset + nbytes])), 0


def _index(value: Any, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None


def resolve_offset(offset: object, length: int, nbytes: int | None = None, *, packing: bool = False) -> int:
    """``offset`` into an in-memory buffer of ``length`` bytes, as struct's
    ``unpack_from``/``pack_into`` read it: a negative offset counts from the
    end of the buffer.

    Parameters
    ----------
    offset : int
        The offset the user gave (anything with ``__index__``).
    length : int
        Size of the buffer in bytes.
    nbytes : int, optional
        Bytes that will be read or written from the offset, when known: a
        negative offset must leave room for them before the end.
    packing : bool
        Word the error as ``pack_into`` does (else as ``unpack_from``).

    Returns
    -------
    int
        The offset from the start of the buffer (>= 0; it may still be past
        the end: the caller checks the span it needs).

    Raises
    ------
    TypeError
        ``offset`` is not an integer.
    binrec.Error
        With struct's messages: ``not enough data to unpack N bytes at offset
        -K`` (``no space to pack ...``), ``offset -K out of range for
        M-byte buffer``.

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> from binrec.records import resolve_offset
    >>> resolve_offset(-4, 10, 4)
    6
    >>> try:
    ...     resolve_offset(-2, 10, 4)
    ... except binrec.Error as exc:
    ...     print(exc)
    not enough data to unpack 4 bytes at offset -2
    >>> try:  # struct's own words, the oracle
    ...     struct.unpack_from("<i", bytes(10), -2)
    ... except struct.error as exc:
    ...     print(exc)
    not enough data to unpack 4 bytes at offset -2
    """
    offset = _index(offset, "offset")
    if offset >= 0:
        return offset
    if nbytes is not None and offset + nbytes > 0:
        verb = "no space to pack" if packing else "not enough data to unpack"
        raise Error(f"{verb} {nbytes} bytes at offset {offset}")
    if offset + length < 0:
        raise Error(f"offset {offset} out of range for {length}-byte buffer")
    return offset + length


def whole_records(available: int, size: int, offset: int, where: str) -> int:
    """How many ``size``-byte records the ``available`` bytes after
    ``offset`` hold, when that is a whole number.

    The one "whole number of records" check, and its one wording, for
    buffers (``Struct.unpack``), files (``binrec.files``, the CLI,
    ``binrec.dask``) and streams that end in a partial record.

    Parameters
    ----------
    available : int
        Bytes after ``offset``.
    size : int
        Bytes per record.
    offset : int
        Where the records start (only named in the message).
    where : str
        What the bytes are (a file name, ``"buffer"``), for the message.

    Returns
    -------
    int
        The number of records.

    Raises
    ------
    binrec.Error
        Naming ``where``, the byte count and the partial record's offset.

    Examples
    --------
    >>> whole_records(36, 18, 0, "buffer")
    2
    >>> try:
    ...     whole_records(37, 18, 4, "data.bin")
    ... except Error as exc:
    ...     print(exc)
    data.bin: 37 bytes after offset 4 are not a whole number of 18-byte records (2 whole records and a partial record of 1 bytes at byte offset 40)
    """
    whole, partial = divmod(available, size)
    if partial:
        raise Error(
            f"{where}: {available} bytes after offset {offset} are not a whole number of {size}-byte records "
            f"({whole} whole records and a partial record of {partial} bytes at byte offset {offset + whole * size})"
        )
    return whole


def _resolve_threads(threads: int | None, nbytes: int) -> int:
    if threads is None:
        return 1
    t = _index(threads, "threads")
    if t == 0:  # 0 means "as many as useful"
        t = os.cpu_count() or 1
    if t < 0:
        raise Error(f"threads must be >= 0, got {t}")
    return max(1, min(t, nbytes // _MIN_BYTES_PER_THREAD or 1))


_I64 = (-(1 << 63), (1 << 63) - 1)
# PackKind's codes as plain ints, read once (an enum member lookup per field
# would cost more than building the spec)
_COPY, _INT64, _UINT64, _F64_F32, _BOOL, _COPY_HALVES = (
    int(PackKind.COPY),
    int(PackKind.I64),
    int(PackKind.U64),
    int(PackKind.F64_F32),
    int(PackKind.BOOL),
    int(PackKind.COPY_HALVES),
)


def _pack_spec(f: Field, col: Any, encoding: str = DEFAULT_ENCODING) -> PackSpec:
    """How the fused pack kernel takes one column (coerced first when its
    dtype is none the kernel reads directly)."""
    if isinstance(col, np.ndarray):
        col = plain_array(col)  # the real dtype: the kernel reads by it
    if isinstance(col, np.ndarray) and col.ndim == 1:
        dt = col.dtype
        if dt == f.native and f.code != "?":
            swapped_complex = f.kind == "complex" and f.wire.byteorder not in ("=", "|") and not f.wire.isnative
            return (_COPY_HALVES if swapped_complex else _COPY), np.ascontiguousarray(col), 0, 0, 0, 0
        if f.kind == "int" and dt in (np.int64, np.uint64):
            lo, hi = int_range(f.code, f.size)
            if dt == np.int64:
                return _INT64, np.ascontiguousarray(col), max(lo, _I64[0]), min(hi, _I64[1]), 0, 0
            return _UINT64, np.ascontiguousarray(col), 0, 0, hi, 0
        if f.code == "f" and dt == np.float64:
            return _F64_F32, np.ascontiguousarray(col), 0, 0, 0, 0 if f.native_mode else 1
    native, _ = coerce_column(f, col, encoding=encoding)
    if f.code == "?":
        return _BOOL, np.ascontiguousarray(native), 0, 0, 0, 0
    return _pack_spec(f, native) if native.dtype == f.native else (_COPY, np.ascontiguousarray(native), 0, 0, 0, 0)


def _column_arrays(dtypes: Sequence[np.dtype], count: int) -> list[np.ndarray]:
    """Fresh 1-D arrays for decoded columns, carved from one allocation.

    One large block is one mmap that numpy backs with huge pages; dozens of
    separate arrays of a few MB each page-fault 4 KiB at a time, which
    measured 3.5x slower than the decode itself on a wide record.  Columns
    start 64-byte aligned and are staggered so that dozens of output streams
    do not alias the same cache sets.  Each column is contiguous; the block
    is freed when the last column referencing it is.
    """
    sizes = [count * dt.itemsize for dt in dtypes]
    if len(dtypes) < 2 or sum(sizes) < (1 << 20):
        return [np.empty(count, dtype=dt) for dt in dtypes]
    starts = []
    pos = 0
    for j, nbytes in enumerate(sizes):
        start = -(-pos // 64) * 64 + (j * 320) % 4096
        starts.append(start)
        pos = start + nbytes
    block = np.empty(pos, dtype=np.uint8)
    # A zero-width field (0s, 0p, 1p) has the unsized dtype 'S', which no
    # byte slice can be viewed as: it gets its own array, as on the small path.
    return [
        block[s : s + nb].view(dt) if dt.itemsize else np.empty(count, dtype=dt)
        for s, nb, dt in zip(starts, sizes, dtypes)
    ]


class Struct:
    """A compiled record layout, like :class:`struct.Struct` for many records.

    Parameters
    ----------
    format : str or bytes
        A :mod:`struct` format string, e.g. ``'>I10sf'``.  All of struct's
        codes and byte orders are supported, plus ``F``/``D`` (complex).
        Bytes are read as ASCII; :attr:`format` is always ``str``, as
        struct's is since Python 3.7.
    names : str or sequence of str, optional
        One name per value that ``struct.unpack`` returns (pad bytes ``x``
        get none).  A sequence, or one string separated by commas or spaces.
        Default ``f0, f1, ...``.

    Attributes
    ----------
    format : str
    size : int
        Bytes per record, equal to ``struct.calcsize(format)``.
    names : tuple of str
    dtype : numpy.dtype
        Structured dtype in native byte order, with struct's field offsets
        and ``itemsize == size``.

    Raises
    ------
    binrec.Error
        A format struct would refuse, or names that do not match its fields.

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> s = binrec.Struct(">I10sf", names="id name temp")
    >>> s.size
    18
    >>> raw = struct.pack(">I10sf", 7, b"probe", 21.5) * 2
    >>> recs = s.unpack(raw)
    >>> recs["id"].tolist(), recs["temp"].tolist()
    ([7, 7], [21.5, 21.5])
    >>> s.pack(recs) == raw
    True
    """

    __slots__ = ("_layout", "__weakref__")

    def __init__(self, format: str | bytes, names: str | Sequence[str] | None = None) -> None:
        self._layout: Layout = build_layout(format, names)

    # -- description ---------------------------------------------------------

    @property
    def format(self) -> str:
        """The format string, as ``str`` (struct's ``Struct.format`` too).

        Returns
        -------
        str

        Examples
        --------
        >>> import binrec
        >>> binrec.Struct(b"<hd").format
        '<hd'
        """
        return self._layout.format

    @property
    def size(self) -> int:
        """Bytes per record, equal to :func:`struct.calcsize` of the format.

        Returns
        -------
        int

        Examples
        --------
        >>> import struct
        >>> import binrec
        >>> binrec.Struct("<bq").size, struct.calcsize("<bq")
        (9, 9)
        >>> binrec.Struct("@bq").size == struct.calcsize("@bq")  # native mode aligns the q, as struct does
        True
        """
        return self._layout.size

    @property
    def names(self) -> tuple[str, ...]:
        """The field names, one per value that ``struct.unpack`` returns.

        Returns
        -------
        tuple of str

        Examples
        --------
        >>> import binrec
        >>> binrec.Struct("<hxd").names  # the pad byte x gets no name
        ('f0', 'f1')
        >>> binrec.Struct("<hd", names="count, mean").names
        ('count', 'mean')
        """
        return self._layout.names

    @property
    def dtype(self) -> np.dtype[np.void]:
        """The structured dtype of decoded records.

        Native byte order, struct's field offsets (padding included), and
        ``itemsize == size``: decoding is a byte-order swap at most.

        Returns
        -------
        numpy.dtype

        Examples
        --------
        >>> import numpy as np
        >>> import binrec
        >>> dt = binrec.Struct(">hxd", names="n x").dtype
        >>> dt.names, dt.itemsize, dt.fields["x"][1]  # x starts after the pad byte
        (('n', 'x'), 11, 3)
        >>> dt["x"] == np.dtype(np.float64)
        True
        """
        return self._layout.dtype

    @property
    def layout(self) -> Layout:
        """The parsed layout (fields with codes, offsets and dtypes).

        Returns
        -------
        binrec._layout.Layout

        Examples
        --------
        >>> import binrec
        >>> [(f.name, f.code, f.offset, f.size) for f in binrec.Struct("<h3sd").layout.fields]
        [('f0', 'h', 0, 2), ('f1', 's', 2, 3), ('f2', 'd', 5, 8)]
        """
        return self._layout

    def __repr__(self) -> str:
        return f"binrec.Struct({self.format!r}, names={self.names!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Struct):
            return NotImplemented
        return self.format == other.format and self.names == other.names

    def __hash__(self) -> int:
        return hash((self.format, self.names))

    def __reduce__(self) -> tuple[type[Struct], tuple[str, tuple[str, ...]]]:
        return (Struct, (self.format, self.names))

    # -- checks shared by unpack and unpack_columns ----------------------------

    def _span(self, buf: memoryview, count: Any, offset: Any) -> tuple[int, int]:
        """Validate ``offset``/``count`` against the buffer: (offset, count)."""
        size = self.size
        total = len(buf)
        if count is not None:
            count = _index(count, "count")
            if count < 0:
                raise Error(f"count must be >= 0, got {count}")
        offset = resolve_offset(offset, total, None if count is None else count * size)
        if offset > total:
            raise Error(f"offset {offset} is past the end of the buffer ({total} bytes)")
        available = total - offset
        if count is None:
            return offset, whole_records(available, size, offset, "buffer")
        if count > available // size:
            raise Error(
                f"unpack requires a buffer of {count * size} bytes after offset {offset} "
                f"for {count} records of {size} bytes; got {available}"
            )
        return offset, count

    def _select(self, fields: str | Iterable[str] | None) -> Sequence[Field]:
        if fields is None:
            return self._layout.fields
        if isinstance(fields, str):
            fields = [fields]
        chosen = []
        for name in fields:
            f = self._layout.field(name)
            if f in chosen:
                raise Error(f"field {name!r} selected twice")
            chosen.append(f)
        return chosen

    # -- decoding -----------------------------------------------------------

    def unpack(
        self,
        buffer: Any,
        *,
        count: int | None = None,
        offset: int = 0,
        out: np.ndarray | None = None,
        threads: int | None = None,
        text: str | Iterable[str] | None = None,
        encoding: str = "ascii",
        strip: bytes = DEFAULT_STRIP,
    ) -> np.ndarray:
        """Decode records into a structured array.

        Parameters
        ----------
        buffer : bytes-like
            Anything with the buffer protocol (bytes, bytearray, memoryview,
            mmap, a C-contiguous ndarray).
        count : int, optional
            Records to decode.  Default: all bytes after ``offset``, which
            must then be a whole number of records.
        offset : int
            Byte offset of the first record.  A negative offset counts from
            the end of the buffer, as in :func:`struct.unpack_from`.
        out : ndarray, optional
            C-contiguous array of ``self.dtype`` and shape ``(count,)`` to
            decode into (reused memory for pipelines).  It may share memory
            with ``buffer``, even exactly (decoding in place): the input
            bytes are then copied first.
        threads : int, optional
            Split a large buffer over this many threads (0: one per core).
            Only the compiled backend runs them in parallel.
        text : str or sequence of str, optional
            String fields to return as ``str`` (numpy ``U``) instead of
            bytes: trailing bytes in ``strip`` are removed and the rest is
            decoded with ``encoding``.  The result then has a new, packed
            dtype.
        encoding : str
            Codec for ``text`` fields (default ASCII).
        strip : bytes
            Trailing bytes removed from ``text`` fields (default NUL and space).

        Returns
        -------
        ndarray
            Shape ``(count,)``, dtype ``self.dtype``, owning its memory.

        Raises
        ------
        binrec.Error
            Bad offset/count, or a length that is not a whole number of records.
        binrec.BufferTypeError
            ``buffer`` does not support the buffer protocol.

        Notes
        -----
        Like numpy's ``S`` dtype, byte-string values drop trailing NUL bytes
        when read back as Python ``bytes`` (struct keeps them): ``b"ab\\x00"``
        in a ``3s`` field reads as ``b"ab"``.  The stored bytes are intact.

        Examples
        --------
        >>> import struct
        >>> import binrec
        >>> s = binrec.Struct("<hd")
        >>> raw = struct.pack("<hd", -2, 0.5) + struct.pack("<hd", 3, 1.5)
        >>> s.unpack(raw).tolist()
        [(-2, 0.5), (3, 1.5)]
        >>> s.unpack(raw, offset=-10).tolist()  # the last record, as struct.unpack_from
        [(3, 1.5)]
        >>> [struct.unpack_from("<hd", raw, 10)]
        [(3, 1.5)]
        >>> binrec.Struct("<4s", names="tag").unpack(b"ab  cd\\x00\\x00", text="tag")["tag"].tolist()
        ['ab', 'cd']
        >>> try:
        ...     s.unpack(raw[:-1])
        ... except binrec.Error as exc:
        ...     print(exc)
        buffer: 19 bytes after offset 0 are not a whole number of 10-byte records (1 whole records and a partial record of 9 bytes at byte offset 10)
        """
        buf = byte_view(buffer)
        offset, count = self._span(buf, count, offset)
        text_names = text_fields(self._layout, text, self._layout.fields)
        if text_names and out is None:
            # each record straight into its row of the result, when it can
            direct = unpack_text(self._layout, buf, offset, count, text_names, encoding, strip)
            if direct is not None:
                return direct
        if out is None:
            result = np.empty(count, dtype=self.dtype)
        else:
            result = self._check_out(out, count, self.dtype, "out")
        nthreads = _resolve_threads(threads, count * self.size)
        try:
            _backend.kernels.unpack_rows(self._layout, buf, offset, count, result, nthreads)
        except OverlapError:  # out= shares memory with the input
            buf, offset = _private_copy(buf, offset, count * self.size)
            _backend.kernels.unpack_rows(self._layout, buf, offset, count, result, nthreads)
        if text_names:
            return with_text(self._layout, result, text_names, encoding, strip)
        return result if out is None else out

    def unpack_columns(
        self,
        buffer: Any,
        *,
        count: int | None = None,
        offset: int = 0,
        fields: str | Iterable[str] | None = None,
        out: Mapping[str, np.ndarray] | None = None,
        threads: int | None = None,
        text: str | Iterable[str] | None = None,
        encoding: str = "ascii",
        strip: bytes = DEFAULT_STRIP,
    ) -> dict[str, np.ndarray]:
        """Decode records into one contiguous array per field.

        Parameters
        ----------
        buffer, count, offset, threads, text, encoding, strip
            As for :meth:`unpack`.
        fields : str or sequence of str, optional
            Only these fields are decoded (default: all), in this order.
        out : mapping of name to ndarray, optional
            Preallocated 1-D arrays (native dtype of the field, shape
            ``(count,)``) for some or all of the selected fields.  An array
            that shares memory with ``buffer`` makes the input be copied
            first.

        Returns
        -------
        dict
            Field name -> contiguous 1-D ndarray in native byte order.

        Raises
        ------
        binrec.Error
            As :meth:`unpack`, or an unknown or repeated field name.

        Examples
        --------
        >>> import struct
        >>> import numpy as np
        >>> import binrec
        >>> s = binrec.Struct(">I10sf", names="id name temp")
        >>> raw = struct.pack(">I10sf", 1, b"north ", 3.5) + struct.pack(">I10sf", 2, b"south", -1.0)
        >>> cols = s.unpack_columns(raw, fields=["name", "temp"], text="name")
        >>> cols["name"].tolist(), cols["temp"].tolist()
        (['north', 'south'], [3.5, -1.0])
        >>> ids = np.zeros(2, dtype=np.uint32)
        >>> s.unpack_columns(raw, fields="id", out={"id": ids})["id"] is ids
        True
        >>> ids.tolist()
        [1, 2]
        """
        buf = byte_view(buffer)
        offset, count = self._span(buf, count, offset)
        chosen = self._select(fields)
        text_names = text_fields(self._layout, text, chosen)
        # text fields decoded from the input bytes in place, with no column
        # of bytes first; the kernels decode the rest
        in_place = {
            f.name for f in chosen if f.name in text_names and f.name not in (out or {}) and reads_in_place(f, count)
        }
        decoded = [f for f in chosen if f.name not in in_place]
        if out:
            outs = self._column_outs(decoded, out, count)
        else:
            outs = _column_arrays([f.native for f in decoded], count)
        nthreads = _resolve_threads(threads, count * self.size) if threads is not None else 1
        kernels = _backend.kernels
        try:
            arrays = kernels.unpack_columns(self._layout, buf, offset, count, decoded, outs, nthreads)
        except OverlapError:  # an out= array shares memory with the input
            buf, offset = _private_copy(buf, offset, count * self.size)
            arrays = kernels.unpack_columns(self._layout, buf, offset, count, decoded, outs, nthreads)
        if out:
            # the caller's own objects come back (the kernels wrote through
            # their base-class views)
            arrays = [out[f.name] if f.name in out else arr for f, arr in zip(decoded, arrays)]
        columns = {f.name: arr for f, arr in zip(decoded, arrays)}
        if not text_names:
            return columns
        return {
            f.name: decode_field_at(f, buf, offset, count, self.size, encoding, strip)
            if f.name in in_place
            else decode_field(f, columns[f.name], encoding, strip)
            if f.name in text_names
            else columns[f.name]
            for f in chosen
        }

    def _column_outs(self, chosen: Sequence[Field], out: Mapping[str, np.ndarray], count: int) -> list[np.ndarray]:
        selected = {f.name for f in chosen}
        for name in out:
            if name not in selected:
                raise Error(f"out has an array for {name!r}, which is not a selected field")
        fresh = _column_arrays([f.native for f in chosen if f.name not in out], count)
        outs = []
        for f in chosen:
            if f.name in out:
                outs.append(self._check_out(out[f.name], count, f.native, f"out[{f.name!r}]"))
            else:
                outs.append(fresh.pop(0))
        return outs

    @staticmethod
    def _check_out(out: object, count: int, dtype: np.dtype, what: str) -> np.ndarray:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"{what} must be a numpy array, not {type(out).__name__}")
        out = plain_array(out)  # numpy's own dtype, shape and flags, not a subclass's
        if out.dtype != dtype:
            raise Error(f"{what} has dtype {out.dtype}, expected {dtype}")
        if out.shape != (count,):
            raise Error(f"{what} has shape {out.shape}, expected ({count},)")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise Error(f"{what} must be C-contiguous and writeable")
        return out

    # -- encoding -----------------------------------------------------------

    def pack(self, values: Any, *, threads: int | None = None, encoding: str = DEFAULT_ENCODING) -> bytes:
        """Encode records; the result equals ``struct.pack`` row by row.

        Parameters
        ----------
        values : structured ndarray, mapping, DataFrame, Arrow table or sequence of tuples
            A structured array (fields matched by name, any byte order), a
            mapping name -> column (array-like), a pandas DataFrame or a
            pyarrow Table/RecordBatch (columns by name), a 2-D array with one
            column per field, or a sequence of tuples.  A structured array,
            DataFrame or table whose column count matches a format with the
            default names (``f0, f1, ...``) is matched by position.
        threads : int, optional
            Split a large encode over this many threads (0: one per core).
            Only the compiled backend runs them in parallel.
        encoding : str
            Codec for ``str`` values of ``c``/``s``/``p`` fields (default
            ASCII, as ``unpack(..., text=)``); ``bytes`` values are stored as
            they are.

        Returns
        -------
        bytes
            ``b"".join(struct.pack(format, *row) for row in rows)``.

        Raises
        ------
        binrec.Error
            A value struct would refuse (out of range, wrong type, float too
            large), or a ``str`` that does not encode or whose bytes do not
            fit its field (``bytes`` are truncated, as struct does); the
            message names the field and row.  Nothing is written.

        Examples
        --------
        >>> import struct
        >>> import binrec
        >>> s = binrec.Struct("<Bh", names="a b")
        >>> s.pack([(1, -1), (2, 300)])
        b'\\x01\\xff\\xff\\x02,\\x01'
        >>> s.pack([(1, -1), (2, 300)]) == struct.pack("<Bh", 1, -1) + struct.pack("<Bh", 2, 300)
        True
        >>> s.pack({"a": [1, 2], "b": [-1, 300]}) == s.pack([(1, -1), (2, 300)])
        True
        >>> try:
        ...     s.pack([(1, 0), (256, 0)])
        ... except binrec.Error as exc:
        ...     print(exc)
        field 'a' (format 'B', row 1): 'B' format requires 0 <= number <= 255

        Text round-trips through ``text=`` (NUL-padded fields):

        >>> t = binrec.Struct("<h4s", names="n tag")
        >>> raw = struct.pack("<h4s", 1, "né".encode()) + struct.pack("<h4s", 2, b"cd")
        >>> t.pack(t.unpack(raw, text="tag", encoding="utf-8"), encoding="utf-8") == raw
        True
        """
        if threads is not None:
            _resolve_threads(threads, 0)  # validated on every path, the fused one included
        values = user_values(self._layout, values)
        fast = self._pack_from_columns(values, encoding)
        if fast is not None:
            return fast
        arr, plens = native_rows(self._layout, values, encoding)  # the checks, and their exact errors
        nthreads = _resolve_threads(threads, len(arr) * self.size)
        return _backend.kernels.pack_bytes(self._layout, arr, plens, nthreads)

    def _pack_from_columns(self, values: Any, encoding: str = DEFAULT_ENCODING) -> bytes | None:
        """The fused path for column inputs (a mapping, or a structured array
        of another dtype): int64/uint64/float64 columns are range-checked,
        narrowed and swapped in one pass by the compiled kernel.  Returns
        None when it does not apply or any value fails a check: the ordinary
        path then runs and raises the precise error."""
        kernels = _backend.kernels
        if not kernels.FUSED_PACK or any(f.code == "p" for f in self._layout.fields):
            return None
        if isinstance(values, np.ndarray):
            values = plain_array(values)
        if isinstance(values, np.ndarray) and values.dtype.names is not None:
            if values.ndim != 1 or values.dtype == self.dtype or set(values.dtype.names) != set(self.names):
                return None
            columns: Mapping[str, Any] = {n: values[n] for n in self.names}
        elif isinstance(values, Mapping):
            if set(values) != set(self.names):
                return None
            columns = values
        else:
            return None
        try:
            specs = [_pack_spec(f, columns[f.name], encoding) for f in self._layout.fields]
        except (Error, TypeError, ValueError):
            return None
        if len({len(spec[1]) for spec in specs}) > 1:
            return None
        return kernels.pack_columns(self._layout, specs)

    def pack_into(
        self, buffer: Any, offset: int, values: Any, *, threads: int | None = None, encoding: str = DEFAULT_ENCODING
    ) -> int:
        """Encode records into ``buffer`` at byte ``offset``.

        Every value is checked before the first byte is written: on error
        the buffer is left untouched.  ``values`` may live in ``buffer``
        itself (they are then copied before writing).

        Parameters
        ----------
        buffer : writable bytes-like
            A bytearray, writable memoryview, mmap or C-contiguous ndarray.
        offset : int
            Byte offset of the first record.  A negative ``offset`` counts from
            the end of the buffer, as in :func:`struct.pack_into`.
        values : structured ndarray, mapping, DataFrame, Arrow table or sequence of tuples
            As for :meth:`pack`.
        threads : int, optional
            As for :meth:`pack`.
        encoding : str
            As for :meth:`pack`.

        Returns
        -------
        int
            Number of bytes written.

        Raises
        ------
        binrec.Error
            A value struct would refuse, or records that do not fit after
            ``offset``.  Nothing is written.
        binrec.BufferTypeError
            ``buffer`` is read-only or not contiguous.

        Examples
        --------
        >>> import struct
        >>> import binrec
        >>> buf = bytearray(6)
        >>> binrec.Struct(">H").pack_into(buf, 2, [(1,), (2,)])
        4
        >>> bytes(buf)
        b'\\x00\\x00\\x00\\x01\\x00\\x02'
        >>> ref = bytearray(6)
        >>> struct.pack_into(">HH", ref, 2, 1, 2)
        >>> ref == buf
        True
        """
        target = byte_view(buffer, writable=True)
        _index(offset, "offset")
        arr, plens = native_rows(self._layout, values, encoding)
        nbytes = len(arr) * self.size
        offset = resolve_offset(offset, len(target), nbytes, packing=True)
        if offset + nbytes > len(target):
            raise Error(
                f"pack_into requires a buffer of at least {offset + nbytes} bytes for packing {nbytes} bytes "
                f"at offset {offset} (actual buffer size is {len(target)})"
            )
        nthreads = _resolve_threads(threads, nbytes)
        window = target[offset : offset + nbytes]
        try:
            _backend.kernels.pack_rows(self._layout, arr, plens, window, nthreads)
        except OverlapError:  # the values live in the target buffer
            _backend.kernels.pack_rows(self._layout, arr.copy(), plens, window, nthreads)
        return nbytes

    # -- files and data frames (see binrec.files) --------------------------------

    @overload
    def iter_unpack(
        self,
        source: Any,
        *,
        chunk_size: int = ...,
        offset: int = ...,
        trailing: Literal["error", "ignore"] = ...,
        mmap: bool = ...,
        storage_options: Mapping[str, Any] | None = ...,
        **kw: Any,
    ) -> Iterator[np.ndarray]: ...

    @overload
    def iter_unpack(
        self,
        source: Any,
        *,
        chunk_size: int = ...,
        offset: int = ...,
        trailing: str,
        mmap: bool = ...,
        storage_options: Mapping[str, Any] | None = ...,
        **kw: Any,
    ) -> Iterator[np.ndarray | bytes]: ...

    def iter_unpack(
        self,
        source: Any,
        *,
        chunk_size: int = 65536,
        offset: int = 0,
        trailing: str = "error",
        mmap: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Iterator[np.ndarray | bytes]:
        """Stream records in chunks from a path, fsspec URL, binary file (pipes too) or buffer.

        Yields structured arrays of up to ``chunk_size`` records, read with
        ``readinto`` into one reused buffer; each owns its memory.  See
        :func:`binrec.files.iter_unpack`.

        Parameters
        ----------
        source : path, URL, binary file object or bytes-like
            What to read.  A file object is read from its current position;
            a remote URL (``s3://...``, needs ``binrec[cloud]``) with large
            ranged requests.
        chunk_size : int
            Most records per yielded array.
        offset : int
            Header bytes to skip (a negative offset counts from the end of an
            in-memory buffer only).
        trailing : {'error', 'ignore', 'return'}
            What to do with a partial record at the end: raise
            :class:`binrec.Error` naming its byte offset, drop it, or yield its
            bytes last, as ``bytes``.
        mmap : bool
            Paths only: decode from a memory map instead of copying with
            ``readinto``.
        storage_options : mapping, optional
            URLs only: passed to the fsspec filesystem (credentials...).
        **kw
            Passed to :meth:`unpack` (``text=``, ``threads=``...).

        Yields
        ------
        ndarray or bytes
            Structured arrays of ``self.dtype`` (the trailing bytes, with
            ``trailing="return"``).

        Raises
        ------
        binrec.Error
            A partial record at the end (``trailing="error"``), or a bad offset.
        binrec.BufferTypeError
            ``source`` is neither a path, a file nor a buffer (raised at the
            call, before iterating).

        Examples
        --------
        >>> import io, struct
        >>> import binrec
        >>> s = binrec.Struct("<H")
        >>> data = struct.pack("<5H", *range(5))
        >>> [c["f0"].tolist() for c in s.iter_unpack(io.BytesIO(data), chunk_size=2)]
        [[0, 1], [2, 3], [4]]
        >>> [c if isinstance(c, bytes) else c["f0"].tolist() for c in s.iter_unpack(data + b"\\xff", trailing="return")]
        [[0, 1, 2, 3, 4], b'\\xff']
        """
        from .files import iter_unpack

        return iter_unpack(
            self,
            source,
            chunk_size=chunk_size,
            offset=offset,
            trailing=trailing,
            mmap=mmap,
            storage_options=storage_options,
            **kw,
        )

    def read_file(
        self,
        path: Any,
        *,
        offset: int = 0,
        count: int | None = None,
        mmap: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> np.ndarray:
        """Decode a record file (a thin wrapper over :func:`binrec.files.read_file`).

        Parameters
        ----------
        path : path, URL or binary file object
            The record file; a file object is read from its current position,
            a remote URL (``s3://...``, needs ``binrec[cloud]``) with large
            ranged requests.
        offset : int
            Header bytes to skip (never negative).
        count : int, optional
            Records to decode (default: all; the bytes after ``offset`` must
            then be a whole number of records).
        mmap : bool
            Paths only: decode from a read-only memory map, without reading
            the file into a bytes object first.
        storage_options : mapping, optional
            URLs only: passed to the fsspec filesystem (credentials...).
        **kw
            Passed to :meth:`unpack` (``text=``, ``threads=``...).

        Returns
        -------
        ndarray
            Structured array of ``self.dtype``.

        Raises
        ------
        binrec.Error
            A length that is not a whole number of records after ``offset``
            (the message names the file and the byte offset of the partial
            record), or fewer than ``count`` records.

        Examples
        --------
        >>> import os, struct, tempfile
        >>> import binrec
        >>> s = binrec.Struct("<hd", names="n x")
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "data.bin")
        ...     with open(path, "wb") as fh:
        ...         _ = fh.write(b"HDR!" + struct.pack("<hd", 1, 0.5) + struct.pack("<hd", 2, 1.5))
        ...     print(s.read_file(path, offset=4).tolist())
        ...     print(s.read_file(path, offset=4, mmap=True)["x"].tolist())
        [(1, 0.5), (2, 1.5)]
        [0.5, 1.5]
        """
        from .files import read_file

        return read_file(self, path, offset=offset, count=count, mmap=mmap, storage_options=storage_options, **kw)

    def read_record(
        self, file: Any, index: int, *, offset: int = 0, storage_options: Mapping[str, Any] | None = None
    ) -> np.void:
        """One record of a file, by seeking straight to it (O(1) for fixed-size records).

        A thin wrapper over :func:`binrec.files.read_record`.

        Parameters
        ----------
        file : path, URL or seekable binary file object
            The record file (a remote URL costs one ``info`` and one ranged
            read).
        index : int
            Record number; negative indices count from the end.
        offset : int
            Header size, counted from the start of the file.
        storage_options : mapping, optional
            URLs only: passed to the fsspec filesystem.

        Returns
        -------
        numpy.void
            The record, a structured scalar of ``self.dtype``.

        Raises
        ------
        binrec.Error
            ``index`` out of range, or a file that is not a whole number of
            records after ``offset``.

        Examples
        --------
        >>> import io, struct
        >>> import binrec
        >>> s = binrec.Struct("<hd", names="n x")
        >>> fh = io.BytesIO(struct.pack("<hd", 1, 0.5) + struct.pack("<hd", 2, 1.5))
        >>> s.read_record(fh, -1).tolist()
        (2, 1.5)
        >>> try:
        ...     s.read_record(fh, 2)
        ... except binrec.Error as exc:
        ...     print(exc)
        <BytesIO>: record index 2 out of range: the file holds 2 records of 10 bytes after offset 0
        """
        from .files import read_record

        return read_record(self, file, index, offset=offset, storage_options=storage_options)

    def write_file(
        self,
        path: Any,
        values: Any,
        *,
        append: bool = False,
        header: bytes | None = None,
        encoding: str = DEFAULT_ENCODING,
        storage_options: Mapping[str, Any] | None = None,
    ) -> int:
        """Write records to a file (a thin wrapper over :func:`binrec.files.write_file`).

        Without ``append`` the file is replaced atomically (temporary file,
        fsync, rename): a crash leaves the old file or the new one.

        Parameters
        ----------
        path : path or URL
            The record file.  A remote URL is written by its filesystem and
            appears only complete (no ``append``).
        values : structured ndarray, mapping, DataFrame, Arrow table or sequence of tuples
            As for :meth:`pack`; every value is checked before the first byte
            is written.
        append : bool
            Append to the file (and fsync) instead of replacing it.
        header : bytes-like, optional
            Bytes written before the first record; not with ``append``.
        encoding : str
            Codec for ``str`` values of string fields, as for :meth:`pack`.
        storage_options : mapping, optional
            URLs only: passed to the fsspec filesystem.

        Returns
        -------
        int
            The number of records written.

        Raises
        ------
        binrec.Error
            A value :meth:`pack` would refuse; the file is left as it was.

        Examples
        --------
        >>> import os, struct, tempfile
        >>> import binrec
        >>> s = binrec.Struct("<hd")
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "data.bin")
        ...     print(s.write_file(path, [(1, 0.5), (2, 1.5)]), s.write_file(path, [(3, 2.5)], append=True))
        ...     with open(path, "rb") as fh:
        ...         print(fh.read() == b"".join(struct.pack("<hd", *row) for row in [(1, 0.5), (2, 1.5), (3, 2.5)]))
        2 1
        True
        """
        from .files import write_file

        return write_file(
            self, path, values, append=append, header=header, encoding=encoding, storage_options=storage_options
        )

    def unpack_frame(self, buffer: Any, **kw: Any) -> pd.DataFrame:
        """:meth:`unpack_columns` as a pandas DataFrame (needs ``binrec[pandas]``).

        A thin wrapper over :func:`binrec.files.unpack_frame`.

        Parameters
        ----------
        buffer : bytes-like
            The records.
        **kw
            Passed to :meth:`unpack_columns` (``fields=``, ``text=``...).

        Returns
        -------
        pandas.DataFrame
            One column per (selected) field.

        Raises
        ------
        ImportError
            pandas is not installed.

        Examples
        --------
        >>> import struct
        >>> import binrec
        >>> s = binrec.Struct("<h4s", names="n tag")
        >>> raw = struct.pack("<h4s", 1, b"ab") + struct.pack("<h4s", 2, b"cd")
        >>> frame = s.unpack_frame(raw, text="tag")
        >>> frame["n"].tolist(), frame["tag"].tolist()
        ([1, 2], ['ab', 'cd'])
        """
        from .files import unpack_frame

        return unpack_frame(self, buffer, **kw)

    def unpack_table(self, buffer: Any, **kw: Any) -> pa.Table:
        """:meth:`unpack_columns` as a pyarrow Table (needs ``binrec[arrow]``).

        A thin wrapper over :func:`binrec.files.unpack_table`.

        Parameters
        ----------
        buffer : bytes-like
            The records.
        **kw
            Passed to :meth:`unpack_columns` (``fields=``, ``text=``...).

        Returns
        -------
        pyarrow.Table
            One column per (selected) field.

        Raises
        ------
        ImportError
            pyarrow is not installed.
        binrec.Error
            A complex (``F``/``D``) field: Arrow has no complex type.

        Examples
        --------
        >>> import struct
        >>> import binrec
        >>> s = binrec.Struct("<h4s", names="n tag")
        >>> raw = struct.pack("<h4s", 1, b"ab") + struct.pack("<h4s", 2, b"cd")
        >>> table = s.unpack_table(raw)
        >>> table.column_names, table["tag"].to_pylist()
        (['n', 'tag'], [b'ab', b'cd'])
        """
        from .files import unpack_table

        return unpack_table(self, buffer, **kw)


# -- module-level shortcuts, with a small cache of compiled formats -----------


@functools.lru_cache(maxsize=128)
def _cached(format: str, names: tuple[str, ...] | str | None) -> Struct:
    return Struct(format, names)


def _struct_for(format: str | Struct, names: Any = None) -> Struct:
    if isinstance(format, Struct):
        return format
    key = names if (names is None or isinstance(names, str)) else tuple(names)
    try:
        return _cached(format, key)
    except TypeError:  # unhashable format: let Struct report it
        return Struct(format, names)


def calcsize(format: str) -> int:
    """Size in bytes of one record, as :func:`struct.calcsize`.

    Parameters
    ----------
    format : str
        A struct format.

    Returns
    -------
    int

    Raises
    ------
    binrec.Error
        A format struct would refuse.

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> binrec.calcsize(">I10sf"), struct.calcsize(">I10sf")
    (18, 18)
    """
    return _struct_for(format).size


def dtype(format: str, names: str | Sequence[str] | None = None) -> np.dtype[np.void]:
    """The native structured dtype of ``format`` (:attr:`Struct.dtype`).

    Parameters
    ----------
    format : str
        A struct format.
    names : str or sequence of str, optional
        Field names, as for :class:`Struct`.

    Returns
    -------
    numpy.dtype

    Examples
    --------
    >>> import binrec
    >>> dt = binrec.dtype("<hd", names="a b")
    >>> dt.names, dt.itemsize
    (('a', 'b'), 10)
    """
    return _struct_for(format, names).dtype


def unpack(format: str, buffer: Any, *, names: Any = None, **kw: Any) -> np.ndarray:
    """Decode records: ``Struct(format, names).unpack(buffer, **kw)``.

    Compiled formats are cached, so calling this in a loop costs no
    re-parsing.

    Parameters
    ----------
    format : str
        A struct format.
    buffer : bytes-like
        The records.
    names : str or sequence of str, optional
        Field names, as for :class:`Struct`.
    **kw
        As for :meth:`Struct.unpack` (``count=``, ``offset=``, ``text=``...).

    Returns
    -------
    ndarray
        A structured array, one element per record.

    Raises
    ------
    binrec.Error
        As :meth:`Struct.unpack`.

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> binrec.unpack("<i", struct.pack("<2i", 1, -1)).tolist()
    [(1,), (-1,)]
    >>> binrec.unpack("<hd", struct.pack("<hd", 7, 0.5), names="n x")["x"].tolist()
    [0.5]
    """
    return _struct_for(format, names).unpack(buffer, **kw)


def unpack_columns(format: str, buffer: Any, *, names: Any = None, **kw: Any) -> dict[str, np.ndarray]:
    """Decode into columns: ``Struct(format, names).unpack_columns(buffer, **kw)``.

    Parameters
    ----------
    format : str
        A struct format.
    buffer : bytes-like
        The records.
    names : str or sequence of str, optional
        Field names, as for :class:`Struct`.
    **kw
        As for :meth:`Struct.unpack_columns` (``fields=``, ``text=``...).

    Returns
    -------
    dict
        Field name -> contiguous 1-D ndarray.

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> cols = binrec.unpack_columns("<hh", struct.pack("<4h", 1, 2, 3, 4))
    >>> cols["f0"].tolist(), cols["f1"].tolist()
    ([1, 3], [2, 4])
    """
    return _struct_for(format, names).unpack_columns(buffer, **kw)


def pack(format: str, values: Any, *, names: Any = None, **kw: Any) -> bytes:
    """Encode records: ``Struct(format, names).pack(values)``.

    Parameters
    ----------
    format : str
        A struct format.
    values : structured ndarray, mapping or sequence of tuples
        As for :meth:`Struct.pack`.
    names : str or sequence of str, optional
        Field names (needed to pass a mapping by your own names).
    **kw
        As for :meth:`Struct.pack` (``threads=``).

    Returns
    -------
    bytes

    Raises
    ------
    binrec.Error
        As :meth:`Struct.pack`.

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> binrec.pack(">H", [(1,), (2,)])
    b'\\x00\\x01\\x00\\x02'
    >>> binrec.pack(">H", [(1,), (2,)]) == struct.pack(">2H", 1, 2)
    True
    """
    return _struct_for(format, names).pack(values, **kw)


def pack_into(format: str, buffer: Any, offset: int, values: Any, *, names: Any = None, **kw: Any) -> int:
    """Encode records into a buffer: ``Struct(format, names).pack_into(buffer, offset, values)``.

    Parameters
    ----------
    format : str
        A struct format.
    buffer : writable bytes-like
        The target.
    offset : int
        Byte offset of the first record (negative counts from the end).
    values : structured ndarray, mapping or sequence of tuples
        As for :meth:`Struct.pack`.
    names : str or sequence of str, optional
        Field names.
    **kw
        As for :meth:`Struct.pack_into` (``threads=``).

    Returns
    -------
    int
        Number of bytes written.

    Raises
    ------
    binrec.Error
        As :meth:`Struct.pack_into`; nothing is written.

    Examples
    --------
    >>> import binrec
    >>> buf = bytearray(4)
    >>> binrec.pack_into("<H", buf, -2, [(258,)])
    2
    >>> bytes(buf)
    b'\\x00\\x00\\x02\\x01'
    """
    return _struct_for(format, names).pack_into(buffer, offset, values, **kw)
