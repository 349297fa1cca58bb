# Included at the end of _kernels_c.pyx (one extension module for the package).
"""The pickle opcode scan, compiled.

:func:`binrec._pickle_scan.scan` is the specification; ``scan_pickle`` here
is its fast path and must give the same answers.  It runs the same abstract
simulation of the unpickler's stack, marks and memo over raw bytes, with
each stack value one 64-bit word:

* ``0``: an object the scan does not need to know (what the spec calls None);
* ``< 0``: the string pushed by the opcode at byte ``-v - 1`` (decoded, by
  the spec's own ``_str_value``, only when STACK_GLOBAL consumes it);
* ``> 0``: ``(k + 1) << 1 | kind``: entry ``k`` of ``Scan.globals`` itself
  (kind 0) or what calling it returned (kind 1).

Whenever the spec would report something (a malformed pickle, a refusal, a
frame mismatch) or the input is unusual (a memo index far beyond the memo's
size, a decimal index of more than 18 digits, a non-byte buffer), this scan
stops and hands the same input to the spec, which then raises or answers
with its own exceptions, messages and ``partial`` results.  So the compiled
scan only ever answers for clean pickles, and the fallback is the one place
that words an error.  For a stream (``more``), the spec continues from the
bytes already read, which gives the same result as reading from the start.
"""

cimport cython
from libc.string cimport memchr
from libc.stdint cimport int64_t, uint64_t, INT64_MIN
from cpython.mem cimport PyMem_Realloc, PyMem_Free
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.pyport cimport PY_SSIZE_T_MAX

# actions and argument readers: the values of binrec._pickle_scan, checked
# against it when the tables are loaded
cdef enum:
    _PS_PUSH, _PS_PUSH_STR, _PS_MARK, _PS_STOP, _PS_POP, _PS_POP_MARK, _PS_DUP, _PS_FROM_MARK, _PS_TUPLE_N
    _PS_APPEND, _PS_TO_MARK_ON_TOP, _PS_SETITEM, _PS_BUILD, _PS_GLOBAL, _PS_STACK_GLOBAL, _PS_INST, _PS_OBJ
    _PS_REDUCE, _PS_NEWOBJ, _PS_NEWOBJ_EX, _PS_PUT, _PS_MEMOIZE, _PS_GET, _PS_FRAME, _PS_PROTO, _PS_EXT, _PS_PERSID
    _PS_BINPERSID, _PS_POP_PUSH

cdef enum:
    _PS_NOARG, _PS_FIXED, _PS_LINE, _PS_LINE2, _PS_COUNT1, _PS_COUNT4, _PS_COUNT4S, _PS_COUNT8

cdef enum:
    _PS_OK = 0
    _PS_DEFER = 1  # hand the input to the specification

cdef int64_t _PS_ABSENT = INT64_MIN  # an unset memo slot

cdef signed char _ps_action[256]
cdef signed char _ps_reader[256]
cdef int _ps_size[256]
cdef int _ps_highest_protocol = -1
_ps_spec = None  # binrec._pickle_scan, once the tables are loaded

_PS_ACTIONS = ("_PUSH", "_PUSH_STR", "_MARK", "_STOP", "_POP", "_POP_MARK", "_DUP", "_FROM_MARK", "_TUPLE_N",
               "_APPEND", "_TO_MARK_ON_TOP", "_SETITEM", "_BUILD", "_GLOBAL", "_STACK_GLOBAL", "_INST", "_OBJ",
               "_REDUCE", "_NEWOBJ", "_NEWOBJ_EX", "_PUT", "_MEMOIZE", "_GET", "_FRAME", "_PROTO", "_EXT", "_PERSID",
               "_BINPERSID", "_POP_PUSH")
_PS_READERS = ("_NOARG", "_FIXED", "_LINE", "_LINE2", "_COUNT1", "_COUNT4", "_COUNT4S", "_COUNT8")


cdef object _ps_load_tables():
    """Copy the specification's opcode table into C arrays (once)."""
    global _ps_spec, _ps_highest_protocol
    if _ps_spec is not None:
        return _ps_spec
    import pickle
    from binrec import _pickle_scan as spec

    for value, name in enumerate(_PS_ACTIONS + _PS_READERS):
        expected = value if value < len(_PS_ACTIONS) else value - len(_PS_ACTIONS)
        if getattr(spec, name) != expected:
            raise RuntimeError(f"binrec._kernels_c is out of date with binrec._pickle_scan ({name}); rebuild it")
    cdef int code
    for code in range(256):
        entry = spec._TABLE[code]
        if entry is None:
            _ps_action[code] = -1
            _ps_reader[code] = 0
            _ps_size[code] = 0
        else:
            _ps_action[code] = entry[1]
            _ps_reader[code] = entry[2]
            _ps_size[code] = entry[3]
    _ps_highest_protocol = pickle.HIGHEST_PROTOCOL
    _ps_spec = spec
    return spec


cdef inline uint64_t _ps_le(const unsigned char *p, int width) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(width - 1, -1, -1):
        v = (v << 8) | p[i]
    return v


@cython.final  # direct calls (no vtable) to the helpers below, so the C compiler can inline them
cdef class _PickleScanner:
    """One scan's state: the abstract stack, marks and memo."""

    cdef object data  # what the bytes live in (a bytearray for a stream)
    cdef object more
    cdef bint stream
    cdef Py_buffer view
    cdef bint has_view
    cdef const unsigned char *buf
    cdef Py_ssize_t n

    cdef int64_t *stack
    cdef Py_ssize_t sp, stack_cap
    cdef Py_ssize_t *marks
    cdef Py_ssize_t nmarks, marks_cap, fence
    cdef int64_t *memo
    cdef Py_ssize_t memo_cap, memo_len
    cdef Py_ssize_t ops_seen

    cdef list globals_
    cdef bytearray mutated_seen  # per entry of globals_: already in mutated_calls
    cdef set mutated_calls
    cdef Py_ssize_t counts[256]

    def __dealloc__(self):
        if self.has_view:
            PyBuffer_Release(&self.view)
        PyMem_Free(self.stack)
        PyMem_Free(self.marks)
        PyMem_Free(self.memo)

    cdef int open(self, data, more) except -1:
        """0 when the bytes can be read directly, else _PS_DEFER."""
        self.more = more
        if more is not None:
            if not isinstance(data, (bytes, bytearray)):
                return _PS_DEFER
            self.stream = True
            self.data = bytearray(data)
            self.refresh()
            return _PS_OK
        if isinstance(data, memoryview) and (data.ndim != 1 or data.format != "B" or not data.c_contiguous):
            return _PS_DEFER  # the spec says what such a view means
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return _PS_DEFER
        PyObject_GetBuffer(data, &self.view, PyBUF_SIMPLE)
        self.has_view = True
        self.data = data
        self.buf = <const unsigned char *> self.view.buf
        self.n = self.view.len
        return _PS_OK

    cdef inline void refresh(self):
        self.buf = <const unsigned char *> PyByteArray_AS_STRING(self.data)
        self.n = PyByteArray_GET_SIZE(self.data)

    cdef inline int grow(self, Py_ssize_t need) except -1:
        """Read on until ``need`` bytes are there (the spec's ``grow``)."""
        if self.stream:
            while self.n < need:
                chunk = self.more()
                if not chunk:
                    break
                self.data += chunk
                self.refresh()
        return _PS_DEFER if self.n < need else _PS_OK  # the spec: truncated

    cdef int line_end(self, Py_ssize_t p, Py_ssize_t *end) except -1:
        """End (after the newline) of the line starting at ``p``."""
        cdef const void *hit
        cdef Py_ssize_t q = p
        while True:
            hit = memchr(self.buf + q, b"\n", self.n - q) if q < self.n else NULL
            if hit != NULL:
                end[0] = (<const unsigned char *> hit - self.buf) + 1
                return _PS_OK
            q = self.n
            if not self.stream or self.grow(self.n + 1):
                return _PS_DEFER

    cdef inline int push(self, int64_t v) except -1:
        cdef Py_ssize_t cap
        cdef int64_t *grown
        if self.sp == self.stack_cap:
            cap = max(64, 2 * self.stack_cap)
            grown = <int64_t *> PyMem_Realloc(self.stack, cap * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self.stack = grown
            self.stack_cap = cap
        self.stack[self.sp] = v
        self.sp += 1
        return 0

    cdef int push_mark(self) except -1:
        cdef Py_ssize_t cap
        cdef Py_ssize_t *grown
        if self.nmarks == self.marks_cap:
            cap = max(16, 2 * self.marks_cap)
            grown = <Py_ssize_t *> PyMem_Realloc(self.marks, cap * sizeof(Py_ssize_t))
            if grown == NULL:
                raise MemoryError()
            self.marks = grown
            self.marks_cap = cap
        self.marks[self.nmarks] = self.sp
        self.nmarks += 1
        self.fence = self.sp
        return 0

    cdef inline Py_ssize_t pop_mark(self) noexcept:
        self.nmarks -= 1
        self.fence = self.marks[self.nmarks - 1] if self.nmarks else 0
        return self.marks[self.nmarks]

    cdef inline int memo_put(self, uint64_t idx, int64_t v) except -1:
        """Set a memo slot; _PS_DEFER for an index far beyond what a
        pickler makes (the spec's dict takes any index)."""
        cdef Py_ssize_t cap, i
        cdef int64_t *grown
        if idx >= <uint64_t> self.memo_cap:
            if idx > <uint64_t> (2 * self.ops_seen + 1024):
                return _PS_DEFER
            cap = max(<Py_ssize_t> idx + 1, 2 * self.memo_cap, 64)
            grown = <int64_t *> PyMem_Realloc(self.memo, cap * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            for i in range(self.memo_cap, cap):
                grown[i] = _PS_ABSENT
            self.memo = grown
            self.memo_cap = cap
        if self.memo[idx] == _PS_ABSENT:
            self.memo_len += 1
        self.memo[idx] = v
        return _PS_OK

    cdef inline int target(self, int64_t v) except -1:
        """A mutation aimed at ``v``: a global is the spec's refusal; a call
        result names its global in ``mutated_calls``."""
        cdef Py_ssize_t k
        if v <= 0:
            return _PS_OK
        if not (v & 1):
            return _PS_DEFER
        k = (v >> 1) - 1
        if not self.mutated_seen[k]:
            self.mutated_seen[k] = 1
            self.mutated_calls.add(self.globals_[k])
        return _PS_OK

    cdef int64_t add_global(self, entry) except? -1:
        self.globals_.append(entry)
        self.mutated_seen.append(0)
        return <int64_t> len(self.globals_) << 1

    cdef object text(self, Py_ssize_t a, Py_ssize_t b):
        return PyBytes_FromStringAndSize(<const char *> self.buf + a, b - a)

    cdef object string_value(self, int64_t v):
        """The spec's value for the string pushed by the opcode at ``-v - 1``."""
        cdef Py_ssize_t at = -v - 1, a, b
        cdef unsigned char code = self.buf[at]
        cdef int reader = _ps_reader[code]
        if reader == _PS_COUNT1:
            a = at + 2
            b = a + self.buf[at + 1]
        elif reader == _PS_LINE:
            a = at + 1
            b = (<const unsigned char *> memchr(self.buf + a, b"\n", self.n - a)) - self.buf
        else:
            a = at + 1 + (8 if reader == _PS_COUNT8 else 4)
            b = a + <Py_ssize_t> _ps_le(self.buf + at + 1, a - at - 1)
        return _ps_spec._str_value(_ps_spec.NAMES[code], self.text(a, b))

    cdef object run(self, Py_ssize_t start):
        """The Scan, or None where the spec must answer."""
        cdef Py_ssize_t pos = start, at, end = 0, mid = 0, width, frame_end = -1, k, mark, i
        cdef unsigned char code
        cdef int action, reader, size
        cdef uint64_t ln, idx
        cdef int64_t v, func
        cdef int proto = 0
        cdef list counts
        self.globals_ = []
        self.mutated_seen = bytearray()
        self.mutated_calls = set()
        while True:
            if pos >= self.n and self.grow(pos + 1):
                return None
            if pos == frame_end:
                frame_end = -1
            code = self.buf[pos]
            action = _ps_action[code]
            if action < 0:
                return None  # invalid load key
            reader = _ps_reader[code]
            size = _ps_size[code]
            self.counts[code] += 1
            self.ops_seen += 1
            at = pos
            pos += 1
            if reader != _PS_NOARG:
                if reader == _PS_FIXED:
                    end = pos + size
                    if end > self.n and self.grow(end):
                        return None
                elif reader == _PS_COUNT1:
                    if pos >= self.n and self.grow(pos + 1):
                        return None
                    end = pos + 1 + self.buf[pos]
                    if end > self.n and self.grow(end):
                        return None
                elif reader == _PS_LINE:
                    if self.line_end(pos, &end):
                        return None
                elif reader == _PS_LINE2:
                    if self.line_end(pos, &mid) or self.line_end(mid, &end):
                        return None
                else:  # COUNT4, COUNT4S, COUNT8
                    width = 8 if reader == _PS_COUNT8 else 4
                    if pos + width > self.n and self.grow(pos + width):
                        return None
                    ln = _ps_le(self.buf + pos, width)
                    if reader == _PS_COUNT4S and ln >= 0x80000000:
                        return None  # a negative byte count
                    if ln > <uint64_t> (PY_SSIZE_T_MAX // 2):
                        return None  # past any input: the spec reads on and finds it truncated
                    end = pos + width + <Py_ssize_t> ln
                    if end > self.n and self.grow(end):
                        return None
                pos = end
            if frame_end >= 0 and pos > frame_end:
                return None  # the frame ends inside this opcode

            if action == _PS_PUSH:
                self.push(0)
            elif action == _PS_PUSH_STR:
                self.push(-(<int64_t> at) - 1)
            elif action == _PS_MARK:
                self.push_mark()
            elif action == _PS_TO_MARK_ON_TOP or action == _PS_FROM_MARK:
                if not self.nmarks:
                    return None
                self.sp = self.pop_mark()
                if action == _PS_FROM_MARK:
                    self.push(0)
                else:
                    if self.sp <= self.fence or self.target(self.stack[self.sp - 1]):
                        return None
            elif action == _PS_SETITEM or action == _PS_APPEND or action == _PS_BUILD:
                k = 2 if action == _PS_SETITEM else 1
                if self.sp - k <= self.fence:
                    return None
                self.sp -= k
                if self.target(self.stack[self.sp - 1]):
                    return None
            elif action == _PS_PUT or action == _PS_MEMOIZE or action == _PS_GET:
                if action == _PS_MEMOIZE:
                    idx = <uint64_t> self.memo_len
                elif reader == _PS_LINE:
                    if pos - at - 2 < 1 or pos - at - 2 > 18:
                        return None  # no digits (malformed), or more than a memo index needs
                    idx = 0
                    for i in range(at + 1, pos - 1):
                        if not (48 <= self.buf[i] <= 57):
                            return None
                        idx = idx * 10 + (self.buf[i] - 48)
                else:
                    idx = _ps_le(self.buf + at + 1, size)
                if action == _PS_GET:
                    if idx >= <uint64_t> self.memo_cap or self.memo[idx] == _PS_ABSENT:
                        return None  # memo value not found
                    self.push(self.memo[idx])
                else:
                    if self.sp <= self.fence or self.memo_put(idx, self.stack[self.sp - 1]):
                        return None
            elif action == _PS_TUPLE_N or action == _PS_POP_PUSH:
                k = 1 if action == _PS_POP_PUSH else size
                if self.sp - k < self.fence:
                    return None
                self.sp -= k
                self.push(0)
            elif action == _PS_POP:
                if self.nmarks and self.marks[self.nmarks - 1] == self.sp:
                    self.pop_mark()
                elif self.sp <= self.fence:
                    return None
                else:
                    self.sp -= 1
            elif action == _PS_POP_MARK:
                if not self.nmarks:
                    return None
                self.sp = self.pop_mark()
            elif action == _PS_DUP:
                if self.sp <= self.fence:
                    return None
                self.push(self.stack[self.sp - 1])
            elif action == _PS_GLOBAL:
                self.push(self.add_global((_ps_spec._line_text(self.text(at + 1, mid - 1)),
                                           _ps_spec._line_text(self.text(mid, end - 1)))))
            elif action == _PS_STACK_GLOBAL:
                if self.sp - 2 < self.fence:
                    return None
                module = self.string_value(self.stack[self.sp - 2]) if self.stack[self.sp - 2] < 0 else None
                qual = self.string_value(self.stack[self.sp - 1]) if self.stack[self.sp - 1] < 0 else None
                self.sp -= 2
                if module is None or qual is None:
                    module = qual = None
                self.push(self.add_global((module, qual)))
            elif action == _PS_REDUCE or action == _PS_NEWOBJ or action == _PS_NEWOBJ_EX:
                k = 3 if action == _PS_NEWOBJ_EX else 2
                if self.sp - k < self.fence:
                    return None
                func = self.stack[self.sp - k]
                self.sp -= k
                self.push(func | 1 if func > 0 else 0)
            elif action == _PS_INST or action == _PS_OBJ:
                if not self.nmarks:
                    return None
                mark = self.pop_mark()
                if action == _PS_INST:
                    func = self.add_global((_ps_spec._line_text(self.text(at + 1, mid - 1)),
                                            _ps_spec._line_text(self.text(mid, end - 1))))
                else:
                    if self.sp <= mark:
                        return None  # OBJ needs a class after the MARK
                    func = self.stack[mark]
                self.sp = mark
                self.push(func | 1 if func > 0 else 0)
            elif action == _PS_FRAME:
                if frame_end >= 0:
                    return None  # a frame inside a frame
                ln = _ps_le(self.buf + at + 1, 8)
                if ln > <uint64_t> (PY_SSIZE_T_MAX // 2):
                    return None
                frame_end = pos + <Py_ssize_t> ln
                if frame_end > self.n and self.grow(frame_end):
                    return None
            elif action == _PS_PROTO:
                if self.buf[at + 1] > _ps_highest_protocol:
                    return None
                proto = self.buf[at + 1]
            elif action == _PS_STOP:
                if self.sp <= self.fence or (frame_end >= 0 and frame_end != pos):
                    return None
                result = _ps_spec.Scan()
                result.end = pos
                result.protocol = proto
                result.globals = self.globals_
                counts = result.counts  # 256 zeros
                for i in range(256):
                    if self.counts[i]:
                        counts[i] = self.counts[i]
                result.mutated_calls = self.mutated_calls
                return result
            else:  # EXT, PERSID, BINPERSID: always refused
                return None


def scan_pickle(data, start=0, more=None, *, collect=False):
    """:func:`binrec._pickle_scan.scan`, compiled: same arguments, same
    results, same exceptions (those come from the specification itself)."""
    spec = _ps_load_tables()
    if type(start) is not int or not 0 <= start <= PY_SSIZE_T_MAX // 2:
        return spec.scan(data, start, more, collect=collect)
    scanner = _PickleScanner()
    if scanner.open(data, more) == _PS_OK:
        result = scanner.run(start)
        if result is not None:
            return result
        if scanner.stream:
            data = scanner.data  # what was read so far; the spec reads on
    return spec.scan(data, start, more, collect=collect)
