"""Parse a :mod:`struct` format string into a :class:`Layout`.

A Layout is the one description of a record that every other part of binrec
works from: the fields (name, code, byte offset, size), the record size, the
native numpy dtype users get back and the "wire" dtype that describes the
bytes on disk.  Pure: no I/O, no backend, cached by the caller.

Semantics follow CPython's ``Modules/_struct.c``:

* the byte-order character counts only in first position;
* ``@`` (or no prefix) uses native sizes and aligns every field relative to
  the start of the record, with no trailing padding (``calcsize('@ic') == 5``);
* ``= < > !`` use standard sizes and no alignment;
* ``n N P`` exist only in native mode;
* ``'3c'`` is three values, ``'3s'`` and ``'3p'`` are one, ``x`` is padding.

Beyond struct (before Python 3.14): ``F`` and ``D`` are complex numbers made
of two C floats / doubles, as Python 3.14's struct defines them.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._errors import Error, FormatEncodingError

__all__ = ["Field", "Layout", "parse_names", "build_layout", "format_text"]

#: Most fields one record may have.  struct accepts ``'1000000000000q'`` and
#: would build a 8 TB record; no numpy dtype can hold that many fields, and no
#: real record has them.  Checked before anything is allocated.
MAX_FIELDS = 100_000
#: Largest record size, in bytes (numpy's itemsize is a C int).
MAX_RECORD_SIZE = 2**31 - 1

_BYTE_ORDERS = "@=<>!"
_INT_CODES = "bBhHiIlLqQnNP"
_FLOAT_CODES = "efd"
_COMPLEX_CODES = "FD"
_STRING_CODES = "sp"
_NATIVE_ONLY = "nNP"
_ALL_CODES = "xcbB?hHiIlLqQnNefdspPFD"

_STANDARD_SIZES = {
    "x": 1, "c": 1, "b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4,
    "l": 4, "L": 4, "q": 8, "Q": 8, "e": 2, "f": 4, "d": 8, "s": 1, "p": 1,
    "F": 8, "D": 16,
}  # fmt: skip


def _native_size_align(code: str) -> tuple[int, int]:
    """Native size and alignment, read from the running interpreter's struct
    so that binrec agrees with it on every platform."""
    if code in _COMPLEX_CODES:  # struct learned F/D only in 3.14
        size, align = _native_size_align("f" if code == "F" else "d")
        return 2 * size, align
    size = struct.calcsize("@" + code)
    # '@b' + code puts one byte before the field: the padding struct inserts
    # plus that byte is exactly the field's alignment.
    align = struct.calcsize("@b" + code) - size
    return size, align


_NATIVE = {c: _native_size_align(c) for c in _ALL_CODES}

_SIGNED = set("bhilqn")
_UNSIGNED = set("BHILQN")


def int_range(code: str, size: int) -> tuple[int, int]:
    """The range of integers struct accepts for an integer code of ``size``
    bytes.  ``P`` takes anything a C ``void*`` round-trips: negative values
    down to the signed minimum (stored two's complement) up to the unsigned
    maximum."""
    bits = 8 * size
    if code in _SIGNED:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if code in _UNSIGNED:
        return 0, (1 << bits) - 1
    if code == "P":
        return -(1 << (bits - 1)), (1 << bits) - 1
    raise ValueError(code)


@dataclass(frozen=True, eq=False)
class Field:
    """One value of a record.

    Attributes
    ----------
    name : str
        Field name in the numpy dtype.
    code : str
        The struct format code (``'i'``, ``'10s'`` is code ``'s'`` with
        ``count == 10``).
    offset : int
        Byte offset inside the record (equal to struct's).
    size : int
        Bytes the value occupies on the wire.
    count : int
        The repeat count for ``s``/``p`` (the string length), else 1.
    native : numpy.dtype
        dtype of the decoded value (native byte order).
    wire : numpy.dtype
        dtype of the bytes on the wire (``u1`` for ``?``; for ``p`` the
        ``count - 1`` data bytes after the length byte).
    native_mode : bool
        The format uses native sizes (``@``): ``@f`` then stores infinity
        for a float too large, as struct does.
    """

    name: str
    code: str
    offset: int
    size: int
    count: int
    native: np.dtype
    wire: np.dtype
    native_mode: bool = False

    @property
    def kind(self) -> str:
        """One of ``int float complex bool char bytes pascal``."""
        c = self.code
        if c in _INT_CODES:
            return "int"
        if c in _FLOAT_CODES:
            return "float"
        if c in _COMPLEX_CODES:
            return "complex"
        if c == "?":
            return "bool"
        if c == "c":
            return "char"
        if c == "s":
            return "bytes"
        return "pascal"

    @property
    def is_string(self) -> bool:
        return self.code in "csp"


@dataclass(frozen=True, eq=False)
class Layout:
    """A compiled record layout: the result of parsing one format string."""

    format: str
    byteorder: str  # '<' or '>' (what the wire uses)
    native_mode: bool  # True for '@' (native sizes and alignment)
    size: int
    fields: tuple[Field, ...]
    dtype: np.dtype  # native structured dtype, offsets as struct's
    wire_dtype: np.dtype  # structured dtype of the bytes on the wire

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def default_names(self) -> bool:
        """Whether the fields carry the names ``f0, f1, ...`` a format gets
        when none are given (columns then match them by position)."""
        return self.names == tuple(f"f{i}" for i in range(len(self.fields)))

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise Error(f"no field named {name!r} in format {self.format!r} (fields: {', '.join(self.names)})")


_TOKEN = re.compile(r"\s*(\d*)([^\s\d])")


@dataclass(frozen=True)
class _Item:
    code: str
    count: int  # values for most codes; bytes for s/p; pad bytes for x


def format_text(fmt: str | bytes) -> str:
    """The format as ``str``, as struct takes it: a ``str`` must be ASCII
    (else :class:`FormatEncodingError`, a :class:`UnicodeEncodeError`);
    ``bytes`` are read as ASCII, a non-ASCII byte being a bad format code.
    Like struct, a NUL character is refused."""
    if isinstance(fmt, str):
        if not fmt.isascii():
            raise FormatEncodingError(fmt, next(i for i, ch in enumerate(fmt) if ord(ch) > 127))
    elif isinstance(fmt, bytes):
        raw = fmt
        for i, byte in enumerate(raw):
            if byte > 127:
                raise Error(f"bad char in struct format {raw!r}: non-ASCII byte {raw[i : i + 1]!r} at position {i}")
        fmt = raw.decode("ascii")
    else:
        raise TypeError(f"format must be a str or bytes, not {type(fmt).__name__}")
    if "\x00" in fmt:
        raise Error(f"bad format {fmt!r}: embedded null character at position {fmt.index(chr(0))}")
    return fmt


def _tokenize(fmt: str) -> tuple[str, list[_Item]]:
    order = "@"
    body = fmt
    if body[:1] in _BYTE_ORDERS and body:
        order, body = body[0], body[1:]
    items: list[_Item] = []
    pos = 0
    stripped_end = len(body.rstrip())
    while pos < stripped_end:
        m = _TOKEN.match(body, pos)
        if m is None:  # digits at the end without a code
            raise Error(f"bad format {fmt!r}: repeat count without a format code at position {pos + (fmt != body)}")
        digits, code = m.groups()
        where = m.start(2) + (len(fmt) - len(body))
        if code in _BYTE_ORDERS:
            raise Error(f"bad format {fmt!r}: byte-order character {code!r} at position {where} (only allowed first)")
        if code not in _ALL_CODES:
            raise Error(f"bad char in struct format {fmt!r}: unknown format code {code!r} at position {where}")
        if code in _NATIVE_ONLY and order != "@":
            raise Error(
                f"bad char in struct format {fmt!r}: code {code!r} is only allowed in native mode ('@'), "
                f"at position {where}"
            )
        count = int(digits) if digits else 1
        items.append(_Item(code, count))
        pos = m.end()
    return order, items


def _align(offset: int, align: int) -> int:
    return (offset + align - 1) // align * align if align > 1 else offset


def _scalar_dtypes(code: str, size: int, order: str) -> tuple[np.dtype, np.dtype]:
    """(native, wire) dtype of one value of ``code``."""
    if code in _INT_CODES:
        kind = "i" if code in _SIGNED else "u"
        return np.dtype(f"={kind}{size}"), np.dtype(f"{order}{kind}{size}")
    if code in _FLOAT_CODES:
        return np.dtype(f"=f{size}"), np.dtype(f"{order}f{size}")
    if code in _COMPLEX_CODES:
        return np.dtype(f"=c{size}"), np.dtype(f"{order}c{size}")
    if code == "?":
        return np.dtype("?"), np.dtype("u1")
    if code == "c":
        return np.dtype("S1"), np.dtype("S1")
    raise AssertionError(code)


def parse_names(names: str | Iterable[str] | None, n: int, fmt: str) -> tuple[str, ...]:
    """Validate user-given field names (or make ``f0, f1, ...``)."""
    if names is None:
        return tuple(f"f{i}" for i in range(n))
    if isinstance(names, str):
        parsed = [s for s in re.split(r"[\s,]+", names.strip()) if s]
    else:
        try:
            parsed = list(names)
        except TypeError:
            raise TypeError(f"names must be a string or a sequence of strings, not {type(names).__name__}") from None
    for i, name in enumerate(parsed):
        if not isinstance(name, str):
            raise Error(f"names[{i}] must be a str, not {type(name).__name__}")
        if not name.isidentifier():
            raise Error(f"names[{i}] = {name!r} is not a valid identifier")
    if len(parsed) != n:
        raise Error(f"format {fmt!r} has {n} field(s) but {len(parsed)} name(s) were given: {parsed!r}")
    seen: set[str] = set()
    for name in parsed:
        if name in seen:
            raise Error(f"duplicate field name {name!r}")
        seen.add(name)
    return tuple(parsed)


def build_layout(fmt: str | bytes, names: str | Sequence[str] | None = None) -> Layout:
    """Parse ``fmt`` (a struct format) into a :class:`Layout`.

    Raises
    ------
    binrec.Error
        Empty, invalid or absurd formats, and bad names.
    """
    fmt = format_text(fmt)
    order, items = _tokenize(fmt)
    native_mode = order == "@"
    wire_order = {"@": "=", "=": "="}.get(order, "<" if order == "<" else ">")
    if wire_order == "=":
        wire_order = "<" if sys.byteorder == "little" else ">"

    n_values = sum(it.count if it.code not in "xsp" else (0 if it.code == "x" else 1) for it in items)
    if n_values > MAX_FIELDS:
        raise Error(f"format {fmt!r} has {n_values} fields; binrec supports at most {MAX_FIELDS} per record")
    if not items:
        raise Error(f"empty format {fmt!r}: a record needs at least one field")

    # First pass: offsets and codes, no names yet.
    specs: list[tuple[str, int, int, int]] = []  # code, offset, size, count
    offset = 0
    for it in items:
        size1, align = _NATIVE[it.code] if native_mode else (_STANDARD_SIZES[it.code], 1)
        if it.code in "sp":
            if native_mode:
                offset = _align(offset, align)
            specs.append((it.code, offset, it.count, it.count))
            offset += it.count
        elif it.code == "x":
            offset += it.count  # pad bytes: no alignment, as struct
        elif it.count:
            if native_mode:
                offset = _align(offset, align)
            for _ in range(it.count):
                specs.append((it.code, offset, size1, 1))
                offset += size1
        elif native_mode:
            # a zero count still aligns: calcsize('@ic0i') == 8
            offset = _align(offset, align)
        if offset > MAX_RECORD_SIZE:
            raise Error(f"format {fmt!r} describes a record larger than {MAX_RECORD_SIZE} bytes")
    size = offset
    if not specs:
        raise Error(f"format {fmt!r} has no fields (only padding)")
    if size == 0:
        raise Error(f"format {fmt!r} describes records of 0 bytes")

    field_names = parse_names(names, len(specs), fmt)
    fields = []
    for name, (code, off, fsize, count) in zip(field_names, specs):
        if code == "s":
            native = wire = np.dtype(f"S{count}")
        elif code == "p":
            native = wire = np.dtype(f"S{max(count - 1, 0)}")
        else:
            native, wire = _scalar_dtypes(code, fsize, wire_order)
        fields.append(Field(name, code, off, fsize, count, native, wire, native_mode))

    dtype = np.dtype(
        {
            "names": list(field_names),
            "formats": [f.native for f in fields],
            "offsets": [f.offset for f in fields],
            "itemsize": size,
        }
    )
    # On the wire a Pascal string's data starts after its length byte.
    wire_dtype = np.dtype(
        {
            "names": list(field_names),
            "formats": [f.wire for f in fields],
            "offsets": [min(f.offset + 1, size - f.wire.itemsize) if f.code == "p" else f.offset for f in fields],
            "itemsize": size,
        }
    )
    return Layout(fmt, wire_order, native_mode, size, tuple(fields), dtype, wire_dtype)
