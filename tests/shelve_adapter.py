"""The :mod:`shelve` module's API on top of :mod:`binrec.shelf`, for running
CPython's own ``test_shelve`` against binrec (tests/test_cpython_shelve.py).

It converts arguments only: every read and write goes to a binrec shelf.
``Shelf`` is binrec's class, so the tests that build ``shelve.Shelf`` over a
caller's dict do not apply (they are listed, with reasons, in the test module).
"""

from __future__ import annotations

import os
from typing import Any

from binrec import shelf

Shelf = shelf.Shelf


def open(
    filename: str | bytes | os.PathLike, flag: str = "c", protocol: int | None = None, writeback: bool = False
) -> Any:
    """``shelve.open(filename, flag, protocol, writeback)`` as a binrec shelf."""
    return shelf.open(filename, flag, protocol=protocol, writeback=writeback)
