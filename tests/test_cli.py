"""The ``binrec`` console script, run for real in subprocesses."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

FMT = ">I10sf"
NAMES = "id name temp"


def binrec_exe() -> list[str]:
    exe = shutil.which("binrec", path=os.path.dirname(sys.executable)) or shutil.which("binrec")
    assert exe, "the binrec console script is not installed"
    return [exe]


def run(*args, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    # a pure-Python install warns at import (by design); these tests read
    # the command's own one-line messages
    env = {**os.environ, "PYTHONWARNINGS": "ignore::RuntimeWarning"}
    return subprocess.run(
        binrec_exe() + [str(a) for a in args], input=stdin, capture_output=True, timeout=300, cwd=cwd, env=env
    )


@pytest.fixture
def sensor_file(tmp_path):
    raw = b"".join(struct.pack(FMT, i, b"st%d" % i, i / 4) for i in range(25))
    path = tmp_path / "s.bin"
    path.write_bytes(raw)
    return path, raw


def test_info():
    res = run("info", "@ci?", "--names", "a b c")
    assert res.returncode == 0
    out = res.stdout.decode()
    # oracle: struct's native size, and the host's byte order
    assert f"size:   {struct.calcsize('@ci?')} bytes" in out and f"{sys.byteorder}-endian" in out
    assert [line.split()[:3] for line in out.splitlines()[-3:]] == [["a", "c", "0"], ["b", "i", "4"], ["c", "?", "8"]]


def test_python_dash_m_works_too():
    res = subprocess.run([sys.executable, "-m", "binrec", "info", ">h"], capture_output=True, timeout=120)
    assert res.returncode == 0 and b"big-endian" in res.stdout


def test_decode_to_stdout_csv(sensor_file):
    path, raw = sensor_file
    res = run("decode", FMT, path, "--names", NAMES, "--text", "name", "--head", "3")
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(res.stdout.decode().splitlines()))
    assert rows[0] == ["id", "name", "temp"]
    assert rows[1:] == [[str(i), f"st{i}", str(i / 4)] for i in range(3)]


def test_decode_from_stdin(sensor_file):
    path, raw = sensor_file
    res = run("decode", FMT, "-", "--offset", "18", "--count", "2", stdin=raw)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().splitlines()[1:] == ["1,st1,0.25", "2,st2,0.5"]


@pytest.mark.parametrize("ext", [".csv", ".jsonl", ".npy", ".parquet"])
def test_decode_encode_round_trip(tmp_path, sensor_file, ext):
    if ext == ".parquet":
        pytest.importorskip("pyarrow")
    path, raw = sensor_file
    out = tmp_path / f"out{ext}"
    res = run("decode", FMT, path, "--names", NAMES, "-o", out)
    assert res.returncode == 0, res.stderr
    if ext == ".npy":
        arr = np.load(out)
        assert arr.tolist() == [(i, n.rstrip(b"\x00"), t) for i, n, t in struct.iter_unpack(FMT, raw)]
    if ext == ".jsonl":
        first = json.loads(out.read_text().splitlines()[0])
        assert first == {"id": 0, "name": "st0", "temp": 0.0}
    if ext == ".parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out).column("id").to_pylist() == list(range(25))
        return
    back = tmp_path / "back.bin"
    res = run("encode", FMT, out, "--names", NAMES, "-o", back)
    assert res.returncode == 0, res.stderr
    assert back.read_bytes() == raw


def test_decode_npy_from_pipe_patches_the_count(tmp_path, sensor_file):
    path, raw = sensor_file
    out = tmp_path / "p.npy"
    res = run("decode", FMT, "-", "-o", out, stdin=raw)
    assert res.returncode == 0, res.stderr
    assert len(np.load(out)) == 25


def test_encode_reports_the_bad_line_and_leaves_no_file(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,name,temp\n1,a,0.5\n2,b,0.5\n99999999999,c,0.5\n")
    out = tmp_path / "out.bin"
    out.write_bytes(b"previous")
    res = run("encode", FMT, src, "--names", NAMES, "-o", out)
    assert res.returncode == 1
    err = res.stderr.decode().strip()
    assert "line 4" in err and "'I' format requires 0 <= number <= 4294967295" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.bin"]


def test_usage_and_data_errors_exit_codes(tmp_path, sensor_file):
    path, raw = sensor_file
    assert run("decode", ">Iz", path).returncode == 2
    assert run("decode", FMT, path, "-o", tmp_path / "x.txt").returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("decode", FMT, path, "--count", "-1").returncode == 2
    part = tmp_path / "part.bin"
    part.write_bytes(raw[:37])
    res = run("decode", FMT, part, "-o", tmp_path / "o.csv")
    assert res.returncode == 1
    assert b"byte offset 36" in res.stderr and b"Traceback" not in res.stderr
    assert not (tmp_path / "o.csv").exists()
    assert run("decode", FMT, tmp_path / "missing.bin").returncode == 1
    assert run("decode", FMT, path, "--count", "999").returncode == 1


def test_empty_input(tmp_path):
    empty = tmp_path / "e.bin"
    empty.write_bytes(b"")
    res = run("decode", FMT, empty, "--names", NAMES)
    assert res.returncode == 0 and res.stdout.decode().strip() == "id,name,temp"


def test_demo_runs():
    res = run("demo", "--records", "20000")
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert "struct.iter_unpack" in out and "speed-up" in out


def test_encode_names_the_right_line_past_blank_lines_and_npy_records(tmp_path):
    src = tmp_path / "in.jsonl"
    good = '{"id": 1, "name": "a", "temp": 0.5}\n'
    src.write_text(good + "\n\n" + good + '{"id": -1, "name": "b", "temp": 0.5}\n')
    res = run("encode", FMT, src, "--names", NAMES, "-o", tmp_path / "o.bin")
    assert res.returncode == 1 and "in.jsonl: line 5:" in res.stderr.decode()
    arr = np.zeros(3, dtype=[("id", "<i8"), ("name", "S10"), ("temp", "<f8")])
    arr["id"] = [1, 2, -7]
    np.save(tmp_path / "in.npy", arr)
    res = run("encode", FMT, tmp_path / "in.npy", "--names", NAMES, "-o", tmp_path / "o.bin")
    assert res.returncode == 1 and "in.npy: record 2:" in res.stderr.decode()


def test_decode_into_a_closed_pipe_exits_quietly(sensor_file):
    path, raw = sensor_file
    big = path.parent / "big.bin"
    big.write_bytes(raw * 4000)
    proc = subprocess.Popen(binrec_exe() + ["decode", FMT, str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(100)
    proc.stdout.close()  # like `| head -c 100`
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err


# -- issue 10: no silent wrong answers (run as `python -m binrec`) -----------------


def binrec_m(*args, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore::RuntimeWarning"}
    return subprocess.run(
        [sys.executable, "-m", "binrec", *[str(a) for a in args]],
        input=stdin,
        capture_output=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def records(n: int) -> bytes:
    return b"".join(struct.pack(FMT, i, b"st%d" % i, i / 4) for i in range(n))


def one_line_error(res: subprocess.CompletedProcess) -> str:
    err = res.stderr.decode()
    assert err.startswith("binrec: error: ") and err.count("\n") == 1, err
    return err.strip()


def csv_ids(res: subprocess.CompletedProcess) -> list[int]:
    return [int(row[0]) for row in list(csv.reader(res.stdout.decode().splitlines()))[1:]]


def test_count_on_a_pipe_with_fewer_records_is_an_error():
    res = binrec_m("decode", FMT, "-", "--count", "5000", stdin=records(1000))
    assert res.returncode == 1
    assert one_line_error(res) == (
        "binrec: error: <stdin>: --count 5000 but the input holds only 1000 whole records after offset 0"
    )


def test_count_on_a_file_with_fewer_records_is_an_error_before_any_output(tmp_path):
    path = tmp_path / "r.bin"
    path.write_bytes(records(1000))
    res = binrec_m("decode", FMT, path, "--count", "5000")
    assert res.returncode == 1 and res.stdout == b""
    assert "--count 5000 but the file holds only 1000 whole records after offset 0" in one_line_error(res)


def test_head_with_fewer_records_is_fine_on_pipes_and_files(tmp_path):
    raw = records(300)
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    for res in (
        binrec_m("decode", FMT, "-", "--head", "5000", stdin=raw),
        binrec_m("decode", FMT, path, "--head", "5000"),
    ):
        assert res.returncode == 0, res.stderr
        assert csv_ids(res) == list(range(300))


@pytest.mark.parametrize("source", ["file", "pipe"])
@pytest.mark.parametrize(
    "extra,reached",
    [
        ([], True),
        (["--head", "1000"], True),
        (["--head", "10"], False),
        (["--head", "500"], False),
        (["--count", "500"], False),
    ],
)
def test_a_partial_record_that_is_reached_is_an_error(tmp_path, source, extra, reached):
    """500 whole records and 7 more bytes: reading up to the partial record
    is an error in every mode; stopping before it is not."""
    raw = records(500) + b"partial"
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    args = ("decode", FMT, "-" if source == "pipe" else path, *extra)
    res = binrec_m(*args, stdin=raw if source == "pipe" else None)
    if reached:
        assert res.returncode == 1
        assert "partial record" in one_line_error(res) and "9000" in one_line_error(res)
    else:
        assert res.returncode == 0, res.stderr
        assert csv_ids(res) == list(range(int(extra[1])))


@pytest.mark.parametrize("source", ["file", "pipe"])
@pytest.mark.parametrize("extra", [[], ["--head", "1000"]])
def test_trailing_ignore_drops_the_partial_record(tmp_path, source, extra):
    raw = records(500) + b"partial"
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    res = binrec_m("decode", FMT, "-" if source == "pipe" else path, *extra, "--trailing", "ignore", stdin=raw)
    assert res.returncode == 0, res.stderr
    assert csv_ids(res) == list(range(500))
    assert binrec_m("decode", FMT, path, "--trailing", "keep").returncode == 2


@pytest.mark.parametrize("out", [None, "o.csv", "o.jsonl", "o.parquet", "o.npy"])
def test_text_on_a_number_field_is_a_usage_error(tmp_path, sensor_file, out):
    if out == "o.parquet":
        pytest.importorskip("pyarrow")
    path, raw = sensor_file
    res = binrec_m("decode", FMT, path, "--names", NAMES, "--text", "temp", *(["-o", tmp_path / out] if out else []))
    assert res.returncode == 2
    err = res.stderr.decode()
    assert "Traceback" not in err and "field 'temp' has format code 'f', not a string" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.bin"]


def test_parquet_error_after_the_first_chunk_prints_only_the_message(tmp_path):
    pytest.importorskip("pyarrow")
    raw = records(70_000) + b"xyz"  # the error comes after the first 65,536-record chunk was written
    res = binrec_m("decode", FMT, "-", "-o", tmp_path / "o.parquet", stdin=raw)
    assert res.returncode == 1
    assert res.stderr.decode() == (
        "binrec: error: <stdin>: 1260003 bytes after offset 0 are not a whole number of 18-byte records "
        "(70000 whole records and a partial record of 3 bytes at byte offset 1260000)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_a_parquet_output_is_quiet(tmp_path):
    pytest.importorskip("pyarrow")
    import signal
    import time

    env = {**os.environ, "PYTHONWARNINGS": "ignore::RuntimeWarning"}
    proc = subprocess.Popen(
        # row groups of one decoded chunk, so the first one is written before the pipe ends
        [
            sys.executable,
            "-m",
            "binrec",
            "decode",
            FMT,
            "-",
            "-o",
            str(tmp_path / "o.parquet"),
            "--row-group-size",
            "65536",
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdin.write(records(70_000))  # a first chunk, written; then the pipe stays open
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for the first row group in the temporary file
        temps = list(tmp_path.iterdir())
        if temps and temps[0].stat().st_size > 100_000:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the first chunk never reached the output")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    proc.stdin.close()
    assert proc.returncode == 130
    assert b"Exception ignored" not in err and b"Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_names_the_users_path(tmp_path, sensor_file):
    path, raw = sensor_file
    res = binrec_m("decode", FMT, path, "-o", "nosuchdir/x.csv", cwd=tmp_path)
    assert res.returncode == 1
    assert one_line_error(res) == "binrec: error: cannot write nosuchdir/x.csv: No such file or directory"
    src = tmp_path / "in.csv"
    src.write_text("id,name,temp\n1,a,0.5\n")
    res = binrec_m("encode", FMT, src, "--names", NAMES, "-o", "nosuchdir/y.bin", cwd=tmp_path)
    assert res.returncode == 1 and ".binrec-tmp" not in res.stderr.decode()
    assert one_line_error(res) == "binrec: error: cannot write nosuchdir/y.bin: No such file or directory"


def test_offset_past_the_end_says_so(sensor_file):
    path, raw = sensor_file
    res = binrec_m("decode", FMT, path, "--offset", "100000", "--count", "1")
    assert res.returncode == 1
    assert one_line_error(res) == f"binrec: error: {path}: offset 100000 is past the end of the file ({len(raw)} bytes)"
    res = binrec_m("decode", FMT, "-", "--offset", "100000", "--count", "1", stdin=raw)
    assert res.returncode == 1 and "before the offset 100000" in one_line_error(res)


def test_negative_offset_is_a_usage_error(sensor_file):
    path, raw = sensor_file
    res = binrec_m("decode", FMT, path, "--offset", "-5")
    assert res.returncode == 2 and "--offset must be >= 0" in res.stderr.decode()


def test_missing_input_is_the_same_data_error_in_decode_and_encode(tmp_path):
    for command in (
        ["decode", FMT, tmp_path / "missing.bin"],
        ["encode", FMT, tmp_path / "missing.csv", "-o", tmp_path / "o.bin"],
    ):
        res = binrec_m(*command)
        assert res.returncode == 1
        assert one_line_error(res) == f"binrec: error: cannot open {command[2]}: No such file or directory"
    res = binrec_m("decode", FMT, tmp_path)
    assert res.returncode == 1 and one_line_error(res).endswith("Is a directory")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "npy"])
def test_encode_reads_standard_input(tmp_path, sensor_file, fmt):
    path, raw = sensor_file
    decoded = tmp_path / f"d.{fmt}"
    assert binrec_m("decode", FMT, path, "--names", NAMES, "-o", decoded).returncode == 0
    out = tmp_path / "back.bin"
    extra = [] if fmt == "csv" else ["--input-format", fmt]  # CSV is the default for -
    res = binrec_m("encode", FMT, "-", "--names", NAMES, *extra, "-o", out, stdin=decoded.read_bytes())
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == raw


def test_encode_from_standard_input_names_stdin_in_errors(tmp_path):
    res = binrec_m(
        "encode", FMT, "-", "--names", NAMES, "-o", tmp_path / "o.bin", stdin=b"id,name,temp\n1,a,0.5\n-1,b,0\n"
    )
    assert res.returncode == 1
    assert one_line_error(res).startswith("binrec: error: <stdin>: line 3: ")
    assert list(tmp_path.iterdir()) == []


def test_help_documents_exit_statuses():
    for command in ("decode", "encode"):
        out = binrec_m(command, "--help").stdout.decode()
        assert "exit status:" in out and "1  data error" in out and "2  usage error" in out
    assert "--trailing {error,ignore}" in binrec_m("decode", "--help").stdout.decode()


# -- outputs that are symlinks, FIFOs or directories ------------------------------


def _fifo_reader(fifo, *, read=True):
    """Open ``fifo`` for reading in a thread; read it all (or close at once)."""
    import threading

    got = {}

    def reader():
        with open(fifo, "rb") as fh:
            got["data"] = fh.read() if read else b""

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    return t, got


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_encode_into_a_fifo_writes_through_it_and_keeps_the_fifo(tmp_path):
    import stat

    src = tmp_path / "in.csv"
    src.write_text("id,name,temp\n1,a,0.5\n2,b,1.5\n")
    fifo = tmp_path / "fifo.bin"
    os.mkfifo(fifo)
    t, got = _fifo_reader(fifo)
    res = binrec_m("encode", FMT, src, "--names", NAMES, "-o", fifo)
    t.join(60)
    assert res.returncode == 0, res.stderr
    assert got["data"] == struct.pack(FMT, 1, b"a", 0.5) + struct.pack(FMT, 2, b"b", 1.5)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.bin", "in.csv"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_write_error_on_a_special_file_output_is_a_clean_data_error(tmp_path):
    """The reader of a FIFO goes away: EPIPE (like ENOSPC on a full device)
    is exit 1 with the user's path, not success."""
    import stat

    n = 20_000  # 360 KB: more than a pipe buffer, so the writer must hit the closed end
    src = tmp_path / "in.csv"
    src.write_text("id,name,temp\n" + "".join(f"{i},x,0.5\n" for i in range(n)))
    fifo = tmp_path / "fifo.bin"
    os.mkfifo(fifo)
    t, _ = _fifo_reader(fifo, read=False)
    res = binrec_m("encode", FMT, src, "--names", NAMES, "-o", fifo)
    t.join(60)
    assert res.returncode == 1
    assert one_line_error(res) == f"binrec: error: cannot write {fifo}: Broken pipe"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_decode_into_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path, sensor_file):
    path, raw = sensor_file
    real = tmp_path / "real"
    real.mkdir()
    target = real / "target.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(os.path.relpath(target, tmp_path))
    res = binrec_m("decode", FMT, path, "--names", NAMES, "-o", link)
    assert res.returncode == 0, res.stderr
    assert link.is_symlink() and os.path.realpath(link) == str(target)
    rows = list(csv.reader(target.read_text().splitlines()))
    assert rows[0] == ["id", "name", "temp"] and len(rows) == 26
    assert [int(r[0]) for r in rows[1:]] == [r[0] for r in struct.iter_unpack(FMT, raw)]
    assert sorted(p.name for p in real.iterdir()) == ["target.csv"]  # no temp left beside the target


def test_a_directory_output_is_a_clean_error(tmp_path, sensor_file):
    path, _ = sensor_file
    out = tmp_path / "d.csv"
    out.mkdir()
    res = binrec_m("decode", FMT, path, "-o", out)
    assert res.returncode == 1
    assert one_line_error(res) == f"binrec: error: cannot write {out}: Is a directory"
    assert out.is_dir() and list(out.iterdir()) == []


def test_encode_dash_output_writes_records_to_stdout(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,name,temp\n1,a,0.5\n2,b,1.5\n")
    res = binrec_m("encode", FMT, src, "--names", NAMES, "-o", "-", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == struct.pack(FMT, 1, b"a", 0.5) + struct.pack(FMT, 2, b"b", 1.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no file named -


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("command", ["decode", "encode"])
def test_sigterm_exits_143_and_leaves_no_temp_file(tmp_path, command):
    """Input trickles through a pipe; SIGTERM arrives while the temp output
    is open: exit 128+15, no .binrec-tmp-* left, no output file."""
    out = tmp_path / ("o.csv" if command == "decode" else "o.bin")
    args = [FMT, "-", "--names", NAMES, "-o", out]
    first = struct.pack(FMT, 1, b"a", 0.5) if command == "decode" else b"id,name,temp\n1,a,0.5\n"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::RuntimeWarning"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "binrec", command, *map(str, args)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdin.write(first)
    proc.stdin.flush()
    # wait (no time limit asserted) until the temporary output exists: the command is mid-write
    while not any(p.name.startswith(".binrec-tmp-") for p in tmp_path.iterdir()):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err
    assert err == b"binrec: terminated\n"
    assert list(tmp_path.iterdir()) == []


def test_pickle_inspect_dash_reads_stdin(tmp_path):
    import pickle

    data = pickle.dumps({"a": [1, 2]})
    res = binrec_m("pickle", "inspect", "-", "--json", stdin=data, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["size"] == len(data) and report["verdict"] == "safe"


def test_encode_help_has_its_own_epilog():
    out = binrec_m("encode", "--help").stdout.decode()
    assert "exit status:" in out and "143" in out
    assert "--count" not in out and "too few records for --count" not in out  # decode's epilog is not reused


CFMT = "<FeD?"
CROWS = [(1 + 2j, 0.5, 3 - 4j, True), (-1.5j, 1.0, 2.0, False)]


@pytest.fixture
def complex_file(tmp_path):
    from binrec import Struct

    path = tmp_path / "c.bin"
    Struct(CFMT).write_file(path, CROWS)
    return path


def test_complex_fields_to_parquet_are_a_clean_error_whatever_the_count(tmp_path, complex_file):
    pytest.importorskip("pyarrow")
    for extra in ([], ["--head", "0"], ["--head", "1"]):
        out = tmp_path / "c.parquet"
        res = binrec_m("decode", CFMT, complex_file, "-o", out, *extra)
        assert res.returncode == 1
        assert one_line_error(res) == "binrec: error: field 'f0': Arrow has no complex type"
        assert not out.exists()


def test_complex_fields_round_trip_through_jsonl(tmp_path, complex_file):
    out = tmp_path / "c.jsonl"
    res = binrec_m("decode", CFMT, complex_file, "-o", out)
    assert res.returncode == 0, res.stderr
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {"f0": [1.0, 2.0], "f1": 0.5, "f2": [3.0, -4.0], "f3": True}
    back = tmp_path / "back.bin"
    res = binrec_m("encode", CFMT, out, "-o", back)
    assert res.returncode == 0, res.stderr
    assert back.read_bytes() == complex_file.read_bytes()


def test_jsonl_complex_accepts_the_csv_string_form(tmp_path, complex_file):
    src = tmp_path / "in.jsonl"
    src.write_text('{"f0": "(1+2j)", "f1": 0.5, "f2": "(3-4j)", "f3": true}\n')
    back = tmp_path / "back.bin"
    res = binrec_m("encode", CFMT, src, "-o", back)
    assert res.returncode == 0, res.stderr
    whole = complex_file.read_bytes()
    assert back.read_bytes() == whole[: len(whole) // 2]  # the first of the two records


# -- per-cell errors, subcommand usage, inspect --json on an unreadable file ------


def _struct_message(fmt: str, value) -> str:
    """struct's own words for a value of the wrong type (the oracle)."""
    with pytest.raises(struct.error) as exc:
        struct.pack(fmt, value)
    return str(exc.value)


@pytest.mark.parametrize(
    ("row", "field", "code", "bad", "value"),
    [("1.5,a,0.5", "f0", "I", "1.5", 1.5), ("1,a,abc", "f2", "f", "abc", "abc")],
)
def test_encode_csv_cell_of_the_wrong_type_names_the_file_in_structs_words(tmp_path, row, field, code, bad, value):
    src = tmp_path / "flt.csv"
    src.write_text(f"f0,f1,f2\n{row}\n")
    out = tmp_path / "x.bin"
    res = binrec_m("encode", FMT, src, "-o", out)
    assert res.returncode == 1
    expected = f"{src}: line 2: field {field!r} (format {code!r}): {_struct_message('>' + code, value)} (got {bad!r})"
    assert one_line_error(res) == f"binrec: error: {expected}"
    assert not out.exists()


def test_encode_jsonl_cell_conversion_error_names_the_file(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"f0": [1.0, 2.0]}\n{"f0": "zz"}\n')
    res = binrec_m("encode", "<D", src, "-o", tmp_path / "x.bin")
    assert res.returncode == 1
    # binrec's pack words for a non-complex (struct has no 'D' before 3.14), then the cell
    assert one_line_error(res) == (
        f"binrec: error: {src}: line 2: field 'f0' (format 'D'): required argument is not a complex (got 'zz')"
    )


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["decode", FMT, "IN", "--text", "f0"], "decode"),
        (["decode", FMT, "IN", "-o", "x.txt"], "decode"),
        (["decode", FMT, "IN", "--offset", "-1"], "decode"),
        (["encode", FMT, "x.txt", "-o", "x.bin"], "encode"),
    ],
)
def test_usage_errors_after_parsing_print_the_subcommands_usage(tmp_path, sensor_file, args, command):
    path, raw = sensor_file
    res = binrec_m(*[path if a == "IN" else a for a in args], cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.decode().splitlines()
    assert lines[0].startswith(f"usage: binrec {command} [-h]"), lines
    # the same usage text that argparse prints for the subcommand's own errors
    own = binrec_m(command, "--no-such-option").stderr.decode()
    assert res.stderr.decode().split("binrec: error:")[0] == own.split(f"binrec {command}: error:")[0]
    assert lines[-1].startswith("binrec: error: ")


def test_pickle_inspect_json_on_a_missing_file_prints_the_unreadable_report(tmp_path):
    res = binrec_m("pickle", "inspect", "--json", "missing.pkl", cwd=tmp_path)
    assert res.returncode == 4
    report = json.loads(res.stdout)
    try:
        open(tmp_path / "missing.pkl", "rb")
    except OSError as exc:  # the oracle: the OS's own reason
        reason = exc.strerror
    assert report["status"] == "unreadable" and report["safe"] is False
    assert report["verdict"] == f"unreadable: cannot read missing.pkl: {reason}"
    assert report["size"] == 0 and report["pickles"] == 0 and report["globals"] == []


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_text_that_is_not_ascii_names_the_field_and_row_in_every_output_format(tmp_path, ext):
    # one text decoding (binrec._text) for CSV/JSONL and Parquet alike; the
    # oracle for the bytes that fail is Python's own bytes.decode("ascii")
    if ext == "parquet":
        pytest.importorskip("pyarrow")
    raw = struct.pack(FMT, 1, b"ok", 0.5) + struct.pack(FMT, 2, b"caf\xe9", 1.5)
    with pytest.raises(UnicodeDecodeError):
        b"caf\xe9".decode("ascii")
    res = binrec_m(
        "decode", FMT, "-", "--names", "id,name,temp", "-o", tmp_path / f"o.{ext}", "--text", "name", stdin=raw
    )
    assert res.returncode == 1
    assert one_line_error(res) == (
        "binrec: error: <stdin>: field 'name' (row 1): cannot decode b'caf\\xe9' as ascii: ordinal not in range(128)"
    )
    assert list(tmp_path.iterdir()) == []
