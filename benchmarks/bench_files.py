"""Record files: streaming vs in-memory decode, the CLI end to end, Dask.

* ``iter_unpack`` over a generated file (1 GB by default) against
  ``unpack`` of the same bytes already in memory (target >= 80%);
* ``binrec decode`` of that file to .npy and .parquet, wall time and the
  child's peak RSS (bounded: chunks, not the whole file);
* ``binrec.dask.read_records`` on a LocalCluster of 2 worker processes.
* text (issue 13), on ``--text-records`` records (2 M by default), side by
  side: plain decode against ``text=`` (ASCII and UTF-8) for ``unpack``,
  ``unpack_columns`` and ``unpack_table`` (targets: at most 3x, 3x, 2x);
  ``unpack_frame(text=)`` peak memory (tracemalloc) against the frame's own
  size (target: at most 2x); ``binrec decode`` to CSV and JSONL (a fresh
  process, start-up included) against pandas' ``to_csv``/``to_json`` of the
  same frame (in process), with and without pyarrow (target: 3x pandas
  with it, no slower without); ``binrec encode`` of that CSV and JSONL (in
  process) against pandas' ``read_csv(engine="c")``/``read_json(lines=True)``
  plus ``Struct.pack`` of the frame (target: 3x), and for CSV encode's
  Python reader alone; what writing ``unpack(text=)``'s result alone costs
  (numpy, fresh memory), the floor under its ratio; Parquet file size
  against ``pq.write_table``.

Writes ``benchmarks/results/files.json`` and, when matplotlib is installed,
``files.png`` (MB/s of each way to read the file).

    python benchmarks/bench_files.py [--size-mb 1024] [--no-dask]
    python benchmarks/bench_files.py --only text [--text-records 2000000]
    python benchmarks/bench_files.py --replot docs/benchmarks/files.json   # chart only, no run
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import RESULTS, load_results, pyplot, write_results

import binrec

FMT, NAMES = ">I10sf", "id name temp"


def generate(path: Path, size_mb: int) -> int:
    s = binrec.Struct(FMT, NAMES)
    n_total = size_mb * 1_000_000 // s.size
    block = 1_000_000
    rng = np.random.default_rng(0)
    with open(path, "wb") as fh:
        for start in range(0, n_total, block):
            n = min(block, n_total - start)
            arr = np.zeros(n, s.dtype)
            arr["id"] = np.arange(start, start + n)
            arr["name"] = b"station"
            arr["temp"] = rng.normal(20, 5, n).astype(np.float32)
            fh.write(s.pack(arr))
    return n_total


def timed(fn, reps=3) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def child_peak_rss(cli_args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of ``binrec CLI_ARGS`` in a fresh process."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child
    # would report the (large) benchmark parent's peak.
    code = (
        "import sys\n"
        "from binrec.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(hwm, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code, *cli_args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - t0
    return wall, int(res.stderr.strip().splitlines()[-1]) / 1024


def child_wall(cli_args: list[str], block_arrow: bool = False) -> float:
    """Wall seconds of ``binrec CLI_ARGS`` in a fresh process (pyarrow made
    unimportable there with ``block_arrow``)."""
    code = "import sys\n" + ("sys.modules['pyarrow'] = None\n" if block_arrow else "")
    code += "from binrec.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *cli_args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def text_records(n: int, utf8: bool) -> bytes:
    """``n`` records of FMT; names of 4 to 10 bytes, ASCII or with two-byte
    UTF-8 characters (never cut inside one)."""
    s = binrec.Struct(FMT, NAMES)
    arr = np.zeros(n, s.dtype)
    arr["id"] = np.arange(n)
    pool = [("Mü-%d" if utf8 else "st-%d") % i for i in range(1000)] + (
        ["Zürich", "Köln"] if utf8 else ["north", "south"]
    )
    arr["name"] = np.array([name.encode() for name in pool], dtype="S10")[np.arange(n) % len(pool)]
    arr["temp"] = np.random.default_rng(0).normal(20, 5, n).astype(np.float32)
    return s.pack(arr)


def bench_text(tmp: Path, n: int) -> dict:
    """The text measurements of issue 13 (see the module docstring)."""
    import tracemalloc

    s = binrec.Struct(FMT, NAMES)
    res: dict = {"text_records": n}
    ascii_raw, utf8_raw = text_records(n, utf8=False), text_records(n, utf8=True)
    for label, call in (("unpack", s.unpack), ("unpack_columns", s.unpack_columns), ("unpack_table", s.unpack_table)):
        plain = timed(lambda: call(ascii_raw))
        res[f"{label}_plain_s"] = plain
        for enc, raw in (("ascii", ascii_raw), ("utf-8", utf8_raw)):
            t = timed(lambda: call(raw, text="name", encoding=enc))
            res[f"{label}_text_{enc}_s"] = t
            res[f"{label}_text_{enc}_vs_plain"] = t / plain
    # the floor under unpack(text=): writing its result alone (fresh memory,
    # as unpack's is), in numpy, against the plain decode
    res["write_U10_column_s"] = timed(lambda: np.empty(n, "U10").view(np.uint32).fill(0))
    text_dtype = s.unpack(ascii_raw[: s.size], text="name").dtype
    res["write_text_rows_s"] = timed(lambda: np.empty(n, text_dtype).view(np.uint8).fill(0))
    try:
        import pandas  # noqa: F401
    except ImportError:
        return res
    tracemalloc.start()
    frame = s.unpack_frame(utf8_raw, text="name", encoding="utf-8")
    res["frame_text_peak_MB"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    res["frame_MB"] = frame.memory_usage(deep=True).sum() / 1e6
    res["frame_peak_vs_size"] = res["frame_text_peak_MB"] / res["frame_MB"]
    path = tmp / "text.bin"
    path.write_bytes(utf8_raw)
    cli = ["decode", FMT, str(path), "--names", NAMES, "--text", "name", "--encoding", "utf-8", "-q", "-o"]
    res["pandas_to_csv_s"] = timed(lambda: frame.to_csv(index=False), reps=1)
    res["pandas_to_jsonl_s"] = timed(lambda: frame.to_json(orient="records", lines=True), reps=1)
    from binrec.cli import main as cli_main

    for ext, pandas_key in ((".csv", "pandas_to_csv_s"), (".jsonl", "pandas_to_jsonl_s")):
        # in process, like pandas (pyarrow already imported): no interpreter start-up
        key = f"decode{ext}_in_process_s"
        res[key] = timed(lambda: cli_main([*cli, str(tmp / f"out{ext}")]), reps=2)
        res[f"{key[:-2]}_vs_pandas"] = res[pandas_key] / res[key]
        for arrow in (True, False):
            key = f"decode{ext}_{'arrow' if arrow else 'no_arrow'}_s"
            res[key] = child_wall([*cli, str(tmp / f"out{ext}")], block_arrow=not arrow)
            res[f"{key[:-2]}_vs_pandas"] = res[pandas_key] / res[key]
        res[f"decode{ext}_MB"] = (tmp / f"out{ext}").stat().st_size / 1e6
    res.update(bench_encode(tmp, s))
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return res
    for label, extra in (("default", []), ("65536", ["--row-group-size", "65536"])):
        out = tmp / f"out_{label}.parquet"
        wall, rss = child_peak_rss([*cli, str(out), *extra])
        res[f"decode.parquet_rowgroups_{label}_s"] = wall
        res[f"decode.parquet_rowgroups_{label}_peak_rss_MB"] = rss
        res[f"decode.parquet_rowgroups_{label}_MB"] = out.stat().st_size / 1e6
    pq.write_table(s.unpack_table(utf8_raw, text="name", encoding="utf-8"), tmp / "pq.parquet")
    res["pq_write_table_MB"] = (tmp / "pq.parquet").stat().st_size / 1e6
    return res


def bench_encode(tmp: Path, s: binrec.Struct) -> dict:
    """``binrec encode`` (in process) of the CSV and JSONL that decode wrote
    against pandas' reader plus ``Struct.pack`` of its frame; for CSV also
    encode's own Python reader (pyarrow's switched off)."""
    import pandas as pd

    from binrec import cli

    res: dict = {}
    readers = {".csv": lambda p: pd.read_csv(p, engine="c"), ".jsonl": lambda p: pd.read_json(p, lines=True)}
    for ext, read in readers.items():
        src, out = tmp / f"out{ext}", tmp / f"enc{ext}.bin"
        args = ["encode", FMT, str(src), "--text", "name", "--encoding", "utf-8", "-q", "-o", str(out)]
        res[f"pandas_read{ext}_pack_s"] = timed(lambda: s.pack(read(src), encoding="utf-8"), reps=1)
        res[f"encode{ext}_s"] = timed(lambda: cli.main(args), reps=2)
        res[f"encode{ext}_vs_pandas"] = res[f"pandas_read{ext}_pack_s"] / res[f"encode{ext}_s"]
        if ext == ".csv":
            real = cli._arrow_csv_ok
            cli._arrow_csv_ok = lambda: False
            try:
                res["encode.csv_python_reader_s"] = timed(lambda: cli.main(args), reps=1)
            finally:
                cli._arrow_csv_ok = real
            res["encode.csv_python_reader_vs_pandas"] = (
                res["pandas_read.csv_pack_s"] / res["encode.csv_python_reader_s"]
            )
    return res


def print_text(res: dict) -> None:
    print(f"\ntext fields (issue 13): {res['text_records']:,} records of {FMT}, 'name' as text")
    for label in ("unpack", "unpack_columns", "unpack_table"):
        print(
            f"{label:<15} plain {res[f'{label}_plain_s'] * 1e3:7.1f} ms   text ascii {res[f'{label}_text_ascii_s'] * 1e3:7.1f} ms"
            f" ({res[f'{label}_text_ascii_vs_plain']:.2f}x)   text utf-8 {res[f'{label}_text_utf-8_s'] * 1e3:7.1f} ms"
            f" ({res[f'{label}_text_utf-8_vs_plain']:.2f}x)"
        )
    if "frame_MB" in res:
        print(
            f"unpack_frame(text=) peak {res['frame_text_peak_MB']:.1f} MB (tracemalloc) for a {res['frame_MB']:.1f} MB frame"
            f" ({res['frame_peak_vs_size']:.2f}x)"
        )
    for ext, pandas_key in ((".csv", "pandas_to_csv_s"), (".jsonl", "pandas_to_jsonl_s")):
        if f"decode{ext}_arrow_s" in res:
            print(
                f"binrec decode -> {ext:<6} {res[f'decode{ext}_arrow_s']:5.2f} s with pyarrow ({res[f'decode{ext}_arrow_vs_pandas']:.1f}x pandas),"
                f" {res[f'decode{ext}_no_arrow_s']:5.2f} s without ({res[f'decode{ext}_no_arrow_vs_pandas']:.1f}x);"
                f" pandas {res[pandas_key]:5.2f} s; {res[f'decode{ext}_MB']:.1f} MB"
            )
            print(
                f"    in process (no start-up): {res[f'decode{ext}_in_process_s']:5.2f} s"
                f" ({res[f'decode{ext}_in_process_vs_pandas']:.1f}x pandas)"
            )
    if "write_text_rows_s" in res:
        print(
            f"floor: writing unpack(text=)'s rows alone {res['write_text_rows_s'] * 1e3:.1f} ms"
            f" ({res['write_text_rows_s'] / res['unpack_plain_s']:.2f}x plain unpack), a U10 column alone"
            f" {res['write_U10_column_s'] * 1e3:.1f} ms ({res['write_U10_column_s'] / res['unpack_columns_plain_s']:.2f}x"
            " plain unpack_columns)"
        )
    for ext in (".csv", ".jsonl"):
        if f"encode{ext}_s" in res:
            extra = ""
            if ext == ".csv":
                extra = (
                    f"; Python reader {res['encode.csv_python_reader_s']:5.2f} s"
                    f" ({res['encode.csv_python_reader_vs_pandas']:.2f}x)"
                )
            print(
                f"binrec encode <- {ext:<6} {res[f'encode{ext}_s']:5.2f} s ({res[f'encode{ext}_vs_pandas']:.2f}x pandas"
                f" read + pack, {res[f'pandas_read{ext}_pack_s']:5.2f} s){extra}"
            )
    if "pq_write_table_MB" in res:
        print(
            f"Parquet: decode {res['decode.parquet_rowgroups_default_MB']:.2f} MB (1,048,576-row groups,"
            f" peak RSS {res['decode.parquet_rowgroups_default_peak_rss_MB']:.0f} MB),"
            f" {res['decode.parquet_rowgroups_65536_MB']:.2f} MB (65,536-row groups,"
            f" peak RSS {res['decode.parquet_rowgroups_65536_peak_rss_MB']:.0f} MB), pq.write_table {res['pq_write_table_MB']:.2f} MB"
        )


# (label, key of the MB/s figure), drawn top to bottom
CHART_BARS = (
    ("unpack, same chunks in memory", "unpack_in_memory_chunks_MBps"),
    ("iter_unpack(mmap=True)", "iter_unpack_mmap_MBps"),
    ("iter_unpack (readinto)", "iter_unpack_MBps"),
    ("read_file(mmap=True)", "read_file_mmap_MBps"),
    ("unpack, whole file at once", "unpack_in_memory_whole_MBps"),
    ("dask read_records + sum, 2 processes", "dask_MBps"),
    ("binrec decode -> .npy", "decode.npy_MBps"),
    ("binrec decode -> .parquet", "decode.parquet_MBps"),
)


def chart(res: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    bars = [(label, res[key]) for label, key in CHART_BARS if res.get(key)]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 1.2))
    ax.barh([b[0] for b in bars][::-1], [b[1] for b in bars][::-1], color="tab:blue")
    for y, (_, v) in enumerate(bars[::-1]):
        ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
    ax.set_xlim(0, max(b[1] for b in bars) * 1.12)  # room for the value labels
    ax.set_xlabel("MB/s")
    ax.set_title(f"{res['size_mb']:,} MB record file ({res['records']:,} x {FMT}), page cache warm")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=1024)
    p.add_argument("--no-dask", action="store_true")
    p.add_argument("--out", default=str(RESULTS), help="folder for JSON and PNG")
    p.add_argument("--replot", metavar="JSON", help="only draw the chart of a recorded run, into --out")
    p.add_argument("--text-records", type=int, default=2_000_000, help="records for the text measurements")
    p.add_argument("--only", choices=["text"], help="run only this part (its figures merge into the JSON file)")
    args = p.parse_args(argv)
    if args.replot:
        return 0 if chart(load_results(args.replot), Path(args.out) / "files.png") else 1
    if args.only == "text":
        tmp = Path(tempfile.mkdtemp(prefix="binrec-bench-"))
        try:
            res = {"backend": binrec.backend, **bench_text(tmp, args.text_records)}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print_text(res)
        write_results(Path(args.out), "files", res, merge=True)
        return 0
    s = binrec.Struct(FMT, NAMES)
    res: dict = {"backend": binrec.backend, "size_mb": args.size_mb}
    tmp = Path(tempfile.mkdtemp(prefix="binrec-bench-"))
    try:
        path = tmp / "sensors.bin"
        print(f"generating {args.size_mb} MB ...", file=sys.stderr)
        n = generate(path, args.size_mb)
        res["records"] = n
        nbytes = path.stat().st_size

        def stream():
            total = 0
            for chunk in s.iter_unpack(path, chunk_size=1 << 18):
                total += len(chunk)
            assert total == n

        data = path.read_bytes()  # page cache warm, and the in-memory copy

        def in_memory():
            for start in range(0, n, 1 << 18):
                s.unpack(data, offset=start * s.size, count=min(1 << 18, n - start))

        def in_memory_whole():
            s.unpack(data)

        def stream_mmap():
            total = 0
            for chunk in s.iter_unpack(path, chunk_size=1 << 18, mmap=True):
                total += len(chunk)
            assert total == n

        res["iter_unpack_MBps"] = nbytes / 1e6 / timed(stream)
        res["iter_unpack_mmap_MBps"] = nbytes / 1e6 / timed(stream_mmap)
        res["unpack_in_memory_chunks_MBps"] = nbytes / 1e6 / timed(in_memory)
        res["unpack_in_memory_whole_MBps"] = nbytes / 1e6 / timed(in_memory_whole, reps=2)
        data = b""  # free it before the CLI runs
        res["stream_vs_memory"] = res["iter_unpack_MBps"] / res["unpack_in_memory_chunks_MBps"]
        res["stream_mmap_vs_memory"] = res["iter_unpack_mmap_MBps"] / res["unpack_in_memory_chunks_MBps"]
        raw = bytearray(1 << 22)
        view = memoryview(raw)

        def read_only():
            with open(path, "rb", buffering=0) as fh:
                while fh.readinto(view):
                    pass

        res["readinto_only_MBps"] = nbytes / 1e6 / timed(read_only)
        res["stream_vs_memory_whole"] = res["iter_unpack_MBps"] / res["unpack_in_memory_whole_MBps"]
        res["read_file_mmap_MBps"] = nbytes / 1e6 / timed(lambda: s.read_file(path, mmap=True), reps=2)

        for ext in (".npy", ".parquet"):
            if ext == ".parquet":
                try:
                    import pyarrow  # noqa: F401
                except ImportError:
                    continue
            out = tmp / f"out{ext}"
            wall, rss = child_peak_rss(["decode", FMT, str(path), "--names", NAMES, "-q", "-o", str(out)])
            res[f"decode{ext}_s"] = wall
            res[f"decode{ext}_MBps"] = nbytes / 1e6 / wall
            res[f"decode{ext}_peak_rss_MB"] = rss
            out.unlink()

        if not args.no_dask:
            try:
                import distributed

                import binrec.dask as bdask
            except ImportError:
                distributed = None
            if distributed is not None:
                with (
                    distributed.LocalCluster(
                        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                    ) as cluster,
                    distributed.Client(cluster) as client,
                ):
                    # each run gets its own partitioning, hence its own task keys:
                    # the scheduler would otherwise hand back a cached result
                    times = []
                    for mib in (64, 63, 62):
                        df = bdask.read_records(str(path), FMT, NAMES, blocksize=f"{mib}MiB")
                        t0 = time.perf_counter()
                        client.compute(df["temp"].sum()).result()
                        times.append(time.perf_counter() - t0)
                    res["dask_sum_temp_s"] = statistics.median(times)
                    res["dask_MBps"] = nbytes / 1e6 / res["dask_sum_temp_s"]
                    res["dask_partitions"] = df.npartitions
        res.update(bench_text(tmp, args.text_records))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nfile: {args.size_mb} MB, {res['records']:,} records of {FMT}; backend {res['backend']}")
    print(f"readinto alone (kernel copy, no decode):    {res['readinto_only_MBps']:8.0f} MB/s")
    print(f"iter_unpack from file (chunks of 262,144):  {res['iter_unpack_MBps']:8.0f} MB/s")
    print(
        f"iter_unpack(mmap=True):                     {res['iter_unpack_mmap_MBps']:8.0f} MB/s  -> {res['stream_mmap_vs_memory']:.0%} of in-memory chunks"
    )
    print(
        f"unpack in memory, same chunks:              {res['unpack_in_memory_chunks_MBps']:8.0f} MB/s  -> stream is {res['stream_vs_memory']:.0%}"
    )
    print(
        f"unpack in memory, whole buffer at once:     {res['unpack_in_memory_whole_MBps']:8.0f} MB/s  -> stream is {res['stream_vs_memory_whole']:.0%}"
    )
    print(f"read_file(mmap=True):                       {res['read_file_mmap_MBps']:8.0f} MB/s")
    for ext in (".npy", ".parquet"):
        if f"decode{ext}_s" in res:
            print(
                f"binrec decode -> {ext:<8}  {res[f'decode{ext}_s']:6.2f} s ({res[f'decode{ext}_MBps']:.0f} MB/s), peak RSS {res[f'decode{ext}_peak_rss_MB']:.0f} MB"
            )
    if "dask_sum_temp_s" in res:
        print(
            f"dask read_records + sum(temp), LocalCluster 2 processes, {res['dask_partitions']} partitions: {res['dask_sum_temp_s']:.2f} s ({res['dask_MBps']:.0f} MB/s)"
        )
    if "text_records" in res:
        print_text(res)
    out = Path(args.out)
    write_results(out, "files", res)
    if chart(res, out / "files.png"):
        print(f"chart: {out / 'files.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
