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
