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
    """Fails when BINREC_REQUIRE_EXTENSION=1 (or the deprecated
    BINREC_REQUIRE_COMPILED=1: wheels, CI) and the extension did not load: a
    build must never ship silently on the slow path."""
    required = any(
        os.environ.get(n, "") not in ("", "0") for n in ("BINREC_REQUIRE_EXTENSION", "BINREC_REQUIRE_COMPILED")
    )
    forced_python = os.environ.get("BINREC_PUREPYTHON", "") not in ("", "0")
    if required and not forced_python:
        assert _backend.compiled_kernels is not None, "binrec._kernels_c did not import"
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


# --- the two switches, BINREC_PUREPYTHON and BINREC_REQUIRE_EXTENSION, and
# their deprecated spellings (BINREC_NO_EXTENSIONS, BINREC_REQUIRE_EXTENSIONS
# at build time; BINREC_REQUIRE_COMPILED at import time)

# blocks the extension the way a pure install lacks it: the import system
# raises ImportError for a None entry in sys.modules
_BLOCKED = "import sys; sys.modules['binrec._kernels_c'] = None; "
_SWITCHES = (
    "BINREC_PUREPYTHON",
    "BINREC_REQUIRE_EXTENSION",
    "BINREC_REQUIRE_COMPILED",
    "BINREC_NO_EXTENSIONS",
    "BINREC_REQUIRE_EXTENSIONS",
)


def _run_clean(code: str, **env: str) -> subprocess.CompletedProcess:
    """_run with none of the switches inherited from the test's environment."""
    full_env = {k: v for k, v in os.environ.items() if k not in _SWITCHES}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


@pytest.mark.parametrize("name", ["BINREC_PUREPYTHON", "BINREC_NO_EXTENSIONS"])
def test_purepython_backend_without_any_switch_inherited(name):
    # oracle: the backend name the child prints, and no warning (asked for);
    # the 0.1 spelling works at import as it does at build time
    res = _run_clean("import binrec; print(binrec.backend)", **{name: "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "python"
    assert "Warning" not in res.stderr


@pytest.mark.parametrize("name", ["BINREC_REQUIRE_EXTENSION", "BINREC_REQUIRE_EXTENSIONS", "BINREC_REQUIRE_COMPILED"])
def test_require_extension_raises_importerror_naming_the_variable(name):
    res = _run_clean(_BLOCKED + "import binrec", **{name: "1"})
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: binrec: ") and f"{name}=1" in last and "binrec._kernels_c" in last, res.stderr
    # a pure install's `from . import _kernels_c` speaks of a circular import: the message says what happened
    assert "it is not installed" in last and "circular" not in last, last


def test_without_require_a_missing_extension_falls_back_with_a_warning():
    # the control for the test above: the same blocked import succeeds
    res = _run_clean(_BLOCKED + "import binrec; print(binrec.backend)", BINREC_REQUIRE_EXTENSION="0")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "python"
    assert "RuntimeWarning" in res.stderr


def test_purepython_wins_over_require_extension():
    res = _run_clean(
        _BLOCKED + "import binrec; print(binrec.backend)", BINREC_PUREPYTHON="1", BINREC_REQUIRE_EXTENSION="1"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "python"


@pytest.mark.skipif(_backend.compiled_kernels is None, reason="needs the compiled extension")
@pytest.mark.parametrize("name", ["BINREC_REQUIRE_EXTENSION", "BINREC_REQUIRE_COMPILED"])
def test_require_extension_with_the_extension_present_loads_it(name):
    res = _run_clean("import binrec; print(binrec.backend)", **{name: "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "compiled"


SETUP_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")


def _setup_module():
    """setup.py imported (not run): its setup() call is guarded by __main__."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("binrec_setup_under_test", SETUP_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_needs_setup_py = pytest.mark.skipif(not os.path.exists(SETUP_PY), reason="setup.py is only in a source checkout")


@_needs_setup_py
@pytest.mark.parametrize(
    ("environ", "pure", "require"),
    [
        ({}, None, None),
        ({"BINREC_PUREPYTHON": "1"}, "BINREC_PUREPYTHON", None),
        ({"BINREC_NO_EXTENSIONS": "1"}, "BINREC_NO_EXTENSIONS", None),  # deprecated spelling
        ({"BINREC_PUREPYTHON": "0", "BINREC_NO_EXTENSIONS": ""}, None, None),
        ({"BINREC_REQUIRE_EXTENSION": "1"}, None, "BINREC_REQUIRE_EXTENSION"),
        ({"BINREC_REQUIRE_EXTENSIONS": "1"}, None, "BINREC_REQUIRE_EXTENSIONS"),  # deprecated spelling
        ({"BINREC_REQUIRE_COMPILED": "1"}, None, "BINREC_REQUIRE_COMPILED"),  # deprecated spelling
        ({"CIBUILDWHEEL": "1"}, None, "CIBUILDWHEEL"),
        ({"BINREC_REQUIRE_EXTENSION": " 0 "}, None, None),
    ],
)
def test_setup_py_reads_the_build_switches(environ, pure, require):
    setup = _setup_module()
    assert setup.switch(environ, setup.PURE_NAMES) == pure
    assert setup.switch(environ, setup.REQUIRE_NAMES) == require


@_needs_setup_py
def test_the_switches_have_the_same_names_at_build_and_at_import():
    setup = _setup_module()
    assert set(setup.PURE_NAMES) == set(_backend.PURE_NAMES)
    assert set(setup.REQUIRE_NAMES) - {"CIBUILDWHEEL"} == set(_backend.REQUIRE_NAMES)
    assert setup.PURE_NAMES[0] == _backend.PURE_NAMES[0] and setup.REQUIRE_NAMES[0] == _backend.REQUIRE_NAMES[0]


@_needs_setup_py
def test_setup_py_builds_no_extension_under_either_pure_spelling():
    # oracle: the ext_modules list setup.py would pass to setup()
    for name in ("BINREC_PUREPYTHON", "BINREC_NO_EXTENSIONS"):
        env = {k: v for k, v in os.environ.items() if k not in _SWITCHES}
        env[name] = "1"
        code = f"import importlib.util as u; s = u.spec_from_file_location('s', {SETUP_PY!r}); m = u.module_from_spec(s); s.loader.exec_module(m); print(len(m.extensions()))"
        res = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=os.path.dirname(SETUP_PY),
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == "0"
        assert f"binrec: {name} is set" in res.stderr


# -- the kernel contract (binrec._kernels.Kernels) -------------------------------

_needs_compiled = pytest.mark.skipif(_backend.compiled_kernels is None, reason="needs the compiled extension")


def _contract_members() -> tuple[list[str], list[str]]:
    """(attribute names, method names) that binrec._kernels.Kernels states."""
    from binrec._kernels import Kernels

    attributes = [name for name in Kernels.__annotations__ if not name.startswith("_")]
    methods = [name for name, value in vars(Kernels).items() if callable(value) and not name.startswith("_")]
    return attributes, methods


def _kernel_modules() -> list:
    modules = [_backend.python_kernels]
    if _backend.compiled_kernels is not None:
        modules.append(_backend.compiled_kernels)
    return modules


@pytest.mark.parametrize("module", _kernel_modules(), ids=lambda m: m.NAME)
def test_each_kernels_module_has_every_member_of_the_contract(module):
    # oracle: the Protocol's own members, read from the class
    attributes, methods = _contract_members()
    assert {"NAME", "FUSED_PACK"} <= set(attributes)
    assert {"unpack_rows", "unpack_columns", "pack_rows", "pack_bytes", "pack_columns", "scan_pickle"} <= set(methods)
    missing = [name for name in attributes + methods if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("module", _kernel_modules(), ids=lambda m: m.NAME)
def test_each_kernel_takes_the_parameters_the_contract_names(module):
    # oracle: inspect.signature of the Protocol method (less self)
    import inspect

    from binrec._kernels import Kernels

    _, methods = _contract_members()
    for name in methods:
        stated = list(inspect.signature(getattr(Kernels, name)).parameters.values())[1:]
        actual = list(inspect.signature(getattr(module, name)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in actual] == [(p.name, p.kind, p.default) for p in stated], name


def test_the_python_backend_states_it_has_no_fused_pack_and_answers_none():
    import numpy as np

    from binrec._kernels import PackKind

    k = _backend.python_kernels
    assert k.FUSED_PACK is False
    layout = binrec.Struct("<q").layout
    assert k.pack_columns(layout, [(PackKind.I64, np.arange(3), -8, 8, 0, 0)]) is None


@_needs_compiled
def test_the_compiled_backend_fused_pack_equals_struct():
    # oracle: struct.pack row by row
    import struct

    import numpy as np

    from binrec._kernels import PackKind

    k = _backend.compiled_kernels
    assert k.FUSED_PACK is True
    layout = binrec.Struct(">hI").layout
    specs = [
        (PackKind.I64, np.array([-2, 7]), -(1 << 15), (1 << 15) - 1, 0, 0),
        (PackKind.U64, np.array([1, 2**32 - 1], dtype=np.uint64), 0, 0, 2**32 - 1, 0),
    ]
    assert k.pack_columns(layout, specs) == struct.pack(">hI", -2, 1) + struct.pack(">hI", 7, 2**32 - 1)


@_needs_compiled
def test_compiled_pack_kind_codes_agree_with_packkind():
    # oracle: binrec._kernels.PackKind, the one place the codes are written
    from binrec._kernels import PackKind

    assert _backend.compiled_kernels.PACK_KINDS == {kind.name: kind.value for kind in PackKind}


@_needs_compiled
def test_compiled_plan_op_codes_agree_with_plan_op():
    # oracle: binrec._plan.Op, which builds the plans the compiled loops run
    from binrec._plan import Op

    assert _backend.compiled_kernels.OPS == {op.name: op.value for op in Op}
