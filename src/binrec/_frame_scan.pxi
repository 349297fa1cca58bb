# Included by _kernels_c.pyx: the frame scan of binrec.Framing
# (binrec._kernels.Kernels.scan_frames; the Python twin is in _kernels_py).
# Every check runs before a frame is recorded; the loop runs without the GIL.

cdef enum:
    FS_DONE = 0
    FS_FULL = 1
    FS_PARTIAL = 2
    FS_TOO_SMALL = 3
    FS_TOO_LONG = 4
    FS_PAST_END = 5

FRAME_SCAN = {"DONE": FS_DONE, "FULL": FS_FULL, "PARTIAL": FS_PARTIAL,
              "TOO_SMALL": FS_TOO_SMALL, "TOO_LONG": FS_TOO_LONG, "PAST_END": FS_PAST_END}

# A length at or above 2**62 (or at or below -2**62) is past the end of any
# buffer and above any max_length (Framing allows at most 2**61): saturating
# there keeps length + adjust - counted_prefix inside int64 (|adjust| <= 2**32).
cdef int64_t FS_HUGE = (<int64_t>1) << 62


cdef inline int64_t _frame_length(const unsigned char *p, int width, bint is_signed, bint big) noexcept nogil:
    """The ``width``-byte integer at ``p``, saturated at FS_HUGE."""
    cdef uint64_t v = 0
    cdef int k
    if big:
        for k in range(width):
            v = (v << 8) | p[k]
    else:
        for k in range(width - 1, -1, -1):
            v = (v << 8) | p[k]
    if is_signed and width < 8 and (v >> (8 * width - 1)) & 1:
        v |= (<uint64_t>0xFFFFFFFFFFFFFFFF) << (8 * width)
    cdef int64_t s
    if is_signed:
        s = <int64_t>v  # two's complement: negative values stay negative
        if s >= FS_HUGE:
            return FS_HUGE
        if s <= -FS_HUGE:
            return -FS_HUGE
        return s
    if v >= <uint64_t>FS_HUGE:
        return FS_HUGE
    return <int64_t>v


cdef int _scan_frames(const unsigned char *buf, Py_ssize_t total, Py_ssize_t *pos_io, Py_ssize_t *n_io,
                      Py_ssize_t count, Py_ssize_t room, Py_ssize_t psize, Py_ssize_t ssize,
                      Py_ssize_t length_at, int width, bint is_signed, bint big, int64_t counted_prefix,
                      int64_t adjust, int64_t max_length, int64_t *starts, int64_t *lengths) noexcept nogil:
    cdef Py_ssize_t pos = pos_io[0]
    cdef Py_ssize_t n = 0
    cdef int64_t body
    cdef int status = FS_DONE
    while count < 0 or n < count:
        if count < 0 and pos >= total:
            break
        if n == room:
            status = FS_FULL
            break
        if psize > total - pos:
            status = FS_PARTIAL
            break
        body = _frame_length(buf + pos + length_at, width, is_signed, big)
        if body == FS_HUGE:
            body = FS_HUGE  # past any max_length and any buffer
        else:
            body = body + adjust - counted_prefix
        if body < 0:
            status = FS_TOO_SMALL
            break
        if max_length >= 0 and body > max_length:
            status = FS_TOO_LONG
            break
        if body > <int64_t>(total - pos - psize - ssize):
            status = FS_PAST_END
            break
        starts[n] = pos
        lengths[n] = body
        pos += psize + <Py_ssize_t>body + ssize
        n += 1
    pos_io[0] = pos
    n_io[0] = n
    return status


def scan_frames(buf, Py_ssize_t start, Py_ssize_t count, Py_ssize_t psize, Py_ssize_t ssize,
                Py_ssize_t length_at, int length_width, bint length_signed, bint length_big,
                int64_t counted_prefix, int64_t adjust, int64_t max_length, starts, lengths):
    cdef const unsigned char[::1] data = buf
    cdef int64_t[::1] out_starts = starts
    cdef int64_t[::1] out_lengths = lengths
    cdef Py_ssize_t room = out_starts.shape[0]
    cdef Py_ssize_t total = data.shape[0]
    cdef Py_ssize_t pos = start
    cdef Py_ssize_t n = 0
    cdef int status
    # an empty view has no element to point at: these stand in, never read
    # (the scan reads a prefix only after checking it fits) or written (a
    # full output stops the scan first)
    cdef unsigned char no_byte = 0
    cdef int64_t no_int = 0
    cdef const unsigned char *p = &data[0] if total > 0 else &no_byte
    cdef int64_t *ps = &out_starts[0] if room > 0 else &no_int
    cdef int64_t *pl = &out_lengths[0] if room > 0 else &no_int
    if out_lengths.shape[0] != room:
        raise ValueError("starts and lengths must have the same length")
    if length_width < 1 or length_width > 8 or length_at < 0 or length_at + length_width > psize:
        raise ValueError("the length field must lie inside the prefix")
    if start < 0 or start > total or ssize < 0:
        raise ValueError("start must lie inside the buffer")
    with nogil:
        status = _scan_frames(p, total, &pos, &n, count, room, psize, ssize, length_at, length_width,
                              length_signed, length_big, counted_prefix, adjust, max_length, ps, pl)
    return n, pos, status


cdef int _gather_rows(const unsigned char *buf, Py_ssize_t total, const int64_t *starts, Py_ssize_t n,
                      Py_ssize_t size, unsigned char *out) noexcept nogil:
    cdef Py_ssize_t i
    cdef int64_t s
    for i in range(n):
        s = starts[i]
        if s < 0 or s > total - size:
            return -1
        memcpy(out + i * size, buf + s, size)
    return 0


def gather_rows(buf, starts, Py_ssize_t size, out):
    cdef const unsigned char[::1] data = buf
    cdef const int64_t[::1] at = starts
    cdef unsigned char[:, ::1] dst = out
    cdef Py_ssize_t n = at.shape[0]
    cdef Py_ssize_t total = data.shape[0]
    cdef int bad
    if dst.shape[0] != n or dst.shape[1] != size or size <= 0:
        raise ValueError("out must be a (len(starts), size) uint8 array and size positive")
    if n == 0:
        return out
    with nogil:
        bad = _gather_rows(&data[0], total, &at[0], n, size, &dst[0, 0])
    if bad:
        raise ValueError("a row runs outside the buffer")
    return out


# -- counting and decoding walks (Framing.unpack, Framing.scan) -----------------
from libc.stdint cimport int16_t

# Both walk the frames as _scan_frames does (the same checks, in the same
# order), read each frame's tag and look up its type's slot.  The tally only
# counts frames per type, so the caller can allocate every output once at its
# final size; the decode walk then writes each body straight into its type's
# output row (body fields, then the int64 frame number), without the GIL.

cdef enum:
    FIX_EVERY = 256        # frames between batched fix-ups (a power of two)
    FS_UNKNOWN_TAG = 6
    FS_BODY_SHORT = 7
    FS_BODY_LONG = 8

FRAME_SCAN.update({"UNKNOWN_TAG": FS_UNKNOWN_TAG, "BODY_SHORT": FS_BODY_SHORT, "BODY_LONG": FS_BODY_LONG})

ctypedef struct FrameWalk:
    Py_ssize_t psize
    Py_ssize_t ssize
    Py_ssize_t length_at
    int length_width
    bint length_signed
    bint length_big
    int64_t counted_prefix
    int64_t adjust
    int64_t max_length
    Py_ssize_t tag_at
    int tag_width          # 0: no tag, every frame is slot 0
    bint tag_signed
    bint tag_big

ctypedef struct FrameSlot:
    unsigned char *out     # the type's output rows
    Py_ssize_t stride      # bytes per output row (body fields, then 8 for the frame number)
    Py_ssize_t size        # the body format's size
    Py_ssize_t cap         # rows the output holds
    Py_ssize_t used
    Py_ssize_t fixed       # rows whose fix-ups have run (the rest are raw copies)
    const Op *ops          # the body's row plan
    Py_ssize_t nops


cdef int _frame_walk(FrameWalk *w, spec) except -1:
    """Fill ``w`` from the FrameSpec tuple (binrec._kernels.FrameSpec), checked."""
    (w.psize, w.ssize, w.length_at, w.length_width, w.length_signed, w.length_big, w.counted_prefix,
     w.adjust, w.max_length, w.tag_at, w.tag_width, w.tag_signed, w.tag_big) = spec
    if w.psize <= 0 or w.ssize < 0:
        raise ValueError("the prefix size must be positive and the suffix size not negative")
    if w.length_width < 1 or w.length_width > 8 or w.length_at < 0 or w.length_at + w.length_width > w.psize:
        raise ValueError("the length field must lie inside the prefix")
    if w.tag_width < 0 or w.tag_width > 8 or (w.tag_width and (w.tag_at < 0 or w.tag_at + w.tag_width > w.psize)):
        raise ValueError("the tag field must lie inside the prefix")
    if w.adjust > (<int64_t>1) << 32 or w.adjust < -((<int64_t>1) << 32) or w.max_length > FS_HUGE // 2:
        raise ValueError("adjust or max_length out of range")
    return 0


cdef inline int _frame_at(const unsigned char *buf, Py_ssize_t total, Py_ssize_t pos, const FrameWalk *w,
                          int64_t *body_out) noexcept nogil:
    """FS_DONE and the body length of the frame at ``pos``, or why it is bad."""
    cdef int64_t body
    if w.psize > total - pos:
        return FS_PARTIAL
    body = _frame_length(buf + pos + w.length_at, w.length_width, w.length_signed, w.length_big)
    if body != FS_HUGE:
        body = body + w.adjust - w.counted_prefix
    if body < 0:
        return FS_TOO_SMALL
    if w.max_length >= 0 and body > w.max_length:
        return FS_TOO_LONG
    if body > <int64_t>(total - pos - w.psize - w.ssize):
        return FS_PAST_END
    body_out[0] = body
    return FS_DONE


cdef inline int64_t _tag_value(const unsigned char *p, int width, bint is_signed, bint big) noexcept nogil:
    """The ``width``-byte tag at ``p`` as int64 (an unsigned 8-byte value wraps)."""
    cdef uint64_t v = 0
    cdef int k
    if big:
        for k in range(width):
            v = (v << 8) | p[k]
    else:
        for k in range(width - 1, -1, -1):
            v = (v << 8) | p[k]
    if is_signed and width < 8 and (v >> (8 * width - 1)) & 1:
        v |= (<uint64_t>0xFFFFFFFFFFFFFFFF) << (8 * width)
    return <int64_t>v


cdef inline Py_ssize_t _key_slot(int64_t value, const int64_t *keys, Py_ssize_t nkeys) noexcept nogil:
    """The index of ``value`` in the sorted ``keys``, or -1."""
    cdef Py_ssize_t lo = 0, hi = nkeys, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    if lo < nkeys and keys[lo] == value:
        return lo
    return -1


ctypedef struct SlotTable:
    int16_t table[256]     # a one-byte tag's slot, by byte
    bint by_byte
    const int64_t *keys    # else: a binary search over the sorted keys
    Py_ssize_t nkeys


cdef int _slot_table(SlotTable *t, const FrameWalk *w, const int64_t[::1] keys) except -1:
    """Tag -> slot for ``keys`` (the caller keeps ``keys`` alive)."""
    cdef int b
    cdef unsigned char byte
    cdef Py_ssize_t i
    t.nkeys = keys.shape[0]
    t.keys = &keys[0] if t.nkeys > 0 else NULL
    t.by_byte = False
    if t.nkeys > 32767:
        raise ValueError("too many keys")
    for i in range(1, t.nkeys):
        if keys[i - 1] >= keys[i]:
            raise ValueError("keys must be sorted and distinct")
    if w.tag_width == 1:
        t.by_byte = True
        for b in range(256):
            byte = <unsigned char>b
            t.table[b] = <int16_t>_key_slot(_tag_value(&byte, 1, w.tag_signed, False), t.keys, t.nkeys)
    return 0


cdef inline Py_ssize_t _slot_of(const unsigned char *prefix, const FrameWalk *w, const SlotTable *t) noexcept nogil:
    if w.tag_width == 0:
        return 0
    if t.by_byte:
        return t.table[prefix[w.tag_at]]
    return _key_slot(_tag_value(prefix + w.tag_at, w.tag_width, w.tag_signed, w.tag_big), t.keys, t.nkeys)


cdef int _tally_loop(const unsigned char *buf, Py_ssize_t total, Py_ssize_t *pos_io, Py_ssize_t *n_io,
                     Py_ssize_t count, const FrameWalk *w, const SlotTable *t, const int64_t *sizes, bint exact,
                     bint skip_unknown, int64_t *counts) noexcept nogil:
    cdef Py_ssize_t pos = pos_io[0]
    cdef Py_ssize_t n = 0, s
    cdef int64_t body = 0
    cdef int status = FS_DONE
    while count < 0 or n < count:
        if count < 0 and pos >= total:
            break
        status = _frame_at(buf, total, pos, w, &body)
        if status != FS_DONE:
            break
        s = _slot_of(buf + pos, w, t)
        if s < 0:
            if not skip_unknown:
                status = FS_UNKNOWN_TAG
                break
        elif body < sizes[s]:
            status = FS_BODY_SHORT
            break
        elif exact and body > sizes[s]:
            status = FS_BODY_LONG
            break
        else:
            counts[s] += 1
        pos += w.psize + <Py_ssize_t>body + w.ssize
        n += 1
    pos_io[0] = pos
    n_io[0] = n
    return status


def tally_frames(buf, Py_ssize_t start, Py_ssize_t count, spec, keys, sizes, bint exact, bint skip_unknown, counts):
    cdef FrameWalk w
    _frame_walk(&w, spec)
    cdef const unsigned char[::1] data = buf
    cdef const int64_t[::1] body_sizes = sizes
    cdef int64_t[::1] out = counts
    cdef const int64_t[::1] key_values = keys
    cdef SlotTable t
    _slot_table(&t, &w, key_values)
    cdef Py_ssize_t total = data.shape[0]
    cdef Py_ssize_t pos = start, n = 0
    cdef int status
    cdef unsigned char no_byte = 0
    cdef const unsigned char *p = &data[0] if total > 0 else &no_byte
    cdef Py_ssize_t nslots = t.nkeys if w.tag_width else 1
    if body_sizes.shape[0] != nslots or out.shape[0] != nslots:
        raise ValueError("sizes and counts need one entry per key (one without a tag)")
    if start < 0 or start > total:
        raise ValueError("start must lie inside the buffer")
    cdef int64_t no_int = 0
    cdef const int64_t *ps = &body_sizes[0] if nslots > 0 else &no_int
    cdef int64_t *pc = &out[0] if nslots > 0 else &no_int
    with nogil:
        status = _tally_loop(p, total, &pos, &n, count, &w, &t, ps, exact, skip_unknown, pc)
    return n, pos, status


cdef inline void _fix_row(const Op *o, unsigned char *row) noexcept nogil:
    """One fix-up op on one row: the common byte swaps inline, the rest
    through _fix_block."""
    cdef int64_t k
    cdef unsigned char *p = row + o.src
    if o.op == OP_SWAP8:
        for k in range(o.n):
            br_swap8(p + 8 * k, p + 8 * k)
    elif o.op == OP_SWAP4:
        for k in range(o.n):
            br_swap4(p + 4 * k, p + 4 * k)
    elif o.op == OP_SWAP2:
        for k in range(o.n):
            br_swap2(p + 2 * k, p + 2 * k)
    else:
        _fix_block(o, row, 0, 1)


cdef inline void _decode_row(const FrameSlot *sl, const unsigned char *src, unsigned char *row) noexcept nogil:
    cdef Py_ssize_t j
    if sl.size <= 64:
        br_copy_small(src, row, sl.size)
    else:
        memcpy(row, src, sl.size)
    for j in range(sl.nops):
        _fix_row(&sl.ops[j], row)


cdef void _fix_slots(FrameSlot *slots, Py_ssize_t nslots) noexcept nogil:
    """Run each slot's fix-ups over the rows copied since the last call, one
    op over many rows (while they are still in cache)."""
    cdef Py_ssize_t i, j
    cdef FrameSlot *sl
    for i in range(nslots):
        sl = &slots[i]
        if sl.used > sl.fixed:
            for j in range(sl.nops):
                _fix_block(&sl.ops[j], sl.out + sl.fixed * sl.stride, sl.stride, sl.used - sl.fixed)
            sl.fixed = sl.used


cdef int _unpack_loop(const unsigned char *buf, Py_ssize_t total, Py_ssize_t pos, Py_ssize_t count,
                      int64_t first, const FrameWalk *w, const SlotTable *t, FrameSlot *slots,
                      Py_ssize_t nslots) noexcept nogil:
    # With few types, bodies are copied raw and fixed up per type every
    # FIX_EVERY frames (one op over many rows: predictable branches); with
    # many, each row is fixed up as it is copied.
    cdef Py_ssize_t n = 0, s
    cdef int64_t body = 0, frame
    cdef int status = FS_DONE
    cdef FrameSlot *sl
    cdef unsigned char *row
    cdef bint batched = nslots <= 64
    while n < count:
        status = _frame_at(buf, total, pos, w, &body)
        if status != FS_DONE:
            break
        s = _slot_of(buf + pos, w, t)
        if s >= 0:
            sl = &slots[s]
            if sl.used >= sl.cap or body < sl.size:
                status = FS_FULL
                break
            row = sl.out + sl.used * sl.stride
            if batched:
                if sl.size <= 64:
                    br_copy_small(buf + pos + w.psize, row, sl.size)
                else:
                    memcpy(row, buf + pos + w.psize, sl.size)
            else:
                _decode_row(sl, buf + pos + w.psize, row)
                sl.fixed = sl.used + 1
            frame = first + n
            memcpy(row + sl.size, &frame, 8)
            sl.used += 1
        pos += w.psize + <Py_ssize_t>body + w.ssize
        n += 1
        if batched and (n & (FIX_EVERY - 1)) == 0:
            _fix_slots(slots, nslots)
    _fix_slots(slots, nslots)
    return status


def unpack_frames(buf, Py_ssize_t start, Py_ssize_t count, int64_t first, spec, keys, layouts, outs):
    cdef FrameWalk w
    _frame_walk(&w, spec)
    cdef const unsigned char[::1] data = buf
    cdef const int64_t[::1] key_values = keys
    cdef SlotTable t
    _slot_table(&t, &w, key_values)
    cdef Py_ssize_t total = data.shape[0]
    cdef Py_ssize_t nslots = t.nkeys if w.tag_width else 1
    cdef Py_ssize_t i
    cdef int status
    cdef unsigned char no_byte = 0
    cdef const unsigned char *p = &data[0] if total > 0 else &no_byte
    cdef FrameSlot *slots
    cdef const int64_t[:, ::1] plan
    cdef unsigned char[::1] dst
    if len(layouts) != nslots or len(outs) != nslots:
        raise ValueError("layouts and outs need one entry per key (one without a tag)")
    if start < 0 or start > total or count < 0:
        raise ValueError("start must lie inside the buffer and count not be negative")
    refs = []
    slots = <FrameSlot *> PyMem_Malloc(nslots * sizeof(FrameSlot))
    if slots == NULL:
        raise MemoryError()
    try:
        for i in range(nslots):
            layout, out = layouts[i], outs[i]
            slots[i].size = layout.size
            slots[i].stride = out.dtype.itemsize
            slots[i].cap = len(out)
            slots[i].used = 0
            slots[i].fixed = 0
            if slots[i].size < 0 or slots[i].stride != slots[i].size + 8 or out.ndim != 1:
                raise ValueError("each out must be 1-D with rows of the body's size plus 8 bytes")
            dst = out.view(np.uint8).reshape(-1)  # C-contiguous and writable, or refused here
            slots[i].out = &dst[0] if dst.shape[0] > 0 else NULL
            plan = _row_plan(layout, False)
            slots[i].nops = plan.shape[0]
            slots[i].ops = <const Op *> &plan[0, 0] if plan.shape[0] else NULL
            refs.append((dst, plan))
        with nogil:
            status = _unpack_loop(p, total, start, count, first, &w, &t, slots, nslots)
        if status == FS_DONE:
            for i in range(nslots):
                if slots[i].used != slots[i].cap:
                    status = FS_FULL
        if status != FS_DONE:
            raise ValueError("the frames do not match the tally the outputs were sized by")
    finally:
        PyMem_Free(slots)
    return outs


def decode_at(layout, buf, starts, adds, Py_ssize_t delta, out):
    """Decode one ``layout`` record at each ``starts[i] (+ adds[i]) + delta``
    of ``buf`` into row ``i`` of ``out`` (rows of at least the layout's size)."""
    cdef const unsigned char[::1] data = buf
    cdef const int64_t[::1] at = starts
    cdef const int64_t[::1] plus
    cdef bint has_adds = adds is not None
    cdef Py_ssize_t n = at.shape[0], total = data.shape[0], i
    cdef int64_t s
    cdef FrameSlot sl
    cdef const int64_t[:, ::1] plan = _row_plan(layout, False)
    cdef unsigned char[::1] dst
    cdef bint bad = False
    if has_adds:
        plus = adds
        if plus.shape[0] != n:
            raise ValueError("adds must have one entry per start")
    sl.size = layout.size
    sl.stride = out.dtype.itemsize
    if out.ndim != 1 or len(out) != n or sl.stride < sl.size or sl.size <= 0:
        raise ValueError("out must be 1-D, one row per start, rows of at least the layout's size")
    if n == 0:
        return out
    dst = out.view(np.uint8).reshape(-1)
    sl.nops = plan.shape[0]
    sl.ops = <const Op *> &plan[0, 0] if plan.shape[0] else NULL
    cdef const int64_t *pa = &at[0]
    cdef const int64_t *pp = &plus[0] if has_adds else NULL
    cdef const unsigned char *src = &data[0] if total > 0 else NULL
    cdef unsigned char *row = &dst[0]
    if src == NULL:
        raise ValueError("a record runs outside the buffer")
    with nogil:
        for i in range(n):
            s = pa[i] + delta
            if has_adds:
                s = s + pp[i]
            if s < 0 or s > total - sl.size:
                bad = True
                break
            _decode_row(&sl, src + s, row + i * sl.stride)
    if bad:
        raise ValueError("a record runs outside the buffer")
    return out
