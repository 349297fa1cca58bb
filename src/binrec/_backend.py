"""Choose the kernel backend once, at import.

The compiled ``binrec._codec`` is used when it imports; otherwise the numpy
kernels in ``_kernels_py``.  ``BINREC_PUREPYTHON=1`` (set before import)
forces the Python kernels.  A build that silently fell back to Python is the
trap msgpack-python users fell into, so a missing extension warns once
(unless Python was asked for) and ``binrec.backend`` always says which
backend runs.

The pickle opcode scan follows the same switch: :func:`scan_pickle` runs
``_pickle_scan.scan`` (the specification) under the Python kernels and its
compiled twin ``_codec.scan_pickle`` under the compiled ones.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from . import _kernels_py, _pickle_scan

__all__ = ["kernels", "backend", "python_kernels", "compiled_kernels", "scan_pickle", "use"]

python_kernels: ModuleType = _kernels_py
compiled_kernels: ModuleType | None

try:
    from . import _codec as compiled_kernels  # type: ignore[attr-defined,no-redef]
except ImportError:  # no compiled wheel for this platform, or a pure install
    compiled_kernels = None

_forced_python = os.environ.get("BINREC_PUREPYTHON", "").strip() not in ("", "0")

if compiled_kernels is not None and not _forced_python:
    kernels: ModuleType = compiled_kernels
else:
    kernels = python_kernels
    if compiled_kernels is None and not _forced_python:
        warnings.warn(
            "binrec: the compiled extension binrec._codec is not available "
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
    if kernels is python_kernels:
        return _pickle_scan.scan(data, start, more, collect=collect)
    return kernels.scan_pickle(data, start, more, collect=collect)


@contextmanager
def use(which: str | ModuleType) -> Iterator[ModuleType]:
    """Run the codec (and the pickle scan) on one backend inside a ``with``.

    ``which`` is ``"python"``, ``"compiled"`` or a kernels module.  This is
    the one way the test fixture, the differential tests, the fuzzer and the
    benchmarks switch backends; it restores the previous kernels on exit.
    It is not thread-safe: it swaps a module global.
    """
    global kernels
    if which == "python":
        chosen: ModuleType | None = python_kernels
    elif which == "compiled":
        chosen = compiled_kernels
        if chosen is None:
            raise RuntimeError("the compiled backend binrec._codec is not available")
    elif isinstance(which, ModuleType):
        chosen = which
    else:
        raise ValueError(f"unknown backend {which!r}: expected 'python', 'compiled' or a kernels module")
    saved = kernels
    kernels = chosen
    try:
        yield chosen
    finally:
        kernels = saved
