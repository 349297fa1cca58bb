"""Hardening: behaviours found by sanitizers, fork, fuzzing and stress (issue 11).

Each test states its oracle; every test runs on both kernel backends.
"""

from __future__ import annotations

import multiprocessing
import os
import struct
import sys

import numpy as np
import pytest

import binrec

# only the fork tests need fork(); the others run everywhere
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")


def _qemu_user_emulator() -> str | None:
    """The qemu-user binary this process runs under, or None when it runs natively.

    qemu-user fakes the guest's uname and /proc/self/exe, but not the
    kernel's name for the process: /proc/self/status says ``qemu-s390x``.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            name = f.readline().partition(":")[2].strip()
    except OSError:
        return None
    return name if name.startswith("qemu-") else None


# qemu-user 7.2 (Debian 12) aborts, in its own code, a child forked while
# the process has live threads (here the compiled kernels' idle pool) once
# the child starts threads of its own (plugins/core.c
# qemu_plugin_vcpu_init_hook / rcu_read_unlock assertions, exit 127): a plain
# ThreadPoolExecutor does it without binrec, 10 children of 10 on s390x and
# aarch64 (scripts/foreign/fork_after_threads.py). Natively these tests run.
not_under_qemu_user = pytest.mark.skipif(
    _qemu_user_emulator() is not None,
    reason=f"under {_qemu_user_emulator()}: qemu-user aborts a forked child of a threaded process "
    "in its own code (scripts/foreign/fork_after_threads.py reproduces it without binrec)",
)

# 4 MiB of int64 records: large enough for the kernels to split over threads
_RAW = np.arange(1 << 19, dtype="<i8").tobytes()


def _decode_threaded(_: object = None) -> int:
    return int(binrec.Struct("<q").unpack(_RAW, threads=2)["f0"].sum())


@needs_fork
@not_under_qemu_user
def test_threaded_decode_in_fork_pool_child_after_parent_used_threads(backend):
    # oracle: numpy's own sum of the same integers; a child inheriting a dead
    # thread pool would hang, so the pool's result is awaited under a timeout
    expected = int(np.arange(1 << 19, dtype=np.int64).sum())
    assert _decode_threaded() == expected  # the parent has now used its pool
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.map_async(_decode_threaded, range(4)).get(timeout=60)
    assert results == [expected] * 4


@needs_fork
@not_under_qemu_user
def test_threaded_decode_after_bare_os_fork(backend):
    # oracle: the child's exit status says whether its decode was right;
    # the parent waits with a deadline and kills a hung child
    expected = int(np.arange(1 << 19, dtype=np.int64).sum())
    assert _decode_threaded() == expected
    pid = os.fork()
    if pid == 0:  # child
        try:
            ok = _decode_threaded() == expected
        finally:
            os._exit(0 if ok else 3)
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("threaded decode in a forked child did not return within 60 s (inherited dead thread pool)")


# -- item 2: output memory that overlaps the input ------------------------------
# Oracle: struct.iter_unpack / struct.pack on a private copy of the bytes.
# 3000 records of 11 bytes span three of the row kernel's 16 KiB blocks, so a
# kernel that writes a block before it has read the next one is caught.

_N = 3000
_ROWS_FMT = ">qhx"  # byte-swapped fields and a pad byte the kernels zero


def _rows_raw(n: int = _N) -> bytes:
    return b"".join(struct.pack(_ROWS_FMT, i * 1_000_003 - 7, (i % 60000) - 30000) for i in range(n))


def _struct_rows(raw: bytes) -> list[tuple]:
    return list(struct.iter_unpack(_ROWS_FMT, raw))


@pytest.mark.parametrize("shift_records", [0, 3, -3], ids=["exact", "out-after-source", "out-before-source"])
def test_unpack_into_out_overlapping_its_source_decodes_like_struct(backend, shift_records):
    s = binrec.Struct(_ROWS_FMT)
    raw = _rows_raw()
    margin = 3 * s.size
    mem = bytearray(margin + len(raw) + margin)
    mem[margin : margin + len(raw)] = raw
    out = np.frombuffer(mem, dtype=s.dtype, count=_N, offset=margin + shift_records * s.size)
    result = s.unpack(mem, offset=margin, count=_N, out=out)
    assert result is out
    assert out.tolist() == _struct_rows(raw)


def test_unpack_columns_into_out_overlapping_its_source_decodes_like_struct(backend):
    # out["f0"] is the first bytes of the very buffer being decoded
    s = binrec.Struct(_ROWS_FMT)
    raw = _rows_raw()
    mem = bytearray(raw)
    out0 = np.frombuffer(mem, dtype=np.int64, count=_N)
    cols = s.unpack_columns(mem, out={"f0": out0})
    assert cols["f0"] is out0
    expected = _struct_rows(raw)
    assert out0.tolist() == [r[0] for r in expected]
    assert cols["f1"].tolist() == [r[1] for r in expected]


@pytest.mark.parametrize("shift_records", [0, 3, -3], ids=["exact", "target-after-values", "target-before-values"])
def test_pack_into_a_buffer_holding_the_values_packs_like_struct(backend, shift_records):
    # values are a structured array living in the target buffer itself
    s = binrec.Struct(">q")
    size = s.size
    margin = 3 * size
    mem = bytearray(margin + _N * size + margin)
    values = np.frombuffer(mem, dtype=s.dtype, count=_N, offset=margin)
    values["f0"] = np.arange(_N, dtype=np.int64) * 1_000_003 - 7
    expected = struct.pack(f">{_N}q", *values["f0"].tolist())
    start = margin + shift_records * size
    assert s.pack_into(mem, start, values) == len(expected)
    assert bytes(mem[start : start + len(expected)]) == expected


# -- item 3: ndarray subclasses that lie about their memory ---------------------
# The real memory is a uint8 slice of a larger array; the bytes around it are
# guards that must come out untouched (a kernel sized by the lie would write
# or read them).  Oracle: struct for values, the guard bytes for memory.

_GUARD = 0xA5


class _ClaimsInt64(np.ndarray):
    """A uint8 array that says it holds int64 values."""

    @property
    def dtype(self):
        return np.dtype(np.int64)

    @property
    def itemsize(self):
        return 8

    @property
    def nbytes(self):
        return 8 * np.asarray(self).size


class _ClaimsRecords(np.ndarray):
    """A uint8 array that says it is ``Struct('<q').dtype`` of shape (8,)."""

    @property
    def dtype(self):
        return binrec.Struct("<q").dtype

    @property
    def shape(self):
        return (8,)

    @property
    def itemsize(self):
        return 8

    @property
    def nbytes(self):
        return 64


def _guarded(n: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """(whole, inner): inner is n bytes of whole, 64 guard bytes before and
    ``after`` guard bytes after it."""
    whole = np.full(64 + n + after, _GUARD, dtype=np.uint8)
    return whole, whole[64 : 64 + n]


def _guards_intact(whole: np.ndarray, n: int) -> bool:
    return bool((whole[:64] == _GUARD).all() and (whole[64 + n :] == _GUARD).all())


def test_unpack_columns_refuses_out_subclass_lying_about_its_dtype(backend):
    n = 8
    raw = struct.pack(f"<{n}q", *range(-4, 4))
    whole, inner = _guarded(n, after=8 * n)
    liar = inner.view(_ClaimsInt64)
    with pytest.raises(binrec.Error, match="dtype uint8"):
        binrec.Struct("<q").unpack_columns(raw, out={"f0": liar})
    assert _guards_intact(whole, n)


def test_unpack_refuses_out_subclass_lying_about_dtype_and_shape(backend):
    n = 8
    raw = struct.pack(f"<{n}q", *range(n))
    whole, inner = _guarded(n, after=8 * n)
    liar = inner.view(_ClaimsRecords)
    with pytest.raises(binrec.Error, match="dtype uint8"):
        binrec.Struct("<q").unpack(raw, out=liar)
    assert _guards_intact(whole, n)


def test_pack_of_column_subclass_lying_about_its_dtype_packs_its_real_values(backend):
    n = 8
    whole, inner = _guarded(n, after=8 * n)
    inner[:] = np.arange(n, dtype=np.uint8) + 100
    liar = inner.view(_ClaimsInt64)
    packed = binrec.Struct("<q").pack({"f0": liar})
    assert packed == struct.pack(f"<{n}q", *range(100, 100 + n))  # not the guard bytes
    assert _guards_intact(whole, n)


def test_pack_into_of_structured_subclass_lying_about_its_dtype_is_refused_or_exact(backend):
    # a uint8 array claiming to be 8 records: its real memory is 8 bytes
    whole, inner = _guarded(8, after=64)
    inner[:] = np.arange(8, dtype=np.uint8)
    target = bytearray(64)
    liar = inner.view(_ClaimsRecords)
    with pytest.raises((binrec.Error, TypeError)):
        binrec.Struct("<q").pack_into(target, 0, liar)
    assert target == bytearray(64)
    assert _guards_intact(whole, 8)


# -- item 7: zero-width fields in large column decodes ----------------------------
# 131072 records of '<q0s' are 1 MiB of columns, where unpack_columns carves
# its arrays from one block.  Oracle: struct.iter_unpack.

_BIG = 131072


def _q0s_raw() -> bytes:
    return np.arange(_BIG, dtype="<i8").tobytes()


def test_unpack_columns_with_zero_width_field_at_1_mib(backend):
    raw = _q0s_raw()
    cols = binrec.Struct("<q0s").unpack_columns(raw)
    expected = list(struct.iter_unpack("<q0s", raw))
    assert cols["f0"].tolist() == [r[0] for r in expected]
    assert cols["f1"].tolist() == [r[1] for r in expected]  # all b""


def test_unpack_frame_with_zero_width_field_at_1_mib(backend):
    pytest.importorskip("pandas")
    raw = _q0s_raw()
    frame = binrec.Struct("<q0s").unpack_frame(raw)
    assert frame["f0"].tolist() == [r[0] for r in struct.iter_unpack("<q0s", raw)]
    assert len(frame) == _BIG


def test_unpack_table_with_zero_width_field_at_1_mib(backend):
    pytest.importorskip("pyarrow")
    raw = _q0s_raw()
    table = binrec.Struct("<q0s").unpack_table(raw)
    assert table.column("f0").to_pylist() == [r[0] for r in struct.iter_unpack("<q0s", raw)]
    assert table.num_rows == _BIG


# -- item 10: signalling NaNs, and private kernels given absurd sizes -----------------

# float32 bit patterns: signalling NaNs with payloads (both signs), a quiet NaN
_NAN_BITS = [0x7F800001, 0xFFA00005, 0x7FBFFFFF, 0x7FC00001]


@pytest.mark.parametrize("order", ["<", ">"])
def test_signalling_nan_payloads_in_F_fields_survive_bit_for_bit(backend, order):
    # oracle: the raw bytes struct packed from the integer bit patterns
    pairs = [(_NAN_BITS[i], _NAN_BITS[(i + 1) % 4]) for i in range(4)]
    raw = b"".join(struct.pack(f"{order}II", re, im) for re, im in pairs)
    native = b"".join(struct.pack("=II", re, im) for re, im in pairs)
    s = binrec.Struct(f"{order}F")
    rows = s.unpack(raw)
    cols = s.unpack_columns(raw)
    assert rows.tobytes() == native
    assert cols["f0"].tobytes() == native
    assert s.pack(rows) == raw
    assert s.pack(cols) == raw
    assert s.pack({"f0": cols["f0"].astype(f"{order}c8")}) == raw
    target = bytearray(len(raw))
    s.pack_into(target, 0, cols)
    assert bytes(target) == raw


_ABSURD_KERNEL_CALLS = r"""
import dataclasses, sys
import numpy as np
import binrec
from binrec import _backend

k = _backend.python_kernels if sys.argv[1] == "python" else _backend.compiled_kernels
lay = binrec.Struct("<q").layout
zero = dataclasses.replace(lay, size=0)
out = np.empty(2, dtype=lay.dtype)

class LongLen(np.ndarray):
    def __len__(self):
        return 2**61  # 2**61 records of 8 bytes: 2**64 bytes, 0 after wrapping

arr = np.zeros(2, dtype=lay.dtype)
calls = {
    "unpack_rows count*size wraps": lambda: k.unpack_rows(lay, bytes(16), 0, 2**62, out),
    "unpack_rows offset+count*size wraps": lambda: k.unpack_rows(lay, bytes(16), 8, (2**63 - 1) // 8, out),
    "unpack_columns count*size wraps": lambda: k.unpack_columns(lay, bytes(16), 0, 2**62, lay.fields, [np.empty(2, np.int64)]),
    "pack_rows len wraps": lambda: k.pack_rows(lay, arr.view(LongLen), {}, bytearray(16)),
    "pack_bytes len wraps": lambda: k.pack_bytes(lay, arr.view(LongLen), {}),
    "unpack_rows size 0": lambda: k.unpack_rows(zero, bytes(16), 0, 2, out),
    "unpack_columns size 0": lambda: k.unpack_columns(zero, bytes(16), 0, 2, lay.fields, [np.empty(2, np.int64)]),
    "pack_bytes size 0": lambda: k.pack_bytes(zero, arr, {}),
}
if k.FUSED_PACK:  # the Python backend's pack_columns never packs (it answers None)
    from binrec._kernels import PackKind

    small = np.arange(4, dtype=np.uint8)
    calls["pack_columns size 0"] = lambda: k.pack_columns(zero, [(PackKind.I64, np.arange(2), -8, 8, 0, 0)])
    # I64 reads int64 values: a 4-byte uint8 column holds half of one
    calls["pack_columns column too short for its kind"] = lambda: k.pack_columns(lay, [(PackKind.I64, small, -8, 8, 0, 0)])
for name, call in calls.items():
    try:
        call()
    except Exception as exc:
        print(f"{name}: raised {type(exc).__name__}", flush=True)
    else:
        print(f"{name}: NO ERROR", flush=True)
print("done")
"""


def test_private_kernels_refuse_absurd_counts_and_sizes_cleanly(backend):
    # oracle: a separate interpreter; an out-of-bounds access or a division by
    # zero kills it with a signal, a clean refusal prints the exception type
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", _ABSURD_KERNEL_CALLS, backend], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"kernel process died ({proc.returncode}):\n{proc.stdout}{proc.stderr[-2000:]}"
    lines = proc.stdout.splitlines()
    assert lines[-1] == "done"
    assert [line for line in lines[:-1] if "NO ERROR" in line] == []
    assert len(lines) >= 9


class _ClaimsFloat64(np.ndarray):
    """An integer array that says it holds float64 values."""

    @property
    def dtype(self):
        return np.dtype(np.float64)


def test_pack_of_integer_column_claiming_to_be_float_packs_its_real_integers(backend):
    # struct refuses floats for 'i' but packs the integers the memory holds
    column = np.array([1, -2, 3], dtype=np.int32)
    with pytest.raises(struct.error):
        struct.pack("<i", 1.0)
    packed = binrec.Struct("<i").pack({"f0": column.view(_ClaimsFloat64)})
    assert packed == struct.pack("<3i", 1, -2, 3)
