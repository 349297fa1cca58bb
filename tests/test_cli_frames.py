"""``binrec frames SPEC INPUT -o OUTDIR``, run for real in subprocesses.

The oracle is a plain :mod:`struct` loop over the same bytes (the ITCH
stream and its expected rows come from ``test_framing.itch_stream``); the
outputs are read back with numpy, the csv/json modules and pyarrow.
"""

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

from binrec import Framing

sys.path.insert(0, os.path.dirname(__file__))
from test_framing import ITCH_FRAMING, itch_stream  # noqa: E402


def run(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("binrec", path=os.path.dirname(sys.executable)) or shutil.which("binrec")
    assert exe, "the binrec console script is not installed"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::RuntimeWarning"}
    return subprocess.run([exe, *map(str, args)], input=stdin, capture_output=True, timeout=300, env=env)


@pytest.fixture
def itch(tmp_path):
    raw, expected = itch_stream(2000, 11)
    (tmp_path / "itch.bin").write_bytes(raw)
    (tmp_path / "itch.json").write_text(ITCH_FRAMING.to_json())
    return tmp_path, raw, expected


def stem(tag: bytes) -> str:
    return f"{tag[0]:02x}_{tag.decode()}"


def test_npy_outputs_match_a_struct_loop(itch):
    tmp, _, expected = itch
    res = run("frames", tmp / "itch.json", tmp / "itch.bin", "-o", tmp / "out", "--to", "npy")
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(tmp / "out")) == sorted(stem(t) + ".npy" for t in expected)
    for tag, rows in expected.items():
        got = np.load(tmp / "out" / (stem(tag) + ".npy"))
        assert got.dtype.names[-1] == "_frame"
        # numpy's S drops trailing NULs (the stream has none in its strings)
        assert got.tolist() == rows, tag


def test_csv_outputs_match_a_struct_loop(itch):
    tmp, _, expected = itch
    res = run("frames", tmp / "itch.json", tmp / "itch.bin", "-o", tmp / "out", "--to", "csv")
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader((tmp / "out" / (stem(b"D") + ".csv")).open()))
    assert rows[0] == ["f0", "f1", "f2", "f3", "_frame"]
    # D is >HH6sQ: the integers and the frame number, as the struct loop reads them
    assert [(int(r[0]), int(r[1]), int(r[3]), int(r[4])) for r in rows[1:]] == [
        (r[0], r[1], r[3], r[4]) for r in expected[b"D"]
    ]


def test_jsonl_outputs_match_a_struct_loop(itch):
    tmp, _, expected = itch
    res = run("frames", tmp / "itch.json", tmp / "itch.bin", "-o", tmp / "out", "--to", "jsonl")
    assert res.returncode == 0, res.stderr
    # split on "\n" only: a Latin-1 string value may hold U+0085, which splitlines() also splits on
    lines = (tmp / "out" / (stem(b"X") + ".jsonl")).read_text(encoding="utf-8").split("\n")[:-1]
    got = [json.loads(line) for line in lines]
    assert [(d["f0"], d["f1"], d["f3"], d["f4"], d["_frame"]) for d in got] == [
        (r[0], r[1], r[3], r[4], r[5]) for r in expected[b"X"]
    ]


def test_parquet_outputs_match_a_struct_loop(itch):
    pq = pytest.importorskip("pyarrow.parquet")
    tmp, _, expected = itch
    res = run("frames", tmp / "itch.json", tmp / "itch.bin", "-o", tmp / "out", "--to", "parquet")
    assert res.returncode == 0, res.stderr
    table = pq.read_table(tmp / "out" / (stem(b"E") + ".parquet")).to_pydict()
    assert table["_frame"] == [r[-1] for r in expected[b"E"]]
    assert table["f3"] == [r[3] for r in expected[b"E"]] and table["f5"] == [r[5] for r in expected[b"E"]]


def test_standard_input_and_an_untagged_framing_with_a_header(tmp_path):
    # a pcap-like file: a 24-byte header, then <I length + body; one type, "frames.npy"
    bodies = [struct.pack("<hh", i, -i) for i in range(50)]
    raw = bytes(range(24)) + b"".join(struct.pack("<I", 4) + b for b in bodies)
    (tmp_path / "spec.json").write_text(Framing("<I", length=0, formats="<hh").to_json())
    res = run("frames", tmp_path / "spec.json", "-", "-o", tmp_path / "out", "--to", "npy", "--offset", 24, stdin=raw)
    assert res.returncode == 0, res.stderr
    got = np.load(tmp_path / "out" / "frames.npy")
    assert got.tolist() == [(*struct.unpack("<hh", b), i) for i, b in enumerate(bodies)]


def test_a_bad_frame_is_a_data_error_and_writes_nothing(itch):
    tmp, raw, _ = itch
    (tmp / "cut.bin").write_bytes(raw[:-3])
    res = run("frames", tmp / "itch.json", tmp / "cut.bin", "-o", tmp / "out", "--to", "npy")
    assert res.returncode == 1
    assert res.stderr.decode().startswith("binrec: error: frame 1999 at byte offset ")
    assert os.listdir(tmp / "out") == []


def test_an_unknown_tag_is_an_error_unless_skipped(itch):
    tmp, raw, expected = itch
    raw += struct.pack(">Hc", 2, b"Z") + b"!"
    (tmp / "z.bin").write_bytes(raw)
    res = run("frames", tmp / "itch.json", tmp / "z.bin", "-o", tmp / "out", "--to", "npy")
    assert res.returncode == 1 and b"unknown tag b'Z'" in res.stderr
    res = run("frames", tmp / "itch.json", tmp / "z.bin", "-o", tmp / "out", "--to", "npy", "--unknown", "skip")
    assert res.returncode == 0, res.stderr
    assert sum(len(np.load(tmp / "out" / f)) for f in os.listdir(tmp / "out")) == sum(map(len, expected.values()))


@pytest.mark.parametrize(
    "spec, message",
    [
        (None, b"cannot read the framing spec"),
        ("{not json", b"not a framing spec"),
        ('{"prefix": "<I", "length": 0}', b"has no formats"),
    ],
)
def test_a_bad_spec_is_a_usage_error(tmp_path, spec, message):
    if spec is not None:
        (tmp_path / "spec.json").write_text(spec)
    (tmp_path / "in.bin").write_bytes(b"")
    res = run("frames", tmp_path / "spec.json", tmp_path / "in.bin", "-o", tmp_path / "out")
    assert res.returncode == 2 and message in res.stderr
