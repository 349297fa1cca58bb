"""binrec.dask: the same decode on Dask, checked against read_file and the
struct module on the same files: local paths, file:// and memory:// URLs and
an S3 server (moto), on the threaded scheduler and on a real LocalCluster of
2 worker processes (one, shared by the module: it is slow to start)."""

from __future__ import annotations

import builtins
import struct

import numpy as np
import pytest
import s3_server as s3

from binrec import Error, Framing, Struct

dd = pytest.importorskip("dask.dataframe")
bdask = pytest.importorskip("binrec.dask")
fsspec = pytest.importorskip("fsspec")

# the moto S3 server's fixtures, found by name
s3_server = s3.s3_server
s3_bucket = s3.s3_bucket

FMT = ">I10sf"
NAMES = "id name temp"
COUNTS = [1000, 1, 0, 2345]
TOTAL = sum(COUNTS)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask")
    s = Struct(FMT, NAMES)
    paths = []
    for k, n in enumerate(COUNTS):
        rows = [(k * 10_000 + i, b"st%d" % (i % 13), i / 8) for i in range(n)]
        path = d / f"part{k}.bin"
        path.write_bytes(b"HEAD" + s.pack(rows))
        paths.append(path)
    return d, paths, s


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of 2 worker processes for the module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        with distributed.Client(c) as client:
            yield client


@pytest.fixture
def memory_files(files):
    """The same files under memory://, removed after the test."""
    d, paths, s = files
    fs = fsspec.filesystem("memory")
    root = "/binrec-dask-test"
    for p in paths:
        fs.pipe(f"{root}/{p.name}", p.read_bytes())
    yield f"memory://{root}", fs
    fs.rm(root, recursive=True)


def expected(paths, s):
    return np.concatenate([s.read_file(p, offset=4) for p in paths])


def struct_record(paths, n):
    """Record n across the files, decoded by the struct module (oracle);
    numpy's bytes type drops trailing NULs, so the oracle does too."""
    for p in paths:
        data = p.read_bytes()
        here = (len(data) - 4) // 18
        if n < here:
            rid, name, temp = struct.unpack_from(FMT, data, 4 + 18 * n)
            return rid, name.rstrip(b"\0"), temp
        n -= here
    raise IndexError(n)


def assert_frame_equals_records(got, exp, s):
    for name in s.names:
        assert got[name].tolist() == exp[name].tolist()


def test_partitions_are_record_aligned(files):
    d, paths, s = files
    parts = bdask.partitions([str(p) for p in paths], s, offset=4, blocksize=1000)
    assert all((p.offset - 4) % s.size == 0 for p in parts)
    assert sum(p.count for p in parts) == 1000 + 1 + 0 + 2345
    assert max(p.count for p in parts) == 1000 // s.size


def test_partitions_takes_the_struct_as_struct_and_still_as_s_with_a_warning(files):
    # oracle: the partitions of the positional call
    d, paths, s = files
    positional = bdask.partitions(paths, s, offset=4, blocksize=1000)
    assert bdask.partitions(paths, struct=s, offset=4, blocksize=1000) == positional
    with pytest.warns(DeprecationWarning, match=r"partitions\(s=\.\.\.\) is deprecated: use struct="):
        assert bdask.partitions(paths, s=s, offset=4, blocksize=1000) == positional


def test_dataframe_threaded_equals_read_file(files):
    d, paths, s = files
    df = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize="4KiB")
    assert df.npartitions > 4
    got = df.compute(scheduler="threads")
    exp = expected(paths, s)
    for name in s.names:
        assert got[name].tolist() == exp[name].tolist()


def test_array_threaded_equals_read_file(files):
    d, paths, s = files
    arr = bdask.read_records([str(p) for p in paths], s, offset=4, blocksize=2048, to_array=True)
    got = arr.compute(scheduler="threads")
    assert got.dtype == s.dtype
    assert got.tobytes() == expected(paths, s).tobytes()


def test_text_fields(files):
    d, paths, s = files
    got = bdask.read_records(str(paths[0]), FMT, NAMES, offset=4, text="name").compute(scheduler="sync")
    assert got["name"].tolist()[:3] == ["st0", "st1", "st2"]


def test_bad_file_length_names_the_file(tmp_path):
    good = tmp_path / "a.bin"
    good.write_bytes(bytes(18 * 3))
    bad = tmp_path / "b.bin"
    bad.write_bytes(bytes(18 * 3 + 5))
    with pytest.raises(
        Error,
        match=r"b\.bin: 59 bytes after offset 0 are not a whole number of 18-byte records .*partial record of 5 bytes at byte offset 54\)$",
    ):
        bdask.read_records([good, bad], FMT)
    with pytest.raises(FileNotFoundError):
        bdask.read_records(str(tmp_path / "nothing*.bin"), FMT)


def test_local_cluster_with_two_worker_processes(files, cluster):
    d, paths, s = files
    df = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize="4KiB")
    got = cluster.compute(df).result(timeout=120)
    arr = cluster.compute(
        bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize="4KiB", to_array=True)
    ).result(timeout=120)
    workers = cluster.run(lambda: __import__("os").getpid())
    exp = expected(paths, s)
    assert len(set(workers.values())) == 2
    assert_frame_equals_records(got, exp, s)
    assert arr.tobytes() == exp.tobytes()


# -- the index: record number across the files -------------------------------------


def test_index_is_the_record_number_with_known_divisions(files):
    # oracle: the cumulative record counts of the files (numpy), empty file skipped
    d, paths, s = files
    df = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize=1800)  # 100 records a partition
    assert df.known_divisions
    starts = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1001]
    starts += list(range(1001 + 100, TOTAL, 100))
    assert df.divisions == (*starts, TOTAL - 1)
    got = df.compute(scheduler="threads")
    assert got.index.name == "_record"
    assert got.index.tolist() == np.arange(TOTAL).tolist()


@pytest.mark.parametrize("n", [0, 99, 100, 999, 1000, 1001, TOTAL - 1])
def test_loc_is_one_record_equal_to_struct(files, n):
    d, paths, s = files
    df = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize=1800)
    row = df.loc[n].compute(scheduler="sync")
    assert len(row) == 1
    assert tuple(row.iloc[0]) == struct_record(paths, n)


def test_len_reads_no_record_bytes(files, monkeypatch):
    # oracle: the file sizes (the record counts written), and a count of opens
    d, paths, s = files
    df = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize=1800)
    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file).startswith(str(d)):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    assert len(df) == TOTAL
    assert len(df["temp"]) == TOTAL
    assert opened == []


def test_len_of_a_url_reads_no_record_bytes(files, memory_files, monkeypatch):
    # only the sizes (info/glob) are asked of the filesystem; no open, no cat
    url, fs = memory_files
    df = bdask.read_records(f"{url}/part*.bin", FMT, NAMES, offset=4, blocksize=1800)
    reads = []
    for method in ("_open", "cat_file", "cat", "open"):
        real = getattr(type(fs), method)
        monkeypatch.setattr(
            type(fs), method, lambda self, *a, _m=method, _r=real, **k: reads.append(_m) or _r(self, *a, **k)
        )
    assert len(df) == TOTAL
    assert reads == []


def test_parquet_has_the_record_index_and_no_null_dask_index(files, tmp_path):
    # oracle: pyarrow reads the Parquet files back; read_file gives the values
    pq = pytest.importorskip("pyarrow.parquet")
    d, paths, s = files
    df = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize="8KiB")
    df.to_parquet(tmp_path / "out", compute_kwargs={"scheduler": "sync"})
    table = pq.read_table(tmp_path / "out").to_pandas().reset_index()
    assert "__null_dask_index__" not in table.columns
    assert sorted(table.columns) == ["_record", "id", "name", "temp"]
    table = table.sort_values("_record")
    assert table["_record"].tolist() == list(range(TOTAL))
    assert_frame_equals_records(table, expected(paths, s), s)


def test_index_name_can_be_chosen_but_not_a_field_name(files):
    d, paths, s = files
    df = bdask.read_records(str(paths[0]), FMT, NAMES, offset=4, index="n")
    assert df.compute(scheduler="sync").index.name == "n"
    with pytest.raises(Error, match=r"index='id' is also a field name"):
        bdask.read_records(str(paths[0]), FMT, NAMES, offset=4, index="id")


def test_all_files_empty_is_an_empty_frame(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"")
    df = bdask.read_records(str(tmp_path / "*.bin"), FMT, NAMES)
    assert len(df) == 0
    assert df.compute(scheduler="sync").columns.tolist() == ["id", "name", "temp"]


# -- URLs --------------------------------------------------------------------------


def test_memory_url_glob_equals_the_local_read(files, memory_files):
    # oracle: the local read of the same bytes, value for value and index for index
    d, paths, s = files
    url, fs = memory_files
    local = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize="4KiB")
    remote = bdask.read_records(f"{url}/part*.bin", FMT, NAMES, offset=4, blocksize="4KiB")
    assert remote.divisions == local.divisions
    got, exp = remote.compute(scheduler="threads"), local.compute(scheduler="threads")
    assert got.index.tolist() == exp.index.tolist()
    assert_frame_equals_records(got, exp, s)
    arr = bdask.read_records(f"{url}/part*.bin", s, offset=4, blocksize="4KiB", to_array=True)
    assert arr.chunks[0][:2] == (227, 227)
    assert arr.compute(scheduler="threads").tobytes() == expected(paths, s).tobytes()


def test_a_partition_is_one_ranged_read(files, memory_files, monkeypatch):
    # oracle: the number of partitions; each asks the filesystem for its byte range once
    url, fs = memory_files
    df = bdask.read_records(f"{url}/part*.bin", FMT, NAMES, offset=4, blocksize="16KiB")
    ranges = []
    real = type(fs).cat_file
    monkeypatch.setattr(
        type(fs),
        "cat_file",
        lambda self, path, start=None, end=None, **k: ranges.append((start, end)) or real(self, path, start, end, **k),
    )
    df.compute(scheduler="sync")
    assert len(ranges) == df.npartitions
    assert all(end - start <= 16 * 1024 for start, end in ranges)


def test_file_url_on_the_cluster_equals_read_file(files, cluster):
    d, paths, s = files
    df = bdask.read_records(f"file://{d}/part*.bin", FMT, NAMES, offset=4, blocksize="4KiB")
    got = cluster.compute(df).result(timeout=120)
    assert got.index.tolist() == list(range(TOTAL))
    assert_frame_equals_records(got, expected(paths, s), s)


def test_an_object_of_not_whole_records_names_the_url(memory_files):
    url, fs = memory_files
    fs.pipe("/binrec-dask-test/good.bin", bytes(18 * 2))
    fs.pipe("/binrec-dask-test/odd.bin", bytes(18 * 2 + 3))
    with pytest.raises(
        Error, match=r"memory:///?binrec-dask-test/odd\.bin: 39 bytes after offset 0 are not a whole number"
    ):
        bdask.read_records([f"{url}/good.bin", f"{url}/odd.bin"], FMT)


def test_s3_on_the_cluster_equals_the_local_read(files, cluster, s3_bucket):
    # oracle: the local read of the same files, value for value and index for index
    d, paths, s = files
    server, bucket = s3_bucket
    fs = server.filesystem()
    for p in paths:
        fs.pipe_file(f"{bucket}/logs/{p.name}", p.read_bytes())
    url = f"s3://{bucket}/logs/part*.bin"
    remote = bdask.read_records(url, FMT, NAMES, offset=4, blocksize="4KiB", storage_options=server.storage_options)
    local = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize="4KiB")
    assert remote.divisions == local.divisions
    got, exp = cluster.compute(remote).result(timeout=120), local.compute(scheduler="sync")
    assert got.index.tolist() == exp.index.tolist()
    assert_frame_equals_records(got, exp, s)
    arr = bdask.read_records(url, s, offset=4, to_array=True, storage_options=server.storage_options)
    assert cluster.compute(arr).result(timeout=120).tobytes() == expected(paths, s).tobytes()


def test_s3_missing_key_names_the_url(s3_bucket):
    server, bucket = s3_bucket
    with pytest.raises(FileNotFoundError, match=rf"s3://{bucket}/missing\.bin"):
        bdask.read_records(f"s3://{bucket}/missing.bin", FMT, storage_options=server.storage_options)


def test_an_s3_glob_matching_nothing_names_the_url(s3_bucket):
    server, bucket = s3_bucket
    with pytest.raises(FileNotFoundError, match=rf"no record files match 's3://{bucket}/nothing\*\.bin'"):
        bdask.read_records(f"s3://{bucket}/nothing*.bin", FMT, storage_options=server.storage_options)


def test_refused_credentials_name_the_url():
    with s3.start_server(check_credentials=True) as server:
        with pytest.raises(OSError, match=r"s3://binrec-locked/a\.bin"):
            bdask.read_records("s3://binrec-locked/a.bin", FMT, storage_options=server.storage_options)


def test_a_server_stopped_during_a_compute_is_an_error_naming_the_url(files):
    # the first partition is read, then the server stops; the next read fails
    from dask.callbacks import Callback

    d, paths, s = files
    with s3.start_server() as server:
        fs = server.filesystem()
        bucket = server.make_bucket()
        fs.pipe_file(f"{bucket}/part0.bin", paths[0].read_bytes())
        df = bdask.read_records(
            f"s3://{bucket}/part0.bin", FMT, NAMES, offset=4, blocksize=1800, storage_options=server.storage_options
        )
        assert df.npartitions == 10
        done = []

        class StopTheServer(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                done.append(key)
                server.stop()

        with StopTheServer(), pytest.raises(OSError, match=rf"s3://{bucket}/part0\.bin: reading bytes \d+-\d+"):
            df.compute(scheduler="sync")
        assert len(done) == 1


# -- framed files --------------------------------------------------------------------

FRAMING = Framing(">HB", names="n t", length="n", tag="t", formats={1: ">hI", 2: ">d", 3: ">8s"})


@pytest.fixture(scope="module")
def framed_files(tmp_path_factory):
    """Framed files written with struct, and what struct packed for type 1."""
    d = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(14)
    packed_type1 = []
    for k, n in enumerate([50, 0, 7, 300]):
        out = bytearray(b"HDR!")
        for frame in range(n):
            tag = int(rng.integers(1, 4))
            if tag == 1:
                values = (int(rng.integers(-30000, 30000)), int(rng.integers(0, 1 << 32)))
                out += struct.pack(">HBhI", 6, 1, *values)
                packed_type1.append((k, *values, frame))
            elif tag == 2:
                out += struct.pack(">HBd", 8, 2, float(rng.random()))
            else:
                out += struct.pack(">HB8s", 8, 3, b"x" * 8)
        (d / f"f{k}.log").write_bytes(bytes(out))
    return d, packed_type1


def test_read_frames_equals_what_struct_packed(framed_files):
    d, packed = framed_files
    df = bdask.read_frames(str(d / "*.log"), FRAMING, 1, offset=4)
    assert df.npartitions == 4
    assert df.divisions == (0, 1, 2, 3, 3)
    got = df.compute(scheduler="threads").reset_index()
    assert got.columns.tolist() == ["_file", "f0", "f1", "_frame"]
    assert [tuple(r) for r in got.itertuples(index=False)] == packed


def test_read_frames_loc_is_one_file(framed_files):
    d, packed = framed_files
    df = bdask.read_frames(str(d / "*.log"), FRAMING, 1, offset=4)
    got = df.loc[2].compute(scheduler="sync").reset_index()
    assert [tuple(r) for r in got.itertuples(index=False)] == [p for p in packed if p[0] == 2]


def test_read_frames_from_a_memory_url_equals_the_local_read(framed_files):
    d, packed = framed_files
    fs = fsspec.filesystem("memory")
    for p in sorted(d.glob("*.log")):
        fs.pipe(f"/binrec-frames-test/{p.name}", p.read_bytes())
    try:
        local = bdask.read_frames(str(d / "*.log"), FRAMING, 1, offset=4).compute(scheduler="sync")
        remote = bdask.read_frames("memory://binrec-frames-test/*.log", FRAMING, 1, offset=4).compute(scheduler="sync")
    finally:
        fs.rm("/binrec-frames-test", recursive=True)
    assert remote.index.tolist() == local.index.tolist()
    assert remote.values.tolist() == local.values.tolist()


def test_read_frames_from_s3_on_the_cluster_equals_what_struct_packed(framed_files, cluster, s3_bucket):
    d, packed = framed_files
    server, bucket = s3_bucket
    fs = server.filesystem()
    for p in sorted(d.glob("*.log")):
        fs.pipe_file(f"{bucket}/{p.name}", p.read_bytes())
    df = bdask.read_frames(f"s3://{bucket}/*.log", FRAMING, 1, offset=4, storage_options=server.storage_options)
    got = cluster.compute(df).result(timeout=120).reset_index()
    assert [tuple(r) for r in got.itertuples(index=False)] == packed


def test_read_frames_refuses_a_tag_without_a_format(framed_files):
    d, packed = framed_files
    with pytest.raises(Error, match=r"no format for tag 9"):
        bdask.read_frames(str(d / "*.log"), FRAMING, 9)


def test_read_frames_error_names_the_file_and_frame(tmp_path):
    (tmp_path / "bad.log").write_bytes(struct.pack(">HBhI", 6, 1, 1, 2) + struct.pack(">HB", 60, 1))
    df = bdask.read_frames(str(tmp_path / "*.log"), FRAMING, 1)
    with pytest.raises(Error, match=r"bad\.log: frame 1 at byte offset 9"):
        df.compute(scheduler="sync")


def test_bytes_fields_stay_bytes_even_when_not_utf8(tmp_path):
    s = Struct(FMT, NAMES)
    path = tmp_path / "x.bin"
    s.write_file(path, [(1, b"ab\xff", 1.0)])
    got = bdask.read_records(path, s).compute(scheduler="sync")
    assert got["name"].tolist() == [b"ab\xff"]


def test_a_directory_is_named_as_such_not_as_a_bad_record_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(bytes(18 * 2))
    with pytest.raises(IsADirectoryError, match=r"is a directory, not a record file.*\*\.bin"):
        bdask.read_records(str(tmp_path), FMT)
    with pytest.raises(IsADirectoryError):
        bdask.read_records([tmp_path / "a.bin", tmp_path], FMT)
    (tmp_path / "sub.bin").mkdir()  # a glob skips the directories it matches
    got = bdask.read_records(str(tmp_path / "*.bin"), FMT, to_array=True).compute(scheduler="sync")
    assert len(got) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "d.bin").mkdir()
    with pytest.raises(FileNotFoundError, match="no record files match"):
        bdask.read_records(str(empty / "*.bin"), FMT)


def test_negative_offset_is_a_binrec_error(files):
    d, paths, s = files
    with pytest.raises(Error, match=r"offset must be >= 0 in a file \(it is the size of a header to skip\), got -4"):
        bdask.read_records(str(paths[0]), FMT, NAMES, offset=-4)


def test_without_dask_the_error_says_how_to_install_it(tmp_path):
    """A child process in which dask cannot be imported (a meta-path
    blocker, as if it were not installed)."""
    import subprocess
    import sys

    (tmp_path / "r.bin").write_bytes(bytes(18))
    code = f"""
import sys

class NoDask:
    def find_spec(self, name, path=None, target=None):
        if name == "dask" or name.startswith("dask."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

for name in [m for m in sys.modules if m == "dask" or m.startswith("dask.")]:
    del sys.modules[name]
sys.meta_path.insert(0, NoDask())
import binrec.dask
for kw in ({{}}, {{"to_array": True}}, {{"blocksize": 1000}}):
    try:
        binrec.dask.read_records({str(tmp_path / "r.bin")!r}, {FMT!r}, **kw)
    except ImportError as exc:
        print(type(exc).__name__, exc)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert line.startswith("ImportError binrec.dask needs dask") and 'pip install "binrec[dask]"' in line
