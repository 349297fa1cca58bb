"""Choose the kernel backend once, at import.

The compiled ``binrec._kernels_c`` is used when it imports; otherwise the numpy
kernels in ``_kernels_py``.  Two switches, set before import, mean the same
here as at build time (``setup.py``):

* ``BINREC_PUREPYTHON=1`` forces the Python kernels (the extension, if
  installed, stays reachable through :func:`use` for differential tests);
* ``BINREC_REQUIRE_EXTENSION=1`` makes a missing extension an ImportError.

``BINREC_PUREPYTHON`` wins when both are set.  The 0.1 spellings
``BINREC_NO_EXTENSIONS`` (= ``BINREC_PUREPYTHON``) and
``BINREC_REQUIRE_EXTENSIONS`` / ``BINREC_REQUIRE_COMPILED``
(= ``BINREC_REQUIRE_EXTENSION``) are accepted for the 0.2 series, here and
in setup.py, without a warning: a warning at import would break ``-W error``.

A build that silently fell back to Python is the trap msgpack-python users
fell into, so a missing extension warns once (unless Python was asked for)
and ``binrec.backend`` always says which backend runs.

Both kernels modules satisfy :class:`binrec._kernels.Kernels`.  The pickle
opcode scan is part of that contract, so it follows the same switch:
:func:`scan_pickle` runs ``_pickle_scan.scan`` (the specification) under the
Python kernels and its compiled twin under the compiled ones.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, cast

from . import _kernels_py, _pickle_scan
from ._kernels import Kernels

__all__ = [
    "kernels",
    "backend",
    "python_kernels",
    "compiled_kernels",
    "scan_pickle",
    "use",
    "PURE_NAMES",
    "REQUIRE_NAMES",
    "switch",
]

# the first name is the current one, the others its deprecated spellings
# (the same lists as setup.py's: a switch means the same at build and import)
PURE_NAMES = ("BINREC_PUREPYTHON", "BINREC_NO_EXTENSIONS")
REQUIRE_NAMES = ("BINREC_REQUIRE_EXTENSION", "BINREC_REQUIRE_EXTENSIONS", "BINREC_REQUIRE_COMPILED")


def switch(names: tuple[str, ...]) -> str | None:
    """The first of ``names`` set in the environment to something other than
    empty or ``0``, else None."""
    for name in names:
        if os.environ.get(name, "").strip() not in ("", "0"):
            return name
    return None


python_kernels: Kernels = _kernels_py  # mypy checks the module against the Protocol
compiled_kernels: Kernels | None

try:
    from . import _kernels_c  # typed by _kernels_c.pyi, checked here against Kernels
except ImportError as exc:  # no compiled wheel for this platform, or a pure install
    compiled_kernels = None
    _import_error: ImportError | None = exc
else:
    compiled_kernels = _kernels_c
    _import_error = None

_forced_python = switch(PURE_NAMES) is not None
_required_by = switch(REQUIRE_NAMES)

if compiled_kernels is None and _required_by is not None and not _forced_python:
    import importlib.util

    # `from . import _kernels_c` of a missing module reports a "partially
    # initialized module ... circular import": say what really happened
    _why = (
        "it is not installed: this copy of binrec was built without it"
        if importlib.util.find_spec("binrec._kernels_c") is None
        else f"it could not be imported: {_import_error}"
    )
    raise ImportError(
        f"binrec: {_required_by}=1 requires the compiled extension binrec._kernels_c, but {_why}; "
        "reinstall binrec with a C compiler and Cython, or unset the variable to run on the pure-Python backend"
    ) from _import_error

if compiled_kernels is not None and not _forced_python:
    kernels: Kernels = compiled_kernels
else:
    kernels = python_kernels
    if compiled_kernels is None and not _forced_python:
        warnings.warn(
            "binrec: the compiled extension binrec._kernels_c is not available "
            "(no wheel for this platform, or installed without a compiler); "
            "using the slower pure-Python backend. "
            "Set BINREC_PUREPYTHON=1 to silence this warning.",
            RuntimeWarning,
            stacklevel=2,
        )

backend: str = kernels.NAME


def scan_pickle(
    data: Any, start: int = 0, more: Callable[[], bytes] | None = None, *, collect: bool = False
) -> _pickle_scan.Scan:
    """:func:`binrec._pickle_scan.scan` on the active backend (looked up at
    each call, so switching ``kernels`` switches the scan too)."""
    return kernels.scan_pickle(data, start, more, collect=collect)


@contextmanager
def use(which: str | ModuleType | Kernels) -> Iterator[Kernels]:
    """Run the codec (and the pickle scan) on one backend inside a ``with``.

    ``which`` is ``"python"``, ``"compiled"`` or a kernels module.  This is
    the one way the test fixture, the differential tests, the fuzzer and the
    benchmarks switch backends; it restores the previous kernels on exit.
    It is not thread-safe: it swaps a module global.
    """
    global kernels
    if which == "python":
        chosen: Kernels = python_kernels
    elif which == "compiled":
        if compiled_kernels is None:
            raise RuntimeError("the compiled backend binrec._kernels_c is not available")
        chosen = compiled_kernels
    elif isinstance(which, ModuleType):
        chosen = cast(Kernels, which)
    else:
        raise ValueError(f"unknown backend {which!r}: expected 'python', 'compiled' or a kernels module")
    saved = kernels
    kernels = chosen
    try:
        yield chosen
    finally:
        kernels = saved
