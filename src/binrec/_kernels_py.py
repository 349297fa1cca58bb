"""The record kernels in plain numpy: the fallback backend.

The interface is :class:`binrec._kernels.Kernels` (the compiled
``_kernels_c`` has the same).  This backend has no fused column pack:
``FUSED_PACK`` is False and :func:`pack_columns` answers None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _pickle_scan
from ._errors import OverlapError
from ._kernels import PackSpec
from ._layout import Field, Layout

__all__ = [
    "unpack_rows",
    "unpack_columns",
    "pack_rows",
    "pack_bytes",
    "pack_columns",
    "scan_pickle",
    "NAME",
    "FUSED_PACK",
]

NAME = "python"
FUSED_PACK = False


def scan_pickle(
    data: Any, start: int = 0, more: Callable[[], bytes] | None = None, *, collect: bool = False
) -> _pickle_scan.Scan:
    """The pickle opcode scan: the specification itself,
    :func:`binrec._pickle_scan.scan` (looked up at each call)."""
    return _pickle_scan.scan(data, start, more, collect=collect)


def _record_size(layout: Layout) -> int:
    if layout.size <= 0:
        raise ValueError(f"record size must be positive, got {layout.size}")
    return layout.size


def _raw_rows(layout: Layout, buf: Any, offset: int, count: int) -> np.ndarray:
    return np.frombuffer(buf, dtype=layout.wire_dtype, count=count, offset=offset)


def _bytes2d(buf: Any, offset: int, count: int, size: int) -> np.ndarray:
    return np.frombuffer(buf, dtype=np.uint8, count=count * size, offset=offset).reshape(count, size)


def _pascal_mask(lengths: np.ndarray, width: int) -> np.ndarray:
    """(count, width) bool: which data bytes of each Pascal string are kept."""
    return np.arange(width, dtype=np.int64)[None, :] < lengths[:, None]


def unpack_rows(layout: Layout, buf: Any, offset: int, count: int, out: np.ndarray, threads: int = 1) -> np.ndarray:
    size = _record_size(layout)
    raw = _raw_rows(layout, buf, offset, count)
    if count and np.may_share_memory(raw, out):
        # zeroing the padding below would destroy the source
        raise OverlapError("unpack_rows: the output overlaps the source bytes")
    out_bytes = out.view(np.uint8).reshape(count, size)
    # Padding bytes in the output are zeroed, so out.tobytes() is deterministic.
    out_bytes[...] = 0
    # Structured assignment copies field by field, by position, converting
    # byte order; '?' comes from u1 so any nonzero byte becomes True.
    out[...] = raw
    if count:
        src = _bytes2d(buf, offset, count, layout.size)
        for f in layout.fields:
            if f.code == "p" and f.count > 1:
                width = f.count - 1
                lengths = src[:, f.offset]
                data = out_bytes[:, f.offset : f.offset + width]
                data[~_pascal_mask(lengths, width)] = 0
                out_bytes[:, f.offset + width] = 0  # the byte the length used
            elif f.code == "p" and f.count == 1:
                out_bytes[:, f.offset] = 0
    return out


def _field_view(f: Field, buf: Any, offset: int, count: int, size: int) -> np.ndarray:
    """Strided, zero-copy view of one field's wire bytes in every record."""
    start = offset + f.offset + (1 if f.code == "p" and f.count else 0)
    whole = np.frombuffer(buf, dtype=np.uint8, count=count * size, offset=offset) if count else None
    if whole is None:
        return np.empty(0, dtype=f.wire)
    return np.ndarray(
        shape=(count,),
        dtype=f.wire,
        buffer=whole,
        offset=start - offset,
        strides=(size,),
    )


def unpack_columns(
    layout: Layout,
    buf: Any,
    offset: int,
    count: int,
    fields: Sequence[Field],
    outs: Sequence[np.ndarray],
    threads: int = 1,
) -> list[np.ndarray]:
    size = _record_size(layout)
    if count:
        # numpy copes with one overlapping assignment, but a later column
        # would read source bytes an earlier one overwrote
        whole = np.frombuffer(buf, dtype=np.uint8, count=count * size, offset=offset)
        for out in outs:
            if np.may_share_memory(whole, out):
                raise OverlapError("unpack_columns: an output overlaps the source bytes")
    for f, out in zip(fields, outs):
        view = _field_view(f, buf, offset, count, size)
        if f.code == "?":
            np.not_equal(view, 0, out=out)
        elif f.code == "p":
            if f.count > 1 and count:
                src = _bytes2d(buf, offset, count, size)
                lengths = src[:, f.offset]
                data = src[:, f.offset + 1 : f.offset + f.count].copy()
                data[~_pascal_mask(lengths, f.count - 1)] = 0
                out.view(np.uint8).reshape(count, f.count - 1)[...] = data
            elif count:
                out[...] = b""
        else:
            out[...] = view
    return list(outs)


def pack_rows(
    layout: Layout,
    arr: np.ndarray,
    plens: Mapping[str, np.ndarray],
    target: Any,
    threads: int = 1,
) -> None:
    n = len(arr)
    if n == 0:
        return
    window = np.frombuffer(target, dtype=np.uint8, count=n * _record_size(layout))
    if np.may_share_memory(arr, window):
        raise OverlapError("pack_rows: the output overlaps the source bytes")
    window[...] = _encode(layout, arr, plens).reshape(-1)


def pack_bytes(layout: Layout, arr: np.ndarray, plens: Mapping[str, np.ndarray], threads: int = 1) -> bytes:
    if len(arr) == 0:
        return b""
    _record_size(layout)
    return _encode(layout, arr, plens).tobytes()


def pack_columns(layout: Layout, specs: Sequence[PackSpec], threads: int = 1) -> bytes | None:
    """Not supported here: None sends the caller to the ordinary path."""
    return None


def _encode(layout: Layout, arr: np.ndarray, plens: Mapping[str, np.ndarray]) -> np.ndarray:
    """The wire bytes of ``arr`` as an (n, size) uint8 array."""
    n = len(arr)
    size = layout.size
    tmp = np.zeros(n, dtype=layout.wire_dtype)
    tmp_bytes = tmp.view(np.uint8).reshape(n, size)
    bool_fields = [f for f in layout.fields if f.code == "?"]
    if bool_fields:
        # numpy's bool casts may copy a raw byte other than 0/1; struct packs
        # truthiness, so normalise from the bytes.
        src_bytes = arr.view(np.uint8).reshape(n, size)
    tmp[...] = arr
    for f in bool_fields:
        tmp_bytes[:, f.offset] = src_bytes[:, f.offset] != 0
    for f in layout.fields:
        if f.code != "p" or f.count == 0:
            continue
        width = f.count - 1
        if f.name in plens:
            lengths = np.minimum(plens[f.name], width)
        else:
            lengths = np.strings.str_len(arr[f.name]) if width else np.zeros(n, np.int64)
        tmp_bytes[:, f.offset] = np.minimum(lengths, 255).astype(np.uint8)
        if width and f.name in plens:
            # explicit lengths may keep trailing NUL bytes; data beyond is zero
            data = tmp_bytes[:, f.offset + 1 : f.offset + f.count]
            data[~_pascal_mask(np.asarray(lengths), width)] = 0
    return tmp_bytes
