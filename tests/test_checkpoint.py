"""binrec.checkpoint: round trips, the documented format, retention, names,
corruption at every section, and real SIGKILLs during saves."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from binrec.checkpoint import (
    CheckpointCorrupted,
    CheckpointNotFound,
    CheckpointStore,
    InvalidCheckpointName,
)
from binrec.pickling import ForbiddenGlobal
from binrec.signing import BadSignature

KEY = bytes(range(32))


needs_sigkill = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only (Windows has no signals to kill with)"
)


def training_state(seed: int = 0, n: int = 1000) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "step": seed,
        "weights": rng.normal(size=(n, 8)),
        "bias": rng.normal(size=8).astype(np.float32),
        "fortran": np.asfortranarray(rng.normal(size=(5, 7))),
        "strided": np.arange(20)[::3],  # not contiguous: goes in band
        "opt": {"lr": 1e-3, "moments": [rng.normal(size=16), rng.normal(size=16)]},
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "scalar": np.float64(2.5),
        "empty": np.empty((0, 3)),
    }


def assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        if b.flags.f_contiguous and not b.flags.c_contiguous:
            assert a.flags.f_contiguous  # Fortran order survives, as with pickle
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("use_mmap", [False, True])
@pytest.mark.parametrize("key", [None, KEY])
def test_round_trip(tmp_path, use_mmap, key):
    store = CheckpointStore(tmp_path, key=key)
    state = training_state(1)
    info = store.save("epoch-1", state, metadata={"loss": 0.25, "tags": ["a"]})
    assert info.name == "epoch-1" and info.metadata == {"loss": 0.25, "tags": ["a"]}
    assert info.signed == (key is not None) and info.buffers >= 5
    loaded = store.load("epoch-1", mmap=use_mmap)
    assert_same(loaded, state)
    if use_mmap:
        w = loaded["weights"]
        assert not w.flags.writeable
        with pytest.raises(ValueError):
            w[0, 0] = 1.0
    else:
        assert loaded["weights"].flags.writeable
    assert store.verify("epoch-1").name == "epoch-1"


def test_file_layout_matches_the_documented_format(tmp_path):
    store = CheckpointStore(tmp_path)
    state = {"a": np.arange(100, dtype="<f8"), "b": np.arange(7, dtype="<i2")}
    store.save("x", state, metadata={"m": 1}, version=3)
    raw = (tmp_path / "x.ckpt").read_bytes()
    magic, fmt, flags, hlen = struct.unpack_from("<8sIIQ", raw, 0)
    assert (magic, fmt, flags) == (b"BINRECCK", 1, 0)
    header = json.loads(raw[24 : 24 + hlen])
    assert header["metadata"] == {"m": 1} and header["version"] == 3 and header["file_size"] == len(raw)
    sk = header["skeleton"]
    assert sk["offset"] % 64 == 0 and zlib.crc32(raw[sk["offset"] : sk["offset"] + sk["length"]]) == sk["crc32"]
    assert len(header["buffers"]) == 2
    for b, arr in zip(header["buffers"], state.values()):
        assert b["offset"] % 64 == 0
        section = raw[b["offset"] : b["offset"] + b["length"]]
        assert section == arr.tobytes()  # raw bytes, not through the pickle stream
        assert zlib.crc32(section) == b["crc32"] and b["shape"] == list(arr.shape)
    fo = header["footer_offset"]
    fmagic, head_digest, file_digest, footer_crc = struct.unpack_from("<8s32s32sI", raw, fo)
    assert fmagic == b"BRCKFOOT" and footer_crc == zlib.crc32(fmagic + head_digest + file_digest)
    assert file_digest == hashlib.sha256(raw[:fo]).digest()
    assert head_digest == hashlib.sha256(raw[: sk["offset"] + sk["length"]]).digest()
    assert len(raw) == fo + 76


def test_list_latest_delete_and_header_only_listing(tmp_path):
    store = CheckpointStore(tmp_path)
    for i in range(5):
        store.save(f"s{i}", {"w": np.full(10, i)}, metadata={"i": i})
        time.sleep(0.01)
    infos = store.list()
    assert [i.name for i in infos] == [f"s{i}" for i in range(5)]
    assert store.latest().name == "s4"
    store.delete("s2")
    assert "s2" not in [i.name for i in store.list()]
    with pytest.raises(CheckpointNotFound):
        store.delete("s2")
    with pytest.raises(CheckpointNotFound):
        store.load("s2")
    # list() reads headers only: a checkpoint whose buffers are garbage still lists
    path = tmp_path / "s3.ckpt"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert "s3" in [i.name for i in store.list()]
    with pytest.raises(CheckpointCorrupted):
        store.verify("s3")
    assert CheckpointStore(tmp_path / "empty").latest() is None


def test_retention_deletes_only_after_the_new_one_is_safe(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=3)
    for i in range(6):
        store.save(f"step-{i}", {"i": np.array([i])})
        time.sleep(0.01)
        assert len(store.list()) == min(i + 1, 3)
    assert [i.name for i in store.list()] == ["step-3", "step-4", "step-5"]
    # a failing save (unpicklable state) deletes nothing
    with pytest.raises((pickle.PicklingError, AttributeError)):
        store.save("step-6", {"f": lambda: 1})
    assert [i.name for i in store.list()] == ["step-3", "step-4", "step-5"]


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "a..b", "x\\y", "../etc", "a\x00b", "n" * 201, 7])
def test_invalid_names(tmp_path, name):
    store = CheckpointStore(tmp_path)
    with pytest.raises(InvalidCheckpointName):
        store.save(name, {})
    with pytest.raises(InvalidCheckpointName):
        store.load(name)


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        CheckpointStore(tmp_path).save("x", {}, metadata={"a": object()})


def test_restricted_skeleton_loading(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("evil", {"f": os.system})
    with pytest.raises(ForbiddenGlobal):
        store.load("evil")
    store.save("dt", {"t": datetime.date(2020, 1, 1)})
    assert store.load("dt") == {"t": datetime.date(2020, 1, 1)}


def test_versioned_state_migrations(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("v1", {"w": np.ones(2)}, version=1)
    migrations = {1: lambda s: {**s, "lr": 0.1}, 2: lambda s: {**s, "epoch": 0}}
    got = store.load("v1", migrations=migrations)
    assert got["lr"] == 0.1 and got["epoch"] == 0
    two = store.load("v1", migrations=migrations, current=2)
    assert two["lr"] == 0.1 and "epoch" not in two
    from binrec.pickling import VersionError

    with pytest.raises(VersionError):
        store.load("v1", migrations={2: dict}, current=3)


def test_keys(tmp_path):
    signed = CheckpointStore(tmp_path, key=KEY)
    signed.save("k", {"w": np.arange(5)})
    with pytest.raises(BadSignature):
        CheckpointStore(tmp_path).load("k")  # signed file, no key
    with pytest.raises(BadSignature):
        CheckpointStore(tmp_path, key=bytes(32)).load("k")  # wrong key
    rotated = CheckpointStore(tmp_path, key=[bytes(32), KEY])  # new key first, old still verifies
    assert rotated.load("k")["w"].tolist() == [0, 1, 2, 3, 4]
    CheckpointStore(tmp_path).save("plain", {})
    with pytest.raises(BadSignature):
        signed.load("plain")


def corrupt_positions(raw: bytes, header: dict) -> list[int]:
    """A sample of byte positions in every section of the file."""
    sk = header["skeleton"]
    fo = header["footer_offset"]
    regions = [(0, 24), (24, 24 + 40), (sk["offset"], sk["offset"] + sk["length"])]
    regions += [(b["offset"], b["offset"] + b["length"]) for b in header["buffers"] if b["length"]]
    regions += [(fo, len(raw))]
    rng = random.Random(7)
    out = []
    for lo, hi in regions:
        out += [lo, hi - 1] + [rng.randrange(lo, hi) for _ in range(4)]
    return sorted(set(out))


@pytest.mark.parametrize("key", [None, KEY])
def test_every_flipped_byte_and_truncation_is_caught(tmp_path, key):
    store = CheckpointStore(tmp_path, key=key)
    state = {"w": np.arange(300, dtype=np.float64), "b": np.arange(50, dtype=np.int32), "meta": {"step": 3}}
    store.save("c", state, metadata={"note": "x"})
    path = tmp_path / "c.ckpt"
    good = path.read_bytes()
    hlen = struct.unpack_from("<Q", good, 16)[0]
    header = json.loads(good[24 : 24 + hlen])
    expected_errors = (CheckpointCorrupted, BadSignature) if key else (CheckpointCorrupted,)
    cases = 0
    for pos in corrupt_positions(good, header):
        bad = bytearray(good)
        bad[pos] ^= 0x10
        path.write_bytes(bytes(bad))
        for use_mmap in (False, True):
            try:
                got = store.load("c", mmap=use_mmap)
            except expected_errors:
                cases += 1
                continue
            # mmap=True checks header, skeleton and footer, not array bytes:
            # then verify() must catch it, and nothing else may slip through
            assert use_mmap and not key, f"flip at {pos} went unnoticed"
            with pytest.raises(CheckpointCorrupted):
                store.verify("c")
            assert pos >= header["buffers"][0]["offset"]
            del got
        with pytest.raises(expected_errors):
            store.verify("c")
    for cut in sorted({0, 1, 10, 23, 24, 100, len(good) // 2, len(good) - 77, len(good) - 1}):
        path.write_bytes(good[:cut])
        for use_mmap in (False, True):
            with pytest.raises(expected_errors):
                store.load("c", mmap=use_mmap)
        cases += 1
    path.write_bytes(good + b"\x00")
    with pytest.raises(CheckpointCorrupted):
        store.load("c")
    path.write_bytes(good)
    assert_same(store.load("c"), state)
    assert cases > 40


SAVER = r"""
import sys, numpy as np
from binrec.checkpoint import CheckpointStore
store = CheckpointStore(sys.argv[1], keep_last=2)
rng = np.random.default_rng(0)
step = int(sys.argv[2])
while True:
    step += 1
    w = np.full(1_500_000, float(step))  # 12 MB: the kill lands mid-write often
    store.save(f"step-{step:06d}", {"step": step, "w": w}, metadata={"step": step})
    print(step, flush=True)
"""


@needs_sigkill
def test_sigkill_during_saves_never_leaves_a_torn_checkpoint(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=2)
    store.save("step-000000", {"step": 0, "w": np.full(1_500_000, 0.0)}, metadata={"step": 0})
    rng = random.Random(1)
    last = 0
    kills = 0
    while kills < 20:
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(tmp_path), str(last)], stdout=subprocess.PIPE, text=True
        )
        proc.stdout.readline()  # at least one save completed in this process
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        kills += 1
        infos = store.list()
        assert infos, "no checkpoint survived"
        for info in infos:
            assert not info.name.startswith(".")
        latest = infos[-1]
        state = store.load(latest.name)
        assert state["step"] == latest.metadata["step"]
        assert float(state["w"][0]) == float(state["w"][-1]) == float(state["step"])
        store.verify(latest.name)
        last = state["step"]
    store.save("final", {"step": -1})  # the next save cleans temp files of dead savers
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".binrec-tmp-")]


def test_leftover_temp_file_of_a_dead_saver_is_ignored_then_cleaned(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("good", {"w": np.ones(3)})
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    torn = tmp_path / f".binrec-tmp-{dead}-1-torn.ckpt"
    torn.write_bytes(b"BINRECCK" + bytes(100))
    assert [i.name for i in store.list()] == ["good"]
    store.save("next", {})
    assert not torn.exists()


@pytest.mark.parametrize("la,lb", [(0, 5), (5, 0), (1, 1), (100, 3 << 20), (12345, 67890)])
def test_crc_combine_matches_zlib(la, lb):
    from binrec.checkpoint import _crc_combine

    rng = np.random.default_rng(la + lb)
    a = rng.integers(0, 256, la, dtype=np.uint8).tobytes()
    b = rng.integers(0, 256, lb, dtype=np.uint8).tobytes()
    assert _crc_combine(zlib.crc32(a), zlib.crc32(b), lb) == zlib.crc32(a + b)


# -- the skeleton loader agrees with safe_loads (issue 10) ------------------------------------


def _save_with_skeleton(store, name, skeleton: bytes):
    """Save a checkpoint whose skeleton pickle is ``skeleton`` (digests and
    CRCs valid), by handing ``save`` a pickle module whose dumps returns it."""
    import types

    from binrec import checkpoint

    fake = types.SimpleNamespace(**{k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
    fake.dumps = lambda *args, **kwargs: skeleton
    real, checkpoint.pickle = checkpoint.pickle, fake
    try:
        store.save(name, None)
    finally:
        checkpoint.pickle = real


def test_skeleton_errors_have_the_same_class_as_safe_loads(tmp_path):
    from test_pickling import MALFORMED, frame_trick_cut_opcode

    from binrec.checkpoint import CorruptSkeleton
    from binrec.pickling import PickleSecurityError, TruncatedError, safe_loads

    store = CheckpointStore(tmp_path)
    cases = [(d, data) for d, data in MALFORMED if data] + [
        ("EXT1", b"\x80\x02\x82\x01."),
        ("BUILD on a global", b"\x80\x02cfractions\nFraction\nN}X\x08\x00\x00\x00__repr__cbuiltins\nstr\ns\x86b."),
        ("frame trick", frame_trick_cut_opcode(b"cos\nsystem\nX\x04\x00\x00\x00true\x85R")),
    ]
    for i, (desc, data) in enumerate(cases):
        with pytest.raises(pickle.UnpicklingError) as expected:
            safe_loads(data)
        _save_with_skeleton(store, f"c{i}", data)
        with pytest.raises(pickle.UnpicklingError) as got:
            store.load(f"c{i}")
        if isinstance(expected.value, PickleSecurityError):
            assert type(got.value) is type(expected.value), desc
        else:
            assert type(expected.value) is TruncatedError
            assert isinstance(got.value, CorruptSkeleton) and isinstance(got.value, TruncatedError), desc
            assert isinstance(got.value, CheckpointCorrupted)
