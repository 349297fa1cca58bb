"""pytest plugin for the suite under qemu-user emulation (check_foreign_arch.sh).

Loaded with ``-p qemu_plugin``; it changes how many examples run, never which
tests run:

* hypothesis tests keep their strategies and assertions, with ``max_examples``
  capped at ``BINREC_QEMU_MAX_EXAMPLES`` (default 25): emulation is 10 to 50
  times slower, and the native suite runs the full counts;
* the header line names the machine, the byte order and the backend, so a run
  log says what it proved.
"""

from __future__ import annotations

import os
import platform
import sys

CAP = int(os.environ.get("BINREC_QEMU_MAX_EXAMPLES", "25"))


def pytest_report_header(config):
    import binrec

    return f"qemu run: machine {platform.machine()}, {sys.byteorder}-endian, backend {binrec.backend}"


def pytest_collection_modifyitems(config, items):
    try:
        from hypothesis import settings
    except ImportError:
        return
    seen = set()
    for item in items:
        fn = getattr(item, "obj", None)
        current = getattr(fn, "_hypothesis_internal_use_settings", None)
        if current is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        fn._hypothesis_internal_use_settings = settings(
            current, max_examples=min(current.max_examples, CAP), deadline=None
        )
