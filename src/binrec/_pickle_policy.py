"""The allowlist: which globals a restricted load admits.

:data:`DEFAULT_ALLOW` (plain data, ``datetime``, ``decimal``, numpy, ...),
:data:`NEVER_ALLOW` (modules that reach attributes, import or run code,
refused whatever a caller adds), the :data:`ALL` marker, and
:class:`Policy`, the compiled form of an ``allow=`` argument.  No
unpickling happens here: :mod:`binrec._pickle_restricted` enforces it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from ._pickle_errors import ForbiddenGlobal


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

    def __reduce__(self) -> str:
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
    t: type
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


#: ``f(module, qualname) -> bool``: admit a global on top of :data:`DEFAULT_ALLOW`.
Predicate = Callable[[str, str], bool]
#: One entry of an ``allow=`` list: ``"module.qualname"`` (``"module:Outer.Inner"``
#: for nested names), a ``(module, qualname)`` tuple, or the class or function itself.
AllowItem = str | tuple[str, str] | type | Callable[..., Any]
#: What ``allow=`` accepts: None (:data:`DEFAULT_ALLOW`), :data:`ALL` (no
#: checks), one name or class, an iterable of entries, or a :data:`Predicate`
#: (a lone function is taken as the predicate: put functions to admit in a list).
AllowSpec = None | _AllType | str | type | Iterable[AllowItem] | Predicate


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


# package-internal: used by _pickle_restricted, _pickle_stream, _pickle_inspect
class Policy:
    """An ``allow=`` argument (anything but :data:`ALL`) made ready to judge globals."""

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
        # what is left is an iterable of entries (policy_for keeps ALL out)
        for item in cast("Iterable[AllowItem]", allow):
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


# package-internal: built once, shared by every default-policy load
DEFAULT_POLICY = Policy(None)


# package-internal
def policy_for(allow: AllowSpec) -> Policy:
    """The :class:`Policy` of an ``allow=`` argument (not :data:`ALL`)."""
    return DEFAULT_POLICY if allow is None else Policy(allow)
