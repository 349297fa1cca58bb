"""CPython's own test_struct, run against binrec through ``struct_adapter``.

The oracle is CPython's test suite for the struct module: every test method
of its TestCase classes runs with the module's ``struct`` global replaced by
the adapter (struct's API over binrec), once per backend.  Copies come from
the running interpreter's ``test`` package and from the other CPython
installations found under pyenv (3.11 and later, binrec's supported range).
A copy that is absent is a skip with the reason, never a silent pass.

Tests that cannot apply to a library other than CPython's ``_struct`` are
listed in ``NOT_APPLICABLE`` with a one-line reason each; everything else
must pass.
"""

from __future__ import annotations

import builtins
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
import unittest
from pathlib import Path

import pytest
import struct_adapter

import binrec

pytestmark = pytest.mark.usefixtures("backend")

#: test name (``Class.method``, or ``Class.method@3.N`` for one version's
#: copy only) -> why it cannot apply to binrec.
NOT_APPLICABLE = {
    "StructTest.test__sizeof__": "C-level detail: the byte size of CPython's PyStructObject",
    "StructTest.test__struct_reference_cycle_cleaned_up": "_struct internals: gc of a fresh _struct module",
    "StructTest.test__struct_types_immutable": "C-level detail: CPython's static types refuse new attributes",
    "StructTest.test_struct_cleans_up_at_runtime_shutdown": "runs CPython's own struct in a child interpreter",
    "StructTest.test_boundary_error_message": "exact C wording: binrec's method is unpack(count=), not unpack_from",
    "StructTest.test_boundary_error_message_with_large_offset": "exact C wording of unpack_from's message",
    "StructTest.test_repr": "would test the adapter's repr; binrec.Struct's repr also shows the field names",
    "StructTest.test_new_features": "0s/0p formats are 0-byte records, refused on purpose (docs/records.md: Absurd formats fail)",
    "UnpackIteratorTest.test_construct": "the 0-byte format '>' is refused on purpose (docs/records.md: Absurd formats fail)",
    "StructTest.test_p_code@3.13": "its new 0p row is a 0-byte record, refused on purpose (docs/records.md: Absurd formats fail)",
    "StructTest.test_issue45034_signed@3.11": "3.11's C wording ('short format'); binrec words it as 3.12+ (README)",
    "StructTest.test_issue45034_unsigned@3.11": "3.11's C wording ('ushort format'); binrec words it as 3.12+ (README)",
}


def _minor(tag: str) -> str:
    return re.search(r"3\.\d+", tag).group(0)


def not_applicable(tag: str, name: str) -> str | None:
    """Why test ``name`` of the copy ``tag`` cannot apply (None: it must pass)."""
    return NOT_APPLICABLE.get(f"{name}@{_minor(tag)}") or NOT_APPLICABLE.get(name)


def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        try:
            root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            root = None
    root = root or os.path.expanduser("~/.pyenv")
    return Path(root) if os.path.isdir(root) else None


def _running_copy() -> Path | None:
    try:
        spec = importlib.util.find_spec("test.test_struct")
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin else None


def _other_copies(running: Path | None) -> dict[str, Path]:
    root = _pyenv_root()
    if root is None:
        return {}
    found = {}
    for path in sorted(glob.glob(str(root / "versions" / "*" / "lib" / "python3.*" / "test" / "test_struct.py"))):
        version = Path(path).parts[-5]
        m = re.fullmatch(r"3\.(\d+)\.\d+", version)
        if not m or int(m.group(1)) < 11:  # binrec supports 3.11 and later
            continue
        if running is not None and os.path.samefile(path, running):
            continue
        found[version] = Path(path)
    return found


RUNNING = _running_copy()
RUNNING_TAG = f"running-{sys.version_info.major}.{sys.version_info.minor}"
COPIES: dict[str, Path | None] = {RUNNING_TAG: RUNNING, **_other_copies(RUNNING)}


# -- loading a copy with the adapter as its ``struct`` -----------------------


def _identity_decorator_factory(*args, **kwargs):
    return lambda func: func


#: test.support names that newer copies import and older interpreters lack;
#: each only tunes CPython's own object lifetime, so a no-op stands in.
_SUPPORT_SHIMS = {"suppress_immortalization": _identity_decorator_factory}


def _support_with_shims() -> types.ModuleType:
    from test import support

    proxy = types.ModuleType("test.support")
    proxy.__dict__.update(support.__dict__)
    for name, value in _SUPPORT_SHIMS.items():
        proxy.__dict__.setdefault(name, value)

    def submodule(name: str) -> types.ModuleType:  # import_helper, script_helper, ...
        try:
            return importlib.import_module(f"test.support.{name}")
        except ImportError:
            raise AttributeError(name) from None

    proxy.__getattr__ = submodule
    return proxy


def _load(tag: str, path: Path) -> types.ModuleType:
    """Execute one copy of test_struct, then point its ``struct`` at the adapter."""
    support = _support_with_shims()
    real_import = builtins.__import__

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "test.support" and fromlist:
            return support
        return real_import(name, globals, locals, fromlist, level)

    module = types.ModuleType("cpython_test_struct_" + re.sub(r"\W", "_", tag))
    module.__file__ = str(path)
    module.__builtins__ = {**builtins.__dict__, "__import__": importer}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    module.struct = struct_adapter
    return module


def _test_cases(module: types.ModuleType) -> dict[str, unittest.TestCase]:
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    cases = {}

    def walk(s):
        for item in s:
            if isinstance(item, unittest.TestSuite):
                walk(item)
            else:
                cases[f"{type(item).__name__}.{item._testMethodName}"] = item

    walk(suite)
    return cases


_LOADED: dict[str, dict[str, unittest.TestCase]] = {}
#: other versions' copies that this interpreter cannot execute (a newer
#: copy may need test.support helpers it lacks): skipped with the reason.
_UNLOADABLE: dict[str, str] = {}
for _tag, _path in COPIES.items():
    if _path is None:
        continue
    if _tag == RUNNING_TAG:
        _LOADED[_tag] = _test_cases(_load(_tag, _path))  # must load: a failure is an error
        continue
    try:
        _LOADED[_tag] = _test_cases(_load(_tag, _path))
    except Exception as exc:  # noqa: BLE001 - reported as the skip reason
        _UNLOADABLE[_tag] = f"{_path} cannot run on Python {sys.version.split()[0]}: {type(exc).__name__}: {exc}"


def _params():
    if not any(COPIES.values()):
        yield pytest.param(None, None, marks=pytest.mark.skip(reason="no copy of CPython's test_struct found"))
    if RUNNING is None:
        yield pytest.param(
            RUNNING_TAG,
            None,
            marks=pytest.mark.skip(reason="this interpreter ships no test package (test.test_struct is absent)"),
            id=RUNNING_TAG,
        )
    for tag, why in _UNLOADABLE.items():
        yield pytest.param(tag, None, marks=pytest.mark.skip(reason=why), id=tag)
    for tag, cases in _LOADED.items():
        for name in cases:
            reason = not_applicable(tag, name)
            marks = pytest.mark.skip(reason=f"not applicable: {reason}") if reason else ()
            yield pytest.param(tag, name, marks=marks, id=f"{tag}::{name}")


@pytest.mark.parametrize(("copy", "name"), list(_params()))
def test_cpython_struct(copy: str, name: str) -> None:
    case = _LOADED[copy][name]
    result = unittest.TestResult()
    case.run(result)  # a fresh run of the method (TestCase.run re-runs cleanly)
    problems = result.errors + result.failures + [(t, "unexpected success") for t in result.unexpectedSuccesses]
    assert not problems, "\n\n".join(text for _, text in problems)
    assert not result.skipped, result.skipped


def test_not_applicable_list_names_real_tests() -> None:
    """A stale entry would hide nothing but mislead: every listed test exists
    in at least one copy found (when any is found)."""
    if not _LOADED:
        pytest.skip("no copy of CPython's test_struct found")
    known = {f"{name}@{_minor(tag)}" for tag, cases in _LOADED.items() for name in cases}
    known |= {name for cases in _LOADED.values() for name in cases}
    versions = {_minor(tag) for tag in _LOADED}
    stale = [name for name in NOT_APPLICABLE if name not in known and name.partition("@")[2] in ("", *versions)]
    assert not stale, stale


def test_adapter_never_calls_struct_packing() -> None:
    """The adapter converts arguments and results only: it must not import
    struct (the bytes and errors under test are binrec's)."""
    source = Path(struct_adapter.__file__).read_text(encoding="utf-8")
    assert not re.search(r"^\s*(import struct|from struct import|import _struct)", source, re.M)
    assert struct_adapter.error is binrec.Error
