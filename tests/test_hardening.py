"""Hardening: behaviours found by sanitizers, fork, fuzzing and stress (issue 11).

Each test states its oracle; every test runs on both kernel backends.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import numpy as np
import pytest

import binrec

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")

# 4 MiB of int64 records: large enough for the kernels to split over threads
_RAW = np.arange(1 << 19, dtype="<i8").tobytes()


def _decode_threaded(_: object = None) -> int:
    return int(binrec.Struct("<q").unpack(_RAW, threads=2)["f0"].sum())


def test_threaded_decode_in_fork_pool_child_after_parent_used_threads(backend):
    # oracle: numpy's own sum of the same integers; a child inheriting a dead
    # thread pool would hang, so the pool's result is awaited under a timeout
    expected = int(np.arange(1 << 19, dtype=np.int64).sum())
    assert _decode_threaded() == expected  # the parent has now used its pool
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.map_async(_decode_threaded, range(4)).get(timeout=60)
    assert results == [expected] * 4


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


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("fork tests", allow_module_level=True)
