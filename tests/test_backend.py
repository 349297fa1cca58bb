"""Backend selection: what binrec.backend reports and how it is chosen."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import binrec
from binrec import _backend


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


def test_backend_names_the_active_kernels():
    assert binrec.backend in ("compiled", "python")
    assert binrec.backend == _backend.kernels.NAME


def test_purepython_env_forces_python_backend():
    res = _run("import binrec; print(binrec.backend)", BINREC_PUREPYTHON="1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "python"
    assert "RuntimeWarning" not in res.stderr  # asked for: no warning


def test_compiled_backend_is_active_when_required():
    """Fails when BINREC_REQUIRE_COMPILED=1 (wheels, CI) and the extension did
    not load: a build must never ship silently on the slow path."""
    required = os.environ.get("BINREC_REQUIRE_COMPILED", "") not in ("", "0")
    forced_python = os.environ.get("BINREC_PUREPYTHON", "") not in ("", "0")
    if required and not forced_python:
        assert _backend.compiled_kernels is not None, "binrec._codec did not import"
        assert binrec.backend == "compiled"
    else:
        assert binrec.backend == ("python" if forced_python or _backend.compiled_kernels is None else "compiled")


def test_use_switches_the_kernels_and_restores_them():
    # oracle: the module objects themselves
    before = _backend.kernels
    with _backend.use("python") as k:
        assert k is _backend.python_kernels and _backend.kernels is _backend.python_kernels
    assert _backend.kernels is before


def test_use_restores_the_kernels_after_an_error():
    before = _backend.kernels
    with pytest.raises(ZeroDivisionError), _backend.use("python"):
        raise ZeroDivisionError
    assert _backend.kernels is before


def test_use_refuses_an_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown backend"), _backend.use("fortran"):
        pass
