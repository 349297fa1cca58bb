"""binrec._layout: format string -> Layout, specified against :mod:`struct`.

The oracle is the running interpreter's struct module: sizes and offsets are
``struct.calcsize`` of format prefixes, integer ranges are what
``struct.pack`` accepts, and the wire dtype decodes bytes exactly as
``struct.unpack`` does.  ``F``/``D`` (complex, new in Python 3.14's struct)
are checked against two ``f``/``d`` values, which is how struct lays them out.
"""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from binrec import Error
from binrec._layout import build_layout, format_text, int_range, parse_names

#: the documented limits, written out: a test that read the constants would
#: pass whatever they were changed to
LIMIT_FIELDS = 100_000
LIMIT_BYTES = 2**31 - 1  # numpy's itemsize is a C int

INT_CODES = "bBhHiIlLqQ"
NATIVE_INT_CODES = INT_CODES + "nNP"
SCALAR_CODES = "cbB?hHiIlLqQefd"
STANDARD_ORDERS = "<>=!"


def struct_offsets(fmt: str) -> list[int]:
    """Byte offset of every value of ``fmt`` as struct places it: the size of
    the format up to that value, plus the alignment padding struct inserts
    before it (``calcsize(prefix + code) - calcsize(code alone)``)."""
    order = fmt[0] if fmt[:1] in "@=<>!" else ""
    body = fmt[len(order) :]
    offsets = []
    done = ""
    for code in body:
        if code != "x":
            offsets.append(struct.calcsize(order + done + code) - struct.calcsize(order + code))
        done += code
    return offsets


def complex_as_pairs(fmt: str) -> str:
    return fmt.replace("F", "2f").replace("D", "2d")


# -- sizes and offsets ---------------------------------------------------------


@pytest.mark.parametrize("order", STANDARD_ORDERS)
@pytest.mark.parametrize("code", SCALAR_CODES)
def test_standard_size_of_each_code_is_structs(order, code):
    layout = build_layout(order + code)
    assert layout.size == struct.calcsize(order + code)
    assert layout.fields[0].size == struct.calcsize(order + code)


@pytest.mark.parametrize("order", ["", "@"])
@pytest.mark.parametrize("code", SCALAR_CODES + "nNP")
def test_native_size_of_each_code_is_structs(order, code):
    assert build_layout(order + code).size == struct.calcsize(order + code)


@pytest.mark.parametrize("order", ["", "@"])
@pytest.mark.parametrize("code", SCALAR_CODES + "nNP")
def test_native_alignment_after_one_byte_is_structs(order, code):
    # one byte, then the code: the offset is the code's alignment
    fmt = order + "b" + code
    layout = build_layout(fmt)
    assert [f.offset for f in layout.fields] == struct_offsets(fmt)
    assert layout.size == struct.calcsize(fmt)


@pytest.mark.parametrize("order", ["<", ">", "=", "!"])
@pytest.mark.parametrize("code", SCALAR_CODES)
def test_standard_mode_never_aligns(order, code):
    fmt = order + "b" + code
    assert [f.offset for f in build_layout(fmt).fields] == [0, 1] == struct_offsets(fmt)


@pytest.mark.parametrize("order", ["<", "@"])
@pytest.mark.parametrize("code,twin", [("F", "f"), ("D", "d")])
def test_complex_codes_are_laid_out_as_two_floats(order, code, twin):
    fmt = order + "b" + code + "b"
    pairs = order + "b" + twin + twin + "b"
    layout = build_layout(fmt)
    assert layout.size == struct.calcsize(pairs)
    assert [f.offset for f in layout.fields] == [0, struct_offsets(pairs)[1], struct_offsets(pairs)[3]]
    assert layout.fields[1].size == 2 * struct.calcsize(order + twin)


@pytest.mark.parametrize(
    "fmt", ["@ic", "@ci", "@c3i", "@hq?d", "@bP", "@b0i", "@ic0i", "@b5sq", "@b3pd", "@2xq", "@b4x", "=bqh", ">2h3s?"]
)
def test_offsets_and_size_of_mixed_formats_are_structs(fmt):
    layout = build_layout(fmt)
    assert layout.size == struct.calcsize(fmt)
    expected = []
    order = fmt[0]
    # s/p fields are one value whatever their count: walk struct's tokens
    pos = 1
    while pos < len(fmt):
        start = pos
        while fmt[pos].isdigit():
            pos += 1
        count, code = int(fmt[start:pos] or 1), fmt[pos]
        pos += 1
        before = fmt[:start]
        if code in "sp":
            expected.append(struct.calcsize(before + fmt[start:pos]) - count)
        elif code != "x":
            for i in range(count):
                expected.append(struct.calcsize(before + f"{i + 1}{code}") - struct.calcsize(order + code))
    assert [f.offset for f in layout.fields] == expected


# -- integer ranges ------------------------------------------------------------


@pytest.mark.parametrize("code", NATIVE_INT_CODES)
def test_int_range_is_exactly_what_struct_packs_natively(code):
    lo, hi = int_range(code, struct.calcsize("@" + code))
    struct.pack("@" + code, lo)
    struct.pack("@" + code, hi)
    with pytest.raises(struct.error):
        struct.pack("@" + code, lo - 1)
    with pytest.raises(struct.error):
        struct.pack("@" + code, hi + 1)


@pytest.mark.parametrize("code", INT_CODES)
def test_int_range_is_exactly_what_struct_packs_in_standard_sizes(code):
    lo, hi = int_range(code, struct.calcsize("<" + code))
    struct.pack("<" + code, lo)
    struct.pack("<" + code, hi)
    with pytest.raises(struct.error):
        struct.pack("<" + code, lo - 1)
    with pytest.raises(struct.error):
        struct.pack("<" + code, hi + 1)


def test_int_range_refuses_a_non_integer_code():
    with pytest.raises(ValueError):
        int_range("f", 4)


# -- dtypes ----------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">", "@", "="])
def test_wire_dtype_decodes_bytes_as_struct_unpacks_them(order):
    fmt = order + "bBhHiIlLqQefd?c"
    values = (-5, 250, -300, 60000, -(2**31), 2**32 - 1, -7, 7, -(2**63), 2**64 - 1, 1.5, -2.25, 1e300, True, b"z")
    raw = struct.pack(fmt, *values)
    decoded = np.frombuffer(raw, dtype=build_layout(fmt).wire_dtype)[0]
    assert tuple(v.item() if hasattr(v, "item") else v for v in decoded) == struct.unpack(fmt, raw)


@pytest.mark.parametrize("order", ["<", ">", "@"])
def test_native_dtype_has_structs_offsets_in_native_byte_order(order):
    fmt = order + "bhiq"
    layout = build_layout(fmt)
    assert [layout.dtype.fields[n][1] for n in layout.names] == struct_offsets(fmt)
    assert layout.dtype.itemsize == struct.calcsize(fmt)
    assert all(layout.dtype[n].isnative for n in layout.names)


@pytest.mark.parametrize(
    "order,wire", [("<", "<"), (">", ">"), ("!", ">"), ("=", "<" if sys.byteorder == "little" else ">")]
)
def test_wire_byte_order_follows_the_prefix(order, wire):
    layout = build_layout(order + "i")
    assert layout.byteorder == wire
    assert layout.wire_dtype["f0"] == np.dtype(wire + "i4")


def test_native_mode_wire_order_is_the_machines():
    layout = build_layout("@i")
    assert layout.byteorder == ("<" if sys.byteorder == "little" else ">")
    assert layout.native_mode and layout.fields[0].native_mode
    assert not build_layout("=i").native_mode


@pytest.mark.parametrize("code,kind", [("b", "i"), ("B", "u"), ("h", "i"), ("H", "u"), ("l", "i"), ("L", "u")])
def test_integer_signedness_is_structs(code, kind):
    # struct unpacks 0xff.. as -1 for signed codes and as the maximum for unsigned ones
    size = struct.calcsize("<" + code)
    assert build_layout("<" + code).fields[0].native == np.dtype(f"{kind}{size}")
    assert (struct.unpack("<" + code, b"\xff" * size)[0] < 0) == (kind == "i")


@pytest.mark.parametrize("code,kind", [("n", "i"), ("N", "u"), ("P", "u")])
def test_native_size_codes_signedness_is_structs(code, kind):
    size = struct.calcsize("@" + code)
    assert build_layout("@" + code).fields[0].native == np.dtype(f"{kind}{size}")
    assert (struct.unpack("@" + code, b"\xff" * size)[0] < 0) == (kind == "i")


def test_pascal_string_wire_dtype_skips_the_length_byte():
    # struct.pack('<3pb', b'ab', 1) == b'\x02ab\x01': two data bytes after the length
    layout = build_layout("<3pb")
    raw = struct.pack("<3pb", b"ab", 1)
    assert raw == b"\x02ab\x01"
    assert layout.wire_dtype.fields["f0"] == (np.dtype("S2"), 1)
    assert np.frombuffer(raw, layout.wire_dtype)["f0"][0] == b"ab"


def test_one_byte_pascal_string_has_no_data_bytes():
    layout = build_layout("<1pb")
    assert layout.fields[0].native == np.dtype("S0") or layout.fields[0].native.itemsize == 0
    assert layout.size == struct.calcsize("<1pb") == 2


@pytest.mark.parametrize(
    "fmt,kinds",
    [
        ("<bHq", ["int", "int", "int"]),
        ("<efd", ["float", "float", "float"]),
        ("<FD", ["complex", "complex"]),
        ("<?c3s3p", ["bool", "char", "bytes", "pascal"]),
        ("@P", ["int"]),
    ],
)
def test_field_kind_names_the_python_type_struct_returns(fmt, kinds):
    assert [f.kind for f in build_layout(fmt).fields] == kinds


def test_field_count_is_the_string_length_for_s_and_p_and_1_otherwise():
    # struct.calcsize('<5s') == 5: the count of s/p is a length; '3h' is three fields of one value
    layout = build_layout("<5s4p3h")
    assert [f.count for f in layout.fields] == [5, 4, 1, 1, 1]


def test_string_fields_are_c_s_and_p_only():
    layout = build_layout("<c2s2p?b")
    assert [f.is_string for f in layout.fields] == [True, True, True, False, False]


# -- the grammar -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["<P", "<n", "<N", "=P", ">n", "!N"])
def test_native_only_codes_are_refused_in_standard_mode_like_struct(fmt):
    with pytest.raises(struct.error):
        struct.calcsize(fmt)
    with pytest.raises(Error):
        build_layout(fmt)


@pytest.mark.parametrize("fmt", ["!h", "!q", "!d"])
def test_network_order_is_big_endian_standard(fmt):
    layout = build_layout(fmt)
    assert layout.size == struct.calcsize(fmt)
    assert not layout.native_mode and layout.byteorder == ">"


@pytest.mark.parametrize("fmt", ["<b0s", "@i0q", "@b0i", "<2s 3s", "< i h"])
def test_zero_counts_and_spaces_parse_like_struct(fmt):
    layout = build_layout(fmt)
    assert layout.size == struct.calcsize(fmt)
    assert len(layout.fields) == len(struct.unpack(fmt, bytes(struct.calcsize(fmt))))


@pytest.mark.parametrize("fmt", [" <i", "<i<", "i!", "<3", "<z", "<i\x00"])
def test_malformed_formats_are_refused_like_struct(fmt):
    with pytest.raises(struct.error):
        struct.calcsize(fmt)
    with pytest.raises(Error):
        build_layout(fmt)


def test_repeat_count_with_leading_zero_counts_in_decimal():
    # struct reads '010i' as ten ints
    assert build_layout("<010i").size == struct.calcsize("<010i") == 40


def test_most_fields_one_record_may_have_is_100_000():
    assert len(build_layout(f"<{LIMIT_FIELDS}b").fields) == LIMIT_FIELDS
    with pytest.raises(Error, match="at most"):
        build_layout(f"<{LIMIT_FIELDS + 1}b")


def test_pad_bytes_are_not_fields_for_the_field_limit():
    # struct.unpack('<3xb', ...) returns one value: pad bytes are no values
    assert len(struct.unpack("<3xb", bytes(4))) == 1
    assert len(build_layout(f"<{LIMIT_FIELDS + 1}xb").fields) == 1
    assert len(build_layout(f"<{LIMIT_FIELDS}bx").fields) == LIMIT_FIELDS


def test_a_string_is_one_field_for_the_field_limit():
    # struct.unpack('<3s', ...) returns one value whatever the length
    assert len(struct.unpack("<3s3p", bytes(6))) == 2
    assert len(build_layout(f"<{LIMIT_FIELDS - 2}b3s3p").fields) == LIMIT_FIELDS
    with pytest.raises(Error, match="at most"):
        build_layout(f"<{LIMIT_FIELDS}b3s")


def test_largest_record_is_2_gib_minus_one_byte():
    # pad bytes make the size without allocating anything
    assert build_layout(f"<{LIMIT_BYTES - 1}xb").size == LIMIT_BYTES
    with pytest.raises(Error, match="larger than"):
        build_layout(f"<{LIMIT_BYTES}xb")


def test_format_text_reads_bytes_as_ascii():
    assert format_text(b"<2i") == "<2i"
    assert build_layout(b"<2i").size == struct.calcsize(b"<2i")


@pytest.mark.parametrize("fmt", [b"<\xe9", b"<i\x80"])
def test_format_text_refuses_non_ascii_bytes(fmt):
    with pytest.raises(struct.error):
        struct.calcsize(fmt)
    with pytest.raises(Error):
        format_text(fmt)


def test_format_text_refuses_other_types():
    with pytest.raises(TypeError):
        struct.calcsize(3)
    with pytest.raises(TypeError):
        format_text(3)


# -- names ---------------------------------------------------------------------------


def test_default_names_are_f0_f1_and_so_on():
    assert parse_names(None, 3, "<3i") == ("f0", "f1", "f2")


def test_names_string_splits_on_commas_and_spaces():
    assert parse_names(" a, b  c,d ", 4, "<4i") == ("a", "b", "c", "d")


def test_names_sequence_is_taken_as_given():
    assert parse_names(iter(["x", "y"]), 2, "<2i") == ("x", "y")


@pytest.mark.parametrize(
    "names,error",
    [
        (["a", "a"], Error),
        (["a", "1b"], Error),
        (["a", 2], Error),
        (["a"], Error),
        (["a", "b", "c"], Error),
        (5, TypeError),
    ],
)
def test_bad_names_are_refused(names, error):
    with pytest.raises(error):
        parse_names(names, 2, "<2i")


def test_layout_field_lookup_by_name():
    layout = build_layout("<ih", names="a b")
    assert layout.field("b").offset == 4 == struct.calcsize("<i")
    with pytest.raises(Error, match="no field named"):
        layout.field("c")


@pytest.mark.parametrize("fmt", ["<\x7f\xe9", "<i\x80", "<\u20ac"])
def test_non_ascii_format_error_points_at_the_first_non_ascii_character(fmt):
    # the oracle: str.encode('ascii') (struct raises the same UnicodeEncodeError);
    # DEL (0x7f) is ASCII, U+0080 is the first character that is not
    with pytest.raises(UnicodeEncodeError) as oracle:
        fmt.encode("ascii")
    with pytest.raises(UnicodeEncodeError) as refused:
        format_text(fmt)
    assert (refused.value.start, refused.value.end) == (oracle.value.start, oracle.value.end)
