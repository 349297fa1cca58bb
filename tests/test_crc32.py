"""binrec._crc32: CRC-32 pieces and their combination, with zlib.crc32 of the
concatenated bytes as the oracle."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binrec._crc32 import crc32, crc32_combine, crc32_each


def random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("la,lb", [(0, 5), (5, 0), (1, 1), (100, 3 << 20), (12345, 67890)])
def test_combine_gives_the_crc_of_the_concatenation(la, lb):
    a, b = random_bytes(la, la + lb), random_bytes(lb, la + lb + 1)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), lb) == zlib.crc32(a + b)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.binary(max_size=600))
def test_combine_gives_the_crc_of_the_concatenation_for_any_bytes(a, b):
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_folding_pieces_from_zero_gives_the_crc_of_the_whole():
    # how CheckpointStore.load checksums a buffer read in pieces: start from
    # the CRC of nothing (0) and combine each piece's CRC in order
    data = random_bytes(10_000, 7)
    cuts = [0, 1, 1, 4096, 4097, 9000, 10_000]  # an empty piece, one byte, unequal sizes
    crc = 0
    for start, end in zip(cuts, cuts[1:]):
        crc = crc32_combine(crc, zlib.crc32(data[start:end]), end - start)
    assert crc == zlib.crc32(data)


def test_crc32_is_zlibs():
    data = random_bytes(1000, 3)
    assert crc32(memoryview(data)) == zlib.crc32(data)


@pytest.mark.parametrize("sizes", [[0, 10, 1000], [9 << 20, 9 << 20, 5]])  # the second set goes over 16 MiB: threads
def test_crc32_each_gives_each_views_crc_in_order(sizes):
    blobs = [random_bytes(n, i) for i, n in enumerate(sizes)]
    assert crc32_each([memoryview(b) for b in blobs]) == [zlib.crc32(b) for b in blobs]
