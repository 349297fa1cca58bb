"""CPython's own test_shelve (and the mapping protocol tests it uses, from
test.mapping_tests) run against binrec.shelf through tests/shelve_adapter.py.

Each copy found is loaded from its file with ``shelve`` bound to the adapter:
the running interpreter's (``test.test_shelve``; the pyenv Pythons ship the
``test`` package, Debian's system Python does not) and those of the other
installed Pythons binrec supports (3.11 and later).  Its TestCase classes are
put in this module's namespace, renamed ``<Class>_py<version>``, so pytest
runs them.  The tests that cannot apply to binrec are skipped, each with its
reason (NOT_APPLICABLE); everything else must pass.
"""

from __future__ import annotations

import ast
import glob
import importlib
import importlib.util
import os
import re
import sys
import sysconfig
import unittest
from pathlib import Path

import pytest
import shelve_adapter  # noqa: F401  (tests/ is on sys.path under pytest's rootdir conftest)

_DICT = "builds shelve.Shelf over a caller's dict; a binrec shelf stores only in its own SQLite file"

# test method (or class pattern) -> why it cannot apply to binrec.shelf
NOT_APPLICABLE = {
    "TestCase.test_close": _DICT + " (closed shelf: test_shelf.py::test_closed_after_with)",
    "TestCase.test_with": _DICT + " (closed after `with`: test_shelf.py::test_closed_after_with)",
    "TestCase.test_in_memory_shelf": _DICT + " with bytes keys (byteskeydict)",
    "TestCase.test_mutable_entry": _DICT + " (on files: test_shelf.py::test_mutable_entry_as_shelve)",
    "TestCase.test_writeback_also_writes_immediately": _DICT
    + " (on a file: test_shelf.py::test_writeback_also_writes_immediately)",
    "TestCase.test_keyencoding": "binrec keys are str stored as UTF-8 text; there is no keyencoding argument",
    "TestCase.test_default_protocol": _DICT + "; binrec's default pickle protocol is HIGHEST_PROTOCOL by design",
    r"TestProto\d+MemShelve": "the mapping tests over shelve.Shelf(byteskeydict()), "
    + _DICT
    + "; the same tests run on files in TestProto*File_*Shelve",
}


def _reason(cls_name: str, method: str | None = None) -> str | None:
    for pattern, reason in NOT_APPLICABLE.items():
        target = cls_name if "." not in pattern else f"{cls_name}.{method}"
        if re.fullmatch(pattern, target):
            return reason
    return None


def _running_copy() -> Path | None:
    spec = importlib.util.find_spec("test.test_shelve") if importlib.util.find_spec("test") else None
    return Path(spec.origin) if spec and spec.origin else None


def _other_copies(running: Path | None) -> list[Path]:
    """test_shelve.py of the other installed Pythons 3.11+ (pyenv layout:
    <root>/versions/<v>/lib/python3.X/test/test_shelve.py)."""
    roots = {Path(sysconfig.get_paths()["stdlib"]).parents[2]}
    if os.environ.get("PYENV_ROOT"):
        roots.add(Path(os.environ["PYENV_ROOT"]) / "versions")
    roots.add(Path("~/.pyenv/versions").expanduser())
    found = set()
    for root in roots:
        for p in glob.glob(str(root / "*" / "lib" / "python3.*" / "test" / "test_shelve.py")):
            minor = int(re.search(r"python3\.(\d+)", p).group(1))
            if minor >= 11 and (running is None or os.path.realpath(p) != os.path.realpath(running)):
                found.add(os.path.realpath(p))
    return [Path(p) for p in sorted(found)]


def _tag(path: Path) -> str:
    """``3_12_1`` from .../versions/3.12.1/lib/python3.12/test/test_shelve.py."""
    version = path.parents[3].name
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?\w*", version):
        version = path.parents[1].name.replace("python", "")
    return re.sub(r"\W", "_", version)


def _class_source(path: Path, name: str) -> str | None:
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return ast.get_source_segment(text, node)
    return None


def _load_mapping_tests(copy: Path, tag: str):
    """The copy's own test/mapping_tests.py; where it does not import on this
    interpreter, the running one's, but only if the class test_shelve uses
    (BasicTestMappingProtocol) is word for word the same."""
    own = copy.parent / "mapping_tests.py"
    spec = importlib.util.spec_from_file_location(f"binrec_cpython_{tag}_mapping_tests", own)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module
    except ImportError as exc:
        running = importlib.import_module("test.mapping_tests")
        name = "BasicTestMappingProtocol"
        if _class_source(own, name) != _class_source(Path(running.__file__), name):
            raise ImportError(f"{own} does not import here ({exc}) and its {name} differs from this Python's") from exc
        return running


def _load(copy: Path, tag: str):
    """Execute a copy of test_shelve.py with ``import shelve`` giving the adapter."""
    import test

    mapping_tests = _load_mapping_tests(copy, tag)
    saved_modules = {n: sys.modules.get(n) for n in ("shelve", "test.mapping_tests")}
    saved_attr = test.__dict__.get("mapping_tests")
    sys.modules["shelve"] = sys.modules["shelve_adapter"]
    sys.modules["test.mapping_tests"] = mapping_tests
    test.mapping_tests = mapping_tests
    try:
        spec = importlib.util.spec_from_file_location(f"binrec_cpython_{tag}_test_shelve", copy)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, mod in saved_modules.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
        if saved_attr is None:
            del test.mapping_tests
        else:
            test.mapping_tests = saved_attr
    assert module.shelve is sys.modules["shelve_adapter"]
    return module


def _adapted(cls: type, tag: str) -> type:
    """A subclass of a CPython TestCase with the not-applicable tests skipped."""
    attrs = {}
    for name in dir(cls):
        if name.startswith("test"):
            reason = _reason(cls.__name__, name)
            if reason:
                attrs[name] = unittest.skip(reason)(getattr(cls, name))
    new = type(f"{cls.__name__}_py{tag}", (cls,), attrs)
    new.__module__ = __name__
    reason = _reason(cls.__name__)
    return unittest.skip(reason)(new) if reason else new


LOADED: dict[str, str] = {}  # tag -> path, for the report
SKIPPED_COPIES: dict[str, str] = {}  # path -> why it could not be loaded
_RUNNING = _running_copy()


def _collect() -> dict[str, type]:
    classes = {}
    for copy in ([_RUNNING] if _RUNNING else []) + _other_copies(_RUNNING):
        tag = _tag(copy)
        try:
            module = _load(copy, tag)
        except Exception as exc:  # a copy that does not load on this interpreter
            SKIPPED_COPIES[str(copy)] = f"{type(exc).__name__}: {exc}"
            continue
        LOADED[tag] = str(copy)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj.__module__ == module.__name__:
                cls = _adapted(obj, tag)
                classes[cls.__name__] = cls
    return classes


globals().update(_collect())


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """CPython's tests make os_helper.TESTFN, a relative name: keep it in tmp."""
    monkeypatch.chdir(tmp_path)


def test_the_running_interpreters_copy_is_found():
    if _RUNNING is None:
        pytest.skip(f"this Python ({sys.version.split()[0]}) ships no test.test_shelve (e.g. Debian's system Python)")
    assert _tag(_RUNNING) in LOADED, SKIPPED_COPIES


@pytest.mark.parametrize("path", sorted(SKIPPED_COPIES) or [None])
def test_other_copies_load(path):
    if path is None:
        return
    pytest.skip(f"{path} cannot be loaded on Python {sys.version.split()[0]}: {SKIPPED_COPIES[path]}")
