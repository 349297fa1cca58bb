"""The kernel contract, written once: what ``_kernels_c`` (compiled) and
``_kernels_py`` (numpy) both provide, and the pack op codes they share.

Callers (``records.py``, ``files.py``) have already checked every length,
offset and count and coerced values to the layout's native dtype, so a
kernel only moves bytes.  An output must not overlap its input: both
backends raise :class:`binrec._errors.OverlapError` before writing anything
(``records.py`` then runs the kernel again on a copy of the input).  A
record size that is not positive is refused with ValueError.

The fused column pack (:meth:`Kernels.pack_columns`) is optional: a backend
that does not have it sets ``FUSED_PACK = False`` and its ``pack_columns``
always answers None ("not done here: use the ordinary path"), which is also
what the compiled one answers when a value fails a check.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ._layout import Field, Layout
    from ._pickle_scan import Scan

__all__ = ["FrameScan", "FrameSpec", "Kernels", "PackKind", "PackSpec", "TextCodec"]


class PackKind(enum.IntEnum):
    """What the fused pack does with one column (the codes ``_kernels_c``
    compiles in; a test checks that its ``PACK_KINDS`` agree)."""

    COPY = 0  # same width, native-order source: copy, maybe byte-swap
    I64 = 1  # int64 source, checked against [lo, hi], stored in the field's width
    U64 = 2  # uint64 source, checked against uhi, stored in the field's width
    F64_F32 = 3  # float64 source -> float32 (overflow checked when check=1)
    BOOL = 4  # native bool column: normalised to 0/1
    COPY_HALVES = 5  # complex: copy, byte-swap each half


class TextCodec(enum.IntEnum):
    """The encodings the text kernels decode without Python objects (the
    codes ``_kernels_c`` compiles in; a test checks that its ``TEXT_CODECS``
    agree).  Any other encoding goes through :mod:`codecs` in ``_text``."""

    ASCII = 0
    LATIN1 = 1
    UTF8 = 2


class FrameScan(enum.IntEnum):
    """How :meth:`Kernels.scan_frames` stopped (the codes ``_kernels_c``
    compiles in; a test checks that its ``FRAME_SCAN`` agrees).  The caller
    words the error for the frame at the position the scan stopped at."""

    DONE = 0  # the buffer ended at a frame boundary, or ``count`` frames were read
    FULL = 1  # the output arrays are full: call again from the position returned
    PARTIAL = 2  # the prefix runs past the end of the buffer
    TOO_SMALL = 3  # the length is smaller than the prefix bytes it counts
    TOO_LONG = 4  # the body is longer than max_length
    PAST_END = 5  # the frame (body and suffix) runs past the end of the buffer
    UNKNOWN_TAG = 6  # (tally) the frame's tag has no format, and unknown tags are errors
    BODY_SHORT = 7  # (tally) the body is shorter than its type's format
    BODY_LONG = 8  # (tally) the body is longer than its type's format, and that is an error


class FrameSpec(NamedTuple):
    """How to walk and sort frames, for :meth:`Kernels.tally_frames` and
    :meth:`Kernels.unpack_frames` (``Framing`` builds one per framing).
    The body of a frame is ``length + adjust - counted_prefix`` bytes
    after its ``psize``-byte prefix; ``ssize`` suffix bytes follow.
    ``tag_width`` 0: no tag (every frame is of the one type)."""

    psize: int
    ssize: int
    length_at: int
    length_width: int
    length_signed: bool
    length_big: bool
    counted_prefix: int
    adjust: int
    max_length: int  # < 0: no limit
    tag_at: int
    tag_width: int
    tag_signed: bool
    tag_big: bool


#: One field's column for :meth:`Kernels.pack_columns`: ``(kind, array, lo,
#: hi, uhi, check)``: a :class:`PackKind`, a 1-D C-contiguous array, the
#: smallest and largest value allowed (``I64``), the largest (``U64``), and 1
#: to refuse a finite float64 that overflows float32 (``F64_F32``); unused
#: entries are 0.  A plain tuple, not a NamedTuple: records.py builds one per
#: field on every pack, where a NamedTuple costs several times as much.
PackSpec = tuple[int, np.ndarray, int, int, int, int]


class Kernels(Protocol):
    """The interface of a kernels module (both backends satisfy it)."""

    #: ``"compiled"`` or ``"python"``: what ``binrec.backend`` reports.
    NAME: str
    #: Whether :meth:`pack_columns` can ever answer (False: always None).
    FUSED_PACK: bool

    def unpack_rows(
        self, layout: Layout, buf: Any, offset: int, count: int, out: np.ndarray, threads: int = 1
    ) -> np.ndarray:
        """Decode ``count`` records of ``buf`` (a 1-D uint8 buffer) starting
        at byte ``offset`` into ``out`` (C-contiguous, ``layout.dtype``,
        shape ``(count,)``); padding bytes of ``out`` are zeroed."""
        ...

    def unpack_columns(
        self,
        layout: Layout,
        buf: Any,
        offset: int,
        count: int,
        fields: Sequence[Field],
        outs: Sequence[np.ndarray],
        threads: int = 1,
    ) -> list[np.ndarray]:
        """Decode the selected ``fields`` into the 1-D arrays ``outs`` (same
        order, each of the field's native dtype)."""
        ...

    def pack_rows(
        self, layout: Layout, arr: np.ndarray, plens: Mapping[str, np.ndarray], target: Any, threads: int = 1
    ) -> None:
        """Encode ``arr`` (C-contiguous, ``layout.dtype``) into ``target`` (a
        writable 1-D uint8 buffer of ``len(arr) * layout.size`` bytes).
        ``plens`` maps a Pascal field name to explicit string lengths (or is
        empty)."""
        ...

    def pack_bytes(self, layout: Layout, arr: np.ndarray, plens: Mapping[str, np.ndarray], threads: int = 1) -> bytes:
        """:meth:`pack_rows` into a new ``bytes`` object."""
        ...

    def pack_columns(self, layout: Layout, specs: Sequence[PackSpec], threads: int = 1) -> bytes | None:
        """Encode columns straight to bytes, one ``PackSpec`` tuple per field
        of a layout without Pascal fields, all of one length.  None when a
        value fails a check, or always where ``FUSED_PACK`` is False."""
        ...

    def decode_text(self, src: np.ndarray, out: np.ndarray, codec: int, strip: bytes) -> int:
        """Decode the 1-D ``S`` array ``src`` into the 1-D ``U`` array
        ``out`` (same length, one code point per byte of width, native
        order; either may be strided, ``out`` unaligned): each value loses
        its trailing bytes found in ``strip``, is decoded with the
        :class:`TextCodec` ``codec`` (strictly, as ``bytes.decode``) and
        NUL-filled.  Answers -1, or the first row that does not decode
        (``out`` is then partly written)."""
        ...

    def unpack_text_rows(
        self,
        layout: Layout,
        buf: Any,
        offset: int,
        count: int,
        out: np.ndarray,
        text: frozenset[str] | set[str],
        codec: int,
        strip: bytes,
    ) -> tuple[int, str] | None:
        """Decode ``count`` records from ``buf`` at ``offset`` straight into
        the C-contiguous structured array ``out``: ``layout``'s fields,
        packed, each named in ``text`` (``c`` or ``s`` fields) as ``U`` of
        its byte width and decoded as by :meth:`decode_text`, the others in
        their native dtype as :meth:`unpack_columns` writes them.  Answers
        None, or ``(row, field name)`` of the first value (the lowest row,
        then the first field in format order) that does not decode."""
        ...

    def text_to_utf8(
        self, src: np.ndarray, codec: int, strip: bytes, offsets: np.ndarray, data: np.ndarray
    ) -> tuple[int, int]:
        """The values of ``src``, stripped and decoded as for
        :meth:`decode_text`, written as UTF-8 one after another into the
        uint8 array ``data`` (room for ``len(src) * width`` bytes, twice that
        for Latin-1), with ``offsets`` (int32 or int64, ``len(src) + 1``
        entries) where each starts and the last ends: Arrow's string
        layout.  Answers ``(bytes written, -1)``, or ``(0, row)`` for the
        first row that does not decode."""
        ...

    def scan_frames(
        self,
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
        """Walk the frames of ``buf`` (a 1-D uint8 buffer) from byte
        ``start``: each has a ``psize``-byte prefix holding at ``length_at``
        a ``length_width``-byte integer (signed or not, big- or
        little-endian), a body of ``length + adjust - counted_prefix`` bytes,
        then ``ssize`` suffix bytes.  Writes each frame's start and body
        length into the int64 arrays ``starts`` and ``lengths`` until
        ``count`` frames (-1: to the end of ``buf``) or the arrays are full.
        ``max_length`` < 0 means no limit.  Answers ``(frames written,
        position after them, FrameScan)``; a frame that fails a check is not
        written and the position is its start."""
        ...

    def gather_rows(self, buf: Any, starts: np.ndarray, size: int, out: np.ndarray) -> np.ndarray:
        """Copy the ``size`` bytes at each int64 offset of ``starts`` in
        ``buf`` (a 1-D uint8 buffer) into row ``i`` of ``out`` (a C-contiguous
        ``(len(starts), size)`` uint8 array, ``size`` > 0); answers ``out``.
        A row outside ``buf`` is refused with ValueError."""
        ...

    def tally_frames(
        self,
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
        """Walk the frames of ``buf`` from ``start`` as :meth:`scan_frames`
        does (``count`` -1: to the end), writing nothing but adding one to
        ``counts[slot]`` per frame: the slot is the index of the frame's tag
        value in ``keys`` (sorted distinct int64; an unsigned 8-byte tag
        as its two's complement), or 0 without a tag.  A frame whose body
        is shorter than ``sizes[slot]`` (or longer, with ``exact``), or
        whose tag is not a key (unless ``skip_unknown``: it is walked past,
        not counted), stops the walk there.  Answers ``(frames walked,
        position after them, FrameScan)``."""
        ...

    def unpack_frames(
        self,
        buf: Any,
        start: int,
        count: int,
        first: int,
        spec: FrameSpec,
        keys: np.ndarray,
        layouts: Sequence[Layout],
        outs: Sequence[np.ndarray],
    ) -> Sequence[np.ndarray]:
        """Walk ``count`` frames from ``start`` (a walk :meth:`tally_frames`
        answered DONE for, or stopped after) and decode each frame's body
        with its slot's layout into the next row of that slot's output, a
        1-D array whose rows are the layout's bytes then an int64 frame
        number (``first`` + the frame's position in the walk).  Each output
        must have exactly as many rows as the tally counted: ValueError
        otherwise.  Frames whose tag is not a key are passed over."""
        ...

    def decode_at(
        self, layout: Layout, buf: Any, starts: np.ndarray, adds: np.ndarray | None, delta: int, out: np.ndarray
    ) -> np.ndarray:
        """Decode one ``layout`` record at byte ``starts[i] + adds[i] +
        delta`` (``adds`` None: 0) of ``buf`` into row ``i`` of the 1-D
        ``out`` (rows of at least ``layout.size`` bytes; bytes past it are
        left alone).  A record outside ``buf`` is refused with ValueError."""
        ...

    def scan_pickle(
        self, data: Any, start: int = 0, more: Callable[[], bytes] | None = None, *, collect: bool = False
    ) -> Scan:
        """The pickle opcode scan: :func:`binrec._pickle_scan.scan` itself in
        the Python backend, its compiled twin (same answers) in the other."""
        ...
