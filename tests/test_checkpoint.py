"""binrec.checkpoint: round trips, the documented format, retention, names,
corruption at every section, and real SIGKILLs during saves."""

from __future__ import annotations

import datetime
import hashlib
import hmac
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


# -- integrity checks at their edges (issue 11, mutation testing) --------------------------------
#
# ``rebuild`` writes a checkpoint by hand from docs/checkpoint-format.md
# (struct for the prefix and footer, json for the header, zlib for the CRCs,
# hashlib/hmac for the digests), so a file can carry any layout while every
# checksum and digest is valid: only the check under test can refuse it.

SUBKEY_CONTEXT = b"binrec.signing.v1\x00binrec.checkpoint"


def read_parts(path) -> tuple[dict, bytes, list[bytes]]:
    """Header, skeleton bytes and buffer bytes of a checkpoint file."""
    raw = path.read_bytes()
    hlen = struct.unpack_from("<Q", raw, 16)[0]
    header = json.loads(raw[24 : 24 + hlen])
    sk = header["skeleton"]
    skeleton = raw[sk["offset"] : sk["offset"] + sk["length"]]
    buffers = [raw[b["offset"] : b["offset"] + b["length"]] for b in header["buffers"]]
    return header, skeleton, buffers


def rebuild(
    path,
    header: dict,
    skeleton: bytes,
    buffers: list[bytes],
    offsets: list[int],
    *,
    key: bytes | None = None,
    keyed_flag: bool | None = None,
    footer_offset: int | None = None,
    file_digest_key: bytes | None | str = "same",
) -> None:
    """Write ``path``: the skeleton at offsets[0], buffer i at offsets[i + 1]
    (later sections overwrite earlier ones where they overlap; every CRC is
    taken over the final bytes), digests SHA-256 or HMAC-SHA256 under the
    documented subkey."""
    header = json.loads(json.dumps(header))
    sections = [skeleton, *buffers]
    ends = [off + len(data) for off, data in zip(offsets, sections)]
    hjson = b""
    for _ in range(5):  # the footer follows the sections and the header; its offset is in the header
        fo = footer_offset if footer_offset is not None else -(-max(*ends, 24 + len(hjson)) // 64) * 64
        header["footer_offset"] = fo
        header["file_size"] = fo + 76
        body = bytearray(max(fo, *ends))
        body[24 : 24 + len(hjson)] = hjson
        for off, data in zip(offsets, sections):  # sections win where they overlap the header
            body[off : off + len(data)] = data
        header["skeleton"] = {
            "offset": offsets[0],
            "length": len(skeleton),
            "crc32": zlib.crc32(body[offsets[0] : ends[0]]),
        }
        for b, off, end in zip(header["buffers"], offsets[1:], ends[1:]):
            b.update(offset=off, length=end - off, crc32=zlib.crc32(body[off:end]))
        hjson = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    keyed = key is not None if keyed_flag is None else keyed_flag
    body[0:24] = struct.pack("<8sIIQ", b"BINRECCK", 1, 1 if keyed else 0, len(hjson))
    body = body[:fo]

    def digest(k, data):
        if k is None:
            return hashlib.sha256(data).digest()
        subkey = hmac.new(k, SUBKEY_CONTEXT, hashlib.sha256).digest()
        return hmac.new(subkey, data, hashlib.sha256).digest()

    head_digest = digest(key, bytes(body[: ends[0]]))
    file_digest = digest(key if file_digest_key == "same" else file_digest_key, bytes(body))
    footer = b"BRCKFOOT" + head_digest + file_digest
    path.write_bytes(bytes(body) + footer + struct.pack("<I", zlib.crc32(footer)))


TWO_BUFFERS = {"a": np.zeros(128, dtype=np.uint8), "b": np.zeros(128, dtype=np.uint8), "n": 5}


def two_buffer_checkpoint(tmp_path, key=None):
    store = CheckpointStore(tmp_path, key=key)
    store.save("c", TWO_BUFFERS)
    return store, tmp_path / "c.ckpt", *read_parts(tmp_path / "c.ckpt")


def test_rebuild_reproduces_the_saved_file_and_tolerates_wider_gaps(tmp_path):
    store, path, header, skeleton, buffers = two_buffer_checkpoint(tmp_path)
    original = path.read_bytes()
    offsets = [header["skeleton"]["offset"]] + [b["offset"] for b in header["buffers"]]
    rebuild(path, header, skeleton, buffers, offsets)
    assert path.read_bytes() == original  # the helper writes exactly the documented format
    rebuild(path, header, skeleton, buffers, [4096, 8192, 16384])  # gaps of zeros are allowed
    got = store.load("c")
    assert got["n"] == 5 and got["a"].tolist() == got["b"].tolist() == [0] * 128
    store.verify("c")


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param([4096, 16384, 8192], id="buffers-out-of-order"),
        pytest.param([8192, 4096, 12288], id="skeleton-after-a-buffer"),
        pytest.param([4096, 8192, 8192 + 64], id="buffers-overlap"),
        pytest.param([4096, 8192, 8192], id="buffers-coincide"),
    ],
)
def test_sections_out_of_order_or_overlapping_are_refused(tmp_path, layout):
    # The zero buffers agree wherever they overlap, so every CRC and digest
    # is valid and the arrays would load: only the structure is wrong.
    store, path, header, skeleton, buffers = two_buffer_checkpoint(tmp_path)
    rebuild(path, header, skeleton, buffers, layout)
    for check in (store.info, store.verify, store.load, lambda n: store.load(n, mmap=True)):
        with pytest.raises(CheckpointCorrupted, match="inconsistent header"):
            check("c")
    with pytest.warns(RuntimeWarning, match="skipping unreadable"):
        assert store.list() == []


def test_a_buffer_reaching_into_the_footer_is_refused(tmp_path):
    store, path, header, skeleton, buffers = two_buffer_checkpoint(tmp_path)
    rebuild(path, header, skeleton, buffers, [4096, 8192, 12288], footer_offset=12288 + 64)
    with pytest.raises(CheckpointCorrupted, match="inconsistent header: footer offset$"):
        store.info("c")


def test_a_section_inside_the_header_is_refused(tmp_path):
    # the header's metadata carries a protocol-0 pickle of None as text; a
    # skeleton pointed at it would unpickle: the header is not a section
    store = CheckpointStore(tmp_path)
    store.save("c", None, metadata={"p": "N."})
    path = tmp_path / "c.ckpt"
    header, skeleton, _ = read_parts(path)
    at = 24 + json.dumps(header, separators=(",", ":"), sort_keys=True).encode().index(b"N.")
    rebuild(path, header, b"N.", [], [at])
    assert path.read_bytes()[at : at + 2] == b"N."
    with pytest.raises(CheckpointCorrupted, match="inconsistent header"):
        store.load("c")


@pytest.mark.parametrize(
    "field,value", [("offset", -64), ("length", -1), ("offset", 64.0), ("length", "8"), ("length", 128.0)]
)
def test_section_fields_of_the_wrong_sign_or_type_are_refused(tmp_path, field, value):
    store, path, header, skeleton, buffers = two_buffer_checkpoint(tmp_path)
    raw = path.read_bytes()
    header["buffers"][1][field] = value
    header["created"] = int(header["created"])  # shorter, so the header keeps its length (padded with JSON spaces)
    hjson = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    hlen = struct.unpack_from("<Q", raw, 16)[0]
    assert len(hjson) <= hlen
    path.write_bytes(
        raw[:24] + hjson.ljust(hlen) + raw[24 + hlen :]
    )  # the file size stays right: only the field is wrong
    with pytest.raises(CheckpointCorrupted, match=f"inconsistent header: section at {header['buffers'][1]['offset']} "):
        store.info("c")


def test_signed_footer_digests_are_hmac_under_the_documented_subkey(tmp_path):
    store, path, header, skeleton, buffers = two_buffer_checkpoint(tmp_path, key=KEY)
    raw = path.read_bytes()
    fo = header["footer_offset"]
    subkey = hmac.new(KEY, SUBKEY_CONTEXT, hashlib.sha256).digest()
    sk_end = header["skeleton"]["offset"] + header["skeleton"]["length"]
    assert raw[fo + 8 : fo + 40] == hmac.new(subkey, raw[:sk_end], hashlib.sha256).digest()
    assert raw[fo + 40 : fo + 72] == hmac.new(subkey, raw[:fo], hashlib.sha256).digest()
    assert raw[fo + 40 : fo + 72] != hashlib.sha256(raw[:fo]).digest()


@pytest.mark.parametrize("use_mmap", [False, True])
@pytest.mark.parametrize("file_digest_key", [None, bytes(32)])
def test_signed_arrays_re_digested_without_the_key_are_refused(tmp_path, use_mmap, file_digest_key):
    # An attacker without the key changes an array, fixes its CRC and
    # recomputes the whole-file digest with plain SHA-256 (or another key);
    # the head digest stays the genuine HMAC.
    store, path, header, skeleton, buffers = two_buffer_checkpoint(tmp_path, key=KEY)
    offsets = [header["skeleton"]["offset"]] + [b["offset"] for b in header["buffers"]]
    rebuild(path, header, skeleton, buffers, offsets, key=KEY)
    assert store.load("c")["n"] == 5  # the genuine file, rebuilt, loads
    tampered = [buffers[0], bytes([7]) * len(buffers[1])]
    rebuild(path, header, skeleton, tampered, offsets, key=KEY, file_digest_key=file_digest_key)
    with pytest.raises(BadSignature):
        store.load("c", mmap=use_mmap)
    with pytest.raises(BadSignature):
        store.verify("c")


def test_a_signed_file_re_digested_entirely_without_the_key_is_refused(tmp_path):
    store, path, header, skeleton, buffers = two_buffer_checkpoint(tmp_path, key=KEY)
    offsets = [header["skeleton"]["offset"]] + [b["offset"] for b in header["buffers"]]
    rebuild(path, header, skeleton, buffers, offsets, key=None, keyed_flag=True)
    for check in (store.load, store.verify):
        with pytest.raises(BadSignature):
            check("c")


def test_unsigned_whole_file_digest_is_checked_by_verify(tmp_path):
    store, path, header, skeleton, buffers = two_buffer_checkpoint(tmp_path)
    offsets = [header["skeleton"]["offset"]] + [b["offset"] for b in header["buffers"]]
    rebuild(path, header, skeleton, buffers, offsets, file_digest_key=KEY)  # wrong kind of digest
    with pytest.raises(CheckpointCorrupted, match="whole-file SHA-256"):
        store.verify("c")


def test_retention_keeps_the_checkpoint_just_saved_even_if_its_clock_looks_older(tmp_path):
    # "old" claims to have been written an hour from now (a clock stepped
    # back since): sorted by time, the new checkpoint is the oldest.
    store = CheckpointStore(tmp_path)
    store.save("old", {"v": 1})
    path = tmp_path / "old.ckpt"
    header, skeleton, buffers = read_parts(path)
    header["created"] = time.time() + 3600
    rebuild(path, header, skeleton, buffers, [header["skeleton"]["offset"]])
    assert store.info("old").created > time.time()
    CheckpointStore(tmp_path, keep_last=1).save("new", {"v": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.ckpt"]


def test_retention_with_skewed_clocks_deletes_exactly_the_excess(tmp_path):
    store = CheckpointStore(tmp_path)
    for i, skew in enumerate([7200, 3600, -3600]):
        store.save(f"s{i}", {"i": i})
        path = tmp_path / f"s{i}.ckpt"
        header, skeleton, buffers = read_parts(path)
        header["created"] = time.time() + skew
        rebuild(path, header, skeleton, buffers, [header["skeleton"]["offset"]])
    CheckpointStore(tmp_path, keep_last=2).save("new", {"i": 3})
    # by created time: s2 (-1 h), new (now), s1 (+1 h), s0 (+2 h); keep 2,
    # the new one always: the oldest other (s2) and then s1 go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.ckpt", "s0.ckpt"]


STALLED_SAVER = r"""
import os, sys, time
import numpy as np
from binrec.checkpoint import CheckpointStore
def stall(src, dst):  # the temp file is complete; never rename it
    print(os.path.basename(src), flush=True)
    time.sleep(600)
os.replace = stall
CheckpointStore(sys.argv[1]).save("big", {"w": np.ones(1000)})
"""


@needs_sigkill
def test_a_live_writers_temp_file_is_kept_and_a_killed_writers_is_cleaned(tmp_path):
    store = CheckpointStore(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", STALLED_SAVER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        temp = tmp_path / proc.stdout.readline().strip()
        assert temp.name.startswith(f".binrec-tmp-{proc.pid}-") and temp.exists()
        store.save("mine", {"x": 1})
        assert temp.exists(), "a live writer's temp file was removed"
        assert proc.poll() is None, "probing the live writer must not signal it"
        assert [i.name for i in store.list()] == ["mine"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert temp.exists()
        store.save("mine", {"x": 2})
        assert not temp.exists(), "the killed writer's temp file stayed"
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_temp_files_of_this_process_and_of_unknown_names_are_kept(tmp_path):
    # this process may be saving in another thread; a name without a pid is not ours to judge
    store = CheckpointStore(tmp_path)
    own = tmp_path / f".binrec-tmp-{os.getpid()}-999-other.ckpt"
    unknown = tmp_path / ".binrec-tmp-nopid.ckpt"
    other_suffix = tmp_path / f".binrec-tmp-{2**22 + 12345}-1-x.ckpt.part"
    for p in (own, unknown, other_suffix):
        p.write_bytes(b"partial")
    store.save("x", {})
    assert own.exists() and unknown.exists() and other_suffix.exists()


def test_temp_files_of_several_dead_writers_are_all_cleaned(tmp_path):
    dead = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        dead.append(proc.pid)
    store = CheckpointStore(tmp_path)
    temps = [tmp_path / f".binrec-tmp-{pid}-1-t{i}.ckpt" for i, pid in enumerate(dead)]
    for t in temps:
        t.write_bytes(b"BINRECCK")
    store.save("x", {})
    assert [t for t in temps if t.exists()] == []


# -- header length: the 64 MiB cap and the file size, checked before reading (issue 11) ----

MAX_HEADER = 64 << 20  # docs/checkpoint-format.md


def claimed_header_length(path, hlen: int, size: int) -> None:
    """A file of `size` bytes (sparse: nothing is written past the prefix)
    whose prefix is valid and claims a header of `hlen` bytes."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("<8sIIQ", b"BINRECCK", 1, 0, hlen))
        fh.truncate(size)


def test_a_header_of_exactly_64_mib_loads(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("c", {"n": 5})
    path = tmp_path / "c.ckpt"
    header, skeleton, _ = read_parts(path)
    sk_off = -(-(24 + MAX_HEADER) // 64) * 64  # the skeleton right after a header of exactly the cap
    fo = -(-(sk_off + len(skeleton)) // 64) * 64
    header.update(footer_offset=fo, file_size=fo + 76, metadata={"pad": ""})
    header["skeleton"]["offset"] = sk_off
    header["metadata"]["pad"] = "x" * (MAX_HEADER - len(json.dumps(header, separators=(",", ":"), sort_keys=True)))
    rebuild(path, header, skeleton, [], [sk_off])
    with open(path, "rb") as fh:
        assert struct.unpack("<Q", fh.read(24)[16:])[0] == MAX_HEADER
    assert len(store.info("c").metadata["pad"]) > MAX_HEADER - 400
    assert store.load("c") == {"n": 5}


def test_a_header_one_byte_over_64_mib_is_refused_before_it_is_read(tmp_path):
    store = CheckpointStore(tmp_path)
    claimed_header_length(tmp_path / "c.ckpt", MAX_HEADER + 1, MAX_HEADER + 4096)
    with pytest.raises(CheckpointCorrupted, match=f"header length {MAX_HEADER + 1} exceeds the limit of {MAX_HEADER}"):
        store.info("c")


@pytest.mark.parametrize("hlen", [2**40, 2**64 - 1])
def test_a_huge_claimed_header_length_is_refused_without_allocating_it(tmp_path, hlen):
    store = CheckpointStore(tmp_path)
    claimed_header_length(tmp_path / "c.ckpt", hlen, 4096)
    for check in (store.info, store.load, store.verify):
        with pytest.raises(CheckpointCorrupted, match=f"header length {hlen} exceeds"):
            check("c")


def test_a_header_length_past_the_end_of_the_file_is_refused_naming_both(tmp_path):
    store = CheckpointStore(tmp_path)
    claimed_header_length(tmp_path / "c.ckpt", 1000, 100)
    with pytest.raises(CheckpointCorrupted, match="header length 1000 does not fit in a file of 100 bytes"):
        store.info("c")
    claimed_header_length(tmp_path / "c.ckpt", 77, 100)  # 24 + 77: one byte past the end
    with pytest.raises(CheckpointCorrupted, match="header length 77 does not fit in a file of 100 bytes"):
        store.info("c")


def test_a_file_cut_right_after_its_header_is_reported_as_truncated(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save("c", {"w": np.ones(3)})
    path = tmp_path / "c.ckpt"
    raw = path.read_bytes()
    hlen = struct.unpack_from("<Q", raw, 16)[0]
    path.write_bytes(raw[: 24 + hlen])  # the header is whole; every section is gone
    with pytest.raises(CheckpointCorrupted, match=r"file is \d+ bytes, header says \d+ \(truncated"):
        store.info("c")


def test_save_refuses_metadata_that_would_make_the_header_over_64_mib(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=1)
    store.save("old", {"v": 1})
    with pytest.raises(ValueError, match="exceeds the limit"):
        store.save("new", {"v": 2}, metadata={"pad": "x" * MAX_HEADER})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.ckpt"]  # nothing written, nothing deleted
    assert store.load("old") == {"v": 1}


def corrupt_prefix(raw: bytes, at: int, data: bytes) -> bytes:
    return raw[:at] + data + raw[at + len(data) :]


HEADER_DEFECTS = {
    # name: (how to damage a valid file, what the error must say)
    "too-short": (lambda raw: raw[:23], "file of 23 bytes is too short"),
    "bad-magic": (lambda raw: corrupt_prefix(raw, 0, b"NOTACKPT"), "not a binrec checkpoint"),
    "format-version": (
        lambda raw: corrupt_prefix(raw, 8, struct.pack("<I", 2)),
        "unsupported checkpoint format version 2",
    ),
    "header-not-json": (lambda raw: corrupt_prefix(raw, 24, b"\xff"), "unreadable header"),
    "header-not-an-object": (None, "inconsistent header: not an object"),
    "file-size": (lambda raw: raw + bytes(64), "truncated or extended"),
    "missing-field": (
        lambda raw: raw.replace(b'"skeleton":', b'"skeletoX":', 1),
        "missing or malformed field 'skeleton'",
    ),
}


@pytest.mark.parametrize("defect", sorted(HEADER_DEFECTS))
def test_every_header_refusal_names_the_file_and_what_is_wrong(tmp_path, defect):
    damage, says = HEADER_DEFECTS[defect]
    store = CheckpointStore(tmp_path)
    store.save("c", {"w": np.ones(3)})
    path = tmp_path / "c.ckpt"
    raw = path.read_bytes()
    if damage is None:  # a JSON array where the object should be, of the same length
        hlen = struct.unpack_from("<Q", raw, 16)[0]
        raw = corrupt_prefix(raw, 24, b"[" + b" " * (hlen - 2) + b"]")
    else:
        raw = damage(raw)
    path.write_bytes(raw)
    with pytest.raises(CheckpointCorrupted) as err:
        store.info("c")
    assert str(err.value).startswith(f"{path}: ") and says in str(err.value)


@pytest.mark.parametrize("metadata", [[1, 2], "text", 5])
def test_metadata_that_is_not_a_json_object_is_refused(tmp_path, metadata):
    store = CheckpointStore(tmp_path)
    store.save("c", {"v": 1})
    path = tmp_path / "c.ckpt"
    header, skeleton, buffers = read_parts(path)
    header["metadata"] = metadata  # everything else, "created" included, stays valid
    rebuild(path, header, skeleton, buffers, [header["skeleton"]["offset"]])
    with pytest.raises(CheckpointCorrupted, match="inconsistent header: metadata$"):
        store.info("c")


def test_temp_files_are_judged_one_by_one_whatever_order_the_folder_lists_them(tmp_path):
    # dead writers' files interleaved (in creation order) with names that
    # are not judged and with this process's own: whichever order the folder
    # lists them in, each one is judged, none stops the others being judged
    dead = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        dead.append(proc.pid)
    removed, kept = [], []
    for i in range(12):
        removed.append(tmp_path / f".binrec-tmp-{dead[i % 3]}-{i}-d{i}.ckpt")
        kept.append(tmp_path / f".binrec-tmp-x{i}.ckpt")  # no pid: not ours to judge
        kept.append(tmp_path / f".binrec-tmp-{os.getpid()}-{1000 + i}-own{i}.ckpt")  # this process may be saving
        for p in (removed[-1], kept[-2], kept[-1]):
            p.write_bytes(b"BINRECCK")
    CheckpointStore(tmp_path).save("x", {})
    assert [p.name for p in removed if p.exists()] == []
    assert [p.name for p in kept if not p.exists()] == []


def test_a_dead_writers_temp_file_removed_by_someone_else_first_does_not_fail_the_save(tmp_path, monkeypatch):
    # two savers clean the same folder: the other one unlinks the file
    # between our listing and our unlink
    import binrec.checkpoint as ckpt

    temps = [tmp_path / f".binrec-tmp-{2**22 + i}-1-t{i}.ckpt" for i in range(3)]
    for t in temps:
        t.write_bytes(b"BINRECCK")

    def dead_and_cleaned_by_another_saver(pid, path):
        path.unlink()
        return False

    monkeypatch.setattr(ckpt, "_pid_alive", dead_and_cleaned_by_another_saver)
    CheckpointStore(tmp_path).save("x", {"v": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ckpt"]


def test_a_temp_file_that_may_not_be_deleted_does_not_fail_the_save_or_stop_the_cleaning(tmp_path, monkeypatch):
    # e.g. another user's file in a shared sticky folder: unlink raises
    # PermissionError (simulated: the tests may run as root)
    import pathlib

    import binrec.checkpoint as ckpt

    theirs = [tmp_path / f".binrec-tmp-{2**22 + i}-1-theirs{i}.ckpt" for i in range(3)]
    ours = [tmp_path / f".binrec-tmp-{2**22 + 10 + i}-1-ours{i}.ckpt" for i in range(3)]
    for t in theirs + ours:
        t.write_bytes(b"BINRECCK")
    real_unlink = pathlib.Path.unlink

    def unlink(self, missing_ok=False):
        if "theirs" in self.name:
            raise PermissionError(13, "Operation not permitted", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    monkeypatch.setattr(ckpt, "_pid_alive", lambda pid, path: False)
    CheckpointStore(tmp_path).save("x", {"v": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.ckpt"] + [t.name for t in theirs])


def test_metadata_json_cannot_encode_is_refused_before_anything_is_written(tmp_path):
    circular: dict = {}
    circular["self"] = circular  # json.dumps raises ValueError (not TypeError) for this one
    with pytest.raises(ValueError, match="Circular"):
        json.dumps(circular)
    for bad in (circular, {"a": object()}):
        with pytest.raises(TypeError, match="checkpoint metadata must be JSON-serialisable"):
            CheckpointStore(tmp_path).save("x", {}, metadata=bad)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", [-1, True, 1.0, "1"])
def test_a_data_version_must_be_a_non_negative_int(tmp_path, version):
    with pytest.raises(ValueError, match="version must be a non-negative int"):
        CheckpointStore(tmp_path).save("x", {}, version=version)
    assert list(tmp_path.iterdir()) == []


def test_data_version_zero_is_a_version(tmp_path):
    store = CheckpointStore(tmp_path)
    assert store.save("x", {"v": 1}, version=0).version == 0
    assert store.info("x").version == 0


def test_save_returns_the_same_info_as_info_reads_back(tmp_path):
    store = CheckpointStore(tmp_path, key=KEY)
    saved = store.save("x", {"w": np.ones(5), "v": np.zeros(3)}, metadata={"m": 1}, version=2)
    assert saved == store.info("x")
    assert saved.size == os.path.getsize(tmp_path / "x.ckpt") and saved.buffers == 2 and saved.signed


def test_a_save_that_fails_while_writing_leaves_no_temp_file_and_raises_the_os_error(tmp_path, monkeypatch):
    import errno

    import binrec.checkpoint as ckpt

    store = CheckpointStore(tmp_path)
    store.save("x", {"v": 1})

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left") as err:
        store.save("x", {"v": 2})
    assert err.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ckpt"]  # the temp file is gone
    monkeypatch.undo()
    assert store.load("x") == {"v": 1}  # the old checkpoint is untouched


def test_a_save_that_cannot_create_its_temp_file_raises_the_os_error(tmp_path):
    import errno
    import threading

    # a directory where this thread's temp file would go (this process's
    # own temp names are never cleaned): creating it fails with EISDIR
    blocker = tmp_path / f".binrec-tmp-{os.getpid()}-{threading.get_ident()}-x.ckpt"
    blocker.mkdir()
    with pytest.raises(OSError) as err:
        CheckpointStore(tmp_path).save("x", {"v": 1})
    assert err.value.errno == errno.EISDIR
    assert list(tmp_path.iterdir()) == [blocker]  # no checkpoint, nothing else written


def test_saving_over_a_symlinked_name_replaces_the_link_not_its_target(tmp_path):
    # the store owns its folder's entries: a save puts a new file at
    # <name>.ckpt (as os.replace does) and never writes through a link
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not a checkpoint")
    store = CheckpointStore(tmp_path / "store")
    (tmp_path / "store" / "x.ckpt").symlink_to(outside)
    store.save("x", {"v": 1})
    assert not (tmp_path / "store" / "x.ckpt").is_symlink()
    assert outside.read_bytes() == b"not a checkpoint"
    assert store.load("x") == {"v": 1}


def test_a_memoryview_key_signs_as_its_bytes_do(tmp_path):
    CheckpointStore(tmp_path, key=memoryview(KEY)).save("x", {"v": 1})
    assert CheckpointStore(tmp_path, key=KEY).load("x") == {"v": 1}


def test_an_empty_key_list_is_refused_when_the_store_is_made(tmp_path):
    # (it used to make a store that saved unsigned checkpoints it then refused to load)
    with pytest.raises(ValueError, match="no keys given"):
        CheckpointStore(tmp_path, key=[])
