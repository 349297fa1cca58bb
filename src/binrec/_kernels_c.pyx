# cython: language_level=3, cdivision=True, freethreading_compatible=True
"""Compiled record kernels: the interface :class:`binrec._kernels.Kernels`,
as ``binrec._kernels_py`` has it, plus the fused column pack.

Each format is turned once into a *plan* of byte operations per record
(built in Python by ``binrec._plan`` and cached here).  The loops run
without the GIL over raw pointers; every length, offset and count is
checked in Python before the GIL is released.  ``threads`` splits the
record range over a small persistent thread pool.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove, memset
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from binrec._errors import OverlapError
from binrec._kernels import PackKind
from binrec._plan import Op as PlanOp, column_spec, row_plan, swap_needed

NAME = "compiled"
FUSED_PACK = True

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <stdlib.h>
    #define BR_BSWAP16(x) _byteswap_ushort(x)
    #define BR_BSWAP32(x) _byteswap_ulong(x)
    #define BR_BSWAP64(x) _byteswap_uint64(x)
    #else
    #define BR_BSWAP16(x) __builtin_bswap16(x)
    #define BR_BSWAP32(x) __builtin_bswap32(x)
    #define BR_BSWAP64(x) __builtin_bswap64(x)
    #endif
    #include <string.h>
    #include <stdint.h>
    static inline void br_swap2(const unsigned char *s, unsigned char *d) {
        uint16_t v; memcpy(&v, s, 2); v = BR_BSWAP16(v); memcpy(d, &v, 2);
    }
    static inline void br_swap4(const unsigned char *s, unsigned char *d) {
        uint32_t v; memcpy(&v, s, 4); v = BR_BSWAP32(v); memcpy(d, &v, 4);
    }
    static inline void br_swap8(const unsigned char *s, unsigned char *d) {
        uint64_t v; memcpy(&v, s, 8); v = BR_BSWAP64(v); memcpy(d, &v, 8);
    }
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    /* Ask Linux for transparent huge pages on a large fresh buffer (as numpy
       does for its arrays): first-touch faults on 4 KiB pages otherwise cost
       more than encoding into them. */
    static void br_hugepage_hint(void *p, int64_t n) {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (n >= (4 << 20)) {
            uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
            uintptr_t end = ((uintptr_t)p + (uintptr_t)n) & ~(uintptr_t)4095;
            if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
        }
    #endif
    }
    /* Copy n bytes with fixed-size moves (overlapping the tail), for short
       fields where a memcpy call per record costs more than the copy. */
    static inline void br_copy_small(const unsigned char *s, unsigned char *d, int64_t n) {
        int64_t k = 0;
        if (n >= 8) {
            for (; k + 8 <= n; k += 8) memcpy(d + k, s + k, 8);
            if (k < n) memcpy(d + n - 8, s + n - 8, 8);
        } else if (n >= 4) {
            memcpy(d, s, 4); memcpy(d + n - 4, s + n - 4, 4);
        } else {
            for (; k < n; k++) d[k] = s[k];
        }
    }
    """
    void br_swap2(const unsigned char *s, unsigned char *d) nogil
    void br_swap4(const unsigned char *s, unsigned char *d) nogil
    void br_swap8(const unsigned char *s, unsigned char *d) nogil
    void br_copy_small(const unsigned char *s, unsigned char *d, int64_t n) nogil
    void br_hugepage_hint(void *p, int64_t n) nogil

# binrec._plan.Op, compiled in; the import refuses a build that disagrees
cdef enum:
    OP_COPY = 0
    OP_SWAP2 = 1
    OP_SWAP4 = 2
    OP_SWAP8 = 3
    OP_BOOL = 4
    OP_PASCAL = 5        # decode: length byte + data -> data, zero padded to n bytes
    OP_ZERO = 6
    OP_PASCAL_PACK = 7   # encode: data -> length byte + data
    OP_PASCAL_COL = 8    # decode into a column: zero padded to n - 1 bytes
    # below this many records per thread, threads cost more than they save
    MIN_RECORDS_PER_TASK = 4096
    BLOCK = 64
    BLOCK_BYTES = 16384

ctypedef struct Op:
    int64_t op
    int64_t src
    int64_t dst
    int64_t n


OPS = {"COPY": OP_COPY, "SWAP2": OP_SWAP2, "SWAP4": OP_SWAP4, "SWAP8": OP_SWAP8, "BOOL": OP_BOOL,
       "PASCAL": OP_PASCAL, "ZERO": OP_ZERO, "PASCAL_PACK": OP_PASCAL_PACK, "PASCAL_COL": OP_PASCAL_COL}
if OPS != {k.name: k.value for k in PlanOp}:
    raise ImportError(f"binrec._kernels_c is out of date with binrec._plan.Op ({OPS}); rebuild it")


# -- plans, cached (binrec._plan builds them) ----------------------------------

_plans = {}
_plans_lock = threading.Lock()


def _row_plan(layout, bint packing):
    key = (layout, packing)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    plan = row_plan(layout, packing)
    with _plans_lock:
        if len(_plans) > 256:
            _plans.clear()
        _plans[key] = plan
    return plan


# -- inner loops (no GIL) ------------------------------------------------------

cdef inline void _run_op(const Op *o, const unsigned char *src, unsigned char *dst) noexcept nogil:
    """One field of one record, from src to a distinct dst (column kernels)."""
    cdef int64_t k, length, width
    cdef const unsigned char *s = src + o.src
    cdef unsigned char *d = dst + o.dst
    if o.op == OP_COPY:
        memcpy(d, s, o.n)
    elif o.op == OP_SWAP4:
        for k in range(o.n):
            br_swap4(s + 4 * k, d + 4 * k)
    elif o.op == OP_SWAP8:
        for k in range(o.n):
            br_swap8(s + 8 * k, d + 8 * k)
    elif o.op == OP_SWAP2:
        for k in range(o.n):
            br_swap2(s + 2 * k, d + 2 * k)
    elif o.op == OP_BOOL:
        for k in range(o.n):
            d[k] = s[k] != 0
    elif o.op == OP_PASCAL_COL:
        width = o.n - 1
        length = s[0]
        if length > width:
            length = width
        memcpy(d, s + 1, length)
        memset(d + length, 0, width - length)


cdef void _fix_block(const Op *o, unsigned char *base, Py_ssize_t size, Py_ssize_t nrec) noexcept nogil:
    """Apply one fix-up op in place to ``nrec`` records starting at ``base``."""
    cdef Py_ssize_t r, k, length, width
    cdef unsigned char *p = base + o.src
    cdef int64_t n = o.n
    if o.op == OP_SWAP4:
        if n == 1:
            for r in range(nrec):
                br_swap4(p + r * size, p + r * size)
        else:
            for r in range(nrec):
                for k in range(n):
                    br_swap4(p + r * size + 4 * k, p + r * size + 4 * k)
    elif o.op == OP_SWAP8:
        if n == 1:
            for r in range(nrec):
                br_swap8(p + r * size, p + r * size)
        else:
            for r in range(nrec):
                for k in range(n):
                    br_swap8(p + r * size + 8 * k, p + r * size + 8 * k)
    elif o.op == OP_SWAP2:
        if n == 1:
            for r in range(nrec):
                br_swap2(p + r * size, p + r * size)
        else:
            for r in range(nrec):
                for k in range(n):
                    br_swap2(p + r * size + 2 * k, p + r * size + 2 * k)
    elif o.op == OP_BOOL:
        for r in range(nrec):
            for k in range(n):
                p[r * size + k] = p[r * size + k] != 0
    elif o.op == OP_ZERO:
        for r in range(nrec):
            for k in range(n):
                p[r * size + k] = 0
    elif o.op == OP_PASCAL:
        # [len][data...] -> [data[:len]][zeros], len capped at n - 1
        width = n - 1
        for r in range(nrec):
            length = p[r * size]
            if length > width:
                length = width
            memmove(p + r * size, p + r * size + 1, length)
            memset(p + r * size + length, 0, n - length)
    elif o.op == OP_PASCAL_PACK:
        # [data (n - 1 bytes)][spare] -> [len][data], len = data without trailing NULs
        width = n - 1
        for r in range(nrec):
            length = width
            while length > 0 and p[r * size + length - 1] == 0:
                length -= 1
            memmove(p + r * size + 1, p + r * size, width)
            p[r * size] = <unsigned char>(length if length < 255 else 255)


cdef void _rows_loop(const Op *ops, Py_ssize_t nops, const unsigned char *src, unsigned char *dst,
                     Py_ssize_t size, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Copy blocks of records that fit in L1/L2, then fix each block up in
    place while it is still in cache: one pass over main memory."""
    cdef Py_ssize_t b, end, j
    cdef Py_ssize_t block = BLOCK_BYTES // size
    if block < 1:
        block = 1
    b = start
    while b < stop:
        end = b + block
        if end > stop:
            end = stop
        memcpy(dst + b * size, src + b * size, (end - b) * size)
        for j in range(nops):
            _fix_block(&ops[j], dst + b * size, size, end - b)
        b = end


cdef class _RowJob:
    """A prepared row kernel call that threads can run on record ranges.
    ``refs`` keeps alive whatever owns the src and dst memory."""
    cdef const unsigned char *src
    cdef unsigned char *dst
    cdef Py_ssize_t size, nops
    cdef object refs
    cdef const Op *ops

    def run(self, Py_ssize_t start, Py_ssize_t stop):
        with nogil:
            _rows_loop(self.ops, self.nops, self.src, self.dst, self.size, start, stop)


cdef void *_address(obj, bint writable, Py_ssize_t need) except NULL:
    """Address of a C-contiguous buffer of at least ``need`` bytes.  The
    caller holds a reference to ``obj`` for as long as it uses the address
    (numpy arrays, bytes and mmaps never move their memory).  ``need`` comes
    from :func:`_extent`, never from an object's Python attributes: the
    buffer protocol's length is the only size that can be trusted."""
    cdef Py_buffer view
    cdef void *ptr
    cdef int flags = PyBUF_C_CONTIGUOUS | (PyBUF_WRITABLE if writable else 0)
    if need < 0:
        raise ValueError(f"negative buffer size {need}")
    PyObject_GetBuffer(obj, &view, flags)
    ptr = view.buf
    if view.len < need:
        PyBuffer_Release(&view)
        raise ValueError(f"buffer of {view.len} bytes, need {need}")
    PyBuffer_Release(&view)
    if ptr == NULL:
        raise ValueError("buffer has no memory")
    return ptr


cdef Py_ssize_t _extent(Py_ssize_t start, Py_ssize_t count, Py_ssize_t size) except -1:
    """``start + count * size`` (bytes), refusing what would overflow
    Py_ssize_t, so that :func:`_address`'s length check can be trusted."""
    if start < 0 or count < 0 or size < 0:
        raise ValueError(f"negative offset, count or size ({start}, {count}, {size})")
    if size and count > (PY_SSIZE_T_MAX - start) // size:
        raise OverflowError(f"{count} records of {size} bytes at offset {start} exceed the address space")
    return start + count * size


cdef Py_ssize_t _record_size(layout) except -1:
    """The layout's record size; the loops divide by it."""
    cdef Py_ssize_t size = layout.size
    if size <= 0:
        raise ValueError(f"record size must be positive, got {size}")
    return size


cdef inline bint _overlap(const void *a, Py_ssize_t na, const void *b, Py_ssize_t nb) noexcept:
    """Whether [a, a+na) and [b, b+nb) share a byte (compared as integers)."""
    cdef size_t x = <size_t> a, y = <size_t> b
    return na > 0 and nb > 0 and x < y + <size_t> nb and y < x + <size_t> na


cdef int _check_apart(const void *src, Py_ssize_t nsrc, const void *dst, Py_ssize_t ndst, what) except -1:
    # The row loop memcpy's blocks (undefined for overlapping ranges) and both
    # loops read records after writing earlier ones.  Raised before anything
    # is written: records.py then runs the kernel again on a copy.
    if _overlap(src, nsrc, dst, ndst):
        raise OverlapError(f"{what}: the output overlaps the source bytes")
    return 0


cdef Py_ssize_t _buffer_span(obj, void **ptr) except -1:
    """The address (into ``ptr``) and length of a writable C-contiguous buffer."""
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
    ptr[0] = view.buf
    n = view.len
    PyBuffer_Release(&view)
    return n


_pool = None
_pool_lock = threading.Lock()


def _executor():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="binrec")
        return _pool


def _forget_pool_in_child():
    # A forked child inherits the executor object but none of its worker
    # threads: submitting to it would wait forever.  Start afresh.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _run_split(run, Py_ssize_t count, int threads):
    """Run ``run(start, stop)`` over [0, count), split over ``threads``."""
    threads = min(threads, count // MIN_RECORDS_PER_TASK)
    bounds = [count * i // threads for i in range(threads + 1)]
    pool = _executor()
    futures = [pool.submit(run, bounds[i], bounds[i + 1]) for i in range(1, threads)]
    run(bounds[0], bounds[1])  # the calling thread takes the first share
    for fut in futures:
        fut.result()


cdef _rows(plan, const unsigned char *src, unsigned char *dst, Py_ssize_t size, Py_ssize_t count, int threads, refs):
    cdef const int64_t[:, ::1] p = plan
    cdef Py_ssize_t nops = p.shape[0]
    cdef const Op *ops = <const Op *> &p[0, 0] if nops else NULL
    cdef _RowJob job
    if threads <= 1 or count < 2 * MIN_RECORDS_PER_TASK:
        with nogil:
            _rows_loop(ops, nops, src, dst, size, 0, count)
        return
    job = _RowJob()
    job.refs = (plan, refs)
    job.ops = ops
    job.nops = nops
    job.src = src
    job.dst = dst
    job.size = size
    _run_split(job.run, count, threads)


# -- interface -----------------------------------------------------------------

def unpack_rows(layout, buf, Py_ssize_t offset, Py_ssize_t count, out, int threads=1):
    cdef Py_ssize_t size = _record_size(layout)
    cdef const unsigned char *src
    cdef unsigned char *dst
    if count <= 0:
        return out
    if offset < 0:
        raise ValueError("unpack_rows: negative offset")  # records.py checks first
    src = <const unsigned char *> _address(buf, False, _extent(offset, count, size))
    dst = <unsigned char *> _address(out, True, _extent(0, count, size))
    _check_apart(src + offset, count * size, dst, count * size, "unpack_rows")
    _rows(_row_plan(layout, False), src + offset, dst, size, count, threads, (buf, out))
    return out


cdef void _fix_pascal_lengths(layout, plens, unsigned char *dst, Py_ssize_t count):
    """Explicit Pascal lengths (Python bytes whose trailing NULs count):
    overwrite the length bytes the kernel derived from NUL-padded data."""
    cdef const int64_t[::1] lengths
    cdef Py_ssize_t r, size = layout.size, off, width
    cdef int64_t v
    for f in layout.fields:
        if f.name not in plens or f.count == 0:
            continue
        lengths = np.ascontiguousarray(plens[f.name], dtype=np.int64)
        off = f.offset
        width = f.count - 1
        for r in range(count):
            v = lengths[r]
            if v > width:
                v = width
            if v > 255:
                v = 255
            dst[r * size + off] = <unsigned char>v


def _check_pack(layout, arr):
    if not arr.flags.c_contiguous or arr.dtype != layout.dtype:
        raise ValueError("pack: expected a C-contiguous array of the layout's dtype")


def pack_rows(layout, arr, plens, target, int threads=1):
    cdef Py_ssize_t size = _record_size(layout)
    cdef Py_ssize_t count = len(arr)
    cdef unsigned char *dst
    if count == 0:
        return
    _check_pack(layout, arr)
    dst = <unsigned char *> _address(target, True, _extent(0, count, size))
    src = <const unsigned char *> _address(arr, False, _extent(0, count, size))
    _check_apart(src, count * size, dst, count * size, "pack_rows")
    _rows(_row_plan(layout, True), src, dst, size, count, threads, (arr, target))
    if plens:
        _fix_pascal_lengths(layout, plens, dst, count)


def pack_bytes(layout, arr, plens, int threads=1):
    """Encode into a new bytes object, filled in place (no extra copy)."""
    cdef Py_ssize_t size = _record_size(layout)
    cdef Py_ssize_t count = len(arr)
    cdef unsigned char *dst
    if count == 0:
        return b""
    _check_pack(layout, arr)
    src = <const unsigned char *> _address(arr, False, _extent(0, count, size))
    result = PyBytes_FromStringAndSize(NULL, count * size)
    dst = <unsigned char *> PyBytes_AS_STRING(result)
    br_hugepage_hint(dst, count * size)
    _rows(_row_plan(layout, True), src, dst, size, count, threads, (arr, result))
    if plens:
        _fix_pascal_lengths(layout, plens, dst, count)
    return result


# -- columns -------------------------------------------------------------------

ctypedef struct ColOp:
    int64_t op
    int64_t src      # byte offset in the record
    int64_t n        # elements for swaps, bytes for copy, count for pascal
    int64_t width    # bytes per output element
    unsigned char *dst


cdef void _cols_loop(const ColOp *ops, Py_ssize_t nops, const unsigned char *src, Py_ssize_t size,
                     Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Blocks of records small enough to stay in L1; within a block, one
    tight loop per field writing its column sequentially.  Everything the
    loops use is copied to locals first: stores through ``unsigned char *``
    may alias the op table, which would otherwise be reloaded every record."""
    cdef Py_ssize_t b, r, j, k, end
    cdef const ColOp *o
    cdef Op single
    cdef const unsigned char *s
    cdef unsigned char *d
    cdef int64_t op, n, width
    b = start
    while b < stop:
        end = b + BLOCK
        if end > stop:
            end = stop
        for j in range(nops):
            o = &ops[j]
            op = o.op
            n = o.n
            width = o.width
            s = src + o.src
            d = o.dst
            if op == OP_SWAP8 and n == 1:
                for r in range(b, end):
                    br_swap8(s + r * size, d + 8 * r)
            elif op == OP_SWAP4 and n == 1:
                for r in range(b, end):
                    br_swap4(s + r * size, d + 4 * r)
            elif op == OP_SWAP2 and n == 1:
                for r in range(b, end):
                    br_swap2(s + r * size, d + 2 * r)
            elif op == OP_COPY and n == 1:
                for r in range(b, end):
                    d[r] = s[r * size]
            elif op == OP_BOOL:
                for r in range(b, end):
                    d[r] = s[r * size] != 0
            elif op == OP_COPY and n == 2:
                for r in range(b, end):
                    memcpy(d + 2 * r, s + r * size, 2)
            elif op == OP_COPY and n == 4:
                for r in range(b, end):
                    memcpy(d + 4 * r, s + r * size, 4)
            elif op == OP_COPY and n == 8:
                for r in range(b, end):
                    memcpy(d + 8 * r, s + r * size, 8)
            elif op == OP_COPY and n <= 64:
                # short strings: fixed-size moves beat a memcpy call per record
                for r in range(b, end):
                    br_copy_small(s + r * size, d + n * r, n)
            elif op == OP_COPY:
                for r in range(b, end):
                    memcpy(d + n * r, s + r * size, n)
            else:
                single.op = op
                single.src = o.src
                single.dst = 0
                single.n = n
                for r in range(b, end):
                    _run_op(&single, src + r * size, d + width * r)
        b = end


cdef class _ColJob:
    cdef const unsigned char *src
    cdef Py_ssize_t size, nops
    cdef ColOp *ops
    cdef object refs

    def __dealloc__(self):
        PyMem_Free(self.ops)

    def run(self, Py_ssize_t start, Py_ssize_t stop):
        with nogil:
            _cols_loop(self.ops, self.nops, self.src, self.size, start, stop)


_col_specs = {}


def _column_spec(field):
    spec = _col_specs.get(field, False)
    if spec is False:
        spec = column_spec(field)
        if len(_col_specs) > 4096:
            _col_specs.clear()
        _col_specs[field] = spec
    return spec


def unpack_columns(layout, buf, Py_ssize_t offset, Py_ssize_t count, fields, outs, int threads=1):
    cdef Py_ssize_t size = _record_size(layout)
    cdef Py_ssize_t i = 0, nfields = len(fields)
    cdef Py_ssize_t reads, width, nempty
    cdef void *empty_ptr
    cdef _ColJob job
    if count <= 0:
        return list(outs)
    if offset < 0:
        raise ValueError("unpack_columns: negative offset")
    job = _ColJob()
    job.src = (<const unsigned char *> _address(buf, False, _extent(offset, count, size))) + offset
    job.size = size
    job.refs = (buf, outs)
    job.ops = <ColOp *> PyMem_Malloc(max(1, nfields) * sizeof(ColOp))
    if job.ops == NULL:
        raise MemoryError()
    empty = []  # columns of empty strings: zeroed once every check passed
    for f, out in zip(fields, outs):
        spec = _column_spec(f)
        if spec is None:
            nempty = _buffer_span(out, &empty_ptr)
            _check_apart(job.src, count * size, empty_ptr, nempty, "unpack_columns")
            empty.append(out)
            continue
        # every size from the op (the layout), never from out.itemsize or
        # out.shape, which an ndarray subclass can override
        reads = spec[2]
        width = spec[3]
        if f.offset < 0 or f.offset + reads > size:
            raise ValueError(f"unpack_columns: field {f.name!r} lies outside the {size}-byte record")
        job.ops[i].op = spec[0]
        job.ops[i].src = f.offset
        job.ops[i].n = spec[1]
        job.ops[i].width = width
        job.ops[i].dst = <unsigned char *> _address(out, True, _extent(0, count, width))
        _check_apart(job.src, count * size, job.ops[i].dst, count * width, "unpack_columns")
        i += 1
    job.nops = i
    for out in empty:
        out.view(np.uint8)[...] = 0
    if job.nops:
        if threads <= 1 or count < 2 * MIN_RECORDS_PER_TASK:
            with nogil:
                _cols_loop(job.ops, job.nops, job.src, job.size, 0, count)
        else:
            _run_split(job.run, count, threads)
    return list(outs)


# -- packing straight from columns ------------------------------------------------------
# One pass from the user's columns to the wire: range checks, narrowing and
# byte swaps fused, instead of coercing every column to the native dtype,
# assembling a structured array and encoding that.  Any value that fails a
# check stops the kernel; the caller then runs the ordinary path, which
# raises the exact struct-style error.

# binrec._kernels.PackKind, compiled in (the loop switches on them without
# the GIL); PACK_KINDS exports them, and the import refuses a build whose
# codes no longer agree with PackKind.
cdef enum:
    PK_COPY = 0        # same width, native source: copy, maybe swap
    PK_I64 = 1         # int64 source -> checked [lo, hi] -> width bytes
    PK_U64 = 2         # uint64 source -> checked <= uhi -> width bytes
    PK_F64_F32 = 3     # float64 -> float32 (overflow check when asked)
    PK_BOOL = 4        # native bool column: normalise
    PK_COPY_HALVES = 5 # complex: copy, swap each half

PACK_KINDS = {"COPY": PK_COPY, "I64": PK_I64, "U64": PK_U64, "F64_F32": PK_F64_F32, "BOOL": PK_BOOL,
              "COPY_HALVES": PK_COPY_HALVES}
if PACK_KINDS != {k.name: k.value for k in PackKind}:
    raise ImportError(f"binrec._kernels_c is out of date with binrec._kernels.PackKind ({PACK_KINDS}); rebuild it")


ctypedef struct PackOp:
    int64_t kind
    int64_t off
    int64_t width
    int64_t swap
    int64_t lo
    int64_t hi
    uint64_t uhi
    int64_t check
    const unsigned char *src


cdef extern from *:
    """
    #include <math.h>
    static inline void br_store(unsigned char *d, uint64_t v, int64_t width, int64_t swap) {
        if (width == 1) { d[0] = (unsigned char)v; return; }
        if (width == 2) { uint16_t x = (uint16_t)v; if (swap) x = BR_BSWAP16(x); memcpy(d, &x, 2); return; }
        if (width == 4) { uint32_t x = (uint32_t)v; if (swap) x = BR_BSWAP32(x); memcpy(d, &x, 4); return; }
        { uint64_t x = v; if (swap) x = BR_BSWAP64(x); memcpy(d, &x, 8); }
    }
    static inline int br_f64_to_f32(const unsigned char *s, unsigned char *d, int64_t check, int64_t swap) {
        double x; float y; uint32_t bits;
        memcpy(&x, s, 8);
        y = (float)x;
        if (check && isinf(y) && !isinf(x)) return 0;
        memcpy(&bits, &y, 4);
        if (swap) bits = BR_BSWAP32(bits);
        memcpy(d, &bits, 4);
        return 1;
    }
    """
    void br_store(unsigned char *d, uint64_t v, int64_t width, int64_t swap) nogil
    int br_f64_to_f32(const unsigned char *s, unsigned char *d, int64_t check, int64_t swap) nogil


cdef Py_ssize_t _pack_columns_loop(const PackOp *ops, Py_ssize_t nops, unsigned char *dst, Py_ssize_t size,
                                   Py_ssize_t count) noexcept nogil:
    """Returns -1 on success, else the first row that failed a check."""
    cdef Py_ssize_t r, j, b, end, k
    cdef const PackOp *o
    cdef int64_t iv
    cdef uint64_t uv
    cdef unsigned char *d
    cdef int64_t block = BLOCK_BYTES // size
    if block < 1:
        block = 1
    b = 0
    while b < count:
        end = b + block
        if end > count:
            end = count
        memset(dst + b * size, 0, (end - b) * size)  # pad bytes, while in cache
        for j in range(nops):
            o = &ops[j]
            if o.kind == PK_I64:
                for r in range(b, end):
                    memcpy(&iv, o.src + 8 * r, 8)
                    if iv < o.lo or iv > o.hi:
                        return r
                    br_store(dst + r * size + o.off, <uint64_t>iv, o.width, o.swap)
            elif o.kind == PK_U64:
                for r in range(b, end):
                    memcpy(&uv, o.src + 8 * r, 8)
                    if uv > o.uhi:
                        return r
                    br_store(dst + r * size + o.off, uv, o.width, o.swap)
            elif o.kind == PK_F64_F32:
                for r in range(b, end):
                    if not br_f64_to_f32(o.src + 8 * r, dst + r * size + o.off, o.check, o.swap):
                        return r
            elif o.kind == PK_BOOL:
                for r in range(b, end):
                    dst[r * size + o.off] = o.src[r] != 0
            elif o.kind == PK_COPY:
                for r in range(b, end):
                    d = dst + r * size + o.off
                    if o.swap and o.width == 4:
                        br_swap4(o.src + 4 * r, d)
                    elif o.swap and o.width == 8:
                        br_swap8(o.src + 8 * r, d)
                    elif o.swap and o.width == 2:
                        br_swap2(o.src + 2 * r, d)
                    elif o.width <= 64:
                        br_copy_small(o.src + o.width * r, d, o.width)
                    else:
                        memcpy(d, o.src + o.width * r, o.width)
            elif o.kind == PK_COPY_HALVES:
                for r in range(b, end):
                    d = dst + r * size + o.off
                    for k in range(2):
                        if o.width == 16:
                            br_swap8(o.src + 16 * r + 8 * k, d + 8 * k)
                        else:
                            br_swap4(o.src + 8 * r + 4 * k, d + 4 * k)
        b = end
    return -1


# source bytes per row of the kinds whose source width is fixed (else the
# field's width), and the field widths each kind can store
_PACK_SOURCE_BYTES = {PK_I64: 8, PK_U64: 8, PK_F64_F32: 8, PK_BOOL: 1}
_PACK_WIDTHS = {PK_I64: (1, 2, 4, 8), PK_U64: (1, 2, 4, 8), PK_F64_F32: (4,), PK_BOOL: (1,), PK_COPY_HALVES: (8, 16)}


def pack_columns(layout, specs, int threads=1):
    """Encode columns straight to bytes.  ``specs``: one
    ``binrec._kernels.PackSpec`` tuple per field, arrays 1-D
    C-contiguous of equal length.  Returns bytes, or None if a value failed
    a check."""
    cdef Py_ssize_t size = _record_size(layout)
    cdef Py_ssize_t count = len(specs[0][1]) if specs else 0
    cdef Py_ssize_t i, nops = len(specs), elem
    cdef PackOp *ops
    cdef unsigned char *dst
    cdef Py_ssize_t bad
    if count == 0:
        return b""
    if nops > len(layout.fields):
        raise ValueError("pack_columns: more columns than fields")
    result = PyBytes_FromStringAndSize(NULL, _extent(0, count, size))
    dst = <unsigned char *> PyBytes_AS_STRING(result)
    br_hugepage_hint(dst, count * size)
    ops = <PackOp *> PyMem_Malloc(max(1, nops) * sizeof(PackOp))
    if ops == NULL:
        raise MemoryError()
    try:
        for i, (f, (kind, arr, lo, hi, uhi, check)) in enumerate(zip(layout.fields, specs)):
            if len(arr) != count:
                raise ValueError("pack_columns: columns of different lengths")
            ops[i].kind = kind
            ops[i].off = f.offset
            ops[i].width = f.size
            ops[i].swap = 1 if swap_needed(f) else 0
            ops[i].lo = lo
            ops[i].hi = hi
            ops[i].uhi = uhi
            ops[i].check = check
            # bytes the loop reads per row, by kind and field width (never
            # arr.itemsize, which an ndarray subclass can override)
            elem = _PACK_SOURCE_BYTES.get(kind, f.size)
            if f.offset < 0 or f.offset + f.size > size or f.size not in _PACK_WIDTHS.get(kind, (f.size,)):
                raise ValueError(f"pack_columns: field {f.name!r} does not fit kind {kind}")
            ops[i].src = <const unsigned char *> _address(arr, False, _extent(0, count, elem))
        with nogil:
            bad = _pack_columns_loop(ops, nops, dst, size, count)
    finally:
        PyMem_Free(ops)
    return None if bad >= 0 else result


# -- text fields ---------------------------------------------------------------

from libc.stdint cimport int32_t
from cpython.buffer cimport PyBUF_STRIDES
# Fixed-width byte fields decoded to numpy 'U' (UCS-4) values or to UTF-8
# (Arrow's string layout), for the three codecs of binrec._kernels.TextCodec.
# The Python wrapper (binrec._text) builds the error message from the row a
# kernel reports, so both backends say the same thing.

cdef enum:
    TEXT_ASCII = 0
    TEXT_LATIN1 = 1
    TEXT_UTF8 = 2

#: text codec codes by name (checked against ``binrec._kernels.TextCodec``)
TEXT_CODECS = {"ASCII": TEXT_ASCII, "LATIN1": TEXT_LATIN1, "UTF8": TEXT_UTF8}

cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>
    /* a UCS-4 code unit at any alignment (a 'U' field of a packed record) */
    static inline void br_put_u32(unsigned char *d, uint32_t v) { memcpy(d, &v, 4); }
    """
    void br_put_u32(unsigned char *d, uint32_t v) nogil


cdef inline Py_ssize_t _text_len(const unsigned char *p, Py_ssize_t w, const unsigned char *strip) noexcept nogil:
    """Length of the field once its trailing bytes in the ``strip`` table are gone."""
    while w > 0 and strip[p[w - 1]]:
        w -= 1
    return w


cdef inline Py_ssize_t _utf8_step(const unsigned char *p, Py_ssize_t k, Py_ssize_t n, uint32_t *cp) noexcept nogil:
    """Decode the sequence at ``p[k]`` (a byte >= 0x80) into ``cp``: its
    length, or 0 when it is not valid UTF-8 as Python's strict decoder sees
    it (no overlong forms, surrogates or code points above U+10FFFF)."""
    cdef unsigned char b0 = p[k], b1, b2, b3
    if b0 >= 0xC2 and b0 <= 0xDF:
        if k + 1 >= n:
            return 0
        b1 = p[k + 1]
        if (b1 & 0xC0) != 0x80:
            return 0
        cp[0] = ((b0 & 0x1F) << 6) | (b1 & 0x3F)
        return 2
    if b0 >= 0xE0 and b0 <= 0xEF:
        if k + 2 >= n:
            return 0
        b1 = p[k + 1]
        b2 = p[k + 2]
        if (b1 & 0xC0) != 0x80 or (b2 & 0xC0) != 0x80:
            return 0
        if (b0 == 0xE0 and b1 < 0xA0) or (b0 == 0xED and b1 > 0x9F):
            return 0
        cp[0] = ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F)
        return 3
    if b0 >= 0xF0 and b0 <= 0xF4:
        if k + 3 >= n:
            return 0
        b1 = p[k + 1]
        b2 = p[k + 2]
        b3 = p[k + 3]
        if (b1 & 0xC0) != 0x80 or (b2 & 0xC0) != 0x80 or (b3 & 0xC0) != 0x80:
            return 0
        if (b0 == 0xF0 and b1 < 0x90) or (b0 == 0xF4 and b1 > 0x8F):
            return 0
        cp[0] = ((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((b2 & 0x3F) << 6) | (b3 & 0x3F)
        return 4
    return 0


cdef inline bint _decode_text_row(const unsigned char *p, unsigned char *o, Py_ssize_t w, int codec,
                                  const unsigned char *strip) noexcept nogil:
    """One row of ``w`` bytes into ``w`` UCS-4 units, NUL-filled: false when
    it does not decode."""
    cdef Py_ssize_t k, m, step
    cdef Py_ssize_t n = _text_len(p, w, strip)
    cdef uint32_t cp
    cdef unsigned char high = 0, c
    # every byte widened and the stripped tail as NULs, in one pass over
    # the whole width with no branch on the data: all a row needs when
    # it has no byte >= 0x80 (nearly every row) or for Latin-1
    for k in range(w):
        c = p[k] if k < n else 0
        high |= c
        br_put_u32(o + 4 * k, c)
    if high < 0x80 or codec == TEXT_LATIN1:
        return True
    if codec == TEXT_ASCII:
        return False
    k = 0
    while p[k] < 0x80:  # this ASCII run is in place already
        k += 1
    m = k
    while k < n:
        if p[k] < 0x80:
            cp = p[k]
            step = 1
        else:
            step = _utf8_step(p, k, n, &cp)
            if step == 0:
                return False
        br_put_u32(o + 4 * m, cp)
        m += 1
        k += step
    if m < w:
        memset(o + 4 * m, 0, <size_t> (4 * (w - m)))
    return True


cdef Py_ssize_t _decode_text_loop(const unsigned char *src, Py_ssize_t sstride, unsigned char *dst,
                                  Py_ssize_t dstride, Py_ssize_t w, Py_ssize_t count, int codec,
                                  const unsigned char *strip) noexcept nogil:
    """Rows of ``w`` bytes into rows of ``w`` UCS-4 units, NUL-filled: -1,
    or the first row that does not decode."""
    cdef Py_ssize_t i
    for i in range(count):
        if not _decode_text_row(src + i * sstride, dst + i * dstride, w, codec, strip):
            return i
    return -1


cdef Py_ssize_t _utf8_text_loop(const unsigned char *src, Py_ssize_t sstride, Py_ssize_t w, Py_ssize_t count,
                                int codec, const unsigned char *strip, unsigned char *data,
                                int64_t *off64, int32_t *off32, Py_ssize_t *total) noexcept nogil:
    """Rows of ``w`` bytes appended to ``data`` as UTF-8, their end offsets
    written to ``off64`` or ``off32`` (whichever is not NULL; entry 0 is
    0): -1, or the first row that does not decode."""
    cdef Py_ssize_t i, k, n, step, pos = 0
    cdef const unsigned char *p
    cdef uint32_t cp
    if off64 != NULL:
        off64[0] = 0
    else:
        off32[0] = 0
    for i in range(count):
        p = src + i * sstride
        n = _text_len(p, w, strip)
        if codec == TEXT_LATIN1:
            for k in range(n):
                if p[k] < 0x80:
                    data[pos] = p[k]
                    pos += 1
                else:
                    data[pos] = 0xC0 | (p[k] >> 6)
                    data[pos + 1] = 0x80 | (p[k] & 0x3F)
                    pos += 2
        else:
            k = 0
            while k < n:
                if p[k] < 0x80:
                    k += 1
                elif codec == TEXT_ASCII:
                    return i
                else:
                    step = _utf8_step(p, k, n, &cp)
                    if step == 0:
                        return i
                    k += step
            memcpy(data + pos, p, <size_t> n)
            pos += n
        if off64 != NULL:
            off64[i + 1] = pos
        else:
            off32[i + 1] = <int32_t> pos
    total[0] = pos
    return -1


cdef class _StridedView:
    """A 1-D buffer's address, stride, length and item size, held open (the
    buffer protocol checks the object; nothing is read from its attributes)."""

    cdef Py_buffer view
    cdef bint held

    def __cinit__(self, obj, bint writable):
        cdef int flags = PyBUF_STRIDES | (PyBUF_WRITABLE if writable else 0)
        PyObject_GetBuffer(obj, &self.view, flags)
        self.held = True
        if self.view.ndim != 1:
            raise ValueError(f"text kernels take 1-D arrays, got {self.view.ndim} dimensions")

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)


cdef int _strip_table(strip, unsigned char *table) except -1:
    cdef const unsigned char[:] chars = strip
    cdef Py_ssize_t k
    memset(table, 0, 256)
    for k in range(chars.shape[0]):
        table[chars[k]] = 1
    return 0


cdef int _check_codec(int codec) except -1:
    if codec != TEXT_ASCII and codec != TEXT_LATIN1 and codec != TEXT_UTF8:
        raise ValueError(f"unknown text codec {codec}")
    return 0


def decode_text(src, out, int codec, strip):
    """Decode the 1-D ``S`` array ``src`` into the 1-D ``U`` array ``out`` of
    the same length and width (native order, any stride): -1, or the first
    row that does not decode (``out`` then holds a partial result)."""
    cdef unsigned char table[256]
    cdef Py_ssize_t bad
    _check_codec(codec)
    if np.dtype(src.dtype).kind != "S" or np.dtype(out.dtype) != np.dtype(f"=U{max(1, src.dtype.itemsize)}"):
        raise ValueError(f"decode_text: {src.dtype} into {out.dtype}")
    _strip_table(strip, table)
    cdef _StridedView s = _StridedView(src, False)
    cdef _StridedView d = _StridedView(out, True)
    cdef Py_ssize_t w = s.view.itemsize
    if d.view.itemsize != 4 * w or d.view.shape[0] != s.view.shape[0]:
        raise ValueError("decode_text: out does not match src")
    if w == 0:
        return -1
    with nogil:
        bad = _decode_text_loop(<const unsigned char *> s.view.buf, s.view.strides[0],
                                <unsigned char *> d.view.buf, d.view.strides[0],
                                w, s.view.shape[0], codec, table)
    return bad


def text_to_utf8(src, int codec, strip, offsets, data):
    """Append the rows of the 1-D ``S`` array ``src`` to the uint8 array
    ``data`` as UTF-8 and their end offsets to ``offsets`` (int32 or int64,
    one more entry than rows): ``(bytes written, -1)``, or ``(0, row)`` for
    the first row that does not decode.  ``data`` must hold the worst case:
    ``len(src) * width`` bytes, twice that for Latin-1."""
    cdef unsigned char table[256]
    cdef Py_ssize_t bad, total = 0
    cdef int64_t *off64 = NULL
    cdef int32_t *off32 = NULL
    _check_codec(codec)
    if np.dtype(src.dtype).kind != "S":
        raise ValueError(f"text_to_utf8: {src.dtype} is not a bytes dtype")
    _strip_table(strip, table)
    cdef _StridedView s = _StridedView(src, False)
    cdef Py_ssize_t w = s.view.itemsize, count = s.view.shape[0]
    cdef Py_ssize_t need = _extent(0, count, w * (2 if codec == TEXT_LATIN1 else 1))
    cdef unsigned char *dst = <unsigned char *> _address(data, True, need)
    kind = np.dtype(offsets.dtype)
    if kind == np.dtype(np.int64):
        off64 = <int64_t *> _address(offsets, True, _extent(0, count + 1, 8))
    elif kind == np.dtype(np.int32):
        if need > 0x7FFFFFFF:
            raise OverflowError("text_to_utf8: int32 offsets cannot address the data")
        off32 = <int32_t *> _address(offsets, True, _extent(0, count + 1, 4))
    else:
        raise ValueError(f"text_to_utf8: offsets of {kind}, not int32 or int64")
    with nogil:
        bad = _utf8_text_loop(<const unsigned char *> s.view.buf, s.view.strides[0], w, count, codec, table,
                              dst, off64, off32, &total)
    if bad >= 0:
        return (0, bad)
    return (total, -1)

ctypedef struct TextRowOp:
    int64_t op       # an OP_* of the column kernels, TEXT_OP or OP_ZERO
    int64_t src      # byte offset in the record
    int64_t dst      # byte offset in the output row
    int64_t n        # as in Op; the byte width for TEXT_OP, bytes to clear for OP_ZERO


cdef enum:
    TEXT_OP = -1


_text_row_plans = {}


def _text_row_plan(layout, text, out_dtype):
    """int64 (nfields, 4): how each field of ``layout`` reaches its place in
    a row of ``out_dtype`` (the packed dtype with ``text`` fields as ``U``)."""
    key = (layout, text, out_dtype)
    plan = _text_row_plans.get(key)
    if plan is not None:
        return plan
    rows = []
    for f in layout.fields:
        kind, dst = out_dtype.fields[f.name][:2]
        if f.name in text:
            if f.code == "p":
                raise ValueError(f"unpack_text_rows: text field {f.name!r} is a Pascal string")
            w = f.native.itemsize
            if kind != np.dtype(f"=U{max(1, w)}"):
                raise ValueError(f"unpack_text_rows: field {f.name!r} is {kind}, not U{max(1, w)}")
            rows.append((TEXT_OP, f.offset, dst, w) if w else (OP_ZERO, 0, dst, 4))
            continue
        spec = _column_spec(f)
        if spec is None:
            rows.append((OP_ZERO, 0, dst, kind.itemsize))
            continue
        if spec[3] != kind.itemsize or f.offset + spec[2] > layout.size:
            raise ValueError(f"unpack_text_rows: field {f.name!r} does not fit {kind}")
        rows.append((spec[0], f.offset, dst, spec[1]))
    for r in rows:
        if r[0] == OP_ZERO and r[2] + r[3] > out_dtype.itemsize:
            raise ValueError("unpack_text_rows: a field lies outside the output row")
    plan = np.array(rows, dtype=np.int64).reshape(-1, 4)
    if len(_text_row_plans) > 256:
        _text_row_plans.clear()
    _text_row_plans[key] = plan
    return plan


cdef Py_ssize_t _text_rows_loop(const TextRowOp *ops, Py_ssize_t nops, const unsigned char *src, Py_ssize_t size,
                                unsigned char *dst, Py_ssize_t osize, Py_ssize_t count, int codec,
                                const unsigned char *strip, Py_ssize_t *bad_field) noexcept nogil:
    """Each record straight into its output row, field by field: -1, or
    the first row (and in ``bad_field`` the op) whose text does not decode."""
    cdef Py_ssize_t i, j
    cdef const unsigned char *s
    cdef unsigned char *d
    cdef const TextRowOp *o
    cdef Op single
    single.src = 0
    single.dst = 0
    for i in range(count):
        s = src + i * size
        d = dst + i * osize
        for j in range(nops):
            o = &ops[j]
            if o.op == TEXT_OP:
                if not _decode_text_row(s + o.src, d + o.dst, o.n, codec, strip):
                    bad_field[0] = j
                    return i
            elif o.op == OP_ZERO:
                memset(d + o.dst, 0, <size_t> o.n)
            elif o.op == OP_SWAP4 and o.n == 1:
                br_swap4(s + o.src, d + o.dst)
            elif o.op == OP_COPY and o.n == 4:
                memcpy(d + o.dst, s + o.src, 4)
            elif o.op == OP_SWAP8 and o.n == 1:
                br_swap8(s + o.src, d + o.dst)
            elif o.op == OP_COPY and o.n == 8:
                memcpy(d + o.dst, s + o.src, 8)
            else:
                single.op = o.op
                single.n = o.n
                _run_op(&single, s + o.src, d + o.dst)
    return -1


def unpack_text_rows(layout, buf, Py_ssize_t offset, Py_ssize_t count, out, text, int codec, strip):
    """Decode ``count`` records of ``layout`` from ``buf`` at ``offset``
    into the C-contiguous structured array ``out`` (``layout``'s fields,
    packed, those named in ``text`` as ``U`` of their byte width), the text
    decoded with ``codec``: None, or ``(row, field name)`` of the first
    value (rows first, then fields in format order) that does not decode."""
    cdef unsigned char table[256]
    cdef Py_ssize_t size = _record_size(layout), bad, bad_field = -1
    _check_codec(codec)
    out_dtype = np.dtype(out.dtype)
    if out.ndim != 1 or len(out) != count or out_dtype.names != tuple(layout.names):
        raise ValueError("unpack_text_rows: out does not match the records")
    if offset < 0:
        raise ValueError("unpack_text_rows: negative offset")
    if count <= 0:
        return None
    plan = _text_row_plan(layout, frozenset(text), out_dtype)
    _strip_table(strip, table)
    cdef Py_ssize_t osize = out_dtype.itemsize
    cdef const unsigned char *src = (<const unsigned char *> _address(buf, False, _extent(offset, count, size))) + offset
    cdef unsigned char *dst = <unsigned char *> _address(out, True, _extent(0, count, osize))
    _check_apart(src, count * size, dst, count * osize, "unpack_text_rows")
    cdef const int64_t[:, ::1] p = plan
    cdef const TextRowOp *ops = <const TextRowOp *> &p[0, 0] if p.shape[0] else NULL
    cdef Py_ssize_t nops = p.shape[0]
    with nogil:
        br_hugepage_hint(dst, count * osize)
        bad = _text_rows_loop(ops, nops, src, size, dst, osize, count, codec, table, &bad_field)
    if bad < 0:
        return None
    return (bad, layout.fields[bad_field].name)


include "_pickle_scan.pxi"
include "_frame_scan.pxi"
