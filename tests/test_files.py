"""Record files: streaming, random access, atomic writes, pandas and Arrow.
Oracles: struct.iter_unpack over the same bytes, real files and pipes."""

from __future__ import annotations

import io
import os
import re
import signal
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest

from binrec import Error, Struct

FMT = ">I10sf"
NAMES = "id name temp"


posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="non-blocking pipes and fstat of sockets are POSIX only"
)
needs_sigkill = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only (Windows has no signals to kill with)"
)


def make_records(n: int) -> bytes:
    return b"".join(struct.pack(FMT, i, b"st%d" % (i % 97), i / 4) for i in range(n))


def oracle(raw: bytes) -> list[tuple]:
    return [(i, name.rstrip(b"\x00"), t) for i, name, t in struct.iter_unpack(FMT, raw)]


@pytest.fixture
def s():
    return Struct(FMT, NAMES)


def collect(chunks) -> tuple[list, list]:
    arrays, extra = [], []
    for c in chunks:
        (extra if isinstance(c, bytes) else arrays).append(c)
    rows = [r for a in arrays for r in a.tolist()]
    return rows, extra


@pytest.mark.parametrize("n,chunk", [(0, 4), (1, 4), (4, 4), (5, 4), (1000, 64), (1000, 65536)])
def test_iter_unpack_path_matches_struct(tmp_path, s, n, chunk):
    raw = make_records(n)
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    chunks = list(s.iter_unpack(path, chunk_size=chunk))
    assert all(len(c) <= chunk for c in chunks) and all(c.dtype == s.dtype for c in chunks)
    assert collect(chunks)[0] == oracle(raw)


def test_iter_unpack_chunks_own_their_memory(tmp_path, s):
    raw = make_records(10)
    chunks = list(s.iter_unpack(io.BytesIO(raw), chunk_size=3))
    # the read buffer is reused: earlier chunks must not change
    assert collect(chunks)[0] == oracle(raw)
    assert all(c.flags.owndata for c in chunks)


def test_file_larger_than_chunk_by_one_byte(tmp_path, s):
    raw = make_records(8) + b"\x01"
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    with pytest.raises(Error, match=r"partial record of 1 bytes at byte offset 144\)$"):
        list(s.iter_unpack(path, chunk_size=8))
    rows, extra = collect(s.iter_unpack(path, chunk_size=8, trailing="ignore"))
    assert rows == oracle(raw[:-1]) and extra == []
    rows, extra = collect(s.iter_unpack(path, chunk_size=8, trailing="return"))
    assert rows == oracle(raw[:-1]) and extra == [b"\x01"]


def test_header_offset_and_buffers(s):
    raw = b"HEADER" + make_records(7)
    rows, _ = collect(s.iter_unpack(raw, offset=6, chunk_size=2))
    assert rows == oracle(raw[6:])
    rows, _ = collect(s.iter_unpack(memoryview(raw), offset=6, chunk_size=100))
    assert rows == oracle(raw[6:])
    with pytest.raises(Error, match="partial record"):
        list(s.iter_unpack(raw, offset=5))


def test_iter_unpack_from_a_pipe_with_short_reads(s):
    raw = b"HDR" + make_records(3000)
    r, w = os.pipe()

    def writer():
        with os.fdopen(w, "wb", buffering=0) as fh:
            for i in range(0, len(raw), 777):  # odd sizes: records split across reads
                fh.write(raw[i : i + 777])

    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(r, "rb", buffering=0) as fh:
        rows, _ = collect(s.iter_unpack(fh, offset=3, chunk_size=1000))
    t.join()
    assert rows == oracle(raw[3:])


def test_iter_unpack_from_a_subprocess_stdout(s):
    raw = make_records(500)
    code = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    threading.Thread(target=lambda: (proc.stdin.write(raw), proc.stdin.close())).start()
    rows, _ = collect(s.iter_unpack(proc.stdout, chunk_size=128))
    proc.wait(timeout=60)
    assert rows == oracle(raw)


def test_iter_unpack_text_and_bad_arguments(s):
    raw = make_records(3)
    chunk = next(s.iter_unpack(raw, text="name"))
    assert chunk["name"].tolist() == ["st0", "st1", "st2"]
    with pytest.raises(ValueError, match="chunk_size"):
        list(s.iter_unpack(raw, chunk_size=0))
    with pytest.raises(ValueError, match="trailing"):
        list(s.iter_unpack(raw, trailing="keep"))
    with pytest.raises(Error, match="before the offset"):
        list(s.iter_unpack(io.BufferedReader(io.BytesIO(b"abc")), offset=10))


@pytest.mark.parametrize("use_mmap", [False, True])
def test_read_file(tmp_path, s, use_mmap):
    raw = make_records(1234)
    path = tmp_path / "r.bin"
    path.write_bytes(b"HDR!" + raw)
    arr = s.read_file(path, offset=4, mmap=use_mmap)
    assert arr.tolist() == oracle(raw) and arr.flags.owndata
    assert s.read_file(path, offset=4 + 18 * 10, count=5, mmap=use_mmap).tolist() == oracle(raw)[10:15]
    empty = tmp_path / "e.bin"
    empty.write_bytes(b"")
    assert s.read_file(empty, mmap=use_mmap).shape == (0,)
    one = tmp_path / "one.bin"
    one.write_bytes(raw[:18])
    assert s.read_file(one, mmap=use_mmap).tolist() == oracle(raw[:18])
    with pytest.raises(Error, match=r"r\.bin: .* partial record of \d+ bytes at byte offset 22212\)$"):
        s.read_file(path, mmap=use_mmap)
    with pytest.raises(Error, match="need"):
        s.read_file(path, offset=4, count=2000, mmap=use_mmap)


def test_read_file_large_in_chunks(tmp_path):
    s = Struct("<q")
    vals = np.arange(1_500_000, dtype="<i8")
    path = tmp_path / "big.bin"
    path.write_bytes(vals.tobytes())  # > the 8 MiB read chunk
    assert np.array_equal(s.read_file(path)["f0"], vals)


def test_read_record_random_access(tmp_path, s):
    raw = make_records(100)
    path = tmp_path / "r.bin"
    path.write_bytes(b"XY" + raw)
    for i in (0, 1, 57, 99, -1, -100):
        rec = s.read_record(path, i, offset=2)
        assert tuple(rec.tolist()) == oracle(raw)[i]
    with open(path, "rb") as fh:
        assert s.read_record(fh, 42, offset=2)["id"] == 42
    for bad in (100, -101):
        with pytest.raises(Error, match="out of range"):
            s.read_record(path, bad, offset=2)


def test_write_file_atomic_and_append(tmp_path, s):
    path = tmp_path / "w.bin"
    rows = [(1, b"a", 0.5), (2, b"b", 1.5)]
    assert s.write_file(path, rows) == 2
    assert path.read_bytes() == b"".join(struct.pack(FMT, *r) for r in rows)
    assert s.write_file(path, [(3, b"c", 2.5)], append=True) == 1
    assert oracle(path.read_bytes())[-1] == (3, b"c", 2.5)
    before = path.read_bytes()
    with pytest.raises(Error, match="row 1"):
        s.write_file(path, [(4, b"d", 0.0), (-1, b"e", 0.0)])
    with pytest.raises(Error):
        s.write_file(path, [(-1, b"e", 0.0)], append=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.bin"]  # no temp left


@needs_sigkill
def test_write_file_crash_leaves_old_file(tmp_path, s):
    """A writer killed mid-write (SIGKILL) leaves the previous file whole."""
    path = tmp_path / "w.bin"
    s.write_file(path, [(1, b"old", 1.0)])
    old = path.read_bytes()
    code = f"""
import os, signal, numpy as np, binrec
from binrec import files
s = binrec.Struct({FMT!r}, {NAMES!r})
arr = np.zeros(2_000_000, s.dtype)
real = files._write_records
def dying(s_, fh, a, p):
    fh.write(b"partial")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
files._write_records = dying
s.write_file({str(path)!r}, arr)
"""
    res = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert res.returncode == -9
    assert path.read_bytes() == old


def test_unpack_frame_and_table(s):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    raw = make_records(50)
    df = s.unpack_frame(raw, text="name")
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["id", "name", "temp"]
    assert df["name"].tolist() == [r[1].decode() for r in oracle(raw)]
    assert df["id"].dtype == np.uint32 and df["temp"].dtype == np.float32
    cols = s.unpack_columns(raw)
    frame = s.unpack_frame(raw)
    assert frame["temp"].tolist() == cols["temp"].tolist()
    table = s.unpack_table(raw, text="name")
    assert isinstance(table, pa.Table)
    assert table.column("id").to_pylist() == [r[0] for r in oracle(raw)]
    assert table.schema.field("name").type == pa.string()
    assert s.unpack_table(raw).schema.field("name").type == pa.binary()
    # numeric columns are handed over without a copy
    ids = cols["id"]
    t2 = pa.table({"id": pa.array(ids)})
    assert t2.column("id").chunk(0).buffers()[1].address == ids.ctypes.data


@pytest.mark.parametrize("n,chunk", [(0, 4), (1, 4), (9, 4), (1000, 64)])
def test_iter_unpack_mmap_matches_readinto(tmp_path, s, n, chunk):
    raw = b"HDR" + make_records(n) + b"\x07"
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    a = collect(s.iter_unpack(path, chunk_size=chunk, offset=3, trailing="return", mmap=True))
    b = collect(s.iter_unpack(path, chunk_size=chunk, offset=3, trailing="return"))
    assert a == b and a[0] == oracle(raw[3:-1]) and a[1] == [b"\x07"]
    with pytest.raises(Error, match="partial record"):
        list(s.iter_unpack(path, offset=3, mmap=True))
    with pytest.raises(ValueError, match="path"):
        list(s.iter_unpack(io.BytesIO(raw), mmap=True))


def test_small_file_with_a_huge_chunk_size_allocates_little(tmp_path, s):
    import tracemalloc

    path = tmp_path / "r.bin"
    path.write_bytes(make_records(3))
    tracemalloc.start()
    chunks = list(s.iter_unpack(path, chunk_size=50_000_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert collect(chunks)[0] == oracle(make_records(3))
    assert peak < 10_000_000  # not 50,000,000 records x 18 bytes


def test_file_object_already_past_a_header(tmp_path, s):
    raw = make_records(5)
    path = tmp_path / "r.bin"
    path.write_bytes(b"HEADER" + raw)
    with open(path, "rb") as fh:
        fh.read(6)
        rows, _ = collect(s.iter_unpack(fh, chunk_size=2))
    assert rows == oracle(raw)


# -- issue 10: no silent wrong answers -------------------------------------------


def test_read_record_checks_whole_records_like_read_file(tmp_path, s):
    """A file with a 16-byte header read without offset=16: read_file fails,
    and read_record must fail with the very same message (not return a
    record decoded from the wrong bytes)."""
    path = tmp_path / "sensors.bin"
    path.write_bytes(b"H" * 16 + make_records(10))
    with pytest.raises(Error) as from_file:
        s.read_file(path)
    with pytest.raises(Error) as from_record:
        s.read_record(path, 3)
    assert str(from_record.value) == str(from_file.value)
    assert "not a whole number of 18-byte records" in str(from_record.value)
    with open(path, "rb") as fh, pytest.raises(Error, match="not a whole number"):
        s.read_record(fh, 3)
    assert tuple(s.read_record(path, 3, offset=16).tolist()) == oracle(make_records(10))[3]


def test_read_record_negative_offset_is_a_binrec_error(tmp_path, s):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(3))
    with pytest.raises(Error, match=r"r\.bin: offset must be >= 0 .*header.*got -5"):
        s.read_record(path, 0, offset=-5)
    with open(path, "rb") as fh, pytest.raises(Error, match="offset must be >= 0"):
        s.read_record(fh, 0, offset=-5)


def test_read_record_on_a_pipe_names_the_pipe_not_its_fd(s):
    r, w = os.pipe()
    os.write(w, make_records(3))
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        with pytest.raises(Error) as info:
            s.read_record(fh, 0)
    msg = str(info.value)
    assert msg.startswith(f"<pipe, fd {r}>: ") and "seekable" in msg
    assert not msg.startswith(f"{r}:")


def test_iter_unpack_partial_record_on_a_pipe_names_the_pipe(s):
    r, w = os.pipe()
    os.write(w, make_records(2) + b"xy")
    os.close(w)
    with (
        os.fdopen(r, "rb") as fh,
        pytest.raises(
            Error, match=r"^<pipe, fd \d+>: \d+ bytes after offset 0 are not a whole number.* partial record of 2 bytes"
        ),
    ):
        list(s.iter_unpack(fh))


@pytest.mark.parametrize("kind", ["open file", "BytesIO", "pipe"])
def test_read_file_accepts_binary_file_objects(tmp_path, s, kind):
    raw = make_records(300)
    data = b"HDR!" + raw
    path = tmp_path / "r.bin"
    path.write_bytes(data)

    def opened():
        if kind == "open file":
            return open(path, "rb")
        if kind == "BytesIO":
            return io.BytesIO(data)
        r, w = os.pipe()
        threading.Thread(target=lambda: (os.write(w, data), os.close(w))).start()
        return os.fdopen(r, "rb")

    with opened() as fh:
        assert s.read_file(fh, offset=4).tolist() == oracle(raw)
    with opened() as fh:
        assert s.read_file(fh, offset=4 + 18 * 10, count=5).tolist() == oracle(raw)[10:15]
    with opened() as fh:
        fh.read(4)  # already past the header: read from the current position, as iter_unpack does
        assert s.read_file(fh, text="name")["name"].tolist()[:2] == ["st0", "st1"]
    with (
        opened() as fh,
        pytest.raises(
            Error,
            match=r"not a whole number of 18-byte records \(300 whole records and a partial record of 4 bytes at byte offset 5400\)",
        ),
    ):
        s.read_file(fh)
    with (
        opened() as fh,
        pytest.raises(Error, match=r"301 records of 18 bytes need 5418 bytes after offset 4; the file has 5400"),
    ):
        s.read_file(fh, offset=4, count=301)


def test_read_file_refuses_a_buffer_with_a_pointer_to_unpack(s):
    with pytest.raises(TypeError, match="unpack"):
        s.read_file(make_records(2))


def test_iter_unpack_negative_offset_on_a_buffer_counts_from_the_end(s):
    """struct.unpack_from's rule (the oracle): offset -n starts n bytes
    before the end; beyond the start it is an error in struct's words."""
    raw = b"HEAD" + make_records(5)
    for n in (18, 36, 90):
        rows, _ = collect(s.iter_unpack(raw, offset=-n, chunk_size=2))
        assert rows == [(i, name.rstrip(b"\x00"), t) for i, name, t in struct.iter_unpack(FMT, raw[-n:])]
        assert rows[0] == oracle(struct.pack(FMT, *struct.unpack_from(FMT, raw, -n)))[0]
    rows, _ = collect(s.iter_unpack(memoryview(raw), offset=-len(raw) + 4))
    assert rows == oracle(raw[4:])
    with pytest.raises(struct.error) as theirs:
        struct.unpack_from(FMT, raw, -len(raw) - 1)
    with pytest.raises(Error) as ours:
        list(s.iter_unpack(raw, offset=-len(raw) - 1))
    assert str(ours.value) == str(theirs.value) == f"offset {-len(raw) - 1} out of range for {len(raw)}-byte buffer"


def test_iter_unpack_negative_offset_on_a_file_is_an_error(tmp_path, s):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(5))
    for source in (path, io.BytesIO(make_records(5))):
        for use_mmap in (False, True) if source is path else (False,):
            with pytest.raises(Error, match="offset must be >= 0 in a file"):
                list(s.iter_unpack(source, offset=-18, mmap=use_mmap))
    with pytest.raises(Error, match="offset must be >= 0 in a file"):
        s.read_file(path, offset=-18)


def _readme_record_file_calls() -> list[str]:
    # the headered example lives in the files page of the docs since the
    # README was cut down (issue 12)
    page = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "files.md")
    if not os.path.exists(page):
        pytest.skip("docs/files.md is not beside tests/ (a copy of the tests outside the checkout)")
    with open(page, encoding="utf-8") as fh:
        text = fh.read()
    section = text.split("```python", 1)[1].split("```", 1)[0]
    return [
        line.split("  #")[0] for line in section.splitlines() if line.startswith(("s.read_file(", "s.read_record("))
    ]


def test_readme_record_file_example_reads_a_headered_file(tmp_path, s, monkeypatch):
    """The docs' record-file example names a file with a 16-byte header:
    its read_file and read_record calls must work on such a file."""
    calls = _readme_record_file_calls()
    assert len(calls) == 2
    monkeypatch.chdir(tmp_path)
    raw = make_records(1_000_001)  # the example reads record 1,000,000
    (tmp_path / "sensors.bin").write_bytes(b"\x00" * 16 + raw)
    whole = eval(calls[0], {"s": s})
    assert len(whole) == 1_000_001 and whole[:3].tolist() == oracle(raw[: 3 * 18])
    rec = eval(calls[1], {"s": s})
    assert tuple(rec.tolist()) == oracle(raw[-18:])[0]


# -- issue 11, item 6: the last chunk's padding is zero, not stale heap -----------

#: Native formats with alignment gaps and Pascal strings (whose spare byte,
#: and the whole of a one-byte ``p``, is padding in the decoded record),
#: each with a rule for the values of record ``i`` (no trailing NULs, so
#: struct's bytes and numpy's S values compare equal).
PADDED = {
    "@bqp3p": lambda i: (i % 100 - 50, i * 1000003, b"", b"ab"[: i % 3]),
    "@h5pi?d": lambda i: (-i, b"xyzw"[: i % 5], i << 20, bool(i % 2), i / 8),
    "@c7pQ": lambda i: (b"%c" % (65 + i % 26), b"p%d" % i, i * 7),
}


def padded_records(fmt: str, n: int) -> bytes:
    return b"".join(struct.pack(fmt, *PADDED[fmt](i)) for i in range(n))


def padding_bytes(dtype: np.dtype) -> list[int]:
    """Byte positions of a record that no field of ``dtype`` covers (numpy's
    own description of the record is the oracle)."""
    covered = set()
    for spec in dtype.fields.values():
        covered.update(range(spec[1], spec[1] + spec[0].itemsize))
    return [b for b in range(dtype.itemsize) if b not in covered]


def dirty_the_heap(record_size: int, up_to: int) -> None:
    """Allocate and free 0xFF-filled blocks of every size a chunk of up to
    ``up_to`` records can have (numpy's allocator caches small blocks by
    size; the big ones dirty malloc's free lists), so that uninitialised
    memory shows up as 0xFF instead of happening to be zero."""
    for k in range(1, up_to + 1):
        junk = [np.full(k * record_size, 0xFF, np.uint8) for _ in range(8)]
        del junk
    junk = [bytearray(b"\xff" * (1 << 20)) for _ in range(16)]
    del junk


def padded_source(kind: str, raw: bytes, tmp_path):
    """``raw`` as the source ``kind`` names, plus the iter_unpack options it needs."""
    if kind in ("path", "mmap"):
        path = tmp_path / "r.bin"
        path.write_bytes(raw)
        return path, {"mmap": kind == "mmap"}
    if kind == "bytesio":
        return io.BytesIO(raw), {}
    if kind == "buffer":
        return raw, {}
    r, w = os.pipe()  # "pipe"
    threading.Thread(target=lambda: (os.write(w, raw), os.close(w)), daemon=True).start()
    return os.fdopen(r, "rb"), {}


@pytest.mark.parametrize("kind", ["path", "mmap", "bytesio", "buffer", "pipe"])
@pytest.mark.parametrize("fmt", list(PADDED))
def test_iter_unpack_chunks_have_zero_padding_like_unpack(backend, tmp_path, fmt, kind):
    s = Struct(fmt)
    chunk_size, n = 4, 11  # the last chunk holds 3 of 4 records
    raw = padded_records(fmt, n)
    source, opts = padded_source(kind, raw, tmp_path)
    dirty_the_heap(s.size, chunk_size)
    chunks = list(s.iter_unpack(source, chunk_size=chunk_size, **opts))
    if hasattr(source, "close"):
        source.close()
    assert [len(c) for c in chunks] == [4, 4, 3]
    pads = padding_bytes(s.dtype)
    assert pads, "the format must have padding for this test to mean anything"
    first = 0
    for c in chunks:
        rows = raw[first * s.size : (first + len(c)) * s.size]
        assert c.tolist() == list(struct.iter_unpack(fmt, rows))  # oracle: struct
        assert c.tobytes() == s.unpack(rows).tobytes()
        record_bytes = np.frombuffer(c.tobytes(), np.uint8).reshape(len(c), s.size)
        assert not record_bytes[:, pads].any(), f"stale bytes in the padding of records {first}..{first + len(c) - 1}"
        first += len(c)


# -- issue 11, item 9: a non-blocking stream is waited for, never truncated -------


def slow_writer(w: int, raw: bytes, piece: int) -> threading.Thread:
    """Write ``raw`` to the fd ``w`` in ``piece``-byte writes with pauses
    (so the reader finds the pipe empty many times), then close it."""

    def run():
        with os.fdopen(w, "wb", buffering=0) as fh:
            for i in range(0, len(raw), piece):
                fh.write(raw[i : i + piece])
                threading.Event().wait(0.002)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@posix_only
@pytest.mark.parametrize("buffering", [0, -1], ids=["raw", "buffered"])
def test_iter_unpack_waits_for_a_non_blocking_pipe(s, buffering):
    raw = b"HDR" + make_records(200)
    r, w = os.pipe()
    os.set_blocking(r, False)
    t = slow_writer(w, raw, 53)  # odd pieces: records and the header split across writes
    with os.fdopen(r, "rb", buffering=buffering) as fh:
        assert not os.get_blocking(fh.fileno())
        rows, extra = collect(s.iter_unpack(fh, offset=3, chunk_size=64))
    t.join()
    assert rows == oracle(raw[3:]) and extra == []  # oracle: struct, every record


@posix_only
def test_read_file_waits_for_a_non_blocking_pipe(s):
    raw = make_records(150)
    r, w = os.pipe()
    os.set_blocking(r, False)
    t = slow_writer(w, raw, 41)
    with os.fdopen(r, "rb") as fh:
        rows = s.read_file(fh).tolist()
    t.join()
    assert rows == oracle(raw)


class WouldBlock(io.RawIOBase):
    """A non-blocking stream with no descriptor: some bytes, then "no data
    ready" (``readinto`` returns None) for ever."""

    def __init__(self, data: bytes):
        self.data = data

    def readable(self):
        return True

    def readinto(self, b):
        if not self.data:
            return None
        n = min(len(b), len(self.data))
        b[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


class WouldBlockRead:
    """The same with only ``read``, which returns None when no data is ready."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, n=-1):
        if not self.data:
            return None
        out, self.data = self.data[:n], self.data[n:]
        return out


WOULD_BLOCK = (
    r"^<{}>: the stream is non-blocking and has no data ready \(read returned None\), and it has no "
    r"file descriptor to wait on; make it blocking or give a stream with a fileno\(\)$"
)


@pytest.mark.parametrize("have", [0, 5, 7 * 18])
@pytest.mark.parametrize("cls", [WouldBlock, WouldBlockRead])
def test_iter_unpack_refuses_a_would_block_stream_without_fileno(s, cls, have):
    # io.RawIOBase.fileno raises UnsupportedOperation: nothing to wait on
    with pytest.raises(Error, match=WOULD_BLOCK.format(cls.__name__)):
        list(s.iter_unpack(cls(make_records(10)[:have]), chunk_size=4))


def test_iter_unpack_refuses_a_would_block_stream_while_skipping_its_header(s):
    with pytest.raises(Error, match=WOULD_BLOCK.format("WouldBlockRead")):
        list(s.iter_unpack(WouldBlockRead(b"HD"), offset=3))


@pytest.mark.parametrize("count", [None, 3])
def test_read_file_refuses_a_would_block_stream_without_fileno(s, count):
    with pytest.raises(Error, match=WOULD_BLOCK.format("WouldBlock")):
        s.read_file(WouldBlock(make_records(2)), count=count)


@posix_only
def test_iter_unpack_yields_a_full_chunk_from_a_live_non_blocking_pipe(s):
    """A chunk is yielded once its records have arrived, while the writer is
    still there (a live feed): "no data yet" is waited for with poll on the
    pipe, not only until the writer closes it.  The writer sends one chunk
    (36 KB, less than a pipe holds, so it never blocks) and keeps the pipe
    open until the reader has that chunk."""
    raw = make_records(2000)
    r, w = os.pipe()
    os.set_blocking(r, False)
    chunk_seen = threading.Event()
    confirmed = []

    def writer():
        with os.fdopen(w, "wb", buffering=0) as fh:
            for i in range(0, len(raw), 4096):
                fh.write(raw[i : i + 4096])
                threading.Event().wait(0.002)
            # a guard against a hang, not a timing assertion: a reader that
            # waits for the close only gets its chunk once this gives up
            confirmed.append(chunk_seen.wait(timeout=60))

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    with os.fdopen(r, "rb") as fh:
        chunks = []
        for chunk in s.iter_unpack(fh, chunk_size=2000):
            chunks.append(chunk)
            chunk_seen.set()
    t.join()
    assert confirmed == [True]
    assert collect(chunks)[0] == oracle(raw)


def test_the_module_functions_take_the_struct_methods_defaults():
    """binrec.files' functions and the Struct methods that call them are one
    API: the same defaults (``use_mmap`` is the method's ``mmap``)."""
    import inspect

    from binrec import files

    for name in ("iter_unpack", "read_file", "read_record", "write_file"):
        theirs = inspect.signature(getattr(Struct, name)).parameters
        ours = inspect.signature(getattr(files, name)).parameters
        for param, p in ours.items():
            method_param = theirs.get("mmap" if param == "use_mmap" else param)
            if p.default is not inspect.Parameter.empty:
                assert method_param is not None and p.default == method_param.default, (name, param)


# -- issue 11: behaviour the mutation run found unspecified ------------------------
# Each test states one behaviour of files.py with its oracle (struct, numpy,
# bytes.decode, the file's own bytes); together they kill the mutants that
# survived the suite before.


def pipe_of(raw: bytes):
    """A real pipe carrying ``raw`` (written by a thread, then closed)."""
    r, w = os.pipe()
    threading.Thread(target=lambda: (os.write(w, raw), os.close(w)), daemon=True).start()
    return os.fdopen(r, "rb")


def stream_of(kind: str, raw: bytes):
    return pipe_of(raw) if kind == "pipe" else io.BytesIO(raw)


# text=, encoding= and strip= on streams. Oracle: numpy's S values end at the
# last non-NUL byte; then bytes.rstrip(strip) and bytes.decode(encoding).
TEXT_FMT = "<H8s"
TEXT_VALUES = [(1, "héllo".encode() + b"  "), (2, b"ab--"), (3, b"  x \x00 "), (4, b"plainX")]


def text_records() -> bytes:
    return b"".join(struct.pack(TEXT_FMT, *v) for v in TEXT_VALUES)


def text_oracle(strip: bytes, encoding: str) -> list[tuple]:
    return [
        (n, w.rstrip(b"\x00").rstrip(strip).decode(encoding)) for n, w in struct.iter_unpack(TEXT_FMT, text_records())
    ]


@pytest.mark.parametrize("kind", ["bytesio", "pipe"])
def test_iter_unpack_text_on_a_stream_decodes_with_the_given_encoding(kind):
    s = Struct(TEXT_FMT, "n word")
    with stream_of(kind, text_records()) as fh:
        chunks = list(s.iter_unpack(fh, text="word", encoding="utf-8", chunk_size=3))
    assert [c.dtype["word"].kind for c in chunks] == ["U", "U"]
    assert [r for c in chunks for r in c.tolist()] == text_oracle(b"\x00 ", "utf-8")


@pytest.mark.parametrize("kind", ["bytesio", "pipe"])
def test_iter_unpack_text_on_a_stream_defaults_to_ascii(kind):
    s = Struct(TEXT_FMT, "n word")
    with pytest.raises(UnicodeDecodeError):
        b"h\xc3\xa9llo".decode("ascii")  # the oracle refuses it too
    with stream_of(kind, text_records()) as fh, pytest.raises(Error, match=r"field 'word' \(row 0\).* as ascii"):
        list(s.iter_unpack(fh, text="word", chunk_size=3))
    with stream_of(kind, text_records()[struct.calcsize(TEXT_FMT) :]) as fh:  # the rows that are ASCII
        rows = [r for c in s.iter_unpack(fh, text="word") for r in c.tolist()]
    assert rows == text_oracle(b"\x00 ", "latin-1")[1:]


@pytest.mark.parametrize("strip", [b"", b"-", b"\x00 "], ids=["nothing", "dashes", "default"])
@pytest.mark.parametrize("kind", ["bytesio", "pipe"])
def test_iter_unpack_text_on_a_stream_strips_the_given_bytes(kind, strip):
    s = Struct(TEXT_FMT, "n word")
    kw = {} if strip == b"\x00 " else {"strip": strip}  # the default strips NUL and space
    with stream_of(kind, text_records()) as fh:
        rows = [r for c in s.iter_unpack(fh, text="word", encoding="utf-8", chunk_size=3, **kw) for r in c.tolist()]
    assert rows == text_oracle(strip, "utf-8")


def test_iter_unpack_text_on_a_stream_leaves_other_fields_bytes(s):
    with io.BytesIO(make_records(5)) as fh:
        (chunk,) = s.iter_unpack(fh, text=["name"])
    assert chunk.dtype["id"] == np.dtype("u4") and chunk.dtype["temp"] == np.dtype("f4")
    assert chunk.tolist() == [(i, n.decode("ascii"), t) for i, n, t in oracle(make_records(5))]


def test_iter_unpack_text_names_an_unknown_field_on_a_stream(s):
    with pytest.raises(Error, match="'temp'.*not a string field"):
        list(s.iter_unpack(io.BytesIO(make_records(2)), text="temp"))


# read_record: the record count is taken after the header (offset)


def test_read_record_negative_index_counts_from_the_end_after_a_header(tmp_path, s):
    raw = make_records(5)
    path = tmp_path / "r.bin"
    path.write_bytes(b"H" * 36 + raw)  # a header as long as two records
    for index in range(-5, 5):
        assert tuple(s.read_record(path, index, offset=36).tolist()) == oracle(raw)[index]


@pytest.mark.parametrize("index", [5, -6])
def test_read_record_past_the_records_after_a_header_is_an_error(tmp_path, s, index):
    path = tmp_path / "r.bin"
    path.write_bytes(b"H" * 36 + make_records(5))
    with pytest.raises(
        Error, match=rf"r\.bin: record index {index} out of range: the file holds 5 records of 18 bytes after offset 36"
    ):
        s.read_record(path, index, offset=36)


def test_read_record_reads_a_seekable_stream_without_a_descriptor(s):
    raw = b"HDR" + make_records(4)
    assert [tuple(s.read_record(io.BytesIO(raw), i, offset=3).tolist()) for i in (0, 3, -1)] == [
        oracle(raw[3:])[i] for i in (0, 3, -1)
    ]


def test_read_record_refuses_a_stream_that_cannot_seek(s):
    class ReadOnly:  # only read(): no seekable(), no fileno()
        def read(self, n=-1):
            return b""

    with pytest.raises(Error, match=r"<ReadOnly>: read_record needs a seekable file"):
        s.read_record(ReadOnly(), 0)


def test_read_record_refuses_a_buffer_naming_its_type(s):
    with pytest.raises(TypeError, match="read_record needs a path or a seekable binary file object, not bytes"):
        s.read_record(make_records(2), 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s, p: s.read_record(p, "1"), "index must be an integer, not str"),
        (lambda s, p: s.read_record(p, 0, offset=1.0), "offset must be an integer, not float"),
        (lambda s, p: s.read_file(p, count=1.0), "count must be an integer, not float"),
    ],
    ids=["index", "offset", "count"],
)
def test_non_integer_index_offset_and_count_are_type_errors_naming_the_argument(tmp_path, s, call, message):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(3))
    with pytest.raises(TypeError, match=f"^{message}$"):
        call(s, path)


# the end of the memory map: offsets, exact sizes, a file that shrinks


@pytest.mark.parametrize("use_mmap", [False, True])
def test_iter_unpack_after_a_header_longer_than_a_record(tmp_path, s, use_mmap):
    raw = make_records(9)
    path = tmp_path / "r.bin"
    path.write_bytes(b"H" * 40 + raw)  # more than two records of header
    rows, extra = collect(s.iter_unpack(path, offset=40, chunk_size=4, mmap=use_mmap))
    assert rows == oracle(raw) and extra == []


@pytest.mark.parametrize("use_mmap", [False, True])
def test_iter_unpack_a_file_of_whole_records_has_no_trailing_part(tmp_path, s, use_mmap):
    raw = make_records(8)  # exactly two chunks, nothing after them
    path = tmp_path / "r.bin"
    path.write_bytes(b"HDR" + raw)
    chunks = list(s.iter_unpack(path, offset=3, chunk_size=4, mmap=use_mmap, trailing="return"))
    assert [len(c) for c in chunks] == [4, 4] and collect(chunks) == (oracle(raw), [])


@pytest.mark.parametrize("use_mmap", [False, True])
def test_iter_unpack_with_the_offset_at_the_end_of_the_file_yields_nothing(tmp_path, s, use_mmap):
    path = tmp_path / "r.bin"
    path.write_bytes(b"HEADER")
    assert list(s.iter_unpack(path, offset=6, mmap=use_mmap)) == []


@pytest.mark.parametrize("use_mmap", [False, True])
def test_iter_unpack_with_the_offset_past_the_end_of_the_file_is_an_error(tmp_path, s, use_mmap):
    path = tmp_path / "r.bin"
    path.write_bytes(b"HEADER")
    with pytest.raises(Error, match=r"r\.bin: stream ended after 6 bytes, before the offset 7$"):
        list(s.iter_unpack(path, offset=7, mmap=use_mmap))


def shrink_between_chunks(tmp_path, s, keep: int) -> list:
    """mmap-iterate a 3-byte header and 12 records in chunks of 4, cutting the
    file to ``keep`` bytes after the first chunk.  (Everything lies in the
    file's first page, so even a missing size check could not SIGBUS.)"""
    path = tmp_path / "r.bin"
    path.write_bytes(b"HDR" + make_records(12))
    got = []
    it = s.iter_unpack(path, offset=3, chunk_size=4, mmap=True)
    got.append(next(it))
    os.truncate(path, keep)
    for chunk in it:
        got.append(chunk)
    return got


def test_iter_unpack_mmap_reads_a_chunk_that_still_fits_after_the_file_shrank(tmp_path, s):
    """The second chunk ends at byte 3 + 8 * 18 = 147: a file cut to exactly
    that still holds it; the third chunk is then missing."""
    with pytest.raises(Error, match=r"r\.bin: file shrank while being read \(needed 219 bytes\)"):
        shrink_between_chunks(tmp_path, s, 147)


def test_iter_unpack_mmap_refuses_a_chunk_cut_short_by_a_shrinking_file(tmp_path, s):
    with pytest.raises(Error, match=r"r\.bin: file shrank while being read \(needed 147 bytes\)"):
        shrink_between_chunks(tmp_path, s, 146)


def test_iter_unpack_mmap_yields_what_fit_before_the_file_shrank(tmp_path, s):
    path = tmp_path / "r.bin"
    path.write_bytes(b"HDR" + make_records(12))
    got = []
    it = s.iter_unpack(path, offset=3, chunk_size=4, mmap=True)
    got.append(next(it))
    os.truncate(path, 147)
    got.append(next(it))
    assert collect(got)[0] == oracle(make_records(8))


@pytest.mark.parametrize("use_mmap", [False, True])
def test_read_file_with_offset_and_count_reads_those_records(tmp_path, s, use_mmap):
    raw = make_records(10)
    path = tmp_path / "r.bin"
    path.write_bytes(b"H" * 20 + raw + b"tail")
    assert s.read_file(path, offset=20 + 18 * 3, count=4, mmap=use_mmap).tolist() == oracle(raw)[3:7]


def test_read_file_count_zero_is_an_empty_array(tmp_path, s):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(3))
    out = s.read_file(path, count=0)
    assert out.dtype == s.dtype and len(out) == 0


def test_read_file_negative_count_is_an_error(tmp_path, s):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(3))
    with pytest.raises(Error, match=r"r\.bin: count must be >= 0, got -1$"):
        s.read_file(path, count=-1)


def test_read_file_offset_past_the_end_names_the_file_and_its_size(tmp_path, s):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(2))
    with pytest.raises(Error, match=rf"^{re.escape(str(path))}: offset 37 is past the end of the file \(36 bytes\)$"):
        s.read_file(path, offset=37)


# threads= is validated on every path, as unpack validates it


@pytest.mark.parametrize(
    "call",
    [
        lambda s, p: list(s.iter_unpack(p, threads=-1)),
        lambda s, p: list(s.iter_unpack(p, mmap=True, threads=-1)),
        lambda s, p: list(s.iter_unpack(io.BytesIO(p.read_bytes()), threads=-1)),
        lambda s, p: s.read_file(p, threads=-1),
        lambda s, p: s.read_file(p, mmap=True, threads=-1),
        lambda s, p: s.read_file(p, count=0, threads=-1),
    ],
    ids=["iter-path", "iter-mmap", "iter-stream", "read_file", "read_file-mmap", "read_file-count0"],
)
def test_an_invalid_threads_argument_is_refused_like_unpack(tmp_path, s, call):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(3))
    with pytest.raises(Error) as theirs:
        s.unpack(make_records(3), threads=-1)
    with pytest.raises(Error) as ours:
        call(s, path)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "call",
    [lambda s, p: s.read_file(p, mmap=True, text="name"), lambda s, p: list(s.iter_unpack(p, mmap=True, text="name"))],
    ids=["read_file", "iter_unpack"],
)
def test_a_decode_error_from_a_memory_map_is_reported_not_masked(tmp_path, s, call):
    """The error of a failed decode must reach the caller, not a BufferError
    from closing the map while the error's traceback still views it."""
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(2) + struct.pack(FMT, 2, b"caf\xc3\xa9", 0.5))
    with pytest.raises(UnicodeDecodeError):
        b"caf\xc3\xa9".decode("ascii")  # the oracle
    with pytest.raises(Error, match=r"field 'name' \(row 2\): cannot decode b'caf\\xc3\\xa9' as ascii"):
        call(s, path)


# streams: what counts as one, short reads, headers


class ReadOnlyStream:
    """A minimal stream: only ``read(n)``, which gives at most ``limit``
    bytes per call (or all asked for after the first call when ``limit`` is
    None), like a socket or a decompressor."""

    def __init__(self, data: bytes, limit: int | None = 5):
        self.data, self.limit, self.calls = data, limit, 0

    def read(self, n=-1):
        self.calls += 1
        n = len(self.data) if n < 0 else n
        if self.limit is not None or self.calls == 1:
            n = min(n, self.limit or 5)
        out, self.data = self.data[:n], self.data[n:]
        return out


class ReadintoOnlyStream:
    """A minimal stream with only ``readinto``, giving 7 bytes per call."""

    def __init__(self, data: bytes):
        self.data = data

    def readinto(self, b):
        n = min(len(b), 7, len(self.data))
        b[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


@pytest.mark.parametrize("limit", [5, None], ids=["short reads", "first read short"])
def test_iter_unpack_reads_a_stream_that_has_only_read(s, limit):
    raw = b"HDR" + make_records(30)
    rows, extra = collect(s.iter_unpack(ReadOnlyStream(raw, limit), offset=3, chunk_size=8))
    assert rows == oracle(raw[3:]) and extra == []


def test_iter_unpack_reads_a_stream_that_has_only_readinto(s):
    raw = b"HDR" + make_records(30)
    rows, extra = collect(s.iter_unpack(ReadintoOnlyStream(raw), offset=3, chunk_size=8))
    assert rows == oracle(raw[3:]) and extra == []


def test_read_file_reads_a_stream_that_has_only_read(s):
    raw = make_records(30)
    assert s.read_file(ReadOnlyStream(raw, None)).tolist() == oracle(raw)


@pytest.mark.parametrize("kind", ["bytesio", "pipe"])
def test_iter_unpack_skips_a_one_byte_header_of_a_stream(s, kind):
    raw = b"!" + make_records(3)
    with stream_of(kind, raw) as fh:
        assert collect(s.iter_unpack(fh, offset=1))[0] == oracle(raw[1:])


def test_iter_unpack_with_the_offset_at_the_end_of_a_stream_yields_nothing(s):
    assert list(s.iter_unpack(io.BytesIO(b"HEADER"), offset=6)) == []


def test_iter_unpack_offset_past_a_seekable_stream_counts_from_its_position(s):
    fh = io.BytesIO(b"ABCDEFGH")
    fh.seek(3)  # 5 bytes left
    with pytest.raises(Error, match=r"^<BytesIO>: stream ended after 5 bytes, before the offset 6$"):
        list(s.iter_unpack(fh, offset=6))


@pytest.mark.parametrize(
    "call", [lambda s, fh: list(s.iter_unpack(fh, offset=10)), lambda s, fh: s.read_file(fh, offset=10)]
)
def test_offset_past_the_end_of_a_pipe_names_the_pipe_and_the_bytes_it_had(s, call):
    with (
        pipe_of(b"abc") as fh,
        pytest.raises(Error, match=r"^<pipe, fd \d+>: stream ended after 3 bytes, before the offset 10$"),
    ):
        call(s, fh)


def test_iter_unpack_skips_a_header_of_a_stream_that_cannot_seek(s):
    raw = b"HEADER" + make_records(4)
    assert collect(s.iter_unpack(ReadOnlyStream(raw), offset=6))[0] == oracle(raw[6:])


# chunk sizes


@pytest.mark.parametrize("chunk_size", [True, 2.0, 0, -1, "4"])
def test_iter_unpack_refuses_a_chunk_size_that_is_not_a_positive_int(s, chunk_size):
    with pytest.raises(ValueError, match=rf"^chunk_size must be a positive int, got {re.escape(repr(chunk_size))}$"):
        list(s.iter_unpack(make_records(3), chunk_size=chunk_size))


@pytest.mark.parametrize("kind", ["buffer", "bytesio"])
def test_iter_unpack_chunk_size_one_yields_one_record_per_chunk(s, kind):
    raw = make_records(3)
    chunks = list(s.iter_unpack(raw if kind == "buffer" else io.BytesIO(raw), chunk_size=1))
    assert [len(c) for c in chunks] == [1, 1, 1] and collect(chunks)[0] == oracle(raw)


@pytest.mark.parametrize("kind", ["bytesio", "pipe"])
def test_iter_unpack_chunks_larger_than_one_read_are_filled_in_pieces(kind):
    """A chunk bigger than the 256 KiB read buffer is filled by several
    reads; each chunk still holds chunk_size records, in order."""
    s = Struct("<Iq")
    n = 50_000  # 600 KB: more than two 256 KiB pieces
    raw = np.rec.fromarrays([np.arange(n, dtype="<u4"), -np.arange(n, dtype="<i8") * 3], dtype="<u4,<i8").tobytes()
    with stream_of(kind, raw) as fh:
        chunks = list(s.iter_unpack(fh, chunk_size=30_000))
    assert [len(c) for c in chunks] == [30_000, 20_000]
    assert [r for c in chunks for r in c.tolist()] == list(struct.iter_unpack("<Iq", raw))


def test_read_file_reads_a_stream_longer_than_one_read(s):
    raw = make_records(20_000)  # 360 KB: more than one 256 KiB piece
    with pipe_of(raw) as fh:
        assert s.read_file(fh).tolist() == oracle(raw)


# mmap= needs a path


@pytest.mark.parametrize(
    "call",
    [
        lambda s: list(s.iter_unpack(make_records(2), mmap=True)),
        lambda s: list(s.iter_unpack(io.BytesIO(make_records(2)), mmap=True)),
        lambda s: s.read_file(io.BytesIO(make_records(2)), mmap=True),
    ],
    ids=["iter_unpack-buffer", "iter_unpack-stream", "read_file-stream"],
)
def test_mmap_on_something_that_is_not_a_path_is_refused(s, call):
    with pytest.raises(ValueError, match=r"^mmap=True needs a path to a regular file$"):
        call(s)


# messages name the source, the record size and the byte offset, in the one
# whole-records wording that read_file and Struct.unpack use too

#: 2 records of 18 bytes and 3 more after a 3-byte header
_PARTIAL_AT_39 = (
    r"39 bytes after offset 3 are not a whole number of 18-byte records "
    r"\(2 whole records and a partial record of 3 bytes at byte offset 39\)"
)


@pytest.mark.parametrize("use_mmap", [False, True])
def test_a_partial_record_in_a_file_is_reported_with_its_path_and_offset(tmp_path, s, use_mmap):
    path = tmp_path / "r.bin"
    path.write_bytes(b"HDR" + make_records(2) + b"xyz")
    expected = rf"^{re.escape(str(path))}: {_PARTIAL_AT_39}$"
    with pytest.raises(Error, match=expected):
        list(s.iter_unpack(path, offset=3, mmap=use_mmap))


def test_a_partial_record_in_a_buffer_is_reported_with_its_offset(s):
    with pytest.raises(Error, match=rf"^buffer: {_PARTIAL_AT_39}$"):
        list(s.iter_unpack(b"HDR" + make_records(2) + b"xyz", offset=3))


def test_a_partial_record_in_a_stream_is_reported_with_its_offset(s):
    with pytest.raises(Error, match=rf"^<BytesIO>: {_PARTIAL_AT_39}$"):
        list(s.iter_unpack(io.BytesIO(b"HDR" + make_records(2) + b"xyz"), offset=3))


def test_a_file_object_is_named_by_its_path(tmp_path, s):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(2) + b"x")
    with open(path, "rb") as fh, pytest.raises(Error, match=rf"^{re.escape(str(path))}: 37 bytes after offset 0"):
        s.read_file(fh)


def test_a_stream_without_a_name_is_named_by_its_type(s):
    with pytest.raises(Error, match=r"^<BytesIO>: 37 bytes after offset 0 are not a whole number"):
        s.read_file(io.BytesIO(make_records(2) + b"x"))


def test_a_negative_offset_in_a_file_names_the_file(tmp_path, s):
    path = tmp_path / "r.bin"
    path.write_bytes(make_records(2))
    for call in (lambda: list(s.iter_unpack(path, offset=-1)), lambda: s.read_file(path, offset=-1)):
        with pytest.raises(Error, match=rf"^{re.escape(str(path))}: offset must be >= 0 in a file"):
            call()


@posix_only
def test_a_socket_is_named_as_a_socket(s):
    import socket

    a, b = socket.socketpair()
    with a, b:
        b.sendall(make_records(1) + b"xy")
        b.shutdown(socket.SHUT_WR)
        with (
            a.makefile("rb") as fh,
            pytest.raises(
                Error, match=rf"^<socket, fd {a.fileno()}>: 20 bytes after offset 0 .* partial record of 2 bytes"
            ),
        ):
            list(s.iter_unpack(fh))


def test_read_file_refuses_a_buffer_naming_its_type(s):
    with pytest.raises(TypeError, match=r"^read_file needs a path or a binary file object, not bytearray"):
        s.read_file(bytearray(make_records(2)))


# buffers


def test_iter_unpack_with_the_offset_at_the_end_of_a_buffer_yields_nothing(s):
    assert list(s.iter_unpack(b"HEADER", offset=6)) == []


def test_iter_unpack_with_the_offset_past_the_end_of_a_buffer_is_an_error(s):
    with pytest.raises(Error, match=r"^offset 7 is past the end of the buffer \(6 bytes\)$"):
        list(s.iter_unpack(b"HEADER", offset=7))


# write_file in several pieces


def test_write_file_writes_more_records_than_one_piece(tmp_path):
    """More records than one write piece (2**18): every record once, in order
    (oracle: struct.pack of the same values)."""
    s = Struct("<H")
    values = np.arange((1 << 18) + 5, dtype=np.uint16)
    path = tmp_path / "r.bin"
    assert s.write_file(path, {"f0": values}) == len(values)
    assert path.read_bytes() == struct.pack(f"<{len(values)}H", *values.tolist())


# pandas and Arrow


def test_unpack_frame_without_pandas_says_what_to_install(s, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match=r"^unpack_frame needs pandas: pip install 'binrec\[pandas\]'$"):
        s.unpack_frame(make_records(1))


def test_unpack_table_without_pyarrow_says_what_to_install(s, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"^unpack_table needs pyarrow: pip install 'binrec\[arrow\]'$"):
        s.unpack_table(make_records(1))


def test_unpack_table_keeps_the_bytes_after_an_embedded_nul(s):
    pa = pytest.importorskip("pyarrow")
    raw = struct.pack(FMT, 1, b"ab\x00cd", 0.0)
    table = s.unpack_table(raw)
    assert table.column("name").type == pa.binary()
    assert table.column("name").to_pylist() == [struct.unpack(FMT, raw)[1].rstrip(b"\x00")]  # b"ab\x00cd"


def test_unpack_table_refuses_a_complex_field(s):
    pytest.importorskip("pyarrow")
    with pytest.raises(Error, match=r"^field 'f1': Arrow has no complex type$"):
        Struct("<iF").unpack_table(struct.pack("<iff", 1, 2.0, 3.0))


def test_write_file_error_names_the_users_path_not_the_temp_file(tmp_path, s):
    missing = tmp_path / "nonexist" / "out.bin"
    with pytest.raises(FileNotFoundError) as info:
        s.write_file(missing, [(1, b"a", 0.5)])
    assert info.value.filename == str(missing)
    assert info.value.errno == 2  # ENOENT, as open() would give
    assert not (tmp_path / "nonexist").exists()


def test_write_file_through_a_symlink_replaces_the_target(tmp_path, s):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    link = tmp_path / "l.bin"
    link.symlink_to("t.bin")
    s.write_file(link, [(1, b"a", 0.5)])
    assert link.is_symlink()
    assert target.read_bytes() == struct.pack(FMT, 1, b"a", 0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.bin", "t.bin"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_write_file_into_a_fifo_writes_through_it(tmp_path, s):
    import stat

    fifo = tmp_path / "f.bin"
    os.mkfifo(fifo)
    got = {}

    def reader():
        with open(fifo, "rb") as fh:
            got["data"] = fh.read()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    s.write_file(fifo, [(1, b"a", 0.5), (2, b"b", 1.5)])
    t.join(60)
    assert got["data"] == struct.pack(FMT, 1, b"a", 0.5) + struct.pack(FMT, 2, b"b", 1.5)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# -- issue 12: one spelling per idea, old spellings still work with a warning ---------


def test_iter_unpack_use_mmap_is_the_deprecated_spelling_of_mmap(tmp_path, s):
    from binrec import files

    raw = make_records(5)
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    with pytest.warns(DeprecationWarning, match=r"iter_unpack\(use_mmap=\.\.\.\) is deprecated: use mmap="):
        rows, extra = collect(files.iter_unpack(s, path, chunk_size=2, use_mmap=True))
    assert rows == oracle(raw) and extra == []  # oracle: struct.iter_unpack


def test_iter_unpack_use_mmap_still_refuses_a_stream_as_mmap_does(s):
    from binrec import files

    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="mmap=True needs a path"):
        list(files.iter_unpack(s, io.BytesIO(make_records(1)), use_mmap=True))


def test_files_functions_take_the_struct_as_struct_and_still_as_s_with_a_warning(tmp_path, s):
    from binrec import files

    raw = make_records(3)
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    assert files.read_file(struct=s, source=path).tolist() == oracle(raw)  # oracle: struct.iter_unpack
    with pytest.warns(DeprecationWarning, match=r"read_file\(s=\.\.\.\) is deprecated: use struct="):
        assert files.read_file(s=s, source=path).tolist() == oracle(raw)
    with pytest.warns(DeprecationWarning, match=r"read_record\(s=\.\.\.\)"):
        assert tuple(files.read_record(s=s, file=path, index=1).tolist()) == oracle(raw)[1]


def test_files_refuse_the_struct_given_under_both_names(tmp_path, s):
    from binrec import files

    with pytest.raises(TypeError, match="got both s= and its new name struct="):
        files.read_file(s=s, struct=s, source=tmp_path / "r.bin")


def test_files_iter_unpack_refuses_a_non_buffer_at_the_call_as_struct_does(s):
    # oracle: struct.iter_unpack raises TypeError when called, before iterating
    from binrec import files

    with pytest.raises(TypeError):
        struct.iter_unpack(FMT, 5)
    with pytest.raises(TypeError, match="a bytes-like object is required, not 'int'"):
        files.iter_unpack(s, 5)
