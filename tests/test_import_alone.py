"""Every module imports alone, in a fresh interpreter, with warnings as errors.

An import cycle, a module that relies on another having been imported first,
or an import-time warning (a deprecated API, an unclosed resource) shows up
here as a failing module name, not as a puzzle in some later test.  The
model is aio-libs/multidict's ``tests/test_circular_imports.py``.
"""

from __future__ import annotations

import importlib.util
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


#: modules that import an optional extra at their top (the package they need)
NEEDS_AN_EXTRA = {"binrec._dask_expr": "dask"}


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone_with_warnings_as_errors(module):
    extra = NEEDS_AN_EXTRA.get(module)
    if extra is not None and importlib.util.find_spec(extra) is None:
        pytest.skip(f"{module} imports {extra}, which is not installed (binrec[{extra}])")
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


# -- no module reaches into another module's private names -------------------
#
# STYLE.md: "A leading underscore means 'this module only': a name two
# modules share is public within the package."  Whole modules whose names
# start with an underscore (_backend, _errors, _layout, _coerce, _kernels_py,
# _atomic, _pickle_scan, _kernels_c) are package-internal *modules*: importing
# them is fine.  What is refused is reaching for an underscore *name inside*
# another binrec module:
#
#   from .files import _file_span          (a private function of files.py)
#   signing._open_envelope(...)            (the same, through the module)
#   s._with_text(...)                      (a private method of a class that
#                                           another module defines)
#
# The check is deliberately simple: it reads the source with ``ast`` and
# matches those three shapes; it does not follow values through variables.

import ast  # noqa: E402
import pathlib  # noqa: E402

_PACKAGE_DIR = pathlib.Path(binrec.__file__).parent

#: (module file, private name) -> why the reach is still there.  Empty: every
#: reach found by the issue 12 review was renamed.  Add an entry only with a
#: reason, so a remaining reach stays visible here.
PRIVATE_REACH_ALLOWED: dict[tuple[str, str], str] = {}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_methods(tree: ast.Module) -> set[str]:
    """Underscore members of the classes of one module: methods, class
    attributes, ``__slots__`` entries and ``self._x = ...`` attributes."""
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(item.name)
            elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
                if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in targets) and item.value is not None:
                    names.update(
                        c.value
                        for c in ast.walk(item.value)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)
                    )
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                if isinstance(sub.value, ast.Name) and sub.value.id in ("self", "cls"):
                    names.add(sub.attr)
    return {name for name in names if _is_private(name)}


def private_reaches(package_dir: pathlib.Path) -> list[tuple[str, int, str]]:
    """``(file, line, private name)`` for every reach into another binrec
    module's private names in the ``*.py`` files of ``package_dir``."""
    trees = {p.name: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(package_dir.glob("*.py"))}
    methods = {name: _private_methods(tree) for name, tree in trees.items()}
    found = []
    for fname, tree in trees.items():
        others = set().union(*(m for n, m in methods.items() if n != fname)) - methods[fname]
        module_aliases = set()  # names bound to a binrec module: `from . import signing`
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("binrec")):
                if node.module is None or node.module == "binrec":
                    module_aliases.update(a.asname or a.name for a in node.names)
                else:
                    found += [(fname, node.lineno, a.name) for a in node.names if _is_private(a.name)]
            elif isinstance(node, ast.Import):
                module_aliases.update(a.asname for a in node.names if a.asname and a.name.startswith("binrec."))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr")
                and len(node.args) >= 2
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in module_aliases
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and _is_private(node.args[1].value)
            ):
                found.append((fname, node.lineno, node.args[1].value))  # getattr(module, "_name")
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            via_module = isinstance(node.value, ast.Name) and node.value.id in module_aliases
            via_method = node.attr in others and not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            )
            if via_module or via_method:
                found.append((fname, node.lineno, node.attr))
    return found


def test_the_private_reach_check_finds_each_shape(tmp_path):
    # the oracle: three hand-written reaches, one of each shape, and the
    # allowed uses beside them (a private module, a private name used at home)
    (tmp_path / "a.py").write_text(
        "class S:\n    def _own(self):\n        return self._own\n\ndef _helper():\n    pass\n", encoding="utf-8"
    )
    (tmp_path / "b.py").write_text(
        "from . import a, _backend\n"
        "from .a import _helper, S\n"
        "a._helper()\n"
        "_backend.kernels\n"
        "def f(s):\n    return s._own()\n",
        encoding="utf-8",
    )
    assert sorted(private_reaches(tmp_path)) == [("b.py", 2, "_helper"), ("b.py", 3, "_helper"), ("b.py", 6, "_own")]


def test_the_private_reach_check_finds_private_attributes_and_getattr(tmp_path):
    # the oracle: hand-written reaches into a private instance attribute, a
    # __slots__ entry, a class attribute and, by getattr, a module's private name
    (tmp_path / "a.py").write_text(
        "class S:\n"
        "    __slots__ = ('_slot',)\n"
        "    _table = {}\n"
        "    def __init__(self):\n"
        "        self._inner = 1\n"
        "        self._slot = self._inner\n"
        "_private = 1\n",
        encoding="utf-8",
    )
    (tmp_path / "b.py").write_text(
        "from . import a\n"
        "def f(s):\n"
        "    return s._inner, s._slot, s._table\n"
        "getattr(a, '_private')\n"
        "getattr(a, 'public')\n",
        encoding="utf-8",
    )
    assert sorted(private_reaches(tmp_path)) == [
        ("b.py", 3, "_inner"),
        ("b.py", 3, "_slot"),
        ("b.py", 3, "_table"),
        ("b.py", 4, "_private"),
    ]


def test_no_module_reaches_into_another_modules_private_names():
    reaches = [r for r in private_reaches(_PACKAGE_DIR) if (r[0], r[2]) not in PRIVATE_REACH_ALLOWED]
    assert reaches == [], "private names used across modules (rename them, or allowlist with a reason):\n" + "\n".join(
        f"  {f}:{line}: {name}" for f, line, name in reaches
    )
