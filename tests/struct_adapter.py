"""The :mod:`struct` API on top of binrec, for running CPython's test_struct.

Each function converts struct's arguments (one tuple of values, one record)
into binrec's (a sequence of rows, a buffer of records) and binrec's results
back (a structured array of one record into a tuple).  Nothing here packs,
unpacks, range-checks or validates a value: every byte and every error comes
from binrec, never from the struct module.

Two conversions need a word:

* ``unpack`` hands the whole buffer to binrec, which decodes however many
  whole records it holds; struct's result is one record, so any other number
  of records is reported as struct does ("unpack requires a buffer of N
  bytes"), with binrec's own error class.
* binrec reads ``s``/``c`` fields as numpy ``S`` values, which drop trailing
  NUL bytes as Python objects (README, "Differences from struct"); the stored
  bytes are intact, so the adapter takes those fields' bytes from the decoded
  record itself.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

import binrec

__all__ = ["Struct", "calcsize", "error", "iter_unpack", "pack", "pack_into", "unpack", "unpack_from"]

error = binrec.Error


class Struct:
    """struct.Struct's interface over one :class:`binrec.Struct`."""

    def __init__(self, format: str | bytes) -> None:
        self._s = binrec.Struct(format)
        self._raw_fields = [(i, f.offset, f.size) for i, f in enumerate(self._s.layout.fields) if f.code in "sc"]

    @property
    def format(self) -> str:
        return self._s.format

    @property
    def size(self) -> int:
        return self._s.size

    def pack(self, *values: Any) -> bytes:
        return self._s.pack([values])

    def pack_into(self, buffer: Any, offset: int, *values: Any) -> None:
        self._s.pack_into(buffer, offset, [values])

    def unpack(self, buffer: Any) -> tuple:
        records = self._s.unpack(buffer)
        if len(records) != 1:
            raise error(f"unpack requires a buffer of {self.size} bytes")
        return self._tuples(records)[0]

    def unpack_from(self, buffer: Any, offset: int = 0) -> tuple:
        return self._tuples(self._s.unpack(buffer, offset=offset, count=1))[0]

    def iter_unpack(self, buffer: Any) -> Iterator[tuple]:
        # A list iterator has struct's __length_hint__ and cannot be
        # instantiated, as struct's unpack iterator.
        return iter(self._tuples(self._s.unpack(buffer)))

    def _tuples(self, records: np.ndarray) -> list[tuple]:
        rows = records.tolist()
        if not self._raw_fields:
            return rows
        raw = records.view(np.uint8).reshape(len(records), self.size)
        out = []
        for values, record in zip(rows, raw):
            values = list(values)
            for i, offset, size in self._raw_fields:
                values[i] = record[offset : offset + size].tobytes()
            out.append(tuple(values))
        return out


@functools.lru_cache(maxsize=256)
def _cached(format: str | bytes) -> Struct:
    return Struct(format)


def _struct(format: Any) -> Struct:
    try:
        return _cached(format)
    except TypeError:  # unhashable: let binrec report it
        return Struct(format)


def calcsize(format: str | bytes) -> int:
    return _struct(format).size


def pack(format: str | bytes, *values: Any) -> bytes:
    return _struct(format).pack(*values)


def pack_into(format: str | bytes, buffer: Any, offset: int, *values: Any) -> None:
    _struct(format).pack_into(buffer, offset, *values)


def unpack(format: str | bytes, buffer: Any) -> tuple:
    return _struct(format).unpack(buffer)


def unpack_from(format: str | bytes, /, buffer: Any, offset: int = 0) -> tuple:
    return _struct(format).unpack_from(buffer, offset)


def iter_unpack(format: str | bytes, buffer: Any) -> Iterator[tuple]:
    return _struct(format).iter_unpack(buffer)
