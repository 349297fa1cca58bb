"""The values every golden file was made from, stated once.

``make_golden.py`` encodes these; ``tests/test_golden.py`` checks that the
stored files decode to them.  They are literals (or arrays built from
literals and ``arange``), never "whatever the code returns", and they must
not change: a golden file pins what an old release wrote, so a new format
version gets a new golden file made from these same values.

Floats are chosen to be exactly representable in the field or dtype that
stores them (float16 for ``e``, float32 for ``f``), so decoded values compare
with ``==``.
"""

from __future__ import annotations

import datetime
import random

import numpy as np

#: Signing key for envelopes, tags, the signed checkpoint and the signed shelf.
KEY = bytes(range(0x40, 0x60))  # 32 bytes
#: ``binrec.signing.key_id(KEY)``, worked out from the envelope spec:
#: the first 8 bytes of HMAC-SHA256(KEY, b"binrec key id").
KEY_ID_HEX = "06524e276de89f3a"

# -- record files -------------------------------------------------------------------

#: Byte-order prefix -> golden file name.  The native ("@") file is named by
#: the platform that made it: native size and alignment are the platform's.
RECORD_FILES = {
    "<": "records-le.bin",
    ">": "records-be.bin",
    "@": "records-native-x86_64-le.bin",
}
#: Field codes after the byte-order prefix (struct syntax).  In native ("@")
#: order '?' at 12 pushes 'e' to 14, 'q' to 16 and 'H' to 38: real padding.
RECORD_CODES = "i8p?eqd4sbHf"
RECORD_NAMES = ("id", "name", "flag", "half", "big", "x", "code", "small", "u16", "f32")
#: Rows as struct.pack takes them and struct.unpack returns them ('s' values
#: are given at their full width, trailing NULs included).
RECORD_ROWS = [
    (0, b"", False, 0.0, 0, 0.0, b"\x00\x00\x00\x00", 0, 0, 0.0),
    (1, b"alpha", True, 1.5, 1 << 40, 1.0 / 3.0, b"ab\x00\x00", -1, 1, 0.5),
    (-(2**31), b"7bytes!", False, -0.0, -(2**63), -0.0, b"a\x00b\x00", -128, 65535, -2.25),
    (2**31 - 1, b"\x00\xffz", True, 65504.0, 2**63 - 1, 1e308, b"WXYZ", 127, 4660, 3.4028234663852886e38),
    (42, b"p", True, float("inf"), -42, float("-inf"), b"\xff\xfe\xfd\xfc", 5, 258, 1.401298464324817e-45),
    (7, b"last", False, 5.960464477539063e-08, 12345678901, 2.5e-310, b"end\x00", -7, 32768, float("inf")),
]

# -- signed envelope and detached tag --------------------------------------------------

ENVELOPE_PAYLOAD = b"golden payload \x00\x01\x02\xff"
ENVELOPE_CONTEXT = b"binrec.golden.envelope"
#: 2023-11-14T22:13:20.123456789Z, injected through sign(created_ns=...).
ENVELOPE_CREATED_NS = 1_700_000_000_123_456_789

TAG_PAYLOAD = b"detached golden payload: " + bytes(range(256))
TAG_CONTEXT = b"binrec.golden.tag"

# -- versioned pickle ---------------------------------------------------------------------

PICKLE_PROTOCOL = 5
VERSIONED_VERSION = 3
VERSIONED_DATA = {
    "name": "Ann",
    "scores": [1, 2.5, None, -(2**70)],
    "blob": b"\x00\xff",
    "when": datetime.date(2024, 1, 2),
    "pair": (True, "é"),
}

# -- checkpoints --------------------------------------------------------------------------

#: time.time() during the save (exactly representable, so its JSON is exact).
CHECKPOINT_CREATED = 1_700_000_000.5
CHECKPOINT_METADATA = {"loss": 0.125, "epoch": 3, "tags": ["golden", "é"]}
CHECKPOINT_VERSION = 2
#: stdlib ``random.random()`` sequences are reproducible across Python
#: versions for a given seed (numpy's Generator streams are not promised).
CHECKPOINT_SEED = 20240102


def checkpoint_state() -> dict:
    """The state saved in both golden checkpoints (fresh arrays each call)."""
    rng = random.Random(CHECKPOINT_SEED)
    weights = np.array([rng.random() for _ in range(12)], dtype=np.float64).reshape(3, 4)
    return {
        "step": 1234,
        "lr": 0.001,
        "name": "golden",
        "history": [1.5, 2.5, 3.25],
        "flags": (True, None),
        "when": datetime.date(2024, 1, 2),
        "raw": b"\x00\x01\xfe\xff",
        "arrays": {
            "weights": weights,  # float64 (3, 4), from the seeded RNG
            "counts_be": (np.arange(6).reshape(2, 3) - 3).astype(">i4"),  # big-endian int32
            "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),  # F order
            "scalar": np.array(2.5, dtype=np.float32),  # 0-d
            "empty": np.empty((0, 3), dtype=np.int64),  # no bytes at all
            "mask": np.array([True, False, True, True]),  # bool
            "bytes": np.arange(250, 256, dtype=np.uint8),  # uint8
            "strided": np.arange(10, dtype=np.float32)[::3],  # non-contiguous: pickled in the skeleton
        },
    }


#: ``compress=`` of the compressed golden checkpoint.
CHECKPOINT_COMPRESS = ("zstd", 3)


def compressed_checkpoint_state() -> dict:
    """checkpoint_state() plus arrays large enough to be compressed (64 KiB
    and more), from integer arithmetic only (exact on every platform):
    float32 weights with 8 significant bits (bfloat16 precision) and int64
    step counters."""
    state = checkpoint_state()
    k = np.arange(1 << 15, dtype=np.int64)
    # a small-integer pattern times a power of two: exact in float32
    weights = (((k * 2654435761) % 511) - 255).astype(np.float32) * np.float32(2.0**-12)
    state["arrays"]["weights_bf16"] = weights  # 128 KiB: compressed
    state["arrays"]["steps"] = k * 3  # int64, 256 KiB: compressed
    return state


# -- shelves ----------------------------------------------------------------------------------

SHELF_ITEMS = {
    "alpha": {"age": 30, "tags": ["admin"], "when": datetime.date(2024, 1, 2)},
    "beta": [1, 2.5, None, b"\x00"],
    "clé unicode": "valeur",
}
#: Golden shelves made by binrec 0.1.0 (the shelf has no format version field).
SHELF_FILES = {"unsigned": "shelf-0.1.0.sqlite", "signed": "shelf-signed-0.1.0.sqlite"}
#: A shelf whose rows are signed with keyed BLAKE3 (``alg="blake3"``), first
#: written by binrec 0.2.0.dev0 (BLAKE3 rows are new in 0.2.0).
BLAKE3_SHELF_FILE = "shelf-signed-blake3-0.2.0.sqlite"
