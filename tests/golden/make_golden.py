"""Make the golden files that pin binrec's on-disk formats.

Run from the repository root, against the binrec you mean to pin::

    python tests/golden/make_golden.py

Every file is made from the literals in ``golden_values.py`` with fixed keys,
fixed timestamps (``sign(created_ns=)``; ``CheckpointStore.save`` has no
clock argument, so its module clock is frozen while it saves) and a seeded
stdlib RNG.  Files are named after the format version the code writes now
(``envelope-v1.bin``...), so a version bump makes a new file beside the old
ones, and ``tests/test_golden.py`` keeps decoding the old ones.

Existing files are never rewritten silently: a file that would come out
different is an error (a format changed without a version bump), unless
``--force`` is given.  Shelves are SQLite files that differ from run to run
(SQLite's header, the signing time in signed rows), so an existing shelf is
kept as it is.  ``generated-with.json`` records, per file, its SHA-256 and
the versions that made it.

The native-order record file is written only on the platform its name
states (``RECORD_FILES["@"]``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

import binrec
from binrec import checkpoint, pickling, shelf, signing

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import golden_values as gv  # noqa: E402


class _FrozenClock:
    """Stands in for the ``time`` module inside binrec.checkpoint."""

    def __init__(self, now: float) -> None:
        self._now = now

    def time(self) -> float:
        return self._now


def native_record_name() -> str:
    order = "le" if sys.byteorder == "little" else "be"
    return f"records-native-{platform.machine().lower()}-{order}.bin"


def record_files() -> dict[str, bytes]:
    out = {}
    for order, name in gv.RECORD_FILES.items():
        if order == "@" and name != native_record_name():
            print(f"skip {name}: this platform would write {native_record_name()}")
            continue
        fmt = order + gv.RECORD_CODES
        s = binrec.Struct(fmt, names=gv.RECORD_NAMES)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            s.write_file(path, gv.RECORD_ROWS)
            data = path.read_bytes()
        oracle = b"".join(struct.pack(fmt, *row) for row in gv.RECORD_ROWS)
        if data != oracle:
            raise SystemExit(f"{name}: binrec wrote bytes that struct.pack does not: refusing to pin them")
        out[name] = data
    return out


def envelope_files() -> dict[str, bytes]:
    env = signing.sign(gv.ENVELOPE_PAYLOAD, gv.KEY, context=gv.ENVELOPE_CONTEXT, created_ns=gv.ENVELOPE_CREATED_NS)
    tag = signing.sign_detached(gv.TAG_PAYLOAD, gv.KEY, context=gv.TAG_CONTEXT)
    return {f"envelope-v{env[4]}.bin": env, f"detached-tag-v{tag[4]}.bin": tag}


def versioned_pickle_files() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.pkl"
        pickling.save_versioned(path, gv.VERSIONED_DATA, gv.VERSIONED_VERSION, protocol=gv.PICKLE_PROTOCOL)
        data = path.read_bytes()
    return {f"versioned-pickle-v{data[6]}.pkl": data}  # byte 6 of the magic b"BRVER\x00\x01\n"


def checkpoint_files() -> dict[str, bytes]:
    out = {}
    v = checkpoint.FORMAT_VERSION
    for name, key in ((f"checkpoint-v{v}", None), (f"checkpoint-signed-v{v}", gv.KEY)):
        with tempfile.TemporaryDirectory() as tmp:
            store = checkpoint.CheckpointStore(tmp, key=key)
            with mock.patch.object(checkpoint, "time", _FrozenClock(gv.CHECKPOINT_CREATED)):
                store.save(name, gv.checkpoint_state(), gv.CHECKPOINT_METADATA, version=gv.CHECKPOINT_VERSION)
            data = store.path(name).read_bytes()
        if struct.unpack_from("<I", data, 8)[0] != v:
            raise SystemExit(f"{name}: file says format version {struct.unpack_from('<I', data, 8)[0]}, code says {v}")
        out[name + checkpoint.SUFFIX] = data
    return out


def _saved_checkpoint(name: str, state: dict, **options: object) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        store = checkpoint.CheckpointStore(tmp, **options)  # type: ignore[arg-type]
        with mock.patch.object(checkpoint, "time", _FrozenClock(gv.CHECKPOINT_CREATED)):
            store.save(name, state, gv.CHECKPOINT_METADATA, version=gv.CHECKPOINT_VERSION)
        return store.path(name).read_bytes()


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        print(f"skip the files that need {module}: it is not installed")
        return False
    return True


def fast_alg_files() -> dict[str, bytes]:
    """Keyed BLAKE3 (envelope, tag, checkpoint) and XXH3 checkpoints:
    deterministic, like the HMAC-SHA256 ones."""
    out = {}
    v = checkpoint.FORMAT_VERSION
    if _have("blake3"):
        env = signing.sign(
            gv.ENVELOPE_PAYLOAD, gv.KEY, context=gv.ENVELOPE_CONTEXT, created_ns=gv.ENVELOPE_CREATED_NS, alg="blake3"
        )
        tag = signing.sign_detached(gv.TAG_PAYLOAD, gv.KEY, context=gv.TAG_CONTEXT, alg="blake3")
        out[f"envelope-blake3-v{env[4]}.bin"] = env
        out[f"detached-tag-blake3-v{tag[4]}.bin"] = tag
        name = f"checkpoint-blake3-v{v}"
        out[name + checkpoint.SUFFIX] = _saved_checkpoint(name, gv.checkpoint_state(), key=gv.KEY, alg="blake3")
    if _have("xxhash"):
        name = f"checkpoint-xxh3-v{v}"
        out[name + checkpoint.SUFFIX] = _saved_checkpoint(name, gv.checkpoint_state(), checksum="xxh3")
    return out


def compressed_checkpoint_files() -> dict[str, bytes]:
    """A zstd-compressed checkpoint: its sections are the zstd library's
    output, which a newer zstd may make differently (so, like a shelf, an
    existing file is kept, and the test re-encodes it byte for byte only
    under the zstandard version recorded for it)."""
    if not _have("zstandard"):
        return {}
    name = f"checkpoint-zstd-v{checkpoint.FORMAT_VERSION}"
    data = _saved_checkpoint(name, gv.compressed_checkpoint_state(), compress=gv.CHECKPOINT_COMPRESS)
    return {name + checkpoint.SUFFIX: data}


def blake3_shelf_files() -> dict[str, bytes]:
    """A shelf signed with keyed BLAKE3 (not reproducible: SQLite's header
    and each row's signing time)."""
    if not _have("blake3"):
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / gv.BLAKE3_SHELF_FILE
        with shelf.open(path, "n", key=gv.KEY, alg="blake3", protocol=gv.PICKLE_PROTOCOL) as db:
            for k, v in gv.SHELF_ITEMS.items():
                db[k] = v
        leftovers = sorted(p.name for p in Path(tmp).iterdir() if p.name != path.name)
        if leftovers:
            raise SystemExit(f"{path.name}: SQLite left {leftovers} beside the shelf")
        return {path.name: path.read_bytes()}


def shelf_files() -> dict[str, bytes]:
    out = {}
    for kind, name in gv.SHELF_FILES.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            key = gv.KEY if kind == "signed" else None
            with shelf.open(path, "n", key=key, protocol=gv.PICKLE_PROTOCOL) as db:
                for k, v in gv.SHELF_ITEMS.items():
                    db[k] = v
            # The last connection's close checkpoints the WAL into the main
            # file and removes it: the golden shelf is that one file.
            leftovers = sorted(p.name for p in Path(tmp).iterdir() if p.name != name)
            if leftovers:
                raise SystemExit(f"{name}: SQLite left {leftovers} beside the shelf")
            with sqlite3.connect(path) as con:
                assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            con.close()
            out[name] = path.read_bytes()
    return out


DETERMINISTIC = (record_files, envelope_files, versioned_pickle_files, checkpoint_files, fast_alg_files)
NOT_REPRODUCIBLE = (shelf_files, blake3_shelf_files, compressed_checkpoint_files)


def _package_versions(name: str) -> dict[str, str]:
    """What else made a file, beyond ``made_with``: the packages whose
    output or algorithm it holds."""
    versions = {}
    for module, marker in (("blake3", "blake3"), ("xxhash", "xxh3"), ("zstandard", "zstd")):
        if marker in name:
            versions[module] = importlib.metadata.version(module)
    return versions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="folder for the golden files (default: this one)")
    ap.add_argument("--force", action="store_true", help="overwrite files that would come out different")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    made_with = {
        "binrec": binrec.__version__,
        "backend": binrec.backend,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sqlite": sqlite3.sqlite_version,
        "platform": f"{platform.system()} {platform.machine()} {sys.byteorder}-endian",
    }
    record_path = args.out / "generated-with.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    failed = False
    produced = [(fn, True) for fn in DETERMINISTIC] + [(fn, False) for fn in NOT_REPRODUCIBLE]
    for make, deterministic in produced:
        for name, data in make().items():
            target = args.out / name
            if target.exists() and not args.force:
                old = target.read_bytes()
                if old == data:
                    print(f"unchanged {name}")
                    continue
                if not deterministic:
                    print(f"kept      {name} (not reproducible byte for byte; --force remakes it)")
                    continue
                print(f"DIFFERS   {name}: the format changed without a version bump? (--force overwrites)")
                failed = True
                continue
            tmp = target.with_suffix(target.suffix + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            record[name] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                **made_with,
                **_package_versions(name),
            }
            print(f"wrote     {name} ({len(data)} bytes)")
    record_path.write_text(json.dumps(dict(sorted(record.items())), indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(HERE / "__pycache__", ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
