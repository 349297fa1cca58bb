#!/usr/bin/env python3
"""Bounded differential fuzz of binrec's codec: compiled kernels against the
numpy kernels against :mod:`struct`.

Each case draws a random format (every code, every byte order, repeat counts,
padding and alignment), a random buffer (exact-size, short, with trailing
bytes; bytes, bytearray, memoryview, ndarray), a random offset (negative
too), ``count=``, ``out=`` arrays (right and wrong size, dtype, contiguity,
writability), ``threads=`` and runs one of ``unpack``, ``unpack_columns``,
``pack``, ``pack_into``, ``iter_unpack`` on both backends.  It checks that:

* both backends give the same result byte for byte (padding included), or
  raise the same exception class, and leave ``pack_into``'s buffer the same;
* the result agrees with struct (``unpack_from``/``pack``/``pack_into``
  record by record), or binrec raises an exception that is an instance of the
  class struct raises (binrec's errors subclass struct's);
* padding bytes of decoded records are zero (the kernels promise it).

Case ``i`` of seed ``S`` is drawn from ``random.Random(f"{S}:{i}")`` alone, so
``--seed S --case i -v`` replays exactly one case.  The index of the case
being run is kept in ``--progress FILE`` so a case that crashes the process
(a sanitizer abort) can be named afterwards.

Exit status: 0 when every case agreed, 1 on any mismatch.

    usage: fuzz_differential.py [--seed S] [--cases N] [--seconds T] [--case I] [-v]
                                [--overlap] [--max-report K] [--progress FILE]

``--overlap`` adds cases whose ``out=``/``pack_into`` memory overlaps the
input (issue 11 item 2: under ASan the compiled row kernel aborts on the
first one with ``memcpy-param-overlap`` until that is fixed, so it is off by
default).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import struct
import sys
import time
import traceback
from collections import Counter, defaultdict

import numpy as np

import binrec
from binrec import _backend

BACKENDS = {"compiled": _backend.compiled_kernels, "python": _backend.python_kernels}
ORDERS = ["", "@", "=", "<", ">", "!"]
CODES = "xcbB?hHiIlLqQnNefdspPFD"
NATIVE_ONLY = "nNP"
THREADS = [None, None, None, 1, 2, 3, 0, -1, True, "2"]
MIB = 1 << 20


class Skip(Exception):
    """The case drew something outside what is being compared."""


# -- formats --------------------------------------------------------------------


def random_format(rng: random.Random) -> str:
    order = rng.choice(ORDERS)
    native = order in ("", "@")
    items = []
    for _ in range(rng.choice([1, 1, 2, 3, 4, 6])):
        pool = CODES if native or rng.random() < 0.03 else CODES.translate({ord(c): None for c in NATIVE_ONLY})
        code = rng.choice(pool)
        if code in "sp":
            count = str(rng.choice([0, 1, 2, 3, 4, 7, 8, 16, rng.randint(0, 300)]))
        elif code == "x":
            count = str(rng.randint(0, 7)) if rng.random() < 0.5 else ""
        else:
            count = rng.choice(["", "", "", "0", "1", "2", "3"])
        items.append(count + code)
    return order + rng.choice(["", "", " "]).join(items)


def struct_format(fmt: str) -> str:
    """The same record for struct (before 3.14 it has no F/D: two f/d)."""
    order = fmt[0] if fmt and fmt[0] in "@=<>!" else ""
    out, num = [], ""
    for ch in fmt[len(order) :]:
        if ch.isdigit():
            num += ch
        elif ch == "p" and num and int(num) == 0:
            out.append("0s")  # CPython < 3.12.? unpacks '0p' with a SystemError; it holds nothing
            num = ""
        elif ch in "FD":
            out.append(str(2 * int(num or "1")) + ("f" if ch == "F" else "d"))
            num = ""
        else:
            out.append(num + ch)
            num = ""
    return order + "".join(out)


def values_per_field(fields) -> list[int]:
    return [2 if f.code in "FD" else 1 for f in fields]


# -- comparing values with struct ----------------------------------------------------


def same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def same_value(code: str, got, want) -> bool:
    """``got``: binrec's value via ndarray.tolist(); ``want``: struct's (a pair for F/D)."""
    if code in "csp":  # numpy's S drops trailing NULs
        return bytes(got).rstrip(b"\0") == want.rstrip(b"\0")
    if code == "?":
        return bool(got) is bool(want)
    if code in "efd":
        return same_float(float(got), want)
    if code in "FD":
        return same_float(got.real, want[0]) and same_float(got.imag, want[1])
    return int(got) == want


def struct_rows(sfmt: str, raw: bytes, rows) -> list[tuple]:
    size = struct.calcsize(sfmt)
    return [struct.unpack_from(sfmt, raw, r * size) for r in rows]


def compare_columns(fields, columns: dict, expected: list[tuple], rows) -> str | None:
    """First difference between binrec's columns (some or all of the
    layout's ``fields``, by name) and struct's rows, or None."""
    per = values_per_field(fields)
    for j, r in enumerate(rows):
        want_row, k = expected[j], 0
        for f, n in zip(fields, per):
            want = want_row[k] if n == 1 else want_row[k : k + 2]
            k += n
            if f.name not in columns:
                continue
            got = columns[f.name][r]
            if not same_value(f.code, got, want):
                return f"row {r} field {f.name} ({f.code}): binrec {got!r}, struct {want!r}"
    return None


def sample_rows(rng: random.Random, n: int, limit: int = 64) -> list[int]:
    if n <= limit:
        return list(range(n))
    return sorted(set([0, n - 1] + [rng.randrange(n) for _ in range(limit - 2)]))


# -- running a call on one backend ------------------------------------------------------


def on_backend(name: str, fn):
    with _backend.use(BACKENDS[name]):
        try:
            return ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - every exception is an outcome to compare
            return ("raise", type(exc), str(exc))


def fingerprint(value):
    """Byte-exact description of a result, for comparing the backends."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, dict):
        return ("dict", tuple((k, fingerprint(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(fingerprint(v) for v in value))
    return value


def describe(outcome) -> str:
    if outcome[0] == "raise":
        return f"raised {outcome[1].__name__}: {outcome[2][:200]}"
    text = repr(outcome[1])
    return "returned " + (text[:200] + "..." if len(text) > 200 else text)


def pad_mask(dtype: np.dtype) -> np.ndarray:
    """True at each byte of a record that no field covers."""
    covered = np.zeros(dtype.itemsize, dtype=bool)
    for name in dtype.names:
        sub, off = dtype.fields[name][:2]
        covered[off : off + sub.itemsize] = True
    return ~covered


def nonzero_padding(arr: np.ndarray) -> str | None:
    if arr.dtype.names is None or len(arr) == 0:
        return None
    mask = pad_mask(arr.dtype)
    if not mask.any():
        return None
    raw = np.frombuffer(arr.tobytes(), dtype=np.uint8).reshape(len(arr), arr.dtype.itemsize)
    bad = np.argwhere(raw[:, mask] != 0)
    if len(bad):
        r = int(bad[0][0])
        return f"record {r} has non-zero padding bytes {raw[r].tobytes().hex()} (pad mask {mask.astype(int).tolist()})"
    return None


# -- drawing arguments -------------------------------------------------------------------


def random_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def draw_count_records(rng: random.Random, size: int) -> tuple[int, bool]:
    """(records, large): large cases reach the threaded kernels (>= 2 MiB)."""
    if rng.random() < 0.02:
        return (2 * MIB + rng.randrange(MIB)) // size + 1, True
    return rng.choice([0, 1, 1, 2, 3, 5, 8, 17, rng.randint(0, 60)]), False


def draw_length(rng: random.Random, n: int, size: int) -> int:
    exact = n * size
    return max(
        0,
        rng.choice([exact, exact, exact, exact + rng.randint(1, size), exact - rng.randint(1, size), exact + size]),
    )


def draw_offset(rng: random.Random, length: int, size: int):
    return rng.choice(
        [
            "default",
            0,
            0,
            size,
            rng.randint(0, length + 2),
            -rng.randint(1, max(length, 1) + 2),
            -length,
            length,
            length + 1,
            -(size * rng.randint(1, 4)),
        ]
    )


def as_buffer(rng: random.Random, raw: bytes):
    kind = rng.choice(["bytes", "bytes", "bytearray", "memoryview", "ndarray", "ndarray-u4", "noncontig"])
    if kind == "bytes":
        return raw, kind
    if kind == "bytearray":
        return bytearray(raw), kind
    if kind == "memoryview":
        return memoryview(bytearray(b"\xee" + raw))[1:], kind
    if kind == "ndarray-u4" and len(raw) % 4 == 0:
        return np.frombuffer(raw, dtype="<u4").copy(), kind
    if kind == "noncontig":
        doubled = bytearray(len(raw) * 2)
        doubled[::2] = raw
        mv = memoryview(doubled)[::2]
        return mv, kind if not mv.c_contiguous else "memoryview"  # 0 or 1 byte: contiguous
    return np.frombuffer(raw, dtype=np.uint8).copy(), "ndarray"


def draw_out(rng: random.Random, dtype: np.dtype, count: int):
    """(out, good): an out= array, and whether it is a valid one."""
    kind = rng.choice(["right", "right", "right", "short", "long", "dtype", "noncontig", "readonly", "list", "2d"])
    if dtype.itemsize == 0:  # 0s/0p/1p: numpy cannot make an S0 array, binrec asks for one
        return np.empty(count, dtype=dtype), False
    if kind == "right":
        out = np.empty(count, dtype=dtype)
        out.view(np.uint8)[...] = 0xAB if out.nbytes else 0  # stale garbage, padding included
        return out, True
    if kind == "short":
        return np.empty(max(count - 1, 0) if count else 1, dtype=dtype), False
    if kind == "long":
        return np.empty(count + 1, dtype=dtype), False
    if kind == "dtype":
        other = dtype.newbyteorder("S") if dtype.names is None else np.dtype([(n, "u1") for n in dtype.names])
        if other == dtype:
            other = np.dtype("V3") if dtype.itemsize != 3 else np.dtype("V5")
        return np.empty(count, dtype=other), False
    if kind == "noncontig":
        out = np.empty(2 * count + 2, dtype=dtype)[::2][:count]
        return out, out.flags.c_contiguous  # numpy calls 0- and 1-element views contiguous
    if kind == "readonly":
        out = np.empty(count, dtype=dtype)
        out.flags.writeable = False
        return out, False
    if kind == "2d":
        return np.empty((count, 1), dtype=dtype), False
    return [0] * count, False


# -- unpack / unpack_columns -----------------------------------------------------------------


def expected_span(raw: bytes, size: int, count, offset) -> tuple[int, int] | type:
    """(offset, count) that struct's rules give, or the exception class struct raises.

    With ``count``: struct.unpack_from of one ``count*size``-byte field at
    ``offset`` (its negative-offset rules included).  Without: the offset as
    unpack_from resolves it, then struct.iter_unpack of the rest."""
    off = 0 if offset == "default" else offset
    if count is not None:
        if count < 0:
            return struct.error
        try:
            struct.unpack_from(f"{count * size}s", raw, off)
        except struct.error:
            return struct.error
        return (off if off >= 0 else off + len(raw)), count
    if off < 0:
        if off + len(raw) < 0:
            return struct.error
        off += len(raw)
    if off > len(raw):
        return struct.error
    try:
        n = sum(1 for _ in struct.iter_unpack(f"{size}s", raw[off:]))
    except struct.error:
        return struct.error
    return off, n


def case_unpack(rng: random.Random, s: binrec.Struct, sfmt: str, overlap: bool):
    size = s.size
    n, large = draw_count_records(rng, size)
    raw = random_bytes(rng, draw_length(rng, n, size) if not large else n * size)
    count = rng.choice([None, None, n, rng.randint(0, n + 2), -1])
    offset = draw_offset(rng, len(raw), size) if not large else rng.choice(["default", 0])
    threads = rng.choice(THREADS) if not large else rng.choice([None, 1, 2, 3, 0])
    op = rng.choice(["unpack", "unpack_columns"])
    buffer, bkind = as_buffer(rng, raw) if not large else (raw, "bytes")
    kw: dict = {}
    if count is not None:
        kw["count"] = count
    if offset != "default":
        kw["offset"] = offset
    if threads is not None:
        kw["threads"] = threads
    allowed: set[type] = set()
    span = expected_span(raw, size, count, offset)
    if not isinstance(span, tuple):
        allowed.add(span)
    if bkind == "noncontig":
        allowed.add(BufferError)
    if threads == "2":
        allowed.add(TypeError)
    elif threads == -1:
        allowed.add(struct.error)
    fields = list(s.layout.fields)
    if op == "unpack_columns" and rng.random() < 0.4:
        chosen = rng.sample(fields, rng.randint(1, len(fields)))
        names = [f.name for f in chosen]
        if rng.random() < 0.1:
            names.append(rng.choice([names[0], "no_such_field"]))
            allowed.add(struct.error)
        kw["fields"] = names[0] if len(names) == 1 and rng.random() < 0.5 else names
        fields = chosen
    want_count = span[1] if isinstance(span, tuple) else rng.randint(0, 3)
    outs_given = rng.random() < 0.3
    out_arrays = {}
    if outs_given and op == "unpack":
        out, good = draw_out(rng, s.dtype, want_count)
        kw["out"] = out
        out_arrays["out"] = out
        if not good:
            allowed.add(struct.error if isinstance(out, np.ndarray) else TypeError)
    elif outs_given:
        out_map = {}
        for f in rng.sample(fields, rng.randint(1, len(fields))):
            out, good = draw_out(rng, f.native, want_count)
            out_map[f.name] = out
            if not good:
                allowed.add(struct.error if isinstance(out, np.ndarray) else TypeError)
        kw["out"] = out_map
        out_arrays.update(out_map)
    must_fail = bool(allowed)
    text_fields = [f for f in fields if f.is_string]
    if text_fields and rng.random() < 0.08:
        kw["text"] = rng.choice(text_fields).name
        allowed.add(struct.error)  # random bytes are rarely ASCII: then only the backends are compared
    overlap_at = None
    if overlap and op == "unpack" and not must_fail and span[1] and rng.random() < 0.5:
        # out= over the input's own memory (issue 11 item 2): exact in place, or shifted
        overlap_at = max(0, span[0] + rng.choice([0, 0, 1, -1, size]))
        kw.pop("out", None)
        out_arrays.clear()
        bkind = f"overlap@{overlap_at}"

    def call():
        for a in out_arrays.values():  # each backend gets the same stale garbage
            if isinstance(a, np.ndarray) and a.flags.writeable and a.flags.c_contiguous and a.size:
                a.view(np.uint8)[...] = 0xAB
        if overlap_at is not None:
            shared = bytearray(raw) + bytearray(2 * size)
            kw["out"] = np.frombuffer(shared, np.uint8)[overlap_at : overlap_at + span[1] * size].view(s.dtype)
            result = s.unpack(memoryview(shared)[: len(raw)], **kw)
            # a byte copy: numpy copies a structured array field by field,
            # which would leave the copy's padding bytes uninitialised
            snapshot = np.frombuffer(bytearray(result.tobytes()), dtype=result.dtype)
            return snapshot, result is kw.pop("out")
        result = getattr(s, op)(buffer, **kw)
        if "out" in kw and op == "unpack":
            return result, result is kw["out"]
        if "out" in kw:
            return result, tuple(result[k] is v for k, v in kw["out"].items())
        return result, None

    def check(result) -> str | None:
        value, identity = result
        if must_fail:
            return "binrec succeeded where an error was expected"
        if "text" in kw:
            return None
        if identity is not None and identity is not True and not all(identity):
            return "the result is not the out= array that was given"
        off, cnt = span
        rows = sample_rows(rng, cnt)
        expected = struct_rows(sfmt, raw[off:], rows)
        if op == "unpack":
            if value.dtype != s.dtype:
                return f"dtype {value.dtype} != {s.dtype}"
            if len(value) != cnt:
                return f"{len(value)} records, struct has {cnt}"
            pad = nonzero_padding(value)
            if pad:
                return pad
            return compare_columns(s.layout.fields, {f.name: value[f.name].tolist() for f in fields}, expected, rows)
        if list(value) != [f.name for f in fields]:
            return f"columns {list(value)} != {[f.name for f in fields]}"
        for f in fields:
            want_dtype = f.native if f.native.itemsize else np.dtype("S1")  # numpy has no S0 array
            if (
                value[f.name].dtype != want_dtype
                or value[f.name].shape != (cnt,)
                or not value[f.name].flags.c_contiguous
            ):
                return f"column {f.name}: dtype {value[f.name].dtype} shape {value[f.name].shape}"
        return compare_columns(s.layout.fields, {f.name: value[f.name].tolist() for f in fields}, expected, rows)

    return describe_args(op, s, kw, raw, bkind), call, check, allowed


def describe_args(op, s, kw, raw, bkind="bytes", values=None) -> str:
    shown = {
        k: (
            f"<{type(v).__name__} {getattr(v, 'dtype', '')} {getattr(v, 'shape', len(v) if hasattr(v, '__len__') else '')}>"
            if k == "out" and not isinstance(v, dict)
            else v
        )
        for k, v in kw.items()
    }
    if isinstance(kw.get("out"), dict):
        shown["out"] = {
            k: f"<{type(v).__name__} {getattr(v, 'dtype', '')} {getattr(v, 'shape', '')}>" for k, v in kw["out"].items()
        }
    text = f"Struct({s.format!r}).{op}({bkind}(bytes.fromhex({raw[:64].hex()!r}{'...' if len(raw) > 64 else ''})) [{len(raw)} bytes]"
    if values is not None:
        text = f"Struct({s.format!r}).{op}({values}"
    return text + "".join(f", {k}={v!r}" for k, v in shown.items()) + ")"


# -- pack / pack_into -------------------------------------------------------------------------------


def random_value(rng: random.Random, f, valid_bias: float = 0.93):
    """A value struct would accept for the field (mostly), or one it refuses."""
    code = f.code
    good = rng.random() < valid_bias
    if f.kind == "int":
        lo, hi = binrec._layout.int_range(code, f.size)
        if good:
            return rng.choice([lo, hi, 0, 1, rng.randint(lo, hi), rng.randint(lo, hi), True])
        return rng.choice([lo - 1, hi + 1, 1.5, "1", None, b"\x01", 2**70])
    if f.kind == "float":
        special = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, 65504.0, 65519.99, 6e-8, 3.4e38, 1e-310]
        if good:
            return rng.choice(
                special + [rng.uniform(-1e6, 1e6), rng.randint(-(2**31), 2**31), rng.uniform(-1e300, 1e300)]
            )
        return rng.choice([65520.0, 1e39, 1e300, -1e300, "1.0", None, 10**400, b"1"])
    if f.kind == "complex":

        def part():
            return rng.choice([0.0, -0.0, 1.5, math.inf, math.nan, rng.uniform(-1e6, 1e6), rng.uniform(-1e300, 1e300)])

        if good:
            return complex(part(), part())
        return rng.choice([complex(1e300, 0), "1j", None])
    if f.kind == "bool":
        return rng.choice([True, False, 0, 1, 2, -1, None, 0.0, b"", "x"] if good else [True, False])
    if f.kind == "char":
        if good:
            return bytes([rng.randrange(256)])
        return rng.choice([b"", b"ab", "a", 97, True, bytearray(b"a")])
    if good:
        data = random_bytes(
            rng, rng.choice([0, 1, f.count, max(f.count - 1, 0), f.count + 2, rng.randint(0, f.count + 3)])
        )
        return bytearray(data) if code == "s" and rng.random() < 0.1 else data
    return rng.choice(["ab", 12, True, None, [1, 2]])


def struct_pack_rows(sfmt: str, fields, rows) -> bytes | type:
    try:
        return b"".join(struct.pack(sfmt, *flatten(fields, row)) for row in rows)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


def value_error_classes(sfmt: str, fields, rows) -> set[type]:
    """The class struct raises for each value that it refuses alone."""
    order = sfmt[0] if sfmt[0] in "@=<>!" else ""
    found = set()
    for row in rows:
        for f, v in zip(fields, row):
            one = {"s": f"{f.count}s", "p": f"{f.count}p", "F": "2f", "D": "2d"}.get(f.code, f.code)
            try:
                struct.pack(order + one, *flatten([f], [v]))
            except Exception as exc:  # noqa: BLE001
                found.add(type(exc))
    return found


def flatten(fields, row):
    out = []
    for f, v in zip(fields, row):
        if f.code in "FD" and isinstance(v, complex):
            out += [v.real, v.imag]
        elif f.code in "FD":
            out += [v, 0.0]  # a non-complex: struct refuses it in the real part too
        else:
            out.append(v)
    return out


def column_form(fields, rows, rng: random.Random):
    """The rows as a mapping of columns: Python lists, or numpy arrays when
    the conversion is lossless (int64/uint64/float64/complex128 reach the
    compiled backend's fused path)."""
    cols = {}
    for j, f in enumerate(fields):
        values = [row[j] for row in rows]
        arr = None
        if rng.random() < 0.7 and values:
            if f.kind == "int" and all(type(v) is int for v in values):
                for dt in (np.int64, np.uint64):
                    info = np.iinfo(dt)
                    if all(info.min <= v <= info.max for v in values):
                        arr = np.array(values, dtype=dt)
                        break
            elif f.kind == "float" and all(type(v) is float for v in values):
                arr = np.array(values, dtype=np.float64)
            elif f.kind == "complex" and all(type(v) is complex for v in values):
                arr = np.array(values, dtype=np.complex128)
            elif f.kind == "bool" and all(type(v) is bool for v in values):
                arr = np.array(values, dtype=bool)
        cols[f.name] = arr if arr is not None else values
    return cols


def case_pack(rng: random.Random, s: binrec.Struct, sfmt: str, overlap: bool):
    fields = s.layout.fields
    size = s.size
    op = rng.choice(["pack", "pack", "pack_into"])
    large = rng.random() < 0.02
    if large:  # threaded: numpy columns of valid values, struct checks sampled rows
        n = (2 * MIB + rng.randrange(MIB)) // size + 1
        rows = None
        values = {}
        for f in fields:
            if f.kind == "int":
                lo, hi = binrec._layout.int_range(f.code, f.size)
                lo, hi = max(lo, -(2**63)), min(hi, 2**63 - 1)
                values[f.name] = np.random.default_rng(rng.randrange(2**32)).integers(
                    lo, hi, n, dtype=np.int64, endpoint=True
                )
            elif f.kind in ("float", "complex"):
                v = np.random.default_rng(rng.randrange(2**32)).uniform(-60000, 60000, n)
                values[f.name] = v if f.kind == "float" else v + 1j * v[::-1]
            elif f.kind == "bool":
                values[f.name] = np.random.default_rng(rng.randrange(2**32)).integers(0, 2, n).astype(bool)
            else:
                width = max(f.native.itemsize, 1)
                values[f.name] = (
                    np.frombuffer(random_bytes(rng, n * width), dtype=f"S{width}")
                    if f.code != "c"
                    else np.frombuffer(random_bytes(rng, n), dtype="S1")
                )
        form = "columns"
        threads = rng.choice([1, 2, 3, 0])
    else:
        n = rng.choice([0, 1, 1, 2, 3, 5, rng.randint(0, 30)])
        bias = 1.0 if rng.random() < 0.5 else 0.93
        rows = [tuple(random_value(rng, f, bias) for f in fields) for _ in range(n)]
        form = rng.choice(["rows", "rows", "columns", "array"])
        if form == "rows" and rows and rng.random() < 0.03:
            rows[rng.randrange(n)] = rows[0][:-1] if len(fields) > 1 and rng.random() < 0.5 else rows[0] + (0,)
        threads = rng.choice(THREADS)
        if form == "columns":
            values = column_form(fields, rows, rng)
        elif form == "array":
            # struct-packed valid rows decoded by numpy: pack must give the same bytes back
            expected = struct_pack_rows(sfmt, fields, rows)
            if not isinstance(expected, bytes) or any(f.code == "p" for f in fields):
                form, values = "rows", rows
            else:
                values = (
                    np.frombuffer(expected, dtype=s.layout.wire_dtype).astype(s.dtype) if n else np.empty(0, s.dtype)
                )
        else:
            values = rows
    kw = {} if threads is None else {"threads": threads}
    allowed: set[type] = set()
    if threads == "2":
        allowed.add(TypeError)
    elif threads == -1:
        allowed.add(struct.error)

    if rows is not None:
        if any(len(r) != len(fields) for r in rows):
            expected = struct.error
        else:
            expected = struct_pack_rows(sfmt, fields, rows)
        if not isinstance(expected, bytes):
            # binrec checks field by field, struct row by row: either may name
            # another bad value first, so any bad value's class is acceptable
            allowed.update(value_error_classes(sfmt, fields, rows) | {expected})
    else:
        expected = None  # large: sampled below

    if op == "pack":

        def call():
            return s.pack(values, **kw)

        def check(result) -> str | None:
            if allowed:
                return "binrec succeeded where struct (or the arguments) refuse"
            if not isinstance(result, bytes):
                return f"pack returned {type(result).__name__}"
            if expected is not None:
                return None if result == expected else first_diff(result, expected, size)
            return check_sampled(rng, sfmt, fields, values, result, n, size)

        return describe_pack(op, s, form, values, kw), call, check, allowed

    nbytes = n * size if isinstance(expected, bytes) or expected is None else n * size
    length = max(0, rng.choice([nbytes, nbytes, nbytes + rng.randint(1, 9), nbytes - 1, 0]))
    offset = rng.choice(
        [0, 0, rng.randint(0, length + 2), -nbytes if nbytes else -1, -rng.randint(1, length + 3), length - nbytes]
    )
    initial = random_bytes(rng, length)
    tkind = rng.choice(["bytearray", "bytearray", "memoryview", "ndarray", "bytes"])
    if tkind == "bytes":
        allowed.add(TypeError)
    # struct's own rule for the span: pack_into of one nbytes-long 's' at offset
    target_oracle = bytearray(initial)
    try:
        struct.pack_into(f"{nbytes}s", target_oracle, offset, expected if isinstance(expected, bytes) else b"")
    except struct.error:
        allowed.add(struct.error)

    def make_target():
        if tkind == "bytearray":
            return bytearray(initial)
        if tkind == "memoryview":
            return memoryview(bytearray(initial))
        if tkind == "ndarray":
            return np.frombuffer(bytearray(initial), dtype=np.uint8)
        return bytes(initial)

    def call():
        target = make_target()
        try:
            written = s.pack_into(target, offset, values, **kw)
        except Exception as exc:
            after = bytes(target)
            if after != initial:
                raise AssertionError(f"buffer changed although pack_into raised {type(exc).__name__}: {exc}") from exc
            raise
        return written, bytes(target)

    def check(result) -> str | None:
        if allowed:
            return "binrec succeeded where struct (or the arguments) refuse"
        written, after = result
        if written != nbytes:
            return f"pack_into returned {written}, expected {nbytes}"
        if expected is not None:
            return (
                None
                if after == bytes(target_oracle)
                else "buffer differs from struct.pack_into: " + str(first_diff(after, bytes(target_oracle), size))
            )
        return None

    return describe_pack(op, s, form, values, kw, f"{tkind}[{length}], offset={offset}"), call, check, allowed


def check_sampled(rng, sfmt, fields, columns, result: bytes, n: int, size: int) -> str | None:
    if len(result) != n * size:
        return f"{len(result)} bytes, expected {n * size}"
    for r in sample_rows(rng, n, 16):
        row = [columns[f.name][r : r + 1].tobytes() if f.code == "c" else columns[f.name][r] for f in fields]
        row = [v.item() if hasattr(v, "item") else v for v in row]
        want = struct.pack(sfmt, *flatten(fields, [complex(v) if f.code in "FD" else v for f, v in zip(fields, row)]))
        if result[r * size : (r + 1) * size] != want:
            return f"row {r}: {result[r * size : (r + 1) * size].hex()} != struct {want.hex()}"
    return None


def first_diff(a: bytes, b: bytes, size: int) -> str:
    if len(a) != len(b):
        return f"{len(a)} bytes, struct gives {len(b)}"
    i = next(i for i in range(len(a)) if a[i] != b[i])
    r = i // size
    return f"byte {i} (record {r}): binrec {a[r * size : (r + 1) * size].hex()}, struct {b[r * size : (r + 1) * size].hex()}"


def describe_pack(op, s, form, values, kw, target="") -> str:
    if isinstance(values, np.ndarray):
        shown = f"<structured ndarray of {len(values)} records: {values.tobytes()[:48].hex()}>"
    elif isinstance(values, dict):
        shown = (
            "{"
            + ", ".join(
                f"{k!r}: "
                + (
                    f"<{v.dtype} array of {len(v)}>"
                    if len(v) > 8 and isinstance(v, np.ndarray)
                    else repr(v[:8]) + ("..." if len(v) > 8 else "")
                )
                for k, v in values.items()
            )
            + "}"
        )
    else:
        shown = repr(values[:8]) + ("..." if len(values) > 8 else "")
    head = f"Struct({s.format!r}).{op}(" + (target + ", " if target else "")
    return head + f"[{form}] {shown}" + "".join(f", {k}={v!r}" for k, v in kw.items()) + ")"


# -- iter_unpack ------------------------------------------------------------------------------------


def case_iter(rng: random.Random, s: binrec.Struct, sfmt: str, overlap: bool):
    size = s.size
    n = rng.choice([0, 1, 2, 3, 7, rng.randint(0, 40)])
    raw = random_bytes(rng, n * size + rng.choice([0, 0, 0, rng.randint(1, size)]))
    chunk = rng.choice([1, 2, 3, 5, rng.randint(1, n + 2), 65536, 0])
    trailing = rng.choice(["error", "ignore", "return"])
    src_kind = rng.choice(["bytes", "bytesio", "bytesio"])
    offset = rng.choice([0, 0, rng.randint(0, len(raw)), -rng.randint(1, len(raw) + 2)])
    threads = rng.choice([None, None, 1, 2])
    kw = {"chunk_size": chunk, "trailing": trailing, "offset": offset}
    if threads is not None:
        kw["threads"] = threads
    allowed: set[type] = set()
    if chunk == 0:
        allowed.add(ValueError)
    off = offset
    if off < 0:
        if src_kind != "bytes" or off + len(raw) < 0:
            allowed.update((struct.error, ValueError))
        off += len(raw)
    body = raw[max(off, 0) :]
    whole, rest = divmod(len(body), size)
    if off > len(raw):
        allowed.add(struct.error)
    if rest and trailing == "error":
        allowed.add(struct.error)

    def call():
        source = raw if src_kind == "bytes" else io.BytesIO(raw)
        return [c if isinstance(c, bytes) else c for c in s.iter_unpack(source, **kw)]

    def check(result) -> str | None:
        if allowed:
            return "binrec succeeded where an error was expected"
        arrays = [c for c in result if isinstance(c, np.ndarray)]
        tail = [c for c in result if not isinstance(c, np.ndarray)]
        lens = [len(c) for c in arrays]
        want_lens = [min(chunk, whole - i) for i in range(0, whole, chunk)]
        if lens != want_lens:
            return f"chunk lengths {lens}, expected {want_lens}"
        for c in arrays:
            pad = nonzero_padding(c)
            if pad:
                return "iter_unpack chunk: " + pad
        want_tail = [body[whole * size :]] if trailing == "return" and rest else []
        if tail != want_tail:
            return f"trailing {tail!r}, expected {want_tail!r}"
        if not arrays:
            return None
        allrec = np.concatenate(arrays)
        rows = sample_rows(rng, whole)
        expected = struct_rows(sfmt, body, rows)
        return compare_columns(
            s.layout.fields, {f.name: allrec[f.name].tolist() for f in s.layout.fields}, expected, rows
        )

    return describe_args("iter_unpack", s, kw, raw, src_kind), call, check, allowed


# -- one case -------------------------------------------------------------------------------------------


def run_case(seed: int, index: int, overlap: bool, verbose: bool = False) -> list[tuple[str, str, str]]:
    """Mismatches of one case: (kind, signature, detail)."""
    rng = random.Random(f"{seed}:{index}")
    fmt = random_format(rng)
    sfmt = struct_format(fmt)
    try:
        struct.calcsize(sfmt)
        struct_ok: type | None = None
    except Exception as exc:  # noqa: BLE001
        struct_ok = type(exc)
    try:
        s = binrec.Struct(fmt)
    except Exception as exc:  # noqa: BLE001
        if struct_ok is not None and not isinstance(exc, struct_ok):
            return [
                ("struct", f"Struct(): {type(exc).__name__} vs struct {struct_ok.__name__}", f"Struct({fmt!r}): {exc}")
            ]
        if struct_ok is None and not isinstance(exc, binrec.Error):
            return [
                ("struct", f"Struct(): {type(exc).__name__}", f"Struct({fmt!r}) raised {type(exc).__name__}: {exc}")
            ]
        return []  # empty/zero-size/fields-only-padding formats: refused on purpose
    if struct_ok is not None:
        return [
            (
                "struct",
                "Struct(): accepted a format struct refuses",
                f"Struct({fmt!r}); struct raises {struct_ok.__name__}",
            )
        ]
    if s.size != struct.calcsize(sfmt):
        return [("struct", "size", f"Struct({fmt!r}).size {s.size} != struct {struct.calcsize(sfmt)}")]
    maker = rng.choices([case_unpack, case_pack, case_iter], weights=[5, 4, 2])[0]
    try:
        text, call, check, allowed = maker(rng, s, sfmt, overlap)
    except Skip:
        return []
    state = rng.getstate()
    outcomes = {}
    for name in BACKENDS:
        rng.setstate(state)  # identical draws inside call() on both backends
        outcomes[name] = on_backend(name, call)
    if verbose:
        print(f"case {index}: {text}")
        for name, o in outcomes.items():
            print(f"  {name}: {describe(o)}")
    found = []
    opname = text.split(").")[1].split("(")[0]
    c, p = outcomes["compiled"], outcomes["python"]
    if (
        c[0] != p[0]
        or (c[0] == "raise" and c[1] is not p[1])
        or (c[0] == "ok" and fingerprint(c[1]) != fingerprint(p[1]))
    ):
        sig = f"{opname}: backends differ ({c[0] if c[0] == 'ok' else c[1].__name__} vs {p[0] if p[0] == 'ok' else p[1].__name__})"
        detail = f"{text}\n    compiled: {describe(c)}\n    python:   {describe(p)}"
        if c[0] == p[0] == "ok":
            detail += "\n    " + where_differs(fingerprint(c[1]), fingerprint(p[1]))
        found.append(("backends", sig, detail))
    if check is None:
        return found
    for name, o in outcomes.items():
        if o[0] == "raise":
            if o[1] is AssertionError:
                found.append(("invariant", f"{opname}: {o[2][:60]}", f"{text}\n    {name}: {describe(o)}"))
            elif not allowed or not any(issubclass(o[1], a) for a in allowed):
                want = "success" if not allowed else " or ".join(sorted(a.__name__ for a in allowed))
                found.append(
                    (
                        "struct",
                        f"{opname}: {name} raised {o[1].__name__}, expected {want}",
                        f"{text}\n    {name}: {describe(o)}",
                    )
                )
            continue
        rng.setstate(state)
        try:
            problem = check(o[1])
        except Exception:  # noqa: BLE001
            problem = "checker crashed: " + traceback.format_exc(limit=3)
        if problem:
            kind = "padding" if "padding" in problem else "struct"
            found.append(
                (
                    kind,
                    f"{opname}: {name}: {problem.split(':')[0][:70]}",
                    f"{text}\n    {name}: {describe(o)}\n    {problem}",
                )
            )
    return found


def where_differs(a, b, path="result") -> str:
    if type(a) is not type(b) or not isinstance(a, tuple) or len(a) != len(b):
        if isinstance(a, bytes) and isinstance(b, bytes) and len(a) == len(b):
            i = next(i for i in range(len(a)) if a[i] != b[i])
            return f"{path}: first differing byte {i}: {a[max(0, i - 8) : i + 8].hex()} vs {b[max(0, i - 8) : i + 8].hex()}"
        return f"{path}: {str(a)[:120]} vs {str(b)[:120]}"
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return where_differs(x, y, f"{path}[{k}]")
    return f"{path}: equal?"


# -- main ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=None, help="default: random, printed")
    ap.add_argument("--cases", type=int, default=None, help="stop after N cases")
    ap.add_argument(
        "--seconds", type=float, default=None, help="stop after T seconds (default 60 when --cases is not given)"
    )
    ap.add_argument("--case", type=int, default=None, help="run only case I of --seed (reproduce)")
    ap.add_argument("--overlap", action="store_true", help="also draw out=/pack_into memory that overlaps the input")
    ap.add_argument("--max-report", type=int, default=3, help="reproducers printed per kind of mismatch")
    ap.add_argument("--progress", default=None, help="file that holds the index of the case being run")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if BACKENDS["compiled"] is None:
        print(
            "fuzz_differential: the compiled backend binrec._kernels_c is not importable: nothing to compare",
            file=sys.stderr,
        )
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(
        f"fuzz_differential: seed {seed} (replay one case: --seed {seed} --case I -v); binrec {binrec.__version__} from {os.path.dirname(binrec.__file__)}",
        flush=True,
    )
    if args.case is not None:
        found = run_case(seed, args.case, args.overlap, verbose=True)
        for kind, sig, detail in found:
            print(f"MISMATCH [{kind}] {sig}\n  {detail}")
        return 1 if found else 0
    limit_s = args.seconds if args.seconds is not None else (None if args.cases else 60.0)
    progress = os.open(args.progress, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if args.progress else None
    start = time.monotonic()
    by_sig: dict[str, list[tuple[int, str]]] = defaultdict(list)
    kinds: Counter = Counter()
    i = 0
    while (args.cases is None or i < args.cases) and (limit_s is None or time.monotonic() - start < limit_s):
        if progress is not None:
            os.pwrite(progress, f"seed {seed} case {i:<12d}\n".encode(), 0)
        for kind, sig, detail in run_case(seed, i, args.overlap):
            kinds[kind] += 1
            by_sig[sig].append((i, detail))
        i += 1
    elapsed = time.monotonic() - start
    if progress is not None:
        os.pwrite(progress, f"seed {seed} done {i:<12d}\n".encode(), 0)
    for sig, hits in sorted(by_sig.items(), key=lambda kv: -len(kv[1])):
        print(f"\nMISMATCH {sig}: {len(hits)} case(s)")
        for idx, detail in hits[: args.max_report]:
            print(f"  case {idx} (--seed {seed} --case {idx} -v)\n    {detail}")
    total = sum(len(h) for h in by_sig.values())
    print(
        f"\nfuzz_differential: {i} cases in {elapsed:.0f} s, seed {seed}: "
        + (
            "no mismatches"
            if not total
            else f"{total} mismatches in {len(by_sig)} kinds ({', '.join(f'{k} {v}' for k, v in kinds.items())})"
        )
    )
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
