"""Decoded records as CSV and JSON Lines text, a column at a time: the
bytes ``binrec decode`` writes for ``.csv`` and ``.jsonl``.

Each column becomes its cells' text in one pass (numbers formatted,
strings quoted or escaped), then the cells are joined row by row.  With
pyarrow the passes run in Arrow's compute kernels and the text kernels of
``_text``, with no Python object per value; without it numpy and plain
Python do the same work.  The two paths write the same bytes (the tests
compare them with pyarrow blocked in a subprocess):

* integers in decimal; ``?`` fields ``True``/``False`` (JSON: ``true``/``false``);
* floats as the shortest text that reads back as the field's own type,
  as numpy prints them (``str(np.float32(x))``: ``22.62``, ``1e+06``,
  ``nan``; JSON writes ``NaN``, ``Infinity``, ``-Infinity`` as Python's
  ``json`` does).  Arrow's float formatting agrees with numpy's only in a
  middle range of magnitudes, so only that range is left to Arrow;
* string fields: ``text`` fields decoded with the chosen encoding,
  padding stripped; other string fields as Latin-1 (one character per
  byte, trailing NULs dropped), as before;
* complex: CSV ``(1+2j)`` (Python's ``str(complex)``), JSON ``[re, im]``;
* CSV: fields holding ``,`` ``"`` CR or LF are quoted (quotes doubled),
  a lone empty field is ``""``, lines end with LF;
* JSON: ``{"name": value, ...}`` with Python's ``json.dumps`` spacing,
  strings in UTF-8 (``ensure_ascii=False``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._layout import Field
from ._text import DEFAULT_STRIP, arrow_strings, decode_field

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["csv_header", "csv_chunk", "jsonl_chunk", "have_arrow"]

# |x| in [lo, hi) (or 0): Arrow's shortest float text equals numpy's, once
# ".0" is added to integral values.  numpy prints float32 in scientific
# notation from 1e6 and float64 from 1e16; Arrow switches at other points,
# so the ranges stop well short of both (measured: they agree everywhere
# in [1e-4, 1e6) for float32 and [1e-4, 1e10) for float64).
_ARROW_FLOAT_RANGE = {4: (2e-4, 5e5), 8: (2e-4, 5e9)}
_CSV_SPECIAL = re.compile(r'[,"\r\n]')
_JSON_SPECIAL = re.compile(r'[\x00-\x1f"\\]')
_JSON_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def have_arrow() -> bool:
    """Whether pyarrow (and its compute functions) can be imported."""
    try:
        import pyarrow.compute  # noqa: F401
    except ImportError:
        return False
    return True


def csv_header(names: Sequence[str]) -> bytes:
    """The header line of the CSV output."""
    return (",".join(_csv_quote(n) for n in names) + "\n").encode("utf-8")


def csv_chunk(
    fields: Sequence[Field], rows: np.ndarray, text: Sequence[str], encoding: str, first_row: int, arrow: bool
) -> bytes | memoryview:
    """The CSV lines of ``rows`` (a structured array of the fields'
    native dtypes), ``text`` fields decoded with ``encoding``;
    ``first_row`` numbers the rows in errors."""
    if len(rows) == 0:
        return b""
    lone = len(fields) == 1
    if arrow:
        cols = [_arrow_cells(f, rows[f.name], f.name in text, encoding, first_row, csv=True, lone=lone) for f in fields]
        return _arrow_join(_interleave(cols, [","] * (len(cols) - 1) + ["\n"], ""))
    cells = [_np_cells(f, rows[f.name], f.name in text, encoding, first_row, csv=True, lone=lone) for f in fields]
    return _np_join(_interleave(cells, [","] * (len(cells) - 1) + ["\n"], ""))


def jsonl_chunk(
    fields: Sequence[Field], rows: np.ndarray, text: Sequence[str], encoding: str, first_row: int, arrow: bool
) -> bytes | memoryview:
    """The JSON lines of ``rows``: see :func:`csv_chunk`."""
    if len(rows) == 0:
        return b""
    keys = [json.dumps(f.name, ensure_ascii=False) for f in fields]
    before = ["{" + keys[0] + ": "] + [", " + k + ": " for k in keys[1:]]
    make = _arrow_cells if arrow else _np_cells
    pieces: list[Any] = []
    for lead, f in zip(before, fields):
        pieces += [lead, make(f, rows[f.name], f.name in text, encoding, first_row, csv=False)]
    return _arrow_join([*pieces, "}\n"]) if arrow else _np_join([*pieces, "}\n"])


def _interleave(cols: list[Any], seps: list[str], start: str) -> list[Any]:
    pieces: list[Any] = [start] if start else []
    for col, sep in zip(cols, seps):
        pieces += [col, sep]
    return pieces


# -- one column's cells: numpy (no pyarrow) --------------------------------------
# Cells are numpy 'U' arrays and lines are built with numpy.strings.add, a C
# loop per column; Python sees only the few values that need quoting or
# escaping, and each chunk's joined text once.


def _csv_quote(value: str) -> str:
    if _CSV_SPECIAL.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def _json_string(value: str) -> str:
    if _JSON_SPECIAL.search(value):
        return json.dumps(value, ensure_ascii=False)
    return '"' + value + '"'


def _float_texts(col: np.ndarray, csv: bool) -> np.ndarray:
    """numpy's own text of each float (``U`` array); JSON's names for the
    values that are not finite."""
    texts = np.ascontiguousarray(col).astype(str)
    if not csv:
        odd = ~np.isfinite(col)
        if odd.any():
            texts = texts.astype(f"U{max(9, texts.dtype.itemsize // 4)}")
            texts[odd] = [_JSON_NONFINITE[t] for t in texts[odd].tolist()]
    return texts


def _strings(f: Field, col: np.ndarray, is_text: bool, encoding: str, first_row: int) -> np.ndarray:
    if is_text:
        return decode_field(f, col, encoding, DEFAULT_STRIP, first_row=first_row)
    return decode_field(f, col, "latin-1", b"", first_row=first_row)


def _has_code(values: np.ndarray, wanted: Sequence[int], controls: bool = False) -> np.ndarray:
    """Per value: whether it holds one of the code points ``wanted`` (or,
    with ``controls``, one below U+0020 other than the NUL padding)."""
    width = values.dtype.itemsize // 4
    codes = np.ascontiguousarray(values).view(np.uint32).reshape(len(values), width)
    found = np.isin(codes, np.array(wanted, dtype=np.uint32))
    if controls:
        # a NUL before the last character is text; the ones after it are padding
        inside = np.logical_or.accumulate((codes != 0)[:, ::-1], axis=1)[:, ::-1]
        found |= (codes < 0x20) & inside
    return np.asarray(found.any(axis=1))


def _fix(cells: np.ndarray, rows: np.ndarray, fixed: list[str]) -> np.ndarray:
    """``cells`` with the values at ``rows`` replaced (widened to fit)."""
    width = max(cells.dtype.itemsize // 4, max(map(len, fixed), default=1))
    cells = cells.astype(f"U{width}")
    cells[rows] = fixed
    return cells


def _np_cells(
    f: Field, col: np.ndarray, is_text: bool, encoding: str, first_row: int, csv: bool, lone: bool = False
) -> np.ndarray:
    """One column's cells as a numpy ``U`` array (no pyarrow)."""
    kind = col.dtype.kind
    if kind == "b":
        return np.where(col, "True" if csv else "true", "False" if csv else "false")
    if kind in "iu":
        return np.ascontiguousarray(col).astype(str)
    if kind == "f":
        return _float_texts(col, csv)
    if kind == "c":
        if csv:
            return np.array([str(complex(v)) for v in col.tolist()], dtype=str)
        pieces = ["[", _float_texts(col.real, csv), ", ", _float_texts(col.imag, csv), "]"]
        return functools.reduce(np.strings.add, pieces)  # type: ignore[arg-type]
    values = _strings(f, col, is_text, encoding, first_row)
    if not csv:
        special = np.nonzero(_has_code(values, [0x22, 0x5C], controls=True))[0]
        cells = np.strings.add(np.strings.add('"', values), '"')
        if len(special):
            cells = _fix(cells, special, [_json_string(v) for v in values[special].tolist()])
        return cells
    special = np.nonzero(_has_code(values, [0x2C, 0x22, 0x0D, 0x0A]))[0]
    cells = values
    if len(special):
        cells = _fix(cells, special, [_csv_quote(v) for v in values[special].tolist()])
    if lone:
        empty = np.nonzero(np.strings.str_len(cells) == 0)[0]
        if len(empty):
            cells = _fix(cells, empty, ['""'] * len(empty))
    return cells


def _narrow(cells: np.ndarray) -> np.ndarray:
    width = cells.dtype.itemsize // 4
    if width <= 12 or len(cells) == 0:
        return cells
    return cells.astype(f"U{max(1, int(np.strings.str_len(cells).max()))}")


def _np_join(pieces: list[Any]) -> bytes:
    """Concatenate the pieces (``U`` arrays of one length, or str) row by
    row, then all rows."""
    # numpy's float text comes as U32: cut each column to its longest cell,
    # or every add below moves the padding along
    pieces = [_narrow(p) if isinstance(p, np.ndarray) else p for p in pieces]
    lines = functools.reduce(np.strings.add, pieces)
    return "".join(lines.tolist()).encode("utf-8")


# -- one column's cells: Arrow -------------------------------------------------------


def _arrow_array(col: np.ndarray) -> pa.Array:
    """A 1-D numpy bool or number array as an Arrow array over the same
    bytes (bools packed to bits).  ``pa.array`` would do, but it imports
    pandas (when installed) to ask whether the array is a pandas object:
    a few hundred ms of every ``binrec decode`` to CSV or JSONL."""
    import pyarrow as pa

    col = np.ascontiguousarray(col)
    if col.dtype.kind == "b":
        bits = np.packbits(col, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(col), [None, pa.py_buffer(bits)])
    col = col.astype(col.dtype.newbyteorder("="), copy=False)
    return pa.Array.from_buffers(pa.from_numpy_dtype(col.dtype), len(col), [None, pa.py_buffer(col)])


def _arrow_text(values: Sequence[str], large: bool = False) -> pa.Array:
    """Python strings as an Arrow (large_)string array, built from its
    buffers (``pa.array`` of a list imports pandas: see :func:`_arrow_array`)."""
    import pyarrow as pa

    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64 if large else np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    kind = pa.large_string() if large else pa.string()
    return pa.Array.from_buffers(kind, len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


@functools.lru_cache(maxsize=64)
def _arrow_scalar(value: str) -> pa.Scalar:
    """A string scalar for Arrow compute (a Python str there goes through
    ``pa.scalar``, which imports pandas)."""
    return _arrow_text([value])[0]


def _arrow_floats(col: np.ndarray, csv: bool) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    col = np.ascontiguousarray(col)
    bounds = _ARROW_FLOAT_RANGE.get(col.dtype.itemsize)
    if bounds is None:  # float16: numpy prints it
        return _arrow_text(_float_texts(col, csv).tolist())
    size = np.abs(col)
    easy = ((size >= bounds[0]) & (size < bounds[1])) | (col == 0)
    texts = pc.cast(_arrow_array(col), pa.string())
    whole = easy & (col == np.floor(col))
    if whole.any():
        dot0 = pc.binary_join_element_wise(texts, _arrow_scalar(".0"), _arrow_scalar(""))
        texts = pc.if_else(_arrow_array(whole), dot0, texts)
    if not easy.all():
        hard = ~easy
        hard_texts = _arrow_text(_float_texts(col[hard], csv).tolist())
        texts = pc.replace_with_mask(texts, _arrow_array(hard), hard_texts)
    return texts


def _arrow_cells(
    f: Field, col: np.ndarray, is_text: bool, encoding: str, first_row: int, csv: bool, lone: bool = False
) -> pa.Array:
    """One column's cells as an Arrow string array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = col.dtype.kind
    if kind == "b":
        return pc.if_else(
            _arrow_array(col), _arrow_scalar("True" if csv else "true"), _arrow_scalar("False" if csv else "false")
        )
    if kind in "iu":
        return pc.cast(_arrow_array(col), pa.string())
    if kind == "f":
        return _arrow_floats(col, csv)
    if kind == "c":
        if csv:
            return _arrow_text([str(complex(v)) for v in col.tolist()])
        return pc.binary_join_element_wise(
            *[_arrow_scalar(v) if isinstance(v, str) else v for v in ("[", _arrow_floats(col.real, csv), ", ")],
            _arrow_floats(col.imag, csv),
            _arrow_scalar("]"),
            _arrow_scalar(""),
        )
    values = (
        arrow_strings(f, col, encoding, DEFAULT_STRIP, first_row=first_row)
        if is_text
        else arrow_strings(f, col, "latin-1", b"", first_row=first_row)
    )
    if values.type != pa.string():
        values = values.cast(pa.large_string())
    if csv:
        special = pc.match_substring_regex(values, _CSV_SPECIAL.pattern)
        if pc.any(special).as_py():
            quote = _arrow_scalar('"')
            quoted = pc.binary_join_element_wise(
                quote, pc.replace_substring(values, '"', '""'), quote, _arrow_scalar("")
            )
            values = pc.if_else(special, quoted, values)
        if lone:
            empty = pc.binary_length(values).to_numpy(zero_copy_only=False) == 0
            values = pc.if_else(_arrow_array(empty), _arrow_scalar('""'), values)
        return values
    special = pc.match_substring_regex(values, _JSON_SPECIAL.pattern)
    plain = pc.binary_join_element_wise(_arrow_scalar('"'), values, _arrow_scalar('"'), _arrow_scalar(""))
    if pc.any(special).as_py():
        # (a bool array's to_numpy imports pandas)
        escaped = [_json_string(v) for v in values.take(pc.indices_nonzero(special)).to_pylist()]
        plain = pc.replace_with_mask(plain, special, _arrow_text(escaped, large=plain.type == pa.large_string()))
    return plain


def _arrow_join(pieces: list[Any]) -> memoryview:
    """Concatenate the pieces (Arrow string arrays of one length, or str)
    row by row, and all rows: the bytes of Arrow's result data buffer."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if any(isinstance(p, pa.Array) and p.type == pa.large_string() for p in pieces):
        pieces = [p.cast(pa.large_string()) if isinstance(p, pa.Array) else p for p in pieces]
    joined = pc.binary_join_element_wise(
        *[_arrow_scalar(p) if isinstance(p, str) else p for p in pieces], _arrow_scalar("")
    )
    wide = joined.type == pa.large_string()
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64 if wide else np.int32)
    start, end = int(offsets[joined.offset]), int(offsets[joined.offset + len(joined)])
    return memoryview(joined.buffers()[2])[start:end]
