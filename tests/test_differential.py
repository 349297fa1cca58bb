"""Compiled kernels against the Python kernels, byte for byte, on random
formats and random (garbage) bytes: '?' bytes other than 0/1, Pascal length
bytes past the field, NaN payloads in e/f/d.  Also threads and fuzzing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binrec import Error, Struct, _backend

from tests_support import formats

compiled = _backend.compiled_kernels
python = _backend.python_kernels

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def need_compiled(request):
    from conftest import require_compiled

    if compiled is None:
        if require_compiled(request.config):
            pytest.fail("the compiled backend binrec._codec is missing but was required")
        pytest.skip("compiled backend binrec._codec not built")


def with_kernels(kernels, fn):
    saved = _backend.kernels
    _backend.kernels = kernels
    try:
        return fn()
    finally:
        _backend.kernels = saved


@SETTINGS
@given(formats(extra="FD"), st.data())
def test_unpack_compiled_equals_python_on_garbage(fs, data):
    fmt, s = fs
    n = data.draw(st.integers(0, 40))
    raw = data.draw(st.binary(min_size=n * s.size, max_size=n * s.size))
    a = with_kernels(compiled, lambda: s.unpack(raw))
    b = with_kernels(python, lambda: s.unpack(raw))
    assert a.tobytes() == b.tobytes()  # padding, bools, NaN payloads: identical
    ca = with_kernels(compiled, lambda: s.unpack_columns(raw))
    cb = with_kernels(python, lambda: s.unpack_columns(raw))
    for name in s.names:
        assert ca[name].dtype == cb[name].dtype
        assert ca[name].tobytes() == cb[name].tobytes(), name


@SETTINGS
@given(formats(extra="FD"), st.data())
def test_pack_compiled_equals_python_on_garbage_arrays(fs, data):
    """A native array made of random bytes (bool bytes like 7, NaNs with
    payloads, strings without NUL) packs to the same bytes either way."""
    fmt, s = fs
    n = data.draw(st.integers(0, 40))
    raw = data.draw(st.binary(min_size=n * s.size, max_size=n * s.size))
    arr = np.frombuffer(raw, dtype=s.dtype).copy()
    a = with_kernels(compiled, lambda: s.pack(arr))
    b = with_kernels(python, lambda: s.pack(arr))
    assert a == b


@pytest.mark.parametrize("threads", [2, 3, 0])
def test_threads_give_the_same_result(threads):
    s = Struct(">I10sf?e", "id name temp ok half")
    rng = np.random.default_rng(3)
    n = 200_003
    raw = rng.integers(0, 256, n * s.size, dtype=np.uint8).tobytes()
    one = with_kernels(compiled, lambda: s.unpack(raw))
    many = with_kernels(compiled, lambda: s.unpack(raw, threads=threads))
    assert one.tobytes() == many.tobytes()
    cols1 = with_kernels(compiled, lambda: s.unpack_columns(raw))
    colsn = with_kernels(compiled, lambda: s.unpack_columns(raw, threads=threads))
    for name in s.names:
        assert cols1[name].tobytes() == colsn[name].tobytes()
    assert with_kernels(compiled, lambda: s.pack(one, threads=threads)) == with_kernels(python, lambda: s.pack(one))


def test_negative_threads_is_an_error():
    with pytest.raises(Error, match="threads"):
        Struct("<i").unpack(b"\x00" * 4, threads=-1)


@SETTINGS
@given(st.binary(max_size=64), st.integers(-5, 70), st.one_of(st.none(), st.integers(-3, 20)))
def test_fuzz_offsets_and_counts_never_crash(raw, offset, count):
    s = Struct("<hq?3p")
    for kernels in (compiled, python):

        def call():
            try:
                return s.unpack(raw, offset=offset, count=count).tobytes()
            except Error:
                return "error"

        result = with_kernels(kernels, call)
        if kernels is compiled:
            first = result
    assert first == result
