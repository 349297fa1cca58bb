"""Text fields decoded by the kernels (issue 13): ``text=`` with ASCII,
Latin-1 and UTF-8 against the oracle ``struct.unpack`` + ``bytes.decode``,
on both backends.

numpy's ``S`` values end at their first trailing NUL, so the oracle strips
NULs as well as ``strip`` (``rstrip(strip + b"\\0")``), and numpy's ``U``
values drop trailing NULs, so the oracle's text is compared as a ``U``
array."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import binrec
from binrec import _backend, _kernels_py, files
from binrec._kernels import TextCodec

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ENCODINGS = ["ascii", "latin-1", "utf-8"]
# bytes that make each codec's edge cases likely: NUL and space padding,
# UTF-8 leads, continuations, overlong forms, surrogates, > U+10FFFF
PIECES = [
    b"a",
    b"Z",
    b"\x00",
    b" ",
    b"\xc3\xbc",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xff",
    b"\x80",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xe0\x80\x80",
    b"\xf4\x90\x80\x80",
    b"\xc3",
    b"\xe2\x82",
]


def oracle(values: list[bytes], encoding: str, strip: bytes, width: int) -> tuple[np.ndarray | None, int]:
    """Python's own decode of each struct-unpacked value: the ``U`` column
    at the field's width, or None and the first row that does not decode."""
    texts = []
    for i, value in enumerate(values):
        try:
            texts.append(value.rstrip(strip + b"\x00").decode(encoding))
        except UnicodeDecodeError:
            return None, i
    return np.array(texts, dtype=f"U{max(1, width)}"), -1


def records(fmt: str, rows: list[tuple[object, ...]]) -> bytes:
    return b"".join(struct.pack(fmt, *row) for row in rows)


values_st = st.lists(st.lists(st.sampled_from(PIECES), max_size=6).map(b"".join), min_size=1, max_size=8)


@SETTINGS
@given(
    values=values_st,
    width=st.integers(1, 9),
    encoding=st.sampled_from(ENCODINGS),
    strip=st.sampled_from([b"\x00 ", b"", b" ", b"\xbc", b"a"]),
)
def test_unpack_columns_text_matches_bytes_decode(backend, values, width, encoding, strip):
    """Oracle: struct.unpack of each record, then bytes.rstrip + bytes.decode."""
    fmt = f"<h{width}s"
    raw = records(fmt, [(i, v) for i, v in enumerate(values)])
    unpacked = [
        struct.unpack(fmt, raw[i : i + struct.calcsize(fmt)])[1] for i in range(0, len(raw), struct.calcsize(fmt))
    ]
    expected, bad = oracle(unpacked, encoding, strip, width)
    s = binrec.Struct(fmt, names="n text")
    if expected is None:
        with pytest.raises(binrec.Error, match=rf"field 'text' \(row {bad}\): cannot decode"):
            s.unpack_columns(raw, text="text", encoding=encoding, strip=strip)
        return
    got = s.unpack_columns(raw, text="text", encoding=encoding, strip=strip)["text"]
    assert got.dtype == expected.dtype
    assert got.tolist() == expected.tolist()


@SETTINGS
@given(values=values_st, width=st.integers(1, 9), encoding=st.sampled_from(ENCODINGS))
def test_unpack_text_into_records_matches_bytes_decode(backend, values, width, encoding):
    """The structured result (text decoded into an unaligned field between
    two others) holds what bytes.decode gives, and the numbers around it."""
    fmt = f"<b{width}sH"
    raw = records(fmt, [(i % 100, v, 7 * i) for i, v in enumerate(values)])
    unpacked = [row[1] for row in struct.iter_unpack(fmt, raw)]
    expected, bad = oracle(unpacked, encoding, b"\x00 ", width)
    s = binrec.Struct(fmt, names="a text b")
    if expected is None:
        with pytest.raises(binrec.Error, match=rf"\(row {bad}\)"):
            s.unpack(raw, text="text", encoding=encoding)
        return
    got = s.unpack(raw, text="text", encoding=encoding)
    assert got.dtype["text"] == expected.dtype
    assert got["text"].tolist() == expected.tolist()
    assert got["a"].tolist() == [row[0] for row in struct.iter_unpack(fmt, raw)]
    assert got["b"].tolist() == [row[2] for row in struct.iter_unpack(fmt, raw)]


@SETTINGS
@given(
    values=values_st,
    width=st.integers(1, 9),
    codec=st.sampled_from(list(TextCodec)),
    strip=st.sampled_from([b"\x00 ", b"\x00", b"\x00\x80"]),
)
def test_both_kernels_decode_alike(values, width, codec, strip):
    """decode_text and text_to_utf8 of the two backends agree row for row,
    on the bad row too (oracle: each other; the tests above hold each to
    bytes.decode)."""
    from binrec import _kernels_c

    src = np.array(values, dtype=f"S{width}")
    answers = []
    for kernels in (_kernels_py, _kernels_c):
        out = np.empty(len(src), dtype=f"U{width}")
        bad = kernels.decode_text(src, out, codec, strip)
        offsets = np.empty(len(src) + 1, dtype=np.int64)
        data = np.zeros(len(src) * width * 2, dtype=np.uint8)
        used, bad_utf8 = kernels.text_to_utf8(src, codec, strip, offsets, data)
        answers.append(
            (
                bad,
                bad_utf8,
                out.tolist() if bad < 0 else None,
                used,
                bytes(data[:used]),
                offsets.tolist() if used else None,
            )
        )
    assert answers[0] == answers[1]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_text_width_is_the_field_width_whatever_the_values(backend, encoding):
    """Every chunk of one stream has one dtype: U<field width>, even when a
    chunk's values are all short (numpy's decode would size to the longest)."""
    s = binrec.Struct("<8s", names="t")
    raw = records("<8s", [(b"abcdefgh",), (b"a",), (b"b",)])
    chunks = list(files.iter_unpack(s, io.BytesIO(raw), chunk_size=1, text="t", encoding=encoding))
    assert [c.dtype["t"] for c in chunks] == [np.dtype("U8")] * 3
    assert s.unpack_columns(raw[8:], text="t", encoding=encoding)["t"].dtype == np.dtype("U8")


def test_stream_error_names_the_row_in_the_stream(backend):
    """iter_unpack counts rows from the stream's start, not the chunk's."""
    s = binrec.Struct("<2s", names="t")
    raw = records("<2s", [(b"ok",)] * 5 + [(b"\xff",)])
    with pytest.raises(binrec.Error, match=r"field 't' \(row 5\)"):
        list(files.iter_unpack(s, io.BytesIO(raw), chunk_size=2, text="t"))


def test_unpack_text_of_many_records_matches_struct(backend):
    """Enough records that unpack(text=) fills its result in several blocks
    (_text.with_text): every row's numbers are struct's and its text
    bytes.decode's, ASCII rows and rows with UTF-8 after an ASCII run alike."""
    names = [b"north", "Köln".encode(), b"", b"ab  ", "ü".encode(), b"0123456789"]
    rows = [(i, names[i % len(names)], i / 4) for i in range(30_000)]
    raw = records("<I10sf", rows)
    got = binrec.Struct("<I10sf", names="id name temp").unpack(raw, text="name", encoding="utf-8")
    expected = [(i, v.rstrip(b"\x00 ").decode("utf-8"), t) for i, v, t in struct.iter_unpack("<I10sf", raw)]
    assert got.tolist() == expected


def test_unpack_text_error_names_a_row_past_the_first_block(backend):
    """A value that does not decode, far into the records: the error names
    its own row (bytes.decode refuses b"\\xff" as UTF-8), not its row
    within a block."""
    values = [(b"ok",)] * 10_000  # 160-byte U40 rows: some 3,000 to a block
    values[8_765] = (b"\xff",)
    raw = records("<40s", values)
    with pytest.raises(binrec.Error, match=r"field 't' \(row 8765\)"):
        binrec.Struct("<40s", names="t").unpack(raw, text="t", encoding="utf-8")


@pytest.mark.parametrize("code", ["c", "3p", "5s"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_string_code_decodes_like_struct(backend, code, encoding):
    """c, p and s fields: struct's value (p: its length-prefixed bytes),
    decoded with bytes.decode."""
    fmt = "<" + code
    values = [b"\xe9", b"a", b"\x00"] if code == "c" else ["é".encode(), b"x ", b"", b"ab"]
    raw = records(fmt, [(v,) for v in values])
    unpacked = [row[0] for row in struct.iter_unpack(fmt, raw)]
    width = binrec.Struct(fmt).dtype[0].itemsize
    expected, bad = oracle(unpacked, encoding, b"\x00 ", width)
    s = binrec.Struct(fmt, names="t")
    if expected is None:
        with pytest.raises(binrec.Error, match=rf"\(row {bad}\)"):
            s.unpack_columns(raw, text="t", encoding=encoding)
    else:
        got = s.unpack_columns(raw, text="t", encoding=encoding)["t"]
        assert (got.dtype, got.tolist()) == (expected.dtype, expected.tolist())


def test_other_encodings_still_decode_through_codecs(backend):
    """An encoding the kernels do not know (cp1252) gives bytes.decode's
    text, at the field's width."""
    raw = records("<4s", [("€".encode("cp1252"),), (b"ab",)])
    got = binrec.Struct("<4s", names="t").unpack_columns(raw, text="t", encoding="cp1252")["t"]
    assert got.tolist() == ["€", "ab"]
    assert got.dtype == np.dtype("U4")


def test_kernel_codec_codes_agree():
    """The compiled module's codes are TextCodec's (one contract)."""
    from binrec import _kernels_c

    assert _kernels_c.TEXT_CODECS == {c.name: int(c) for c in TextCodec}
    assert (_kernels_py._ASCII, _kernels_py._LATIN1, _kernels_py._UTF8) == tuple(TextCodec)


# -- Arrow and pandas ------------------------------------------------------------


@SETTINGS
@given(values=values_st, width=st.integers(1, 9), encoding=st.sampled_from(ENCODINGS))
def test_unpack_table_text_is_an_arrow_string_column(backend, values, width, encoding):
    """Oracle: bytes.decode per struct-unpacked value, as Arrow string."""
    pa = pytest.importorskip("pyarrow")
    fmt = f"<{width}sh"
    raw = records(fmt, [(v, i) for i, v in enumerate(values)])
    expected, bad = oracle([row[0] for row in struct.iter_unpack(fmt, raw)], encoding, b"\x00 ", width)
    s = binrec.Struct(fmt, names="t n")
    if expected is None:
        with pytest.raises(binrec.Error, match=rf"field 't' \(row {bad}\)"):
            s.unpack_table(raw, text="t", encoding=encoding)
        return
    table = s.unpack_table(raw, text="t", encoding=encoding)
    assert table.schema.field("t").type == pa.string()
    table["t"].validate(full=True)
    assert table["t"].to_pylist() == expected.tolist()


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_unpack_frame_text_is_pandas_arrow_backed_str(backend, encoding):
    """The column is pandas' Arrow-backed str (what pandas itself makes of
    text), equal to bytes.decode of each value."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    fmt = "<6sf"
    values = [
        "Mün".encode(encoding if encoding != "ascii" else "utf-8") if encoding != "ascii" else b"Mun",
        b"ab  ",
        b"",
    ]
    raw = records(fmt, [(v, 1.5) for v in values])
    expected, _ = oracle([row[0] for row in struct.iter_unpack(fmt, raw)], encoding, b"\x00 ", 6)
    frame = binrec.Struct(fmt, names="t x").unpack_frame(raw, text="t", encoding=encoding)
    assert frame["t"].tolist() == expected.tolist()
    assert frame["t"].dtype == pd.StringDtype("pyarrow", na_value=np.nan)


def test_unpack_frame_text_peak_memory_is_within_twice_the_frame():
    """Issue 13's bound, on the compiled backend: tracemalloc (which sees
    numpy's allocations) peaks below twice the frame's own deep size.  The
    old path built a U column (4 bytes a character of width) first."""
    import tracemalloc

    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    if _backend.compiled_kernels is None:
        pytest.skip("compiled backend not built")
    s = binrec.Struct("<I16sf", names="id name temp")
    raw = records("<I16sf", [(i, b"sensor-%d" % (i % 1000), 0.5) for i in range(50_000)])
    with _backend.use("compiled"):
        tracemalloc.start()
        try:
            frame = s.unpack_frame(raw, text="name")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak <= 2 * frame.memory_usage(deep=True).sum()


def test_unpack_table_refuses_an_unknown_encoding():
    """Oracle: codecs.lookup raises LookupError, as unpack_columns does."""
    pytest.importorskip("pyarrow")
    with pytest.raises(LookupError):
        binrec.Struct("<2s", names="t").unpack_table(b"ab", text="t", encoding="no-such-codec")


# -- the CLI's CSV and JSONL -------------------------------------------------------

SENSOR = "<I10sfd?"
SENSOR_NAMES = "id name temp x ok"
SENSOR_ROWS = [
    (1, "München".encode(), 22.62, 0.1, True),
    (2, b"a,b", 1e6, 1e16, False),
    (3, b'say "hi"', float("nan"), float("-inf"), True),
    (4, b"line\nfeed", -0.0, 2.5e-7, False),
    (5, b"", 3.4e38, -1.0, True),
]
BLOCK_ARROW = "import sys; sys.modules['pyarrow'] = None; "


def cli_decode(tmp_path, out_name: str, *extra: str, block_arrow: bool) -> bytes:
    """Run ``binrec decode`` in a fresh interpreter (pyarrow importable or
    not) and return the bytes it wrote."""
    import subprocess
    import sys

    src = tmp_path / "in.bin"
    src.write_bytes(records(SENSOR, SENSOR_ROWS))
    out = tmp_path / out_name
    argv = ["decode", SENSOR, str(src), "--names", SENSOR_NAMES, "-o", str(out), *extra]
    code = (BLOCK_ARROW if block_arrow else "") + f"from binrec.cli import main; sys.exit(main({argv!r}))"
    if not block_arrow:
        code = "import sys; " + code
    res = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert res.returncode == 0, res.stderr
    return out.read_bytes()


@pytest.mark.parametrize("out_name", ["out.csv", "out.jsonl"])
def test_cli_text_output_is_the_same_with_and_without_pyarrow(tmp_path, out_name):
    """Oracle: the same command in an interpreter where pyarrow cannot be
    imported (the numpy/Python path)."""
    pytest.importorskip("pyarrow")
    extra = ("--text", "name", "--encoding", "utf-8")
    with_arrow = cli_decode(tmp_path, out_name, *extra, block_arrow=False)
    without = cli_decode(tmp_path, out_name, *extra, block_arrow=True)
    assert with_arrow == without


def test_cli_csv_reads_back_with_the_csv_module(tmp_path):
    """Oracle: csv.reader gives back struct's values: text as bytes.decode,
    floats as the field's own type (np.float32 of the cell equals the
    stored float32), LF line endings."""
    import csv

    data = cli_decode(tmp_path, "out.csv", "--text", "name", "--encoding", "utf-8", block_arrow=False)
    assert b"\r" not in data.replace(b'"line\nfeed"', b"")
    assert data.count(b"\r\n") == 0
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == SENSOR_NAMES.split()
    for cells, stored in zip(rows[1:], struct.iter_unpack(SENSOR, records(SENSOR, SENSOR_ROWS))):
        assert int(cells[0]) == stored[0]
        assert cells[1] == stored[1].rstrip(b"\x00 ").decode("utf-8")
        assert np.array(cells[2], dtype=np.float32).tobytes() == np.float32(stored[2]).tobytes() or np.isnan(stored[2])
        assert float(cells[3]) == stored[3] or np.isnan(stored[3])
        assert cells[4] == str(stored[4])


def test_cli_csv_prints_float32_as_float32(tmp_path):
    """A stored 22.62 prints as numpy prints the float32 (22.62), not with
    float64 digits (22.6200008392334)."""
    import csv

    data = cli_decode(tmp_path, "out.csv", block_arrow=False)
    temps = [row[2] for row in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))][1:3]
    assert temps == ["22.62", str(np.float32(1e6))]


def test_cli_jsonl_reads_back_with_json(tmp_path):
    """Oracle: json.loads of each line gives struct's values (NaN and
    Infinity as Python's json writes them)."""
    import json

    data = cli_decode(tmp_path, "out.jsonl", "--text", "name", "--encoding", "utf-8", block_arrow=False)
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == len(SENSOR_ROWS)
    # float32 text, and UTF-8 strings rather than \u escapes
    assert '"name": "München", "temp": 22.62,' in lines[0]
    for line, stored in zip(lines, struct.iter_unpack(SENSOR, records(SENSOR, SENSOR_ROWS))):
        obj = json.loads(line)
        assert list(obj) == SENSOR_NAMES.split()
        assert obj["name"] == stored[1].rstrip(b"\x00 ").decode("utf-8")
        assert np.float32(obj["temp"]).tobytes() == np.float32(stored[2]).tobytes() or np.isnan(stored[2])
        assert obj["x"] == stored[3] or np.isnan(stored[3])
        assert obj["ok"] is stored[4]


@SETTINGS
@given(
    values=st.lists(st.floats(width=32), min_size=1, max_size=20),
    doubles=st.lists(st.floats(), min_size=20, max_size=20),
)
def test_float_cells_are_numpys_text_on_both_paths(values, doubles):
    """Oracle: str() of the numpy scalar of the field's type, for every
    float (Arrow formats only a middle range; the rest must still agree)."""
    pytest.importorskip("pyarrow")
    from binrec import _textfmt

    s = binrec.Struct("<fd", names="f d")
    rows = np.zeros(len(values), dtype=s.dtype)
    rows["f"] = values
    rows["d"] = doubles[: len(values)]
    # str(), not an f-string: format() of a numpy float prints float64 digits
    expected = "".join(str(np.float32(a)) + "," + str(np.float64(b)) + "\n" for a, b in zip(rows["f"], rows["d"]))
    expected = expected.encode()
    for arrow in (True, False):
        assert bytes(_textfmt.csv_chunk(s.layout.fields, rows, [], "ascii", 0, arrow)) == expected


# -- Parquet row groups ----------------------------------------------------------


def test_cli_parquet_row_groups_are_pyarrows_default_size(tmp_path):
    """70,000 records (more than one 65,536-record decode chunk) make one row
    group, as pq.write_table makes; the table equals unpack_table's (oracle:
    pyarrow.parquet reading the file back)."""
    import subprocess
    import sys

    pq = pytest.importorskip("pyarrow.parquet")
    raw = records("<I6sf", [(i, b"n%d" % (i % 97), i / 4) for i in range(70_000)])
    src, out = tmp_path / "in.bin", tmp_path / "out.parquet"
    src.write_bytes(raw)
    argv = ["decode", "<I6sf", str(src), "--names", "id name t", "--text", "name", "-o", str(out)]
    res = subprocess.run([sys.executable, "-m", "binrec", *argv], capture_output=True)
    assert res.returncode == 0, res.stderr
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [70_000]
    expected = binrec.Struct("<I6sf", names="id name t").unpack_table(raw, text="name")
    assert pq.read_table(out).equals(expected)


def test_cli_parquet_row_group_size_option(tmp_path):
    """--row-group-size N: groups of N rows, the last one the rest."""
    import subprocess
    import sys

    pq = pytest.importorskip("pyarrow.parquet")
    src, out = tmp_path / "in.bin", tmp_path / "out.parquet"
    src.write_bytes(records("<H", [(i % 65536,) for i in range(70_000)]))
    argv = ["decode", "<H", str(src), "-o", str(out), "--row-group-size", "30000"]
    res = subprocess.run([sys.executable, "-m", "binrec", *argv], capture_output=True)
    assert res.returncode == 0, res.stderr
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [30_000, 30_000, 10_000]


@pytest.mark.parametrize("arrow", [True, False])
@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_every_byte_value_reads_back(kind, arrow):
    """Each of the 256 byte values, alone and inside a field, reads back
    with csv.reader / json.loads as its Latin-1 character (the oracle: the
    struct-unpacked bytes, trailing NULs dropped as numpy drops them)."""
    import csv
    import json

    if arrow:
        pytest.importorskip("pyarrow")
    from binrec import _textfmt

    s = binrec.Struct("<c3s", names="c s")
    raw = records("<c3s", [(bytes([i]), bytes([i, 65, i])) for i in range(256)])
    rows = s.unpack(raw)
    make = _textfmt.csv_chunk if kind == "csv" else _textfmt.jsonl_chunk
    out = bytes(make(s.layout.fields, rows, [], "ascii", 0, arrow)).decode("utf-8")
    if kind == "csv":
        got = [tuple(r) for r in csv.reader(io.StringIO(out, newline=""))]
    else:
        got = [tuple(json.loads(line).values()) for line in out.split("\n")[:-1]]
    expected = [tuple(v.rstrip(b"\x00").decode("latin-1") for v in row) for row in struct.iter_unpack("<c3s", raw)]
    assert got == expected


@pytest.mark.parametrize("out_name", ["out.csv", "out.jsonl"])
def test_cli_text_output_does_not_import_pandas(tmp_path, out_name):
    """pyarrow's pa.array and pa.scalar import pandas when it is installed
    (a few hundred ms of every decode): the CSV/JSONL writer builds its
    Arrow arrays from buffers instead.  Oracle: sys.modules of a fresh
    interpreter after a real decode (every kind of cell: bool, int, float,
    complex, quoted and escaped text, an empty lone column is not here)."""
    import subprocess
    import sys

    pytest.importorskip("pyarrow")
    pytest.importorskip("pandas")
    src = tmp_path / "in.bin"
    src.write_bytes(records(SENSOR, SENSOR_ROWS))
    code = (
        "import sys; from binrec.cli import main; "
        f"main(['decode', {SENSOR!r}, {str(src)!r}, '--names', {SENSOR_NAMES!r}, '--text', 'name', "
        f"'--encoding', 'utf-8', '-q', '-o', {str(tmp_path / out_name)!r}]); "
        "print('pyarrow' in sys.modules, 'pandas' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["True", "False"]


# -- unpack(text=) in one pass (_kernels.unpack_text_rows) ----------------------

MIXED_FMT = ">?3pH5sxq0scd4s"
MIXED_NAMES = "flag pas h name big empty ch d tail"


@SETTINGS
@given(
    names=st.lists(st.tuples(values_st.map(lambda v: v[0]), values_st.map(lambda v: v[0])), min_size=1, max_size=6),
    encoding=st.sampled_from(ENCODINGS),
)
def test_unpack_text_rows_of_every_field_kind_match_struct(backend, names, encoding):
    """Oracle: struct.iter_unpack of each record, bytes.rstrip + bytes.decode
    of the text fields (name, ch, tail); the other fields (bool, Pascal,
    big-endian ints and floats, a zero-width field, padding) are struct's."""
    rows = [(i % 2 == 0, b"pq", 300 + i, n, -(2**40) + i, b"", b"c", i / 8, t) for i, (n, t) in enumerate(names)]
    raw = records(MIXED_FMT, rows)
    unpacked = list(struct.iter_unpack(MIXED_FMT, raw))
    s = binrec.Struct(MIXED_FMT, names=MIXED_NAMES)
    bads = []
    expected = {}
    for col, width in ((3, 5), (6, 1), (8, 4)):
        column, bad = oracle([row[col] for row in unpacked], encoding, b"\x00 ", width)
        expected[col] = column
        if bad >= 0:
            bads.append(bad)
    if bads:
        with pytest.raises(binrec.Error, match=rf"\(row {min(bads)}\)"):
            s.unpack(raw, text=["name", "ch", "tail"], encoding=encoding)
        return
    got = s.unpack(raw, text=["name", "ch", "tail"], encoding=encoding)
    assert [got.dtype[k] for k in ("name", "ch", "tail")] == [np.dtype("U5"), np.dtype("U1"), np.dtype("U4")]
    for col, key in ((3, "name"), (6, "ch"), (8, "tail")):
        assert got[key].tolist() == expected[col].tolist()
    for col, key in ((0, "flag"), (1, "pas"), (2, "h"), (4, "big"), (5, "empty"), (7, "d")):
        assert got[key].tolist() == [row[col] for row in unpacked]


def test_unpack_text_error_names_the_first_bad_row_of_any_field(backend):
    """Two text fields, each with a value bytes.decode refuses as ASCII: the
    error names the lower row (2, in the second field), not the first
    field's bad row (5)."""
    rows = [(b"ok", b"ok")] * 8
    rows[5] = (b"\xff", b"ok")
    rows[2] = (b"ok", b"\xfe")
    raw = records("<2s2s", rows)
    with pytest.raises(binrec.Error, match=r"field 'b' \(row 2\): cannot decode b'\\xfe' as ascii"):
        binrec.Struct("<2s2s", names="a b").unpack(raw, text=["a", "b"])


@SETTINGS
@given(values=values_st, codec=st.sampled_from(list(TextCodec)))
def test_both_kernels_unpack_text_rows_alike(values, codec):
    """unpack_text_rows of the two backends: the same bytes in the result,
    or the same (row, field) refused (oracle: each other; the tests above
    hold each to struct and bytes.decode)."""
    from binrec import _kernels_c, _text

    s = binrec.Struct("<h6s?", names="n t b")
    raw = records("<h6s?", [(i, v, i % 3 == 0) for i, v in enumerate(values)])
    dtype = _text._text_dtype(s._layout, frozenset({"t"}))
    answers = []
    for kernels in (_kernels_py, _kernels_c):
        out = np.zeros(len(values), dtype=dtype)
        bad = kernels.unpack_text_rows(s._layout, raw, 0, len(values), out, frozenset({"t"}), codec, b"\x00 ")
        answers.append((bad, out.tobytes() if bad is None else None))
    assert answers[0] == answers[1]


def test_unpack_columns_text_reads_in_place_beside_out_arrays(backend):
    """unpack_columns with text= and out= for another field: the caller's
    array is filled (struct's numbers) and the text is bytes.decode's; a
    text field given its own out= array keeps the bytes-column route."""
    raw = records("<I4s", [(7, b"ab"), (9, "é".encode())])
    s = binrec.Struct("<I4s", names="id t")
    ids = np.zeros(2, dtype=np.uint32)
    got = s.unpack_columns(raw, text="t", encoding="utf-8", out={"id": ids})
    assert got["id"] is ids and ids.tolist() == [7, 9]
    assert got["t"].tolist() == ["ab", "é"]
    spare = np.zeros(2, dtype="S4")
    assert s.unpack_columns(raw, text="t", encoding="utf-8", out={"t": spare})["t"].tolist() == ["ab", "é"]


# -- binrec encode from JSONL through pyarrow's JSON reader ----------------------

JSONL_FMT = ">I10sf"
JSONL_CASES = [
    ('{"id": 1, "name": "north", "temp": 22.62}\n{"id": 2, "name": "Zürich", "temp": -1}\n', True),
    (
        '{"id": 7, "name": "ab", "temp": 0.5}\n{"name": "c\\u00fc", "id": 8, "temp": 1e3}',
        True,
    ),  # any key order, no final LF
    ('{"id": 1, "name": "a", "temp": 0.5}\n\n{"id": 2, "name": "b", "temp": 0.5}\n', None),  # blank line
    ('{"id": 1, "name": "a", "temp": 0.5} {"id": 2, "name": "b", "temp": 0.5}\n', None),  # two on a line
    ('{"id": 1.0, "name": "a", "temp": 0.5}\n', None),  # a float for an int
    ('{"id": true, "name": "a", "temp": 0.5}\n', None),  # struct packs True as 1
    ('{"id": 1, "name": 5, "temp": 0.5}\n', None),
    ('{"id": 1, "name": "a"}\n', None),  # missing key
    ('{"id": 1, "name": "a", "temp": 0.5, "x": 1}\n', None),  # unknown key
    ('{"id": 1, "name": "a", "temp": 0.5}\n{"id": 1, "name": "a", "name": "b", "temp": 0.5}\n', None),
    ('{"id": 1, "name": "\\ud800", "temp": 0.5}\n', None),  # lone surrogate
    ('{"id": 1, "name": "a\tb", "temp": 0.5}\n', None),  # raw control character
    ('{"id": 4294967296, "name": "a", "temp": 0.5}\n', None),  # out of range for I
    ('{"id": 1, "name": "much too long", "temp": 0.5}\n', None),
    ('{"id": 1, "name": "a", "temp": NaN}\n', None),
    ("\ufeff" + '{"id": 1, "name": "a", "temp": 0.5}\n', None),  # BOM
    ('{"id": 1, "name": "a", "temp": 0.5}\r\n{"id": 2, "name": "b", "temp": 0.5}\r\n', True),
]


@pytest.mark.parametrize("content, arrow", JSONL_CASES)
@pytest.mark.parametrize("text", [(), ("--text", "name", "--encoding", "utf-8")])
def test_encode_jsonl_with_pyarrow_writes_what_the_python_reader_writes(
    tmp_path, monkeypatch, capsys, content, arrow, text
):
    """Oracle: encode's own Python JSONL reader (json.loads per line), run
    with pyarrow's path switched off: the same bytes, the same error (file,
    line, key) and exit status; pyarrow's path was the one used where the
    input is plain."""
    pytest.importorskip("pyarrow.json")
    from binrec import cli

    src = tmp_path / "in.jsonl"
    src.write_bytes(content.encode("utf-8"))
    used = []
    real = cli._encode_csv_with_arrow
    monkeypatch.setattr(cli, "_encode_csv_with_arrow", lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    results = []
    for fast in (True, False):
        monkeypatch.setattr(cli, "_arrow_json_ok", lambda fast=fast: fast)
        out = tmp_path / f"out_{fast}.bin"
        status = cli.main(["encode", JSONL_FMT, str(src), "-q", "-o", str(out), *text])
        err = capsys.readouterr().err
        results.append((status, err, out.read_bytes() if out.exists() else None))
    assert results[0] == results[1]
    if arrow is not None:
        assert (used[0] is not None) == arrow


def test_encode_jsonl_with_pyarrow_matches_struct(tmp_path):
    """Oracle: struct.pack of each object's values (the name as UTF-8)."""
    pytest.importorskip("pyarrow.json")
    import json

    from binrec import cli

    rows = [(i, f"Mü-{i}", i / 8) for i in range(5000)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "name": n, "temp": t}) + "\n" for i, n, t in rows))
    out = tmp_path / "out.bin"
    assert cli.main(["encode", JSONL_FMT, str(src), "-q", "-o", str(out), "--text", "name", "--encoding", "utf-8"]) == 0
    assert out.read_bytes() == b"".join(struct.pack(JSONL_FMT, i, n.encode(), t) for i, n, t in rows)
