"""Framed streams: binrec.Framing scan/unpack against a plain struct loop.

An ITCH-like stream (NASDAQ TotalView-ITCH 5.0 layouts, ~30-byte frames in a
realistic type mix) is built in memory; each backend scans and unpacks it
(best of ``--repeat`` runs, single thread), and a plain ``struct`` loop that
does the same job (one ``unpack_from`` per prefix and per body, rows collected
per type) runs on a slice and is scaled by frames.  Peak memory of ``scan``
and ``unpack`` is traced (tracemalloc sees numpy's allocations) and compared
with the size of what they return.

Run: ``python benchmarks/bench_frames.py --size-mb 100`` (the issue's size;
the default is a short run).  Prints a table and writes
``results/bench_frames.json``.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _results import RESULTS, write_results  # noqa: E402

import binrec  # noqa: E402
from binrec import _backend  # noqa: E402

#: ITCH 5.0 bodies after the type byte (big-endian); the mix is by weight
LAYOUTS = {
    b"A": ">HH6sQcI8sI",
    b"D": ">HH6sQ",
    b"E": ">HH6sQIQ",
    b"X": ">HH6sQI",
    b"U": ">HH6sQQII",
    b"P": ">HH6sQcI8sIQ",
    b"S": ">HH6sc",
    b"R": ">HH6s8sccIcc2scccccIc",
}
MIX = {b"A": 40, b"D": 32, b"E": 9, b"X": 6, b"U": 9, b"P": 3, b"S": 0.01, b"R": 0.5}


def build(size_bytes: int, seed: int = 1) -> bytes:
    """An ITCH-like stream of about ``size_bytes``: one random message per
    type is made, then frames are drawn from the mix (bodies repeat; the
    decoder's work does not depend on the values)."""
    rng = random.Random(seed)
    samples = {}
    for tag, fmt in LAYOUTS.items():
        body = bytes(rng.randrange(256) for _ in range(struct.calcsize(fmt)))
        samples[tag] = struct.pack(">Hc", 1 + len(body), tag) + body
    kinds, weights = list(MIX), list(MIX.values())
    parts, total = [], 0
    while total < size_bytes:
        for tag in rng.choices(kinds, weights, k=10_000):
            parts.append(samples[tag])
            total += len(samples[tag])
    return b"".join(parts)


def struct_loop(raw: bytes) -> dict[bytes, list]:
    """The plain-Python job: every frame's fields, per type, with its frame number."""
    prefix = struct.Struct(">Hc")
    bodies = {tag: struct.Struct(fmt) for tag, fmt in LAYOUTS.items()}
    out: dict[bytes, list] = {tag: [] for tag in LAYOUTS}
    pos, n, end = 0, 0, len(raw)
    while pos < end:
        length, tag = prefix.unpack_from(raw, pos)
        out[tag].append((*bodies[tag].unpack_from(raw, pos + 3), n))
        pos += 2 + length
        n += 1
    return out


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def peak(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=float, default=20)
    p.add_argument("--loop-mb", type=float, default=2, help="bytes the struct loop runs on (scaled by frames)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS), help="folder for the JSON")
    args = p.parse_args(argv)

    raw = build(int(args.size_mb * 1e6))
    framing = binrec.Framing(
        ">Hc", names="length type", length="length", counts_from=2, tag="type", formats=LAYOUTS, max_length=64
    )
    frames = len(framing.scan(raw))
    cut = framing.scan(raw, count=max(1, int(frames * args.loop_mb / args.size_mb))).end
    loop_slice = raw[:cut]
    loop_frames = len(framing.scan(loop_slice))
    loop_s = best(lambda: struct_loop(loop_slice), 1) * frames / loop_frames
    rows = [("struct loop (scaled)", loop_s, 1.0)]
    results = {"size_bytes": len(raw), "frames": frames, "struct_loop_s": loop_s, "backends": {}}
    backends = ["python"] + (["compiled"] if _backend.compiled_kernels is not None else [])
    for name in backends:
        with _backend.use(name):
            scan_s = best(lambda: framing.scan(raw), args.repeat)
            unpack_s = best(lambda: framing.unpack(raw), args.repeat)
            scan_peak, index = peak(lambda: framing.scan(raw))
            unpack_peak, tables = peak(lambda: framing.unpack(raw))
        index_bytes = index.prefix.nbytes + index.offsets.nbytes + index.lengths.nbytes
        table_bytes = sum(t.nbytes for t in tables.values())
        results["backends"][name] = {
            "scan_s": scan_s,
            "unpack_s": unpack_s,
            "scan_peak_bytes": scan_peak,
            "index_bytes": index_bytes,
            "unpack_peak_bytes": unpack_peak,
            "table_bytes": table_bytes,
        }
        rows.append((f"{name}: scan", scan_s, loop_s / scan_s))
        rows.append((f"{name}: unpack", unpack_s, loop_s / unpack_s))
        rows.append((f"{name}: scan peak / index", scan_peak / index_bytes, None))
        rows.append((f"{name}: unpack peak / tables", unpack_peak / table_bytes, None))
    print(f"{len(raw) / 1e6:.1f} MB, {frames:,} frames ({len(raw) / frames:.1f} B/frame)")
    print(f"{'':32} {'seconds':>9} {'MB/s':>8} {'Mframes/s':>10} {'x loop':>7}")
    for label, value, ratio in rows:
        if ratio is None:
            print(f"{label:32} {value:9.2f}  (ratio)")
        else:
            print(f"{label:32} {value:9.3f} {len(raw) / value / 1e6:8.0f} {frames / value / 1e6:10.2f} {ratio:7.1f}")
    path = write_results(args.out, "bench_frames", results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
