"""binrec.dask: the same decode on Dask, checked against read_file, on the
threaded scheduler and on a real LocalCluster of 2 worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from binrec import Error, Struct

dd = pytest.importorskip("dask.dataframe")
bdask = pytest.importorskip("binrec.dask")

FMT = ">I10sf"
NAMES = "id name temp"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask")
    s = Struct(FMT, NAMES)
    paths = []
    for k, n in enumerate([1000, 1, 0, 2345]):
        rows = [(k * 10_000 + i, b"st%d" % (i % 13), i / 8) for i in range(n)]
        path = d / f"part{k}.bin"
        path.write_bytes(b"HEAD" + s.pack(rows))
        paths.append(path)
    return d, paths, s


def expected(paths, s):
    return np.concatenate([s.read_file(p, offset=4) for p in paths])


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


def test_local_cluster_with_two_worker_processes(files):
    distributed = pytest.importorskip("distributed")
    d, paths, s = files
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            df = bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize="4KiB")
            got = client.compute(df).result(timeout=120)
            arr = client.compute(
                bdask.read_records(str(d / "part*.bin"), FMT, NAMES, offset=4, blocksize="4KiB", to_array=True)
            ).result(timeout=120)
            workers = client.run(lambda: __import__("os").getpid())
    exp = expected(paths, s)
    assert len(set(workers.values())) == 2
    for name in s.names:
        assert got[name].tolist() == exp[name].tolist()
    assert arr.tobytes() == exp.tobytes()


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
