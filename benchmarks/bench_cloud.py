"""Record files on object storage: read throughput from a local S3 server.

A moto S3 server (``moto[server]``, a subprocess on 127.0.0.1, as the
tests start it: ``tests/s3_server.py``) holds one record file of
``--size-mb`` MB.  Measured side by side in one run, median of
``--repeat`` interleaved runs each:

* the ceiling: ``fs.cat(url)``, the whole object into memory in one GET;
* ``Struct.iter_unpack(url)``: ranged reads of 8 MiB, 4 in flight, decoded
  chunk by chunk (target: at least 80% of the ceiling);
* ``Struct.read_file(url)``: the same ranges, decoded into one array.

The server shares the machine's cores with the client, so only the ratios
of one run mean anything.  Writes ``benchmarks/results/cloud.json``.

    python benchmarks/bench_cloud.py [--size-mb 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _results import RESULTS, write_results

import binrec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from s3_server import start_server  # noqa: E402

FMT, NAMES = ">I10sf", "id name temp"


def make_records(size_mb: int) -> np.ndarray:
    s = binrec.Struct(FMT, NAMES)
    n = size_mb * 1_000_000 // s.size
    arr = np.zeros(n, s.dtype)
    arr["id"] = np.arange(n)
    arr["name"] = b"station"
    arr["temp"] = np.random.default_rng(0).normal(20, 5, n).astype(np.float32)
    return arr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()

    s = binrec.Struct(FMT, NAMES)
    arr = make_records(args.size_mb)
    nbytes = arr.nbytes
    with start_server() as server:
        options = server.storage_options
        bucket = server.make_bucket()
        url = f"s3://{bucket}/records.bin"
        t0 = time.perf_counter()
        s.write_file(url, arr, storage_options=options)
        upload_s = time.perf_counter() - t0
        del arr
        fs = server.filesystem()

        def ceiling() -> int:
            return len(fs.cat(url))

        def iter_unpack() -> int:
            return sum(len(chunk) for chunk in s.iter_unpack(url, storage_options=options)) * s.size

        def read_file() -> int:
            return len(s.read_file(url, storage_options=options)) * s.size

        ways = {"fs.cat (ceiling)": ceiling, "Struct.iter_unpack": iter_unpack, "Struct.read_file": read_file}
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.repeat):  # interleaved, so a slow moment hits every way alike
            for name, fn in ways.items():
                t0 = time.perf_counter()
                got = fn()
                times[name].append(time.perf_counter() - t0)
                assert got == nbytes, (name, got, nbytes)

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    mbs = {name: nbytes / 1e6 / t for name, t in medians.items()}
    top = mbs["fs.cat (ceiling)"]
    print(f"{nbytes / 1e6:.0f} MB record file on a local moto S3 server; median of {args.repeat}")
    print(f"(upload by write_file: {nbytes / 1e6 / upload_s:.0f} MB/s)")
    print(f"{'way':<22} {'seconds':>8} {'MB/s':>8} {'of ceiling':>11}")
    for name in ways:
        print(f"{name:<22} {medians[name]:8.2f} {mbs[name]:8.1f} {mbs[name] / top:10.0%}")
    write_results(
        args.out,
        "cloud",
        {
            "size_bytes": nbytes,
            "repeat": args.repeat,
            "upload_mb_s": nbytes / 1e6 / upload_s,
            "seconds": times,
            "median_mb_s": mbs,
            "ratio_to_ceiling": {name: v / top for name, v in mbs.items()},
        },
    )


if __name__ == "__main__":
    main()
