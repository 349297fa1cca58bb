"""The examples in binrec's docstrings run, and every public name has one.

Nothing here is a hand-kept list: the modules come from walking the
*installed* ``binrec`` package (``pkgutil.walk_packages``), every docstring
example in them is found by :class:`doctest.DocTestFinder` and runs as its
own pytest case, and the public names are read from each module's
``__all__`` (plus the public methods and properties of the classes listed
there).  A new module, function or method is therefore checked the day it
is added.

Each example of the public API runs in a fresh namespace holding only
``__name__``: it must import what it uses, exactly as a reader who pastes
it into a REPL would (examples of package-internal helpers run in their
module's namespace, as ``doctest.testmod`` runs them).
Examples for the optional extras (pandas, pyarrow, dask) are skipped, with
a reason, when the extra is not installed; everything else must pass.
"""

from __future__ import annotations

import copy
import doctest
import importlib
import importlib.metadata
import inspect
import io
import pkgutil
import re
import sys

import pytest

import binrec

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: top-level module of an optional extra -> the pip extra that installs it
OPTIONAL_EXTRAS = {"pandas": "binrec[pandas]", "pyarrow": "binrec[arrow]", "dask": "binrec[dask]"}


def _module_names() -> list[str]:
    names = ["binrec"]
    for info in pkgutil.walk_packages(binrec.__path__, prefix="binrec."):
        if info.name != "binrec.__main__":  # `python -m binrec`: nothing but `main` from cli
            names.append(info.name)
    return sorted(names)


def _import_unless_an_extra_is_missing(name: str):
    """The module, or None where importing it needs an optional extra that
    is not installed (``binrec._dask_expr`` imports dask at its top)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in OPTIONAL_EXTRAS:
            return None
        raise


MODULE_NAMES = _module_names()
_IMPORTED = {name: _import_unless_an_extra_is_missing(name) for name in MODULE_NAMES}
MODULES = [module for module in _IMPORTED.values() if module is not None]
NEEDS_A_MISSING_EXTRA = sorted(name for name, module in _IMPORTED.items() if module is None)


def test_every_module_imports_where_its_extras_are_installed():
    # a module left out above is named, not silently dropped
    if NEEDS_A_MISSING_EXTRA:
        pytest.skip(f"not imported, an optional extra is missing: {', '.join(NEEDS_A_MISSING_EXTRA)}")
    assert len(MODULES) == len(MODULE_NAMES)


def _public_objects() -> dict[str, object]:
    """Qualified name -> object, for each function and class in the
    ``__all__`` of a public module and each public method and property of
    those classes (re-exports counted once, under their first name).

    A module whose name has a leading underscore (``binrec._layout``) is
    package-internal (STYLE.md): its ``__all__`` lists what other binrec
    modules may use, not the API, so it is checked only through the names
    a public module re-exports (``binrec.Error`` is ``binrec._errors.Error``).
    Its examples, where it has some, still run above.  Constants and modules
    in an ``__all__`` (``__version__``, ``TRAILING``) cannot carry a
    docstring of their own and are left out.
    """
    seen: dict[int, str] = {}
    objects: dict[str, object] = {}

    def add(name: str, obj: object) -> None:
        ALIASES.add(name)
        key = id(obj.fget if isinstance(obj, property) else obj)
        if key not in seen:
            seen[key] = name
            objects[name] = obj

    for module in MODULES:
        if any(part.startswith("_") for part in module.__name__.split(".")):
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue
            add(f"{module.__name__}.{name}", obj)
            if inspect.isclass(obj):
                for klass in obj.__mro__:
                    if not klass.__module__.startswith("binrec"):
                        continue  # Exception's, MutableMapping's own methods
                    for attr, value in vars(klass).items():
                        if attr.startswith("_"):
                            continue
                        if isinstance(value, (staticmethod, classmethod)):
                            value = value.__func__
                        if isinstance(value, property) or inspect.isroutine(value):
                            add(f"{module.__name__}.{name}.{attr}", value)
    return objects


#: every name a public object is reachable by (binrec.Struct, binrec.records.Struct, ...)
ALIASES: set[str] = set()
PUBLIC = _public_objects()
PUBLIC_MODULES = {m.__name__ for m in MODULES if not any(p.startswith("_") for p in m.__name__.split("."))}


def _namespace(test_name: str, module) -> dict:
    """Where an example runs.  The examples of the public API (what the
    docs site shows) run in a fresh namespace, so they must import what
    they use, exactly as a reader who pastes one into a REPL; those of
    package-internal helpers are notes for developers and run in their
    module's namespace, as ``doctest.testmod`` runs them."""
    if test_name in ALIASES or test_name in PUBLIC_MODULES:
        return {"__name__": "__main__"}
    return dict(vars(module))


def _collect_examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    found: dict[str, doctest.DocTest] = {}
    for module in MODULES:
        for test in finder.find(module, module.__name__):
            if test.examples and test.name not in found:  # the finder also returns docstrings without examples
                test.globs = _namespace(test.name, module)
                found[test.name] = test
    # The finder skips a method whose function lives in another module than
    # its class claims (binrec.pickling re-homes PickleReport, defined in
    # _pickle_inspect): collect such public docstrings by hand.
    collected = {test.docstring for test in found.values()}
    parser = doctest.DocTestParser()
    for name, obj in PUBLIC.items():
        doc = inspect.getdoc(obj)
        if doc and obj.__doc__ not in collected and name not in found:
            test = parser.get_doctest(doc, {"__name__": "__main__"}, name, None, None)
            if test.examples:
                found[name] = test
    return [found[name] for name in sorted(found)]


EXAMPLES = _collect_examples()


class _Runner(doctest.DocTestRunner):
    """Remembers the first thing that went wrong, to tell a missing extra
    (the first failure is its ImportError) from a broken example."""

    def __init__(self) -> None:
        super().__init__(optionflags=FLAGS, verbose=False)
        self.first_problem: BaseException | str | None = None

    def report_failure(self, out, test, example, got):
        if self.first_problem is None:
            self.first_problem = "wrong output"
        super().report_failure(out, test, example, got)

    def report_unexpected_exception(self, out, test, example, exc_info):
        if self.first_problem is None:
            self.first_problem = exc_info[1]
        super().report_unexpected_exception(out, test, example, exc_info)


def _missing_extra(exc: BaseException | str | None) -> str | None:
    """The optional extra whose absence raised ``exc`` (an ImportError for
    pandas, pyarrow or dask, or one caused by it), if that extra really
    cannot be imported here; else None."""
    while isinstance(exc, BaseException):
        if isinstance(exc, ImportError):
            top = (exc.name or "").partition(".")[0]
            if top in OPTIONAL_EXTRAS:
                try:
                    importlib.import_module(top)
                except ImportError:
                    return top
                return None
        exc = exc.__cause__ or exc.__context__
    return None


def run_example(test: doctest.DocTest) -> None:
    """Run one docstring's examples: pass, skip (missing extra) or fail."""
    test = copy.copy(test)
    test.globs = dict(test.globs)
    runner = _Runner()
    report = io.StringIO()
    try:
        runner.run(test, out=report.write, clear_globs=True)
    finally:
        test.globs.clear()
    if runner.failures:
        extra = _missing_extra(runner.first_problem)
        if extra is not None:
            pytest.skip(f"{test.name}: its example needs {extra} ({OPTIONAL_EXTRAS[extra]}), which is not installed")
        pytest.fail(
            f"{runner.failures} of {runner.tries} examples failed in {test.name}:\n{report.getvalue()}", pytrace=False
        )


def _section(doc: str, title: str) -> str | None:
    """The text of the numpydoc section ``title``, or None if there is none."""
    match = re.search(rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\S[^\n]*\n-{{3,}}\n|\Z)", doc, re.S | re.M)
    return match.group(1) if match else None


def _examples_section(doc: str) -> str | None:
    return _section(doc, "Examples")


def _documented_names(doc: str, titles: tuple[str, ...]) -> set[str]:
    """Names listed in numpydoc parameter-style sections: the unindented
    lines ``name : type``, ``name`` or ``a, b, c`` (``**kw`` counts as
    ``kw``)."""
    names = set()
    for title in titles:
        for line in (_section(doc, title) or "").splitlines():
            if line and not line[0].isspace():
                names.update(n.strip().lstrip("*") for n in line.split(" : ")[0].split(","))
    return names


def _undocumented_parameters(obj: object) -> list[str]:
    """Parameters of ``obj``'s signature that its docstring does not list
    (a class may list its constructor's arguments as Attributes, as a
    dataclass does; a class's ``*args``/``**kwargs`` are Exception's)."""
    if isinstance(obj, property):
        return []
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin without a signature
        return []
    is_class = inspect.isclass(obj)
    titles = ("Parameters", "Other Parameters") + (("Attributes",) if is_class else ())
    documented = _documented_names(inspect.getdoc(obj) or "", titles)
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        p.name
        for p in signature.parameters.values()
        if p.name not in ("self", "cls") and not (is_class and p.kind in variadic) and p.name not in documented
    ]


# -- the checks ----------------------------------------------------------------


def test_the_walk_sees_the_installed_package():
    # the oracle: STYLE.md's module map; an empty walk would make every
    # other test here vacuous
    for name in ("binrec.records", "binrec.files", "binrec.pickling", "binrec.signing", "binrec.shelf"):
        assert name in MODULE_NAMES
    # the package that runs is an installed distribution (the editable
    # install in development), not a stray copy on sys.path
    assert importlib.metadata.version("binrec") == binrec.__version__
    assert len(EXAMPLES) > 20
    assert "binrec.Struct" in PUBLIC and "binrec.checkpoint.CheckpointStore.save" in PUBLIC


def test_every_public_example_is_collected():
    # the oracle: the docstrings themselves; a public example the walk
    # missed would never run (PickleReport.as_dict once was)
    docstrings = {inspect.cleandoc(t.docstring) for t in EXAMPLES if t.docstring}
    missed = [
        name for name, obj in PUBLIC.items() if ">>> " in (obj.__doc__ or "") and inspect.getdoc(obj) not in docstrings
    ]
    assert missed == []


@pytest.mark.parametrize("test", EXAMPLES, ids=[t.name for t in EXAMPLES])
def test_docstring_example(test):
    run_example(test)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_has_an_example(name):
    doc = inspect.getdoc(PUBLIC[name]) or ""
    assert doc.strip(), f"{name} has no docstring"
    section = _examples_section(doc)
    assert section is not None, f"{name}'s docstring has no numpydoc 'Examples' section"
    assert ">>> " in section, f"{name}'s Examples section holds no runnable example"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_parameters_are_documented(name):
    # the oracle is the signature itself: a renamed or added parameter
    # (s -> struct, use_mmap -> mmap) must be renamed in the docs too
    assert _undocumented_parameters(PUBLIC[name]) == [], f"{name}: parameters missing from its Parameters section"


# -- the harness itself ----------------------------------------------------------


def _example(source: str, name: str = "synthetic") -> doctest.DocTest:
    return doctest.DocTestParser().get_doctest(source, {"__name__": "__main__"}, name, None, 0)


def test_a_wrong_example_fails():
    with pytest.raises(pytest.fail.Exception, match="1 of 1 examples failed"):
        run_example(_example(">>> 1 + 1\n3\n"))


def test_a_public_example_runs_without_the_module_namespace():
    # a public example that leaned on its module's globals would not run
    # when pasted into a REPL: it gets none
    test = next(t for t in EXAMPLES if t.name == "binrec.records.Struct.unpack")
    assert set(test.globs) == {"__name__"}


def test_an_internal_example_runs_in_its_module_namespace():
    internal = [t for t in EXAMPLES if t.name not in ALIASES and t.name not in PUBLIC_MODULES]
    assert internal, "no internal helper has an example: this test would be vacuous"
    for test in internal:
        module = sys.modules[test.globs["__name__"]]
        assert test.globs.keys() == vars(module).keys(), test.name


def test_an_example_without_its_imports_fails():
    with pytest.raises(pytest.fail.Exception, match="NameError"):
        run_example(_example(">>> Struct\n"))


def test_a_missing_extra_skips_its_example(monkeypatch):
    # sys.modules[name] = None is how the import system spells "absent":
    # `import pandas` then raises ModuleNotFoundError(name="pandas")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(pytest.skip.Exception, match=r"needs pandas \(binrec\[pandas\]\)"):
        run_example(_example(">>> import pandas\n>>> pandas.DataFrame()\nEmpty DataFrame\n"))


def test_a_missing_non_optional_module_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlite3", None)
    with pytest.raises(pytest.fail.Exception, match="ModuleNotFoundError"):
        run_example(_example(">>> import sqlite3\n"))


def test_the_parameter_check_sees_a_missing_parameter():
    def half_documented(data, *, strict=False, **options):
        """Summary.

        Parameters
        ----------
        data : bytes
        **options
            Passed on.
        """

    def documented(a, b, *args):
        """Summary.

        Parameters
        ----------
        a, b : int
        *args
        """

    assert _undocumented_parameters(half_documented) == ["strict"]
    assert _undocumented_parameters(documented) == []


def test_the_completeness_check_sees_a_missing_example():
    def documented_without_example(x):
        """Summary.

        Parameters
        ----------
        x : int
        """

    def documented_with_example(x):
        """Summary.

        Examples
        --------
        >>> 1
        1

        See Also
        --------
        len
        """

    assert _examples_section(inspect.getdoc(documented_without_example)) is None
    assert ">>> 1" in _examples_section(inspect.getdoc(documented_with_example))
    assert "len" not in _examples_section(inspect.getdoc(documented_with_example))
