"""Backend selection: what binrec.backend reports and how it is chosen."""

from __future__ import annotations

import os
import subprocess
import sys

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
