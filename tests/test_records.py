"""The record codec against its oracle, the struct module.

Every test here runs once per backend (the ``backend`` fixture).
"""

from __future__ import annotations

import math
import re
import struct
import sys

import numpy as np
import pytest

import binrec
from binrec import Error, Struct

pytestmark = pytest.mark.usefixtures("backend")

FORMATS = [
    ">I10sf", "I10sf", "@ci", "@ic0i", "@ic", "=ic", "<hbq", ">?c3s", "!HHL", "@lL", "<lL", "@nNP", "@e?d",
    "<e", ">d", "@bq", "@ib0q", "3c", "x3x2sx", "@c 2h  i", "<5p", "@1p", "<3s0s", ">300p", "@?f",
    "@qcq", "=Q", "@P", "20x?",
]  # fmt: skip


def struct_offsets(fmt: str) -> list[int]:
    """Offsets of each value as struct computes them: the size of the format
    up to and including the value, minus the value's own size."""
    order = fmt[0] if fmt[:1] in "@=<>!" else ""
    body = fmt[len(order) :]
    offsets = []
    prefix = ""
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", body):
        n = int(count) if count else 1
        if code in "sp":
            offsets.append(struct.calcsize(order + prefix + f"{n}{code}") - n)
            prefix += f"{n}{code}"
        elif code == "x":
            prefix += f"{n}x"
        else:
            for _ in range(n):
                size = struct.calcsize(order + code)
                offsets.append(struct.calcsize(order + prefix + code) - size)
                prefix += code
            if n == 0:
                prefix += f"0{code}"
    return offsets


def values_equal(ours, theirs, code):
    if code in "efd":
        return (math.isnan(ours) and math.isnan(theirs)) or ours == theirs
    if code in "sp":
        return ours == theirs.rstrip(b"\x00")  # numpy S drops trailing NULs
    if code == "c":
        return ours == theirs.rstrip(b"\x00")
    return ours == theirs


def codes_of(s: Struct) -> list[str]:
    return [f.code for f in s.layout.fields]


# -- layout -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_size_and_offsets_match_struct(fmt):
    s = Struct(fmt)
    assert s.size == struct.calcsize(fmt)
    assert s.dtype.itemsize == s.size
    assert [s.dtype.fields[n][1] for n in s.names] == struct_offsets(fmt)
    assert len(s.names) == len(struct.unpack(fmt, bytes(s.size)))
    assert s.dtype.isnative or all(s.dtype.fields[n][0].isnative for n in s.names)


@pytest.mark.parametrize(
    "fmt,size",
    [("@ci", 8), ("@ic0i", 8), ("I10sf", 20), (">I10sf", 18), ("@ic", 5), ("<l", 4), ("@l", struct.calcsize("@l"))],
)
def test_known_sizes(fmt, size):
    assert binrec.calcsize(fmt) == size == struct.calcsize(fmt)


def test_zero_length_pascal_string_is_an_empty_value():
    # struct.unpack('0p') raises SystemError before Python 3.13; pack gives b''
    s = Struct("@i0p")
    assert s.size == struct.calcsize("@i0p") == 4
    raw = struct.pack("@i0p", 5, b"abc")
    assert s.unpack(raw).tolist() == [(5, b"")]
    assert s.pack([(5, b"abc")]) == raw


def test_repeat_counts_c_versus_s():
    assert Struct("3c").names == ("f0", "f1", "f2")
    assert Struct("3s").names == ("f0",)
    assert Struct("i0s").dtype["f1"].itemsize == 0


@pytest.mark.parametrize(
    "fmt",
    ["", "<", "i<", "z", "3", "i 3", "<n", ">P", "!N", "0s", "xx", "1000000000000q", "i\x00"],
)
def test_bad_formats_raise_error(fmt):
    with pytest.raises(Error):
        Struct(fmt)


def test_error_is_a_struct_error():
    assert issubclass(Error, struct.error)
    with pytest.raises(struct.error):
        Struct("i<")


def test_bad_format_message_names_the_position():
    with pytest.raises(Error, match=r"position 1"):
        Struct("i<")
    with pytest.raises(Error, match=r"unknown format code 'z'"):
        Struct(">iz")


def test_absurd_repeat_count_fails_fast_without_allocating():
    with pytest.raises(Error, match="at most"):
        Struct("1000000000000q")
    with pytest.raises(Error, match="larger than"):
        Struct("99999999999s")


def test_names_string_and_sequence():
    assert Struct(">I10sf", "id, name temp").names == ("id", "name", "temp")
    assert Struct(">I10sf", ["id", "name", "temp"]).dtype.names == ("id", "name", "temp")
    assert Struct("2x3h").names == ("f0", "f1", "f2")


@pytest.mark.parametrize("names", ["a b", "a b c d", "a a b", "a 1b c", ["a", "b", 3]])
def test_bad_names(names):
    with pytest.raises(Error):
        Struct(">I10sf", names)


def test_dtype_is_native_with_struct_offsets():
    dt = binrec.dtype(">I10sf", names="id name temp")
    assert dt["id"] == np.dtype("=u4") and dt["temp"] == np.dtype("=f4")
    assert [dt.fields[n][1] for n in dt.names] == [0, 4, 14]


def test_struct_repr_pickle_and_equality():
    import pickle

    s = Struct("<hd", "a b")
    assert pickle.loads(pickle.dumps(s)) == s
    assert "hd" in repr(s)


# -- unpack against struct ----------------------------------------------------


def random_bytes(n: int, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("n", [0, 1, 37])
def test_unpack_random_bytes_matches_struct(fmt, n):
    s = Struct(fmt)
    raw = random_bytes(n * s.size, seed=n)
    ours = s.unpack(raw)
    assert ours.dtype == s.dtype and ours.shape == (n,)
    assert ours.flags.owndata
    theirs = list(struct.iter_unpack(fmt, raw)) if s.size else []
    codes = codes_of(s)
    for row_o, row_t in zip(ours.tolist(), theirs):
        for a, b, code in zip(row_o, row_t, codes):
            assert values_equal(a, b, code), (fmt, code, a, b)
    cols = s.unpack_columns(raw)
    for i, name in enumerate(s.names):
        # numpy has no standalone S0 arrays: a 0s column comes back as S1
        assert cols[name].flags.c_contiguous and cols[name].dtype == np.empty(0, s.dtype[name]).dtype
        for a, row_t in zip(cols[name].tolist(), theirs):
            assert values_equal(a, row_t[i], codes[i])


def test_bool_is_true_for_any_nonzero_byte():
    raw = bytes([0, 1, 2, 255])
    assert Struct("?").unpack(raw)["f0"].tolist() == [False, True, True, True]
    assert Struct("?").unpack_columns(raw)["f0"].tolist() == [False, True, True, True]
    assert Struct("?").unpack(raw)["f0"].view(np.uint8).tolist() == [0, 1, 1, 1]


def test_pascal_strings_unpack_like_struct():
    raw = b"\x05ab" + b"\x01xy" + b"\x00zz" + b"\xffqq"
    assert [r[0] for r in struct.iter_unpack("3p", raw)] == [b"ab", b"x", b"", b"qq"]
    assert Struct("3p").unpack(raw)["f0"].tolist() == [b"ab", b"x", b"", b"qq"]
    assert Struct("3p").unpack_columns(raw)["f0"].tolist() == [b"ab", b"x", b"", b"qq"]
    one = Struct("1p").unpack(b"\x05\x07")
    assert one["f0"].tolist() == [b"", b""] == [r[0] for r in struct.iter_unpack("1p", b"\x05\x07")]


def test_long_pascal_string_caps_at_255():
    data = bytes(range(256)) * 2
    raw = bytes([255]) + data[:299]
    assert Struct("300p").unpack(raw)["f0"][0] == struct.unpack("300p", raw)[0]


def test_unpack_returns_owned_memory_for_every_buffer_type(tmp_path):
    import mmap

    raw = struct.pack("<hi", 1, 2) * 3
    path = tmp_path / "r.bin"
    path.write_bytes(raw)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        from_mmap = Struct("<hi").unpack(mm)
        assert from_mmap.flags.owndata
    for buf in [raw, bytearray(raw), memoryview(raw), np.frombuffer(raw, np.uint8)]:
        assert Struct("<hi").unpack(buf).tolist() == [(1, 2)] * 3
    assert from_mmap.tolist() == [(1, 2)] * 3


def test_unpack_from_non_byte_ndarray_uses_its_bytes():
    arr = np.arange(4, dtype="<u2")
    assert Struct("<H").unpack(arr)["f0"].tolist() == [0, 1, 2, 3]


def test_count_and_offset():
    raw = b"HDR" + struct.pack("<5h", 1, 2, 3, 4, 5)
    s = Struct("<h")
    assert s.unpack(raw, offset=3)["f0"].tolist() == [1, 2, 3, 4, 5]
    assert s.unpack(raw, offset=5, count=2)["f0"].tolist() == [2, 3]
    assert s.unpack(raw, offset=13, count=0).shape == (0,)
    assert s.unpack_columns(raw, offset=7, count=3, fields="f0")["f0"].tolist() == [3, 4, 5]


@pytest.mark.parametrize(
    "kw,match",
    [
        ({}, r"^buffer: 13 bytes after offset 0 are not a whole number of 2-byte records"),
        ({"offset": -14}, "offset -14 out of range for 13-byte buffer"),
        ({"offset": -3, "count": 2}, "not enough data to unpack 4 bytes at offset -3"),
        ({"offset": 100}, "past the end"),
        ({"offset": 3, "count": 6}, r"requires a buffer of 12 bytes"),
        ({"offset": 3, "count": -1}, "count must be >= 0"),
        ({"offset": 3, "count": 10**18}, "requires a buffer"),
    ],
)
def test_bad_offset_and_count(kw, match):
    raw = b"HDR" + struct.pack("<5h", 1, 2, 3, 4, 5)
    with pytest.raises(Error, match=match):
        Struct("<h").unpack(raw, **kw)
    with pytest.raises(Error, match=match):
        Struct("<h").unpack_columns(raw, **kw)


def test_trailing_partial_record_names_its_offset():
    # the one whole-records wording (binrec.records.whole_records)
    expected = (
        r"^buffer: 37 bytes after offset 0 are not a whole number of 18-byte records "
        r"\(2 whole records and a partial record of 1 bytes at byte offset 36\)$"
    )
    with pytest.raises(Error, match=expected):
        Struct(">I10sf").unpack(bytes(37))


def test_non_buffer_is_a_type_error():
    with pytest.raises(TypeError, match="a bytes-like object is required, not 'list'"):
        Struct("<h").unpack([1, 2])


def test_non_contiguous_buffer_is_refused():
    arr = np.arange(10, dtype=np.uint8)[::2]
    with pytest.raises(Error, match="contiguous"):
        Struct("B").unpack(arr)


def test_unpack_columns_selects_only_requested_fields():
    s = Struct(">I10sf", "id name temp")
    raw = struct.pack(">I10sf", 1, b"a", 2.0)
    cols = s.unpack_columns(raw, fields=["temp", "id"])
    assert list(cols) == ["temp", "id"]
    with pytest.raises(Error, match="no field named 'nope'"):
        s.unpack_columns(raw, fields=["nope"])


def test_text_option_strips_and_decodes():
    s = Struct(">I10sf", "id name temp")
    raw = struct.pack(">I10sf", 1, b"north \x00\x00", 2.0) + struct.pack(">I10sf", 2, b"  roof", 3.0)
    cols = s.unpack_columns(raw, text="name")
    assert cols["name"].tolist() == ["north", "  roof"]
    rows = s.unpack(raw, text=["name"])
    assert rows["name"].tolist() == ["north", "  roof"] and rows["id"].tolist() == [1, 2]
    with pytest.raises(Error, match="not a string field"):
        s.unpack(raw, text="temp")
    bad = struct.pack(">I10sf", 1, b"caf\xe9", 2.0)
    with pytest.raises(Error, match=r"field 'name' \(row 0\): cannot decode"):
        s.unpack_columns(bad, text="name")
    assert s.unpack_columns(bad, text="name", encoding="latin-1")["name"].tolist() == ["caf\xe9"]


def test_unpack_into_out_array():
    s = Struct("<hd")
    raw = struct.pack("<hd", 1, 2.0) * 4
    out = np.empty(4, s.dtype)
    res = s.unpack(raw, out=out)
    assert res is out and out.tolist() == [(1, 2.0)] * 4
    col = np.empty(4, np.float64)
    cols = s.unpack_columns(raw, fields="f1", out={"f1": col})
    assert cols["f1"] is col and col.tolist() == [2.0] * 4
    with pytest.raises(Error, match="shape"):
        s.unpack(raw, out=np.empty(3, s.dtype))
    with pytest.raises(Error, match="dtype"):
        s.unpack(raw, out=np.empty(4, np.float64))


def test_complex_codes_match_numpy():
    vals = np.array([1 + 2j, -0.5 + 3.25j, complex("nan+infj")], dtype=np.complex128)
    raw = vals.astype(">c16").tobytes()
    assert Struct(">D").unpack(raw)["f0"].tobytes() == vals.tobytes()
    s = Struct("<F")
    assert s.pack([(v,) for v in vals.tolist()]) == vals.astype("<c8").tobytes()
    assert Struct(">F").unpack(vals.astype(">c8").tobytes())["f0"].tobytes() == vals.astype("c8").tobytes()
    with pytest.raises(Error, match="too large"):
        Struct("<F").pack([(1e300 + 0j,)])
    assert Struct("@bD").size == 16 + struct.calcsize("@bd") - 8
    if sys.version_info >= (3, 14):  # struct itself knows F and D
        assert Struct("@bF").size == struct.calcsize("@bF")


# -- pack against struct -----------------------------------------------------

SAMPLE_ROWS = {
    ">I10sf": [(0, b"north", 1.5), (4294967295, b"0123456789abc", -0.0), (7, b"", float("inf"))],
    "@ci": [(b"a", -1), (b"\x00", 2**31 - 1)],
    "<hbq": [(-32768, -128, -(2**63)), (32767, 127, 2**63 - 1)],
    "@nNP": [(-(2**63), 2**64 - 1, 0), (5, 6, 2**64 - 1)],
    "<5p": [(b"",), (b"abcd",), (b"abcdefgh",), (b"a\x00",)],
    ">300p": [(bytes(range(200)) * 2,), (b"x",)],
    "@1p": [(b"abc",)],
    "@e?d": [(0.5, True, 1e300), (65504.0, 0, -1e-300), (-0.0, 3, float("nan"))],
    "x3x2sx": [(b"ab",), (b"a",)],
    "3c": [(b"a", b"b", b"\x00")],
    "<3s0s": [(b"abc", b""), (b"ab\x00", b"ignored")],
}


@pytest.mark.parametrize("fmt", sorted(SAMPLE_ROWS))
def test_pack_matches_struct_bytes(fmt):
    rows = SAMPLE_ROWS[fmt]
    expected = b"".join(struct.pack(fmt, *row) for row in rows)
    assert Struct(fmt).pack(rows) == expected
    assert binrec.pack(fmt, rows) == expected


@pytest.mark.parametrize("fmt", sorted(SAMPLE_ROWS))
def test_pack_structured_array_and_columns(fmt):
    s = Struct(fmt)
    rows = SAMPLE_ROWS[fmt]
    arr = s.unpack(s.pack(rows))
    # the oracle: struct.pack on the same values as Python objects
    expected = b"".join(struct.pack(fmt, *row) for row in arr.tolist()) if "c" not in fmt else None
    if expected is not None:
        assert s.pack(arr) == expected
        assert s.pack({n: arr[n] for n in s.names}) == expected
        swapped = arr.astype(arr.dtype.newbyteorder(">" if sys.byteorder == "little" else "<"))
        assert s.pack(swapped) == expected


def test_pack_zero_rows():
    assert Struct(">I10sf").pack([]) == b""
    assert Struct(">I10sf").pack(np.empty(0, Struct(">I10sf").dtype)) == b""


def test_pack_2d_numeric_array():
    a = np.array([[1, 2], [3, 4]], dtype=np.int64)
    assert Struct(">hq").pack(a) == struct.pack(">hq", 1, 2) + struct.pack(">hq", 3, 4)


INT_CODES = [("b", 1), ("B", 1), ("h", 2), ("H", 2), ("i", 4), ("I", 4), ("l", 4), ("L", 4), ("q", 8), ("Q", 8)]


@pytest.mark.parametrize("order,code", [(o, c) for o in "<>@" for c, _ in INT_CODES] + [("@", "n"), ("@", "N")])
def test_integer_range_checks_match_struct(order, code):
    size = struct.calcsize(order + code)
    if code.islower():
        lo, hi = -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
    else:
        lo, hi = 0, (1 << (8 * size)) - 1
    fmt = order + code
    s = Struct(fmt)
    assert s.pack([(lo,), (hi,)]) == struct.pack(fmt, lo) + struct.pack(fmt, hi)
    for bad in (lo - 1, hi + 1):
        with pytest.raises(struct.error):
            struct.pack(fmt, bad)
        with pytest.raises(
            Error, match=rf"field 'f0' \(format '{code}', row 1\): '{code}' format requires {lo} <= number <= {hi}"
        ):
            s.pack([(0,), (bad,)])
    # numpy columns of a wider type: checked, never wrapped
    wide = np.array([0, hi], dtype=np.uint64 if lo == 0 else np.int64)
    if hi < np.iinfo(wide.dtype).max:
        wide = np.array([0, hi + 1], dtype=wide.dtype)
        with pytest.raises(Error, match=r"row 1"):
            s.pack({"f0": wide})


def test_pointer_code_accepts_negative_as_struct():
    assert Struct("@P").pack([(-1,)]) == struct.pack("@P", -1)
    with pytest.raises(Error):
        Struct("@P").pack([(2**64,)])


def test_integers_accept_index_objects_and_reject_floats():
    class Idx:
        def __index__(self):
            return 7

    s = Struct("<i")
    assert s.pack([(np.int16(5),), (Idx(),), (True,)]) == struct.pack("<3i", 5, 7, 1)
    for bad in (1.0, "1", None, np.float64(1.0), b"1"):
        with pytest.raises(struct.error):
            struct.pack("<i", bad)
        with pytest.raises(Error, match=r"row 1\): required argument is not an integer"):
            s.pack([(1,), (bad,)])
    with pytest.raises(Error, match="not an integer"):
        s.pack({"f0": np.array([1.0, 2.0])})


def test_float_overflow_standard_raises_native_packs_inf():
    assert Struct("@f").pack([(1e300,)]) == struct.pack("@f", 1e300)
    assert Struct("@f").unpack(Struct("@f").pack([(1e300,)]))["f0"][0] == np.inf
    for fmt in ("<f", ">f", "=f", "<e", "@e"):
        with pytest.raises((OverflowError, struct.error)):
            struct.pack(fmt, 1e300)
        with pytest.raises(Error, match=r"row 1\): float too large to pack with"):
            Struct(fmt).pack([(0.0,), (1e300,)])
    # infinity itself is fine everywhere
    assert Struct("<e").pack([(float("-inf"),)]) == struct.pack("<e", float("-inf"))


def test_half_float_rounds_half_to_even_like_struct():
    values = [2049.0, 2051.0, 65519.99, 1e-8, 5.960464477539063e-08, 2.980232238769531e-08, -0.0, 0.1, 1 / 3]
    expected = b"".join(struct.pack("<e", v) for v in values)
    assert Struct("<e").pack([(v,) for v in values]) == expected
    with pytest.raises(Error):
        Struct("<e").pack([(65520.0,)])


def test_float_fields_accept_ints_and_reject_strings():
    s = Struct(">d")
    assert s.pack([(1,), (10**20,), (np.int8(3),)]) == struct.pack(">3d", 1, 10**20, 3)
    for bad in ("1.0", b"x", None, 1j, 10**400):
        with pytest.raises(struct.error):
            struct.pack(">d", bad)
        with pytest.raises(Error, match="not a float"):
            s.pack([(bad,)])


def test_bool_packs_truthiness():
    rows = [(0,), (2,), ([],), ([1],), (float("nan"),), ("",), ("x",)]
    assert Struct("?").pack(rows) == b"".join(struct.pack("?", *r) for r in rows)
    raw_bools = np.frombuffer(bytes([0, 1, 7]), dtype=bool)
    assert Struct("?").pack({"f0": raw_bools}) == b"\x00\x01\x01"


def test_char_and_string_type_checks():
    with pytest.raises(Error, match="char format requires a bytes object of length 1"):
        Struct("c").pack([(b"ab",)])
    with pytest.raises(Error, match="char format"):
        Struct("c").pack([(1,)])  # str values are encoded since issue 13 (tests/test_user_input.py)
    with pytest.raises(Error, match=r"argument for 's' must be a bytes object"):
        Struct("3s").pack([(1.5,)])
    with pytest.raises(Error, match=r"argument for 'p' must be a bytes object"):
        Struct("3p").pack([(b"a",), (1.5,)])
    assert Struct("3s").pack([(bytearray(b"abcd"),)]) == struct.pack("3s", bytearray(b"abcd"))


def test_wrong_row_width_and_missing_columns():
    s = Struct("<hh", "a b")
    with pytest.raises(Error, match=r"row 1: pack expected 2 items for packing \(got 3\)"):
        s.pack([(1, 2), (1, 2, 3)])
    with pytest.raises(Error, match=r"missing \['b'\]"):
        s.pack({"a": [1]})
    with pytest.raises(Error, match=r"unknown \['c'\]"):
        s.pack({"a": [1], "b": [2], "c": [3]})
    with pytest.raises(Error, match="has 2 values"):
        s.pack({"a": [1], "b": [2, 3]})
    with pytest.raises(TypeError):
        s.pack(5)


def test_pack_into_writes_nothing_on_error():
    s = Struct(">Hb")
    buf = bytearray(b"\xaa" * 12)
    with pytest.raises(Error, match="row 2"):
        s.pack_into(buf, 0, [(1, 1), (2, 2), (3, 300)])
    assert buf == bytearray(b"\xaa" * 12)
    with pytest.raises(Error, match="requires a buffer of at least 15 bytes"):
        s.pack_into(buf, 6, [(1, 1), (2, 2), (3, 3)])
    assert buf == bytearray(b"\xaa" * 12)
    assert s.pack_into(buf, 3, [(1, 1), (2, 2), (3, 3)]) == 9
    assert bytes(buf) == b"\xaa" * 3 + struct.pack(">HbHbHb", 1, 1, 2, 2, 3, 3)


def test_pack_into_zeroes_pad_bytes_like_struct():
    buf = bytearray(b"\xff" * 8)
    Struct("@ci").pack_into(buf, 0, [(b"a", 1)])
    expected = bytearray(b"\xff" * 8)
    struct.pack_into("@ci", expected, 0, b"a", 1)
    assert buf == expected


def test_pack_into_read_only_buffer():
    with pytest.raises(Error, match="read-only"):
        Struct("B").pack_into(b"\x00", 0, [(1,)])


def test_module_level_cache_returns_same_struct():
    from binrec.records import _struct_for

    assert _struct_for(">I10sf", ["a", "b", "c"]) is _struct_for(">I10sf", ("a", "b", "c"))
    assert binrec.unpack("<h", b"\x01\x00", names="x")["x"].tolist() == [1]
    buf = bytearray(4)
    assert binrec.pack_into(">h", buf, 2, [(258,)]) == 2 and bytes(buf) == b"\x00\x00\x01\x02"
    assert binrec.unpack_columns("<hh", b"\x01\x00\x02\x00")["f1"].tolist() == [2]


def test_string_fields_round_trip_bytes_but_drop_trailing_nuls_on_read():
    raw = struct.pack("4s", b"ab\x00\x00")
    arr = Struct("4s").unpack(raw)
    assert arr["f0"][0] == b"ab"  # numpy S semantics (documented)
    assert arr.tobytes() == raw  # the stored bytes are intact
    assert Struct("4s").pack(arr) == raw


# -- struct parity: exception classes, format type, negative offsets ----------
# The oracle is the struct module of the running Python: the same call must
# raise an exception that `except <struct's class>` catches, and binrec's
# error must still be a binrec.Error.


def struct_exception(func, *args):
    """The exception ``func(*args)`` raises (it must raise)."""
    with pytest.raises(Exception) as info:
        func(*args)
    return info.value


@pytest.mark.parametrize(
    "fmt,value",
    [(">f", 1e300), ("<f", -3.5e38), ("=f", 1e39), ("<e", 65520.0), (">e", -1e300), ("@e", 1e10)],
)
def test_float_too_large_is_an_overflow_error_as_in_struct(fmt, value):
    assert isinstance(struct_exception(struct.pack, fmt, value), OverflowError)
    for values in ([(value,)], {"f0": np.array([0.0, value])}, {"f0": [value]}):
        with pytest.raises(OverflowError) as info:
            Struct(fmt).pack(values)
        assert isinstance(info.value, Error)
        assert "float too large to pack with" in str(info.value)


def test_complex_float_too_large_is_an_overflow_error_like_f():
    with pytest.raises(OverflowError, match="float too large to pack with F format"):
        Struct("<F").pack([(complex(1.0, 1e300),)])
    with pytest.raises(binrec.FloatOverflowError):
        Struct(">F").pack({"f0": np.array([1e300 + 0j])})
    assert Struct("@F").pack([(1e300,)]) == struct.pack("@ff", math.inf, 0.0)  # native stores inf, as @f


def test_native_f_still_stores_infinity_like_struct():
    assert Struct("@f").pack([(1e300,)]) == struct.pack("@f", 1e300)


def test_float_conversion_errors_become_struct_errors():
    class Exploding:
        def __float__(self):
            raise ZeroDivisionError

    assert type(struct_exception(struct.pack, "<d", Exploding())) is struct.error
    with pytest.raises(Error, match="required argument is not a float"):
        Struct("<d").pack([(Exploding(),)])
    with pytest.raises(Error, match="required argument is not a complex"):
        Struct("<D").pack([(Exploding(),)])


def test_pack_into_read_only_or_strided_target_is_a_type_error_as_in_struct():
    read_only = memoryview(bytearray(4)).toreadonly()
    strided = memoryview(bytearray(8))[::2]
    for target in (b"\x00\x00", read_only, strided):
        assert isinstance(struct_exception(struct.pack_into, "<b", target, 0, 1), TypeError)
        with pytest.raises(TypeError) as info:
            Struct("<b").pack_into(target, 0, [(1,)])
        assert isinstance(info.value, Error)


def test_strided_source_is_a_buffer_error_as_in_struct():
    strided = memoryview(bytes(8))[::2]
    assert isinstance(struct_exception(struct.unpack, "<i", strided), BufferError)
    with pytest.raises(BufferError) as info:
        Struct("<i").unpack(strided)
    assert isinstance(info.value, Error)
    with pytest.raises(binrec.BufferContiguityError):
        Struct("<i").unpack_columns(strided)


def test_non_ascii_str_format_is_a_unicode_encode_error_as_in_struct():
    assert isinstance(struct_exception(struct.calcsize, "i\xe9"), UnicodeEncodeError)
    with pytest.raises(UnicodeEncodeError) as info:
        Struct("i\xe9")
    assert isinstance(info.value, Error)
    assert "position 1" in str(info.value)


def test_non_ascii_bytes_format_is_a_bad_char_as_in_struct():
    assert type(struct_exception(struct.calcsize, b"i\xff")) is struct.error
    with pytest.raises(Error, match="bad char in struct format"):
        Struct(b"i\xff")


@pytest.mark.parametrize("fmt", ["\0", "2\0i", b"\0", "<i\0"])
def test_embedded_null_character_is_refused_in_struct_words(fmt):
    assert "embedded null character" in str(struct_exception(struct.calcsize, fmt))
    with pytest.raises(Error, match="embedded null character"):
        Struct(fmt)


@pytest.mark.parametrize("fmt", ["=n", "<N", "!P", "Z", "<iy"])
def test_bad_format_code_says_bad_char_as_struct(fmt):
    assert "bad char in struct format" in str(struct_exception(struct.calcsize, fmt))
    with pytest.raises(Error, match="bad char in struct format"):
        Struct(fmt)


@pytest.mark.parametrize("fmt", [b"=i2H", b"<hd", "=i2H"])
def test_format_attribute_is_str_as_in_struct(fmt):
    assert type(struct.Struct(fmt).format) is str
    s = Struct(fmt)
    assert type(s.format) is str
    assert s.format == struct.Struct(fmt).format
    assert s.size == struct.calcsize(fmt)
    assert Struct(s.format) == s


def test_format_of_another_type_is_a_type_error_as_in_struct():
    for fmt in (bytearray(b"<h"), 5, None):
        assert isinstance(struct_exception(struct.Struct, fmt), TypeError)
        with pytest.raises(TypeError, match="must be a str or bytes"):
            Struct(fmt)


def struct_outcome(func, *args, **kwargs):
    """``func``'s result, or ("error", message) for a struct.error."""
    try:
        return func(*args, **kwargs)
    except struct.error as exc:
        return ("error", str(exc))


def first_record(func, *args, **kwargs):
    """The first record of an unpack result (array or columns) as a tuple."""
    result = func(*args, **kwargs)
    if isinstance(result, dict):
        return tuple(col[0].item() for col in result.values())
    return result[0].item()


@pytest.mark.parametrize("fmt", ["<I", ">hb", "<B", "@ic"])
def test_unpack_offset_matches_struct_unpack_from(fmt):
    """Every offset, negative ones included, against struct.unpack_from:
    the same record, or the same error message."""
    buf = bytearray(range(1, 11))
    s = Struct(fmt)
    for offset in range(-14, 14):
        expected = struct_outcome(struct.unpack_from, fmt, buf, offset)
        got = struct_outcome(first_record, s.unpack, buf, offset=offset, count=1)
        cols = struct_outcome(first_record, s.unpack_columns, buf, offset=offset, count=1)
        if expected[0] == "error" and offset >= 0:
            assert got[0] == cols[0] == "error", offset  # binrec's own wording for positive offsets
        else:
            assert got == cols == expected, offset


@pytest.mark.parametrize("fmt", ["<I", ">hb", "<B", "@ic"])
def test_pack_into_offset_matches_struct_pack_into(fmt):
    values = (1, 2) if fmt == ">hb" else ((7, b"x") if fmt == "@ic" else (9,))
    for offset in range(-14, 14):
        theirs, ours = bytearray(b"\xee" * 10), bytearray(b"\xee" * 10)
        expected = struct_outcome(struct.pack_into, fmt, theirs, offset, *values)
        got = struct_outcome(Struct(fmt).pack_into, ours, offset, [values])
        if expected is None:
            assert got == struct.calcsize(fmt), offset
        else:
            assert got == expected, offset
        assert ours == theirs, offset


def test_negative_offset_counts_from_the_end_for_many_records():
    raw = b"HDR" + struct.pack("<5h", 1, 2, 3, 4, 5)
    s = Struct("<h")
    assert s.unpack(raw, offset=-4)["f0"].tolist() == [4, 5]
    assert s.unpack(raw, offset=-10, count=2)["f0"].tolist() == [1, 2]
    assert s.unpack_columns(raw, offset=-6)["f0"].tolist() == [3, 4, 5]
    assert binrec.unpack("<h", raw, offset=-2)["f0"].tolist() == [5]
    buf = bytearray(8)
    assert s.pack_into(buf, -4, [(7,), (8,)]) == 4
    assert bytes(buf) == bytes(4) + struct.pack("<2h", 7, 8)
    with pytest.raises(Error, match="no space to pack 6 bytes at offset -4"):
        s.pack_into(buf, -4, [(7,), (8,), (9,)])
    with pytest.raises(Error, match="not enough data to unpack 6 bytes at offset -4"):
        s.unpack(raw, offset=-4, count=3)
    with pytest.raises(Error, match="offset -14 out of range for 13-byte buffer"):
        s.unpack(raw, offset=-14)


def test_resolve_offset_is_shared_by_name():
    """files.iter_unpack over a buffer reuses it: keep the name and meaning."""
    from binrec.records import resolve_offset

    assert resolve_offset(-4, 10, 4) == 6
    assert resolve_offset(3, 10) == 3
    assert resolve_offset(-10, 10) == 0
    with pytest.raises(Error, match="no space to pack 4 bytes at offset -2"):
        resolve_offset(-2, 10, 4, packing=True)
    with pytest.raises(TypeError, match="offset must be an integer"):
        resolve_offset(1.0, 10)


# -- values struct refuses for s/c fields, zero-width text, threads= -----------


@pytest.mark.parametrize(
    "fmt,rows",
    [
        ("<4s", [(b"ab",), (12,)]),
        ("<4s", [(b"ab",), (True,)]),
        ("<4s", [(b"ab",), (1.5,)]),  # a str is encoded since issue 13 (tests/test_user_input.py)
        ("<3p", [(b"ab",), (7,)]),
        ("<c", [(b"",)]),
        ("<c", [(b"a",), (b"bc",)]),
        ("<c", [(b"a",), (1,)]),
        ("<c", [(bytearray(b"a"),)]),
    ],
)
def test_pack_refuses_non_bytes_in_string_fields_as_struct(fmt, rows):
    for row in rows:
        try:
            struct.pack(fmt, *row)
        except struct.error as exc:
            message = str(exc)
            break
    else:
        pytest.fail("struct accepted every row: not a refusal case")
    s = Struct(fmt)
    for values in (rows, {"f0": [r[0] for r in rows]}):
        with pytest.raises(Error) as info:
            s.pack(values)
        assert message in str(info.value)


def test_pack_accepts_what_struct_accepts_in_string_fields():
    rows = [(b"ab", b"x"), (bytearray(b"cdefg"), b"\x00"), (b"", b"\xff")]
    expected = b"".join(struct.pack("<4sc", *row) for row in rows)
    assert Struct("<4sc").pack(rows) == expected
    assert Struct("<4sc").pack({"f0": [r[0] for r in rows], "f1": [r[1] for r in rows]}) == expected


@pytest.mark.parametrize("fmt", ["<B0s", "<B0p", "<B1p", "@B0sB", "<0sB1p"])
def test_text_of_a_zero_width_field_is_empty(fmt):
    """struct unpacks 0s, 0p and 1p as b''; as text that is ''."""
    n = struct.calcsize(fmt)
    raw = bytes(range(65, 65 + 3 * n))
    s = Struct(fmt)
    empty = [f.name for f in s.layout.fields if f.native.itemsize == 0]
    rows = s.unpack(raw, text=empty)
    cols = s.unpack_columns(raw, text=empty)
    for name in empty:
        assert rows[name].tolist() == cols[name].tolist() == ["", "", ""]
    # 0p lays out as 0s; struct before 3.13 fails on 0p itself (SystemError)
    oracle = fmt.replace("0p", "0s")
    expected = [tuple(v for v in rec if not isinstance(v, bytes)) for rec in struct.iter_unpack(oracle, raw)]
    others = [f.name for f in s.layout.fields if f.name not in empty]
    assert [tuple(r[name].item() for name in others) for r in rows] == expected


@pytest.mark.parametrize("threads", [-1, "2", 1.5])
def test_pack_validates_threads_on_every_path(threads):
    s = Struct("<i")
    for values in ({"f0": np.arange(3)}, [(1,), (2,)], np.zeros(2, dtype=s.dtype)):
        with pytest.raises((Error, TypeError), match="threads"):
            s.pack(values, threads=threads)


# -- value conversion: the row and field an error names, and the Python-object
# paths for P, complex and bool (issue 11, mutation testing of _coerce.py).
# Oracle: struct, packing the same values one row at a time.  For F and D,
# which struct learned only in Python 3.14, the oracle is struct's pair of
# floats ('ff' / 'dd') for (real, imag), the layout Python 3.14 gives them.


def _first_row_struct_refuses(fmt: str, rows: list[tuple]) -> int:
    for i, row in enumerate(rows):
        try:
            struct.pack(fmt, *row)
        except (struct.error, OverflowError, TypeError):
            return i
    raise AssertionError("struct accepts every row")


def _complex_oracle(fmt: str, values) -> bytes:
    pair = fmt[0] + ("ff" if fmt[1] == "F" else "dd")
    return b"".join(struct.pack(pair, complex(v).real, complex(v).imag) for v in values)


def test_range_error_names_the_first_bad_row_and_its_field_from_python_ints():
    rows = [(1, 0), (2, 255), (3, 7), (4, 256), (5, 9), (6, -1)]
    first = _first_row_struct_refuses("<hB", rows)
    assert first == 3
    with pytest.raises(Error, match=r"^field 'b' \(format 'B', row 3\): 'B' format requires 0 <= number <= 255$"):
        Struct("<hB", "a b").pack(rows)


def test_range_error_names_the_first_bad_row_from_a_numpy_column():
    # one value below the range (row 2), one above it (row 4): the first wins
    col = np.array([0, 100, -200, 5, 200, -300], dtype=np.int64)
    rows = [(int(v),) for v in col]
    first = _first_row_struct_refuses("<b", rows)
    assert first == 2
    with pytest.raises(Error, match=r"^field 'f0' \(format 'b', row 2\): 'b' format requires -128 <= number <= 127$"):
        Struct("<b").pack({"f0": col})


def test_range_error_above_the_range_only_names_its_row_from_a_numpy_column():
    col = np.array([0, 1, 2, 70000, 3], dtype=np.int32)
    assert _first_row_struct_refuses("<H", [(int(v),) for v in col]) == 3
    with pytest.raises(Error, match=r"^field 'f0' \(format 'H', row 3\): 'H' format requires 0 <= number <= 65535$"):
        Struct("<H").pack({"f0": col})


def test_unsigned_numpy_column_too_large_for_a_signed_field_names_its_row():
    col = np.array([1, 2, 2**63, 5], dtype=np.uint64)
    assert _first_row_struct_refuses("<q", [(int(v),) for v in col]) == 2
    with pytest.raises(Error, match=r"\(format 'q', row 2\): 'q' format requires"):
        Struct("<q").pack({"f0": col})


def test_non_integer_error_names_its_row_and_field():
    rows = [(0, 1), (1, 2), (2, "3"), (3, 4.0)]
    assert _first_row_struct_refuses("<ii", rows) == 2
    with pytest.raises(Error, match=r"^field 'y' \(format 'i', row 2\): required argument is not an integer$"):
        Struct("<ii", "x y").pack(rows)


def _numpy_bool_has_index() -> bool:
    """Whether this numpy still gives numpy.bool_ its deprecated __index__."""
    import operator
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            operator.index(np.bool_(True))
        except TypeError:
            return False
    return True


def test_numpy_bool_scalar_in_an_integer_column_of_objects_is_refused_at_its_row():
    # oracle: struct refuses numpy.bool_ for integer codes where numpy.bool_
    # has no __index__ (numpy 2.4 here).  An older numpy (2.2.4, Debian 13's,
    # in the s390x run) still has a deprecated one: struct then packs the
    # value, only through numpy's DeprecationWarning, while binrec refuses on
    # every numpy, as struct does once the deprecation has expired
    if _numpy_bool_has_index():
        with pytest.warns(DeprecationWarning, match="np.bool"):
            assert struct.pack("<i", np.bool_(True)) == struct.pack("<i", 1)
    else:
        with pytest.raises(struct.error):
            struct.pack("<i", np.bool_(True))
    column = np.array([1, np.bool_(True), 3], dtype=object)
    with pytest.raises(Error, match=r"row 1\): required argument is not an integer"):
        Struct("<i").pack({"f0": column})


def test_bool_numpy_column_packs_into_an_integer_field_as_0_and_1():
    assert Struct("<h").pack({"f0": np.array([True, False, True])}) == struct.pack("<3h", 1, 0, 1)


@pytest.mark.parametrize("as_array", [False, True], ids=["python-floats", "numpy-float64"])
def test_float_overflow_names_the_first_row_that_overflows(as_array):
    values = [0.0, 1.0, 1e300, 2.0, -1e300]
    rows = [(v,) for v in values]
    assert _first_row_struct_refuses("<f", rows) == 2
    column = np.array(values) if as_array else values
    with pytest.raises(binrec.FloatOverflowError, match=r"^field 'f0' \(format 'f', row 2\): float too large"):
        Struct("<f").pack({"f0": column})


def test_non_float_error_names_its_row():
    rows = [(1.5,), (2,), ("3",)]
    assert _first_row_struct_refuses("<d", rows) == 2
    with pytest.raises(Error, match=r"^field 'f0' \(format 'd', row 2\): required argument is not a float$"):
        Struct("<d").pack(rows)


def test_pointer_from_python_ints_packs_like_struct_across_its_whole_range():
    values = [-(2**63), -1, 0, 1, 2**63, 2**64 - 1]
    expected = b"".join(struct.pack("@P", v) for v in values)
    assert Struct("@P").pack([(v,) for v in values]) == expected


@pytest.mark.parametrize("bad", [-(2**63) - 1, 2**64])
def test_pointer_out_of_range_from_python_ints_names_its_row(bad):
    with pytest.raises(struct.error):
        struct.pack("@P", bad)
    lo, hi = -(2**63), 2**64 - 1
    if struct.calcsize("@P") != 8:
        pytest.skip("64-bit pointers assumed by the bounds")
    with pytest.raises(Error, match=rf"^field 'f0' \(format 'P', row 1\): 'P' format requires {lo} <= number <= {hi}$"):
        Struct("@P").pack([(0,), (bad,), (1,)])


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint64, np.uint8])
def test_pointer_from_numpy_integer_columns_packs_like_struct(dtype):
    info = np.iinfo(dtype)
    values = [info.min, 0, 1, info.max]
    expected = b"".join(struct.pack("@P", v) for v in values)
    assert Struct("@P").pack({"f0": np.array(values, dtype=dtype)}) == expected


@pytest.mark.parametrize("fmt", ["<F", ">D", "@F"])
def test_complex_from_python_objects_packs_as_struct_packs_real_and_imag(fmt):
    class HasComplex:
        def __complex__(self):
            return 1.5 - 2.25j

    class HasFloat:
        def __float__(self):
            return -0.75

    class HasIndex:
        def __index__(self):
            return 9

    values = [1, 2.5, 3 + 4j, True, np.float32(1.5), np.complex64(0.5j), HasComplex(), HasFloat(), HasIndex()]
    assert Struct(fmt).pack([(v,) for v in values]) == _complex_oracle(fmt, values)


@pytest.mark.parametrize("fmt", ["<F", ">D"])
def test_complex_from_numpy_columns_packs_as_struct_packs_real_and_imag(fmt):
    for column in (np.array([1, -2, 3], dtype=np.int16), np.array([0.5, -1.25]), np.array([1 + 2j, -3.5j])):
        assert Struct(fmt).pack({"f0": column}) == _complex_oracle(fmt, column.tolist())


@pytest.mark.parametrize("bad", ["1", b"1", bytearray(b"1"), None, object()])
def test_complex_refuses_what_struct_refuses_for_floats_and_names_the_row(bad):
    with pytest.raises(struct.error):
        struct.pack("<d", bad)  # the same objects struct refuses as a float
    with pytest.raises(Error, match=r"^field 'f0' \(format 'F', row 1\): required argument is not a complex$"):
        Struct("<F").pack([(1j,), (bad,), (2j,)])


def test_complex_conversion_errors_become_struct_errors():
    class Broken:
        def __complex__(self):
            raise ValueError("no")

    with pytest.raises(Error, match=r"row 0\): required argument is not a complex"):
        Struct("<D").pack([(Broken(),)])


@pytest.mark.parametrize("part", ["real", "imag"])
def test_complex_float_too_large_names_its_row_and_part(part):
    big = complex(1e300, 0) if part == "real" else complex(0, 1e300)
    with pytest.raises((OverflowError, struct.error)):
        struct.pack("<f", getattr(big, part))  # the float struct would refuse
    with pytest.raises(binrec.FloatOverflowError, match=r"^field 'f0' \(format 'F', row 2\): float too large"):
        Struct("<F").pack([(0j,), (1 + 1j,), (big,), (big,)])


def test_native_complex_float_too_large_stores_infinity_like_native_f():
    big = complex(1e300, -1e300)
    assert Struct("@F").pack([(big,)]) == struct.pack("@ff", 1e300, -1e300)


def test_bool_from_python_objects_packs_truthiness_like_struct():
    class Truthy:
        def __bool__(self):
            return True

    class Empty:
        def __len__(self):
            return 0

    values = [None, 0, 0.0, -0.0, 1, -1, "", "x", b"", b"\0", [], [0], {}, Truthy(), Empty(), 0j, 1j]
    values += [np.float64("nan"), np.int8(0), np.int8(3), np.bool_(False)]
    expected = b"".join(struct.pack("?", v) for v in values)
    assert Struct("?").pack([(v,) for v in values]) == expected


@pytest.mark.parametrize(
    "column",
    [
        np.array([0, 2, -1, 0], dtype=np.int32),
        np.array([0.0, 0.5, np.nan, -0.0]),
        np.array([0j, 1j, 0j]),
        np.array([b"", b"a", b"\0"]),
        np.array(["", "a"]),
    ],
    ids=["int32", "float64", "complex", "bytes", "str"],
)
def test_bool_from_numpy_columns_packs_truthiness_like_struct(column):
    expected = b"".join(struct.pack("?", v) for v in column.tolist())
    assert Struct("?").pack({"f0": column}) == expected


def test_bool_conversion_error_propagates_as_struct_lets_it():
    class Broken:
        def __bool__(self):
            raise ZeroDivisionError("no truth")

    with pytest.raises(ZeroDivisionError):
        struct.pack("?", Broken())
    with pytest.raises(ZeroDivisionError):
        Struct("?").pack([(True,), (Broken(),)])


def test_char_error_names_the_first_bad_row():
    rows = [(b"a",), (b"b",), (b"cd",), (5,)]
    assert _first_row_struct_refuses("c", rows) == 2
    with pytest.raises(
        Error, match=r"^field 'f0' \(format 'c', row 2\): char format requires a bytes object of length 1$"
    ):
        Struct("c").pack(rows)


def test_char_error_names_the_first_bad_row_of_a_numpy_column():
    column = np.array([b"a", b"", b"bc"], dtype="S2")
    # struct refuses b"" (row 1) and b"bc" (row 2)
    assert _first_row_struct_refuses("c", [(v,) for v in [b"a", b"", b"bc"]]) == 1
    with pytest.raises(Error, match=r"\(format 'c', row 1\): char format requires"):
        Struct("c").pack({"f0": column})


def test_char_from_a_numpy_column_of_non_bytes_is_refused():
    with pytest.raises(struct.error):
        struct.pack("c", 1)
    with pytest.raises(Error, match=r"\(format 'c', row 0\): char format requires"):
        Struct("c").pack({"f0": np.array([1, 2])})


def test_bytes_error_names_the_first_bad_row_and_the_string_length():
    rows = [(b"ab",), (bytearray(b"c"),), (4.5,), (4,)]
    assert _first_row_struct_refuses("3s", rows) == 2
    with pytest.raises(Error, match=r"^field 'f0' \(format '3s', row 2\): argument for 's' must be a bytes object$"):
        Struct("3s").pack(rows)


def test_bytes_from_a_numpy_column_of_numbers_is_refused():
    with pytest.raises(struct.error):
        struct.pack("3s", 5)
    with pytest.raises(Error, match=r"\(format '3s', row 0\): argument for 's' must be a bytes object"):
        Struct("3s").pack({"f0": np.array([5, 6])})


def test_pascal_error_names_its_row_and_length():
    rows = [(b"a",), (b"bb",), (4.5,)]
    assert _first_row_struct_refuses("4p", rows) == 2
    with pytest.raises(Error, match=r"^field 'f0' \(format '4p', row 2\): argument for 'p' must be a bytes object$"):
        Struct("4p").pack(rows)


@pytest.mark.parametrize("fmt", ["5s", "3p", "1p", "1s"])
def test_bytes_objects_pack_truncated_or_padded_like_struct(fmt):
    values = [b"", b"a", b"abcdefgh", bytearray(b"xy\0"), b"\0\0"]
    expected = b"".join(struct.pack(fmt, v) for v in values)
    assert Struct(fmt).pack([(v,) for v in values]) == expected


def test_a_column_that_is_not_one_dimensional_is_refused_with_its_field():
    with pytest.raises(struct.error):
        struct.pack("<i", [0, 0])  # what each row would hold
    with pytest.raises(Error, match=r"^field 'f0': expected a 1-D column, got an array of shape \(2, 2\)$"):
        Struct("<i").pack({"f0": np.zeros((2, 2), dtype=np.int32)})


def test_ragged_python_values_are_judged_one_by_one_as_struct_does():
    rows = [(1.0,), ([1, 2],), (3.0,)]
    assert _first_row_struct_refuses("<d", rows) == 1
    with pytest.raises(Error, match=r"\(format 'd', row 1\): required argument is not a float"):
        Struct("<d").pack(rows)


@pytest.mark.parametrize("fmt", ["<d", "<f", "<e"])
def test_long_double_column_packs_through_double_like_struct(fmt):
    column = np.array([1.5, -2.25, 1 / 3], dtype=np.longdouble)
    expected = b"".join(struct.pack(fmt, float(v)) for v in column)
    assert Struct(fmt).pack({"f0": column}) == expected


def test_float32_column_packs_into_half_floats_like_struct():
    column = np.array([65504.0, 1e-8, 0.1, -2.5, 5.9604645e-08], dtype=np.float32)
    expected = b"".join(struct.pack("<e", float(v)) for v in column)
    assert Struct("<e").pack({"f0": column}) == expected


def test_float32_column_too_large_for_half_floats_names_its_row():
    column = np.array([1.0, 70000.0, 2.0], dtype=np.float32)
    assert _first_row_struct_refuses("<e", [(float(v),) for v in column]) == 1
    with pytest.raises(
        binrec.FloatOverflowError, match=r"\(format 'e', row 1\): float too large to pack with e format"
    ):
        Struct("<e").pack({"f0": column})


@pytest.mark.parametrize(
    "column",
    [np.array([0, 2**64 - 1, 2**53 + 1], dtype=np.uint64), np.array([True, False]), np.array([0.5, -1.0], np.float16)],
    ids=["uint64", "bool", "float16"],
)
def test_numeric_columns_pack_into_double_fields_like_struct(column):
    expected = b"".join(struct.pack("<d", v) for v in column.tolist())
    assert Struct("<d").pack({"f0": column}) == expected


def test_char_refuses_bytearray_like_struct():
    with pytest.raises(struct.error):
        struct.pack("c", bytearray(b"a"))
    with pytest.raises(Error, match=r"\(format 'c', row 1\): char format requires a bytes object of length 1"):
        Struct("c").pack([(b"a",), (bytearray(b"b"),)])


def test_char_from_one_byte_bytes_packs_like_struct():
    values = [b"a", b"\0", b"\xff"]
    assert Struct("c").pack([(v,) for v in values]) == b"".join(struct.pack("c", v) for v in values)


def test_negative_python_objects_in_signed_fields_pack_like_struct():
    # values numpy cannot type alone (an __index__ object) are judged one by one
    class Idx:
        def __init__(self, n):
            self.n = n

        def __index__(self):
            return self.n

    values = [Idx(-5), -3, Idx(-32768), 7]
    expected = b"".join(struct.pack("<h", v) for v in values)
    assert Struct("<h").pack([(v,) for v in values]) == expected


@pytest.mark.parametrize("column", [np.array([1.0, 2.0]), np.array(["1", "2"])], ids=["float64", "str"])
def test_non_integer_numpy_column_is_refused_at_row_0(column):
    with pytest.raises(struct.error):
        struct.pack("<i", column.tolist()[0])
    with pytest.raises(Error, match=r"^field 'f0' \(format 'i', row 0\): required argument is not an integer$"):
        Struct("<i").pack({"f0": column})


def test_string_numpy_column_is_refused_for_a_float_field_at_row_0():
    with pytest.raises(struct.error):
        struct.pack("<d", "1.5")
    with pytest.raises(Error, match=r"^field 'f0' \(format 'd', row 0\): required argument is not a float$"):
        Struct("<d").pack({"f0": np.array(["1.5", "2"])})


def test_string_numpy_column_is_refused_for_a_complex_field_at_row_0():
    with pytest.raises(struct.error):
        struct.pack("<d", "1.5")  # struct's rule for the real part
    with pytest.raises(Error, match=r"^field 'f0' \(format 'D', row 0\): required argument is not a complex$"):
        Struct("<D").pack({"f0": np.array(["1.5", "2"])})


@pytest.mark.parametrize("order", ["<", ">"])
def test_float32_columns_keep_their_bits_in_f_fields(order):
    # signalling NaNs (with payloads) must not be quieted by a detour
    # through float64; oracle: the bytes struct packs from the bit patterns
    bits = [0x7F800001, 0xFFA00005, 0x7FBFFFFF, 0x3F800000]
    column = np.array(bits, dtype=np.uint32).view(np.float32)
    expected = b"".join(struct.pack(f"{order}I", b) for b in bits)
    assert Struct(f"{order}f").pack({"f0": column}) == expected
    assert Struct(f"{order}f").pack({"f0": column.astype(f"{order}f4")}) == expected


def test_integer_column_rounds_into_f_through_double_like_struct():
    # struct converts to double first: 2**60 + 2**36 + 1 becomes the tie
    # 2**60 + 2**36, which float rounds to even (2**60); direct int->float
    # rounding would give 2**60 + 2**37
    value = 2**60 + 2**36 + 1
    assert Struct("<f").pack({"f0": np.array([value], dtype=np.int64)}) == struct.pack("<f", value)
    assert Struct("<f").pack([(value,)]) == struct.pack("<f", value)


def test_long_double_column_rounds_into_f_through_double_like_struct():
    if np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant:
        pytest.skip("long double is double on this platform")
    value = np.longdouble(1) + np.longdouble(2) ** -24 + np.longdouble(2) ** -60
    column = np.array([value], dtype=np.longdouble)
    assert Struct("<f").pack({"f0": column}) == struct.pack("<f", float(value))


@pytest.mark.parametrize(
    "fmt,value", [("<f", 1e300), ("<e", 1e10), ("<F", complex(1e300, 0)), ("<F", complex(0, 1e300))]
)
def test_float_overflow_is_binrecs_error_even_when_warnings_are_errors(fmt, value):
    # numpy warns on an overflowing cast; struct raises OverflowError, and
    # so must binrec, also under `-W error`
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(binrec.FloatOverflowError):
            Struct(fmt).pack({"f0": np.array([value])})


def test_native_f_stores_infinity_without_a_warning_even_when_warnings_are_errors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Struct("@f").pack({"f0": np.array([1e300])}) == struct.pack("@f", 1e300)
        assert Struct("@F").pack({"f0": np.array([complex(1e300, -1e300)])}) == struct.pack("@ff", 1e300, -1e300)


def test_char_from_a_wider_bytes_column_of_single_bytes_packs_like_struct():
    column = np.array([b"a", b"b", b"\xff"], dtype="S2")
    assert Struct("c").pack({"f0": column}) == b"".join(struct.pack("c", v) for v in column.tolist())


def test_char_from_a_numpy_object_column_of_bytes_packs_like_struct():
    column = np.array([b"a", b"\0", b"z"], dtype=object)
    assert Struct("c").pack({"f0": column}) == b"".join(struct.pack("c", v) for v in column)


def test_char_column_decoded_from_bytes_packs_back_to_the_same_bytes_nul_included():
    # numpy shows a NUL char as b"" (S1 drops trailing NULs); the stored byte
    # is what packs.  Oracle: the raw bytes, which struct.unpack reads back.
    raw = b"a\0z\xff"
    assert [v for (v,) in struct.iter_unpack("c", raw)] == [b"a", b"\0", b"z", b"\xff"]
    s = Struct("c")
    assert s.pack(s.unpack_columns(raw)) == raw
    assert s.pack({"f0": np.frombuffer(raw, dtype="S1")}) == raw


# -- _coerce mutation survivors (issue 11): behaviours no test pinned yet ------


def test_char_refuses_two_bytes_ending_in_nul_like_struct(backend):
    # numpy's S dtype drops trailing NULs (b"a\0" would look one byte long);
    # struct judges the bytes object itself.  Oracle: struct refuses it.
    with pytest.raises(struct.error):
        struct.pack("c", b"a\0")
    with pytest.raises(Error, match=r"row 0\).*length 1"):
        Struct("<c").pack([(b"a\0",), (b"b\0",)])


_SNAN64 = struct.unpack("<d", struct.pack("<Q", 0x7FF4000000000001))[0]


def test_signalling_nan_packs_into_f_like_struct_without_a_warning(backend):
    # narrowing a signalling NaN to float32 raises the FPU's invalid flag,
    # which numpy reports as a RuntimeWarning; struct packs the (quieted)
    # NaN silently, and so must binrec, also under `-W error`.
    import warnings

    assert math.isnan(_SNAN64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Struct("<f").pack([(_SNAN64,), (1.5,)]) == struct.pack("<f", _SNAN64) + struct.pack("<f", 1.5)


def test_signalling_nan_packs_into_F_like_struct_without_a_warning(backend):
    # as for f: complex128 -> complex64 narrowing of a signalling NaN part
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Struct("<F").pack([(complex(_SNAN64, 2.0),)]) == struct.pack("<ff", _SNAN64, 2.0)


@pytest.mark.parametrize("fmt,dtype", [("<i", np.float64), ("<4p", np.int64)])
def test_column_of_a_refused_dtype_is_refused_even_when_empty(backend, fmt, dtype):
    # A numpy column is judged by its dtype (a float column for an integer
    # field, an integer column for a string field), so the answer must not
    # depend on how many rows it has.  Oracle: struct refuses every value of
    # that dtype, and binrec refuses the same column with one row.
    one = np.zeros(1, dtype=dtype)
    with pytest.raises(struct.error):
        struct.pack(fmt, one[0])
    with pytest.raises(Error, match=r"row 0\)"):
        Struct(fmt).pack({"f0": one})
    with pytest.raises(Error, match=r"row 0\)"):
        Struct(fmt).pack({"f0": one[:0]})


def _struct_type_error(call):
    with pytest.raises(TypeError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("buffer", ["ab", 12, [1, 2], None])
@pytest.mark.parametrize(
    "how",
    [
        lambda b: binrec.unpack(">h", b),
        lambda b: Struct(">h").unpack(b),
        lambda b: Struct(">h").unpack_columns(b),
        lambda b: binrec.unpack_columns(">h", b),
        lambda b: Struct(">h").iter_unpack(b),
    ],
    ids=["unpack", "Struct.unpack", "Struct.unpack_columns", "unpack_columns", "Struct.iter_unpack"],
)
def test_non_buffer_to_decode_is_buffer_type_error_with_structs_message(backend, buffer, how, request):
    if isinstance(buffer, str) and "iter_unpack" in request.node.name:
        pytest.skip("iter_unpack reads a str as a path")
    # Oracle: struct refuses the same object with a TypeError and this
    # message; binrec's error is that TypeError and binrec.Error too (the
    # README: binrec.Error covers every bad buffer).  iter_unpack refuses at
    # the call, as struct.iter_unpack does, not on the first next().
    expected = _struct_type_error(lambda: struct.unpack(">h", buffer))
    assert expected == _struct_type_error(lambda: struct.iter_unpack(">h", buffer))
    with pytest.raises(binrec.BufferTypeError) as info:
        how(buffer)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, Error) and isinstance(info.value, struct.error)
    assert str(info.value) == expected


@pytest.mark.parametrize("buffer", ["ab", 12, None])
def test_non_buffer_to_pack_into_is_buffer_type_error_with_structs_message(backend, buffer):
    # Oracle: struct.pack_into refuses a target without the buffer protocol
    # with a TypeError and this message.
    expected = _struct_type_error(lambda: struct.Struct(">h").pack_into(buffer, 0, 1))
    for call in (lambda: Struct(">h").pack_into(buffer, 0, [(1,)]), lambda: binrec.pack_into(">h", buffer, 0, [(1,)])):
        with pytest.raises(binrec.BufferTypeError) as info:
            call()
        assert isinstance(info.value, TypeError) and isinstance(info.value, Error)
        assert str(info.value) == expected


@pytest.mark.parametrize("content", [b"a\x00", b"\x00", b"\x00\x00"])
def test_p_content_ending_in_nul_loses_it_through_an_array_as_documented(backend, content):
    # README, "Differences from struct": numpy's S dtype cannot tell b"a"
    # from b"a\x00", so a p field unpacked into an array packs back with the
    # trailing NULs gone and a smaller length byte.  Oracle: struct, which
    # round-trips the content, and which packs the NUL-stripped content to
    # exactly what binrec writes.
    raw = struct.pack(">3p", content)
    assert struct.pack(">3p", *struct.unpack(">3p", raw)) == raw
    s = Struct(">3p")
    stripped = struct.pack(">3p", content.rstrip(b"\x00"))
    assert stripped != raw
    assert s.pack(s.unpack(raw)) == stripped
    assert s.pack(s.unpack_columns(raw)) == stripped
    # Python bytes values keep the NULs, as struct does.
    assert s.pack([(content,)]) == raw
    assert s.pack({"f0": np.array([content], dtype=object)}) == raw


@pytest.mark.parametrize(
    "fmt,values",
    [(">h", np.array([1.0])), (">h", np.array([1, 2])), (">h", np.array(3)), (">hh", np.array([1, 2])),
     (">h", np.zeros((2, 1, 1), dtype=np.int16))],
)  # fmt: skip
def test_plain_array_not_2d_names_the_accepted_shapes(backend, fmt, values):
    # README: pack takes a structured array, a mapping, a 2-D array or a
    # sequence of tuples.  A plain array of another shape is refused with a
    # binrec.Error (a struct.error) that names the 2-D shape and the fields,
    # not "row 0: expected a tuple of 1 values, got float64".
    width = struct.calcsize(fmt) // 2
    s = Struct(fmt)
    with pytest.raises(struct.error) as info:
        s.pack(values)
    msg = str(info.value)
    assert f"2-D array of shape (N, {width})" in msg and repr(s.names) in msg
    assert f"shape {values.shape}" in msg


def test_one_field_1d_array_packs_as_the_message_suggests(backend):
    # The message's advice (reshape to (N, 1), or a mapping) gives struct's bytes.
    col = np.array([1, -2, 300])
    expected = b"".join(struct.pack(">h", int(v)) for v in col)
    assert Struct(">h").pack(col.reshape(-1, 1)) == expected
    assert Struct(">h").pack({"f0": col}) == expected
