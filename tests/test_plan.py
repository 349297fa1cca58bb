"""binrec._plan: the byte-operation plans the compiled kernels run.

Plans are plain Python now (issue 12), so they are checked here directly;
tests/test_differential.py checks what the compiled loops make of them
against the Python backend and struct.  The oracle for each plan below is
struct.calcsize's layout of the format, worked out by hand in the comment.
"""

from __future__ import annotations

import struct
import sys

from binrec import Struct
from binrec._plan import Op, column_spec, row_plan

#: the byte order that is not the host's: its fields need swapping (">" on
#: little-endian hosts, "<" on big-endian ones such as s390x)
X = ">" if sys.byteorder == "little" else "<"


def _plan(fmt: str, packing: bool = False) -> list[tuple[int, int, int]]:
    """(op, byte offset, n) of each step of ``fmt``'s row plan."""
    return [(op, src, n) for op, src, _, n in row_plan(Struct(fmt).layout, packing).tolist()]


def test_adjacent_swaps_of_one_width_merge_into_one_step():
    # >hh: two 2-byte big-endian ints at 0 and 2 -> one SWAP2 of 2 values
    assert struct.calcsize(">hh") == 4
    assert _plan(X + "hh") == [(Op.SWAP2, 0, 2)]


def test_a_pad_byte_between_booleans_is_zeroed_and_breaks_the_merge():
    # >?x?: bool at 0, pad at 1, bool at 2
    assert _plan(X + "?x?") == [(Op.BOOL, 0, 1), (Op.ZERO, 1, 1), (Op.BOOL, 2, 1)]


def test_an_alignment_gap_is_zeroed_and_native_fields_cost_nothing():
    # @bq: b at 0, 7 alignment bytes, q at 8 (native order: a plain copy)
    assert struct.calcsize("@bq") == 16
    assert _plan("@bq") == [(Op.ZERO, 1, 7)]


def test_pascal_fields_decode_and_encode_with_their_own_ops():
    # >3pI: a 3-byte Pascal string at 0, a big-endian uint at 3
    assert _plan(X + "3pI", packing=False) == [(Op.PASCAL, 0, 3), (Op.SWAP4, 3, 1)]
    assert _plan(X + "3pI", packing=True) == [(Op.PASCAL_PACK, 0, 3), (Op.SWAP4, 3, 1)]


def test_column_specs_give_bytes_read_and_written_per_record():
    fields = Struct(X + "3pIF").layout.fields
    # Pascal: reads the length byte and 2 data bytes, writes 2; a swapped
    # complex64: two 4-byte halves, 8 bytes each way
    assert [column_spec(f) for f in fields] == [
        (Op.PASCAL_COL, 3, 3, 2),
        (Op.SWAP4, 1, 4, 4),
        (Op.SWAP4, 2, 8, 8),
    ]


def test_a_field_of_no_bytes_has_no_column_op():
    # 1p holds only its length byte: its column is all empty strings
    assert [column_spec(f) for f in Struct("=1pH").layout.fields] == [None, (Op.COPY, 2, 2, 2)]
