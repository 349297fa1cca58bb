"""The restricted unpickler and the safe loaders built on it.

Every global is checked against a :class:`~binrec._pickle_policy.Policy` in
``find_class``; what the C unpickler cannot be asked is read from the
bytes by the opcode scanner (:mod:`binrec._pickle_scan`).  Malformed input
raises :class:`~binrec.pickling.TruncatedError` whatever the unpickler's own
exception was.
"""

from __future__ import annotations

import _compat_pickle
import copyreg
import enum
import importlib
import io
import os
import pickle
import pickletools
import struct
import types
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, Protocol

from . import _backend, _pickle_scan
from ._pickle_errors import ForbiddenGlobal, ForbiddenOpcode, LimitExceeded, PickleSecurityError, TruncatedError
from ._pickle_policy import ALL, DEFAULT_POLICY, AllowSpec, Policy, policy_for


def _py3_name(module: str, name: str) -> tuple[str, str]:
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _resolve(module: str, qualname: str) -> Any:
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise pickle.UnpicklingError(f"cannot import module {module!r} for {module}.{qualname}: {exc}") from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise pickle.UnpicklingError(f"module {module!r} has no attribute {qualname!r}") from None
    return obj


class _Source(Protocol):
    """What :class:`pickle.Unpickler` reads from: a file, or a reader over a buffer."""

    def read(self, n: int, /) -> bytes: ...

    def readline(self) -> bytes: ...


# package-internal: used by _pickle_stream (with ``rescan`` and ``validate``)
class RestrictedUnpickler(pickle.Unpickler):
    """The C unpickler, with every global checked in ``find_class``.

    The first ``find_class`` call also scans the whole pickle
    (:meth:`validate`) before any global is handed out: what the C
    unpickler cannot be asked (is a BUILD aimed at a global? do frames end
    on opcode boundaries?) is read from the bytes.  A pickle without
    globals builds only plain containers and scalars, so it never pays
    for the scan.
    """

    #: the pickle's bytes (or None), and a function that scans them when
    #: they come from a stream; set per load
    data: Any = None
    rescan: Callable[[], _pickle_scan.Scan] | None = None
    _validated = False

    def __init__(self, file: _Source, policy: Policy, buffers: Iterable[Any] | None = None) -> None:
        super().__init__(file, buffers=buffers)
        self._policy = policy

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (protocols 0-2) are mapped first, so the policy
        # judges exactly the object that will be returned; we resolve it
        # ourselves rather than trusting a second lookup to agree.
        module, name = _py3_name(module, name)
        self._policy.check(module, name)
        if not self._validated:
            self.validate()
        obj = _resolve(module, name)
        if isinstance(obj, types.ModuleType):
            raise ForbiddenGlobal(module, name, "resolves to a module")
        return obj

    def validate(self) -> None:
        """Scan the whole pickle now and refuse what the scan finds
        (called before an EXT opcode could skip ``find_class``)."""
        self._validated = True
        scan = self.rescan() if self.rescan is not None else scan_or_refuse(self.data)
        _check_mutated_calls(scan, self._policy)

    def persistent_load(self, pid: Any) -> Any:
        raise ForbiddenOpcode("persistent IDs are refused by the restricted loader")


# package-internal: used by _pickle_stream
def scan_or_refuse(data: Any, start: int = 0, more: Callable[[], bytes] | None = None) -> _pickle_scan.Scan:
    """Scan one pickle; a refusal becomes :class:`ForbiddenOpcode` (a
    malformed pickle raises the scanner's ``UnpicklingError``)."""
    if not isinstance(data, (bytes, bytearray)):
        data = memoryview(data).cast("B")
    try:
        return _backend.scan_pickle(data, start, more)
    except _pickle_scan.Refused as exc:
        raise ForbiddenOpcode(str(exc)) from None


# package-internal: used by _pickle_inspect
def mutated_call_problems(scan: _pickle_scan.Scan, policy: Policy) -> list[str]:
    """Why modifying the results of these calls would touch shared objects.

    Calling a class normally builds a new object that BUILD may then fill
    in; calling an Enum class returns one of its members, which the whole
    process shares.  Only allowed globals are resolved (others raise
    :class:`ForbiddenGlobal`, as ``find_class`` would)."""
    problems = []
    for module, name in sorted(scan.mutated_calls, key=str):
        if module is None or name is None:
            problems.append("the pickle modifies what a global with a computed name returned")
            continue
        module, name = _py3_name(module, name)
        policy.check(module, name)
        if isinstance(_resolve(module, name), enum.EnumMeta):
            problems.append(f"the pickle modifies a member of the enum {module}.{name}, which the process shares")
    return problems


def _check_mutated_calls(scan: _pickle_scan.Scan, policy: Policy) -> None:
    problems = mutated_call_problems(scan, policy)
    if problems:
        raise ForbiddenOpcode(problems[0])


class _ViewReader:
    """A read-only file over a buffer, without copying it up front."""

    __slots__ = ("_view", "_pos")

    def __init__(self, data: Any) -> None:
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        start = self._pos
        end = len(self._view) if n is None or n < 0 else min(len(self._view), start + n)
        self._pos = end
        return bytes(self._view[start:end])

    def readinto(self, b: Any) -> int:
        out = memoryview(b).cast("B")
        n = min(len(out), len(self._view) - self._pos)
        out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def readline(self) -> bytes:
        rest = self._view[self._pos :]
        i = bytes(rest[:65536]).find(b"\n") if len(rest) else -1
        if i < 0:
            i = rest.tobytes().find(b"\n")
        return self.read(len(rest) if i < 0 else i + 1)


class _DefaultUnpickler(RestrictedUnpickler):
    """The default policy as a class attribute: no Python ``__init__`` to run
    per load, which matters for many small values (a shelf's gets)."""

    __init__ = pickle.Unpickler.__init__
    _policy = DEFAULT_POLICY


#: Default cap on the size of one pickle accepted by the safe loaders.
DEFAULT_MAX_BYTES = 1 << 30


# package-internal: used by _pickle_stream
def extension_registry_in_use() -> bool:
    # EXT opcodes fetch from copyreg's registry; a cache hit skips
    # find_class.  With both empty (the default) every EXT opcode fails.
    # (private copyreg tables, not in typeshed)
    return bool(copyreg._inverted_registry) or bool(copyreg._extension_cache)  # type: ignore[attr-defined]


# package-internal: used by _pickle_stream
#: What the C unpickler raises on malformed input, besides UnpicklingError.
MALFORMED = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    struct.error,
    OverflowError,
    AttributeError,
    ImportError,
    MemoryError,
    RecursionError,
)


# package-internal: used by _pickle_stream
def as_pickle_error(exc: BaseException, offset: int, index: int) -> pickle.UnpicklingError:
    """The one public error for what an unpickler raised: security errors
    as they are, EXT opcodes as :class:`ForbiddenOpcode` (whether or not a
    registry is in use), anything else as :class:`TruncatedError`."""
    if isinstance(exc, PickleSecurityError):
        return exc
    if isinstance(exc, ValueError) and "unregistered extension code" in str(exc):
        return ForbiddenOpcode(f"EXT opcode refused: {exc}")
    return TruncatedError(offset, index, exc)


_FILLS = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})
_EMPTY_CONTAINERS = frozenset({"EMPTY_LIST", "EMPTY_DICT", "EMPTY_TUPLE", "EMPTY_SET"})


def _max_depth(data: bytes | bytearray | memoryview, limit: int) -> int:
    """How deeply the objects a pickle builds nest: a scalar is 0, ``[]``
    is 1, ``[[1, 2]]`` is 2, the same for every protocol (a wide container
    is not a deep one; an object rebuilt by a call, such as ``set`` before
    protocol 4, counts one level over its arguments).

    Each object is a cell ``[depth, containers]``, shared by the stack and
    the memo.  A container fetched from the memo can be filled after it was
    put into others (``GET a; GET b; APPEND``), so a cell that grows raises
    the cells that contain it, and theirs.  The scan stops at the first depth
    over ``limit`` and returns it: an object that contains itself has no
    finite depth, and grows past any limit.  A malformed pickle ends the
    scan: the unpickler then reports it."""
    stack: list[list[Any]] = []
    marks: list[int] = []
    memo: dict[Any, list[Any]] = {}
    best = 0

    def contain(cell: list[Any], items: list[list[Any]]) -> None:
        """``cell`` now holds ``items``: raise it, and what holds it, to one
        level over them."""
        nonlocal best
        for item in items:
            item[1].append(cell)
        grow = [(cell, 1 + max((item[0] for item in items), default=0))]
        while grow and best <= limit:
            cell, depth = grow.pop()
            if depth > cell[0]:
                cell[0] = depth
                best = max(best, depth)
                grow.extend((outer, depth + 1) for outer in cell[1])

    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            name = op.name
            if name == "MARK":
                marks.append(len(stack))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif name == "DUP":
                stack.append(stack[-1])
            elif name != "READONLY_BUFFER":  # a read-only view of the buffer below it: the same object
                before = op.stack_before
                if pickletools.markobject in before:
                    # the mark, and the one object under it for APPENDS/SETITEMS/ADDITEMS
                    at = marks.pop() - before.index(pickletools.markobject)
                else:
                    at = len(stack) - len(before)
                if at < 0:
                    break  # stack underflow: malformed
                taken = stack[at:]
                del stack[at:]
                if name in _FILLS:  # the object under the items gets them
                    stack.append(taken[0])
                    contain(taken[0], taken[1:])
                elif op.stack_after:  # a new object, built from what it took
                    cell: list[Any] = [0, []]
                    stack.append(cell)
                    if taken or pickletools.markobject in before:
                        contain(cell, taken)
                    elif name in _EMPTY_CONTAINERS:
                        contain(cell, [])
            if best > limit:
                break
    except (ValueError, IndexError, KeyError):
        pass  # malformed: safe_loads reports it as every loader does
    return best


def safe_loads(
    data: bytes | bytearray | memoryview,
    *,
    allow: AllowSpec = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_depth: int | None = None,
) -> Any:
    """Unpickle ``data`` admitting only allowlisted globals.

    Parameters
    ----------
    data : bytes-like
        One pickle.
    allow : optional
        Extra globals to admit on top of :data:`DEFAULT_ALLOW`:
        ``"module.qualname"`` strings (``"module:Outer.Inner"`` for nested
        names), ``(module, qualname)`` tuples, classes or functions; or a
        predicate ``f(module, qualname) -> bool``; or :data:`ALL` for an
        unrestricted :func:`pickle.loads`.  Names in :data:`NEVER_ALLOW`
        are refused whatever ``allow`` says (except ``ALL``).
    max_bytes : int or None
        Refuse larger inputs (default 1 GiB).
    max_depth : int or None
        Refuse pickles whose containers nest deeper (``[]`` is depth 1,
        ``[[1, 2]]`` depth 2, whatever the protocol; checked by a scan with
        :mod:`pickletools`, which costs time on large pickles; off by
        default, since the C unpickler is iterative and deep data cannot
        crash it).  Nesting made through the memo counts (a list filled
        after it was put in another); a container that contains itself
        nests without end and is refused at any limit.

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    ForbiddenGlobal
        The pickle names a global outside the policy; raised by
        ``find_class``, before the global is called.
    ForbiddenOpcode, LimitExceeded
        EXT opcodes while an extension registry is in use, persistent IDs,
        an input over ``max_bytes`` or nesting over ``max_depth``.
    TruncatedError
        Malformed or truncated data.

    Examples
    --------
    >>> import datetime, fractions, pickle
    >>> from binrec import pickling
    >>> pickling.safe_loads(pickle.dumps({"when": datetime.date(2024, 1, 2), "n": [1, 2]}))
    {'when': datetime.date(2024, 1, 2), 'n': [1, 2]}
    >>> class Evil:
    ...     def __reduce__(self):
    ...         import os
    ...         return (os.system, ("echo pwned",))
    >>> try:
    ...     pickling.safe_loads(pickle.dumps(Evil()))
    ... except pickling.ForbiddenGlobal as exc:
    ...     print(exc.name, "refused; nothing ran")
    system refused; nothing ran
    >>> pickling.safe_loads(pickle.dumps(fractions.Fraction(1, 3)), allow=lambda module, name: module == "fractions")
    Fraction(1, 3)
    """
    if allow is ALL:
        return pickle.loads(data)
    nbytes = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
    if max_bytes is not None and nbytes > max_bytes:
        raise LimitExceeded(f"pickle of {nbytes} bytes exceeds max_bytes={max_bytes}")
    if max_depth is not None and _max_depth(data, max_depth) > max_depth:
        raise LimitExceeded(f"pickle nests deeper than max_depth={max_depth}")
    return restricted_loads(data, allow, None)


# package-internal: used by checkpoint.py (not in __all__)
def restricted_loads(data: Any, allow: AllowSpec, buffers: Iterable[Any] | None) -> Any:
    """The restricted unpickling itself (no size or depth caps), with
    optional out-of-band buffers (pickle protocol 5)."""
    if allow is ALL:
        return pickle.loads(data, buffers=buffers)
    # BytesIO shares a bytes object but copies any other buffer: read views
    # in place instead (a signed 100 MB payload would otherwise be copied once more).
    stream = io.BytesIO(data) if isinstance(data, bytes) else _ViewReader(data)
    if allow is None and buffers is None:
        unpickler: RestrictedUnpickler = _DefaultUnpickler(stream)
    else:
        unpickler = RestrictedUnpickler(stream, policy_for(allow), buffers=buffers)
    unpickler.data = data
    try:
        if extension_registry_in_use():
            # an EXT cache hit skips find_class: scan before anything runs
            unpickler.validate()
        return unpickler.load()
    except PickleSecurityError:
        raise
    except MALFORMED as exc:
        raise as_pickle_error(exc, 0, 0) from exc


def safe_load(
    file: BinaryIO | str | os.PathLike[str],
    *,
    allow: AllowSpec = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_depth: int | None = None,
) -> Any:
    """:func:`safe_loads` on the next pickle of a binary file or a path.

    The whole file is read (at most ``max_bytes + 1`` bytes) before
    unpickling, so the size cap holds for streams too.

    Parameters
    ----------
    file : binary file object or path
        Where to read the pickle.
    allow, max_bytes, max_depth
        As for :func:`safe_loads`.

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    PickleSecurityError
        As :func:`safe_loads`.

    Examples
    --------
    >>> import argparse, io, pickle
    >>> from binrec import pickling
    >>> pickling.safe_load(io.BytesIO(pickle.dumps({"n": 1})))
    {'n': 1}
    >>> payload = pickle.dumps(argparse.Namespace(n=1))
    >>> try:
    ...     pickling.safe_load(io.BytesIO(payload))
    ... except pickling.ForbiddenGlobal as exc:
    ...     print(exc)
    forbidden global argparse.Namespace: not in the allowlist
    >>> pickling.safe_load(io.BytesIO(payload), allow=[argparse.Namespace])
    Namespace(n=1)
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as fh:
            return safe_load(fh, allow=allow, max_bytes=max_bytes, max_depth=max_depth)
    if allow is ALL:
        return pickle.load(file)
    limit = -1 if max_bytes is None else max_bytes + 1
    data = file.read(limit)
    return safe_loads(data, allow=allow, max_bytes=max_bytes, max_depth=max_depth)
