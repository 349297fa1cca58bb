"""String fields decoded to ``str``: the ``text=``, ``encoding=`` and
``strip=`` options of ``Struct.unpack``/``unpack_columns``, shared with the
streaming readers (``files.py``) and the CLI so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ._errors import Error
from ._layout import Field, Layout

__all__ = ["DEFAULT_STRIP", "NO_TEXT", "text_fields", "decode_field", "with_text"]

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


def decode_field(f: Field, arr: np.ndarray, encoding: str, strip: bytes) -> np.ndarray:
    """The ``S`` column ``arr`` of field ``f`` as ``str`` (numpy ``U``):
    trailing bytes in ``strip`` removed, the rest decoded with ``encoding``.
    A value that does not decode raises :class:`binrec.Error` naming the
    field and row."""
    if f.native.itemsize == 0:
        # 0s, 0p, 1p hold no text; numpy's unsized 'S' view of such a field
        # would read bytes beyond it, so never touch its data.
        return np.zeros(len(arr), dtype="U1")
    stripped = np.strings.rstrip(arr, strip) if strip else arr
    try:
        return np.strings.decode(stripped, encoding)
    except UnicodeDecodeError:
        for i, value in enumerate(stripped.tolist()):
            try:
                value.decode(encoding)
            except UnicodeDecodeError as exc:
                raise Error(
                    f"field {f.name!r} (row {i}): cannot decode {value!r} as {encoding}: {exc.reason}"
                ) from None
        raise  # pragma: no cover - numpy and Python disagree


def with_text(layout: Layout, rows: np.ndarray, text_names: Iterable[str], encoding: str, strip: bytes) -> np.ndarray:
    """``rows`` (a structured array of ``layout.dtype``) with the fields in
    ``text_names`` decoded to ``str``: a new, packed structured array."""
    text_names = set(text_names)
    columns = {}
    formats = []
    for f in layout.fields:
        col = rows[f.name]
        if f.name in text_names:
            col = decode_field(f, col, encoding, strip)
        columns[f.name] = col
        formats.append(col.dtype if f.name in text_names else f.native)
    result = np.empty(len(rows), dtype=np.dtype({"names": list(layout.names), "formats": formats}))
    for name, col in columns.items():
        result[name] = col
    return result
