"""Dask from object storage: ``binrec.dask.read_records`` of a record file
beside ``dd.read_parquet`` of the same data stored as Parquet, both in the
same bucket of a local S3 server (moto's standalone server, started here in
its own process; s3fs talks to it over HTTP on 127.0.0.1).

    python benchmarks/bench_dask.py            # 200 MB of records
    python benchmarks/bench_dask.py --mb 20    # a quicker run

Both frames are computed whole (every row and column materialised: binrec
keeps the ``10s`` field as a numpy bytes column, Parquet's reader makes a
Python ``bytes`` object per value, about half of its time), then
``["temp"].sum()`` is computed (Parquet reads that one column; binrec reads
every record's bytes and decodes them all), on Dask's threaded scheduler, with the same blocksize for both (the Parquet file is
written with row groups of about that many records, so both get about the
same partitions).  Each figure is the median of --repeat runs after one
warm-up run.  No target: the point is the ratio, measured side by side.  The
server shares the machine's cores with the reader, as it would not in
production, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _results import RESULTS, machine, write_results

import binrec
import binrec.dask

FMT, NAMES = ">I10sf", "id name temp"
BUCKET = "binrec-bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def make_data(mb: int) -> tuple[bytes, bytes, int, int]:
    s = binrec.Struct(FMT, NAMES)
    n = mb * 1_000_000 // s.size
    rng = np.random.default_rng(0)
    arr = np.empty(n, dtype=s.dtype)
    arr["id"] = np.arange(n, dtype=np.uint32)
    arr["name"] = rng.integers(0x61, 0x7B, (n, 10), dtype=np.uint8).view("S10").ravel()
    arr["temp"] = rng.standard_normal(n).astype(np.float32)
    records = s.pack(arr)
    table = pa.table(
        {
            "id": pa.array(arr["id"]),
            "name": pa.array(arr["name"].tolist(), type=pa.binary()),
            "temp": pa.array(arr["temp"]),
        }
    )
    sink = io.BytesIO()
    rows_per_group = (64 << 20) // s.size
    pq.write_table(table, sink, row_group_size=rows_per_group)
    return records, sink.getvalue(), n, rows_per_group


def timed(action: Any, repeat: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="megabytes of records (default 200)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    import dask
    import dask.dataframe as dd
    import s3fs

    records, parquet, n, rows_per_group = make_data(args.mb)
    port = free_port()
    server = start_server(port)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        fs = s3fs.S3FileSystem(**options)
        fs.call_s3("create_bucket", Bucket=BUCKET)
        fs.pipe(f"{BUCKET}/data.bin", records)
        fs.pipe(f"{BUCKET}/data.parquet", parquet)

        def read_binrec() -> int:
            ddf = binrec.dask.read_records(f"s3://{BUCKET}/data.bin", FMT, NAMES, storage_options=options)
            return len(ddf.compute(scheduler="threads"))

        def read_parquet() -> int:
            with dask.config.set({"dataframe.convert-string": False}):
                ddf = dd.read_parquet(f"s3://{BUCKET}/data.parquet", storage_options=options, split_row_groups=True)
                return len(ddf.compute(scheduler="threads"))

        def sum_binrec() -> float:
            ddf = binrec.dask.read_records(f"s3://{BUCKET}/data.bin", FMT, NAMES, storage_options=options)
            return float(ddf["temp"].sum().compute(scheduler="threads"))

        def sum_parquet() -> float:
            ddf = dd.read_parquet(f"s3://{BUCKET}/data.parquet", storage_options=options, split_row_groups=True)
            return float(ddf["temp"].sum().compute(scheduler="threads"))

        def cat() -> int:
            return len(fs.cat_file(f"{BUCKET}/data.bin"))

        assert read_binrec() == n and read_parquet() == n
        t_cat = timed(cat, args.repeat)
        t_binrec = timed(read_binrec, args.repeat)
        t_parquet = timed(read_parquet, args.repeat)
        t_sum_binrec = timed(sum_binrec, args.repeat)
        t_sum_parquet = timed(sum_parquet, args.repeat)
    finally:
        server.terminate()
        server.wait(timeout=30)

    mb_records = len(records) / 1e6
    rows = [
        ("fs.cat_file of the record object (one GET)", t_cat, n / t_cat, mb_records / t_cat),
        ("binrec.dask.read_records(s3://...).compute()", t_binrec, n / t_binrec, mb_records / t_binrec),
        ("dd.read_parquet(s3://...).compute()", t_parquet, n / t_parquet, len(parquet) / 1e6 / t_parquet),
        ('read_records(...)["temp"].sum()', t_sum_binrec, n / t_sum_binrec, mb_records / t_sum_binrec),
        ('read_parquet(...)["temp"].sum() (reads one column)', t_sum_parquet, n / t_sum_parquet, float("nan")),
    ]
    print(f"{machine()}")
    print(
        f"{n:,} records ({mb_records:.0f} MB; Parquet object {len(parquet) / 1e6:.0f} MB), moto server on 127.0.0.1, "
        f"threaded scheduler, median of {args.repeat}"
    )
    print(f"{'read':52} {'s':>7} {'M rows/s':>9} {'MB/s':>7}")
    for name, t, rps, mbps in rows:
        print(f"{name:52} {t:7.2f} {rps / 1e6:9.2f} {mbps:7.0f}")
    print(
        f"binrec / parquet rows/s: whole frame {t_parquet / t_binrec:.2f}, temp.sum() {t_sum_parquet / t_sum_binrec:.2f}"
    )
    path = write_results(
        args.out,
        "dask_s3",
        {
            "records": n,
            "record_mb": mb_records,
            "parquet_mb": len(parquet) / 1e6,
            "repeat": args.repeat,
            "seconds": {
                "cat_file": t_cat,
                "read_records": t_binrec,
                "read_parquet": t_parquet,
                "read_records_temp_sum": t_sum_binrec,
                "read_parquet_temp_sum": t_sum_parquet,
            },
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
