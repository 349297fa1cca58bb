"""What every benchmark script shares: the machine line, the JSON results
file, and matplotlib (optional).

Each script writes ``<out>/<name>.json`` (``benchmarks/results/`` by default,
gitignored) and, when matplotlib is installed, ``<out>/<name>.png``.  The
recorded runs the documentation shows live in ``docs/benchmarks/``:
``python scripts/render_bench_docs.py --from benchmarks/results`` copies a new
run there and regenerates ``docs/benchmarks.md`` and the README's figures.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    """CPU model, cores, OS, Python and numpy versions, on one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def write_results(out: str | Path, name: str, data: dict[str, Any], *, merge: bool = False) -> Path:
    """Write ``out/name.json`` with the machine and the command line added.

    With ``merge=True`` the keys of an existing file that this run did not
    measure are kept (a partial run, such as ``bench_persist.py --only``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    old: dict[str, Any] = {}
    if merge and path.exists():
        old = json.loads(path.read_text())
    script = Path(sys.argv[0]).name or "?"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    recorded: dict[str, Any] = {"source": f"{script} {' '.join(sys.argv[1:])}".strip() + f", {stamp}"}
    if old.get("recorded"):  # the figures this run kept were measured by that run
        recorded["merged_into"] = old["recorded"]
    record = {**old, **data, "machine": machine(), "recorded": recorded}
    path.write_text(json.dumps(record, indent=1, default=str))
    return path


def load_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None when not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt
