"""Record-file behaviour that the mutation run of issue 11 found unpinned.

Each test states one behaviour of the public API (``binrec.Struct`` methods
and the public functions of ``binrec.files``) and names its oracle: the
``struct`` module over the same bytes, real files, pipes and sockets.  The
mutants each test kills, and the survivors judged equivalent or
message-only, are listed under ``[files]`` in scripts/mutation-reviewed.toml.
"""

from __future__ import annotations

import bz2
import fcntl
import gzip
import io
import lzma
import os
import select
import socket
import struct
import sys
import threading
import time

import pytest

from binrec import Error, Struct, files

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pipes, sockets and fcntl as on POSIX")

FMT = "<I"


def records(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def rows(chunks) -> list[int]:
    return [v for c in chunks for v in c["f0"].tolist()]


# -- binrec.files' public functions have the defaults of the Struct methods ----


def test_files_iter_unpack_yields_65536_records_per_chunk_by_default():
    # oracle: the documented default of Struct.iter_unpack (chunk_size=65536)
    chunks = list(files.iter_unpack(Struct("<B"), bytes(65537)))
    assert [len(c) for c in chunks] == [65536, 1]


def test_files_iter_unpack_starts_at_byte_zero_by_default():
    raw = records(7, 8, 9)
    assert rows(files.iter_unpack(Struct(FMT), raw)) == [v for (v,) in struct.iter_unpack(FMT, raw)]


def test_files_iter_unpack_refuses_a_partial_record_by_default():
    # struct.iter_unpack refuses a buffer that is not a whole number of records
    raw = records(7) + b"\x01"
    with pytest.raises(struct.error):
        list(struct.iter_unpack(FMT, raw))
    with pytest.raises(Error, match="partial record of 1 bytes"):
        list(files.iter_unpack(Struct(FMT), raw))


def test_files_iter_unpack_reads_a_file_object_without_mmap_by_default():
    raw = records(1, 2)
    assert rows(files.iter_unpack(Struct(FMT), io.BytesIO(raw))) == [v for (v,) in struct.iter_unpack(FMT, raw)]


def test_files_read_file_reads_from_byte_zero_by_default(tmp_path):
    raw = records(5, 6, 7)
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    assert files.read_file(Struct(FMT), path)["f0"].tolist() == [v for (v,) in struct.iter_unpack(FMT, raw)]


def test_files_read_file_accepts_a_file_object_by_default(tmp_path):
    # mmap is for paths only, so it must be off unless asked for
    raw = records(5, 6)
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    with open(path, "rb") as fh:
        assert files.read_file(Struct(FMT), fh)["f0"].tolist() == [5, 6]


def test_files_read_record_counts_from_byte_zero_by_default(tmp_path):
    path = tmp_path / "r.bin"
    path.write_bytes(records(5, 6, 7))
    assert files.read_record(Struct(FMT), path, 1)["f0"] == struct.unpack_from(FMT, records(5, 6, 7), 4)[0]


def test_files_write_file_replaces_the_file_by_default(tmp_path):
    path = tmp_path / "r.bin"
    path.write_bytes(records(1, 2, 3))
    assert files.write_file(Struct(FMT), path, [(9,)]) == 1
    assert path.read_bytes() == struct.pack(FMT, 9)


# -- chunks, offsets and positions ------------------------------------------------


def test_iter_unpack_path_chunk_size_one_yields_single_records(tmp_path):
    raw = records(1, 2, 3, 4, 5)
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    chunks = list(Struct(FMT).iter_unpack(path, chunk_size=1))
    assert [len(c) for c in chunks] == [1, 1, 1, 1, 1]
    assert rows(chunks) == [v for (v,) in struct.iter_unpack(FMT, raw)]


def test_iter_unpack_mmap_returns_the_partial_record_the_file_ended_with_when_iteration_began(tmp_path):
    # The map covers the file as it was when the iteration started; bytes
    # appended meanwhile are not part of that partial record (which, being
    # partial, is shorter than a record).
    path = tmp_path / "r.bin"
    path.write_bytes(records(1, 2) + b"\xaa\xbb")
    it = Struct(FMT).iter_unpack(path, chunk_size=1, trailing="return", mmap=True)
    first = next(it)
    with open(path, "ab") as fh:
        fh.write(b"\xcc" * 10)
    rest = list(it)
    assert first["f0"].tolist() == [1]
    assert rows(rest[:-1]) == [2]
    assert rest[-1] == b"\xaa\xbb"


def test_read_file_leaves_a_file_object_just_after_the_records_it_read(tmp_path):
    # as fh.read(n) does: two reads of 2 records give records 0-1, then 2-3
    raw = records(10, 11, 12, 13, 14)
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    s = Struct(FMT)
    with open(path, "rb") as fh:
        first = s.read_file(fh, count=2)["f0"].tolist()
        second = s.read_file(fh, count=2)["f0"].tolist()
        position = fh.tell()
    assert first + second == [v for (v,) in struct.iter_unpack(FMT, raw[:16])]
    assert position == 16


class _ReadLog(io.FileIO):
    """A real file that records the position of every read."""

    def __init__(self, path):
        super().__init__(path, "rb")
        self.read_at: list[int] = []

    def readinto(self, b):
        self.read_at.append(self.tell())
        return super().readinto(b)


def test_iter_unpack_seeks_over_the_header_of_a_seekable_file(tmp_path):
    # skipping a header costs no reads, however large it is
    header = b"H" * 100_000
    path = tmp_path / "r.bin"
    path.write_bytes(header + records(3, 4))
    with _ReadLog(path) as fh:
        got = rows(Struct(FMT).iter_unpack(fh, offset=len(header)))
    assert got == [3, 4]
    assert min(fh.read_at) == len(header)


class _BytesWithPipe(io.BytesIO):
    """A seekable in-memory file object that also hands out a descriptor
    (the read end of a pipe, as a wrapper that buffered a whole pipe might):
    fstat of that descriptor does not give the object's size."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self._r, self._w = os.pipe()

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        if not self.closed:
            os.close(self._r)
            os.close(self._w)
        super().close()


def test_read_record_sizes_a_seekable_object_over_a_non_regular_descriptor_by_seeking():
    raw = records(5, 6, 7)
    with _BytesWithPipe(raw) as fh:
        got = Struct(FMT).read_record(fh, -1)["f0"]
    assert got == struct.unpack_from(FMT, raw, 8)[0]


# -- non-blocking streams ------------------------------------------------------------


class _LatePipe(io.FileIO):
    """The read end of a non-blocking pipe whose data is written only after
    the first read found it empty (readinto returned None, "would block"):
    binrec must then wait on the descriptor.  The data is there before the
    wait starts, so waiting correctly never blocks."""

    def __init__(self, data: bytes, *, min_fd: int = 0):
        r, self._w = os.pipe()
        if min_fd:
            high = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, min_fd)
            os.close(r)
            r = high
        os.set_blocking(r, False)
        super().__init__(r, "rb")
        self._data = data
        self.nones = 0

    def readinto(self, b):
        n = super().readinto(b)
        if n is None:
            self.nones += 1
            if self._w is not None:
                os.write(self._w, self._data)
                os.close(self._w)
                self._w = None
        return n


def test_nonblocking_stream_is_waited_for_when_its_descriptor_is_above_fd_setsize():
    # select() cannot wait on descriptors >= FD_SETSIZE (1024); poll() can
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft <= 1100:
        pytest.skip(f"RLIMIT_NOFILE {soft} leaves no descriptor above 1024")
    raw = records(1, 2, 3)
    with _LatePipe(raw, min_fd=1024) as fh:
        assert fh.fileno() >= 1024
        got = rows(Struct(FMT).iter_unpack(fh))
        assert fh.nones == 1
    assert got == [v for (v,) in struct.iter_unpack(FMT, raw)]


def test_nonblocking_stream_is_waited_for_with_select_where_there_is_no_poll(monkeypatch):
    # as on Windows: the select module has no poll()
    monkeypatch.delattr(select, "poll")
    raw = records(1, 2, 3)
    with _LatePipe(raw) as fh:
        got = rows(Struct(FMT).iter_unpack(fh))
        assert fh.nones == 1
    assert got == [v for (v,) in struct.iter_unpack(FMT, raw)]


class _CountingSocket(socket.SocketIO):
    """A non-blocking socket stream that logs what each read returned."""

    def __init__(self, sock):
        super().__init__(sock, "rb")
        self.results: list = []
        self.on_first_none = None

    def readinto(self, b):
        n = super().readinto(b)
        self.results.append(n)
        if n is None and self.on_first_none is not None:
            start, self.on_first_none = self.on_first_none, None
            start()
        return n


def test_waiting_on_a_nonblocking_socket_does_not_spin():
    # After a read finds no data, binrec waits until the socket is readable:
    # the next read returns data or end of stream, never "no data" again.
    # (A socket is always writable, so waiting for the wrong event, or on the
    # wrong descriptor, would return at once and read again.)
    raw = records(1, 2, 3)
    mine, peer = socket.socketpair()
    mine.setblocking(False)

    def send_later():
        time.sleep(0.2)  # long enough for a spinning reader to read again
        peer.sendall(raw)
        peer.close()

    sender = threading.Thread(target=send_later)
    fh = _CountingSocket(mine)
    fh.on_first_none = sender.start
    try:
        got = rows(Struct(FMT).iter_unpack(fh))
    finally:
        if sender.ident is not None:  # started
            sender.join()
        fh.close()
        mine.close()
    assert got == [v for (v,) in struct.iter_unpack(FMT, raw)]
    assert fh.results[0] is None
    pairs = zip(fh.results, fh.results[1:])
    assert not any(a is None and b is None for a, b in pairs), fh.results


# -- Arrow ---------------------------------------------------------------------------------


def test_unpack_table_of_no_records_keeps_bytes_fields_binary():
    pa = pytest.importorskip("pyarrow")
    table = Struct("<4sI", "tag n").unpack_table(b"")
    # oracle: the type the same field has with records in it
    full = Struct("<4sI", "tag n").unpack_table(struct.pack("<4sI", b"ab", 1))
    assert full.schema.field("tag").type == pa.binary()
    assert table.num_rows == 0
    assert table.schema.field("tag").type == pa.binary()


# -- compressed and written-to file objects: the stream's own size, not the descriptor's


OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "lzma": lzma.open}


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_read_record_of_a_compressed_file_object_counts_decompressed_bytes(tmp_path, kind):
    # oracle: struct over the uncompressed bytes; the descriptor's size is the compressed one
    raw = records(*range(100))
    path = tmp_path / f"r.bin.{kind}"
    with OPENERS[kind](path, "wb") as fh:
        fh.write(raw)
    with OPENERS[kind](path, "rb") as fh:
        assert Struct(FMT).read_record(fh, 50)["f0"] == struct.unpack_from(FMT, raw, 200)[0]
        assert Struct(FMT).read_record(fh, -1)["f0"] == struct.unpack_from(FMT, raw, len(raw) - 4)[0]


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_read_file_of_a_compressed_file_object_reads_the_decompressed_records(tmp_path, kind):
    raw = records(*range(100))
    path = tmp_path / f"r.bin.{kind}"
    with OPENERS[kind](path, "wb") as fh:
        fh.write(raw)
    with OPENERS[kind](path, "rb") as fh:
        assert Struct(FMT).read_file(fh)["f0"].tolist() == [v for (v,) in struct.iter_unpack(FMT, raw)]


def test_read_record_sees_a_record_written_but_not_yet_flushed(tmp_path):
    # oracle: struct over what the file holds once everything is written
    path = tmp_path / "r.bin"
    path.write_bytes(records(*range(3)))
    with open(path, "r+b") as fh:
        fh.seek(0, 2)
        fh.write(records(42))  # still in the BufferedRandom's buffer
        assert Struct(FMT).read_record(fh, 3)["f0"] == 42


def test_read_file_of_an_r_plus_b_file_reads_unflushed_records(tmp_path):
    path = tmp_path / "r.bin"
    path.write_bytes(records(*range(3)))
    with open(path, "r+b") as fh:
        fh.seek(0, 2)
        fh.write(records(42, 43))
        fh.seek(0)
        assert Struct(FMT).read_file(fh)["f0"].tolist() == [0, 1, 2, 42, 43]
