"""The examples in public docstrings run, against the installed package."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["binrec.records", "binrec.pickling", "binrec.signing", "binrec._atomic", "binrec.shelf", "binrec.checkpoint"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
