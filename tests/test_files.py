"""Record files: streaming, random access, atomic writes, pandas and Arrow.
Oracles: struct.iter_unpack over the same bytes, real files and pipes."""

from __future__ import annotations

import io
import os
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
    with pytest.raises(Error, match=r"partial record of 1 bytes .* at byte offset 144"):
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
    with pytest.raises(Error, match=r"r\.bin: .* \(partial record at byte offset 22212\)"):
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
    with os.fdopen(r, "rb") as fh, pytest.raises(Error, match=r"^<pipe, fd \d+>: partial record of 2 bytes"):
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
        pytest.raises(Error, match=r"not a whole number of 18-byte records \(partial record at byte offset 5400\)"),
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
    readme = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
    with open(readme, encoding="utf-8") as fh:
        text = fh.read()
    section = text.split("## Record files in pipelines", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    return [
        line.split("  #")[0] for line in section.splitlines() if line.startswith(("s.read_file(", "s.read_record("))
    ]


def test_readme_record_file_example_reads_a_headered_file(tmp_path, s, monkeypatch):
    """The README's example names a file with a 16-byte header: its
    read_file and read_record calls must work on such a file."""
    calls = _readme_record_file_calls()
    assert len(calls) == 2
    monkeypatch.chdir(tmp_path)
    raw = make_records(1_000_001)  # the example reads record 1,000,000
    (tmp_path / "sensors.bin").write_bytes(b"\x00" * 16 + raw)
    whole = eval(calls[0], {"s": s})
    assert len(whole) == 1_000_001 and whole[:3].tolist() == oracle(raw[: 3 * 18])
    rec = eval(calls[1], {"s": s})
    assert tuple(rec.tolist()) == oracle(raw[-18:])[0]
