"""Exception hierarchy for the record codec.

Kept in a pure-Python module of its own so that ``except binrec.Error``
works the same whichever backend (compiled or Python) raised it.

Where :mod:`struct` raises a specific built-in class rather than
``struct.error``, binrec raises a subclass of both :class:`Error` and that
class, so code written for struct (``except OverflowError``) and code
written for binrec (``except binrec.Error``) both keep working.
"""

from __future__ import annotations

import struct

__all__ = [
    "Error",
    "FloatOverflowError",
    "BufferTypeError",
    "BufferContiguityError",
    "FormatEncodingError",
    "OverlapError",
]


class Error(struct.error):
    """Raised for a bad format, a bad buffer length/offset/count, or a value
    that cannot be packed.

    A subclass of :class:`struct.error`, so code that already catches
    ``struct.error`` keeps working.  Messages name the field (and, when
    packing, the row) that was wrong.

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> try:
    ...     binrec.pack("<B", [(1,), (256,)])
    ... except binrec.Error as exc:
    ...     print(exc)
    field 'f0' (format 'B', row 1): 'B' format requires 0 <= number <= 255
    >>> issubclass(binrec.Error, struct.error)
    True
    """


class FloatOverflowError(Error, OverflowError):
    """A finite float too large for its field: standard-size ``f``, any
    ``e``, and standard-size ``F`` (struct raises :class:`OverflowError`).

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> try:
    ...     struct.pack("<e", 1e10)
    ... except OverflowError as exc:
    ...     print(exc)
    float too large to pack with e format
    >>> try:
    ...     binrec.pack("<e", [(1e10,)])
    ... except OverflowError as exc:
    ...     print(type(exc).__name__, isinstance(exc, binrec.Error), exc)
    FloatOverflowError True field 'f0' (format 'e', row 0): float too large to pack with e format
    """


class BufferTypeError(Error, TypeError):
    """``pack_into`` was given a read-only or non-contiguous buffer (struct
    raises :class:`TypeError`: "argument must be read-write bytes-like
    object").

    Examples
    --------
    >>> import binrec
    >>> try:
    ...     binrec.pack_into("<H", bytes(2), 0, [(1,)])
    ... except TypeError as exc:
    ...     print(type(exc).__name__, isinstance(exc, binrec.Error), exc)
    BufferTypeError True buffer is read-only: it must be a read-write bytes-like object
    """


class BufferContiguityError(Error, BufferError):
    """A buffer to decode is not C-contiguous (struct raises
    :class:`BufferError`).

    Examples
    --------
    >>> import numpy as np
    >>> import binrec
    >>> column = np.zeros((4, 4), dtype=np.uint8)[:, 0]  # every 4th byte
    >>> try:
    ...     binrec.unpack("<B", column)
    ... except BufferError as exc:
    ...     print(type(exc).__name__, isinstance(exc, binrec.Error), exc)
    BufferContiguityError True buffer must be C-contiguous
    >>> binrec.unpack("<B", column.copy()).tolist()  # a contiguous copy decodes
    [(0,), (0,), (0,), (0,)]
    """


class OverlapError(ValueError):
    """Internal: a kernel was given an output that overlaps its input.

    Both backends raise it before writing anything; ``records.py`` catches
    it and decodes (or encodes) from a private copy of the input instead,
    so users never see it.  A ValueError, not a :class:`Error`: reaching a
    user means a caller broke the kernels' contract.

    Examples
    --------
    Decoding a buffer into itself works: the overlap is caught and the
    input copied first.

    >>> import struct
    >>> import numpy as np
    >>> import binrec
    >>> s = binrec.Struct("<i")
    >>> out = np.frombuffer(bytearray(struct.pack("<3i", 1, 2, 3)), dtype=s.dtype)
    >>> s.unpack(out, out=out)["f0"].tolist()
    [1, 2, 3]
    """


class FormatEncodingError(Error, UnicodeEncodeError):
    """A ``str`` format holds a non-ASCII character (struct raises
    :class:`UnicodeEncodeError`).

    Parameters
    ----------
    fmt : str
        The format as given.
    position : int
        Index of the first non-ASCII character in ``fmt``.

    Attributes
    ----------
    format : str
        The format as given (``start`` is the position, as for any
        :class:`UnicodeEncodeError`).

    Examples
    --------
    >>> import binrec
    >>> try:
    ...     binrec.Struct("<hé")
    ... except UnicodeEncodeError as exc:
    ...     print(type(exc).__name__, isinstance(exc, binrec.Error), exc.start)
    ...     print(exc)
    FormatEncodingError True 2
    bad format '<hé': non-ASCII character 'é' at position 2
    """

    def __init__(self, fmt: str, position: int) -> None:
        super().__init__("ascii", fmt, position, position + 1, "ordinal not in range(128)")
        self.format = fmt

    def __reduce__(self) -> tuple[type[FormatEncodingError], tuple[str, int]]:
        return (type(self), (self.format, self.start))

    def __str__(self) -> str:
        return f"bad format {self.format!r}: non-ASCII character {self.format[self.start]!r} at position {self.start}"
