"""Turn user values into the layout's native dtype, with struct's checks.

struct refuses what it cannot represent (an integer out of range, a float
where an integer belongs, a float too large for ``f``/``e``, a str for
``s``); numpy casts wrap or round silently.  Everything here is vectorised
where the input is already a numeric numpy array, and falls back to a
per-object loop (exactly struct's rules) for lists of Python objects, which
also gives the precise row of the first bad value.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ._errors import BufferContiguityError, BufferTypeError, Error, FloatOverflowError
from ._layout import Field, Layout, int_range

__all__ = ["coerce_column", "field_error", "byte_view", "plain_array", "native_rows", "user_values", "DEFAULT_ENCODING"]

#: Codec for ``str`` values of ``c``/``s``/``p`` fields: the decode side's
#: default for ``text=`` (``Struct.unpack(..., encoding="ascii")``).
DEFAULT_ENCODING = "ascii"


def field_error(f: Field, row: int | None, message: str, cls: type[Error] = Error) -> Error:
    where = f"field {f.name!r} (format {_code(f)!r}"
    where += f", row {row})" if row is not None else ")"
    return cls(f"{where}: {message}")


def _code(f: Field) -> str:
    return f"{f.count}{f.code}" if f.code in "sp" else f.code


def _range_message(f: Field) -> str:
    lo, hi = int_range(f.code, f.size)
    return f"'{f.code}' format requires {lo} <= number <= {hi}"


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        # numpy's own dtype and shape: a subclass may override them in Python
        return values if type(values) is np.ndarray else np.asarray(values)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        arr = None
    if arr is None or arr.ndim != 1:
        arr = np.empty(len(values), dtype=object)
        arr[:] = list(values)
    return arr


_FAST_KINDS = {
    "int": "biu",
    "float": "biuf",
    "complex": "biufc",
    "bool": "biufc",
    "char": "S",
    "bytes": "S",
    "pascal": "",
}


def _all_bytes(values: Any, kind: str) -> bool:
    """Whether numpy may convert ``values`` itself: every value is ``bytes``
    (for ``c`` also exactly one byte long, as struct requires)."""
    if kind == "char":
        return all(isinstance(v, bytes) and len(v) == 1 for v in values)
    return all(isinstance(v, bytes) for v in values)


def coerce_column(
    f: Field, values: Any, base_row: int = 0, encoding: str = DEFAULT_ENCODING
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(column, pascal_lengths)``: ``column`` in ``f.native`` dtype,
    checked as struct checks; ``pascal_lengths`` only for ``p`` fields fed
    with Python bytes (whose length may include trailing NUL bytes that a
    numpy ``S`` array cannot remember).  ``str`` values of ``c``/``s``/``p``
    fields are encoded with ``encoding`` first and must fit the field."""
    if f.is_string:
        values = _encode_text(f, values, base_row, encoding)
    if f.code == "p" and not isinstance(values, np.ndarray):
        # keep each bytes object's own length (trailing NULs count for 'p')
        arr = np.empty(len(values), dtype=object)
        arr[:] = list(values)
    elif f.kind in ("char", "bytes") and not isinstance(values, np.ndarray) and not _all_bytes(values, f.kind):
        # numpy would turn 12 or True into b"12"/b"True" and b"" into a NUL
        # byte: judge each Python object as struct does.
        arr = np.empty(len(values), dtype=object)
        arr[:] = list(values)
    else:
        arr = _as_array(values)
        if not isinstance(values, np.ndarray) and arr.dtype.kind not in _FAST_KINDS[f.kind]:
            # numpy guessed a type struct would not (floats for big ints,
            # str for mixed rows): judge each Python object as struct does.
            arr = np.empty(len(values), dtype=object)
            arr[:] = list(values)
    if arr.ndim != 1:
        raise Error(f"field {f.name!r}: expected a 1-D column, got an array of shape {arr.shape}")
    kind = f.kind
    if kind == "int":
        return _coerce_int(f, arr, base_row), None
    if kind == "float":
        return _coerce_float(f, arr, base_row), None
    if kind == "complex":
        return _coerce_complex(f, arr, base_row), None
    if kind == "bool":
        return _coerce_bool(f, arr), None
    if kind == "char":
        return _coerce_char(f, arr, base_row), None
    return _coerce_bytes(f, arr, base_row)


# -- text ----------------------------------------------------------------------


def _text_room(f: Field) -> int:
    """The most encoded bytes a ``str`` may take in field ``f``."""
    if f.code == "c":
        return 1
    if f.code == "p":
        return max(0, min(f.count - 1, 255))
    return f.count


def _encode_one(f: Field, value: str, row: int, encoding: str, room: int) -> bytes:
    try:
        raw = value.encode(encoding)
    except UnicodeEncodeError as exc:
        raise field_error(f, row, f"cannot encode {value!r} as {encoding}: {exc.reason}") from None
    except LookupError:
        raise Error(f"unknown encoding {encoding!r}") from None
    if len(raw) > room:
        raise field_error(f, row, f"{value!r} takes {len(raw)} bytes in {encoding}, the field holds {room}")
    return raw if f.code != "c" else raw.ljust(1, b"\x00")


def _encode_unicode(f: Field, values: np.ndarray, base: int, encoding: str) -> np.ndarray | None:
    """A numpy ``U`` column encoded in one vectorised pass, as an ``S``
    column; None when some value does not encode (the per-value loop then
    finds and names it)."""
    try:
        encoded: np.ndarray = np.strings.encode(values, encoding)
    except UnicodeEncodeError:
        return None
    except LookupError:
        raise Error(f"unknown encoding {encoding!r}") from None
    room = _text_room(f)
    if encoded.dtype.itemsize > room:
        too_long = np.strings.str_len(encoded) > room
        if too_long.any():
            i = _first(too_long)
            _encode_one(f, str(values[i]), base + i, encoding, room)  # raises, naming the row
    return encoded.astype("S1") if f.code == "c" else encoded


def _encode_text(f: Field, values: Any, base: int, encoding: str) -> Any:
    """``values`` with every ``str`` encoded to ``bytes`` (other values
    untouched, for the checks that follow).  A ``str`` that does not encode,
    or whose bytes do not fit the field, is an error naming field and row:
    unlike ``bytes``, which struct truncates, text is never cut silently."""
    if isinstance(values, np.ndarray):
        values = plain_array(values)
        if values.dtype.kind == "U" and values.ndim == 1:
            fast = _encode_unicode(f, values, base, encoding)
            if fast is not None:
                return fast
            values = values.astype(object)  # a value that does not encode: the loop below names its row
        elif values.dtype.kind != "O":
            return values
        items: Sequence[Any] = values.tolist() if values.ndim == 1 else []
        if values.ndim != 1:
            return values
    else:
        try:
            items = values if isinstance(values, Sequence) else list(values)
        except TypeError:
            return values
    if not any(isinstance(v, str) for v in items):
        return values
    room = _text_room(f)
    out = np.empty(len(items), dtype=object)
    out[:] = [_encode_one(f, v, base + i, encoding, room) if isinstance(v, str) else v for i, v in enumerate(items)]
    return out


# -- integers -----------------------------------------------------------------


def _coerce_int(f: Field, arr: np.ndarray, base: int) -> np.ndarray:
    lo, hi = int_range(f.code, f.size)
    if arr.dtype.kind == "b":
        return arr.astype(f.native)
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        if len(arr) and (info.min < lo or info.max > hi):
            bad = np.zeros(len(arr), dtype=bool)
            if info.min < lo:
                bad |= arr < arr.dtype.type(lo)
            if info.max > hi:
                bad |= arr > arr.dtype.type(hi)
            if bad.any():
                raise field_error(f, base + _first(bad), _range_message(f))
        if f.code == "P" and arr.dtype.kind == "i":
            return arr.astype(np.int64).view(np.uint64).astype(f.native)
        return arr.astype(f.native)
    if arr.dtype.kind == "O":
        return _coerce_int_objects(f, arr, base, lo, hi)
    raise field_error(f, base, "required argument is not an integer")


def _coerce_int_objects(f: Field, arr: np.ndarray, base: int, lo: int, hi: int) -> np.ndarray:
    out = np.empty(len(arr), dtype=np.uint64 if f.code == "P" else f.native)
    for i, v in enumerate(arr):
        if isinstance(v, (np.bool_,)):
            raise field_error(f, base + i, "required argument is not an integer")
        try:
            n = operator.index(v)
        except TypeError:
            raise field_error(f, base + i, "required argument is not an integer") from None
        if not lo <= n <= hi:
            raise field_error(f, base + i, _range_message(f))
        out[i] = n & 0xFFFFFFFFFFFFFFFF if f.code == "P" else n
    return out.astype(f.native, copy=False)


# -- floats -------------------------------------------------------------------


def _check_overflow(f: Field, src: np.ndarray, narrow: np.ndarray, base: int) -> None:
    """struct: standard-size ``f`` and every ``e`` refuse a finite value that
    rounds to infinity; native ``@f`` stores the infinity."""
    if f.native.itemsize == 8 or (f.code == "f" and f.native_mode):
        return
    bad = np.isinf(narrow) & np.isfinite(src)
    if bad.any():
        raise field_error(f, base + _first(bad), f"float too large to pack with {f.code} format", FloatOverflowError)


def _float_objects(f: Field, arr: np.ndarray, base: int) -> np.ndarray:
    out = np.empty(len(arr), dtype=np.float64)
    for i, v in enumerate(arr):
        if isinstance(v, (str, bytes, bytearray, complex, np.complexfloating)):
            raise field_error(f, base + i, "required argument is not a float")
        try:
            out[i] = float(v)
        except Exception:  # struct replaces whatever __float__ raised
            raise field_error(f, base + i, "required argument is not a float") from None
    return out


def _coerce_float(f: Field, arr: np.ndarray, base: int) -> np.ndarray:
    if arr.dtype.kind in "biuf":
        src = arr if arr.dtype.kind == "f" and arr.dtype.itemsize >= f.native.itemsize else arr.astype(np.float64)
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
            src = arr.astype(np.float64)  # long double: struct goes through double too
    elif arr.dtype.kind == "O":
        src = _float_objects(f, arr, base)
    else:
        raise field_error(f, base, "required argument is not a float")
    if src.dtype == f.native:
        return src
    with np.errstate(over="ignore", invalid="ignore"):
        narrow = src.astype(f.native)
    _check_overflow(f, src, narrow, base)
    return narrow


def _coerce_complex(f: Field, arr: np.ndarray, base: int) -> np.ndarray:
    if arr.dtype.kind == "c" and arr.dtype.itemsize == f.native.itemsize:
        # same width (perhaps another byte order): copy the bits as the
        # compiled kernel does; a detour through complex128 would quiet
        # signalling-NaN payloads of 'F' values
        return arr.astype(f.native)
    if arr.dtype.kind in "biufc":
        src = arr.astype(np.complex128)
    elif arr.dtype.kind == "O":
        src = np.empty(len(arr), dtype=np.complex128)
        for i, v in enumerate(arr):
            if isinstance(v, (str, bytes, bytearray)):
                raise field_error(f, base + i, "required argument is not a complex")
            try:
                src[i] = complex(v)
            except Exception:  # as for floats: struct replaces the error
                raise field_error(f, base + i, "required argument is not a complex") from None
    else:
        raise field_error(f, base, "required argument is not a complex")
    if f.native == np.complex128:
        return src
    with np.errstate(over="ignore", invalid="ignore"):
        narrow = src.astype(f.native)
    if not f.native_mode:
        bad = (np.isinf(narrow.real) & np.isfinite(src.real)) | (np.isinf(narrow.imag) & np.isfinite(src.imag))
        if bad.any():
            raise field_error(f, base + _first(bad), "float too large to pack with F format", FloatOverflowError)
    return narrow


# -- bool, char, bytes ----------------------------------------------------------


def _coerce_bool(f: Field, arr: np.ndarray) -> np.ndarray:
    truth: np.ndarray  # numpy's stubs type ndarray comparisons as Any
    if arr.dtype.kind == "b":
        truth = arr.view(np.uint8) != 0  # normalise raw bytes other than 0/1
        return truth
    if arr.dtype.kind in "iufc":
        truth = arr != 0  # NaN is truthy in Python and here
        return truth
    out = np.empty(len(arr), dtype=bool)
    for i, v in enumerate(arr.tolist() if arr.dtype.kind != "O" else arr):
        out[i] = bool(v)
    return out


def _coerce_char(f: Field, arr: np.ndarray, base: int) -> np.ndarray:
    if arr.dtype.kind == "S":
        if arr.dtype.itemsize == 1:
            return arr  # the stored byte itself (NUL included)
        lengths = np.strings.str_len(arr)
        bad = lengths != 1
        if bad.any():
            raise field_error(f, base + _first(bad), "char format requires a bytes object of length 1")
        return arr.astype("S1")
    if arr.dtype.kind != "O":
        raise field_error(f, base, "char format requires a bytes object of length 1")
    out = np.empty(len(arr), dtype="S1")
    for i, v in enumerate(arr):
        if not isinstance(v, bytes) or len(v) != 1:
            raise field_error(f, base + i, "char format requires a bytes object of length 1")
        out[i] = v
    return out


def _coerce_bytes(f: Field, arr: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray | None]:
    if arr.dtype.kind == "S":
        return arr.astype(f.native), None  # truncates or pads, as struct does
    if arr.dtype.kind != "O":
        raise field_error(f, base, f"argument for '{f.code}' must be a bytes object")
    out = np.zeros(len(arr), dtype=f.native)
    lengths = np.empty(len(arr), dtype=np.int64) if f.code == "p" else None
    width = f.native.itemsize
    view = out.view(np.uint8).reshape(len(arr), width) if width else None
    for i, v in enumerate(arr):
        if not isinstance(v, (bytes, bytearray)):
            raise field_error(f, base + i, f"argument for '{f.code}' must be a bytes object")
        if view is not None:
            b = bytes(v[:width])
            view[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
        if lengths is not None:
            lengths[i] = len(v)
    return out, lengths


# -- buffers and whole rows (used by records.py and files.py) ---------------------


def byte_view(buffer: Any, *, writable: bool = False, what: str = "buffer") -> memoryview:
    """A flat, C-contiguous uint8 memoryview over ``buffer``'s bytes."""
    try:
        mv = memoryview(buffer)
    except TypeError:
        # struct's own words, raised as BufferTypeError: both TypeError (as
        # struct raises) and binrec.Error (a bad buffer, like the others).
        if writable:
            name = "None" if buffer is None else type(buffer).__name__  # as struct says it
            msg = f"argument must be read-write bytes-like object, not {name}"
        else:
            msg = f"a bytes-like object is required, not {type(buffer).__name__!r}"
        raise BufferTypeError(msg) from None
    # struct raises TypeError for a target it cannot write ("argument must be
    # read-write bytes-like object") and BufferError for a source that is not
    # contiguous: binrec's errors are both those and binrec.Error.
    if writable and mv.readonly:
        raise BufferTypeError(f"{what} is read-only: it must be a read-write bytes-like object")
    if not mv.c_contiguous:
        raise (BufferTypeError if writable else BufferContiguityError)(f"{what} must be C-contiguous")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def plain_array(arr: np.ndarray) -> np.ndarray:
    """``arr`` as a base-class ndarray view.

    A subclass can override ``dtype``, ``shape``, ``itemsize``, ``flags`` or
    ``nbytes`` with Python properties; numpy's ``asarray`` reads the array's
    own C-level fields.  Every check that guards a kernel runs on this view,
    and the kernels receive it, so their memory accesses are sized by the
    real buffer.
    """
    return arr if type(arr) is np.ndarray else np.asarray(arr)


def _by_position(layout: Layout, names: Sequence[Any]) -> bool:
    """Columns named otherwise than the format's default names (``f0, f1,
    ...``) match them by position when their count does, as numpy assigns
    one structured array to another."""
    # columns that are the default names in another order still match by name
    return len(names) == len(layout.names) and layout.default_names and set(names) != set(layout.names)


def _loaded(module: str) -> Any:
    """An optional extra's module if the user imported it (never imported
    here: a DataFrame or an Arrow table cannot exist without it)."""
    return sys.modules.get(module)


def user_values(layout: Layout, values: Any) -> Any:
    """What users hold, in a form :func:`native_rows` takes: a pandas
    DataFrame (columns by name) or an Arrow Table/RecordBatch becomes a dict
    of name -> column; a structured array or frame whose field count and
    order match a format with default names is matched by position."""
    if type(values) is np.ndarray and values.dtype == layout.dtype:
        return values  # the common case, and the cheapest to recognise
    pd = _loaded("pandas")
    if pd is not None and isinstance(values, pd.DataFrame):
        cols = list(values.columns)
        if len(set(cols)) != len(cols):
            raise Error(f"DataFrame has duplicate column names: {cols}")
        if _by_position(layout, cols):
            return {n: values.iloc[:, i].to_numpy() for i, n in enumerate(layout.names)}
        return {c if isinstance(c, str) else repr(c): values[c].to_numpy() for c in cols}
    pa = _loaded("pyarrow")
    if pa is not None and isinstance(values, (pa.Table, pa.RecordBatch)):
        cols = list(values.column_names)
        names = layout.names if _by_position(layout, cols) else cols
        return {n: values.column(i).to_numpy(zero_copy_only=False) for i, n in enumerate(names)}
    if isinstance(values, np.ndarray) and values.dtype.names is not None:
        arr = plain_array(values)
        dt = arr.dtype
        if arr.ndim == 1 and dt.names is not None and _by_position(layout, dt.names):
            fields = [dt.fields[n] for n in dt.names] if dt.fields is not None else []
            renamed = np.dtype(
                {
                    "names": list(layout.names),
                    "formats": [fld[0] for fld in fields],
                    "offsets": [fld[1] for fld in fields],
                    "itemsize": dt.itemsize,
                }
            )
            return arr.view(renamed)
    return values


def native_rows(
    layout: Layout, values: Any, encoding: str = DEFAULT_ENCODING
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``values`` validated as ``Struct.pack`` takes them (a structured
    array, a mapping of columns, a 2-D array or a sequence of tuples, or
    what :func:`user_values` turns into one), as a C-contiguous array of
    ``layout.dtype`` plus explicit Pascal-string lengths; ``str`` values of
    string fields are encoded with ``encoding``."""
    values = user_values(layout, values)
    if isinstance(values, np.ndarray):
        values = plain_array(values)
    if isinstance(values, np.ndarray) and values.dtype.names is not None:
        if values.ndim != 1:
            raise Error(f"expected a 1-D structured array, got shape {values.shape}")
        if values.dtype == layout.dtype:
            return np.ascontiguousarray(values), {}
        missing = [n for n in layout.names if n not in values.dtype.names]
        extra = [n for n in values.dtype.names if n not in layout.names]
        if missing or extra:
            raise Error(
                f"structured array fields do not match the format's names {layout.names}: "
                f"missing {missing}, unknown {extra}"
            )
        columns = {n: values[n] for n in layout.names}
        n = len(values)
    elif isinstance(values, Mapping):
        missing = [n for n in layout.names if n not in values]
        extra = [k for k in values if k not in layout.names]
        if missing or extra:
            raise Error(f"columns do not match the format's names {layout.names}: missing {missing}, unknown {extra}")
        columns = {}
        first: int | None = None  # the first column's length
        for name in layout.names:
            col = values[name]
            try:
                length = len(col)
            except TypeError:
                raise Error(f"column {name!r} must be a sequence or array, not {type(col).__name__}") from None
            if first is None:
                first = length
            elif length != first:
                raise Error(f"column {name!r} has {length} values, column {layout.names[0]!r} has {first}")
            columns[name] = col
        n = first or 0
    elif isinstance(values, np.ndarray) and values.ndim == 2:
        if values.shape[1] != len(layout.names):
            raise Error(f"pack expected {len(layout.names)} items per row, got an array of shape {values.shape}")
        columns = {name: values[:, i] for i, name in enumerate(layout.names)}
        n = values.shape[0]
    elif isinstance(values, np.ndarray) and values.dtype.kind != "O":
        # Only an object array can hold rows (tuples); any other plain
        # array that is not 2-D would fail row by row with a message
        # that names neither the field nor the shapes accepted.
        width = len(layout.names)
        hint = f"; for one field use values.reshape(-1, 1) or {{{layout.names[0]!r}: values}}" if width == 1 else ""
        raise Error(
            f"pack expected a 2-D array of shape (N, {width}) (one column per field {layout.names}), "
            "a structured array, a mapping of name -> column or a sequence of tuples; "
            f"got a {values.ndim}-D {values.dtype} array of shape {values.shape}{hint}"
        )
    else:
        columns, n = _columns_from_rows(layout, values)
    arr = np.empty(n, dtype=layout.dtype)
    plens: dict[str, np.ndarray] = {}
    for f in layout.fields:
        col, lengths = coerce_column(f, columns[f.name], encoding=encoding)
        arr[f.name] = col
        if lengths is not None:
            plens[f.name] = lengths
    return arr, plens


def _columns_from_rows(layout: Layout, rows: Any) -> tuple[dict[str, Any], int]:
    if isinstance(rows, (str, bytes, bytearray)) or not isinstance(rows, Iterable):
        raise TypeError(
            "values must be a structured array, a mapping of name -> column, "
            f"or a sequence of tuples, not {type(rows).__name__}"
        )
    rows = rows if isinstance(rows, Sequence) else list(rows)
    width = len(layout.names)
    for i, row in enumerate(rows):
        try:
            length = len(row)
        except TypeError:
            raise Error(f"row {i}: expected a tuple of {width} values, got {type(row).__name__}") from None
        if length != width or isinstance(row, (str, bytes, bytearray)):
            raise Error(f"row {i}: pack expected {width} items for packing (got {length})")
    if not rows:
        return {name: [] for name in layout.names}, 0
    cols = list(zip(*rows))
    return dict(zip(layout.names, cols)), len(rows)
