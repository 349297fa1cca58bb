"""Persistence overheads, measured side by side in one run.

* dump_many / load_many against plain pickle in a loop;
* signed_dumps / signed_loads against plain pickle on 1 KB, 1 MB, 100 MB;
* safe_loads against pickle.loads on a 1,000,000-element list of small dicts
  (no globals: the restricted unpickler never scans it), and on pickles
  with globals, which pay for the opcode scan: a list of 100,000
  datetimes, an 8 MB float64 array, 20,000 loads of a tiny dict with a date;
* (with --shelf / --checkpoint, when those modules exist) shelf and
  checkpoint figures;
* state_dict: save/load of a ~200 MB training state (bfloat16-rounded
  float32 weights, Adam moments, int64 step counters) with each
  CheckpointStore checksum and compression option, against pickle + fsync,
  joblib.dump/load (plain and compress=3) and safetensors.numpy
  save_file/load_file, with the file size of each (a missing library is
  skipped with a printed line);
* codecs: ratio and compress/decompress GB/s of each compression candidate
  and level (zstd alone, zstd after binrec's numpy byte-shuffle, Blosc2
  zstd + shuffle when installed, zlib-3 as in joblib's compress=3) on data
  from fixed-seed generators: float32 weights, the same rounded to
  bfloat16 precision, sorted int64 indices, Adam's second moment, random
  bytes; one thread, best of 3.

Prints Markdown tables and writes ``benchmarks/results/persist.json`` (a
run with ``--only`` replaces only its parts of an existing file) and, when
matplotlib is installed, ``persist.png``.

    python benchmarks/bench_persist.py [--quick] [--only safe_loads ...]
    python benchmarks/bench_persist.py --replot docs/benchmarks/persist.json   # chart only, no run
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import RESULTS, load_results, pyplot, write_results

from binrec import _backend, pickling, signing


def median_time(fn, reps: int = 5) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_streams(n: int) -> list[dict]:
    import datetime

    rows = []
    plain = [{"id": i, "name": f"user{i}", "score": i * 0.5} for i in range(n)]
    dated = [{"id": i, "when": datetime.date(2024, 1, 1 + i % 28)} for i in range(n)]
    for label, objs in (("small dicts", plain), ("small dicts with a date", dated)):
        rows.extend(_bench_stream(n, label, objs))
    return rows


def _bench_stream(n: int, label: str, objs: list) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.pkl")

        def plain_dump():
            with open(path, "wb") as fh:
                for o in objs:
                    pickle.dump(o, fh, protocol=pickle.HIGHEST_PROTOCOL)

        def plain_load():
            out = []
            with open(path, "rb") as fh:
                while True:
                    try:
                        out.append(pickle.load(fh))
                    except EOFError:
                        return out

        t_pd = median_time(plain_dump)
        t_pl = median_time(plain_load)
        t_bd = median_time(lambda: pickling.dump_many(objs, path))
        t_bl = median_time(lambda: list(pickling.load_many(path)))
    rows.append({"what": f"dump {n:,} {label}", "pickle loop s": t_pd, "binrec s": t_bd, "ratio": t_bd / t_pd})
    rows.append({"what": f"load {n:,} {label}", "pickle loop s": t_pl, "binrec s": t_bl, "ratio": t_bl / t_pl})
    return rows


def bench_signing(sizes: list[int]) -> list[dict]:
    key = signing.generate_key()
    rows = []
    for size in sizes:
        obj = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
        reps = 5 if size >= 50_000_000 else 20
        t_d = median_time(lambda: pickle.dumps(obj, protocol=5), reps)
        t_sd = median_time(lambda: signing.signed_dumps(obj, key), reps)
        blob_p = pickle.dumps(obj, protocol=5)
        blob_s = signing.signed_dumps(obj, key)
        t_l = median_time(lambda: pickle.loads(blob_p), reps)
        t_sl = median_time(lambda: signing.signed_loads(blob_s, key), reps)
        rows.append(
            {
                "payload": size,
                "dumps s": t_d,
                "signed_dumps s": t_sd,
                "dump overhead": t_sd / t_d - 1,
                "loads s": t_l,
                "signed_loads s": t_sl,
                "load overhead": t_sl / t_l - 1,
                "roundtrip overhead": (t_sd + t_sl) / (t_d + t_l) - 1,
            }
        )
    return rows


def bench_safe_loads(n: int) -> dict:
    data = pickle.dumps([{"id": i, "ok": True, "v": i / 3} for i in range(n)], protocol=pickle.HIGHEST_PROTOCOL)
    plain, safe = [], []
    for _ in range(7):  # interleaved, so drift on a shared machine hits both alike
        t0 = time.perf_counter()
        pickle.loads(data)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pickling.safe_loads(data)
        safe.append(time.perf_counter() - t0)
    t_plain, t_safe = statistics.median(plain), statistics.median(safe)
    return {"elements": n, "pickle.loads s": t_plain, "safe_loads s": t_safe, "ratio": t_safe / t_plain}


def _interleaved(plain_fn, safe_fn, reps: int) -> tuple[float, float]:
    """Median seconds of each, alternating runs so drift hits both alike."""
    plain_fn(), safe_fn()
    plain, safe = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        plain_fn()
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        safe_fn()
        safe.append(time.perf_counter() - t0)
    return statistics.median(plain), statistics.median(safe)


def bench_safe_loads_globals(n_datetimes: int, array_mib: int, n_tiny: int) -> list[dict]:
    """Pickles that name globals: the restricted unpickler scans their opcodes."""
    import datetime

    start = datetime.datetime(2024, 1, 1)
    dts = pickle.dumps([start + datetime.timedelta(seconds=i) for i in range(n_datetimes)], protocol=5)
    arr = pickle.dumps(np.random.default_rng(0).normal(size=array_mib * (1 << 20) // 8), protocol=5)
    tiny = pickle.dumps({"when": datetime.date(2024, 1, 2), "n": 1}, protocol=5)

    def repeat(fn, data, k):
        def run():
            for _ in range(k):
                fn(data)

        return run

    cases = (
        (f"list of {n_datetimes:,} datetimes", lambda: pickle.loads(dts), lambda: pickling.safe_loads(dts), 7),
        (f"{array_mib} MiB float64 array", lambda: pickle.loads(arr), lambda: pickling.safe_loads(arr), 7),
        (
            f"{n_tiny:,} loads of a tiny dict with a date",
            repeat(pickle.loads, tiny, n_tiny),
            repeat(pickling.safe_loads, tiny, n_tiny),
            3,
        ),
    )
    rows = []
    for what, plain_fn, safe_fn, reps in cases:
        t_plain, t_safe = _interleaved(plain_fn, safe_fn, reps)
        rows.append({"what": what, "pickle.loads s": t_plain, "safe_loads s": t_safe, "ratio": t_safe / t_plain})
    return rows


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def bench_shelf(n: int) -> dict:
    import shelve

    from binrec import shelf

    keys = [f"user:{i}" for i in range(n)]
    value = {"name": "Ann", "age": 30, "tags": ["a", "b"]}
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        # binrec
        path = os.path.join(tmp, "b.db")
        with shelf.open(path, "n") as db:
            t0 = time.perf_counter()
            for k in keys[: n // 4]:
                db[k] = value
            single = _rate(n // 4, time.perf_counter() - t0)
            t0 = time.perf_counter()
            with db.transaction():
                for k in keys:
                    db[k] = value
            batched = _rate(n, time.perf_counter() - t0)
            t0 = time.perf_counter()
            for k in keys:
                db[k]
            gets = _rate(n, time.perf_counter() - t0)
        out["binrec.shelf"] = {"single": single, "batched": batched, "gets": gets}
        # stdlib shelve
        spath = os.path.join(tmp, "s")
        with shelve.open(spath, "n") as db:
            t0 = time.perf_counter()
            for k in keys:
                db[k] = value
            sets = _rate(n, time.perf_counter() - t0)
            t0 = time.perf_counter()
            for k in keys:
                db[k]
            gets = _rate(n, time.perf_counter() - t0)
        import dbm

        out[f"shelve ({dbm.whichdb(spath) or 'dbm'})"] = {"single": sets, "batched": float("nan"), "gets": gets}
        try:
            from sqlitedict import SqliteDict

            p = os.path.join(tmp, "sd.db")
            with SqliteDict(p, autocommit=True) as db:
                t0 = time.perf_counter()
                for k in keys[: n // 4]:
                    db[k] = value
                single = _rate(n // 4, time.perf_counter() - t0)
            with SqliteDict(p, autocommit=False) as db:
                t0 = time.perf_counter()
                for k in keys:
                    db[k] = value
                db.commit()
                batched = _rate(n, time.perf_counter() - t0)
                t0 = time.perf_counter()
                for k in keys:
                    db[k]
                gets = _rate(n, time.perf_counter() - t0)
            out["sqlitedict"] = {"single": single, "batched": batched, "gets": gets}
        except ImportError:
            pass
        try:
            import diskcache

            with diskcache.Cache(os.path.join(tmp, "dc")) as cache:
                t0 = time.perf_counter()
                for k in keys:
                    cache[k] = value
                sets = _rate(n, time.perf_counter() - t0)
                t0 = time.perf_counter()
                with cache.transact():
                    for k in keys:
                        cache[k] = value
                batched = _rate(n, time.perf_counter() - t0)
                t0 = time.perf_counter()
                for k in keys:
                    cache[k]
                gets = _rate(n, time.perf_counter() - t0)
            out["diskcache"] = {"single": sets, "batched": batched, "gets": gets}
        except ImportError:
            pass
    return out


def bench_checkpoint(mib: int, list_n: int) -> dict:
    from binrec.checkpoint import CheckpointStore

    rng = np.random.default_rng(0)
    n = mib * (1 << 20) // 8
    state = {f"layer{i}": rng.normal(size=n) for i in range(4)}
    state["step"] = 1000
    out: dict = {"mib": mib, "list_n": list_n}
    with tempfile.TemporaryDirectory() as tmp:
        for label, key in (("binrec", None), ("binrec (key=)", b"k" * 32)):
            store = CheckpointStore(os.path.join(tmp, label.replace(" ", "_")), key=key)
            save = median_time(lambda: store.save("ckpt", state), 3)
            load = median_time(lambda: store.load("ckpt"), 3)
            mm = median_time(lambda: store.load("ckpt", mmap=True), 5)
            out[label] = {"save": save, "load": load, "mmap": mm if key is None else None}
            if key is None:
                out["verify"] = median_time(lambda: store.verify("ckpt"), 3)
        ppath = os.path.join(tmp, "state.pkl")

        def pickle_save():
            with open(ppath, "wb") as fh:
                pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)

        def pickle_load():
            with open(ppath, "rb") as fh:
                return pickle.load(fh)

        def pickle_save_fsync():
            with open(ppath, "wb") as fh:
                pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())

        out["pickle"] = {"save": median_time(pickle_save, 3), "load": median_time(pickle_load, 3), "mmap": None}
        out["pickle + fsync"] = {"save": median_time(pickle_save_fsync, 3), "load": out["pickle"]["load"], "mmap": None}
        try:
            import joblib

            jpath = os.path.join(tmp, "state.joblib")
            out["joblib"] = {
                "save": median_time(lambda: joblib.dump(state, jpath), 3),
                "load": median_time(lambda: joblib.load(jpath), 3),
                "mmap": median_time(lambda: joblib.load(jpath, mmap_mode="r"), 5),
            }
        except ImportError:
            pass
        many = CheckpointStore(os.path.join(tmp, "many"))
        small = {"w": rng.normal(size=(1 << 20) // 8)}  # 1 MiB each
        for i in range(list_n):
            many.save(f"step-{i:04d}", small, metadata={"step": i, "loss": 1.0 / (i + 1)})
        out["list"] = median_time(lambda: many.list(), 5)
    return out


def realistic_state(mib: int) -> dict:
    """A training state of about ``mib`` MiB from a fixed seed: per layer,
    float32 weights rounded to bfloat16 precision, Adam's first moment
    (small float32 noise) and second moment (its squares), and an int64
    step counter per layer; one int64 token-count table."""
    rng = np.random.default_rng(20261128)
    layers = 8
    n = mib * (1 << 20) // (layers * 3 * 4 + 8)  # float32 x3 per layer, plus the table
    state: dict = {"model": {}, "optim": {}, "step": 12_345}
    for i in range(layers):
        w = rng.normal(0, 0.02, n).astype(np.float32)
        w = ((w.view(np.uint32) + 0x8000) & 0xFFFF0000).view(np.float32)
        m = rng.normal(0, 1e-3, n).astype(np.float32)
        state["model"][f"layer{i}.weight"] = w
        state["optim"][f"layer{i}.exp_avg"] = m
        state["optim"][f"layer{i}.exp_avg_sq"] = m * m
        state["optim"][f"layer{i}.step"] = np.array(12_345, dtype=np.int64)
    state["model"]["token_counts"] = np.sort(rng.integers(0, 1 << 40, n // layers)).astype(np.int64)
    return state


def _flat(state: dict) -> dict[str, np.ndarray]:
    """The state as safetensors takes it: one flat dict of arrays."""
    out = {f"{part}.{k}": v for part in ("model", "optim") for k, v in state[part].items()}
    out["step"] = np.array(state["step"], dtype=np.int64)
    return out


def bench_state_dict(mib: int, reps: int = 3) -> dict:
    from binrec.checkpoint import CheckpointStore
    from binrec.signing import UnsupportedAlgorithm

    state = realistic_state(mib)
    raw = sum(a.nbytes for a in _flat(state).values())
    out: dict = {"mib": mib, "raw bytes": raw, "tools": {}}

    def record(label: str, save, load, path: str) -> None:
        t_save = median_time(save, reps)
        t_load = median_time(load, reps)
        size = os.path.getsize(path)
        out["tools"][label] = {"save": t_save, "load": t_load, "bytes": size}
        print(f"  {label}: save {t_save:.3f} s, load {t_load:.3f} s, {raw / size:.2f}x smaller", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        ppath = os.path.join(tmp, "state.pkl")

        def pickle_save_fsync():
            with open(ppath, "wb") as fh:
                pickle.dump(state, fh, protocol=5)
                fh.flush()
                os.fsync(fh.fileno())

        def pickle_load():
            with open(ppath, "rb") as fh:
                return pickle.load(fh)

        record("pickle + fsync", pickle_save_fsync, pickle_load, ppath)
        options = [
            ("checksum='crc32'", {"checksum": "crc32"}),
            ("checksum='xxh3'", {"checksum": "xxh3"}),
            ("crc32, compress='zstd' (level 1)", {"checksum": "crc32", "compress": "zstd"}),
            ("xxh3, compress='zstd' (level 1)", {"checksum": "xxh3", "compress": "zstd"}),
            ("xxh3, compress=('zstd', 3)", {"checksum": "xxh3", "compress": ("zstd", 3)}),
        ]
        for label, opts in options:
            try:
                store = CheckpointStore(os.path.join(tmp, f"ck{len(out['tools'])}"), **opts)
            except UnsupportedAlgorithm as exc:
                print(f"skip binrec {label}: {exc}")
                continue
            record(
                f"binrec {label}",
                lambda store=store: store.save("s", state),
                lambda store=store: store.load("s"),
                str(store.path("s")),
            )
        try:
            import joblib
        except ImportError:
            print("skip joblib: not installed")
        else:
            jpath = os.path.join(tmp, "state.joblib")
            record("joblib.dump/load", lambda: joblib.dump(state, jpath), lambda: joblib.load(jpath), jpath)
            zpath = os.path.join(tmp, "state3.joblib")
            record(
                "joblib compress=3", lambda: joblib.dump(state, zpath, compress=3), lambda: joblib.load(zpath), zpath
            )
        try:
            from safetensors.numpy import load_file, save_file
        except ImportError:
            print("skip safetensors: not installed")
        else:
            flat = _flat(state)
            spath = os.path.join(tmp, "state.safetensors")
            record("safetensors.numpy", lambda: save_file(flat, spath), lambda: load_file(spath), spath)
    return out


def codec_data(mib: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261128)
    n = mib * (1 << 20) // 4
    w = rng.normal(0, 0.02, n).astype(np.float32)
    m = rng.normal(0, 1e-3, n).astype(np.float32)
    return {
        "float32 weights N(0, 0.02)": w,
        "float32 rounded to bfloat16": ((w.view(np.uint32) + 0x8000) & 0xFFFF0000).view(np.float32),
        "sorted int64 indices": np.sort(rng.integers(0, 1 << 40, n // 2)).astype(np.int64),
        "Adam second moment (float32)": m * m,
        "random bytes": rng.integers(0, 256, n * 4, dtype=np.uint8),
    }


def _best(fn, reps: int = 3):
    out, best = None, float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _shuffled(a: np.ndarray) -> np.ndarray:
    from binrec.checkpoint import _shuffle  # binrec's own, as a save runs it

    return _shuffle(memoryview(a).cast("B"), a.dtype.itemsize)


def _unshuffled(data: bytes, itemsize: int) -> np.ndarray:
    from binrec.checkpoint import _unshuffle

    out = np.empty(len(data), np.uint8)
    _unshuffle(data, itemsize, out)
    return out


def codec_candidates() -> dict:
    """name -> (compress(array) -> bytes, decompress(bytes, array) -> bytes-like)."""
    import zlib

    cands: dict = {}
    try:
        import zstandard
    except ImportError:
        print("skip zstd candidates: zstandard is not installed")
    else:
        for level in (1, 3):
            c = zstandard.ZstdCompressor(level=level)
            d = zstandard.ZstdDecompressor()
            cands[f"zstd-{level}"] = (lambda a, c=c: c.compress(a), lambda z, a, d=d: d.decompress(z))
            cands[f"shuffle + zstd-{level} (binrec)"] = (
                lambda a, c=c: c.compress(_shuffled(a)),
                lambda z, a, d=d: _unshuffled(d.decompress(z), a.dtype.itemsize),
            )
    try:
        import blosc2
    except ImportError:
        print("skip Blosc2: not installed")
    else:
        for level in (1, 3):
            cands[f"Blosc2 zstd-{level} + shuffle"] = (
                lambda a, level=level: blosc2.compress2(
                    a,
                    codec=blosc2.Codec.ZSTD,
                    clevel=level,
                    filters=[blosc2.Filter.SHUFFLE],
                    typesize=a.dtype.itemsize,
                    nthreads=1,
                ),
                lambda z, a: blosc2.decompress2(z),
            )
    cands["zlib-3 (joblib compress=3)"] = (lambda a: zlib.compress(a, 3), lambda z, a: zlib.decompress(z))
    return cands


def bench_codecs(mib: int) -> list[dict]:
    rows = []
    cands = codec_candidates()
    for kind, a in codec_data(mib).items():
        for name, (comp, decomp) in cands.items():
            z, t_c = _best(lambda: comp(a))
            back, t_d = _best(lambda: decomp(z, a))
            assert bytes(memoryview(back).cast("B")) == a.tobytes(), (kind, name)
            rows.append(
                {
                    "data": kind,
                    "codec": name,
                    "ratio": a.nbytes / len(z),
                    "comp GB/s": a.nbytes / t_c / 1e9,
                    "decomp GB/s": a.nbytes / t_d / 1e9,
                }
            )
            print(f"  {kind}, {name}: {rows[-1]['ratio']:.2f}x", file=sys.stderr)
    return rows


def _grouped(ax, groups: list[str], series: dict[str, list], ylabel: str, title: str) -> None:
    """Bars per group, one colour per series; missing values (None, NaN) are left out."""
    width = 0.8 / max(1, len(series))
    for k, (name, ys) in enumerate(series.items()):
        xs = [i + k * width for i, y in enumerate(ys) if y is not None and not math.isnan(y)]
        ax.bar(xs, [y for y in ys if y is not None and not math.isnan(y)], width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))], groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)


def chart(results: dict, path: Path) -> bool:
    """One panel per part that the results hold: streams, signing, shelf, checkpoint."""
    plt = pyplot()
    if plt is None:
        return False
    panels = [p for p in ("streams", "signing", "shelf", "checkpoint") if results.get(p)]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, part in zip(axes[0], panels):
        r = results[part]
        if part == "streams":
            _grouped(
                ax,
                [x["what"].replace(" small dicts", "\nsmall dicts") for x in r],
                {"pickle in a loop": [x["pickle loop s"] for x in r], "binrec": [x["binrec s"] for x in r]},
                "seconds",
                "dump_many / load_many",
            )
        elif part == "signing":
            _grouped(
                ax,
                [f"{x['payload']:,} B" for x in r],
                {
                    "pickle.dumps": [x["dumps s"] * 1e3 for x in r],
                    "signed_dumps": [x["signed_dumps s"] * 1e3 for x in r],
                    "pickle.loads": [x["loads s"] * 1e3 for x in r],
                    "signed_loads": [x["signed_loads s"] * 1e3 for x in r],
                },
                "ms (log scale)",
                "signed pickles",
            )
            ax.set_yscale("log")
        elif part == "shelf":
            names = list(r)
            _grouped(
                ax,
                ["sets, each commits", "sets, one transaction", "gets"],
                {n: [r[n].get("single"), r[n].get("batched"), r[n].get("gets")] for n in names},
                "operations / s",
                "shelves",
            )
        else:
            tools = [t for t in ("binrec", "binrec (key=)", "pickle", "pickle + fsync", "joblib") if t in r]
            _grouped(
                ax,
                ["save", "load"],
                {t: [r[t]["save"] * 1e3, r[t]["load"] * 1e3] for t in tools},
                "ms",
                f"checkpoint, 4 x {r['mib']} MiB float64",
            )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


PARTS = ("streams", "signing", "safe_loads", "shelf", "checkpoint", "state_dict", "codecs")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--out", default=str(RESULTS), help="folder for JSON and PNG")
    p.add_argument("--replot", metavar="JSON", help="only draw the chart of a recorded run, into --out")
    p.add_argument(
        "--only",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        metavar="PART",
        help=f"run only these: {', '.join(PARTS)}",
    )
    args = p.parse_args(argv)
    if args.replot:
        return 0 if chart(load_results(args.replot), Path(args.out) / "persist.png") else 1
    n_stream = 20_000 if args.quick else 200_000
    sizes = [1_000, 1_000_000] + ([] if args.quick else [100_000_000])
    n_safe = 100_000 if args.quick else 1_000_000
    results: dict = {"backend": _backend.backend}
    if "streams" in args.only:
        print("streams ...", file=sys.stderr)
        results["streams"] = bench_streams(n_stream)
        print("\n| stream | pickle loop (s) | binrec (s) | binrec / pickle |\n|---|---:|---:|---:|")
        for r in results["streams"]:
            print(f"| {r['what']} | {r['pickle loop s']:.3f} | {r['binrec s']:.3f} | {r['ratio']:.2f} |")
    if "signing" in args.only:
        print("signing ...", file=sys.stderr)
        results["signing"] = bench_signing(sizes)
        print(
            "\n| payload | pickle.dumps | signed_dumps | overhead | pickle.loads | signed_loads | overhead |\n|---:|---:|---:|---:|---:|---:|---:|"
        )
        for r in results["signing"]:
            print(
                f"| {r['payload']:,} B | {r['dumps s'] * 1e3:.3f} ms | {r['signed_dumps s'] * 1e3:.3f} ms | {r['dump overhead']:+.0%} | "
                f"{r['loads s'] * 1e3:.3f} ms | {r['signed_loads s'] * 1e3:.3f} ms | {r['load overhead']:+.0%} |"
            )
    if "safe_loads" in args.only:
        print("safe_loads ...", file=sys.stderr)
        results["safe_loads"] = s = bench_safe_loads(n_safe)
        print(
            f"\nsafe_loads vs pickle.loads, list of {s['elements']:,} small dicts: {s['safe_loads s']:.3f} s vs {s['pickle.loads s']:.3f} s = {s['ratio']:.2f}x"
        )
        results["safe_loads_globals"] = bench_safe_loads_globals(
            10_000 if args.quick else 100_000, 1 if args.quick else 8, 2_000 if args.quick else 20_000
        )
        print(
            f"\n| pickle with globals ({_backend.backend} backend) | pickle.loads | safe_loads | ratio |\n|---|---:|---:|---:|"
        )
        for r in results["safe_loads_globals"]:
            print(
                f"| {r['what']} | {r['pickle.loads s'] * 1e3:.2f} ms | {r['safe_loads s'] * 1e3:.2f} ms | {r['ratio']:.2f}x |"
            )
    if "shelf" in args.only:
        print("shelf ...", file=sys.stderr)
        results["shelf"] = bench_shelf(5_000 if args.quick else 20_000)
        print("\n| shelf | sets/s (each commits) | sets/s (batched) | gets/s |\n|---|---:|---:|---:|")
        for name, r in results["shelf"].items():
            print(
                f"| {name} | {r.get('single', float('nan')):,.0f} | {r.get('batched', float('nan')):,.0f} | {r.get('gets', float('nan')):,.0f} |"
            )
    if "checkpoint" in args.only:
        print("checkpoint ...", file=sys.stderr)
        results["checkpoint"] = c = bench_checkpoint(4 if args.quick else 32, 20 if args.quick else 100)
        print(f"\ncheckpoint of 4 x {c['mib']} MiB float64 arrays (ms):\n")
        print("| tool | save | load | mmap open |\n|---|---:|---:|---:|")
        for name in ("binrec", "binrec (key=)", "pickle", "pickle + fsync", "joblib"):
            if name in c:
                r = c[name]
                mm = f"{r['mmap'] * 1e3:.2f}" if r.get("mmap") is not None else "-"
                print(f"| {name} | {r['save'] * 1e3:.1f} | {r['load'] * 1e3:.1f} | {mm} |")
        print(
            f"\nlist() of {c['list_n']} checkpoints: {c['list'] * 1e3:.2f} ms; verify() of one: {c['verify'] * 1e3:.1f} ms"
        )
    if "state_dict" in args.only:
        print("state_dict ...", file=sys.stderr)
        results["state_dict"] = sd = bench_state_dict(32 if args.quick else 200)
        base = sd["tools"]["pickle + fsync"]
        print(
            f"\nstate dict of {sd['raw bytes'] / 1e6:.0f} MB (bfloat16-rounded float32 weights, Adam moments, int64 counters),"
            " median of 3:\n"
        )
        print(
            "| tool | save (s) | / pickle+fsync | load (s) | / pickle | file (MB) | smaller by |\n|---|---:|---:|---:|---:|---:|---:|"
        )
        for name, r in sd["tools"].items():
            print(
                f"| {name} | {r['save']:.3f} | {r['save'] / base['save']:.2f} | {r['load']:.3f} | {r['load'] / base['load']:.2f} "
                f"| {r['bytes'] / 1e6:.1f} | {sd['raw bytes'] / r['bytes']:.2f}x |"
            )
    if "codecs" in args.only:
        print("codecs ...", file=sys.stderr)
        results["codecs"] = bench_codecs(8 if args.quick else 32)
        print("\n| data | codec | ratio | compress GB/s | decompress GB/s |\n|---|---|---:|---:|---:|")
        for r in results["codecs"]:
            print(f"| {r['data']} | {r['codec']} | {r['ratio']:.2f}x | {r['comp GB/s']:.2f} | {r['decomp GB/s']:.2f} |")
    out = Path(args.out)
    merged = write_results(out, "persist", results, merge=set(args.only) != set(PARTS))
    if chart(load_results(merged), out / "persist.png"):
        print(f"chart: {out / 'persist.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
