"""binrec's public exceptions carry their public names.

A traceback prints ``<cls.__module__>.<cls.__qualname__>: message``; users
should read (and search for) ``binrec.Error``, the name they can import and
catch, not ``binrec._errors.Error``, the private module that defines it.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys

import numpy
import pytest

import binrec

# a real call that raises each public codec exception, run in a fresh
# interpreter so that the traceback is the one a user sees
RAISING_CALLS = {
    "Error": 'binrec.unpack("<i", b"abc")',
    "FloatOverflowError": 'binrec.pack("<f", [(1e300,)])',
    "BufferTypeError": 'binrec.pack_into("<i", b"1234", 0, [(1,)])',
    "BufferContiguityError": 'binrec.unpack("<B", numpy.arange(4, dtype=numpy.uint8)[::2])',
    "FormatEncodingError": 'binrec.calcsize("\\u00e9")',
}

# exceptions of the persistence modules that are defined in private ones
# (binrec._pickle_errors) and re-exported: the name users import
REEXPORTED_CALLS = {
    "binrec.pickling.ForbiddenGlobal": "binrec.pickling.safe_loads(pickle.dumps(print))",
    "binrec.pickling.TruncatedError": 'binrec.pickling.safe_loads(b"\\x80\\x04K")',
}

PUBLIC_MODULES = [
    "binrec",
    "binrec.records",
    "binrec.files",
    "binrec.pickling",
    "binrec.signing",
    "binrec.shelf",
    "binrec.checkpoint",
]


def _last_traceback_line(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", f"import pickle, numpy, binrec, binrec.pickling\n{code}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("name", sorted(RAISING_CALLS))
def test_traceback_names_the_public_class(name):
    # the oracle: the interpreter's own traceback printer in a child process
    line = _last_traceback_line(RAISING_CALLS[name])
    assert line.startswith(f"binrec.{name}: "), line


@pytest.mark.parametrize("qualified", sorted(REEXPORTED_CALLS))
def test_traceback_names_the_reexporting_module(qualified):
    line = _last_traceback_line(REEXPORTED_CALLS[qualified])
    assert line.startswith(f"{qualified}: "), line


def test_every_call_covers_every_exported_exception():
    # the table above must not fall behind binrec.__all__
    exported = {
        n for n in binrec.__all__ if isinstance(getattr(binrec, n), type) and issubclass(getattr(binrec, n), Exception)
    }
    assert exported == set(RAISING_CALLS)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_exported_exceptions_name_a_module_that_exports_them(module_name):
    # an exception re-exported from a private module would print its private
    # path; the module named by __module__ must export the class under its name
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert not any(part.startswith("_") for part in obj.__module__.split(".")), (module_name, name)
            home = importlib.import_module(obj.__module__)
            assert getattr(home, obj.__qualname__) is obj, (module_name, name, obj.__module__)


@pytest.mark.parametrize("name", sorted(RAISING_CALLS))
def test_public_exceptions_pickle_by_their_public_name(name):
    # the oracle: plain pickle, which finds a class by __module__ and
    # __qualname__ and fails if that path does not lead back to the class
    with pytest.raises(binrec.Error) as info:
        eval(RAISING_CALLS[name], {"binrec": binrec, "numpy": numpy})
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is getattr(binrec, name)
    assert str(copy) == str(info.value)
