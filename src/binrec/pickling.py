"""Pickle persistence done safely.

* :func:`dump_many` / :func:`load_many`: many objects in one file or stream.
* :func:`save_versioned` / :func:`load_versioned`: files that carry a data
  version, upgraded on load through a chain of migrations.
* :func:`safe_loads` / :func:`safe_load`: unpickling restricted to an
  allowlist of exact ``(module, qualname)`` globals, enforced inside
  ``find_class`` (so no pre-scan can be fooled by a parser difference):
  a payload that names anything else raises :class:`ForbiddenGlobal`
  *before* anything is called.
* :func:`inspect`: what a pickle would import and call, read with
  :mod:`pickletools` without executing anything.

The policy (what :func:`safe_loads` admits by default) is
:data:`DEFAULT_ALLOW`: plain data types, ``datetime``, ``decimal``,
``fractions``, ``uuid.UUID``, ``collections`` containers, pure paths and
exactly what numpy needs to rebuild arrays, dtypes and scalars.  Some
modules are never admitted, even when a caller extends the list
(:data:`NEVER_ALLOW`): anything that reaches attributes, imports or runs code.
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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from . import _backend, _pickle_scan
from ._atomic import atomic_writer

__all__ = [
    "ALL",
    "DEFAULT_ALLOW",
    "NEVER_ALLOW",
    "PickleSecurityError",
    "ForbiddenGlobal",
    "ForbiddenOpcode",
    "LimitExceeded",
    "TruncatedError",
    "VersionError",
    "PickleReport",
    "dump_many",
    "load_many",
    "save_versioned",
    "load_versioned",
    "safe_loads",
    "safe_load",
    "inspect",
]


# -- errors ---------------------------------------------------------------------


class PickleSecurityError(pickle.UnpicklingError):
    """A pickle was refused by the restricted loader."""


class ForbiddenGlobal(PickleSecurityError):
    """The pickle names a global outside the allowlist; nothing was called."""

    def __init__(self, module: str, name: str, reason: str = "not in the allowlist") -> None:
        self.module = module
        self.name = name
        super().__init__(f"forbidden global {module}.{name}: {reason}")


class ForbiddenOpcode(PickleSecurityError):
    """The pickle uses an opcode the restricted loader refuses: EXT1/2/4
    (copyreg's extension registry), persistent IDs, BUILD/SETITEM(S)/
    APPEND(S)/ADDITEMS on a global (or on a shared Enum member), or a FRAME
    whose end does not fall on an opcode boundary."""


class LimitExceeded(PickleSecurityError):
    """The pickle is larger (or nests deeper) than the caller allowed."""


class TruncatedError(pickle.UnpicklingError):
    """A truncated or corrupt pickle (every loader raises this class for
    malformed input, whatever the unpickler's own exception was: that one
    is the ``__cause__``).

    Attributes
    ----------
    offset : int
        Byte offset (from where reading started) of the object that failed.
    index : int
        How many complete objects came before it.
    """

    def __init__(self, offset: int, index: int, cause: BaseException | None = None) -> None:
        self.offset = offset
        self.index = index
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"truncated or corrupt pickle (object #{index}) at byte offset {offset}{detail}")


class VersionError(ValueError):
    """A versioned file cannot be brought to the requested version."""


# -- the allowlist ------------------------------------------------------------------


class _AllType:
    """Marker for an unrestricted load (plain :func:`pickle.loads`).  Pass
    ``allow=ALL`` explicitly so an unsafe load is visible in the code."""

    _instance: _AllType | None = None

    def __new__(cls) -> _AllType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "binrec.pickling.ALL"

    def __reduce__(self):
        return "ALL"


ALL = _AllType()


def _name_of(obj: Any) -> tuple[str, str]:
    return obj.__module__, obj.__qualname__


def _default_allow() -> frozenset[tuple[str, str]]:
    import collections
    import datetime
    import decimal
    import fractions
    import pathlib
    import uuid

    names: set[tuple[str, str]] = set()
    for t in (dict, list, tuple, set, frozenset, bytearray, bytes, str, int, float, complex, bool, slice, range):
        names.add(("builtins", t.__name__))
    for t in (datetime.datetime, datetime.date, datetime.time, datetime.timedelta, datetime.timezone):
        names.add(_name_of(t))
    names.add(_name_of(decimal.Decimal))
    names.add(("decimal", "Decimal"))
    names.add(_name_of(fractions.Fraction))
    names.add(_name_of(uuid.UUID))
    names.add(("uuid", "SafeUUID"))  # UUID.__setstate__ restores is_safe through it
    for t in (
        collections.OrderedDict,
        collections.deque,
        collections.defaultdict,
        collections.Counter,
        collections.ChainMap,
    ):
        names.add(_name_of(t))
    for t in (pathlib.PurePath, pathlib.PurePosixPath, pathlib.PureWindowsPath):
        names.add(_name_of(t))
        names.add(("pathlib", t.__name__))
    # protocols 0 and 1 rebuild plain-class instances with
    # copyreg._reconstructor(cls, base, state): cls and base are themselves
    # globals, so they pass this same policy; object is its usual base.
    names.add(("copyreg", "_reconstructor"))
    names.add(("builtins", "object"))
    # bytes pickled with protocol < 3 are rebuilt by _codecs.encode(str, 'latin1')
    names.add(("_codecs", "encode"))
    # numpy: exactly what arrays, dtypes and scalars need (numpy 2 names, and
    # the numpy 1.x names that old pickles carry, which numpy 2 still maps)
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        names.add((mod, "_reconstruct"))
        names.add((mod, "scalar"))
    for mod in ("numpy._core.numeric", "numpy.core.numeric"):
        names.add((mod, "_frombuffer"))
    names.add(("numpy", "ndarray"))
    names.add(("numpy", "dtype"))
    return frozenset(names)


#: The globals :func:`safe_loads` admits when ``allow`` is not given.
DEFAULT_ALLOW: frozenset[tuple[str, str]] = _default_allow()

#: Modules whose globals are never admitted, even through ``allow=``
#: (``allow=ALL`` turns every check off).
NEVER_ALLOW: frozenset[str] = frozenset(
    """os posix nt subprocess _posixsubprocess pty multiprocessing sys code codeop runpy marshal pickle
    _pickle shutil codecs io _io tarfile zipfile sqlite3 _sqlite3 py_compile socket _socket http urllib
    logging.config ctypes _ctypes pdb profile cProfile timeit trace doctest pydoc functools _functools
    importlib pkgutil types inspect operator _operator builtins.eval webbrowser signal threading
    _thread asyncio ssl ftplib smtplib telnetlib xmlrpc compileall zipimport posixpath ntpath
    numpy.load numpy.f2py numpy.testing numpy.distutils numpy.lib.npyio numpy.ctypeslib""".split()
)

#: builtins that are never admitted.
_NEVER_BUILTINS = frozenset(
    """getattr setattr delattr eval exec compile __import__ open globals locals vars breakpoint input
    help exit quit memoryview super type classmethod staticmethod property""".split()
)


def _never(module: str, name: str) -> str | None:
    """Why ``module.name`` can never be admitted, or None."""
    if module == "builtins" and name in _NEVER_BUILTINS:
        return f"builtins.{name} reaches attributes or runs code"
    # An entry bans itself and everything below it, by whole dotted parts
    # (os bans os.path.join, not osx): one of the dotted prefixes of
    # module.name is the entry.  Looking each prefix up in the set is a few
    # hash lookups per global instead of a scan of the whole list.
    parts = f"{module}.{name}".split(".")
    prefix = parts[0]
    if prefix in NEVER_ALLOW:
        return f"module {prefix} is never allowed"
    for part in parts[1:]:
        prefix = f"{prefix}.{part}"
        if prefix in NEVER_ALLOW:
            return f"module {prefix} is never allowed"
    return None


Predicate = Callable[[str, str], bool]
AllowSpec = Any  # None | ALL | iterable of "module.qualname" / (module, qualname) / objects | predicate


def _parse_allow_item(item: Any) -> tuple[str, str]:
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item):
        return item
    if isinstance(item, str):
        if ":" in item:
            module, _, name = item.partition(":")
        else:
            module, _, name = item.rpartition(".")
        if not module or not name:
            raise ValueError(f"allow entry {item!r} must look like 'module.qualname' or 'module:Outer.Inner'")
        return module, name
    if hasattr(item, "__module__") and hasattr(item, "__qualname__"):
        return item.__module__, item.__qualname__
    raise TypeError(
        f"allow entries must be 'module.qualname' strings, (module, qualname) tuples or classes/functions, not {item!r}"
    )


class _Policy:
    __slots__ = ("names", "predicate")

    def __init__(self, allow: AllowSpec) -> None:
        self.names = DEFAULT_ALLOW
        self.predicate: Predicate | None = None
        if allow is None:
            return
        if isinstance(allow, (str, type)):
            allow = [allow]  # one name or one class
        elif callable(allow) and not hasattr(allow, "__iter__"):
            self.predicate = allow  # f(module, qualname) -> bool; put functions to admit in a list
            return
        extra = set()
        for item in allow:
            module, name = _parse_allow_item(item)
            reason = _never(module, name)
            if reason:
                raise ValueError(f"refusing to allow {module}.{name}: {reason}")
            extra.add((module, name))
        self.names = DEFAULT_ALLOW | extra

    def check(self, module: str, name: str) -> None:
        reason = _never(module, name)
        if reason:
            raise ForbiddenGlobal(module, name, reason)
        if (module, name) in self.names:
            return
        if self.predicate is not None and self.predicate(module, name):
            return
        raise ForbiddenGlobal(module, name)


_policy_cache: dict[Any, _Policy] = {None: _Policy(None)}


def _policy(allow: AllowSpec) -> _Policy:
    if allow is None:
        pol = _policy_cache.get(None)
        if pol is None:
            pol = _policy_cache[None] = _Policy(None)
        return pol
    return _Policy(allow)


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


class _RestrictedUnpickler(pickle.Unpickler):
    """The C unpickler, with every global checked in ``find_class``.

    The first ``find_class`` call also scans the whole pickle
    (:func:`_validate`) before any global is handed out: what the C
    unpickler cannot be asked (is a BUILD aimed at a global? do frames end
    on opcode boundaries?) is read from the bytes.  A pickle without
    globals builds only plain containers and scalars, so it never pays
    for the scan.
    """

    #: the pickle's bytes (or None), and a function that scans them when
    #: they come from a stream; set per load
    _data: Any = None
    _rescan: Callable[[], _pickle_scan.Scan] | None = None
    _validated = False

    def __init__(self, file: IO[bytes], policy: _Policy, buffers: Iterable[Any] | None = None) -> None:
        super().__init__(file, buffers=buffers)
        self._policy = policy

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (protocols 0-2) are mapped first, so the policy
        # judges exactly the object that will be returned; we resolve it
        # ourselves rather than trusting a second lookup to agree.
        module, name = _py3_name(module, name)
        self._policy.check(module, name)
        if not self._validated:
            self._validate()
        obj = _resolve(module, name)
        if isinstance(obj, types.ModuleType):
            raise ForbiddenGlobal(module, name, "resolves to a module")
        return obj

    def _validate(self) -> None:
        self._validated = True
        scan = self._rescan() if self._rescan is not None else _scan_or_refuse(self._data)
        _check_mutated_calls(scan, self._policy)

    def persistent_load(self, pid: Any) -> Any:
        raise ForbiddenOpcode("persistent IDs are refused by the restricted loader")


def _scan_or_refuse(data: Any, start: int = 0, more: Callable[[], bytes] | None = None) -> _pickle_scan.Scan:
    """Scan one pickle; a refusal becomes :class:`ForbiddenOpcode` (a
    malformed pickle raises the scanner's ``UnpicklingError``)."""
    if not isinstance(data, (bytes, bytearray)):
        data = memoryview(data).cast("B")
    try:
        return _backend.scan_pickle(data, start, more)
    except _pickle_scan.Refused as exc:
        raise ForbiddenOpcode(str(exc)) from None


def _mutated_call_problems(scan: _pickle_scan.Scan, policy: _Policy) -> list[str]:
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


def _check_mutated_calls(scan: _pickle_scan.Scan, policy: _Policy) -> None:
    problems = _mutated_call_problems(scan, policy)
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


class _DefaultUnpickler(_RestrictedUnpickler):
    """The default policy as a class attribute: no Python ``__init__`` to run
    per load, which matters for many small values (a shelf's gets)."""

    __init__ = pickle.Unpickler.__init__  # type: ignore[assignment]
    _policy = _policy_cache[None]


#: Default cap on the size of one pickle accepted by the safe loaders.
DEFAULT_MAX_BYTES = 1 << 30


def _extension_registry_in_use() -> bool:
    # EXT opcodes fetch from copyreg's registry; a cache hit skips
    # find_class.  With both empty (the default) every EXT opcode fails.
    return bool(copyreg._inverted_registry) or bool(copyreg._extension_cache)  # type: ignore[attr-defined]


#: What the C unpickler raises on malformed input, besides UnpicklingError.
_MALFORMED = (
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


def _as_pickle_error(exc: BaseException, offset: int, index: int) -> pickle.UnpicklingError:
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


def _max_depth(data: bytes | memoryview, limit: int) -> int:
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
    stack: list[list] = []
    marks: list[int] = []
    memo: dict[Any, list] = {}
    best = 0

    def contain(cell: list, items: list[list]) -> None:
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
                    cell: list = [0, []]
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

    Raises
    ------
    ForbiddenGlobal
        The pickle names a global outside the policy; raised by
        ``find_class``, before the global is called.
    ForbiddenOpcode, LimitExceeded
        EXT opcodes while an extension registry is in use, persistent IDs,
        an input over ``max_bytes`` or nesting over ``max_depth``.

    Examples
    --------
    >>> import pickle, datetime
    >>> safe_loads(pickle.dumps({"when": datetime.date(2024, 1, 2), "n": [1, 2]}))
    {'when': datetime.date(2024, 1, 2), 'n': [1, 2]}
    >>> class Evil:
    ...     def __reduce__(self):
    ...         import os
    ...         return (os.system, ("echo pwned",))
    >>> safe_loads(pickle.dumps(Evil()))
    Traceback (most recent call last):
    ...
    binrec.pickling.ForbiddenGlobal: forbidden global posix.system: module posix is never allowed
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
        unpickler: _RestrictedUnpickler = _DefaultUnpickler(stream)
    else:
        unpickler = _RestrictedUnpickler(stream, _policy(allow), buffers=buffers)
    unpickler._data = data
    try:
        if _extension_registry_in_use():
            # an EXT cache hit skips find_class: scan before anything runs
            unpickler._validate()
        return unpickler.load()
    except PickleSecurityError:
        raise
    except _MALFORMED as exc:
        raise _as_pickle_error(exc, 0, 0) from exc


def safe_load(
    file: BinaryIO | str | os.PathLike,
    *,
    allow: AllowSpec = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_depth: int | None = None,
) -> Any:
    """:func:`safe_loads` on the next pickle of a binary file or a path.

    The whole file is read (at most ``max_bytes + 1`` bytes) before
    unpickling, so the size cap holds for streams too.
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as fh:
            return safe_load(fh, allow=allow, max_bytes=max_bytes, max_depth=max_depth)
    if allow is ALL:
        return pickle.load(file)
    limit = -1 if max_bytes is None else max_bytes + 1
    data = file.read(limit)
    return safe_loads(data, allow=allow, max_bytes=max_bytes, max_depth=max_depth)


# -- streams of objects ------------------------------------------------------------


def _open_for(file: BinaryIO | str | os.PathLike, mode: str) -> tuple[BinaryIO, bool]:
    if isinstance(file, (str, os.PathLike)):
        return open(file, mode), True
    return file, False


def dump_many(
    objects: Iterable[Any], file: BinaryIO | str | os.PathLike, *, protocol: int | None = None, append: bool = False
) -> int:
    """Pickle each object, one after another, into a file or stream.

    Parameters
    ----------
    objects : iterable
    file : binary file object or path
        A path is created (or appended to with ``append=True``).
    protocol : int, optional
        Default :data:`pickle.HIGHEST_PROTOCOL`.

    Returns
    -------
    int
        How many objects were written.

    Examples
    --------
    >>> buf = io.BytesIO()
    >>> dump_many([{"id": 1}, {"id": 2}], buf)
    2
    >>> _ = buf.seek(0)
    >>> list(load_many(buf))
    [{'id': 1}, {'id': 2}]
    """
    protocol = pickle.HIGHEST_PROTOCOL if protocol is None else protocol
    fh, close = _open_for(file, "ab" if append else "wb")
    try:
        pickler = pickle.Pickler(fh, protocol=protocol)
        n = 0
        for obj in objects:
            pickler.dump(obj)
            pickler.clear_memo()  # each object stands alone, loadable by itself
            n += 1
        fh.flush()
        return n
    finally:
        if close:
            fh.close()


class _CountingReader(io.RawIOBase):
    """Wraps a binary stream and counts the bytes handed out, so a failure
    can be reported at its byte offset even on a pipe."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.position = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def readinto(self, b) -> int:  # type: ignore[override]
        reader = getattr(self._raw, "readinto", None)
        if reader is not None:
            n = reader(b) or 0
        else:
            chunk = self._raw.read(len(b))
            n = len(chunk)
            b[:n] = chunk
        self.position += n
        return n


def load_many(
    file: BinaryIO | str | os.PathLike, *, allow: AllowSpec = ALL, max_bytes: int | None = None
) -> Iterator[Any]:
    """Yield the objects of a stream written by :func:`dump_many` (or by
    repeated :func:`pickle.dump`), lazily, stopping at a clean end of file.

    Parameters
    ----------
    file : binary file object or path
    allow : optional
        Default :data:`ALL` (plain pickle: for your own files).  Pass ``None``
        for :data:`DEFAULT_ALLOW`, or an allow spec as in :func:`safe_loads`,
        to load untrusted streams with the restricted loader.

    Raises
    ------
    TruncatedError
        The last object is cut short or corrupt; every complete object
        before it has been yielded.  ``offset`` names where it starts.
    """
    fh, close = _open_for(file, "rb")
    try:
        yield from _load_stream(fh, None if allow is ALL else _policy(allow), max_bytes)
    finally:
        if close:
            fh.close()


def _seekable(fh: Any) -> bool:
    try:
        return bool(fh.seekable()) and hasattr(fh, "tell")
    except (AttributeError, ValueError, OSError):
        return False


class _RetainingReader(_CountingReader):
    """A pipe made seekable back to the start of the current object: the
    restricted loader rescans an object's bytes (see
    :meth:`_RestrictedUnpickler._validate`) after the unpickler began
    reading it."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        self._kept = bytearray()  # bytes from self._base on
        self._base = 0

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.position + offset if whence == io.SEEK_CUR else -1
        if not self._base <= target <= self._base + len(self._kept):
            raise OSError(
                f"cannot seek to byte {target} of a pipe (kept: {self._base}..{self._base + len(self._kept)})"
            )
        self.position = target
        return target

    def forget_before(self, offset: int) -> None:
        del self._kept[: max(0, offset - self._base)]
        self._base = max(self._base, offset)

    def readinto(self, b) -> int:  # type: ignore[override]
        end = self._base + len(self._kept)
        if self.position == end:  # nothing kept ahead: read the pipe
            n = super().readinto(b)
            self._kept += memoryview(b)[:n]
            return n
        i = self.position - self._base
        n = min(len(b), len(self._kept) - i)
        b[:n] = self._kept[i : i + n]
        self.position += n
        return n


def _stream_rescan(reader: Any, start: int) -> Callable[[], _pickle_scan.Scan]:
    """A function that scans the pickle starting at ``start`` of a seekable
    ``reader`` and puts the reader back where it was."""

    def rescan() -> _pickle_scan.Scan:
        here = reader.tell()
        reader.seek(start)
        # What the unpickler has read so far plus a little, then doubling
        # reads: a small pickle in a long stream costs a small read, not
        # 64 KiB (the scan's result does not depend on how it is fed).
        size = max(here - start, 0) + 4096

        def more() -> bytes:
            nonlocal size
            chunk = reader.read(size)
            size = min(2 * size, 1 << 22)
            return chunk

        try:
            return _scan_or_refuse(b"", 0, more)
        finally:
            reader.seek(here)

    return rescan


def _more_to_read(reader: Any) -> bool:
    here = reader.tell()
    probe = reader.read(1)
    reader.seek(here)
    return bool(probe)


def _load_stream(fh: BinaryIO, policy: _Policy | None, max_bytes: int | None) -> Iterator[Any]:
    retaining = None
    if _seekable(fh):
        reader: Any = fh
        base = fh.tell()
    else:  # pipes, sockets: count what we hand to the unpickler
        raw = _CountingReader(fh) if policy is None else _RetainingReader(fh)
        retaining = raw if isinstance(raw, _RetainingReader) else None
        reader = io.BufferedReader(raw, buffer_size=1 << 16)
        base = 0
    index = 0
    start = reader.tell() - base
    while True:
        # A fresh unpickler per object: each pickle's memo starts at 0 (and
        # assigning ``Unpickler.memo = {}`` crashes CPython 3.11).
        try:
            if policy is None:
                obj = pickle.load(reader)
            else:
                if retaining is not None:
                    retaining.forget_before(start + base)
                unpickler = _RestrictedUnpickler(reader, policy)
                unpickler._rescan = _stream_rescan(reader, start + base)
                if _extension_registry_in_use() and _more_to_read(reader):
                    unpickler._validate()  # an EXT cache hit skips find_class
                obj = unpickler.load()
        except PickleSecurityError:
            raise
        except EOFError as exc:
            if reader.tell() - base == start:
                return  # nothing left: a clean end of the stream
            raise TruncatedError(start, index, exc) from exc
        except _MALFORMED as exc:
            raise _as_pickle_error(exc, start, index) from exc
        end = reader.tell() - base
        if max_bytes is not None and end - start > max_bytes:
            raise LimitExceeded(f"object #{index} at byte offset {start} is larger than max_bytes={max_bytes}")
        index += 1
        start = end
        yield obj


# -- versioned files -----------------------------------------------------------------

_VERSION_MAGIC = b"BRVER\x00\x01\n"
_VERSION_HEADER = struct.Struct("<8sQ")


def save_versioned(path: str | os.PathLike, data: Any, version: int, *, protocol: int | None = None) -> None:
    """Pickle ``data`` into ``path`` with a data version, atomically.

    Layout: 8-byte magic, little-endian u64 version, then one pickle.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "profile.pkl")
    >>> save_versioned(p, {"name": "Ann"}, version=1)
    >>> load_versioned(p, current=2, migrations={1: lambda d: {**d, "age": None}})
    {'name': 'Ann', 'age': None}
    """
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise VersionError(f"version must be a non-negative int, got {version!r}")
    payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL if protocol is None else protocol)
    with atomic_writer(path) as fh:
        fh.write(_VERSION_HEADER.pack(_VERSION_MAGIC, version))
        fh.write(payload)


def read_version(path: str | os.PathLike) -> int:
    """The data version stored in a file written by :func:`save_versioned`."""
    with open(path, "rb") as fh:
        head = fh.read(_VERSION_HEADER.size)
    return _parse_version_header(head, path)


def _parse_version_header(head: bytes, path: Any) -> int:
    if len(head) < _VERSION_HEADER.size:
        raise VersionError(f"{path}: too short to be a versioned file ({len(head)} bytes)")
    magic, version = _VERSION_HEADER.unpack(head[: _VERSION_HEADER.size])
    if magic != _VERSION_MAGIC:
        raise VersionError(f"{path}: not a binrec versioned file (bad magic {magic!r})")
    return version


def migrate(
    data: Any, version: int, current: int, migrations: Mapping[int, Callable[[Any], Any]], *, where: str = "data"
) -> Any:
    """Apply ``migrations[version]``, ``migrations[version + 1]``, ... until
    ``data`` is at version ``current``."""
    if version > current:
        raise VersionError(
            f"{where} has version {version}, newer than the current version {current}: upgrade the program"
        )
    missing = [v for v in range(version, current) if v not in migrations]
    if missing:
        raise VersionError(
            f"{where} has version {version}; no migration from version {missing[0]} to {missing[0] + 1} (current is {current})"
        )
    for v in range(version, current):
        data = migrations[v](data)
    return data


def load_versioned(
    path: str | os.PathLike,
    *,
    current: int,
    migrations: Mapping[int, Callable[[Any], Any]] | None = None,
    allow: AllowSpec = ALL,
) -> Any:
    """Load a file written by :func:`save_versioned`, migrated to ``current``.

    ``migrations`` maps version n to a function turning version-n data into
    version-n+1 data.  A file newer than ``current``, or a gap in the chain,
    raises :class:`VersionError` before the payload is unpickled.
    ``allow`` as in :func:`load_many` (default: plain pickle).
    """
    migrations = migrations or {}
    raw = Path(path).read_bytes()
    version = _parse_version_header(raw, path)
    migrate(None, version, current, {v: (lambda d: d) for v in migrations}, where=str(path))  # validate first
    payload = memoryview(raw)[_VERSION_HEADER.size :]
    data = pickle.loads(payload) if allow is ALL else safe_loads(payload, allow=allow)
    return migrate(data, version, current, migrations, where=str(path))


# -- inspection without execution ------------------------------------------------------


@dataclass
class PickleReport:
    """What :func:`inspect` found.

    ``status`` is one of ``"safe"`` (every pickle is well formed and uses
    only allowed globals and opcodes), ``"unsafe"`` (something the
    restricted loader refuses, even if the bytes are malformed further on:
    :func:`pickle.loads` runs every opcode before the first error),
    ``"unreadable"`` (not a well-formed pickle, nothing refused before the
    fault) and ``"empty"`` (no bytes at all).
    """

    size: int
    protocol: int
    pickles: int
    globals: list[tuple[str, str]] = field(default_factory=list)
    calls: int = 0
    opcodes: dict[str, int] = field(default_factory=dict)
    offending: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> str:
        if self.offending:
            return "unsafe"
        if self.error is not None:
            return "unreadable"
        if self.size == 0:
            return "empty"
        return "safe"

    @property
    def safe(self) -> bool:
        return self.status == "safe"

    @property
    def verdict(self) -> str:
        status = self.status
        if status == "unsafe":
            tail = f" (then unreadable: {self.error})" if self.error is not None else ""
            return "unsafe: " + ", ".join(self.offending) + tail
        if status == "unreadable":
            return f"unreadable: {self.error}"
        if status == "empty":
            return "empty: no pickle in 0 bytes"
        return "safe"

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "protocol": self.protocol,
            "pickles": self.pickles,
            "globals": [f"{m}.{n}" for m, n in self.globals],
            "calls": self.calls,
            "opcodes": self.opcodes,
            "safe": self.safe,
            "status": self.status,
            "verdict": self.verdict,
            "offending": self.offending,
            "error": self.error,
        }


def inspect(data_or_path: bytes | bytearray | memoryview | str | os.PathLike) -> PickleReport:
    """Report what a pickle (or a stream of them) would import and call,
    without executing it.

    The opcodes are read as the unpickler reads them (a FRAME whose end
    falls inside an opcode, which would make a stream unpickler run other
    opcodes than a linear reader sees, is reported as unsafe and ends the
    reading).  Only modules of allowed globals are imported, to tell an
    Enum (whose members BUILD must not modify) from other classes.

    Examples
    --------
    >>> import pickle, collections
    >>> r = inspect(pickle.dumps(collections.OrderedDict(a=1)))
    >>> r.globals, r.verdict
    ([('collections', 'OrderedDict')], 'safe')
    >>> inspect(b"").status
    'empty'
    """
    if isinstance(data_or_path, (str, os.PathLike)):
        data = Path(data_or_path).read_bytes()
    else:
        data = bytes(data_or_path)
    report = PickleReport(size=len(data), protocol=0, pickles=0)
    seen: set[tuple[str, str]] = set()
    counts = [0] * 256
    pol = _policy(None)
    pos = 0
    while pos < len(data):
        report.pickles += 1
        try:
            scan = _backend.scan_pickle(data, pos, collect=True)
        except (_pickle_scan.Malformed, _pickle_scan.FrameMismatch) as exc:
            _add_scan(report, exc.partial, seen, counts, pol)  # type: ignore[attr-defined]
            if isinstance(exc, _pickle_scan.FrameMismatch):
                report.offending.append(f"frame trick: {exc}")
            else:
                report.error = f"{type(exc).__name__}: {exc}"
            break
        _add_scan(report, scan, seen, counts, pol)
        pos = scan.end
    report.opcodes = {_pickle_scan.NAMES[code]: k for code, k in enumerate(counts) if k}
    report.calls = sum(counts[code] for code in _pickle_scan.CALL_OPS)
    bad_globals = []
    for module, name in report.globals:
        try:
            pol.check(module, name)
        except ForbiddenGlobal:
            bad_globals.append(f"{module}.{name}")
    report.offending[:0] = bad_globals
    return report


def _add_scan(
    report: PickleReport, scan: _pickle_scan.Scan, seen: set[tuple[str, str]], counts: list[int], pol: _Policy
) -> None:
    report.protocol = max(report.protocol, scan.protocol)
    for module, name in scan.globals:
        key = (module or "<computed>", name or "<computed>")
        if key not in seen:
            seen.add(key)
            report.globals.append(key)
    for code, k in enumerate(scan.counts):
        counts[code] += k
    report.offending.extend(str(r) for r in scan.refusals)
    try:
        report.offending.extend(_mutated_call_problems(scan, pol))
    except ForbiddenGlobal:
        pass  # the global itself is reported as offending
