"""The values the cross-byte-order golden files are made from, stated once.

``make_foreign_golden.py`` writes them on each machine in its native byte
order; ``tests/test_golden_foreign.py`` checks every machine's files against
the manifest written beside them.  Literals only, never "whatever the code
returns".  The record rows of the ``@``/``=`` files are ``golden_values``'s.
"""

from __future__ import annotations

import struct

import numpy as np

#: Native-only codes: C long, size_t, ssize_t and void* (sizes are the
#: platform's; 8 bytes on LP64 Linux, 4 on 64-bit Windows for 'l').
#: '?' and 'b' before them make native alignment pad.
LONG_CODES = "?lbLhnNP"
LONG_NAMES = ("flag", "long", "small", "ulong", "short", "ssize", "size", "ptr")
#: For the manifest's explicit spelling: native-only code -> {size: standard code}.
STANDARD_CODE = {
    "l": {4: "i", 8: "q"},
    "L": {4: "I", 8: "Q"},
    "n": {4: "i", 8: "q"},
    "N": {4: "I", 8: "Q"},
    "P": {4: "I", 8: "Q"},
}


def long_rows() -> list[tuple]:
    """Extremes and small values of every native-only code at this
    platform's sizes (struct.calcsize says which)."""

    def signed(code: str) -> tuple[int, int]:
        bits = 8 * struct.calcsize("@" + code)
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def unsigned(code: str) -> int:
        return 2 ** (8 * struct.calcsize("@" + code)) - 1

    lo_l, hi_l = signed("l")
    lo_n, hi_n = signed("n")
    return [
        (False, 0, 0, 0, 0, 0, 0, 0),
        (True, lo_l, -128, unsigned("L"), -32768, lo_n, unsigned("N"), unsigned("P")),
        (True, hi_l, 127, 1, 32767, hi_n, 1, 0x1234),
        (False, -2, 5, 0x0102030405060708 & unsigned("L"), 258, -3, 0x0A0B0C0D & unsigned("N"), 8),
    ]


def encode_row(row: tuple) -> list:
    """A struct row as JSON: floats by float.hex (exact, inf and -0.0
    included), bytes as {"b": hex}."""
    out = []
    for v in row:
        if isinstance(v, bool) or isinstance(v, int):
            out.append(v)
        elif isinstance(v, float):
            out.append({"f": v.hex()})
        else:
            out.append({"b": bytes(v).hex()})
    return out


def decode_row(row: list) -> tuple:
    out = []
    for v in row:
        if isinstance(v, dict) and "f" in v:
            out.append(float.fromhex(v["f"]))
        elif isinstance(v, dict):
            out.append(bytes.fromhex(v["b"]))
        else:
            out.append(v)
    return tuple(out)


ENVELOPE_PAYLOAD = b"foreign golden payload \x00\x01\x02\x03\xfe\xff" + bytes(range(32))


def checkpoint_state() -> dict:
    """Native-order arrays (as the machine's numpy makes them) beside plain data."""
    return {
        "step": 77,
        "name": "foreign",
        "history": [0.5, -1.25, 3e-300],
        "arrays": {
            "f8": np.arange(7, dtype=np.float64) / 8 - 0.25,
            "i4": np.array([-(2**31), -1, 0, 1, 2**31 - 1], dtype=np.int32),
            "u2": np.array([[0, 1, 258], [0x1234, 0xFFFE, 0xFFFF]], dtype=np.uint16),
            "c16": np.array([1 + 2j, -0.5 - 0.25j, complex(float("inf"), -0.0)], dtype=np.complex128),
            "bool": np.array([True, False, True]),
            "f4": np.asfortranarray((np.arange(6, dtype=np.float32) * 1.5).reshape(2, 3)),
            "i8": np.array([-(2**63), 2**62 + 3, 0], dtype=np.int64),
            "be_f8": np.array([1.0, -2.5], dtype=">f8"),  # explicit orders stay as they are
            "le_i2": np.array([1, -2, 0x0102], dtype="<i2"),
        },
    }


def pickled_arrays() -> dict:
    """Native arrays for the signed pickle envelope (pickled in-band)."""
    return {
        "f8": np.array([0.1, -0.0, float("inf")], dtype=np.float64),
        "i8": np.arange(-3, 3, dtype=np.int64) * 1_000_000_007,
        "c8": np.array([1 - 1j, 0.5 + 4j], dtype=np.complex64),
        "u4": np.array([0xDEADBEEF, 1], dtype=np.uint32),
    }
