"""String fields decoded to ``str``: the ``text=``, ``encoding=`` and
``strip=`` options of ``Struct.unpack``/``unpack_columns``, shared with the
streaming readers (``files.py``) and the CLI so they cannot drift.
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _backend
from ._errors import Error
from ._kernels import TextCodec
from ._layout import Field, Layout

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "DEFAULT_STRIP",
    "NO_TEXT",
    "text_fields",
    "decode_field",
    "decode_field_at",
    "reads_in_place",
    "unpack_text",
    "with_text",
    "arrow_strings",
    "pandas_strings",
]

#: Trailing bytes removed from a text field before decoding: NUL and space.
DEFAULT_STRIP = b"\x00 "
NO_TEXT: frozenset[str] = frozenset()


def text_fields(layout: Layout, text: str | Iterable[str] | None, among: Sequence[Field]) -> frozenset[str] | set[str]:
    """The names in ``text``, each checked to be a string field of
    ``layout`` among the selected fields ``among``."""
    if text is None:
        return NO_TEXT
    names = {text} if isinstance(text, str) else set(text)
    present = {f.name for f in among}
    for name in names:
        f = layout.field(name)
        if not f.is_string:
            raise Error(f"field {name!r} (format {f.code!r}) is not a string field; text= applies to c, s and p fields")
        if name not in present:
            raise Error(f"text field {name!r} is not among the selected fields")
    return names


def _codec(encoding: str) -> int | None:
    """The :class:`TextCodec` the kernels decode ``encoding`` with, or None
    for an encoding left to :mod:`codecs` (LookupError: no such encoding)."""
    return _KERNEL_CODECS.get(codecs.lookup(encoding).name)


_KERNEL_CODECS = {"ascii": TextCodec.ASCII, "iso8859-1": TextCodec.LATIN1, "utf-8": TextCodec.UTF8}


def _kernel_strip(strip: bytes) -> bytes:
    # numpy's 'S' values end at their first trailing NUL, so a NUL-padded
    # field has always lost its NULs before ``strip`` applies
    return bytes(strip) + b"\x00"


def _decode_error(f: Field, arr: np.ndarray, row: int, encoding: str, strip: bytes, first_row: int) -> Error:
    """The error for row ``row`` of ``arr``, in ``bytes.decode``'s words."""
    value = bytes(arr[row]).rstrip(_kernel_strip(strip))
    try:
        value.decode(encoding)
    except UnicodeDecodeError as exc:
        reason = exc.reason
    else:  # pragma: no cover - a kernel and Python disagree
        reason = "the text kernel refused it"
    return Error(f"field {f.name!r} (row {first_row + row}): cannot decode {value!r} as {encoding}: {reason}")


def decode_field(
    f: Field,
    arr: np.ndarray,
    encoding: str,
    strip: bytes,
    out: np.ndarray | None = None,
    first_row: int = 0,
) -> np.ndarray:
    """The ``S`` column ``arr`` of field ``f`` as ``str`` (numpy ``U``):
    trailing bytes in ``strip`` (and NULs) removed, the rest decoded with
    ``encoding``.

    ASCII, Latin-1 and UTF-8 are decoded by the kernels, with no Python
    object per value; other encodings go through :mod:`codecs`.  The ``U``
    width is the field's byte width whatever the values hold, so every
    chunk of a stream has the same dtype.  ``out``, when given, is a 1-D
    ``U`` array of that width (a field of a structured array will do) that
    receives the result.  A value that does not decode raises
    :class:`binrec.Error` naming the field and its row (counted from
    ``first_row``)."""
    width = f.native.itemsize
    if width == 0:
        # 0s, 0p, 1p hold no text; numpy's unsized 'S' view of such a field
        # would read bytes beyond it, so never touch its data.
        result = np.zeros(len(arr), dtype="U1")
    else:
        codec = _codec(encoding)
        if codec is not None:
            result = np.empty(len(arr), dtype=f"U{width}") if out is None else out
            bad = _backend.kernels.decode_text(arr, result, codec, _kernel_strip(strip))
            if bad >= 0:
                raise _decode_error(f, arr, bad, encoding, strip, first_row)
            return result
        result = _decode_with_codecs(f, arr, encoding, strip, first_row)
    if out is not None:
        out[...] = result
        return out
    return result


def _decode_with_codecs(f: Field, arr: np.ndarray, encoding: str, strip: bytes, first_row: int) -> np.ndarray:
    """Any other encoding: numpy's decode (a Python object per value), at
    the field's width where the text fits it (it always does unless a
    codec makes more characters than bytes)."""
    stripped = np.strings.rstrip(arr, strip) if strip else arr
    try:
        decoded = np.strings.decode(stripped, encoding)
    except UnicodeDecodeError:
        for i in range(len(stripped)):
            try:
                bytes(stripped[i]).decode(encoding)
            except UnicodeDecodeError:
                raise _decode_error(f, arr, i, encoding, strip, first_row) from None
        raise  # pragma: no cover - numpy and Python disagree
    return decoded.astype(f"U{max(f.native.itemsize, decoded.dtype.itemsize // 4, 1)}")


def with_text(
    layout: Layout, rows: np.ndarray, text_names: Iterable[str], encoding: str, strip: bytes, first_row: int = 0
) -> np.ndarray:
    """``rows`` (a structured array of ``layout.dtype``) with the fields in
    ``text_names`` decoded to ``str``: a new, packed structured array (each
    text field decoded straight into it).  ``first_row`` numbers the rows in
    error messages."""
    text_names = frozenset(text_names)
    if _codec(encoding) is None:
        return _with_text_codecs(layout, rows, text_names, encoding, strip, first_row)
    result = np.empty(len(rows), dtype=_text_dtype(layout, text_names))
    # One block of rows at a time, every field: the block of the result
    # stays in the cache while it is filled, where a field at a time would
    # stream the whole (several times larger) result once per field.
    block = max(1, _BLOCK_BYTES // max(1, result.itemsize))
    for lo in range(0, len(rows), block):
        part, dest = rows[lo : lo + block], result[lo : lo + block]
        for f in layout.fields:
            if f.name in text_names:
                decode_field(f, part[f.name], encoding, strip, out=dest[f.name], first_row=first_row + lo)
            else:
                dest[f.name] = part[f.name]
    return result


def unpack_text(
    layout: Layout,
    buf: Any,
    offset: int,
    count: int,
    text_names: Iterable[str],
    encoding: str,
    strip: bytes,
) -> np.ndarray | None:
    """``count`` records of ``layout`` from ``buf`` at ``offset`` with the
    fields in ``text_names`` decoded to ``str``, as :func:`with_text` of
    their plain decode but in one pass: each record goes straight into its
    row of the packed result, the text decoded from the input bytes.  None
    when that pass does not apply (an encoding left to :mod:`codecs`, or a
    Pascal-string text field): the caller then decodes and calls
    :func:`with_text`."""
    text_names = frozenset(text_names)
    codec = _codec(encoding)
    if codec is None or any(layout.field(name).code == "p" for name in text_names):
        return None
    result = np.empty(count, dtype=_text_dtype(layout, text_names))
    bad = _backend.kernels.unpack_text_rows(layout, buf, offset, count, result, text_names, codec, _kernel_strip(strip))
    if bad is not None:
        row, name = bad
        f = layout.field(name)
        raise _decode_error(f, _field_bytes(f, buf, offset, count, layout.size), row, encoding, strip, 0)
    return result


def decode_field_at(f: Field, buf: Any, offset: int, count: int, size: int, encoding: str, strip: bytes) -> np.ndarray:
    """:func:`decode_field` of field ``f`` of ``count`` records of ``size``
    bytes in ``buf`` at ``offset``, read in place (no ``S`` column first).
    Only for a field and count that :func:`reads_in_place` accepts."""
    return decode_field(f, _field_bytes(f, buf, offset, count, size), encoding, strip)


def reads_in_place(f: Field, count: int) -> bool:
    """Whether :func:`decode_field_at` can read field ``f`` of ``count``
    records in place: not a Pascal string (its bytes need their length
    byte first), not zero-width, and at least one record."""
    return f.code != "p" and f.native.itemsize > 0 and count > 0


def _field_bytes(f: Field, buf: Any, offset: int, count: int, size: int) -> np.ndarray:
    """The ``S`` values of the ``c``/``s`` field ``f`` in ``count`` records
    of ``size`` bytes: a strided view of ``buf``, no copy."""
    return np.ndarray((count,), dtype=f"S{f.native.itemsize}", buffer=buf, offset=offset + f.offset, strides=(size,))


#: Bytes of the result filled per block by :func:`with_text` (well inside a
#: core's share of the last-level cache, large enough that the per-block
#: Python overhead is noise).
_BLOCK_BYTES = 1 << 19


@functools.lru_cache(maxsize=256)
def _text_dtype(layout: Layout, text_names: frozenset[str]) -> np.dtype[np.void]:
    """``layout.dtype`` packed, with each field in ``text_names`` as ``U``
    of its byte width (the width the kernels decode to)."""
    formats = [np.dtype(f"U{max(1, f.native.itemsize)}") if f.name in text_names else f.native for f in layout.fields]
    return np.dtype({"names": list(layout.names), "formats": formats})


def _with_text_codecs(
    layout: Layout, rows: np.ndarray, text_names: frozenset[str], encoding: str, strip: bytes, first_row: int
) -> np.ndarray:
    """:func:`with_text` for an encoding left to :mod:`codecs`, whose ``U``
    width depends on the values."""
    columns = {
        f.name: decode_field(f, rows[f.name], encoding, strip, first_row=first_row)
        for f in layout.fields
        if f.name in text_names
    }
    formats = [columns[f.name].dtype if f.name in columns else f.native for f in layout.fields]
    result = np.empty(len(rows), dtype=np.dtype({"names": list(layout.names), "formats": formats}))
    for f in layout.fields:
        result[f.name] = columns.get(f.name, rows[f.name])
    return result


def arrow_strings(
    f: Field, arr: np.ndarray, encoding: str, strip: bytes, large: bool | None = None, first_row: int = 0
) -> pa.Array:
    """The ``S`` column ``arr`` of field ``f`` decoded as for
    :func:`decode_field`, as an Arrow ``string`` array (``large_string``
    when ``large`` is true, or when it is None and the text may pass 2 GiB).

    For ASCII, Latin-1 and UTF-8 the kernels write Arrow's offsets and
    UTF-8 data directly: no Python object and no ``U`` array per value."""
    import pyarrow as pa

    width = f.native.itemsize
    codec = _codec(encoding)
    count = len(arr)
    room = count * width * (2 if codec == TextCodec.LATIN1 else 1)
    if large is None:
        large = room > _INT32_MAX
    kind = pa.large_string() if large else pa.string()
    if codec is None or width == 0 or (room > _INT32_MAX and not large):
        return pa.array(decode_field(f, arr, encoding, strip, first_row=first_row), type=kind)
    offsets = np.empty(count + 1, dtype=np.int64 if large else np.int32)
    data = np.empty(room, dtype=np.uint8)
    used, bad = _backend.kernels.text_to_utf8(arr, codec, _kernel_strip(strip), offsets, data)
    if bad >= 0:
        raise _decode_error(f, arr, bad, encoding, strip, first_row)
    try:
        data.resize(used, refcheck=False)  # give the unused tail back
    except ValueError:  # pragma: no cover - data is not numpy's own block
        data = data[:used].copy()
    return pa.Array.from_buffers(kind, count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


_INT32_MAX = 2**31 - 1


def pandas_strings(f: Field, arr: np.ndarray, encoding: str, strip: bytes) -> Any:
    """The ``S`` column ``arr`` of field ``f`` decoded as for
    :func:`decode_field`, as a column pandas stores compactly: its
    Arrow-backed ``str`` dtype built from :func:`arrow_strings` where pandas
    and pyarrow have it, else the numpy ``U`` array."""
    try:
        import pandas as pd
        import pyarrow as pa

        dtype = pd.StringDtype("pyarrow", na_value=np.nan)
        make: Any = pd.arrays.ArrowStringArray  # the stubs lack its dtype= (pandas >= 3)
    except (ImportError, TypeError, AttributeError):
        return decode_field(f, arr, encoding, strip)
    # pandas keeps large_string: build it directly rather than cast
    return make(pa.chunked_array([arrow_strings(f, arr, encoding, strip, large=True)]), dtype=dtype)
