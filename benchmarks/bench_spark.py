"""Spark: rows/s reading a record file through the "binrec" data source,
beside spark.read.parquet of the same data, on one local Spark session.

    python benchmarks/bench_spark.py            # 100 MB, local[2]
    python benchmarks/bench_spark.py --mb 20    # a quicker run

Both reads are driven to the end by Spark's "noop" sink (every row and
column materialised, nothing written), so neither can answer from metadata
as count() on Parquet would.  Each figure is the median of --repeat runs
after one warm-up run (the warm-up starts the Python workers).  For scale,
Struct.read_file of the same file in this process is reported too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _results import RESULTS, machine, write_results

import binrec
import binrec.spark

FMT, NAMES = ">I10sf", "id name temp"


def make_files(folder: Path, mb: int) -> tuple[Path, Path, int]:
    s = binrec.Struct(FMT, NAMES)
    n = mb * 1_000_000 // s.size
    rng = np.random.default_rng(0)
    arr = np.empty(n, dtype=s.dtype)
    arr["id"] = np.arange(n, dtype=np.uint32)
    arr["name"] = rng.integers(0x61, 0x7B, (n, 10), dtype=np.uint8).view("S10").ravel()
    arr["temp"] = rng.standard_normal(n).astype(np.float32)
    records = folder / "data.bin"
    s.write_file(records, arr)
    table = pa.table(
        {
            "id": pa.array(arr["id"].astype(np.int64)),
            "name": pa.array(arr["name"].tolist(), type=pa.binary()),
            "temp": pa.array(arr["temp"]),
        }
    )
    parquet = folder / "data.parquet"
    pq.write_table(table, parquet)
    return records, parquet, n


def timed(action, repeat: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=100, help="record file size in MB (default 100)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=error")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    binrec.spark.register(spark)
    with tempfile.TemporaryDirectory() as tmp:
        records, parquet, n = make_files(Path(tmp), args.mb)
        s = binrec.Struct(FMT, NAMES)

        def binrec_spark():
            df = spark.read.format("binrec").option("format", FMT).option("names", NAMES).load(str(records))
            df.write.format("noop").mode("overwrite").save()

        def parquet_spark():
            spark.read.parquet(str(parquet)).write.format("noop").mode("overwrite").save()

        parts = spark.read.format("binrec").option("format", FMT).load(str(records)).rdd.getNumPartitions()
        results = {
            "binrec data source (Spark)": timed(binrec_spark, args.repeat),
            "spark.read.parquet (Spark)": timed(parquet_spark, args.repeat),
            "Struct.read_file (one process, no Spark)": timed(lambda: s.read_file(records), args.repeat),
        }
    spark.stop()

    print(f"{machine()}; Spark {spark.version}, local[2]")
    print(
        f"{n:,} records of {s.size} bytes ({args.mb} MB), binrec source in {parts} partitions, median of {args.repeat}"
    )
    print("| reader | seconds | rows/s |\n|---|---:|---:|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {n / seconds:,.0f} |")
    write_results(
        Path(args.out),
        "spark",
        {"records": n, "mb": args.mb, "partitions": parts, "seconds": results, "spark": spark.version},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
