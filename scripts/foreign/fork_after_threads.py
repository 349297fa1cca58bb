"""Reproduce, without binrec, qemu-user's abort of a forked child of a threaded process.

Run it with the emulated interpreter (check_foreign_arch.sh's ``bin/python``
wrapper, or ``qemu-ARCH -L SYSROOT SYSROOT/usr/bin/python3.X``); natively it
prints ``0 of N children failed``.  The parent keeps a thread pool alive (idle
threads at fork time, as binrec's compiled kernels keep theirs), forks, and the
child starts a pool of its own, as tests/test_hardening.py's fork tests do with
binrec's threaded decode.  Under qemu-user 7.2 (Debian 12) some
children die in qemu's own code (``qemu_plugin_vcpu_init_hook: assertion
failed`` or ``rcu_read_unlock: Assertion ... failed``, exit status 127).

    usage: fork_after_threads.py [ROUNDS] [THREADS]
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor


def run_threads(pool: ThreadPoolExecutor, n: int) -> None:
    list(pool.map(sum, [range(200_000)] * n))


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    failed = []
    parent_pool = ThreadPoolExecutor(max_workers=n)
    for _ in range(rounds):
        run_threads(parent_pool, n)  # its threads stay alive, idle, across the fork
        pid = os.fork()
        if pid == 0:
            try:
                run_threads(ThreadPoolExecutor(max_workers=n), n)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            failed.append(code)
    print(f"{os.uname().machine}: {len(failed)} of {rounds} children failed (exit statuses {sorted(set(failed))})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
