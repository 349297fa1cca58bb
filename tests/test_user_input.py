"""Packing from what users hold (issue 13): DataFrames, Arrow tables, str
values for string fields, structured arrays matched by position, file
headers; and the command line's side of the same (``encode --header``,
``decode --save-header``, ``info --offset``, CSV/JSONL input as users write
it, ``--encoding``).

Oracles: ``struct.pack`` for every encoded byte, the input file itself for
round trips through real ``python -m binrec`` subprocesses.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import binrec
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
    assert sensor().pack(rows, encoding="utf-8") == struct.pack(FMT, 1, "München".encode("utf-8"), 1.0)


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
    code = "import sys, binrec; binrec.Struct('<h').pack([(1,)]); print('pandas' in sys.modules, 'pyarrow' in sys.modules)"
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
