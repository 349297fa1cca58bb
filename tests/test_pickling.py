"""binrec.pickling: object streams, versioned files, restricted loading,
inspection.  Oracles: plain pickle, real files, real pipes."""

from __future__ import annotations

import collections
import copyreg
import datetime
import decimal
import fractions
import importlib
import io
import json
import os
import pathlib
import pickle
import pickletools
import re
import subprocess
import sys
import sysconfig
import threading
import traceback
import uuid
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binrec import _pickle_policy, _pickle_restricted, pickling
from binrec.pickling import (
    ALL,
    ForbiddenGlobal,
    ForbiddenOpcode,
    LimitExceeded,
    TruncatedError,
    VersionError,
    dump_many,
    inspect,
    load_many,
    load_versioned,
    safe_load,
    safe_loads,
    save_versioned,
)

# -- streams -------------------------------------------------------------------


def test_dump_many_load_many_round_trip(tmp_path):
    objs = [{"id": i, "v": [i] * i} for i in range(50)]
    path = tmp_path / "s.pkl"
    assert dump_many(objs, path) == 50
    assert list(load_many(path)) == objs
    # plain pickle reads the same stream object by object
    with open(path, "rb") as fh:
        assert [pickle.load(fh) for _ in range(50)] == objs


def test_load_many_is_lazy():
    buf = io.BytesIO()
    dump_many(range(3), buf)
    buf.write(b"garbage that is not a pickle")
    buf.seek(0)
    it = load_many(buf)
    assert next(it) == 0 and next(it) == 1 and next(it) == 2
    with pytest.raises(TruncatedError):
        next(it)


def test_append_mode_and_default_protocol(tmp_path):
    path = tmp_path / "a.pkl"
    dump_many([1], path)
    dump_many([2, 3], path, append=True)
    assert list(load_many(path)) == [1, 2, 3]
    assert inspect(path).protocol == pickle.HIGHEST_PROTOCOL


def test_empty_stream_yields_nothing(tmp_path):
    path = tmp_path / "e.pkl"
    path.write_bytes(b"")
    assert list(load_many(path)) == []


def test_truncation_at_every_byte_of_the_last_object():
    objs = [{"a": 1}, ["x" * 40, 2.5], {"last": list(range(30)), "s": "tail"}]
    buf = io.BytesIO()
    dump_many(objs, buf)
    data = buf.getvalue()
    start_last = len(pickle.dumps(objs[0], protocol=pickle.HIGHEST_PROTOCOL)) + len(
        pickle.dumps(objs[1], protocol=pickle.HIGHEST_PROTOCOL)
    )
    assert list(load_many(io.BytesIO(data))) == objs
    for cut in range(start_last, len(data)):
        got = []
        stream = io.BytesIO(data[:cut])
        if cut == start_last:
            assert list(load_many(stream)) == objs[:2]  # a clean end of file
            continue
        with pytest.raises(TruncatedError) as info:
            for obj in load_many(stream):
                got.append(obj)
        assert got == objs[:2], cut
        assert info.value.offset == start_last and info.value.index == 2
        assert f"byte offset {start_last}" in str(info.value)


def test_corrupt_byte_in_last_object_is_reported():
    buf = io.BytesIO()
    dump_many([1, {"k": "v"}], buf)
    data = bytearray(buf.getvalue())
    data[-3] = 0xFF  # an unknown opcode in the middle of the last pickle
    with pytest.raises(TruncatedError):
        list(load_many(io.BytesIO(bytes(data))))


def test_load_many_from_a_pipe():
    r, w = os.pipe()
    objs = [{"n": i, "blob": bytes(5000)} for i in range(20)]

    def writer():
        with os.fdopen(w, "wb") as fh:
            dump_many(objs, fh)

    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(r, "rb", buffering=0) as fh:
        assert list(load_many(fh)) == objs
    t.join()


def test_load_many_restricted_refuses_a_forbidden_object():
    buf = io.BytesIO()
    dump_many([1, os.system], buf)
    buf.seek(0)
    it = load_many(buf, allow=None)
    assert next(it) == 1
    with pytest.raises(ForbiddenGlobal):
        next(it)


PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes()
    | st.decimals(allow_nan=False)
    | st.fractions(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=5), children, max_size=5)
        | st.tuples(children, children)
        | st.frozensets(st.integers(), max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(PLAIN, max_size=6), st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_property_round_trips(objs, protocol):
    buf = io.BytesIO()
    dump_many(objs, buf, protocol=protocol)
    buf.seek(0)
    assert list(load_many(buf)) == objs
    for obj in objs:
        assert safe_loads(pickle.dumps(obj, protocol=protocol)) == obj


# -- the default allowlist admits plain data and numpy -------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_default_allowlist_loads_common_types(protocol):
    obj = {
        "dt": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
        "d": datetime.date(2024, 1, 1),
        "td": datetime.timedelta(seconds=5),
        "t": datetime.time(1, 2),
        "dec": decimal.Decimal("1.10"),
        "frac": fractions.Fraction(1, 3),
        "uuid": uuid.UUID(int=12345),
        "od": collections.OrderedDict(a=1),
        "dq": collections.deque([1, 2]),
        "dd": collections.defaultdict(list, {"x": [1]}),
        "ctr": collections.Counter("hello"),
        "path": pathlib.PurePosixPath("/a/b"),
        "wpath": pathlib.PureWindowsPath("c:/x"),
        "bytes": b"\x00\xff" * 3,
        "ba": bytearray(b"abc"),
        "set": {1, 2},
        "fs": frozenset({3}),
        "cx": 1 + 2j,
        "rng": range(3),
        "sl": slice(1, 5, 2),
    }
    assert safe_loads(pickle.dumps(obj, protocol=protocol)) == obj


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_default_allowlist_loads_numpy(protocol):
    arrs = [
        np.arange(12, dtype=">i4").reshape(3, 4),
        np.zeros(3, dtype=[("a", "<f8"), ("b", "S3")]),
        np.array([1.5], dtype=np.float16),
        np.asfortranarray(np.ones((2, 3))),
    ]
    for a in arrs:
        data = pickle.dumps(a, protocol=protocol)
        expected = pickle.loads(data)  # the oracle (numpy drops '>' below protocol 3)
        b = safe_loads(data)
        assert (
            b.dtype == expected.dtype and np.array_equal(b, a) and b.flags.f_contiguous == expected.flags.f_contiguous
        )
    for scalar in (np.float64(2.5), np.int8(-3), np.dtype("<u2"), np.bool_(True)):
        assert safe_loads(pickle.dumps(scalar, protocol=protocol)) == scalar


def test_object_arrays_inner_objects_follow_the_policy():
    ok = np.array([{"a": 1}, datetime.date(2020, 1, 1)], dtype=object)
    assert safe_loads(pickle.dumps(ok)).tolist() == ok.tolist()
    bad = np.array([os.system], dtype=object)
    with pytest.raises(ForbiddenGlobal):
        safe_loads(pickle.dumps(bad))


# -- refusals -------------------------------------------------------------------


class Call:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def resolve(dotted: str):
    """The object named ``dotted``, or None where this platform lacks it
    (posix, pty and _posixsubprocess do not exist on Windows)."""
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def marker_payloads(marker: str):
    """(description, callable, args): each would create ``marker`` if run."""
    inner = pickle.dumps(Call(os.system, f"touch {marker}"))
    src = marker + ".py"
    with open(src, "w") as fh:
        fh.write(f"open({marker!r}, 'w').close()\n")
    return [
        ("os.system", os.system, (f"touch {marker}",)),
        ("subprocess.call", __import__("subprocess").call, (["touch", marker],)),
        ("subprocess.Popen", __import__("subprocess").Popen, (["touch", marker],)),
        ("subprocess.check_output", __import__("subprocess").check_output, (["touch", marker],)),
        ("pty.spawn", resolve("pty.spawn"), (["touch", marker],)),
        ("builtins.exec", exec, (f"open({marker!r}, 'w').close()",)),
        ("builtins.eval", eval, (f"open({marker!r}, 'w').close()",)),
        ("builtins.open", open, (marker, "w")),
        ("io.open", io.open, (marker, "w")),
        ("codecs.open", resolve("codecs.open"), (marker, "w")),
        ("shutil.copyfile", resolve("shutil.copyfile"), (src, marker)),
        ("sqlite3.connect", resolve("sqlite3.connect"), (marker,)),
        ("tarfile.open", resolve("tarfile.open"), (marker, "w")),
        ("zipfile.ZipFile", resolve("zipfile.ZipFile"), (marker, "w")),
        ("py_compile.compile", resolve("py_compile.compile"), (src, marker)),
        ("pickle.loads", pickle.loads, (inner,)),
        ("_pickle.loads", resolve("_pickle.loads"), (inner,)),
        ("runpy.run_path", resolve("runpy.run_path"), (src,)),
        ("timeit.timeit", resolve("timeit.timeit"), (f"open({marker!r}, 'w').close()",)),
        ("cProfile.run", resolve("cProfile.run"), (f"open({marker!r}, 'w').close()",)),
        ("profile.run", resolve("profile.run"), (f"open({marker!r}, 'w').close()",)),
        ("pydoc.pipepager", resolve("pydoc.pipepager"), ("x", f"touch {marker}")),
        ("code.InteractiveInterpreter", resolve("code.InteractiveInterpreter"), ()),
        ("multiprocessing.Process", resolve("multiprocessing.Process"), ()),
        ("logging.config.listen", resolve("logging.config.listen"), ()),
        ("marshal.loads", resolve("marshal.loads"), (b"N",)),
        ("sys.exit", sys.exit, (3,)),
        ("socket.socket", resolve("socket.socket"), ()),
        ("ctypes.CDLL", resolve("ctypes.CDLL"), (None,)),
        ("importlib.import_module", importlib.import_module, ("os",)),
        ("pkgutil.resolve_name", resolve("pkgutil.resolve_name"), ("os.system",)),
        ("types.FunctionType", resolve("types.FunctionType"), ()),
        ("inspect.getsource", resolve("inspect.getsource"), (os,)),
        ("functools.partial", resolve("functools.partial"), (os.system, f"touch {marker}")),
        ("operator.attrgetter", resolve("operator.attrgetter"), ("system",)),
        ("operator.itemgetter", resolve("operator.itemgetter"), (0,)),
        ("operator.methodcaller", resolve("operator.methodcaller"), ("system", f"touch {marker}")),
        ("builtins.getattr", getattr, (os, "system")),
        ("builtins.setattr", setattr, (os, "x", 1)),
        ("builtins.compile", compile, ("1", "x", "eval")),
        ("builtins.__import__", __import__, ("os",)),
        ("builtins.globals", globals, ()),
        ("builtins.vars", vars, ()),
        ("trace.Trace", resolve("trace.Trace"), ()),
        (
            "doctest.run_docstring_examples",
            resolve("doctest.run_docstring_examples"),
            (f">>> open({marker!r}, 'w').close()", {}),
        ),
        ("pdb.Pdb", resolve("pdb.Pdb"), ()),
        ("http.server.test", resolve("http.server.test"), ()),
        ("urllib.request.urlopen", resolve("urllib.request.urlopen"), ("file://" + src,)),
        ("numpy.load", np.load, (src,)),
        ("numpy.testing.assert_equal", resolve("numpy.testing.assert_equal"), (1, 1)),
        ("_posixsubprocess.fork_exec", resolve("_posixsubprocess.fork_exec"), ()),
        ("posix.system", resolve("posix.system"), (f"touch {marker}",)),
    ]


def test_every_listed_escape_is_refused_with_no_side_effect(tmp_path):
    marker = str(tmp_path / "pwned")
    payloads = [p for p in marker_payloads(marker) if p[1] is not None]
    for desc, func, args in payloads:
        for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
            try:
                data = pickle.dumps(Call(func, *args), protocol=protocol)
            except (pickle.PicklingError, TypeError, AttributeError):
                # args that pickle cannot hold (a module): call with no args
                module, _, name = desc.rpartition(".")
                data = f"c{module}\n{name}\n(tR.".encode()
            with pytest.raises(ForbiddenGlobal) as info:
                safe_loads(data)
            assert info.value.module and info.value.name, desc
            assert not os.path.exists(marker), f"{desc} ran!"
    assert len(payloads) >= (50 if os.name == "posix" else 40)


def test_numpy_f2py_is_refused():
    data = b"cnumpy.f2py\ncompile\n(tR."
    with pytest.raises(ForbiddenGlobal, match="numpy.f2py"):
        safe_loads(data)


def test_the_oracle_really_runs_the_payload(tmp_path):
    """Control: plain pickle does run such payloads, so the tests above can fail."""
    marker = tmp_path / "ran"
    data = pickle.dumps(Call(exec, f"open({str(marker)!r}, 'w').close()"))
    with pytest.raises(ForbiddenGlobal, match="exec"):
        safe_loads(data)
    assert not marker.exists()
    pickle.loads(data)  # the unsafe way, on purpose
    assert marker.exists()


def test_documented_reduce_exploit_is_refused(tmp_path):
    marker = tmp_path / "doc"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(ForbiddenGlobal):
        safe_loads(pickle.dumps(Exploit()))
    assert not marker.exists()


def stack_global(module: bytes, qualname: bytes) -> bytes:
    """A protocol-4 pickle that is just STACK_GLOBAL module qualname."""
    short = lambda b: b"\x8c" + bytes([len(b)]) + b + b"\x94"  # noqa: E731  SHORT_BINUNICODE, MEMOIZE
    return b"\x80\x04" + short(module) + short(qualname) + b"\x93\x94."


def test_dotted_qualname_under_an_allowed_module_is_refused():
    # protocol 4: STACK_GLOBAL "uuid" "UUID.__init__.__globals__" -> uuid's globals dict
    data = stack_global(b"uuid", b"UUID.__init__.__globals__")
    with pytest.raises(ForbiddenGlobal, match=r"uuid\.UUID\.__init__\.__globals__"):
        safe_loads(data)
    assert pickle.loads(data) is vars(uuid)  # what it would have given


def test_extension_registry_opcodes_are_refused(tmp_path):
    marker = tmp_path / "ext"
    copyreg.add_extension("posix", "system", 0xBEEF)
    try:
        data = pickle.dumps(Call(os.system, f"touch {marker}"), protocol=2)
        assert b"\x83" in data  # EXT2
        with pytest.raises(ForbiddenOpcode, match="EXT2"):
            safe_loads(data)
    finally:
        copyreg.remove_extension("posix", "system", 0xBEEF)
    # with the registry empty again, an EXT opcode cannot resolve at all
    with pytest.raises(ForbiddenOpcode):
        safe_loads(data)
    assert not marker.exists()


def test_persistent_ids_are_refused():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "pid" if obj == "secret" else None

    buf = io.BytesIO()
    P(buf).dump(["secret"])
    with pytest.raises(ForbiddenOpcode):
        safe_loads(buf.getvalue())


def test_size_and_depth_caps():
    data = pickle.dumps(list(range(1000)))
    with pytest.raises(LimitExceeded, match="max_bytes"):
        safe_loads(data, max_bytes=100)
    nested: list = []
    for _ in range(200):
        nested = [nested]
    deep = pickle.dumps(nested)
    assert safe_loads(deep, max_depth=500) == nested
    with pytest.raises(LimitExceeded, match="max_depth"):
        safe_loads(deep, max_depth=50)


class Point:
    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return isinstance(other, Point) and other.x == self.x


def test_allow_extends_with_names_classes_and_predicates():
    data = pickle.dumps(Point(3))
    with pytest.raises(ForbiddenGlobal, match="Point"):
        safe_loads(data)
    assert safe_loads(data, allow=[f"{__name__}:Point"]) == Point(3)
    assert safe_loads(data, allow=[Point]) == Point(3)
    assert safe_loads(data, allow=Point) == Point(3)
    assert safe_loads(data, allow=[(__name__, "Point")]) == Point(3)
    assert safe_loads(data, allow=lambda m, n: n == "Point") == Point(3)
    assert safe_loads(data, allow=ALL) == Point(3)


def test_allow_can_never_admit_the_denylist():
    with pytest.raises(ValueError, match="never allowed"):
        safe_loads(pickle.dumps(1), allow=["os.system"])
    with pytest.raises(ValueError, match="reaches attributes or runs code"):
        safe_loads(pickle.dumps(1), allow=["builtins.getattr"])
    # a predicate that says yes to everything still cannot admit them
    with pytest.raises(ForbiddenGlobal, match="never allowed"):
        safe_loads(pickle.dumps(Call(os.system, "true")), allow=lambda m, n: True)


def test_safe_load_from_file_and_path(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    assert safe_load(path) == {"a": 1}
    with open(path, "rb") as fh:
        assert safe_load(fh) == {"a": 1}
    with pytest.raises(LimitExceeded):
        safe_load(path, max_bytes=3)


# -- versioned files -------------------------------------------------------------


def test_versioned_round_trip_and_migrations(tmp_path):
    path = tmp_path / "profile.pkl"
    save_versioned(path, {"name": "Ann"}, version=1)
    migrations = {1: lambda d: {**d, "age": None}, 2: lambda d: {**d, "tags": []}}
    assert load_versioned(path, current=1) == {"name": "Ann"}
    assert load_versioned(path, current=3, migrations=migrations) == {"name": "Ann", "age": None, "tags": []}
    assert pickling.read_version(path) == 1


def test_versioned_errors(tmp_path):
    path = tmp_path / "v.pkl"
    save_versioned(path, [1], version=5)
    with pytest.raises(VersionError, match="newer than the current version 3"):
        load_versioned(path, current=3)
    with pytest.raises(VersionError, match="no migration from version 6 to 7"):
        load_versioned(path, current=8, migrations={5: list, 7: list})
    other = tmp_path / "plain.pkl"
    other.write_bytes(pickle.dumps([1]))
    with pytest.raises(VersionError, match="not a binrec versioned file"):
        load_versioned(other, current=1)
    with pytest.raises(VersionError):
        save_versioned(path, [1], version=-1)


def test_versioned_save_is_atomic(tmp_path):
    path = tmp_path / "v.pkl"
    save_versioned(path, {"ok": True}, version=1)
    before = path.read_bytes()
    with pytest.raises((pickle.PicklingError, AttributeError)):
        save_versioned(path, {"bad": lambda: 1}, version=2)  # lambdas do not pickle
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.pkl"]  # no temporary left behind


def test_versioned_restricted_load(tmp_path):
    path = tmp_path / "v.pkl"
    save_versioned(path, Point(1), version=1)
    with pytest.raises(ForbiddenGlobal):
        load_versioned(path, current=1, allow=None)


# -- inspection -----------------------------------------------------------------


def test_inspect_reports_globals_without_running(tmp_path):
    marker = tmp_path / "never"
    data = pickle.dumps(Call(os.system, f"touch {marker}"))
    report = inspect(data)
    assert (os.system.__module__, "system") in report.globals
    assert not report.safe and "system" in report.verdict
    assert report.calls >= 1
    assert not marker.exists()
    ok = inspect(pickle.dumps({"a": datetime.date(2020, 1, 1)}, protocol=4))
    assert ok.safe and ok.verdict == "safe" and ok.protocol == 4
    assert ok.globals == [("datetime", "date")]
    p2 = inspect(pickle.dumps({"a": datetime.date(2020, 1, 1)}, protocol=2))
    assert p2.safe and set(p2.globals) == {("datetime", "date"), ("_codecs", "encode")}


def test_inspect_stream_and_protocol0():
    data = pickle.dumps(1, protocol=0) + pickle.dumps(collections.OrderedDict(), protocol=0)
    report = inspect(data)
    assert report.pickles == 2
    assert ("collections", "OrderedDict") in report.globals


def test_inspect_garbage_reports_an_error():
    report = inspect(b"\x80\x05not a pickle")
    assert report.error and not report.safe


def test_cli_pickle_inspect(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Call(os.system, "true")))
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps([1, 2]))
    cmd = [sys.executable, "-m", "binrec", "pickle", "inspect"]
    res = subprocess.run(cmd + [str(evil), "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    assert out["safe"] is False and any("system" in g for g in out["globals"])
    res = subprocess.run(cmd + [str(good)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "verdict:   safe" in res.stdout


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_loads_accepts_any_buffer(protocol):
    obj = {"text": "line1\nline2", "blob": b"\x00\n" * 40_000, "n": [1.5, None, True]}
    data = pickle.dumps(obj, protocol=protocol)
    for buf in (data, bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        assert safe_loads(buf) == obj


# -- BUILD and friends on a global (issue 10) ------------------------------------------------

MARK_ATTR = "__binrec_marker__"
_STATE = b"N}X" + len(MARK_ATTR).to_bytes(4, "little") + MARK_ATTR.encode() + b"K\x01s\x86"  # (None, {MARK_ATTR: 1})


def _global_op(module: str, name: str, protocol: int) -> bytes:
    """Push the global with GLOBAL (protocol < 4) or STACK_GLOBAL."""
    if protocol < 4:
        return f"c{module}\n{name}\n".encode()
    enc = [s.encode() for s in (module, name)]
    return b"".join(b"X" + len(s).to_bytes(4, "little") + s for s in enc) + b"\x93"


def _memo_round_trip(protocol: int) -> bytes:
    """Store the top of the stack in the memo, drop it, fetch it back."""
    if protocol == 0:
        return b"p7\n0g7\n"
    if protocol < 4:
        return b"q\x07" + b"0" + b"h\x07"
    return b"\x94" + b"0" + b"h\x00"


def mutation_payloads(module: str, name: str):
    """(description, pickle) pairs that each try to modify the global itself."""
    out = []
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        head = (b"\x80" + bytes([protocol])) if protocol >= 2 else b""
        g = _global_op(module, name, protocol)
        for via in ("direct", "memo", "dup"):
            push = g + (_memo_round_trip(protocol) if via == "memo" else b"2" if via == "dup" else b"")
            out.append((f"BUILD {via} p{protocol}", head + push + _STATE + b"b."))
            out.append((f"SETITEM {via} p{protocol}", head + push + b"K\x01K\x02s."))
            out.append((f"SETITEMS {via} p{protocol}", head + push + b"(K\x01K\x02u."))
            out.append((f"APPEND {via} p{protocol}", head + push + b"K\x01a."))
            out.append((f"APPENDS {via} p{protocol}", head + push + b"(K\x01e."))
            out.append((f"ADDITEMS {via} p{protocol}", head + push + b"(K\x01\x90."))
    return out


@pytest.mark.parametrize("module,name", sorted(pickling.DEFAULT_ALLOW))
def test_mutating_an_allowed_global_is_refused_before_it_runs(module, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core's old names
        obj = _pickle_restricted._resolve(*_pickle_restricted._py3_name(module, name))
    before = dict(vars(obj)) if hasattr(obj, "__dict__") else None
    for desc, data in mutation_payloads(module, name):
        with pytest.raises(ForbiddenOpcode, match="global"):
            safe_loads(data)
        with pytest.raises(ForbiddenOpcode, match="global"):
            next(load_many(io.BytesIO(data), allow=None))
        assert not hasattr(obj, MARK_ATTR), desc
        assert inspect(data).status == "unsafe", desc
    if before is not None:
        assert dict(vars(obj)) == before


def test_the_build_oracle_really_modifies_the_global():
    # oracle: plain pickle runs the payload and changes Fraction.__repr__
    # for the whole process (run in a child, so this one stays clean)
    payload = b"\x80\x02cfractions\nFraction\nN}X\x08\x00\x00\x00__repr__cbuiltins\nstr\ns\x86b."
    code = f"import pickle, fractions; pickle.loads({payload!r}); print(repr(repr(fractions.Fraction(1, 3))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "''"
    with pytest.raises(ForbiddenOpcode, match="BUILD on the global fractions.Fraction"):
        safe_loads(payload)
    assert repr(fractions.Fraction(1, 3)) == "Fraction(1, 3)"


def test_build_on_a_shared_enum_member_is_refused():
    # uuid.SafeUUID(0) returns the process-wide member SafeUUID.safe
    data = b"\x80\x02cuuid\nSafeUUID\nK\x00\x85R}X\x07\x00\x00\x00_value_K\x63sb."
    with pytest.raises(ForbiddenOpcode, match="enum uuid.SafeUUID"):
        safe_loads(data)
    assert uuid.SafeUUID.safe.value == 0
    assert inspect(data).status == "unsafe"
    # a plain member still loads: the same pickle without the BUILD, written
    # out because pickle.dumps spells a member by interpreter (by value,
    # SafeUUID(0), on 3.11.7+; getattr(SafeUUID, "safe") on 3.11.2, which the
    # loader refuses like any builtins.getattr: docs/platforms.md)
    plain = b"\x80\x02cuuid\nSafeUUID\nK\x00\x85R."
    assert pickle.loads(plain) is uuid.SafeUUID.safe  # oracle: plain pickle
    assert safe_loads(plain) is uuid.SafeUUID.safe


class Point2:
    """A plain class that pickles with NEWOBJ (or copyreg._reconstructor) + BUILD."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Point2 and (self.x, self.y) == (other.x, other.y)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_legitimate_builds_and_setitems_still_load(protocol):
    shared = [1, 2]
    objs = [
        collections.OrderedDict(a=1, b=[shared, shared]),
        collections.defaultdict(list, a=[1]),
        collections.Counter("abracadabra"),
        collections.deque([1, 2, 3]),
        {datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC), fractions.Fraction(1, 3)},
        [uuid.UUID(int=5), decimal.Decimal("1.5"), pathlib.PurePosixPath("/a/b")],
        np.arange(12).reshape(3, 4),
        np.array([{"a": 1}, None], dtype=object),
        np.dtype([("a", "<i4"), ("b", ">f8")]),
        [Point2(1, 2), Point2(3, [Point2(4, 5)])],
    ]
    for obj in objs:
        data = pickle.dumps(obj, protocol=protocol)
        got = safe_loads(data, allow=[Point2])
        expected = pickle.loads(data)  # oracle
        if isinstance(obj, np.ndarray):
            assert got.dtype == expected.dtype and got.tolist() == expected.tolist()
        else:
            assert got == expected
        assert [x for x in load_many(io.BytesIO(data + data), allow=[Point2])].__len__() == 2
        assert inspect(data).status in ("safe", "unsafe")  # Point2 is not in the default list


# -- frames (issue 10) -------------------------------------------------------------------------


def frame_trick_cut_opcode(hidden: bytes) -> bytes:
    """A frame that ends inside a BINUNICODE length: pickletools reads a
    255-byte string that swallows ``hidden``; a stream unpickler drops the
    rest of the frame and runs ``hidden``."""
    after = b"\x00\x00\x00\x00" + b"0" + hidden + b"."
    return b"\x80\x04\x95" + (2).to_bytes(8, "little") + b"X\xff" + after + b"\x00" * 300


def frame_trick_past_stop(hidden: bytes) -> bytes:
    """A frame that runs past STOP: a stream reader skips the rest of the
    frame, a linear reader takes it for a harmless second pickle whose
    BINBYTES swallows ``hidden``."""
    evil = b"\x80\x04" + hidden + b"."
    tail = b"\x80\x04B" + len(evil).to_bytes(4, "little")  # in the frame, after STOP
    first = b"K\x01." + tail
    return b"\x80\x04\x95" + len(first).to_bytes(8, "little") + first + evil + b"0."


class RecordingUnpickler(pickle.Unpickler):
    """The C unpickler on a stream, recording globals instead of resolving them."""

    seen: list

    def find_class(self, module, name):
        self.seen.append(f"{module}.{name}")
        return lambda *args: None  # harmless stand-in


def _stream_sees(data: bytes) -> list:
    stream = io.BytesIO(data)
    seen: list = []
    while True:
        u = RecordingUnpickler(stream)
        u.seen = seen
        try:
            u.load()
        except Exception:
            return seen


@pytest.mark.parametrize("trick", [frame_trick_cut_opcode, frame_trick_past_stop])
def test_frame_tricks_are_seen_and_refused(trick):
    hidden = b"cos\nsystem\nX\x04\x00\x00\x00true\x85R"
    data = trick(hidden)
    # oracles: pickletools sees no global at all, the stream unpickler does
    import pickletools

    ops = []
    try:
        ops = [op.name for op, _a, _p in pickletools.genops(io.BytesIO(data))]
    except ValueError:
        pass
    assert "GLOBAL" not in ops
    assert any(g.endswith("system") for g in _stream_sees(data))
    report = inspect(data)
    assert report.status == "unsafe" and "frame" in report.verdict
    if trick is frame_trick_cut_opcode:
        with pytest.raises(pickling.PickleSecurityError):  # the hidden global, or the frame
            safe_loads(data)
        with pytest.raises(ForbiddenOpcode, match="frame"):  # an allowed hidden global: the frame
            safe_loads(frame_trick_cut_opcode(b"cdatetime\ndate\nK\x01K\x01K\x01\x87R"))
    else:  # safe_loads reads one pickle: the harmless first one, as pickle.loads does
        assert safe_loads(data) == pickle.loads(data) == 1
    with pytest.raises(pickling.PickleSecurityError):
        list(load_many(io.BytesIO(data), allow=None))


def test_well_framed_pickles_of_every_size_are_accepted():
    for n in (0, 10, 70_000, 300_000):
        obj = {"blob": b"x" * n, "when": datetime.date(2020, 1, 1), "s": "y" * n, "l": list(range(n // 100))}
        for protocol in (4, 5):
            data = pickle.dumps(obj, protocol=protocol)
            assert safe_loads(data) == obj
            assert inspect(data).safe


# -- one error class for malformed input (issue 10) -----------------------------------------------

MALFORMED = [
    ("empty", b""),
    ("only PROTO", b"\x80\x05"),
    ("no STOP", b"K\x01"),
    ("bad utf-8", b"X\x02\x00\x00\x00\xff\xfe."),
    ("REDUCE on None", b"N)R."),
    ("SETITEM on an int", b"K\x01K\x02K\x03s."),
    ("missing memo", b"h\x05."),
    ("unknown protocol", b"\x80\x09N."),
    ("POP on empty stack", b"0."),
    ("STOP on empty stack", b"."),
    ("truncated LONG1", b"\x8a\x05\x00"),
    ("truncated float", b"G\x00"),
    ("bad INT", b"I1x\n."),
    ("bad args to an allowed class", b"cdatetime\ndate\nX\x01\x00\x00\x00x\x85R."),
    ("invalid opcode", b"\xff."),
    ("frame longer than the data", b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N."),
]


@pytest.mark.parametrize("desc,data", MALFORMED, ids=[d for d, _ in MALFORMED])
def test_malformed_input_raises_one_unpickling_error_class_everywhere(desc, data):
    with pytest.raises(pickle.UnpicklingError) as a:
        safe_loads(data)
    assert type(a.value) is TruncatedError, (desc, a.value)
    if data:
        with pytest.raises(pickle.UnpicklingError) as b:
            list(load_many(io.BytesIO(data), allow=None))
        assert type(b.value) is TruncatedError
    with pytest.raises(pickle.UnpicklingError):  # oracle: plain pickle refuses it too
        try:
            pickle.loads(data)
        except pickle.UnpicklingError:
            raise
        except Exception as exc:
            raise pickle.UnpicklingError(str(exc)) from exc


def test_ext_opcodes_give_forbidden_opcode_with_or_without_a_registry():
    data = b"\x80\x02\x82\x01."
    with pytest.raises(ForbiddenOpcode):
        safe_loads(data)
    with pytest.raises(ForbiddenOpcode):
        list(load_many(io.BytesIO(data), allow=None))
    assert inspect(data).status == "unsafe"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_every_failure_is_an_unpickling_error_and_loaders_agree(data):
    outcome = []
    for load in (lambda: safe_loads(data), lambda: next(iter(load_many(io.BytesIO(data), allow=None)), None)):
        try:
            load()
            outcome.append(None)
        except pickle.UnpicklingError as exc:
            outcome.append(type(exc))
    if data:
        assert outcome[0] == outcome[1], outcome


# -- binrec pickle inspect: verdicts and exit statuses (issue 10) ---------------------------------


def _inspect_cli(path, *extra):
    cmd = [sys.executable, "-m", "binrec", "pickle", "inspect", str(path), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_cli_exit_status_per_verdict(tmp_path):
    cases = {
        "good.pkl": (pickle.dumps([1, datetime.date(2020, 1, 1)]), 0, "safe"),
        "evil.pkl": (pickle.dumps(Call(os.system, "true")), 1, "unsafe"),
        # REDUCE runs before the missing STOP is noticed: unsafe, not unreadable
        "evil_cut.pkl": (pickle.dumps(Call(os.system, "true"), protocol=0)[:-1], 1, "unsafe"),
        "frames.pkl": (frame_trick_cut_opcode(b"cos\nsystem\nX\x04\x00\x00\x00true\x85R"), 1, "unsafe"),
        "empty.pkl": (b"", 3, "empty"),
        "random.pkl": (bytes(range(256))[::-7] * 3, 4, "unreadable"),
    }
    for name, (data, status, verdict) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        res = _inspect_cli(path, "--json")
        assert res.returncode == status, (name, res.stdout, res.stderr)
        out = json.loads(res.stdout)
        assert out["status"] == verdict and out["verdict"].startswith(verdict), name
    res = _inspect_cli(tmp_path / "missing.pkl")
    assert res.returncode == 4 and "missing.pkl" in res.stderr
    res = _inspect_cli(tmp_path / "empty.pkl")
    assert res.returncode == 3 and "verdict:   empty" in res.stdout


def test_cli_help_documents_the_statuses():
    res = subprocess.run(
        [sys.executable, "-m", "binrec", "pickle", "inspect", "--help"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0
    for line in ("0  safe", "1  unsafe", "2  usage", "3  empty", "4  unreadable"):
        assert line in res.stdout
    res = subprocess.run([sys.executable, "-m", "binrec", "pickle", "inspect"], capture_output=True, timeout=120)
    assert res.returncode == 2


# -- the restricted-unpickling policy, as mutation testing asked (issue 11) --------------------


def nesting(obj) -> int:
    """Oracle for max_depth: how deeply plain containers nest ([] is 1)."""
    if isinstance(obj, dict):
        return 1 + max((max(nesting(k), nesting(v)) for k, v in obj.items()), default=0)
    if isinstance(obj, (list, tuple)):
        return 1 + max((nesting(x) for x in obj), default=0)
    return 0


# Wide levels, so protocols 1+ build them with MARK ... APPENDS / SETITEMS /
# TUPLE and protocol 0 with MARK ... LIST / DICT / TUPLE plus APPEND / SETITEM.
WIDE_LEVELS = {
    "list": lambda inner: [1, "two", 3.0, inner, None, 6],
    "dict": lambda inner: {"a": 1, "b": inner, "c": "three", "d": 4.0},
    "tuple": lambda inner: (1, "two", 3.0, inner, None),
}


def wide_nest(kind: str, depth: int):
    obj = WIDE_LEVELS[kind](0)
    for _ in range(depth - 1):
        obj = WIDE_LEVELS[kind](obj)
    return obj


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("kind", sorted(WIDE_LEVELS))
def test_max_depth_admits_exactly_the_limit_and_refuses_one_more(kind, protocol):
    obj = wide_nest(kind, 6)
    assert nesting(obj) == 6
    data = pickle.dumps(obj, protocol=protocol)
    assert safe_loads(data, max_depth=6) == pickle.loads(data) == obj
    with pytest.raises(LimitExceeded, match="max_depth=5"):
        safe_loads(data, max_depth=5)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_max_depth_counts_nesting_not_width(protocol):
    wide = {"rows": [list(range(50)) for _ in range(50)], "flat": tuple(range(2000))}
    data = pickle.dumps(wide, protocol=protocol)
    assert safe_loads(data, max_depth=3) == wide  # nesting(wide) == 3, whatever the protocol
    with pytest.raises(LimitExceeded):
        safe_loads(data, max_depth=2)


def test_max_depth_sees_containers_filled_through_the_memo():
    inner = [[[[]]]]
    data = pickle.dumps([inner, inner], protocol=2)  # the second is a memo GET
    assert safe_loads(data, max_depth=5) == [inner, inner]
    with pytest.raises(LimitExceeded):
        safe_loads(data, max_depth=4)


def test_safe_load_applies_max_depth_to_files_and_paths(tmp_path):
    obj = wide_nest("list", 4)
    path = tmp_path / "deep.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    assert safe_load(path, max_depth=4) == obj
    with open(path, "rb") as fh:
        assert safe_load(fh, max_depth=4) == obj
    with pytest.raises(LimitExceeded):
        safe_load(path, max_depth=3)
    with open(path, "rb") as fh, pytest.raises(LimitExceeded):
        safe_load(fh, max_depth=3)


def test_max_depth_on_malformed_bytes_raises_what_every_loader_raises():
    data = pickle.dumps(wide_nest("dict", 3), protocol=2)[:-7]
    with pytest.raises(TruncatedError):
        safe_loads(data)
    with pytest.raises(TruncatedError):
        safe_loads(data, max_depth=10)


class Outer:
    class Inner:
        def __init__(self, v):
            self.v = v

        def __eq__(self, other):
            return type(other) is type(self) and other.v == self.v

    class Sibling(Inner):
        pass


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_nested_class_allowlisted_by_qualname_loads_and_its_sibling_does_not(protocol):
    allow = [f"{__name__}:Outer.Inner"]
    data = pickle.dumps(Outer.Inner(7), protocol=protocol)
    assert safe_loads(data, allow=allow) == pickle.loads(data) == Outer.Inner(7)
    assert safe_loads(data, allow=[(__name__, "Outer.Inner")]) == Outer.Inner(7)
    with pytest.raises(ForbiddenGlobal, match="Outer.Sibling"):
        safe_loads(pickle.dumps(Outer.Sibling(7), protocol=protocol), allow=allow)
    with pytest.raises(ForbiddenGlobal, match="Outer.Inner"):
        safe_loads(data)  # not in the default policy
    # the dotted form names module "<mod>.Outer", which is not where Inner lives
    with pytest.raises(ForbiddenGlobal):
        safe_loads(data, allow=[f"{__name__}.Outer.Inner"])


def test_a_nested_class_before_protocol_4_needs_getattr_and_is_refused():
    # pickle writes getattr(Outer, "Inner") below protocol 4; getattr is never allowed
    data = pickle.dumps(Outer.Inner(7), protocol=2)
    with pytest.raises(ForbiddenGlobal, match="getattr"):
        safe_loads(data, allow=[f"{__name__}:Outer.Inner", f"{__name__}:Outer"])


# What only ALL admits: a class of this module and a never-allowed global.
# Plain pickle is the oracle.
def unrestricted_sample():
    return {"p": Point(3), "f": os.getcwd, "n": Outer.Inner([1, 2])}


def test_allow_all_is_plain_pickle_in_safe_loads_and_safe_load(tmp_path):
    data = pickle.dumps(unrestricted_sample())
    with pytest.raises(ForbiddenGlobal):
        safe_loads(data)
    assert safe_loads(data, allow=ALL) == pickle.loads(data) == unrestricted_sample()
    path = tmp_path / "all.pkl"
    path.write_bytes(data)
    assert safe_load(path, allow=ALL) == unrestricted_sample()
    with pytest.raises(ForbiddenGlobal):
        safe_load(path)


def test_allow_all_is_plain_pickle_in_load_many(tmp_path):
    path = tmp_path / "many.pkl"
    dump_many([unrestricted_sample(), 2], path)
    assert list(load_many(path, allow=ALL)) == [unrestricted_sample(), 2]
    with pytest.raises(ForbiddenGlobal):
        list(load_many(path, allow=None))


def test_allow_all_is_plain_pickle_in_load_versioned(tmp_path):
    path = tmp_path / "v.pkl"
    save_versioned(path, unrestricted_sample(), version=1)
    assert load_versioned(path, current=1, allow=ALL) == unrestricted_sample()
    with pytest.raises(ForbiddenGlobal):
        load_versioned(path, current=1, allow=None)


def test_allow_all_is_plain_pickle_in_checkpoint_load(tmp_path):
    from binrec.checkpoint import CheckpointStore

    store = CheckpointStore(tmp_path)
    state = {**unrestricted_sample(), "w": np.arange(6.0)}
    store.save("all", state)
    with pytest.raises(ForbiddenGlobal):
        store.load("all")
    for use_mmap in (False, True):
        got = store.load("all", allow=ALL, mmap=use_mmap)
        assert got.keys() == state.keys() and got["w"].tolist() == state["w"].tolist()
        assert {k: v for k, v in got.items() if k != "w"} == unrestricted_sample()


# -- the never-allow list and the allowlist, at their edges --------------------------------------


def global_pickle(module: str, name: str) -> bytes:
    """A protocol-4 pickle of the global module.name (STACK_GLOBAL), built by
    hand: the name need not exist, since the policy judges it first."""

    def short(s: str) -> bytes:
        b = s.encode()
        return b"\x8c" + bytes([len(b)]) + b

    return b"\x80\x04" + short(module) + short(name) + b"\x93."


@pytest.mark.parametrize(
    "module,name",
    [
        ("os", "getcwd"),  # the module itself
        ("os.path", "join"),  # a submodule of a never-allowed module
        ("numpy", "load"),  # module.name is the never-allowed entry
        ("numpy", "f2py.crackfortran"),  # module.name is below a never-allowed entry
        ("numpy.f2py", "main"),
        ("builtins", "getattr"),
        ("builtins", "eval"),
    ],
)
def test_never_allowed_globals_are_refused_even_by_an_allow_everything_predicate(module, name):
    with pytest.raises(ForbiddenGlobal, match="never allowed|reaches attributes") as refused:
        safe_loads(global_pickle(module, name), allow=lambda m, n: True)
    assert (refused.value.module, refused.value.name) == (module, name)
    with pytest.raises(ValueError, match="refusing to allow"):
        safe_loads(pickle.dumps(1), allow=[(module, name)])


@pytest.mark.parametrize(
    "obj,entry",
    [
        (np.loadtxt, "numpy.loadtxt"),  # numpy.load is never allowed; loadtxt only starts with it
        (sysconfig.get_platform, "sysconfig.get_platform"),  # sys is never allowed, sysconfig may be
        (traceback.format_exc, "traceback.format_exc"),  # trace is never allowed, traceback may be
    ],
)
def test_never_allow_matches_whole_name_parts_only(obj, entry):
    data = pickle.dumps(obj)
    with pytest.raises(ForbiddenGlobal, match="not in the allowlist"):
        safe_loads(data)
    assert safe_loads(data, allow=[entry]) is pickle.loads(data) is obj


def test_a_predicate_that_says_no_refuses():
    data = pickle.dumps(Point(1))
    with pytest.raises(ForbiddenGlobal, match="Point"):
        safe_loads(data, allow=lambda m, n: False)
    seen = []
    assert safe_loads(data, allow=lambda m, n: seen.append((m, n)) or n == "Point") == Point(1)
    assert (__name__, "Point") in seen


def test_the_default_policy_is_not_widened_by_an_earlier_allow():
    data = pickle.dumps(Point(2))
    assert safe_loads(data, allow=[Point]) == Point(2)
    with pytest.raises(ForbiddenGlobal):
        safe_loads(data)


@pytest.mark.parametrize("entry", ["Point", ":Point", f"{__name__}:", "."])
def test_malformed_allow_strings_are_refused(entry):
    with pytest.raises(ValueError, match="must look like"):
        safe_loads(pickle.dumps(1), allow=[entry])


@pytest.mark.parametrize("entry", [42, (1, 2), (__name__, 2), ("a", "b", "c"), b"mod.name", Point(1)])
def test_allow_entries_of_the_wrong_type_are_refused(entry):
    with pytest.raises(TypeError, match="allow entries"):
        safe_loads(pickle.dumps(1), allow=[entry])


def test_one_allow_string_is_one_name_not_its_characters():
    assert safe_loads(pickle.dumps(Point(4)), allow=f"{__name__}:Point") == Point(4)


def test_an_allowed_name_that_is_a_module_is_refused():
    # numpy.ma is a submodule: admitting the name must not hand out a module
    data = b"\x80\x04\x8c\x05numpy\x8c\x02ma\x93."
    with pytest.raises(ForbiddenGlobal, match="resolves to a module") as refused:
        safe_loads(data, allow=[("numpy", "ma")])
    assert (refused.value.module, refused.value.name) == ("numpy", "ma")


def test_allow_that_is_neither_a_name_list_nor_a_predicate_is_refused():
    with pytest.raises(TypeError):
        safe_loads(pickle.dumps(1), allow=42)


class CallableNameList(list):
    """An allow spec that is iterable and also callable: read as names."""

    def __call__(self, module, name):
        return True


def test_an_iterable_allow_is_read_as_names_even_if_it_is_callable():
    allow = CallableNameList([Point])
    assert safe_loads(pickle.dumps(Point(5)), allow=allow) == Point(5)
    with pytest.raises(ForbiddenGlobal, match="Outer.Inner"):
        safe_loads(pickle.dumps(Outer.Inner(1), protocol=4), allow=allow)


def test_max_bytes_admits_a_pickle_of_exactly_that_size(tmp_path):
    data = pickle.dumps(list(range(100)))
    assert safe_loads(data, max_bytes=len(data)) == list(range(100))
    with pytest.raises(LimitExceeded):
        safe_loads(data, max_bytes=len(data) - 1)
    path = tmp_path / "p.pkl"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        assert safe_load(fh, max_bytes=len(data)) == list(range(100))
    with open(path, "rb") as fh:
        assert safe_load(fh, max_bytes=None) == list(range(100))  # no cap: the whole file


def test_a_truncated_pickle_reports_offset_and_index_zero():
    with pytest.raises(TruncatedError) as err:
        safe_loads(pickle.dumps({"a": [1, 2, 3]})[:-3])
    assert (err.value.offset, err.value.index) == (0, 0)


# -- the never-allow check: set lookups of dotted prefixes, same answers as a scan --------


def never_by_scan(module: str, name: str) -> str | None:
    """Oracle for _pickle_policy._never: the rule as NEVER_ALLOW documents it, by a
    linear scan (an entry bans a global when "module.name" is the entry or
    starts with the entry and a dot)."""
    if module == "builtins" and name in _pickle_policy._NEVER_BUILTINS:
        return f"builtins.{name} reaches attributes or runs code"
    full = f"{module}.{name}"
    hits = [banned for banned in pickling.NEVER_ALLOW if full == banned or full.startswith(banned + ".")]
    assert len(hits) <= 1, hits  # no entry lies below another, so the reason is unambiguous
    return f"module {hits[0]} is never allowed" if hits else None


def never_check_cases() -> list[tuple[str, str]]:
    cases = set(pickling.DEFAULT_ALLOW)
    for entry in pickling.NEVER_ALLOW:
        parts = entry.split(".")
        for i in range(1, len(parts) + 1):  # the entry split at every dot, and names around it
            module, name = ".".join(parts[:i]), ".".join(parts[i:])
            cases |= {(module, name or "x"), (module, name + ".sub" if name else "sub"), (module + "x", name or "x")}
            cases |= {(module[:-1], name or "x"), ("x." + module, name or "x"), (module + ".", name or "x")}
        cases |= {(entry, ""), ("", entry), (entry + "_", "f"), ("_" + entry, "f"), (entry.upper(), "f")}
    cases |= {("builtins", n) for n in _pickle_policy._NEVER_BUILTINS}
    cases |= {("builtins", n + "x") for n in _pickle_policy._NEVER_BUILTINS}
    cases |= {("", ""), (".", "."), ("os", ""), ("", "os"), ("os..", "x"), (".os", "x"), ("numpy", "load")}
    return sorted(cases)


def test_never_allow_check_agrees_with_a_scan_of_the_list_on_every_entry_and_edge():
    cases = never_check_cases()
    assert len(cases) > 800
    refused = 0
    for module, name in cases:
        assert _pickle_policy._never(module, name) == never_by_scan(module, name), (module, name)
        refused += never_by_scan(module, name) is not None
    assert 300 < refused < len(cases) - 300  # both answers are well represented


NAME_PARTS = st.sampled_from(sorted({p for e in pickling.NEVER_ALLOW for p in e.split(".")} | {"", "x", "os_", "_io"}))


@settings(max_examples=2000, deadline=None)
@given(st.lists(NAME_PARTS, min_size=1, max_size=4), st.lists(NAME_PARTS, min_size=1, max_size=3))
def test_never_allow_check_agrees_with_a_scan_of_the_list_on_random_dotted_names(module_parts, name_parts):
    module, name = ".".join(module_parts), ".".join(name_parts)
    assert _pickle_policy._never(module, name) == never_by_scan(module, name)


# -- max_depth on hand-written opcodes (pickle.loads says what each pickle means) ----------

P2 = b"\x80\x02"  # PROTO 2
MEMO_FORMS = {
    "PUT-GET": (lambda i: b"p%d\n" % i, lambda i: b"g%d\n" % i),  # protocol 0 text forms
    "BINPUT-BINGET": (lambda i: b"q" + bytes([i]), lambda i: b"h" + bytes([i])),
    "LONG_BINPUT-LONG_BINGET": (lambda i: b"r" + i.to_bytes(4, "little"), lambda i: b"j" + i.to_bytes(4, "little")),
    "MEMOIZE-BINGET": (lambda i: b"\x94", lambda i: b"h" + bytes([i])),
}


def chain_through_the_memo(depth: int, form: str) -> bytes:
    """Lists L0..L(depth-1), each memoized and popped while still empty, then
    linked afterwards (GET Li, GET Li+1, APPEND): L0 nests `depth` deep,
    though no list was inside another when it was built."""
    put, get = MEMO_FORMS[form]
    lists = b"".join(b"]" + put(i) + b"0" for i in range(depth))  # EMPTY_LIST, put, POP
    links = b"".join(get(i) + get(i + 1) + b"a0" for i in range(depth - 1))  # APPEND, POP
    return P2 + lists + links + get(0) + b"."


@pytest.mark.parametrize("form", sorted(MEMO_FORMS))
def test_max_depth_counts_containers_linked_through_the_memo_after_they_were_built(form):
    data = chain_through_the_memo(6, form)
    assert [op.name for op, _, _ in pickletools.genops(data)].count("APPEND") == 5
    obj = pickle.loads(data)
    assert nesting(obj) == 6
    assert safe_loads(data, max_depth=6) == obj
    with pytest.raises(LimitExceeded, match="max_depth=5"):
        safe_loads(data, max_depth=5)


def test_max_depth_cannot_be_bypassed_by_a_long_chain_built_through_the_memo():
    data = chain_through_the_memo(200, "BINPUT-BINGET")
    assert nesting(pickle.loads(data)) == 200
    with pytest.raises(LimitExceeded, match="max_depth=10"):
        safe_loads(data, max_depth=10)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_list_that_contains_itself_nests_without_end_and_is_refused_at_any_depth(protocol):
    loop: list = [1]
    loop.append(loop)
    data = pickle.dumps(loop, protocol=protocol)
    got = safe_loads(data)
    assert got[1] is got  # it loads without a depth limit
    with pytest.raises(LimitExceeded, match="max_depth=1000"):
        safe_loads(data, max_depth=1000)


def test_max_depth_follows_dup_to_the_same_object():
    # EMPTY_LIST, DUP, EMPTY_LIST, APPEND (into the copy on top), TUPLE2:
    # both items of the tuple are the one list [[]]
    data = P2 + b"]2]a\x86."
    obj = pickle.loads(data)
    assert obj == ([[]], [[]]) and obj[0] is obj[1] and nesting(obj) == 3
    assert safe_loads(data, max_depth=3) == obj
    with pytest.raises(LimitExceeded):
        safe_loads(data, max_depth=2)


def test_max_depth_counts_an_out_of_band_buffer_as_no_level():
    # [NEXT_BUFFER READONLY_BUFFER]: a list of one buffer is depth 1 (like a
    # list of one bytes); safe_loads has no buffers to give, so the depth
    # check passes and unpickling refuses, as pickle.loads does
    data = pickle.dumps([pickle.PickleBuffer(b"abc")], protocol=5, buffer_callback=lambda b: False)
    assert [op.name for op, _, _ in pickletools.genops(data)][-4:-1] == ["NEXT_BUFFER", "READONLY_BUFFER", "APPEND"]
    with pytest.raises(pickle.UnpicklingError, match="out-of-band data"):
        pickle.loads(data)
    with pytest.raises(TruncatedError):
        safe_loads(data, max_depth=1)
    with pytest.raises(LimitExceeded):
        safe_loads(data, max_depth=0)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_max_depth_zero_admits_a_scalar_and_refuses_an_empty_container(protocol):
    for scalar in (5, "text", None, 2.5):
        assert safe_loads(pickle.dumps(scalar, protocol=protocol), max_depth=0) == scalar
    for empty in ([], {}, ()):
        data = pickle.dumps(empty, protocol=protocol)
        assert safe_loads(data, max_depth=1) == empty
        with pytest.raises(LimitExceeded):
            safe_loads(data, max_depth=0)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"(l.", id="MARK-LIST"),
        pytest.param(b"(t.", id="MARK-TUPLE"),
        pytest.param(b"(d.", id="MARK-DICT"),
        pytest.param(P2 + b"](e.", id="EMPTY_LIST-MARK-APPENDS"),
        pytest.param(P2 + b"}(u.", id="EMPTY_DICT-MARK-SETITEMS"),
        pytest.param(P2 + b").", id="EMPTY_TUPLE"),
    ],
)
def test_an_empty_container_built_from_a_mark_is_depth_one(data):
    obj = pickle.loads(data)
    assert nesting(obj) == 1 and len(obj) == 0
    assert safe_loads(data, max_depth=1) == obj
    with pytest.raises(LimitExceeded):
        safe_loads(data, max_depth=0)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("width", [1, 2, 3])
def test_max_depth_counts_small_tuples(protocol, width):
    # protocols 2+ build tuples of 1-3 items with TUPLE1/TUPLE2/TUPLE3 (no MARK)
    obj: object = 7
    for _ in range(5):
        obj = (obj,) + (0,) * (width - 1)
    data = pickle.dumps(obj, protocol=protocol)
    assert nesting(obj) == 5
    assert safe_loads(data, max_depth=5) == obj
    with pytest.raises(LimitExceeded):
        safe_loads(data, max_depth=4)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(P2 + b"a.", id="APPEND-on-an-empty-stack"),
        pytest.param(P2 + b"K\x01a.", id="APPEND-with-one-operand"),
        pytest.param(P2 + b"h\x05.", id="BINGET-of-a-missing-memo-entry"),
        pytest.param(b"g7\n.", id="GET-of-a-missing-memo-entry"),
        pytest.param(P2 + b"e.", id="APPENDS-without-MARK"),
    ],
)
def test_max_depth_on_a_malformed_pickle_lets_the_unpickler_report_it(data):
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)
    with pytest.raises(TruncatedError):
        safe_loads(data)
    for limit in (0, 5):
        with pytest.raises(TruncatedError):
            safe_loads(data, max_depth=limit)


# -- what safe_load and the restricted loader pass on (mutation gaps, issue 11) ------


class _CountingFile(io.BytesIO):
    """A file object that records how many bytes were asked of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, n: int | None = -1) -> bytes:  # type: ignore[override]
        self.asked.append(-1 if n is None else n)
        return super().read(n)


def test_safe_load_passes_allow_on_for_files_and_paths(tmp_path):
    # oracle: pickle.loads of the same bytes; without allow the class is refused
    obj = Outer.Inner(7)
    data = pickle.dumps(obj)
    path = tmp_path / "inner.pkl"
    path.write_bytes(data)
    allow = [Outer.Inner]
    expected = pickle.loads(data)
    got = safe_load(path, allow=allow)
    assert (type(got), got.v) == (type(expected), expected.v)
    with open(path, "rb") as fh:
        got = safe_load(fh, allow=allow)
    assert (type(got), got.v) == (type(expected), expected.v)
    got = safe_load(io.BytesIO(data), allow=allow)
    assert (type(got), got.v) == (type(expected), expected.v)
    with pytest.raises(ForbiddenGlobal):
        safe_load(io.BytesIO(data))
    with pytest.raises(ForbiddenGlobal):
        safe_load(path)


def test_safe_load_reads_at_most_max_bytes_plus_one(tmp_path):
    # A stream longer than the cap is refused after reading max_bytes + 1 bytes,
    # never the whole stream; the position shows what was consumed.
    payload = pickle.dumps(b"x" * 1000)
    fh = _CountingFile(payload + b"tail")
    with pytest.raises(LimitExceeded):
        safe_load(fh, max_bytes=100)
    assert fh.asked == [101]
    assert fh.tell() == 101
    # exactly max_bytes is accepted, and only the pickle's bytes plus one are asked for
    fh = _CountingFile(payload)
    assert safe_load(fh, max_bytes=len(payload)) == pickle.loads(payload)
    assert fh.asked == [len(payload) + 1]
    # no cap: the whole stream is read in one call
    fh = _CountingFile(payload)
    assert safe_load(fh, max_bytes=None) == pickle.loads(payload)
    assert fh.asked == [-1]
    assert fh.tell() == len(payload)


@pytest.mark.parametrize("allow", [None, [Outer.Inner]])
def test_restricted_loads_hands_out_of_band_buffers_on(allow):
    # oracle: pickle.loads with the same protocol-5 buffers
    from binrec.pickling import restricted_loads

    bufs: list[pickle.PickleBuffer] = []
    obj = {"a": np.arange(6, dtype="<i4"), "b": bytearray(b"payload"), "c": [Outer.Inner]}
    data = pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)
    assert bufs, "the oracle must actually use out-of-band buffers"
    expected = pickle.loads(data, buffers=bufs)
    if allow is None:
        with pytest.raises(ForbiddenGlobal):
            restricted_loads(data, allow, bufs)
        obj.pop("c")
        bufs = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)
        expected = pickle.loads(data, buffers=bufs)
    got = restricted_loads(data, allow, bufs)
    assert got.keys() == expected.keys()
    np.testing.assert_array_equal(got["a"], expected["a"])
    assert got["a"].dtype == expected["a"].dtype
    assert bytes(got["b"]) == bytes(expected["b"])
    # without the buffers the pickle cannot be loaded (pickle says the same)
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(data, allow, None)


def test_safe_loads_size_cap_counts_bytes_of_wide_buffers():
    # A buffer of 8-byte items: the cap is on bytes (memoryview.nbytes), not on
    # len(), which counts items.  pickle.loads stops at STOP, so zero padding
    # after the pickle is ignored by both loaders (the oracle).
    data = pickle.dumps(list(range(50)), protocol=4)
    padded = data + bytes(-len(data) % 8)
    wide = np.frombuffer(padded, dtype="<u8")
    assert len(wide) * 8 == len(padded)
    assert safe_loads(wide) == pickle.loads(padded)
    with pytest.raises(LimitExceeded, match=f"{len(padded)} bytes"):
        safe_loads(wide, max_bytes=len(padded) - 1)


# Names a predicate or an allow list can never admit, written out here (not read
# from NEVER_ALLOW, so dropping one from the module's list fails this test).
NEVER_ADMITTED = [
    "os.system",
    "posix.system",
    "subprocess.Popen",
    "subprocess.call",
    "subprocess.check_output",
    "_posixsubprocess.fork_exec",
    "builtins.exec",
    "builtins.eval",
    "builtins.compile",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.__import__",
    "numpy.f2py.compile",
    "numpy.load",
]


@pytest.mark.parametrize("dotted", NEVER_ADMITTED)
def test_never_admitted_whatever_the_allow_argument_says(dotted):
    module, _, name = dotted.rpartition(".")
    data = f"c{module}\n{name}\n.".encode()  # GLOBAL then STOP: names it, calls nothing
    # the predicate says yes to everything; the never-list still refuses
    with pytest.raises(ForbiddenGlobal, match=f"forbidden global {re.escape(dotted)}: "):
        safe_loads(data, allow=lambda m, n: True)
    with pytest.raises(ValueError, match=f"refusing to allow {re.escape(dotted)}"):
        safe_loads(data, allow=[dotted])


def test_all_is_one_object_with_a_public_repr_and_pickles_to_itself():
    # oracle: plain pickle; the repr names where users import it from
    assert repr(ALL) == "binrec.pickling.ALL"
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(ALL, protocol=protocol)
        assert b"binrec.pickling" in data and b"ALL" in data
        assert pickle.loads(data) is ALL


def _pickle_of_length_multiple_of(k: int) -> bytes:
    for n in range(64):
        data = pickle.dumps({"pad": b"x" * n, "n": [1, 2]}, protocol=4)
        if len(data) % k == 0:
            return data
    raise AssertionError("no length fits")


def test_inspect_reads_a_buffer_of_wide_items_as_its_bytes():
    # oracle: inspect of the same bytes; a memoryview of 8-byte items holds them too
    data = _pickle_of_length_multiple_of(8)
    wide = memoryview(np.frombuffer(data, dtype="<u8"))
    assert wide.itemsize == 8
    assert pickling.inspect(wide).as_dict() == pickling.inspect(data).as_dict()
    assert pickling.inspect(data).status == "safe"


@pytest.mark.parametrize("protocol", [0, 1])
def test_text_protocol_lines_read_from_a_buffer(protocol):
    # Protocol 0 arguments are newline-ended lines; an empty str is a line that
    # is only a newline.  A bytearray is read in place (not copied to BytesIO).
    # oracle: pickle.loads of the same bytes
    obj = ["", "a", "", 7, "", b""]
    data = bytearray(pickle.dumps(obj, protocol=protocol))
    assert safe_loads(data) == pickle.loads(data) == obj


def test_a_wide_buffer_is_scanned_as_bytes_while_an_extension_registry_is_in_use():
    # With copyreg's extension registry in use the loader scans the whole
    # pickle before loading; a buffer of 8-byte items must be scanned as its
    # bytes.  oracle: pickle.loads of the same bytes
    data = _pickle_of_length_multiple_of(8)
    wide = np.frombuffer(data, dtype="<u8")
    copyreg.add_extension("fractions", "Fraction", 0xBEF0)
    try:
        assert safe_loads(wide) == pickle.loads(data)
    finally:
        copyreg.remove_extension("fractions", "Fraction", 0xBEF0)
