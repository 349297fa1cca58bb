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


def test_a_string_longer_than_its_field_is_refused_not_truncated(tmp_path):
    # struct.pack(">I10s", 1, b"northnorthnorth") truncates; text from a file is never cut short
    (tmp_path / "long.csv").write_text("id,name\n1,north\n2,northnorthnorth\n")
    res = binrec("encode", ">I10s", "long.csv", "-o", "out.bin", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr == (
        "binrec: error: long.csv: line 3: field 'name' (format '10s'): "
        "15 bytes do not fit the field's 10 (encode never truncates a value)\n"
    )
    assert sorted(os.listdir(tmp_path)) == ["long.csv"]


def test_a_string_longer_than_its_field_is_refused_in_jsonl_too(tmp_path):
    (tmp_path / "long.jsonl").write_text('{"id": 1, "name": "northnorthnorth"}\n')
    res = binrec("encode", ">I10s", "long.jsonl", "-o", "out.bin", cwd=tmp_path)
    assert res.returncode == 1
    assert "line 1: field 'name' (format '10s'): 15 bytes do not fit the field's 10" in res.stderr
    assert sorted(os.listdir(tmp_path)) == ["long.jsonl"]


def test_a_string_that_fits_exactly_is_kept_whole(tmp_path):
    (tmp_path / "fit.csv").write_text("id,name\n1,northnorth\n2,é\n")
    res = binrec("encode", ">I10s", "fit.csv", "-o", "out.bin", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    expected = struct.pack(">I10s", 1, b"northnorth") + struct.pack(">I10s", 2, "é".encode("latin-1"))
    assert (tmp_path / "out.bin").read_bytes() == expected


def test_a_file_that_is_not_npy_gets_no_advice_to_unpickle(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    res = binrec("encode", ">i", "bad.npy", "-o", "out.bin", cwd=tmp_path)
    assert res.returncode == 1
    assert (
        res.stderr
        == "binrec: error: bad.npy: not a .npy file (it does not start with numpy's magic bytes \\x93NUMPY)\n"
    )
    assert "allow_pickle" not in res.stderr


def test_an_npy_of_python_objects_is_refused_without_unpickling(tmp_path):
    import numpy as np

    np.save(tmp_path / "obj.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    res = binrec("encode", ">i", "obj.npy", "-o", "out.bin", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr == "binrec: error: obj.npy: the .npy file holds Python objects, which binrec never unpickles\n"
    assert sorted(os.listdir(tmp_path)) == ["obj.npy"]


def test_info_usage_error_prints_no_table_first(tmp_path):
    res = binrec("info", ">I10sf", "--offset", "4", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.endswith("binrec: error: --offset applies to a FILE: binrec info FORMAT FILE --offset N\n")
