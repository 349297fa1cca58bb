"""binrec._fs: naming, listing, sizing and reading files by path or fsspec URL.

Oracles: the bytes written (their lengths and contents), ``os.stat``,
``binrec.dask._expand`` (the local rules _fs.expand must keep), and a
subprocess in which fsspec cannot be imported.  memory:// and file:// run
through the same tests (the S3 ones are in test_fsspec.py).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import uuid

import fsspec
import pytest

from binrec import _fs


@pytest.fixture
def memory_root():
    """A fresh folder in fsspec's process-wide memory filesystem."""
    fs = fsspec.filesystem("memory")
    root = f"/binrec-test-{uuid.uuid4().hex}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path, memory_root):
    """(write, url_of) for one filesystem: write(name, data) puts a file,
    url_of(name) is its URL."""
    if request.param == "memory":
        fs, root = memory_root

        def write(name, data):
            fs.pipe_file(f"{root}/{name}", data)

        return write, lambda name: f"memory://{root}/{name}"

    def write_local(name, data):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return write_local, lambda name: (tmp_path / name).as_uri()


@pytest.mark.parametrize(
    "path",
    ["s3://bucket/key.bin", "file:///tmp/x.bin", "memory://x", "gs://b/k", "simplecache::s3://b/k", "abfs://c/k"],
)
def test_is_url_true_for_schemes(path):
    assert _fs.is_url(path)


@pytest.mark.parametrize(
    "path", ["x.bin", "/tmp/x.bin", "C:\\data\\x.bin", "C:/data/x.bin", "c://x", "s3:/x", "://x", b"s3://b/k"]
)
def test_is_url_false_for_paths(path):
    # one-letter schemes are Windows drives (fsspec decides the same), bytes are never URLs
    assert not _fs.is_url(path)


def test_is_url_false_for_pathlike(tmp_path):
    assert not _fs.is_url(tmp_path / "s3:" / "x")


def test_local_path_of_file_url_is_the_path(tmp_path):
    path = tmp_path / "a.bin"
    assert _fs.local_path(path.as_uri()) == str(path)
    assert _fs.local_path(str(path)) == str(path)
    assert _fs.local_path(path) == str(path)


def test_local_path_of_remote_url_is_none():
    assert _fs.local_path("s3://b/k") is None
    assert _fs.local_path("memory://x") is None


def test_storage_options_with_local_path_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="storage_options"):
        _fs.url_to_fs(str(tmp_path / "a.bin"), {"anon": True})
    with pytest.raises(ValueError, match="storage_options"):
        _fs.expand(str(tmp_path / "*.bin"), {"anon": True})


def test_url_to_fs_gives_the_filesystem_and_path(memory_root):
    _, root = memory_root
    fs, path = _fs.url_to_fs(f"memory://{root}/a.bin")
    assert type(fs).__name__ == "MemoryFileSystem" and path == f"{root}/a.bin"


def test_url_to_fs_unknown_protocol_names_the_url():
    with pytest.raises(ValueError, match="nosuchproto://b/k"):
        _fs.url_to_fs("nosuchproto://b/k")


def test_without_fsspec_a_url_names_the_extra_and_local_paths_work(tmp_path):
    # oracle: a fresh interpreter where `import fsspec` fails
    path = tmp_path / "a.bin"
    path.write_bytes(b"12345678")
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["fsspec"] = None  # import fsspec -> ImportError
        from binrec import _fs
        entry, = _fs.expand({str(path)!r})
        assert entry.size == 8 and entry.fs is None, entry
        assert _fs.read_range(entry, 2, 3) == b"345"
        try:
            _fs.expand("s3://bucket/key.bin")
        except ImportError as exc:
            print(exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "binrec[cloud]"' in proc.stdout and "s3://bucket/key.bin" in proc.stdout


def test_expand_sizes_one_file(store):
    write, url_of = store
    write("a.bin", b"x" * 12)
    (entry,) = _fs.expand(url_of("a.bin"))
    assert (entry.url, entry.size) == (url_of("a.bin"), 12)


def test_expand_glob_is_sorted_and_sized(store):
    write, url_of = store
    for name, n in [("logs/c.bin", 3), ("logs/a.bin", 1), ("logs/b.bin", 2), ("logs/skip.txt", 9)]:
        write(name, b"z" * n)
    entries = _fs.expand(url_of("logs") + "/*.bin")
    assert [e.size for e in entries] == [1, 2, 3]
    assert [e.url.rsplit("/", 1)[1] for e in entries] == ["a.bin", "b.bin", "c.bin"]


def test_expand_glob_skips_directories(store):
    write, url_of = store
    write("d/x.bin/inner", b"1")
    write("d/y.bin", b"22")
    assert [e.size for e in _fs.expand(url_of("d") + "/*.bin")] == [2]


def test_expand_glob_matching_nothing_names_the_url(store):
    write, url_of = store
    write("a.bin", b"1")
    pattern = url_of("nothing") + "*.bin"
    with pytest.raises(FileNotFoundError, match="no record files match") as info:
        _fs.expand(pattern)
    assert pattern in str(info.value)


def test_expand_missing_file_names_the_url(store):
    write, url_of = store
    write("a.bin", b"1")
    with pytest.raises(FileNotFoundError, match="no such record file") as info:
        _fs.expand(url_of("missing.bin"))
    assert url_of("missing.bin") in str(info.value)


def test_expand_directory_named_outright(store):
    write, url_of = store
    write("d/a.bin", b"1")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        _fs.expand(url_of("d"))


def _dask_expand(paths):
    """binrec.dask._expand as it was before binrec._fs (commit 151250c): the
    local rules and messages _fs.expand keeps, copied here as the oracle."""
    import glob

    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out = []
    for item in items:
        item = os.fspath(item)
        if glob.has_magic(item):
            matched = [m for m in sorted(glob.glob(item)) if not os.path.isdir(m)]
            if not matched:
                raise FileNotFoundError(f"no record files match {item!r}")
            out.extend(matched)
        elif os.path.isdir(item):
            raise IsADirectoryError(
                f"{item!r} is a directory, not a record file (to read the files in it, pass a glob such as "
                f"{os.path.join(item, '*.bin')!r})"
            )
        elif not os.path.exists(item):
            raise FileNotFoundError(f"no such record file: {item!r}")
        else:
            out.append(item)
    if not out:
        raise ValueError("no record files given")
    return out


def test_expand_keeps_binrec_dask_local_rules(tmp_path):
    # oracle: binrec.dask's expansion before _fs existed (_dask_expand above)
    for name in ("b.bin", "a.bin"):
        (tmp_path / name).write_bytes(b"12")
    (tmp_path / "sub.bin").mkdir()
    pattern = str(tmp_path / "*.bin")
    assert [e.url for e in _fs.expand(pattern)] == _dask_expand(pattern)
    both = [str(tmp_path / "b.bin"), tmp_path / "a.bin"]
    assert [e.url for e in _fs.expand(both)] == _dask_expand(both)
    for bad in (str(tmp_path / "missing.bin"), str(tmp_path / "none*.bin"), str(tmp_path / "sub.bin"), []):
        with pytest.raises(Exception) as ours:
            _fs.expand(bad)
        with pytest.raises(Exception) as theirs:
            _dask_expand(bad)
        assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_expand_local_sizes_come_from_stat(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"1" * 7)
    (entry,) = _fs.expand(tmp_path / "a.bin")
    assert entry.size == os.stat(tmp_path / "a.bin").st_size and entry.fs is None


def test_stat_entry_does_not_glob(memory_root):
    fs, root = memory_root
    fs.pipe_file(f"{root}/a[1].bin", b"12345")
    assert _fs.stat_entry(f"memory://{root}/a[1].bin").size == 5


def test_file_entry_pickles(memory_root):
    fs, root = memory_root
    fs.pipe_file(f"{root}/a.bin", b"12345")
    (entry,) = _fs.expand(f"memory://{root}/a.bin")
    again = pickle.loads(pickle.dumps(entry))
    assert again == entry or (again.url, again.path, again.size) == (entry.url, entry.path, entry.size)
    assert _fs.read_range(again, 1, 2) == b"23"


def test_read_range_reads_the_bytes(store):
    write, url_of = store
    data = bytes(range(256)) * 4
    write("r.bin", data)
    (entry,) = _fs.expand(url_of("r.bin"))
    assert _fs.read_range(entry, 100, 300) == data[100:400]


def test_read_range_past_the_end_names_the_url(store):
    write, url_of = store
    write("r.bin", b"0123456789")
    (entry,) = _fs.expand(url_of("r.bin"))
    with pytest.raises(OSError, match="shrank") as info:
        _fs.read_range(entry, 8, 5)
    assert url_of("r.bin") in str(info.value) or entry.url in str(info.value)


def test_iter_ranges_gives_the_bytes_in_order_on_record_boundaries(memory_root):
    fs, root = memory_root
    data = os.urandom(100_003)
    fs.pipe_file(f"{root}/r.bin", data)
    (entry,) = _fs.expand(f"memory://{root}/r.bin")
    pieces = list(_fs.iter_ranges(entry, 3, len(data), piece=10_000, in_flight=3, align=7))
    assert b"".join(pieces) == data[3:]
    assert all(len(p) % 7 == 0 for p in pieces[:-1]) and len(pieces) == -(-(len(data) - 3) // 9996)


def test_iter_ranges_makes_one_request_per_piece(memory_root, monkeypatch):
    fs, root = memory_root
    data = os.urandom(50_000)
    fs.pipe_file(f"{root}/r.bin", data)
    (entry,) = _fs.expand(f"memory://{root}/r.bin")
    calls = []
    real = type(entry.fs).cat_file

    def counting(self, path, start=None, end=None, **kw):
        calls.append((start, end))
        return real(self, path, start=start, end=end, **kw)

    monkeypatch.setattr(type(entry.fs), "cat_file", counting)
    assert b"".join(_fs.iter_ranges(entry, 0, len(data), piece=16_384)) == data
    assert sorted(calls) == [(0, 16384), (16384, 32768), (32768, 49152), (49152, 50000)]


def test_open_input_reads_the_file(store):
    write, url_of = store
    write("o.bin", b"abcdef")
    with _fs.open_input(url_of("o.bin")) as fh:
        assert fh.read() == b"abcdef"
