"""What a new user ran into, following the README at the shell (issue 12's
trial): each test runs the real `binrec` command in a subprocess."""

from __future__ import annotations

import os
import struct
import subprocess
import sys


def binrec(*args, cwd):
    return subprocess.run([sys.executable, "-m", "binrec", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_csv_without_header_is_refused_not_short_by_one_record(tmp_path):
    (tmp_path / "nohdr.csv").write_text("1,2\n3,4\n")
    res = binrec("encode", ">ii", "nohdr.csv", "-o", "out.bin", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.startswith("binrec: error: nohdr.csv: line 1: the first line 1,2 looks like a record")
    assert "Traceback" not in res.stderr
    assert sorted(os.listdir(tmp_path)) == ["nohdr.csv"]  # nothing written, not even a temporary file


def test_a_header_is_still_read_as_names(tmp_path):
    (tmp_path / "hdr.csv").write_text("a,b\n1,2\n3,4\n")
    res = binrec("encode", ">ii", "hdr.csv", "-o", "out.bin", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out.bin").read_bytes() == struct.pack(">ii", 1, 2) + struct.pack(">ii", 3, 4)
    assert res.stderr == "binrec: wrote 2 records (16 bytes) to out.bin\n"


def test_one_record_is_singular(tmp_path):
    (tmp_path / "one.csv").write_text("a\n7\n")
    res = binrec("encode", ">i", "one.csv", "-o", "out.bin", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "binrec: wrote 1 record (4 bytes) to out.bin\n"
    assert (tmp_path / "out.bin").read_bytes() == struct.pack(">i", 7)
