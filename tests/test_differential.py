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
            pytest.fail("the compiled backend binrec._kernels_c is missing but was required")
        pytest.skip("compiled backend binrec._kernels_c not built")


def with_kernels(kernels, fn):
    with _backend.use(kernels):
        return fn()


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


def random_column(f, n: int, data) -> np.ndarray:
    """A column of a dtype the fused pack path handles, values sometimes out
    of the field's range."""
    kind = f.kind
    if kind == "int":
        dt = data.draw(st.sampled_from([np.int64, np.uint64, f.native, np.int16, np.float64]))
        info_lo, info_hi = (np.iinfo(dt).min, np.iinfo(dt).max) if np.dtype(dt).kind in "iu" else (-1e6, 1e6)
        vals = data.draw(
            st.lists(st.integers(int(max(info_lo, -(2**63))), int(min(info_hi, 2**64 - 1))), min_size=n, max_size=n)
        )
        try:
            return np.array(vals, dtype=dt)
        except OverflowError:
            return np.zeros(n, dtype=dt)
    if kind == "float":
        dt = data.draw(st.sampled_from([np.float64, f.native, np.int64]))
        vals = data.draw(
            st.lists(
                st.floats(allow_nan=True, width=64) if dt == np.float64 else st.integers(-1000, 1000),
                min_size=n,
                max_size=n,
            )
        )
        return np.array(vals, dtype=dt)
    if kind == "complex":
        return np.array(
            data.draw(st.lists(st.complex_numbers(max_magnitude=1e300), min_size=n, max_size=n)), dtype=np.complex128
        )
    if kind == "bool":
        return np.array(
            data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)),
            dtype=data.draw(st.sampled_from([np.int8, bool])),
        )
    width = max(f.native.itemsize, 1)
    vals = data.draw(
        st.lists(st.binary(min_size=1 if kind == "char" else 0, max_size=width + 2), min_size=n, max_size=n)
    )
    return np.array(vals, dtype=f"S{data.draw(st.sampled_from([width, width + 2]))}")


@SETTINGS
@given(formats(extra="FD"), st.data())
def test_fused_column_pack_equals_the_python_path(fs, data):
    fmt, s = fs
    if any(f.code == "p" for f in s.layout.fields):
        return
    n = data.draw(st.integers(0, 30))
    cols = {f.name: random_column(f, n, data) for f in s.layout.fields}

    def pack_or_error():
        try:
            return s.pack(cols)
        except Error as exc:
            return f"error: {exc}"

    fast = with_kernels(compiled, pack_or_error)
    slow = with_kernels(python, pack_or_error)
    assert fast == slow
