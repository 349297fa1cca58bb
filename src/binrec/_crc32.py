"""CRC-32 (zlib's) of byte sections, computed piecewise and in parallel.

Python's :mod:`zlib` does not expose ``crc32_combine``, which turns the
CRCs of two pieces into the CRC of their concatenation: it is written here
in GF(2) arithmetic, so that pieces of one buffer checksummed apart (on
several threads, say) give the buffer's CRC.  The checkpoint store uses
:func:`crc32_each` for its sections on save; its loader sums each section's
pieces in order (zlib's running CRC) and needs no combining.  Pure
functions, no I/O.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["crc32", "crc32_combine", "crc32_each"]

#: Below this many bytes in all, threads cost more than they save.
_PARALLEL_FROM = 16 << 20


def crc32(view: Any) -> int:
    """zlib's CRC-32 of a bytes-like object, as an unsigned 32-bit int."""
    return zlib.crc32(view) & 0xFFFFFFFF


def _gf2_times(mat: tuple[int, ...], vec: int) -> int:
    """Multiply a 32x32 GF(2) matrix (columns as ints) by a vector."""
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_compose(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The operator "apply b, then a"."""
    return tuple(_gf2_times(a, col) for col in b)


@functools.lru_cache(maxsize=64)
def _zeros_operator(nbytes: int) -> tuple[int, ...]:
    """The linear map taking crc(X) to crc(X followed by nbytes zero bytes),
    without the pre/post conditioning, built by repeated squaring."""
    one_bit = (0xEDB88320,) + tuple(1 << (n - 1) for n in range(1, 32))
    step = one_bit
    for _ in range(3):  # 8 zero bits = one zero byte
        step = _gf2_compose(step, step)
    result = tuple(1 << n for n in range(32))  # identity
    while nbytes:
        if nbytes & 1:
            result = _gf2_compose(step, result)
        nbytes >>= 1
        if nbytes:
            step = _gf2_compose(step, step)
    return result


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B) (zlib's ``crc32_combine``).

    >>> import zlib
    >>> a, b = b"binrec ", b"checkpoint"
    >>> crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    True
    """
    if len2 <= 0:
        return crc1
    return (_gf2_times(_zeros_operator(len2), crc1) ^ crc2) & 0xFFFFFFFF


def crc32_each(views: Sequence[memoryview]) -> list[int]:
    """CRC-32 of each view; large ones in parallel (zlib releases the GIL)."""
    if sum(v.nbytes for v in views) < _PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        return [crc32(v) for v in views]
    with ThreadPoolExecutor(max_workers=min(len(views), os.cpu_count() or 2)) as pool:
        return list(pool.map(crc32, views))
