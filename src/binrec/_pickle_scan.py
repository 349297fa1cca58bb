"""An opcode scanner that reads a pickle the way CPython's unpickler does.

It simulates the unpickler's stack and memo abstractly (only what is needed
to know which object each opcode acts on) and checks two things no
``find_class`` hook can see:

* frames: the C unpickler reading from a stream drops the rest of a frame
  when an opcode runs past its end (and a stream reader skips whatever a
  frame holds after STOP), so a frame that does not end exactly on an
  opcode boundary makes a linear reader (``pickletools``, this scanner) see
  other opcodes than the unpickler runs.  Such frames are refused; with
  them gone, the linear reading *is* the unpickler's.
* mutations of globals: BUILD, SETITEM(S), APPEND(S) and ADDITEMS whose
  target is an object that ``find_class`` returned (directly, through the
  memo or DUP) would run ``setattr`` or ``__setitem__`` on a class or a
  module-level object.  Targets that are results of calling a global are
  listed so the caller can judge the callable (an Enum class returns its
  shared members).

Nothing is imported or called.  The scanner is private to
:mod:`binrec.pickling`, which turns its findings into public errors.
"""

from __future__ import annotations

import pickle
import re
from typing import Any

# actions
_PUSH, _PUSH_STR, _MARK, _STOP, _POP, _POP_MARK, _DUP, _FROM_MARK, _TUPLE_N = range(9)
_APPEND, _TO_MARK_ON_TOP, _SETITEM, _BUILD, _GLOBAL, _STACK_GLOBAL, _INST, _OBJ = range(9, 17)
_REDUCE, _NEWOBJ, _NEWOBJ_EX, _PUT, _MEMOIZE, _GET, _FRAME, _PROTO, _EXT, _PERSID = range(17, 27)
_BINPERSID, _POP_PUSH = range(27, 29)

# argument readers
_NOARG, _FIXED, _LINE, _LINE2, _COUNT1, _COUNT4, _COUNT4S, _COUNT8 = range(8)

#: opcode byte -> (name, action, argument reader, fixed size or push count)
_OPS: dict[int, tuple[str, int, int, int]] = {}


def _op(code: bytes, name: str, action: int, reader: int = _NOARG, n: int = 0) -> None:
    _OPS[code[0]] = (name, action, reader, n)


for _code, _name, _n in ((b"J", "BININT", 4), (b"K", "BININT1", 1), (b"M", "BININT2", 2), (b"G", "BINFLOAT", 8)):
    _op(_code, _name, _PUSH, _FIXED, _n)
for _code, _name in ((b"I", "INT"), (b"L", "LONG"), (b"F", "FLOAT")):
    _op(_code, _name, _PUSH, _LINE)
_op(b"\x8a", "LONG1", _PUSH, _COUNT1)
_op(b"\x8b", "LONG4", _PUSH, _COUNT4S)
_op(b"S", "STRING", _PUSH_STR, _LINE)
_op(b"T", "BINSTRING", _PUSH_STR, _COUNT4S)
_op(b"U", "SHORT_BINSTRING", _PUSH_STR, _COUNT1)
_op(b"B", "BINBYTES", _PUSH, _COUNT4)
_op(b"C", "SHORT_BINBYTES", _PUSH, _COUNT1)
_op(b"\x8e", "BINBYTES8", _PUSH, _COUNT8)
_op(b"\x96", "BYTEARRAY8", _PUSH, _COUNT8)
_op(b"\x97", "NEXT_BUFFER", _PUSH)
_op(b"\x98", "READONLY_BUFFER", _POP_PUSH)
for _code, _name in ((b"N", "NONE"), (b"\x88", "NEWTRUE"), (b"\x89", "NEWFALSE")):
    _op(_code, _name, _PUSH)
_op(b"V", "UNICODE", _PUSH_STR, _LINE)
_op(b"\x8c", "SHORT_BINUNICODE", _PUSH_STR, _COUNT1)
_op(b"X", "BINUNICODE", _PUSH_STR, _COUNT4)
_op(b"\x8d", "BINUNICODE8", _PUSH_STR, _COUNT8)
for _code, _name in ((b"]", "EMPTY_LIST"), (b")", "EMPTY_TUPLE"), (b"}", "EMPTY_DICT"), (b"\x8f", "EMPTY_SET")):
    _op(_code, _name, _PUSH)
_op(b"a", "APPEND", _APPEND)
_op(b"e", "APPENDS", _TO_MARK_ON_TOP)
_op(b"u", "SETITEMS", _TO_MARK_ON_TOP)
_op(b"\x90", "ADDITEMS", _TO_MARK_ON_TOP)
_op(b"s", "SETITEM", _SETITEM)
_op(b"b", "BUILD", _BUILD)
for _code, _name in ((b"l", "LIST"), (b"t", "TUPLE"), (b"d", "DICT"), (b"\x91", "FROZENSET")):
    _op(_code, _name, _FROM_MARK)
for _code, _name, _n in ((b"\x85", "TUPLE1", 1), (b"\x86", "TUPLE2", 2), (b"\x87", "TUPLE3", 3)):
    _op(_code, _name, _TUPLE_N, _NOARG, _n)
_op(b"0", "POP", _POP)
_op(b"2", "DUP", _DUP)
_op(b"(", "MARK", _MARK)
_op(b"1", "POP_MARK", _POP_MARK)
_op(b"g", "GET", _GET, _LINE)
_op(b"h", "BINGET", _GET, _FIXED, 1)
_op(b"j", "LONG_BINGET", _GET, _FIXED, 4)
_op(b"p", "PUT", _PUT, _LINE)
_op(b"q", "BINPUT", _PUT, _FIXED, 1)
_op(b"r", "LONG_BINPUT", _PUT, _FIXED, 4)
_op(b"\x94", "MEMOIZE", _MEMOIZE)
_op(b"\x82", "EXT1", _EXT, _FIXED, 1)
_op(b"\x83", "EXT2", _EXT, _FIXED, 2)
_op(b"\x84", "EXT4", _EXT, _FIXED, 4)
_op(b"c", "GLOBAL", _GLOBAL, _LINE2)
_op(b"\x93", "STACK_GLOBAL", _STACK_GLOBAL)
_op(b"R", "REDUCE", _REDUCE)
_op(b"i", "INST", _INST, _LINE2)
_op(b"o", "OBJ", _OBJ)
_op(b"\x81", "NEWOBJ", _NEWOBJ)
_op(b"\x92", "NEWOBJ_EX", _NEWOBJ_EX)
_op(b"\x80", "PROTO", _PROTO, _FIXED, 1)
_op(b".", "STOP", _STOP)
_op(b"\x95", "FRAME", _FRAME, _FIXED, 8)
_op(b"P", "PERSID", _PERSID, _LINE)
_op(b"Q", "BINPERSID", _BINPERSID)

#: 256-entry table for the hot loop (None: not an opcode)
_TABLE: list[tuple[str, int, int, int] | None] = [_OPS.get(i) for i in range(256)]
NAMES: dict[int, str] = {code: spec[0] for code, spec in _OPS.items()}
CALL_OPS = frozenset(
    code for code, spec in _OPS.items() if spec[0] in ("REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD", "INST", "OBJ")
)

_DIGITS = re.compile(rb"[0-9]+\n")


class Malformed(pickle.UnpicklingError):
    """The bytes are not a well-formed pickle (the unpickler would fail too)."""

    #: set by :func:`scan` as it re-raises: what the scan saw before the fault
    partial: Scan

    def __init__(self, message: str, pos: int) -> None:
        self.pos = pos
        super().__init__(f"{message} (at byte {pos})")


class Refused(pickle.UnpicklingError):
    """A well-formed pickle that does something the restricted loader refuses."""

    #: set by :func:`scan` as it re-raises: what the scan saw before the fault
    partial: Scan

    def __init__(self, message: str, pos: int, opcode: str) -> None:
        self.pos = pos
        self.opcode = opcode
        super().__init__(f"{message} (opcode {opcode} at byte {pos})")


class FrameMismatch(Refused):
    """A frame boundary that does not fall on an opcode boundary."""


class Scan:
    """What one pickle holds, as the unpickler would read it."""

    __slots__ = ("end", "protocol", "globals", "counts", "mutated_calls", "refusals")

    def __init__(self) -> None:
        self.end = 0
        self.protocol = 0
        #: (module, name) of every GLOBAL/INST/STACK_GLOBAL in order; None
        #: where a STACK_GLOBAL takes a name that is not a string constant
        self.globals: list[tuple[str | None, str | None]] = []
        self.counts = [0] * 256
        #: (module, name) of globals whose call results are later mutated
        self.mutated_calls: set[tuple[str | None, str | None]] = set()
        self.refusals: list[Refused] = []


def _line_text(raw: Any) -> str:
    return bytes(raw).decode("utf-8", "surrogateescape")


def _str_value(name: str, raw: bytes | bytearray | memoryview) -> str | None:
    """The str an unpickler with default arguments makes, or None."""
    try:
        raw = bytes(raw)
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
            return raw.decode("utf-8", "surrogatepass")
        if name == "UNICODE":
            return raw.decode("raw-unicode-escape")
        if name == "STRING":
            # quoted; with escapes it is never a global's name in a real pickle
            if len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b"'", b'"') and b"\\" not in raw:
                return raw[1:-1].decode("ascii")
            return None
        return raw.decode("ascii")  # BINSTRING, SHORT_BINSTRING with encoding="ASCII"
    except UnicodeDecodeError:
        return None


def scan(data: Any, start: int = 0, more: Any = None, *, collect: bool = False) -> Scan:
    """Scan one pickle of ``data`` from ``start`` to its STOP.

    ``more()`` (optional) returns the bytes that follow ``data``, or ``b""``
    at the end; ``data`` then grows as needed (a stream).  With
    ``collect=False`` the first refusal raises; with ``collect=True`` the
    scan goes on and refusals are listed (a frame mismatch always stops it,
    since what follows is no longer what the unpickler reads).

    Raises
    ------
    Malformed
        The unpickler would fail on these bytes.  Its ``partial`` attribute
        holds what the scan saw before the fault (an unpickler runs those
        opcodes before it fails).
    Refused
        The first refusal (``collect=False``).
    """
    result = Scan()
    counts = result.counts
    globals_ = result.globals
    table = _TABLE
    n = len(data)
    pos = start
    stack: list[Any] = []
    marks: list[int] = []
    fence = 0
    memo: dict[int, Any] = {}
    frame_end = -1

    def refuse(exc: Refused) -> None:
        if not collect or isinstance(exc, FrameMismatch):
            raise exc
        result.refusals.append(exc)

    def grow(need: int) -> None:
        nonlocal data, n
        if more is not None:
            if not isinstance(data, bytearray):
                data = bytearray(data)
            while len(data) < need:
                chunk = more()
                if not chunk:
                    break
                data += chunk
            n = len(data)
        if n < need:
            raise Malformed("pickle data was truncated", n)

    def line_end(p: int) -> int:
        nonlocal data, n
        q = p
        while True:
            if isinstance(data, (bytes, bytearray)):
                i = data.find(b"\n", q)
            else:  # a memoryview: look in growing windows, never copy the rest
                i = bytes(data[q : q + 256]).find(b"\n")
                i = -1 if i < 0 else q + i
                if i < 0 and q + 256 < n:
                    q += 256
                    continue
            if i >= 0:
                return i + 1
            q = n
            if more is None:
                raise Malformed("pickle data was truncated (no end of line)", n)
            grow(n + 1)  # raises at the end of the stream

    def target(kind: Any, name: str, at: int) -> None:
        if type(kind) is tuple:
            if kind[0] == 0:
                refuse(
                    Refused(
                        f"{name} on the global {kind[1]}.{kind[2]} would modify it in place; only objects "
                        "built by this pickle may be modified",
                        at,
                        name,
                    )
                )
            else:
                result.mutated_calls.add((kind[1], kind[2]))

    try:
        while True:
            if pos >= n:
                grow(pos + 1)
            if pos == frame_end:
                frame_end = -1
            code = data[pos]
            spec = table[code]
            if spec is None:
                raise Malformed(f"invalid load key, {bytes([code])!r}", pos)
            name, action, reader, size = spec
            counts[code] += 1
            at = pos
            pos += 1
            arg: Any = None
            if reader:
                if reader == _FIXED:
                    end = pos + size
                    if end > n:
                        grow(end)
                elif reader == _COUNT1:
                    if pos >= n:
                        grow(pos + 1)
                    ln = data[pos]
                    end = pos + 1 + ln
                    if end > n:
                        grow(end)
                    arg = (pos + 1, end)
                elif reader == _COUNT4 or reader == _COUNT4S or reader == _COUNT8:
                    width = 8 if reader == _COUNT8 else 4
                    if pos + width > n:
                        grow(pos + width)
                    ln = int.from_bytes(data[pos : pos + width], "little", signed=reader == _COUNT4S)
                    if ln < 0:
                        raise Malformed(f"{name} has a negative byte count", at)
                    end = pos + width + ln
                    if end > n:
                        grow(end)
                    arg = (pos + width, end)
                elif reader == _LINE:
                    end = line_end(pos)
                    arg = (pos, end - 1)
                else:  # _LINE2
                    mid = line_end(pos)
                    end = line_end(mid)
                    arg = (_line_text(data[pos : mid - 1]), _line_text(data[mid : end - 1]))
                pos = end
            if frame_end >= 0 and pos > frame_end:
                raise FrameMismatch(
                    f"the frame ends at byte {frame_end}, inside this opcode (which ends at byte {pos}): "
                    "a stream unpickler would read other opcodes than a linear reader",
                    at,
                    name,
                )

            if action == _PUSH:
                stack.append(None)
            elif action == _PUSH_STR:
                stack.append(_str_value(name, data[arg[0] : arg[1]]))
            elif action == _MARK:
                marks.append(len(stack))
                fence = len(stack)
            elif action == _TO_MARK_ON_TOP or action == _FROM_MARK:
                if not marks:
                    raise Malformed("could not find MARK", at)
                mark = marks.pop()
                del stack[mark:]
                fence = marks[-1] if marks else 0
                if action == _FROM_MARK:
                    stack.append(None)
                else:
                    if len(stack) <= fence:
                        raise Malformed("unpickling stack underflow", at)
                    target(stack[-1], name, at)
            elif action == _SETITEM or action == _APPEND or action == _BUILD:
                k = 2 if action == _SETITEM else 1
                if len(stack) - k <= fence:
                    raise Malformed("unpickling stack underflow", at)
                del stack[-k:]
                target(stack[-1], name, at)
            elif action == _PUT or action == _MEMOIZE or action == _GET:
                if action == _MEMOIZE:
                    idx = len(memo)
                elif reader == _LINE:
                    raw = bytes(data[arg[0] : arg[1] + 1])
                    if not _DIGITS.fullmatch(raw):
                        raise Malformed(f"{name} argument {raw!r} is not a plain decimal index", at)
                    idx = int(raw)
                else:
                    idx = int.from_bytes(data[at + 1 : pos], "little")
                if action == _GET:
                    if idx not in memo:
                        raise Malformed(f"memo value not found at index {idx}", at)
                    stack.append(memo[idx])
                else:
                    if len(stack) <= fence:
                        raise Malformed("unpickling stack underflow", at)
                    memo[idx] = stack[-1]
            elif action == _TUPLE_N or action == _POP_PUSH:
                k = 1 if action == _POP_PUSH else size
                if len(stack) - k < fence:
                    raise Malformed("unpickling stack underflow", at)
                del stack[len(stack) - k :]
                stack.append(None)
            elif action == _POP:
                if marks and marks[-1] == len(stack):
                    marks.pop()
                    fence = marks[-1] if marks else 0
                elif len(stack) <= fence:
                    raise Malformed("unpickling stack underflow", at)
                else:
                    stack.pop()
            elif action == _POP_MARK:
                if not marks:
                    raise Malformed("could not find MARK", at)
                del stack[marks.pop() :]
                fence = marks[-1] if marks else 0
            elif action == _DUP:
                if len(stack) <= fence:
                    raise Malformed("unpickling stack underflow", at)
                stack.append(stack[-1])
            elif action == _GLOBAL or action == _STACK_GLOBAL:
                if action == _GLOBAL:
                    module, qual = arg
                else:
                    if len(stack) - 2 < fence:
                        raise Malformed("unpickling stack underflow", at)
                    module, qual = stack[-2], stack[-1]
                    del stack[-2:]
                    if type(module) is not str or type(qual) is not str:
                        module = qual = None
                globals_.append((module, qual))
                stack.append((0, module, qual))
            elif action == _REDUCE or action == _NEWOBJ or action == _NEWOBJ_EX:
                k = 3 if action == _NEWOBJ_EX else 2
                if len(stack) - k < fence:
                    raise Malformed("unpickling stack underflow", at)
                func = stack[-k]
                del stack[-k:]
                stack.append((1, func[1], func[2]) if type(func) is tuple else None)
            elif action == _INST or action == _OBJ:
                if not marks:
                    raise Malformed("could not find MARK", at)
                mark = marks.pop()
                fence = marks[-1] if marks else 0
                if action == _INST:
                    globals_.append(arg)
                    func = (0,) + arg
                else:
                    if len(stack) <= mark:
                        raise Malformed("OBJ needs a class after the MARK", at)
                    func = stack[mark]
                del stack[mark:]
                stack.append((1, func[1], func[2]) if type(func) is tuple else None)
            elif action == _FRAME:
                if frame_end >= 0:
                    raise FrameMismatch(
                        f"a new frame starts at byte {at}, inside the frame that ends at byte {frame_end}", at, name
                    )
                frame_end = pos + int.from_bytes(data[at + 1 : pos], "little")
                if frame_end > n:
                    grow(frame_end)
            elif action == _PROTO:
                arg = data[at + 1]
                if arg > pickle.HIGHEST_PROTOCOL:
                    raise Malformed(f"unsupported pickle protocol: {arg}", at)
                result.protocol = arg
            elif action == _STOP:
                if len(stack) <= fence:
                    raise Malformed("unpickling stack underflow", at)
                if frame_end >= 0 and frame_end != pos:
                    raise FrameMismatch(
                        f"the frame runs on to byte {frame_end}, past STOP: a stream reader would skip "
                        "those bytes while a linear reader takes them for the next pickle",
                        at,
                        name,
                    )
                result.end = pos
                return result
            elif action == _EXT:
                refuse(Refused("EXT opcodes (copyreg's extension registry) are refused", at, name))
                stack.append(None)
            else:  # PERSID, BINPERSID
                if action == _BINPERSID:
                    if len(stack) <= fence:
                        raise Malformed("unpickling stack underflow", at)
                    stack.pop()
                refuse(Refused("persistent IDs are refused", at, name))
                stack.append(None)
    except (Malformed, Refused) as exc:
        exc.partial = result  # what came before the fault
        raise
