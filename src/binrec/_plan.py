"""Byte-operation plans for the compiled kernels (``_kernels_c``).

Each format is turned once into a *plan*: a short list of byte operations
per record (copy a run of bytes, byte-swap a run of same-width values,
normalise booleans, decode a Pascal string, zero a gap).  Adjacent fields
merge into one operation, so a 36-field record is about six operations.

Building a plan is plain Python (it runs once per layout and is cached by
the kernels); only the loops that run a plan over the bytes are compiled.
:class:`Op` holds the op codes; ``_kernels_c`` compiles the same numbers in
and refuses to import when its ``OPS`` disagree.
"""

from __future__ import annotations

import enum

import numpy as np

from ._layout import Field, Layout

__all__ = ["Op", "swap_needed", "field_op", "op_bytes", "row_plan", "column_spec"]


class Op(enum.IntEnum):
    COPY = 0
    SWAP2 = 1  # n values of 2 bytes, each byte-swapped
    SWAP4 = 2
    SWAP8 = 3
    BOOL = 4  # n bytes, each normalised to 0/1
    PASCAL = 5  # decode: length byte + data -> data, zero padded to n bytes
    ZERO = 6  # n bytes set to zero (gaps between fields)
    PASCAL_PACK = 7  # encode: data -> length byte + data
    PASCAL_COL = 8  # decode into a column: zero padded to n - 1 bytes


_SWAPS = {2: Op.SWAP2, 4: Op.SWAP4, 8: Op.SWAP8}
_MERGEABLE = (Op.SWAP2, Op.SWAP4, Op.SWAP8, Op.BOOL, Op.ZERO)


def swap_needed(field: Field) -> bool:
    """Whether the field's numbers are stored in the other byte order."""
    w = field.wire
    return w.kind in "iufc" and w.itemsize > 1 and not w.isnative


def field_op(field: Field) -> tuple[Op, int] | None:
    """(op, n) for one field, or None when it occupies no bytes."""
    if field.size == 0:
        return None
    if field.code == "?":
        return Op.BOOL, 1
    if field.code == "p":
        return Op.PASCAL, field.count
    if swap_needed(field):
        w = field.wire
        width = w.itemsize // 2 if w.kind == "c" else w.itemsize
        n = 2 if w.kind == "c" else 1
        return _SWAPS[width], n
    return Op.COPY, field.size


def op_bytes(op: int, n: int) -> int:
    """Bytes of the record one op covers."""
    if op == Op.SWAP2:
        return 2 * n
    if op == Op.SWAP4:
        return 4 * n
    if op == Op.SWAP8:
        return 8 * n
    return n


def row_plan(layout: Layout, packing: bool) -> np.ndarray:
    """The in-place fix-ups that follow a plain copy of each block of
    records: int64 array (nops, 4) of op, field offset, 0, n.  Fields whose
    bytes need no change (1-byte ints, strings, native-order numbers) cost
    nothing beyond the block copy."""
    ops: list[list[int]] = []
    cursor = 0
    for f in sorted(layout.fields, key=lambda f: f.offset):
        spec = field_op(f)
        if spec is None:
            continue
        op, n = spec
        if packing and op == Op.PASCAL:
            op = Op.PASCAL_PACK
        if f.offset > cursor:
            ops.append([Op.ZERO, cursor, 0, f.offset - cursor])
        if op != Op.COPY:
            ops.append([op, f.offset, 0, n])
        cursor = max(cursor, f.offset + f.size)
    if layout.size > cursor:
        ops.append([Op.ZERO, cursor, 0, layout.size - cursor])
    merged: list[list[int]] = []
    for step in ops:
        if merged:
            last = merged[-1]
            mergeable = last[0] == step[0] and step[0] in _MERGEABLE
            if mergeable and last[1] + op_bytes(last[0], last[3]) == step[1]:
                last[3] += step[3]
                continue
        merged.append(list(step))
    for step in merged:
        # the fix-ups write inside each record's own bytes, or nowhere
        if step[1] < 0 or step[3] < 0 or step[1] + op_bytes(step[0], step[3]) > layout.size:
            raise ValueError(f"field at byte {step[1]} lies outside the {layout.size}-byte record")
    return np.array(merged, dtype=np.int64).reshape(-1, 4)


def column_spec(field: Field) -> tuple[int, int, int, int] | None:
    """(op, n, bytes read per record, bytes written per element) of a field
    decoded into its own column, or None for a field whose column is all
    empty strings.  The sizes come from the op alone: the column loop uses
    no other."""
    spec = field_op(field)
    if spec is None:
        return None
    op, n = spec
    if field.code == "p":
        if field.count <= 1:
            return None
        return Op.PASCAL_COL, n, n, n - 1
    return op, n, op_bytes(op, n), op_bytes(op, n)
