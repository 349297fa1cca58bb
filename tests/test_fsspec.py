"""Record files by fsspec URL: read_file, iter_unpack, read_record, write_file
and the CLI on s3:// (a moto server on 127.0.0.1, tests/s3_server.py),
memory:// and file:// -- the same tests on each.

Oracles: ``struct`` (the bytes of every record, packed one by one, and the
values ``struct.iter_unpack`` gives), the local-path result of the same
call on the same bytes, S3's own listings (objects, multipart uploads) and
counted filesystem calls (``info``, ``cat_file``) for the request budget.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import textwrap
import uuid

import fsspec
import numpy as np
import pytest
from s3_server import s3_bucket, s3_server, start_server  # noqa: F401

import binrec
from binrec import _backend, _fs, files

FORMAT = "<iq8sd"
NAMES = "a b tag x"
N = 20_000
ROWS = [(i, -3 * i, b"t%d" % (i % 997), i / 8) for i in range(N)]
RAW = b"".join(struct.pack(FORMAT, *row) for row in ROWS)
HEADER = b"HDR!"
S = binrec.Struct(FORMAT, NAMES)


def wire(rows) -> bytes:
    """Decoded records back as their wire bytes (``tobytes()`` would give the
    host's byte order, which differs from FORMAT's on a big-endian machine)."""
    return S.pack(np.asarray(rows).reshape(-1))


def _values(raw):
    """The oracle's values: struct.iter_unpack of the bytes (numpy's ``S``
    dtype drops trailing NULs from bytes values, so the oracle does too)."""
    return [
        tuple(v.rstrip(b"\0") if isinstance(v, bytes) else v for v in row) for row in struct.iter_unpack(FORMAT, raw)
    ]


class Store:
    """One filesystem under test: a place to put objects and name them."""

    def __init__(self, kind, tmp_path, request):
        self.kind = kind
        if kind == "s3":
            self.server, bucket = request.getfixturevalue("s3_bucket")
            self.prefix = f"s3://{bucket}/"
            self.options = self.server.storage_options
            # the instance binrec gets for these options (fsspec caches it)
            self.fs = _fs.url_to_fs(self.prefix + "x", self.options)[0]
            self.root = bucket
        elif kind == "memory":
            self.root = f"/binrec-test-{uuid.uuid4().hex}"
            self.prefix = f"memory://{self.root}/"
            self.options = None
            self.fs = fsspec.filesystem("memory")
        else:
            self.prefix = tmp_path.as_uri() + "/"
            self.options = None
            self.fs = None
            self.root = str(tmp_path)

    def url(self, name):
        return self.prefix + name

    def _path(self, name):
        return f"{self.root}/{name}"

    def put(self, name, data):
        if self.fs is None:
            with open(self._path(name), "wb") as fh:
                fh.write(data)
        else:
            self.fs.pipe_file(self._path(name), data)
        return self.url(name)

    def get(self, name):
        """The object's bytes, or None when there is no object."""
        if self.fs is None:
            try:
                with open(self._path(name), "rb") as fh:
                    return fh.read()
            except FileNotFoundError:
                return None
        self.fs.invalidate_cache()
        return self.fs.cat_file(self._path(name)) if self.fs.exists(self._path(name)) else None


@pytest.fixture(params=["s3", "memory", "file"])
def store(request, tmp_path):
    store = Store(request.param, tmp_path, request)
    yield store
    if request.param == "memory" and store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


@pytest.fixture(params=["s3", "memory"])
def remote(request, tmp_path):
    """The stores that are not local files."""
    store = Store(request.param, tmp_path, request)
    yield store
    if request.param == "memory" and store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


@pytest.fixture(params=["s3", "file"])
def shared(request, tmp_path):
    """The stores another process (the CLI) can see: memory:// is per process."""
    return Store(request.param, tmp_path, request)


@pytest.fixture
def calls(remote, monkeypatch):
    """Record the filesystem's ``info`` and ``cat_file`` calls (the
    requests binrec makes) on the instance binrec uses."""
    seen = {"info": [], "cat_file": []}
    for name in seen:
        real = getattr(remote.fs, name)

        def counting(path, *args, _real=real, _name=name, **kw):
            seen[_name].append((path, args, kw))
            return _real(path, *args, **kw)

        monkeypatch.setattr(remote.fs, name, counting)
    return seen


# -- reads give struct's bytes and values ------------------------------------


def test_read_file_gives_structs_bytes_and_values(store):
    url = store.put("data.bin", HEADER + RAW)
    arr = S.read_file(url, offset=len(HEADER), storage_options=store.options)
    assert wire(arr) == RAW
    assert arr.tolist() == _values(RAW)


def test_read_file_equals_the_local_result(store, tmp_path):
    local = tmp_path / "local.bin"
    local.write_bytes(HEADER + RAW)
    url = store.put("data.bin", HEADER + RAW)
    for kw in ({"count": 123}, {"text": "tag"}):
        ours = S.read_file(url, offset=len(HEADER), storage_options=store.options, **kw)
        oracle = S.read_file(str(local), offset=len(HEADER), **kw)
        assert ours.dtype == oracle.dtype and ours.tolist() == oracle.tolist()


def test_iter_unpack_gives_structs_records_in_chunks(store):
    url = store.put("data.bin", RAW)
    chunks = list(S.iter_unpack(url, chunk_size=3000, storage_options=store.options))
    assert [len(c) for c in chunks] == [3000] * 6 + [2000]
    assert b"".join(wire(c) for c in chunks) == RAW


def test_iter_unpack_returns_the_trailing_bytes(store):
    url = store.put("data.bin", RAW[: 10 * S.size] + b"xy")
    out = list(S.iter_unpack(url, trailing="return", storage_options=store.options))
    assert wire(out[0]) == RAW[: 10 * S.size] and out[-1] == b"xy"


def test_read_record_gives_structs_record(store):
    url = store.put("data.bin", HEADER + RAW)
    for index in (0, 7, N - 1, -1, -N):
        record = S.read_record(url, index, offset=len(HEADER), storage_options=store.options)
        at = (index % N) * S.size
        assert record.tolist() == _values(RAW[at : at + S.size])[0]


def test_write_file_writes_structs_bytes(store):
    url = store.url("out.bin")
    assert S.write_file(url, ROWS, header=HEADER, storage_options=store.options) == N
    assert store.get("out.bin") == HEADER + RAW


def test_write_file_replaces_an_object(store):
    url = store.put("out.bin", b"old contents")
    S.write_file(url, ROWS[:5], storage_options=store.options)
    assert store.get("out.bin") == RAW[: 5 * S.size]


# -- the request budget: large ranges, never one per record -----------------


def test_read_file_is_one_info_and_one_range_per_piece(remote, calls, monkeypatch):
    monkeypatch.setattr(_fs, "RANGE_BYTES", 64 << 10)
    monkeypatch.setattr(_fs, "MAX_RANGE_BYTES", 64 << 10)
    url = remote.put("data.bin", RAW)
    assert wire(S.read_file(url, storage_options=remote.options)) == RAW
    piece = (64 << 10) // S.size * S.size
    assert len(calls["info"]) == 1
    assert len(calls["cat_file"]) == math.ceil(len(RAW) / piece)  # 9 requests for 20,000 records
    ranges = sorted((kw["start"], kw["end"]) for _, _, kw in calls["cat_file"])
    assert ranges[0][0] == 0 and ranges[-1][1] == len(RAW)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # each byte once


def test_iter_unpack_is_one_info_and_one_range_per_piece(remote, calls, monkeypatch):
    monkeypatch.setattr(_fs, "RANGE_BYTES", 64 << 10)
    monkeypatch.setattr(_fs, "MAX_RANGE_BYTES", 64 << 10)
    url = remote.put("data.bin", RAW)
    assert b"".join(wire(c) for c in S.iter_unpack(url, chunk_size=100, storage_options=remote.options)) == RAW
    assert len(calls["info"]) == 1
    assert len(calls["cat_file"]) == math.ceil(len(RAW) / (64 << 10))


def test_a_large_object_is_read_in_ranges_of_at_most_max_range_bytes(remote, calls, monkeypatch):
    monkeypatch.setattr(_fs, "RANGE_BYTES", 16 << 10)
    monkeypatch.setattr(_fs, "MAX_RANGE_BYTES", 32 << 10)
    url = remote.put("data.bin", RAW)  # 560,000 bytes: 18 ranges of the largest size
    assert wire(S.read_file(url, storage_options=remote.options)) == RAW
    sizes = sorted(kw["end"] - kw["start"] for _, _, kw in calls["cat_file"])
    assert len(sizes) == math.ceil(len(RAW) / ((32 << 10) // S.size * S.size))
    assert sizes[-1] == (32 << 10) // S.size * S.size


def test_a_small_object_is_split_across_the_requests_in_flight(remote, calls, monkeypatch):
    monkeypatch.setattr(_fs, "RANGE_BYTES", 16 << 10)
    url = remote.put("data.bin", RAW)
    assert wire(S.read_file(url, storage_options=remote.options)) == RAW
    assert len(calls["cat_file"]) == _fs.IN_FLIGHT  # 560,000 bytes in 4 ranges of 140,000


def test_read_record_is_one_info_and_one_range(remote, calls):
    url = remote.put("data.bin", HEADER + RAW)
    record = S.read_record(url, 4321, offset=len(HEADER), storage_options=remote.options)
    assert wire(record) == RAW[4321 * S.size : 4322 * S.size]
    assert len(calls["info"]) == 1
    assert [(kw["start"], kw["end"]) for _, _, kw in calls["cat_file"]] == [
        (len(HEADER) + 4321 * S.size, len(HEADER) + 4322 * S.size)
    ]


def test_not_whole_records_is_refused_before_any_record_is_read(remote, calls):
    url = remote.put("bad.bin", RAW[:-3])
    with pytest.raises(binrec.Error, match="not a whole number of 28-byte records") as info:
        S.read_file(url, storage_options=remote.options)
    assert str(info.value).startswith(url)
    with pytest.raises(binrec.Error, match="not a whole number") as info:
        S.read_record(url, 0, storage_options=remote.options)
    assert str(info.value).startswith(url)
    assert calls["cat_file"] == []


# -- file:// URLs are local paths ------------------------------------------------


def test_file_urls_never_use_fsspec(tmp_path, monkeypatch):
    # oracle: the same calls on the plain path; fsspec made unusable
    def no_fsspec(*args, **kw):
        raise AssertionError("fsspec used for a file:// URL")

    monkeypatch.setattr(_fs, "url_to_fs", no_fsspec)
    path = tmp_path / "data.bin"
    url = path.as_uri()
    S.write_file(url, ROWS, header=HEADER)
    assert path.read_bytes() == HEADER + RAW
    S.write_file(url, ROWS[:2], append=True)
    assert path.read_bytes() == HEADER + RAW + RAW[: 2 * S.size]
    assert wire(S.read_file(url, offset=4, mmap=True)) == RAW + RAW[: 2 * S.size]
    assert b"".join(wire(c) for c in S.iter_unpack(url, offset=4, mmap=True)) == RAW + RAW[: 2 * S.size]
    assert S.read_record(url, -1, offset=4).tolist() == S.read_record(str(path), -1, offset=4).tolist()


def test_mmap_is_refused_for_a_remote_url(remote):
    url = remote.put("data.bin", RAW)
    with pytest.raises(ValueError, match="mmap=True needs a local file"):
        S.read_file(url, mmap=True, storage_options=remote.options)
    with pytest.raises(ValueError, match="mmap=True needs a local file"):
        list(S.iter_unpack(url, mmap=True, storage_options=remote.options))


def test_storage_options_with_a_local_path_is_an_error(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(RAW)
    with pytest.raises(ValueError, match="storage_options are for fsspec URLs"):
        S.read_file(str(path), storage_options={"anon": True})
    with pytest.raises(ValueError, match="storage_options are for fsspec URLs"):
        S.write_file(str(path), ROWS, storage_options={"anon": True})


# -- errors name the URL ------------------------------------------------------------


def test_a_missing_object_names_the_url(store):
    url = store.url("missing.bin")
    for call in (
        lambda: S.read_file(url, storage_options=store.options),
        lambda: list(S.iter_unpack(url, storage_options=store.options)),
        lambda: S.read_record(url, 0, storage_options=store.options),
    ):
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert url in str(info.value) or (store.kind == "file" and store._path("missing.bin") in str(info.value))


def test_a_missing_bucket_names_the_url(s3_server):  # noqa: F811
    url = f"s3://binrec-no-such-bucket-{uuid.uuid4().hex[:8]}/data.bin"
    with pytest.raises(FileNotFoundError, match="no such record file") as info:
        S.read_file(url, storage_options=s3_server.storage_options)
    assert url in str(info.value)


def test_a_glob_matching_nothing_names_the_url(remote):
    remote.put("a.bin", RAW)
    with pytest.raises(FileNotFoundError, match="no record files match") as info:
        _fs.expand(remote.url("nothing*.bin"), remote.options)
    assert remote.url("nothing*.bin") in str(info.value)


def test_a_glob_expands_sorted_with_sizes(remote):
    for name, n in (("logs/b.bin", 2), ("logs/a.bin", 3), ("logs/c.txt", 1)):
        remote.put(name, RAW[: n * S.size])
    entries = _fs.expand(remote.url("logs/*.bin"), remote.options)
    assert [(e.url.rsplit("/", 1)[1], e.size) for e in entries] == [("a.bin", 3 * S.size), ("b.bin", 2 * S.size)]


def test_refused_credentials_name_the_url():
    # moto checks credentials when INITIAL_NO_AUTH_ACTION_COUNT is 0: every
    # key is then unknown, so every request is refused (403)
    with start_server(check_credentials=True) as server:
        url = "s3://some-bucket/data.bin"
        with pytest.raises(PermissionError) as info:
            S.read_file(url, storage_options=server.storage_options)
        assert url in str(info.value)
        with pytest.raises(PermissionError) as info:
            S.write_file(url, ROWS[:3], storage_options=server.storage_options)
        assert url in str(info.value)


def test_a_server_that_goes_away_mid_read_names_the_url(monkeypatch):
    monkeypatch.setattr(_fs, "RANGE_BYTES", 16 << 10)
    monkeypatch.setattr(_fs, "MAX_RANGE_BYTES", 16 << 10)
    monkeypatch.setattr(_fs, "IN_FLIGHT", 1)
    with start_server() as server:
        bucket = server.make_bucket()
        url = f"s3://{bucket}/data.bin"
        server.filesystem().pipe_file(f"{bucket}/data.bin", RAW)
        options = dict(server.storage_options, skip_instance_cache=True)
        chunks = S.iter_unpack(url, chunk_size=500, storage_options=options)
        first = next(chunks)
        assert wire(first) == RAW[: 500 * S.size]
        server.stop()
        with pytest.raises(OSError) as info:
            for _ in chunks:
                pass
        assert url in str(info.value)


# -- writes: whole objects or nothing -------------------------------------------


def _fail_on_chunk(monkeypatch, n, check=None):
    """Make write_file's n-th encoded chunk raise OSError (a failing
    store, as the writer sees it); ``check`` runs just before."""
    real = _backend.kernels.pack_bytes
    seen = [0]

    def pack_bytes(*args):
        seen[0] += 1
        if seen[0] == n:
            if check is not None:
                check()
            raise OSError("injected write failure")
        return real(*args)

    monkeypatch.setattr(_backend.kernels, "pack_bytes", pack_bytes)


def test_a_failed_s3_write_aborts_its_multipart_upload(s3_bucket, monkeypatch):  # noqa: F811
    server, bucket = s3_bucket
    options = dict(server.storage_options, default_block_size=5 << 20)  # s3fs's smallest part
    url = f"s3://{bucket}/big.bin"
    fs = server.filesystem()
    fs.pipe_file(f"{bucket}/big.bin", b"the old object")
    big = np.zeros(400_000, dtype=binrec.Struct("<qqqq").dtype)  # 12.8 MB
    monkeypatch.setattr(files, "_WRITE_CHUNK_RECORDS", 50_000)  # 1.6 MB per encoded chunk
    uploads_at_failure = []

    def check():
        uploads_at_failure.extend(fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []))

    _fail_on_chunk(monkeypatch, 6, check)  # after 8 MB: one 5 MB part is uploaded
    with pytest.raises(OSError, match="injected write failure") as info:
        binrec.Struct("<qqqq").write_file(url, big, storage_options=options)
    assert url in str(info.value)
    assert len(uploads_at_failure) == 1  # the failure came mid-upload...
    assert fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []) == []  # ...which was aborted
    fs.invalidate_cache()
    assert fs.cat_file(f"{bucket}/big.bin") == b"the old object"


def test_a_failed_write_leaves_no_new_object(remote, monkeypatch):
    monkeypatch.setattr(files, "_WRITE_CHUNK_RECORDS", 1000)
    _fail_on_chunk(monkeypatch, 3)
    with pytest.raises(OSError, match="injected write failure"):
        S.write_file(remote.url("new.bin"), ROWS, storage_options=remote.options)
    assert remote.get("new.bin") is None


def test_a_failed_write_keeps_the_old_object(remote, monkeypatch):
    remote.put("out.bin", b"the old object")
    monkeypatch.setattr(files, "_WRITE_CHUNK_RECORDS", 1000)
    _fail_on_chunk(monkeypatch, 3)
    with pytest.raises(OSError, match="injected write failure"):
        S.write_file(remote.url("out.bin"), ROWS, storage_options=remote.options)
    assert remote.get("out.bin") == b"the old object"


def test_append_to_a_remote_url_is_refused(remote):
    url = remote.put("out.bin", RAW[: S.size])
    with pytest.raises(ValueError, match="append=True is not supported") as info:
        S.write_file(url, ROWS[:1], append=True, storage_options=remote.options)
    assert url in str(info.value)
    assert remote.get("out.bin") == RAW[: S.size]


# -- without fsspec ---------------------------------------------------------------


def test_without_fsspec_local_paths_work_and_urls_name_the_extra(tmp_path):
    # oracle: a fresh interpreter in which `import fsspec` fails
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["fsspec"] = None
        import binrec
        s = binrec.Struct({FORMAT!r})
        path = {str(tmp_path / "a.bin")!r}
        s.write_file(path, [(1, 2, b"x", 0.5)])
        assert s.read_file(path).tolist() == [(1, 2, b"x", 0.5)]
        assert s.read_file("file://" + path, mmap=True).tolist() == [(1, 2, b"x", 0.5)]
        assert "fsspec" not in sys.modules or sys.modules["fsspec"] is None
        try:
            s.read_file("s3://bucket/key.bin")
        except ImportError as exc:
            print(exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "binrec[cloud]"' in proc.stdout and "s3://bucket/key.bin" in proc.stdout


def test_import_binrec_does_not_import_fsspec():
    code = "import sys, binrec, binrec.files, binrec.cli; print('fsspec' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


# -- the CLI ------------------------------------------------------------------------


def _cli(*args, options=None, check=True):
    argv = [sys.executable, "-m", "binrec", *args]
    for key, value in (options or {}).items():
        argv += ["--storage-option", f"{key}={json.dumps(value)}"]
    proc = subprocess.run(argv, capture_output=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def test_cli_decode_from_a_url_equals_decoding_the_local_file(shared, tmp_path):
    # oracle: the same command on a local copy of the bytes
    local = tmp_path / "local.bin"
    local.write_bytes(HEADER + RAW[: 500 * S.size])
    url = shared.put("in.bin", HEADER + RAW[: 500 * S.size])
    ours = _cli("decode", FORMAT, url, "--names", NAMES, "--offset", "4", "--text", "tag", options=shared.options)
    theirs = _cli("decode", FORMAT, str(local), "--names", NAMES, "--offset", "4", "--text", "tag")
    assert ours.stdout == theirs.stdout and ours.stdout.count(b"\n") == 501


def test_cli_decode_to_parquet_at_a_url(shared, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    url = shared.put("in.bin", RAW[: 500 * S.size])
    out = shared.url("out.parquet")
    _cli("decode", FORMAT, url, "--names", NAMES, "-o", out, "-q", options=shared.options)
    local = tmp_path / "local.bin"
    local.write_bytes(RAW[: 500 * S.size])
    _cli("decode", FORMAT, str(local), "--names", NAMES, "-o", str(tmp_path / "local.parquet"), "-q")
    remote_table = pq.read_table(fsspec.core.url_to_fs(out, **(shared.options or {}))[0].open(out.split("://")[1]))
    assert remote_table.equals(pq.read_table(tmp_path / "local.parquet"))
    assert remote_table.column("a").to_pylist() == [row[0] for row in _values(RAW[: 500 * S.size])]


def test_cli_encode_to_a_url_writes_structs_bytes(shared, tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text("a,b,tag,x\n" + "".join(f"{a},{b},{t.decode()},{x}\n" for a, b, t, x in ROWS[:50]))
    _cli("encode", FORMAT, str(csv), "-o", shared.url("out.bin"), "-q", options=shared.options)
    assert shared.get("out.bin") == RAW[: 50 * S.size]


def test_cli_missing_object_is_one_line_naming_the_url(shared):
    url = shared.url("missing.bin")
    proc = _cli("decode", FORMAT, url, options=shared.options, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and url in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_failed_decode_leaves_no_output_object(shared):
    url = shared.put("bad.bin", RAW[: 10 * S.size] + b"xyz")
    proc = _cli("decode", FORMAT, url, "-o", shared.url("out.csv"), options=shared.options, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and url in err and "not a whole number" in err and "Traceback" not in err
    assert shared.get("out.csv") is None


def test_cli_storage_option_must_be_key_value():
    proc = _cli("decode", FORMAT, "s3://b/k.bin", "--storage-option", "novalue", check=False)
    assert proc.returncode == 2 and b"KEY=VALUE" in proc.stderr


def test_cli_without_fsspec_names_the_extra(tmp_path):
    code = "import sys; sys.modules['fsspec'] = None; from binrec.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "decode", FORMAT, "s3://bucket/key.bin"], capture_output=True, text=True
    )
    assert proc.returncode == 1 and 'pip install "binrec[cloud]"' in proc.stderr and "Traceback" not in proc.stderr
    assert os.path.exists(tmp_path)
