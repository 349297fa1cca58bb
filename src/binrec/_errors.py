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
    """


class FloatOverflowError(Error, OverflowError):
    """A finite float too large for its field: standard-size ``f``, any
    ``e``, and standard-size ``F`` (struct raises :class:`OverflowError`)."""


class BufferTypeError(Error, TypeError):
    """``pack_into`` was given a read-only or non-contiguous buffer (struct
    raises :class:`TypeError`: "argument must be read-write bytes-like
    object")."""


class BufferContiguityError(Error, BufferError):
    """A buffer to decode is not C-contiguous (struct raises
    :class:`BufferError`)."""


class OverlapError(ValueError):
    """Internal: a kernel was given an output that overlaps its input.

    Both backends raise it before writing anything; ``records.py`` catches
    it and decodes (or encodes) from a private copy of the input instead,
    so users never see it.  A ValueError, not a :class:`Error`: reaching a
    user means a caller broke the kernels' contract.
    """


class FormatEncodingError(Error, UnicodeEncodeError):
    """A ``str`` format holds a non-ASCII character (struct raises
    :class:`UnicodeEncodeError`)."""

    def __init__(self, fmt: str, position: int) -> None:
        super().__init__("ascii", fmt, position, position + 1, "ordinal not in range(128)")
        self.format = fmt

    def __reduce__(self):
        return (type(self), (self.format, self.start))

    def __str__(self) -> str:
        return f"bad format {self.format!r}: non-ASCII character {self.format[self.start]!r} at position {self.start}"
