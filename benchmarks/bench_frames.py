"""Framed streams: binrec.Framing scan/unpack against a plain struct loop,
against construct, and the pcap scan beside Struct.iter_unpack.

An ITCH-like stream (NASDAQ TotalView-ITCH 5.0 layouts, ~30-byte frames in a
realistic type mix) is built in memory; each backend scans and unpacks it
(best of ``--repeat`` runs, single thread), and a plain ``struct`` loop that
does the same job (one ``unpack_from`` per prefix and per body, rows collected
per type) runs on a slice and is scaled by frames.  construct's
``GreedyRange(Prefixed(Int16ub, Switch(type)))`` parser (tests/itch_construct.py,
written from the ITCH specification) runs on a ``--construct-mb`` slice, in
frames/s.  Peak memory of ``scan`` and ``unpack`` is traced (tracemalloc sees
numpy's allocations) and compared with the size of what they return.

With ``--pcap-mb``, a pcap file of that size (packets of 64 to 1,500 bytes,
uniformly drawn) and a record file of the same size are written to a
temporary folder; ``scan`` of the pcap (memory-mapped, from the page cache)
and ``Struct.iter_unpack`` streaming the record file are timed in GB/s.

Run: ``python benchmarks/bench_frames.py --size-mb 100 --pcap-mb 1024`` (the
issue's sizes; the default is a short run).  Prints a table and writes
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

import numpy as np  # noqa: E402
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


def construct_rate(raw: bytes, framing: binrec.Framing, frames: int, megabytes: float) -> tuple[float, int] | None:
    """(seconds, frames) of construct parsing the first ``megabytes`` of
    ``raw`` (whole frames), or None without construct."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    try:
        import itch_construct
    except ImportError:
        return None
    cut = framing.scan(raw, count=max(1, min(frames, int(frames * megabytes * 1e6 / len(raw))))).end
    t0 = time.perf_counter()
    messages = itch_construct.ITCH.parse(raw[:cut])
    return time.perf_counter() - t0, len(messages)


def write_pcap(path: Path, size: int, seed: int = 2) -> int:
    """A pcap file of about ``size`` bytes: the global header, then packets
    of 64 to 1,500 bytes (uniform); answers the packet count."""
    rng = random.Random(seed)
    pool = bytes(rng.randrange(256) for _ in range(1500))
    packets = 0
    with path.open("wb", buffering=1 << 20) as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        written = 24
        header = struct.Struct("<IIII")
        while written < size:
            n = rng.randrange(64, 1501)
            fh.write(header.pack(1_700_000_000 + packets // 1000, packets % 1000, n, n))
            fh.write(pool[:n])
            written += 16 + n
            packets += 1
    return packets


def write_records(path: Path, size: int, record: binrec.Struct) -> int:
    """A record file of about ``size`` bytes (whole records); answers the count."""
    block = record.pack(np.zeros(1 << 16, dtype=record.dtype))
    count = 0
    with path.open("wb") as fh:
        while count * record.size < size:
            fh.write(block)
            count += 1 << 16
    return count


def pcap_figures(megabytes: float, repeat: int) -> dict:
    """GB/s of the pcap scan (memory-mapped, page cache) and of
    Struct.iter_unpack over a record file of the same size, side by side."""
    import mmap
    import tempfile

    pcap = binrec.Framing("<IIII", names="ts_sec ts_usec incl_len orig_len", length="incl_len", max_length=65535)
    record = binrec.Struct(">I10sf", names="id name temp")
    size = int(megabytes * (1 << 20))
    with tempfile.TemporaryDirectory(prefix="bench_frames_") as tmp:
        cap, rec = Path(tmp) / "capture.pcap", Path(tmp) / "records.bin"
        packets = write_pcap(cap, size)
        records = write_records(rec, size, record)
        with cap.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            bytes(memoryview(data)[: 1 << 20])  # the file was just written: in the page cache
            scan_s = best(lambda: pcap.scan(data, offset=24), repeat)
            scan_peak, index = peak(lambda: pcap.scan(data, offset=24))
            assert len(index) == packets
            index_bytes = index.prefix.nbytes + index.offsets.nbytes + index.lengths.nbytes
            del index
            cap_bytes = len(data)

        def stream() -> int:
            return sum(len(chunk) for chunk in record.iter_unpack(rec))

        iter_s = best(stream, repeat)
        rec_bytes = rec.stat().st_size
    return {
        "pcap_bytes": cap_bytes,
        "packets": packets,
        "pcap_scan_s": scan_s,
        "pcap_scan_peak_bytes": scan_peak,
        "pcap_index_bytes": index_bytes,
        "record_bytes": rec_bytes,
        "records": records,
        "iter_unpack_s": iter_s,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=float, default=20)
    p.add_argument("--loop-mb", type=float, default=2, help="bytes the struct loop runs on (scaled by frames)")
    p.add_argument("--construct-mb", type=float, default=1, help="bytes construct parses (frames/s)")
    p.add_argument("--pcap-mb", type=float, default=0, help="size of the pcap and record files (MiB; 0: skip)")
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
    measured = construct_rate(raw, framing, frames, args.construct_mb)
    if measured is not None:
        construct_s = measured[0] * frames / measured[1]
        results["construct_s"] = construct_s
        results["construct_frames"] = measured[1]
        rows.append((f"construct (scaled from {measured[1]:,} frames)", construct_s, loop_s / construct_s))
    backends = ["python"] + (["compiled"] if _backend.compiled_kernels is not None else [])
    for name in backends:
        with _backend.use(name):
            scan_s = best(lambda: framing.scan(raw), args.repeat)
            unpack_s = best(lambda: framing.unpack(raw), args.repeat)
            scan_peak, index = peak(lambda: framing.scan(raw))
            unpack_peak, tables = peak(lambda: framing.unpack(raw))
        index_bytes = index.prefix.nbytes + index.offsets.nbytes + index.lengths.nbytes
        table_bytes = sum(t.nbytes for t in tables.values())
        del index, tables
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
    print(f"{len(raw) / 1e6:.1f} MB, {frames:,} frames ({len(raw) / frames:.1f} B/frame), one thread")
    print(f"{'':40} {'seconds':>9} {'MB/s':>8} {'Mframes/s':>10} {'x loop':>7}")
    for label, value, ratio in rows:
        if ratio is None:
            print(f"{label:40} {value:9.2f}  (ratio)")
        else:
            print(f"{label:40} {value:9.3f} {len(raw) / value / 1e6:8.0f} {frames / value / 1e6:10.2f} {ratio:7.1f}")
    if "construct_s" in results and "compiled" in results["backends"]:
        ratio = results["construct_s"] / results["backends"]["compiled"]["unpack_s"]
        print(f"compiled unpack / construct, frames/s: {ratio:,.0f}x")
    if args.pcap_mb > 0:
        pc = pcap_figures(args.pcap_mb, args.repeat)
        results["pcap"] = pc
        scan_gbs = pc["pcap_bytes"] / pc["pcap_scan_s"] / 1e9
        iter_gbs = pc["record_bytes"] / pc["iter_unpack_s"] / 1e9
        print(
            f"pcap scan, {pc['pcap_bytes'] / 1e9:.2f} GB, {pc['packets']:,} packets (page cache, mmap): "
            f"{scan_gbs:.1f} GB/s, peak / index {pc['pcap_scan_peak_bytes'] / pc['pcap_index_bytes']:.2f}"
        )
        print(
            f"Struct('>I10sf').iter_unpack, {pc['record_bytes'] / 1e9:.2f} GB, {pc['records']:,} records: {iter_gbs:.2f} GB/s"
        )
    path = write_results(args.out, "bench_frames", results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
