"""binrec: fast, safe binary records and persistence for Python.

The record codec (:class:`Struct`) decodes fixed-size binary records described
by a :mod:`struct` format into numpy arrays and encodes them back, byte for
byte as struct does.  ``binrec.backend`` says which kernels run:
``"compiled"`` (the Cython extension) or ``"python"`` (the numpy fallback).

Examples
--------
>>> import struct
>>> import binrec
>>> raw = struct.pack("<hd", 1, 0.5) + struct.pack("<hd", 2, 1.5)
>>> binrec.unpack("<hd", raw, names="n x").tolist()
[(1, 0.5), (2, 1.5)]
>>> binrec.pack("<hd", [(1, 0.5), (2, 1.5)]) == raw
True
>>> binrec.backend in ("compiled", "python")
True
"""

from __future__ import annotations

from ._backend import backend
from ._errors import BufferContiguityError, BufferTypeError, Error, FloatOverflowError, FormatEncodingError
from .framing import FrameIndex, Framing
from .records import Struct, calcsize, dtype, pack, pack_into, unpack, unpack_columns

__all__ = [
    "BufferContiguityError",
    "BufferTypeError",
    "Error",
    "FloatOverflowError",
    "FormatEncodingError",
    "FrameIndex",
    "Framing",
    "Struct",
    "backend",
    "calcsize",
    "dtype",
    "pack",
    "pack_into",
    "unpack",
    "unpack_columns",
    "__version__",
]

__version__ = "0.2.0.dev0"

# Tracebacks, reprs and pickles name a class by its __module__: give the
# public path (binrec.Error), not the private module that defines it
# (binrec._errors.Error).  Pickling still round-trips: binrec exports each name.
for _exc in (BufferContiguityError, BufferTypeError, Error, FloatOverflowError, FormatEncodingError):
    _exc.__module__ = __name__
del _exc
