"""The record kernels in plain numpy: the fallback backend.

The interface is :class:`binrec._kernels.Kernels` (the compiled
``_kernels_c`` has the same).  This backend has no fused column pack:
``FUSED_PACK`` is False and :func:`pack_columns` answers None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from . import _pickle_scan
from ._errors import OverlapError
from ._kernels import FrameScan, FrameSpec, PackSpec
from ._layout import Field, Layout

__all__ = [
    "unpack_rows",
    "unpack_columns",
    "pack_rows",
    "pack_bytes",
    "pack_columns",
    "scan_pickle",
    "scan_frames",
    "gather_rows",
    "tally_frames",
    "unpack_frames",
    "decode_at",
    "decode_text",
    "unpack_text_rows",
    "text_to_utf8",
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


def scan_frames(
    buf: Any,
    start: int,
    count: int,
    psize: int,
    ssize: int,
    length_at: int,
    length_width: int,
    length_signed: bool,
    length_big: bool,
    counted_prefix: int,
    adjust: int,
    max_length: int,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> tuple[int, int, int]:
    """The frame scan (:meth:`binrec._kernels.Kernels.scan_frames`): a
    Python loop over the prefixes."""
    view = memoryview(buf)
    total = len(view)
    room = len(starts)
    order: Literal["big", "little"] = "big" if length_big else "little"
    pos, n = start, 0
    while count < 0 or n < count:
        if count < 0 and pos >= total:
            break
        if n == room:
            return n, pos, FrameScan.FULL
        if pos + psize > total:
            return n, pos, FrameScan.PARTIAL
        at = pos + length_at
        body = int.from_bytes(view[at : at + length_width], order, signed=length_signed) + adjust - counted_prefix
        if body < 0:
            return n, pos, FrameScan.TOO_SMALL
        if 0 <= max_length < body:
            return n, pos, FrameScan.TOO_LONG
        if body > total - pos - psize - ssize:
            return n, pos, FrameScan.PAST_END
        starts[n] = pos
        lengths[n] = body
        pos += psize + body + ssize
        n += 1
    return n, pos, FrameScan.DONE


def gather_rows(buf: Any, starts: np.ndarray, size: int, out: np.ndarray) -> np.ndarray:
    """The row gather (:meth:`binrec._kernels.Kernels.gather_rows`): a
    sliding-window view of ``buf`` indexed by row."""
    if out.shape != (len(starts), size) or size <= 0:
        raise ValueError("out must be a (len(starts), size) uint8 array and size positive")
    if len(starts) == 0:
        return out
    raw = np.frombuffer(buf, dtype=np.uint8)
    if int(starts.min()) < 0 or int(starts.max()) > len(raw) - size:
        raise ValueError("a row runs outside the buffer")
    # index the window view by row (np.take would copy the whole view first)
    out[...] = np.lib.stride_tricks.sliding_window_view(raw, size)[starts]
    return out


#: frames the Python tally scans at a time
_TALLY_CHUNK = 1 << 16


def _tag_values(raw: np.ndarray, starts: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """The tag of each frame starting at ``starts``, as int64 (an unsigned
    8-byte tag as its two's complement, as the keys hold it)."""
    width = spec.tag_width
    cols = raw[starts[:, None] + spec.tag_at + np.arange(width)].astype(np.uint64)
    if not spec.tag_big:
        cols = cols[:, ::-1]
    value = np.zeros(len(starts), dtype=np.uint64)
    for k in range(width):
        value = (value << np.uint64(8)) | cols[:, k]
    if spec.tag_signed and width < 8:
        top = np.uint64(1 << (8 * width - 1))
        value = np.where(value & top, value | ~np.uint64((1 << (8 * width)) - 1), value)
    return value.view(np.int64)


def _frame_slots(raw: np.ndarray, starts: np.ndarray, spec: FrameSpec, keys: np.ndarray) -> np.ndarray:
    """Each frame's slot: the index of its tag among the sorted ``keys``, or -1."""
    if spec.tag_width == 0:
        return np.zeros(len(starts), dtype=np.int64)
    if len(keys) == 0 or len(starts) == 0:
        return np.full(len(starts), -1, dtype=np.int64)
    values = _tag_values(raw, starts, spec)
    at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return np.where(keys[at] == values, at, -1)


def _check_keys(keys: np.ndarray) -> None:
    if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        raise ValueError("keys must be sorted and distinct")


def _scan(
    view: memoryview, start: int, count: int, room: int, spec: FrameSpec
) -> tuple[np.ndarray, np.ndarray, int, int]:
    starts, lengths = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
    n, pos, status = scan_frames(
        view, start, count, spec.psize, spec.ssize, spec.length_at, spec.length_width, spec.length_signed,
        spec.length_big, spec.counted_prefix, spec.adjust, spec.max_length, starts, lengths,
    )  # fmt: skip
    return starts[:n], lengths[:n], pos, int(status)


def tally_frames(
    buf: Any,
    start: int,
    count: int,
    spec: FrameSpec,
    keys: np.ndarray,
    sizes: np.ndarray,
    exact: bool,
    skip_unknown: bool,
    counts: np.ndarray,
) -> tuple[int, int, int]:
    """The frame tally (:meth:`binrec._kernels.Kernels.tally_frames`): the
    Python scan in chunks, each chunk's tags and lengths checked by numpy."""
    view = memoryview(buf)
    raw = np.frombuffer(view, dtype=np.uint8)
    _check_keys(keys)
    if len(sizes) != (len(keys) if spec.tag_width else 1) or len(counts) != len(sizes):
        raise ValueError("sizes and counts need one entry per key (one without a tag)")
    if not 0 <= start <= len(view):
        raise ValueError("start must lie inside the buffer")
    pos, n = start, 0
    while True:
        left = -1 if count < 0 else count - n
        room = _TALLY_CHUNK if left < 0 else min(left, _TALLY_CHUNK)
        room = min(room, (len(view) - pos) // (spec.psize + spec.ssize) + 1)  # no more than could fit
        starts, lengths, end, status = _scan(view, pos, left, room, spec)
        slots = _frame_slots(raw, starts, spec, keys)
        known = slots >= 0
        need = sizes[np.where(known, slots, 0)] if len(sizes) else np.zeros(len(slots), dtype=np.int64)
        bad = known & ((lengths < need) | ((lengths > need) if exact else False))
        if not skip_unknown:
            bad |= ~known
        if bad.any():
            k = int(np.argmax(bad))
            counts += np.bincount(slots[:k][known[:k]], minlength=len(counts))
            code = (
                FrameScan.UNKNOWN_TAG
                if not known[k]
                else FrameScan.BODY_SHORT
                if lengths[k] < need[k]
                else FrameScan.BODY_LONG
            )
            return n + k, int(starts[k]), int(code)
        counts += np.bincount(slots[known], minlength=len(counts))
        n += len(starts)
        pos = end
        if status != FrameScan.FULL:
            return n, pos, status


def unpack_frames(
    buf: Any,
    start: int,
    count: int,
    first: int,
    spec: FrameSpec,
    keys: np.ndarray,
    layouts: Sequence[Layout],
    outs: Sequence[np.ndarray],
) -> Sequence[np.ndarray]:
    """The frame decode (:meth:`binrec._kernels.Kernels.unpack_frames`): the
    Python scan, then each slot's bodies decoded as records by
    :func:`decode_at`."""
    view = memoryview(buf)
    raw = np.frombuffer(view, dtype=np.uint8)
    _check_keys(keys)
    nslots = len(keys) if spec.tag_width else 1
    if len(layouts) != nslots or len(outs) != nslots:
        raise ValueError("layouts and outs need one entry per key (one without a tag)")
    if count < 0 or not 0 <= start <= len(view):
        raise ValueError("start must lie inside the buffer and count not be negative")
    starts, lengths, _, status = _scan(view, start, count, count, spec)
    mismatch = ValueError("the frames do not match the tally the outputs were sized by")
    if len(starts) != count or status not in (FrameScan.DONE, FrameScan.FULL):
        raise mismatch
    slots = _frame_slots(raw, starts, spec, keys)
    for slot, (layout, out) in enumerate(zip(layouts, outs)):
        chosen = np.flatnonzero(slots == slot)
        if out.ndim != 1 or out.dtype.itemsize != layout.size + 8 or len(out) != len(chosen):
            raise mismatch
        if np.any(lengths[chosen] < layout.size):
            raise mismatch
        if not len(chosen):
            continue
        if layout.size:
            decode_at(layout, view, starts[chosen], None, spec.psize, out)
        rows = out.view(np.uint8).reshape(len(out), layout.size + 8)
        rows[:, layout.size :] = (chosen + first).astype(np.int64).view(np.uint8).reshape(len(out), 8)
    return outs


def decode_at(
    layout: Layout, buf: Any, starts: np.ndarray, adds: np.ndarray | None, delta: int, out: np.ndarray
) -> np.ndarray:
    """The record gather (:meth:`binrec._kernels.Kernels.decode_at`): the
    records' bytes gathered by :func:`gather_rows`, then decoded by
    :func:`unpack_rows` and copied into the leading bytes of ``out``'s rows."""
    size = layout.size
    n = len(starts)
    if out.ndim != 1 or len(out) != n or out.dtype.itemsize < size or size <= 0:
        raise ValueError("out must be 1-D, one row per start, rows of at least the layout's size")
    if adds is not None and len(adds) != n:
        raise ValueError("adds must have one entry per start")
    if n == 0:
        return out
    at = starts + delta if adds is None else starts + adds + delta
    raw = gather_rows(buf, at, size, np.empty((n, size), dtype=np.uint8))
    rows = unpack_rows(layout, raw, 0, n, np.empty(n, dtype=layout.dtype))
    out.view(np.uint8).reshape(n, out.dtype.itemsize)[:, :size] = rows.view(np.uint8).reshape(n, size)
    return out


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


# -- text fields ---------------------------------------------------------------
# The compiled loops walk each value byte by byte; here the same rules are
# whole-array operations on a (rows, width) uint8 view.

_ASCII, _LATIN1, _UTF8 = 0, 1, 2  # binrec._kernels.TextCodec

# UTF-8 sequence length by lead byte, 0 for a byte that cannot start one
# (continuation bytes, C0/C1 overlong leads, F5..FF)
_UTF8_LENGTH = np.zeros(256, dtype=np.uint8)
_UTF8_LENGTH[:0x80] = 1
_UTF8_LENGTH[0xC2:0xE0] = 2
_UTF8_LENGTH[0xE0:0xF0] = 3
_UTF8_LENGTH[0xF0:0xF5] = 4
# the second byte's range by lead byte (Python's strict decoder: no overlong
# forms, no surrogates, nothing above U+10FFFF)
_SECOND_LO = np.full(256, 0x80, dtype=np.uint8)
_SECOND_HI = np.full(256, 0xBF, dtype=np.uint8)
_SECOND_LO[0xE0], _SECOND_HI[0xED], _SECOND_LO[0xF0], _SECOND_HI[0xF4] = 0xA0, 0x9F, 0x90, 0x8F


def _text_bytes(src: np.ndarray, strip: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``src`` as a (rows, width) uint8 array, and which of its bytes are
    kept: all but the trailing run of bytes found in ``strip``."""
    if np.dtype(src.dtype).kind != "S" or src.ndim != 1:
        raise ValueError(f"text kernels take a 1-D bytes array, got {src.dtype} of {src.ndim} dimensions")
    width = src.dtype.itemsize
    raw = np.ascontiguousarray(src).view(np.uint8).reshape(len(src), width)
    table = np.zeros(256, dtype=bool)
    table[list(strip)] = True
    stripped = np.logical_and.accumulate(table[raw][:, ::-1], axis=1)[:, ::-1]
    return raw, ~stripped


def _first_bad(bad_rows: np.ndarray | np.bool_) -> int:
    """The first true entry of a per-row flag array, or -1."""
    return int(np.argmax(bad_rows)) if bad_rows.any() else -1


def _utf8_code_points(raw: np.ndarray, kept: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Validate and decode UTF-8 rows: the first bad row (or -1), which
    bytes start a character, and the code point each of those starts."""
    rows, width = raw.shape
    cont = kept & ((raw & 0xC0) == 0x80)
    lead = kept & ~cont
    length = np.where(lead, _UTF8_LENGTH[raw], 0)
    bad = lead & (length == 0)
    claimed = np.zeros_like(kept)
    nxt = [raw]
    for k in (1, 2, 3):
        shifted = np.zeros_like(raw)
        shifted[:, :-k] = raw[:, k:]
        nxt.append(shifted)
        wants = lead & (length > k)
        cut = max(0, width - k)
        bad[:, cut:] |= wants[:, cut:]  # a sequence cut off by the field's end
        if k < width:
            claimed[:, k:] |= wants[:, : width - k]
    # every continuation byte belongs to the sequence before it, and every
    # byte a sequence claims is a kept continuation byte
    bad[:, :] |= claimed != cont
    multi = lead & (length >= 2)
    bad |= multi & ((nxt[1] < _SECOND_LO[raw]) | (nxt[1] > _SECOND_HI[raw]))
    b = [x.astype(np.uint32) for x in nxt]
    cp = np.select(
        [length == 1, length == 2, length == 3],
        [b[0], ((b[0] & 0x1F) << 6) | (b[1] & 0x3F), ((b[0] & 0x0F) << 12) | ((b[1] & 0x3F) << 6) | (b[2] & 0x3F)],
        ((b[0] & 0x07) << 18) | ((b[1] & 0x3F) << 12) | ((b[2] & 0x3F) << 6) | (b[3] & 0x3F),
    )
    return _first_bad(bad.any(axis=1)), lead, cp


def _check_codec(codec: int) -> None:
    if codec not in (_ASCII, _LATIN1, _UTF8):
        raise ValueError(f"unknown text codec {codec}")


def decode_text(src: np.ndarray, out: np.ndarray, codec: int, strip: bytes) -> int:
    """The fixed-width ``S`` values of ``src`` decoded into the ``U`` array
    ``out``: see :meth:`binrec._kernels.Kernels.decode_text`."""
    _check_codec(codec)
    width = src.dtype.itemsize
    if np.dtype(out.dtype) != np.dtype(f"=U{max(1, width)}") or out.shape != src.shape:
        raise ValueError(f"decode_text: {src.dtype} into {out.dtype}")
    if width == 0 or len(src) == 0:
        return -1
    raw, kept = _text_bytes(src, strip)
    units = np.where(kept, raw, 0).astype(np.uint32)
    high = kept & (raw >= 0x80)
    if codec == _ASCII:
        bad = _first_bad(high.any(axis=1))
    elif codec == _UTF8 and high.any():
        bad, lead, cp = _utf8_code_points(raw, kept)
        if bad < 0:
            # each character moves left to its rank among its row's characters
            rank = np.cumsum(lead, axis=1) - 1
            row, col = np.nonzero(lead)
            units = np.zeros_like(units)
            units[row, rank[row, col]] = cp[row, col]
    else:
        bad = -1
    if bad < 0:
        out[...] = units.view(out.dtype).reshape(len(src))
    return bad


def unpack_text_rows(
    layout: Layout,
    buf: Any,
    offset: int,
    count: int,
    out: np.ndarray,
    text: frozenset[str] | set[str],
    codec: int,
    strip: bytes,
) -> tuple[int, str] | None:
    """Records straight into the structured array ``out`` with the fields
    in ``text`` decoded: see :meth:`binrec._kernels.Kernels.unpack_text_rows`."""
    _check_codec(codec)
    if out.ndim != 1 or len(out) != count or out.dtype.names != tuple(layout.names):
        raise ValueError("unpack_text_rows: out does not match the records")
    if count <= 0:
        return None
    size = _record_size(layout)
    whole = np.frombuffer(buf, dtype=np.uint8, count=count * size, offset=offset)
    if np.may_share_memory(whole, out):
        raise OverlapError("unpack_text_rows: the output overlaps the source bytes")
    first: tuple[int, int] | None = None
    for index, f in enumerate(layout.fields):
        dest = out[f.name]
        if f.name not in text:
            column = np.empty(count, dtype=f.native)
            unpack_columns(layout, buf, offset, count, [f], [column])
            dest[...] = column
        elif f.code == "p":
            raise ValueError(f"unpack_text_rows: text field {f.name!r} is a Pascal string")
        elif f.native.itemsize == 0:
            dest[...] = ""
        else:
            bad = decode_text(_field_view(f, buf, offset, count, size), dest, codec, strip)
            if bad >= 0 and (first is None or bad < first[0]):
                first = (bad, index)
    return None if first is None else (first[0], layout.fields[first[1]].name)


def text_to_utf8(src: np.ndarray, codec: int, strip: bytes, offsets: np.ndarray, data: np.ndarray) -> tuple[int, int]:
    """The values of ``src`` as UTF-8 in Arrow's string layout: see
    :meth:`binrec._kernels.Kernels.text_to_utf8`."""
    _check_codec(codec)
    if np.dtype(offsets.dtype) not in (np.dtype(np.int32), np.dtype(np.int64)) or offsets.shape != (len(src) + 1,):
        raise ValueError(f"text_to_utf8: offsets of {offsets.dtype}, not int32 or int64")
    width = src.dtype.itemsize
    offsets[0] = 0
    if width == 0 or len(src) == 0:
        offsets[1:] = 0
        return 0, -1
    raw, kept = _text_bytes(src, strip)
    high = kept & (raw >= 0x80)
    if codec == _ASCII:
        bad = _first_bad(high.any(axis=1))
    elif codec == _UTF8 and high.any():
        bad = _utf8_code_points(raw, kept)[0]
    else:
        bad = -1
    if bad >= 0:
        return 0, bad
    if codec == _LATIN1:
        # a byte >= 0x80 is the code point of that value: two UTF-8 bytes
        sizes = kept.astype(np.int64) + high
        flat, wide = raw[kept], high[kept]
        starts = np.cumsum(1 + wide.astype(np.int64)) - (1 + wide)
        encoded = np.empty(len(flat) + int(wide.sum()), dtype=np.uint8)
        encoded[starts] = np.where(wide, 0xC0 | (flat >> 6), flat)
        encoded[starts[wide] + 1] = 0x80 | (flat[wide] & 0x3F)
    else:
        sizes = kept.astype(np.int64)
        encoded = raw[kept]
    np.cumsum(sizes.sum(axis=1), out=offsets[1:])
    data[: len(encoded)] = encoded
    return len(encoded), -1
