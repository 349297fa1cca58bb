"""Packing from what users hold (issue 13): DataFrames, Arrow tables, str
values for string fields, structured arrays matched by position, file
headers; and the command line's side of the same (``encode --header``,
``decode --save-header``, ``info --offset``, CSV/JSONL input as users write
it, ``--encoding``).

Oracles: ``struct.pack`` for every encoded byte, the input file itself for
round trips through real ``python -m binrec`` subprocesses.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from binrec import Error, Struct

FMT = ">I10sf"
NAMES = "id name temp"
ROWS = [(1, "München".encode(), 21.5), (2, b"north", -3.25), (3, b"", 0.0)]
RAW = b"".join(struct.pack(FMT, *row) for row in ROWS)  # the oracle: struct itself


def sensor() -> Struct:
    return Struct(FMT, NAMES)


# -- str values for c/s/p fields --------------------------------------------------


def test_str_values_are_encoded_ascii_by_default(backend):
    rows = [(1, "north", 1.0), (2, "", 2.0)]
    expected = b"".join(struct.pack(FMT, i, n.encode("ascii"), t) for i, n, t in rows)
    assert sensor().pack(rows) == expected


def test_str_values_use_the_encoding_given(backend):
    rows = [(1, "München", 1.0)]
    assert sensor().pack(rows, encoding="utf-8") == struct.pack(FMT, 1, "München".encode(), 1.0)


def test_str_that_does_not_encode_names_field_and_row(backend):
    with pytest.raises(Error, match=r"field 'name' \(format '10s', row 1\): cannot encode 'München' as ascii"):
        sensor().pack([(1, "north", 1.0), (2, "München", 2.0)])


def test_str_too_long_for_its_field_is_an_error_not_a_truncation(backend):
    # struct truncates bytes; text cut in the middle would lose data silently
    with pytest.raises(Error, match=r"field 'name' \(format '10s', row 0\): 'Ölmühlenweg' takes 13 bytes in utf-8"):
        sensor().pack({"id": [1], "name": np.array(["Ölmühlenweg"]), "temp": [1.0]}, encoding="utf-8")


def test_bytes_values_keep_structs_truncation(backend):
    assert sensor().pack([(1, b"x" * 12, 1.0)]) == struct.pack(FMT, 1, b"x" * 12, 1.0)


def test_str_for_char_and_pascal_fields(backend):
    s = Struct("<c5p")
    expected = struct.pack("<c5p", b"a", b"hi") + struct.pack("<c5p", b"\x00", b"")
    assert s.pack([("a", "hi"), ("", "")]) == expected
    with pytest.raises(Error, match=r"field 'f1' \(format '5p', row 0\): 'hello' takes 5 bytes"):
        s.pack([("a", "hello")])  # a 5p field holds 4 bytes after its length byte
    with pytest.raises(Error, match=r"field 'f0' \(format 'c', row 0\)"):
        s.pack([("ab", "x")])


def test_str_numpy_columns_for_char_and_pascal_fields(backend):
    # numpy U columns take the vectorised path: the same bytes as struct
    s = Struct("<5pc")
    names, chars = ["hi", "", "abcd"], ["a", "", "z"]
    expected = b"".join(struct.pack("<5pc", n.encode(), c.encode() or b"\x00") for n, c in zip(names, chars))
    assert s.pack({"f0": np.array(names), "f1": np.array(chars)}) == expected
    with pytest.raises(
        Error, match=r"field 'f0' \(format '5p', row 1\): 'abcde' takes 5 bytes in ascii, the field holds 4"
    ):
        s.pack({"f0": np.array(["a", "abcde"]), "f1": np.array(["a", "b"])})


def test_pack_into_and_write_file_take_encoding(backend, tmp_path):
    buf = bytearray(len(RAW))
    sensor().pack_into(buf, 0, sensor().unpack(RAW, text="name", encoding="utf-8"), encoding="utf-8")
    assert bytes(buf) == RAW
    path = tmp_path / "s.bin"
    sensor().write_file(path, sensor().unpack(RAW, text="name", encoding="utf-8"), encoding="utf-8")
    assert path.read_bytes() == RAW


# -- round trips through text= ------------------------------------------------------


def test_unpack_text_round_trips(backend):
    s = sensor()
    assert s.pack(s.unpack(RAW, text="name", encoding="utf-8"), encoding="utf-8") == RAW


def test_unpack_frame_text_round_trips(backend):
    pytest.importorskip("pandas")
    s = sensor()
    assert s.pack(s.unpack_frame(RAW, text="name", encoding="utf-8"), encoding="utf-8") == RAW


def test_unpack_table_text_round_trips(backend):
    pytest.importorskip("pyarrow")
    s = sensor()
    assert s.pack(s.unpack_table(RAW, text="name", encoding="utf-8"), encoding="utf-8") == RAW


# -- DataFrames and Arrow tables ----------------------------------------------------


def test_dataframe_columns_match_by_name_in_any_order(backend):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"temp": [r[2] for r in ROWS], "id": [r[0] for r in ROWS], "name": [r[1] for r in ROWS]})
    assert sensor().pack(frame) == RAW


def test_dataframe_with_unknown_column_names_the_columns(backend):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": [1], "nme": [b"x"], "temp": [1.0]})
    with pytest.raises(Error, match=r"missing \['name'\], unknown \['nme'\]"):
        sensor().pack(frame)


def test_dataframe_packs_by_position_for_default_names(backend):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [r[0] for r in ROWS], "b": [r[1] for r in ROWS], "c": [r[2] for r in ROWS]})
    assert Struct(FMT).pack(frame) == RAW


def test_dataframe_with_the_default_names_in_another_order_matches_by_name(backend):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"f2": [r[2] for r in ROWS], "f0": [r[0] for r in ROWS], "f1": [r[1] for r in ROWS]})
    assert Struct(FMT).pack(frame) == RAW


def test_arrow_table_and_record_batch(backend):
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"id": [r[0] for r in ROWS], "temp": [r[2] for r in ROWS], "name": [r[1] for r in ROWS]})
    assert sensor().pack(table) == RAW
    assert sensor().pack(table.to_batches()[0]) == RAW
    by_position = pa.table({"x": [r[0] for r in ROWS], "y": [r[1] for r in ROWS], "z": [r[2] for r in ROWS]})
    assert Struct(FMT).pack(by_position) == RAW


def test_pack_into_and_write_file_take_a_dataframe(backend, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": [r[0] for r in ROWS], "name": [r[1] for r in ROWS], "temp": [r[2] for r in ROWS]})
    buf = bytearray(len(RAW))
    assert sensor().pack_into(buf, 0, frame) == len(RAW)
    assert bytes(buf) == RAW
    sensor().write_file(tmp_path / "s.bin", frame)
    assert (tmp_path / "s.bin").read_bytes() == RAW


def test_structured_array_packs_by_position_for_default_names(backend):
    # numpy assigns one structured array to another by position
    named = sensor().unpack(RAW)
    assert Struct(FMT).pack(named) == RAW
    target = np.zeros(len(named), dtype=Struct(FMT).dtype)
    target[:] = named
    assert Struct(FMT).pack(target) == RAW


def test_structured_array_with_other_names_is_still_refused_for_named_formats(backend):
    with pytest.raises(Error, match="structured array fields do not match"):
        Struct(FMT, "a b c").pack(sensor().unpack(RAW))


def test_binrec_import_does_not_import_pandas_or_pyarrow():
    code = (
        "import sys, binrec; binrec.Struct('<h').pack([(1,)]); print('pandas' in sys.modules, 'pyarrow' in sys.modules)"  # noqa: E501
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- headers ------------------------------------------------------------------------


def test_write_file_header_goes_before_the_records(backend, tmp_path):
    path = tmp_path / "s.bin"
    assert sensor().write_file(path, ROWS, header=b"HDR\x00" * 4) == len(ROWS)
    assert path.read_bytes() == b"HDR\x00" * 4 + RAW


def test_write_file_refuses_header_with_append(tmp_path):
    path = tmp_path / "s.bin"
    path.write_bytes(RAW)
    with pytest.raises(ValueError, match="header= cannot be used with append=True"):
        sensor().write_file(path, ROWS, header=b"H", append=True)
    assert path.read_bytes() == RAW


# -- the command line: python -m binrec, run for real ----------------------------------

HEADER = b"SENSORLOG\x00v2\x00\x00\x00\x10"  # 16 bytes, as real sensor files start


def binrec_m(*args, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore::RuntimeWarning"}  # a pure-Python install warns at import
    return subprocess.run(
        [sys.executable, "-m", "binrec", *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def error_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, res.stderr
    lines = res.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def headed_file(tmp_path):
    path = tmp_path / "sensors.bin"
    path.write_bytes(HEADER + RAW)
    return path


@pytest.mark.parametrize("ext", ["csv", "jsonl", "npy", "parquet"])
def test_decode_then_encode_reproduces_a_headed_utf8_file(tmp_path, headed_file, ext):
    if ext == "parquet":
        pytest.importorskip("pyarrow")
    text = [] if ext == "npy" else ["--text", "name", "--encoding", "utf-8"]
    out, header, back = tmp_path / f"out.{ext}", tmp_path / "header.bin", tmp_path / "back.bin"
    res = binrec_m(
        "decode", FMT, headed_file, "--names", NAMES, "--offset", 16, "--save-header", header, *text, "-o", out
    )
    assert res.returncode == 0, res.stderr
    assert header.read_bytes() == HEADER
    res = binrec_m("encode", FMT, out, "--header", header, "--offset", 16, *text, "-o", back)
    assert res.returncode == 0, res.stderr
    assert back.read_bytes() == headed_file.read_bytes()


def test_decode_text_uses_the_encoding_given(tmp_path, headed_file):
    res = binrec_m(
        "decode", FMT, headed_file, "--names", NAMES, "--offset", 16, "--text", "name", "--encoding", "utf-8"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode("utf-8").splitlines()[1].split(",")[:2] == ["1", "München"]


def test_decode_text_that_does_not_decode_is_an_error_naming_the_field(tmp_path, headed_file):
    out = tmp_path / "out.csv"
    res = binrec_m("decode", FMT, headed_file, "--offset", 16, "--names", NAMES, "--text", "name", "-o", out)
    assert error_line(res).startswith(f"binrec: error: {headed_file}: field 'name' (row 0): cannot decode")
    assert not out.exists()


def test_save_header_from_a_pipe(tmp_path, headed_file):
    header = tmp_path / "h.bin"
    res = binrec_m("decode", FMT, "-", "--offset", 16, "--save-header", header, stdin=headed_file.read_bytes())
    assert res.returncode == 0, res.stderr
    assert header.read_bytes() == HEADER
    assert len(res.stdout.decode().splitlines()) == 1 + len(ROWS)


def test_failed_decode_leaves_no_header_file(tmp_path, headed_file):
    header = tmp_path / "h.bin"
    res = binrec_m("decode", FMT, headed_file, "--offset", 15, "--save-header", header, "-o", tmp_path / "o.csv")
    assert "not a whole number of 18-byte records" in error_line(res)
    assert not header.exists()


def test_encode_header_of_the_wrong_size_for_offset_is_an_error(tmp_path):
    (tmp_path / "in.csv").write_text("f0,f1,f2\n1,a,0.5\n")
    (tmp_path / "h.bin").write_bytes(b"x" * 12)
    out = tmp_path / "out.bin"
    res = binrec_m("encode", FMT, tmp_path / "in.csv", "--header", tmp_path / "h.bin", "--offset", 16, "-o", out)
    assert "h.bin: holds 12 bytes, but --offset is 16" in error_line(res)
    assert not out.exists()


def test_info_counts_records_and_reports_a_clean_end(headed_file):
    res = binrec_m("info", FMT, headed_file, "--offset", 16)
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert f"records: {len(ROWS)}" in out and "clean" in out


def test_info_reports_the_partial_bytes(headed_file):
    res = binrec_m("info", FMT, headed_file, "--offset", 13)  # 3 bytes of header counted as records
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert f"records: {len(ROWS)}" in out and "partial record: 3 trailing bytes" in out


# -- CSV / JSONL input as users write it -------------------------------------------------

CSV_ROWS = "1,north,0.5\n2,south,-1.25\n"
EXPECTED = struct.pack(FMT, 1, b"north", 0.5) + struct.pack(FMT, 2, b"south", -1.25)


def encode(tmp_path, content: bytes, *args, suffix: str = "csv") -> tuple[subprocess.CompletedProcess, object]:
    src = tmp_path / f"in.{suffix}"
    src.write_bytes(content)
    out = tmp_path / "out.bin"
    return binrec_m("encode", FMT, src, "-o", out, *args), out


def test_encode_accepts_a_utf8_bom(tmp_path):
    res, out = encode(tmp_path, b"\xef\xbb\xbfid,name,temp\n" + CSV_ROWS.encode(), "--names", NAMES)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == EXPECTED


def test_encode_matches_columns_by_name_in_any_order(tmp_path):
    content = b"temp,id,name\n0.5,1,north\n-1.25,2,south\n"
    res, out = encode(tmp_path, content, "--names", NAMES)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == EXPECTED


def test_encode_takes_names_from_the_header(tmp_path):
    res, out = encode(tmp_path, ("id,name,temp\n" + CSV_ROWS).encode(), "--text", "name")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == EXPECTED


def test_encode_reads_excel_style_csv(tmp_path):
    # what Excel writes: a BOM, CRLF line ends, "id, name" headers
    res, out = encode(tmp_path, b"\xef\xbb\xbfid, name, temp\r\n1,north,0.5\r\n2,south,-1.25\r\n", "--text", "name")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == EXPECTED


def test_encode_skips_blank_lines(tmp_path):
    res, out = encode(tmp_path, b"id,name,temp\n\n1,north,0.5\n\n\n2,south,-1.25\n\n")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == EXPECTED


def test_encode_unknown_and_missing_columns_name_file_line_and_column(tmp_path):
    res, out = encode(tmp_path, b"id,nme,temp\n1,north,0.5\n", "--names", NAMES)
    assert error_line(res).endswith(
        "in.csv: line 1: unknown column 'nme'; missing column 'name' (the fields are id, name, temp)"
    )
    assert not out.exists()


def test_encode_jsonl_unknown_and_missing_keys_name_file_line_and_key(tmp_path):
    content = b'{"id": 1, "name": "north", "temp": 0.5}\n{"id": 2, "nam": "south", "temp": 1}\n'
    res, out = encode(tmp_path, content, "--names", NAMES, suffix="jsonl")
    assert error_line(res).endswith(
        "in.jsonl: line 2: unknown key 'nam'; missing key 'name' (the keys are id, name, temp)"
    )
    assert not out.exists()


def test_encode_jsonl_takes_names_from_the_first_object(tmp_path):
    content = b'{"id": 1, "name": "north", "temp": 0.5}\n\n{"temp": -1.25, "name": "south", "id": 2}\n'
    res, out = encode(tmp_path, content, suffix="jsonl")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == EXPECTED


def test_encode_non_utf8_input_names_file_and_line(tmp_path):
    res, out = encode(tmp_path, b"id,name,temp\n1,north,0.5\n2,s\xfcd,1.0\n")
    assert "in.csv: line 3: not UTF-8 text" in error_line(res)
    assert not out.exists()


def test_encode_text_in_the_chosen_encoding(tmp_path):
    content = "id,name,temp\n1,München,0.5\n".encode()
    res, out = encode(tmp_path, content, "--text", "name", "--encoding", "utf-8")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == struct.pack(FMT, 1, "München".encode(), 0.5)


def test_encode_text_not_valid_in_the_encoding_names_field_and_line(tmp_path):
    content = "id,name,temp\n1,north,0.5\n2,München,0.5\n".encode()
    res, out = encode(tmp_path, content, "--text", "name")  # ascii by default
    line = error_line(res)
    assert "in.csv: line 3:" in line and "field 'name'" in line and "cannot encode 'München' as ascii" in line
    assert not out.exists()


def test_encode_text_too_long_for_its_field_is_an_error(tmp_path):
    content = "id,name,temp\n1,Ölmühlenweg,0.5\n".encode()
    res, out = encode(tmp_path, content, "--text", "name", "--encoding", "utf-8")
    assert "line 2:" in error_line(res) and "takes 13 bytes in utf-8, the field holds 10" in error_line(res)
    assert not out.exists()


def test_encode_byte_fields_without_text_stay_latin1(tmp_path):
    content = "id,name,temp\n1,Müll,0.5\n".encode()
    res, out = encode(tmp_path, content)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == struct.pack(FMT, 1, "Müll".encode("latin-1"), 0.5)


def test_encode_npy_with_other_field_names_packs_by_position(tmp_path):
    arr = Struct(FMT, NAMES).unpack(RAW)  # named fields, as decode --names writes them
    np.save(tmp_path / "in.npy", arr)
    out = tmp_path / "out.bin"
    res = binrec_m("encode", FMT, tmp_path / "in.npy", "-o", out)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == RAW


# -- small things -------------------------------------------------------------------------


def test_version():
    res = binrec_m("--version")
    assert res.returncode == 0
    assert res.stdout.decode().strip() == f"binrec {__import__('binrec').__version__}"


def test_help_lists_exit_statuses_and_quotes_the_format():
    out = binrec_m("--help").stdout.decode()
    assert "exit status:" in out and "130" in out
    assert "binrec info '>I10sf'" in " ".join(binrec_m("info", "--help").stdout.decode().split())


def test_demo_reports_a_median():
    res = binrec_m("demo", "--records", 2000, "--repeat", 3, "--head", 1)
    assert res.returncode == 0, res.stderr
    assert "median of 3 runs" in res.stdout.decode()


class _Bar:
    """Stands in for the tqdm bar: records what the command reports."""

    def __init__(self, total):
        self.total, self.n, self.closed = total, 0, False

    def update(self, k):
        self.n += k

    def close(self):
        self.closed = True


@pytest.mark.parametrize("command", ["decode", "encode"])
def test_encode_shows_the_same_progress_bar_as_decode(tmp_path, monkeypatch, command):
    # tqdm draws nothing without a real terminal, so the bar is replaced
    # where both commands make it; the oracle is the input file's size
    from binrec import cli

    bars = []

    def progress(total, quiet, desc):
        bars.append((desc, _Bar(total)))
        return bars[-1][1]

    monkeypatch.setattr(cli, "_progress", progress)
    (tmp_path / "in.bin").write_bytes(RAW)
    (tmp_path / "in.csv").write_bytes(b"id,name,temp\n" + CSV_ROWS.encode() * 50_000)  # several batches
    src = tmp_path / ("in.bin" if command == "decode" else "in.csv")
    assert (
        cli.main([command, FMT, str(src), "-o", str(tmp_path / ("out.csv" if command == "decode" else "out.bin"))]) == 0
    )
    [(desc, bar)] = bars
    assert desc == command and bar.total == src.stat().st_size
    assert bar.n == bar.total and bar.closed


# -- encode's pyarrow CSV reader against the Python one ---------------------------

# (csv bytes, encode arguments, whether pyarrow's reader should keep it)
ARROW_CSV_CASES = [
    (b"id,name,temp\n1,north,0.5\n2,south,-1.25\n", (), True),
    ("id,name,temp\n1,München,0.5\n2,Zürich,1e3\n".encode(), ("--text", "name", "--encoding", "utf-8"), True),
    (b"\xef\xbb\xbfid, name, temp\r\n1,a,0.5\r\n\r\n2,b,inf\r\n", ("--text", "name"), True),
    (b"temp,name,id\n0.5,north,7\n-0.0,,8\n", ("--names", NAMES), True),
    (b"id,name,temp\n1,ab,0.5\n", ("--text", "name", "--encoding", "utf-16"), True),  # 6 bytes, BOM first
    (b'id,name,temp\n1,"a,b",0.5\n', (), False),  # quoting: csv.reader's rules
    (b"id,name,temp\n 1,north,0.5\n", (), False),  # int(" 1") is 1
    (b"id,name,temp\n1_000,north,1_0.5\n", (), False),  # int/float take underscores
    (b"id,name,temp\n1,elevenbytes,0.5\n", (), False),  # bytes: struct cuts to 10
    ("id,name,temp\n1,München,0.5\n".encode(), (), True),  # the Latin-1 bytes of a non-ASCII name
    (b"id,name,temp\n1,north,nan\n2,south,-nan\n", (), False),
    (b"id,name,temp\n1,north,0.5\n2,south\n", (), False),  # an error: file, line
    (b"id,name,temp\n1,north,0.5\n-1,south,0.5\n", (), False),  # out of range for I
    (b"id,name,temp\n1,elevenbytes,0.5\n", ("--text", "name"), False),  # text too long: an error
    ("id,name,temp\n1,ü,0.5\n".encode(), ("--text", "name"), False),  # not ASCII: an error
    # either reader may take these; the bytes and errors must still agree
    (b"id,name,temp\n\t1,a,+.5\n+2,b,5.\n3,c,1E5\n4,d,-Infinity\n5,e,1e400\n", (), None),
    (b"id,name,temp\n0x10,a,0.5\n", (), None),
    (b"id,name,temp\n,a,0.5\n", (), None),
    (b"id,name,temp\n1,a,\n", (), None),
    (b"id,name,temp\n1,a,0.5,\n", (), None),
    (b"id,name,temp\n1,a,0.5\n2,b,0.25", (), True),  # no newline at the end
    (b"id,name,temp\n4294967296,a,0.5\n", (), None),
    (b"id,name,temp\n1,a,0x1p3\n", (), None),
    (b"id,name,temp\n1,a\xff,0.5\n", (), False),
    ("id,name,temp\n1,Münchenxxxxx,0.5\n".encode(), (), None),  # bytes: cut to 10, both ways
]


@pytest.mark.parametrize("content, args, arrow", ARROW_CSV_CASES)
def test_encode_csv_with_pyarrow_writes_what_the_python_reader_writes(
    tmp_path, monkeypatch, capsys, content, args, arrow
):
    """The oracle is encode's own Python CSV reader (csv.reader, then a
    parser per cell), run with pyarrow's path switched off: the same bytes,
    the same error (file, line, field) and exit status; and pyarrow's path
    was the one used where both readers must agree."""
    pytest.importorskip("pyarrow")
    from binrec import cli

    src = tmp_path / "in.csv"
    src.write_bytes(content)
    used = []
    real = cli._encode_csv_with_arrow
    monkeypatch.setattr(cli, "_encode_csv_with_arrow", lambda *a: used.append(real(*a)) or used[-1])
    results = []
    for fast in (True, False):
        monkeypatch.setattr(cli, "_arrow_csv_ok", lambda fast=fast: fast)
        out = tmp_path / f"out_{fast}.bin"
        status = cli.main(["encode", FMT, str(src), "-q", "-o", str(out), *args])
        err = capsys.readouterr().err
        results.append((status, err, out.read_bytes() if out.exists() else None))
    assert results[0] == results[1]
    if arrow is not None:
        assert (used[0] is not None) == arrow


def test_encode_csv_with_a_lone_cr_inside_a_line_is_a_one_line_error(tmp_path):
    # Python's csv module refuses a CR inside an unquoted field; binrec must say
    # so as one line naming file and line (exit 1, no output), not a traceback.
    src = tmp_path / "cr.csv"
    src.write_bytes(b"f0,f1\n1,2\n3,4\r5\n")
    out = tmp_path / "cr.bin"
    res = binrec_m("encode", "<ii", str(src), "-o", str(out))
    err = res.stderr.decode()
    assert res.returncode == 1, err
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0, err
    assert f"{src}: line 3:" in err
    assert not out.exists()
