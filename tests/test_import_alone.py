"""Every module imports alone, in a fresh interpreter, with warnings as errors.

An import cycle, a module that relies on another having been imported first,
or an import-time warning (a deprecated API, an unclosed resource) shows up
here as a failing module name, not as a puzzle in some later test.  The
model is aio-libs/multidict's ``tests/test_circular_imports.py``.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

import pytest

import binrec
from binrec import _backend


def _module_names() -> list[str]:
    names = ["binrec"]
    for info in pkgutil.walk_packages(binrec.__path__, prefix="binrec."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def test_the_walk_finds_the_package_modules():
    # the oracle: modules the package is documented to have (STYLE.md's map);
    # an empty or broken walk would make the test below vacuous
    for name in ("binrec.records", "binrec.files", "binrec.pickling", "binrec.signing", "binrec.shelf", "binrec.cli"):
        assert name in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone_with_warnings_as_errors(module):
    env = dict(os.environ)
    if _backend.compiled_kernels is None:
        # a pure install warns once at import by design (README); that one
        # warning is not what this test is about
        env["BINREC_PUREPYTHON"] = "1"
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, f"`import {module}` alone failed:\n{proc.stderr}"
