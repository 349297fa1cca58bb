"""The ``binrec`` console script, run for real in subprocesses."""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import subprocess
import sys

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
    assert "size:   9 bytes" in out and "little-endian" in out
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
