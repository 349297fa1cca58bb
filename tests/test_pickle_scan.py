"""The compiled pickle opcode scan against its specification.

``binrec._pickle_scan.scan`` (pure Python) is the specification;
``binrec._kernels_c.scan_pickle`` must give the same outcome on every input:
the same ``Scan`` fields, or the same exception class, message, position
and ``partial`` scan.  The inputs: the malicious corpus, pickles of real
objects made by CPython's picklers (C and pure Python, protocols 0-5, with
frames, memo, numpy arrays, out-of-band buffers), hypothesis-made objects,
hand-made opcode sequences for each rarely taken path, and random, truncated
and mutated bytes, read from bytes, from memoryviews and from streams.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import fractions
import functools
import io
import pathlib
import pickle
import pickletools
import random
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binrec import _backend, _pickle_scan

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.pkl"))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def need_compiled(request):
    from conftest import require_compiled

    if _backend.compiled_kernels is None:
        if require_compiled(request.config):
            pytest.fail("the compiled backend binrec._kernels_c is missing but was required")
        pytest.skip("compiled backend binrec._kernels_c not built")


def compiled_scan(*args, **kwargs):
    return _backend.compiled_kernels.scan_pickle(*args, **kwargs)


def _fields(scan):
    return {
        "end": scan.end,
        "protocol": scan.protocol,
        "globals": list(scan.globals),
        "counts": list(scan.counts),
        "mutated_calls": set(scan.mutated_calls),
        "refusals": [(type(r), str(r), r.pos, r.opcode) for r in scan.refusals],
    }


def outcome(scan_fn, data, start=0, chunk=None, collect=False):
    """What one scan gives: its fields, or its exception in full."""
    more = None
    if chunk is not None:  # a stream: the scan starts from nothing and reads on
        more = functools.partial(io.BytesIO(bytes(data)[start:]).read, chunk)
        data, start = b"", 0
    try:
        return ("scan", _fields(scan_fn(data, start, more, collect=collect)))
    except pickle.UnpicklingError as exc:
        partial = getattr(exc, "partial", None)
        return (
            "raised",
            type(exc),
            str(exc),
            getattr(exc, "pos", None),
            getattr(exc, "opcode", None),
            None if partial is None else _fields(partial),
        )


def assert_same(data, start=0, chunk=None, collect=False):
    expected = outcome(_pickle_scan.scan, data, start, chunk, collect)
    got = outcome(compiled_scan, data, start, chunk, collect)
    assert got == expected
    return expected


def assert_same_every_way(data):
    """Bytes, bytearray, memoryview, streams of 1 and 7 bytes per read; collect on and off."""
    for collect in (False, True):
        first = assert_same(data, collect=collect)
        assert_same(bytearray(data), collect=collect)
        assert_same(memoryview(data), collect=collect)
        for chunk in (1, 7, 1 << 16):
            assert_same(data, chunk=chunk, collect=collect)
    return first


def all_pickles(data):
    """Scan every pickle of ``data`` in turn, as ``inspect`` does."""
    pos = 0
    while pos < len(data):
        result = assert_same(data, pos, collect=True)
        assert_same(data, pos, chunk=5)
        if result[0] != "scan":
            return
        pos = result[1]["end"]


# -- the corpus -------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_file_scans_the_same(path):
    data = path.read_bytes()
    assert_same_every_way(data)
    all_pickles(data)


def test_corpus_is_there():
    assert len(CORPUS) >= 40  # the oracle above is only as good as its inputs


# -- pickles of real objects -------------------------------------------------------


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Plain:
    def __init__(self, x):
        self.x = x
        self.when = datetime.date(2024, 2, 29)


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1
        self.b = [1, 2]

    def __getstate__(self):  # (dict state, slot state): BUILD with a slot-state tuple, at every protocol
        return (None, {"a": self.a, "b": self.b})


def _recursive():
    a = [1, 2]
    a.append(a)
    d = {"self": None}
    d["self"] = d
    return [a, d, a]


REAL_OBJECTS = {
    "datetimes": [datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=i) for i in range(300)],
    "date_time_tz": (
        datetime.date(2020, 5, 17),
        datetime.time(12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
        datetime.timedelta(days=-3, microseconds=7),
    ),
    "numbers": [decimal.Decimal("1.10"), fractions.Fraction(1, 3), 2**200, -(2**70), 1.5, float("nan"), 3j],
    "uuid_path": [uuid.UUID(int=12345), pathlib.PurePosixPath("/a/b"), pathlib.PureWindowsPath("c:/x")],
    "collections": [
        collections.OrderedDict(a=1, b=2),
        collections.defaultdict(list, {"k": [1]}),
        collections.Counter("abracadabra"),
        collections.deque([1, 2, 3], maxlen=5),
    ],
    "nested": {"a": [{"b": (1, 2, {3, 4}), "c": frozenset({"x"})}], "d": bytearray(b"xy"), "e": b"\x00" * 300},
    "strings": ["", "é", "\U0001f600", "a\nb", "x" * 70000, b"y" * 70000],
    "shared": (lambda x: [x, x, (x, x)])([1, 2]),
    "recursive": _recursive(),
    "numpy_arrays": [
        np.arange(12, dtype="<i4").reshape(3, 4),
        np.asfortranarray(np.ones((3, 2), dtype=">f8")),
        np.array(5.0),
        np.zeros(3, dtype=[("a", "<u2"), ("b", "S3")]),
        np.array(["x", "yy"]),
        np.array([1, "a", None], dtype=object),
    ],
    "numpy_scalars_dtypes": [np.float32(1.5), np.int64(-3), np.bool_(True), np.dtype("f8"), np.dtype([("x", "i2")])],
    "numpy_big": np.random.default_rng(0).normal(size=20000),
    "enum_members": [Color.RED, Color.GREEN, Color.RED],
    "instances": [Plain(1), Plain([2]), Slotted()],
    "many_small": [{"id": i, "v": i / 7, "s": str(i)} for i in range(2000)],
}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("name", sorted(REAL_OBJECTS))
def test_real_object_pickles_scan_the_same(name, protocol):
    # oracle: the specification, on what CPython's C pickler writes
    data = pickle.dumps(REAL_OBJECTS[name], protocol=protocol)
    kind, fields = assert_same_every_way(data)
    assert kind == "scan" and fields["end"] == len(data)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("name", ["datetimes", "nested", "recursive", "instances", "many_small", "strings"])
def test_pure_python_pickler_and_optimized_pickles_scan_the_same(name, protocol):
    # the pure-Python pickler frames differently; pickletools.optimize drops unused PUTs
    for data in (
        pickle._dumps(REAL_OBJECTS[name], protocol=protocol),
        pickletools.optimize(pickle.dumps(REAL_OBJECTS[name], protocol=protocol)),
    ):
        assert assert_same_every_way(data)[0] == "scan"


def test_mutated_calls_are_reported_by_both():
    # oracle: pickletools shows NEWOBJ on Plain followed by BUILD, and a bare REDUCE for the enum member
    data = pickle.dumps([Plain(1), Color.RED], protocol=2)
    ops = [op.name for op, _, _ in pickletools.genops(data)]
    assert "NEWOBJ" in ops and "BUILD" in ops
    kind, fields = assert_same(data)
    assert kind == "scan"
    assert fields["mutated_calls"] == {(Plain.__module__, "Plain")}


def test_out_of_band_buffers_scan_the_same():
    oob = []
    arrays = pickle.dumps(
        [np.arange(1000, dtype="f8"), np.arange(10, dtype="u1")], protocol=5, buffer_callback=oob.append
    )
    readonly = pickle.dumps([pickle.PickleBuffer(b"abc")] * 2, protocol=5, buffer_callback=oob.append)
    in_band = pickle.dumps(pickle.PickleBuffer(bytearray(b"w")), protocol=5, buffer_callback=lambda b: True)
    ops = {op.name for data in (arrays, readonly) for op, _, _ in pickletools.genops(data)}
    assert {"NEXT_BUFFER", "READONLY_BUFFER"} <= ops  # oracle: pickletools
    for data in (arrays, readonly, in_band):
        assert assert_same_every_way(data)[0] == "scan"


def test_several_pickles_in_one_buffer_scan_the_same():
    data = b"".join(pickle.dumps(obj, protocol=p) for p, obj in enumerate(REAL_OBJECTS.values()) if p <= 5)
    all_pickles(data)


# -- hand-made opcode sequences: each rarely taken path ----------------------------------

CRAFTED = {
    "memo_index_far_beyond": b"\x80\x02Nr\xff\xff\xff\x7fj\xff\xff\xff\x7f\x86.",
    "decimal_put_get": b"(I1\np0\ng0\ng0\nt.",
    "decimal_put_19_digits": b"I1\np1234567890123456789\ng1234567890123456789\n\x86.",
    "decimal_put_not_digits": b"I1\np-1\n.",
    "decimal_put_empty": b"I1\np\n.",
    "decimal_put_slash": b"I1\np1/\n.",
    "decimal_get_colon": b"I1\np1\ng1:\n.",
    "get_missing": b"\x80\x02h\x05.",
    "stack_global_binunicode8": b"\x80\x04\x8d\x08\x00\x00\x00\x00\x00\x00\x00datetimeX\x04\x00\x00\x00date\x93)R.",
    "stack_global_unicode_line": b"\x80\x04Vdatetime\nVda\\u0074e\n\x93).",
    "stack_global_bad_unicode_escape": b"\x80\x04Vdatetime\nV\\u00\n\x93.",
    "stack_global_string_quoted": b"\x80\x04S'datetime'\nS\"date\"\n\x93.",
    "stack_global_string_escaped": b"\x80\x04S'date\\x74ime'\nS'date'\n\x93.",
    "stack_global_binstring": b"\x80\x04T\x08\x00\x00\x00datetimeU\x04date\x93.",
    "stack_global_nonascii_binstring": b"\x80\x04U\x02\xc3\xa9U\x04date\x93.",
    "stack_global_int_name": b"\x80\x04K\x01\x8c\x04date\x93.",
    "stack_global_surrogate": b"\x80\x04\x8c\x03\xed\xa0\x80\x8c\x01x\x93.",
    "stack_global_bad_utf8": b"\x80\x04\x8c\x01\xff\x8c\x01x\x93.",
    "stack_global_via_memo": b"\x80\x04\x8c\x08datetime\x94\x8c\x04date\x94h\x00h\x01\x93.",
    "global_nonutf8_line": b"c\xff\xfemod\nna\xffme\n.",
    "build_on_global": b"\x80\x02cfractions\nFraction\nN}X\x08\x00\x00\x00__repr__cbuiltins\nstr\ns\x86b.",
    "build_on_global_via_dup": b"\x80\x02cdatetime\ndate\n2}b.",
    "append_on_global": b"\x80\x02ccollections\nOrderedDict\nNa.",
    "setitems_on_global_memo": b"\x80\x02cx\ny\nq\x00h\x00(K\x01K\x02u0.",
    "build_on_call_result": b"\x80\x02cx\ny\n)R}b.",
    "build_on_call_of_call": b"\x80\x02cx\ny\n)R)R}b.",
    "inst_then_build": b"(ix\ny\n}b.",
    "obj_then_build": b"(cx\ny\no}b.",
    "obj_without_class": b"(o.",
    "obj_with_string_class": b"(S'a'\no}b.",
    "newobj_ex": b"\x80\x04cx\ny\n)}\x92}b.",
    "ext": b"\x80\x02\x82\x01.",
    "ext_collected_then_build": b"\x80\x02\x82\x01}b\x83\x01\x00\x84\x01\x00\x00\x00\x86.",
    "persid": b"Pid\n.",
    "binpersid": b"\x80\x02K\x01Q.",
    "binpersid_underflow": b"\x80\x02Q.",
    "proto_6": b"\x80\x06N.",
    "proto_twice": b"\x80\x02\x80\x04N.",
    "negative_binstring": b"T\xff\xff\xff\xffabc.",
    "negative_long4": b"\x8b\xff\xff\xff\xff.",
    "huge_binbytes8": b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff.",
    "huge_frame": b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fN.",
    "frame_in_frame": b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x95\x01\x00\x00\x00\x00\x00\x00\x00N.",
    "frame_cut": b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00\x8c\x03abc.",
    "frame_past_stop": b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00N.N",
    "frame_exact": b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00N.",
    "pop_mark_via_pop": b"(0N.",
    "pop_underflow": b"0N.",
    "pop_mark_without_mark": b"1N.",
    "dup_underflow": b"(2.",
    "setitem_underflow": b"}(K\x01s.",
    "tuple3_underflow": b"(K\x01K\x02\x87.",
    "readonly_buffer_underflow": b"\x80\x05\x98.",
    "stop_underflow": b"(.",
    "appends_without_mark": b"]e.",
    "appends_on_nothing": b"(e.",
    "list_without_mark": b"l.",
    "invalid_opcode": b"\x80\x02\xff.",
    "empty": b"",
    "no_stop": b"\x80\x02N",
    "line_without_newline": b"I12",
    "long1_truncated": b"\x8a\x05\x01",
    "after_stop": b"N.garbage",
    "memoize_on_empty": b"\x94N.",
    "deep_marks": b"(" * 5000 + b"N" + b"t" * 5000 + b".",
    "long_stack": b"]" + b"N" * 20000 + b"(" + b"N" * 10 + b"e" + b"0" * 20000 + b".",
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_opcodes_scan_the_same(name):
    assert_same_every_way(CRAFTED[name])


def test_start_past_the_end_and_odd_starts():
    data = pickle.dumps([1, 2], protocol=4)
    for start in (0, 2, len(data) - 1, len(data), len(data) + 10, 2**70):
        assert_same(data, start)


# -- random, truncated and mutated bytes ----------------------------------------------


def _seeds():
    seeds = [p.read_bytes() for p in CORPUS[::4]]
    for name in ("date_time_tz", "nested", "instances", "enum_members", "numpy_scalars_dtypes"):
        seeds.extend(pickle.dumps(REAL_OBJECTS[name], protocol=p) for p in (0, 2, 5))
    return seeds


@pytest.mark.parametrize("index", range(len(_seeds())))
def test_truncated_pickles_scan_the_same(index):
    data = _seeds()[index]
    for cut in range(0, len(data), max(1, len(data) // 200)):
        assert_same(data[:cut], collect=True)
        assert_same(data[:cut], chunk=3)


@pytest.mark.parametrize("index", range(len(_seeds())))
def test_mutated_pickles_scan_the_same(index):
    data = _seeds()[index]
    rng = random.Random(index)
    for _ in range(300):
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            i = rng.randrange(len(b))
            if kind < 0.6:
                b[i] = rng.randrange(256)
            elif kind < 0.8:
                del b[i]
            else:
                b.insert(i, rng.randrange(256))
        assert_same(bytes(b), collect=rng.random() < 0.5)
        if rng.random() < 0.2:
            assert_same(bytes(b), chunk=rng.randint(1, 9))


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_scan_the_same(data):
    assert_same(data)
    assert_same(data, collect=True)
    assert_same(data, chunk=4)


OPCODE_BYTES = st.sampled_from(sorted(_pickle_scan.NAMES))


@SETTINGS
@given(st.lists(st.one_of(OPCODE_BYTES.map(lambda c: bytes([c])), st.binary(min_size=1, max_size=4)), max_size=60))
def test_random_opcode_soup_scans_the_same(parts):
    # mostly valid opcodes with random arguments: reaches deeper than random bytes
    data = b"\x80\x04" + b"".join(parts) + b"."
    assert_same(data, collect=True)
    assert_same(data, chunk=2)


# -- hypothesis-made objects ------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.datetimes(),
    st.dates(),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.fractions(),
    st.uuids(),
    st.sampled_from([Color.RED, Color.GREEN]),
)
OBJECTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=5),
        st.frozensets(st.integers(), max_size=5),
        st.builds(collections.OrderedDict, st.dictionaries(st.integers(), inner, max_size=4)),
        inner.map(Plain),
    ),
    max_leaves=30,
)


@SETTINGS
@given(OBJECTS, st.integers(0, pickle.HIGHEST_PROTOCOL), st.booleans())
def test_hypothesis_objects_scan_the_same(obj, protocol, shared):
    if shared:
        obj = [obj, obj]  # memo references
    data = pickle.dumps(obj, protocol=protocol)
    kind, fields = assert_same(data)
    assert kind == "scan"
    assert_same(data, chunk=3)


# -- the compiled scan is really used, and really compiled -----------------------------------


@pytest.mark.parametrize("name", sorted(REAL_OBJECTS))
def test_compiled_scan_answers_clean_pickles_without_the_specification(name, monkeypatch):
    # a compiled scan that always handed over to the spec would pass every
    # equality test above at the spec's speed: forbid the spec and look
    data = pickle.dumps(REAL_OBJECTS[name], protocol=5)
    expected = _fields(_pickle_scan.scan(data))

    def spec_called(*args, **kwargs):
        raise AssertionError("the compiled scan handed a clean pickle to the specification")

    monkeypatch.setattr(_pickle_scan, "scan", spec_called)
    assert _fields(compiled_scan(data)) == expected
    assert _fields(compiled_scan(b"", 0, functools.partial(io.BytesIO(data).read, 1000))) == expected


def test_backend_switch_selects_the_scan(backend, monkeypatch):
    calls = []
    spec = _pickle_scan.scan
    monkeypatch.setattr(_pickle_scan, "scan", lambda *a, **k: calls.append(a) or spec(*a, **k))
    data = pickle.dumps(datetime.date(2024, 1, 2), protocol=5)
    assert _fields(_backend.scan_pickle(data)) == _fields(spec(data))
    assert len(calls) == (1 if backend == "python" else 0)
