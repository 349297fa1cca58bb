"""Record codec throughput: binrec (compiled, python) vs struct vs plain numpy.

Every figure is a median of repeated runs, and every comparison is made in
the same run on the same buffers, so ratios are meaningful even on a noisy
machine.  Prints a Markdown table (MB/s of wire bytes, and the ratio against
the plain-numpy way), writes ``benchmarks/results/codec.json`` and, when
matplotlib is installed (``pip install binrec[bench]``), a PNG chart.

    python benchmarks/bench_codec.py            # 1e3, 1e5, 1e6 records
    python benchmarks/bench_codec.py --big      # also 1e7
    python benchmarks/bench_codec.py --quick    # 1e3 and 1e5 only
    python benchmarks/bench_codec.py --replot docs/benchmarks/codec.json   # chart only, no run
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _results import RESULTS, load_results, machine, pyplot, write_results

import binrec
from binrec import _backend

RECORDS = {
    "sensor >I10sf": (">I10sf", "id name temp"),
    "wide 36-field >8d8i8h8B4?4e": (">8d8i8h8B4?4e", None),
    "native @bhiqcfd?H": ("@bhiqcfd?H", None),
}


def median_time(fn, budget: float = 0.6, min_reps: int = 5, max_reps: int = 200) -> float:
    """Median seconds per call; small calls are looped so a rep lasts >= 2 ms."""
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    inner = max(1, int(0.002 / once)) if once < 0.002 else 1
    reps = int(min(max_reps, max(min_reps, budget / max(once * inner, 1e-9))))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def numpy_wire_dtype(s: binrec.Struct) -> np.dtype:
    """What a numpy user writes by hand: the wire dtype, '?' read as bool."""
    L = s.layout
    return np.dtype(
        {
            "names": list(s.names),
            "formats": [np.dtype("?") if f.code == "?" else f.wire for f in L.fields],
            "offsets": [f.offset for f in L.fields],
            "itemsize": s.size,
        }
    )


def with_kernels(kernels, fn):
    with _backend.use(kernels):
        return fn()


def make_buffer(s: binrec.Struct, n: int) -> bytes:
    """Valid records (so struct and numpy decode the same values)."""
    rng = np.random.default_rng(42)
    raw = rng.integers(0, 256, n * s.size, dtype=np.uint8)
    arr = np.frombuffer(raw.tobytes(), dtype=s.dtype).copy()
    for f in s.layout.fields:  # finite floats, 0/1 bools
        if f.code in "efd":
            arr[f.name] = rng.normal(0, 100, n).astype(f.native)
        elif f.code == "?":
            arr[f.name] = rng.integers(0, 2, n).astype(bool)
        elif f.code == "c":  # a NUL would read back as b"" (numpy S), which struct refuses for 'c'
            arr[f.name] = rng.integers(65, 91, n).astype(np.uint8).view("S1")
    return s.pack(arr)


def bench_record(label: str, fmt: str, names, n: int, struct_reps: bool) -> list[dict]:
    s = binrec.Struct(fmt, names)
    raw = make_buffer(s, n)
    mb = len(raw) / 1e6
    wire = numpy_wire_dtype(s)
    native = s.dtype
    compiled = _backend.compiled_kernels
    python = _backend.python_kernels
    rows = []

    def add(op, impl, seconds):
        rows.append({"record": label, "n": n, "op": op, "impl": impl, "seconds": seconds, "MBps": mb / seconds})

    big = n >= 1_000_000
    # -- unpack
    add("unpack", "numpy frombuffer+astype", median_time(lambda: np.frombuffer(raw, wire).astype(native)))
    if compiled is not None:
        add("unpack", "binrec compiled", median_time(lambda: with_kernels(compiled, lambda: s.unpack(raw))))
        add(
            "unpack",
            "binrec compiled, 2 threads",
            median_time(lambda: with_kernels(compiled, lambda: s.unpack(raw, threads=2))),
        )
    add("unpack", "binrec python", median_time(lambda: with_kernels(python, lambda: s.unpack(raw))))
    if struct_reps:
        add(
            "unpack",
            "struct.iter_unpack",
            median_time(
                lambda: list(struct.iter_unpack(fmt, raw)), budget=0.5 if big else 0.6, min_reps=1 if big else 3
            ),
        )
    # -- unpack_columns
    add(
        "unpack_columns",
        "numpy per-field astype",
        median_time(lambda: {k: np.frombuffer(raw, wire)[k].astype(native[k]) for k in s.names}),
    )
    if compiled is not None:
        add(
            "unpack_columns",
            "binrec compiled",
            median_time(lambda: with_kernels(compiled, lambda: s.unpack_columns(raw))),
        )
    add("unpack_columns", "binrec python", median_time(lambda: with_kernels(python, lambda: s.unpack_columns(raw))))
    # -- pack
    arr = s.unpack(raw)
    add("pack", "numpy astype+tobytes", median_time(lambda: arr.astype(wire).tobytes()))
    if compiled is not None:
        add("pack", "binrec compiled", median_time(lambda: with_kernels(compiled, lambda: s.pack(arr))))
        add(
            "pack",
            "binrec compiled, 2 threads",
            median_time(lambda: with_kernels(compiled, lambda: s.pack(arr, threads=2))),
        )
    add("pack", "binrec python", median_time(lambda: with_kernels(python, lambda: s.pack(arr))))
    if struct_reps:
        rows_py = arr.tolist()
        pk = struct.Struct(fmt).pack
        add(
            "pack",
            "struct.pack loop",
            median_time(
                lambda: b"".join([pk(*r) for r in rows_py]), budget=0.5 if big else 0.6, min_reps=1 if big else 3
            ),
        )
    return rows


def ratios(rows: list[dict]) -> None:
    base = {}
    for r in rows:
        if r["impl"].startswith("numpy"):
            base[(r["record"], r["n"], r["op"])] = r["seconds"]
    for r in rows:
        b = base.get((r["record"], r["n"], r["op"]))
        r["vs_numpy"] = b / r["seconds"] if b else None


def extra_checks(n: int) -> dict:
    """Per-call overhead, peak memory, and two threads on two halves."""
    out: dict = {}
    compiled = _backend.compiled_kernels
    kern = compiled or _backend.python_kernels
    s = binrec.Struct(">I10sf")
    small = make_buffer(s, 1000)
    out["per_call_us_1000_records"] = with_kernels(kern, lambda: median_time(lambda: s.unpack(small))) * 1e6
    out["per_call_us_1000_records_columns"] = (
        with_kernels(kern, lambda: median_time(lambda: s.unpack_columns(small))) * 1e6
    )
    out["per_call_us_1_record"] = with_kernels(kern, lambda: median_time(lambda: s.unpack(small[: s.size]))) * 1e6
    out["per_call_us_1_record_columns"] = (
        with_kernels(kern, lambda: median_time(lambda: s.unpack_columns(small[: s.size]))) * 1e6
    )
    fresh = np.ones(128 << 20, np.uint8)
    out["fresh_memcpy_MBps"] = len(fresh) / 1e6 / median_time(lambda: fresh.copy())

    wide = binrec.Struct(">8d8i8h8B4?4e")
    raw = make_buffer(wide, n)
    tracemalloc.start()
    res = with_kernels(kern, lambda: wide.unpack(raw))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out["unpack_peak_over_output"] = peak / res.nbytes
    del res

    half = (n // 2) * wide.size
    mv = memoryview(raw)
    one = with_kernels(kern, lambda: median_time(lambda: wide.unpack(mv)))

    def two_halves():
        t = threading.Thread(target=wide.unpack, args=(mv[:half],))
        t.start()
        wide.unpack(mv[half:])
        t.join()

    two = with_kernels(kern, lambda: median_time(two_halves))
    out["two_python_threads_speedup"] = one / two
    out["threads2_speedup"] = one / with_kernels(kern, lambda: median_time(lambda: wide.unpack(mv, threads=2)))
    return out


def print_table(rows: list[dict]) -> None:
    print("| record | records | op | implementation | MB/s | x numpy |")
    print("|---|---:|---|---|---:|---:|")
    for r in rows:
        ratio = f"{r['vs_numpy']:.2f}" if r["vs_numpy"] else ""
        print(f"| {r['record']} | {r['n']:,} | {r['op']} | {r['impl']} | {r['MBps']:,.0f} | {ratio} |")


def chart(rows: list[dict], path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    top = max(r["n"] for r in rows)
    sel = [r for r in rows if r["n"] == top]
    records = list(dict.fromkeys(r["record"] for r in sel))
    ops = ["unpack", "unpack_columns", "pack"]
    fig, axes = plt.subplots(1, len(ops), figsize=(15, 4.5), sharey=False)
    for ax, op in zip(axes, ops):
        impls = list(dict.fromkeys(r["impl"] for r in sel if r["op"] == op))
        width = 0.8 / max(1, len(impls))
        for k, impl in enumerate(impls):
            ys = [
                next((r["MBps"] for r in sel if r["op"] == op and r["impl"] == impl and r["record"] == rec), 0)
                for rec in records
            ]
            ax.bar([i + k * width for i in range(len(records))], ys, width, label=impl)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(records))], [rec.split()[0] for rec in records])
        ax.set_title(f"{op}, {top:,} records")
        ax.set_ylabel("MB/s")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--big", action="store_true", help="also 10,000,000 records")
    p.add_argument("--quick", action="store_true", help="only 1e3 and 1e5 records")
    p.add_argument("--no-struct", action="store_true", help="skip the (slow) struct baselines")
    p.add_argument("--out", default=str(RESULTS), help="folder for JSON and PNG")
    p.add_argument("--replot", metavar="JSON", help="only draw the chart of a recorded run, into --out")
    args = p.parse_args(argv)
    if args.replot:
        return 0 if chart(load_results(args.replot)["rows"], Path(args.out) / "codec.png") else 1
    sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
    if args.big:
        sizes.append(10_000_000)
    print(f"machine: {machine()}; binrec backend {binrec.backend}", file=sys.stderr)
    rows: list[dict] = []
    for n in sizes:
        for label, (fmt, names) in RECORDS.items():
            print(f"  {label} x {n:,} ...", file=sys.stderr)
            rows += bench_record(label, fmt, names, n, struct_reps=not args.no_struct)
    ratios(rows)
    extra = extra_checks(max(s for s in sizes if s <= 1_000_000))
    print(f"\nmachine: {machine()}\n")
    print_table(rows)
    print()
    print(
        f"- per-call time, 1,000 sensor records: unpack {extra['per_call_us_1000_records']:.1f} us, unpack_columns {extra['per_call_us_1000_records_columns']:.1f} us; one record (the fixed overhead): unpack {extra['per_call_us_1_record']:.1f} us, unpack_columns {extra['per_call_us_1_record_columns']:.1f} us"
    )
    print(
        f"- fresh memcpy (the ceiling for any decoder that returns new memory): {extra['fresh_memcpy_MBps']:,.0f} MB/s"
    )
    print(f"- peak traced memory of unpack / output size: {extra['unpack_peak_over_output']:.3f}")
    print(
        f"- wide record, two Python threads each decoding one half vs one thread: {extra['two_python_threads_speedup']:.2f}x; threads=2: {extra['threads2_speedup']:.2f}x"
    )
    out = Path(args.out)
    write_results(out, "codec", {"backend": binrec.backend, "rows": rows, "extra": extra})
    if chart(rows, out / "codec.png"):
        print(f"\nchart: {out / 'codec.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
