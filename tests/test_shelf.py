"""binrec.shelf against its oracles: the shelve API, sqlite3 itself, real
processes and a real SIGKILL."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import shelve
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from binrec import shelf
from binrec.pickling import ALL, ForbiddenGlobal
from binrec.signing import BadSignature

KEY = bytes(range(32))


needs_sigkill = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only (Windows has no signals to kill with)"
)


def test_mapping_api(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path) as db:
        db["alice"] = {"age": 30}
        db["bob"] = [1, 2]
        assert db["alice"] == {"age": 30} and "bob" in db and "carol" not in db
        assert sorted(db) == ["alice", "bob"] and len(db) == 2
        del db["bob"]
        with pytest.raises(KeyError):
            db["bob"]
        with pytest.raises(KeyError):
            del db["bob"]
        with pytest.raises(TypeError):
            db[1] = 2
        assert db.get("zz", 5) == 5
    with pytest.raises(ValueError, match="closed"):
        db["x"]


def test_storage_is_one_sqlite_table_with_durable_settings(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path) as db:
        db["k"] = "v"
        assert db._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db._db.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    con = sqlite3.connect(path)
    rows = con.execute("SELECT key, value FROM binrec_shelf").fetchall()
    assert rows == [("k", pickle.dumps("v", protocol=pickle.HIGHEST_PROTOCOL))]
    con.close()


def test_flags(tmp_path):
    path = tmp_path / "s.db"
    with pytest.raises(FileNotFoundError):
        shelf.open(path, "r")
    with pytest.raises(FileNotFoundError):
        shelf.open(path, "w")
    with shelf.open(path, "c") as db:
        db["a"] = 1
    with shelf.open(path, "w") as db:
        db["b"] = 2
    with shelf.open(path, "n") as db:
        assert len(db) == 0
        db["c"] = 3
    with pytest.raises(ValueError):
        shelf.open(path, "x")


def test_read_only_is_read_only_and_does_not_block_writers(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path) as db:
        db["a"] = 1
    ro = shelf.open(path, "r")
    try:
        assert ro["a"] == 1
        with pytest.raises(PermissionError):
            ro["a"] = 2
        with pytest.raises(PermissionError):
            del ro["a"]
        # a writer commits while the reader is open (and mid-iteration)
        it = iter(ro)
        with shelf.open(path, "w", timeout=2) as w:
            w["b"] = 2
            with w.transaction():
                w["c"] = 3
        assert next(it) == "a"
        assert ro["b"] == 2 and ro["c"] == 3
    finally:
        ro.close()


def test_transaction_commits_once_and_rolls_back(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path) as db:
        with db.transaction():
            for i in range(100):
                db[f"k{i}"] = i
        assert len(db) == 100
        with pytest.raises(RuntimeError):
            with db.transaction():
                db["k0"] = "changed"
                db["new"] = 1
                raise RuntimeError("boom")
        assert db["k0"] == 0 and "new" not in db
        with db.transaction(), db.transaction():  # nesting joins the outer one
            db["n"] = 1
        assert db["n"] == 1


def test_writeback_tracks_only_entries_read(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path) as db:
        db["a"] = [1]
        db["b"] = [2]
    with shelf.open(path, writeback=True) as db:
        db["a"].append(99)  # mutate in place: only visible through writeback
        assert list(db._cache) == ["a"]
    with shelf.open(path) as db:
        assert db["a"] == [1, 99] and db["b"] == [2]
    with shelf.open(path, writeback=False) as db:
        db["a"].append(5)
    with shelf.open(path) as db:
        assert db["a"] == [1, 99]  # shelve semantics: lost without writeback


def test_signed_values_detect_tampering_and_swaps(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path, key=KEY) as db:
        db["alice"] = {"admin": False}
        db["root"] = {"admin": True}
        assert db["alice"] == {"admin": False}
    con = sqlite3.connect(path)
    (blob,) = con.execute("SELECT value FROM binrec_shelf WHERE key='alice'").fetchone()
    tampered = bytearray(blob)
    tampered[-40] ^= 1
    con.execute("UPDATE binrec_shelf SET value=? WHERE key='alice'", (bytes(tampered),))
    con.commit()
    with shelf.open(path, key=KEY) as db:
        with pytest.raises(BadSignature):
            db["alice"]
        assert db["root"] == {"admin": True}
    # a valid row copied under another key does not verify either
    (root_blob,) = con.execute("SELECT value FROM binrec_shelf WHERE key='root'").fetchone()
    con.execute("UPDATE binrec_shelf SET value=? WHERE key='alice'", (root_blob,))
    con.commit()
    con.close()
    with shelf.open(path, key=KEY) as db:
        with pytest.raises(BadSignature):
            db["alice"]
    with shelf.open(path, key=bytes(32)) as db:
        with pytest.raises(BadSignature):
            db["root"]


class Profile:
    def __init__(self, name):
        self.name = name


def test_restricted_loading_by_default(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path, allow=ALL) as db:
        db["p"] = Profile("ann")
        db["evil"] = os.system
    with shelf.open(path) as db:
        with pytest.raises(ForbiddenGlobal):
            db["p"]
        with pytest.raises(ForbiddenGlobal):
            db["evil"]
    with shelf.open(path, allow=[Profile]) as db:
        assert db["p"].name == "ann"


def test_import_shelve(tmp_path):
    src = str(tmp_path / "old")
    with shelve.open(src) as old:
        old["a"] = {"x": 1}
        old["b"] = [1, 2, 3]
    dst = tmp_path / "new.db"
    assert shelf.import_shelve(src, dst) == 2
    with shelf.open(dst) as db, shelve.open(src, "r") as old:
        assert dict(db.items()) == dict(old.items())


def _worker(path: str, wid: int, n: int) -> None:
    def thread_body(tid: int) -> None:
        with shelf.open(path, timeout=60) as db:
            for i in range(n):
                db[f"w{wid}-t{tid}-{i}"] = {"w": wid, "t": tid, "i": i}
                if i % 10 == 0:
                    with db.transaction():
                        db[f"batch-w{wid}-t{tid}-{i}"] = list(range(i))
                # read our own and another worker's keys
                assert db[f"w{wid}-t{tid}-{i}"]["i"] == i
                other = db.get(f"w{(wid + 1) % 4}-t{tid}-{i // 2}")
                assert other is None or other["i"] == i // 2

    threads = [threading.Thread(target=thread_body, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_four_processes_two_threads_each(tmp_path):
    path = str(tmp_path / "s.db")
    shelf.open(path).close()
    n = 60
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(path, w, n)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    with shelf.open(path, "r") as db:
        for w in range(4):
            for t in range(2):
                for i in range(n):
                    assert db[f"w{w}-t{t}-{i}"] == {"w": w, "t": t, "i": i}
                    if i % 10 == 0:
                        assert db[f"batch-w{w}-t{t}-{i}"] == list(range(i))
        assert len(db) == 4 * 2 * (n + n // 10)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


KILL_SCRIPT = r"""
import sys
from binrec import shelf
path = sys.argv[1]
with shelf.open(path) as db:
    with db.transaction():
        db["committed"] = "yes"
    with db.transaction():  # never finishes: killed inside
        for i in range(10_000_000):
            db[f"pending-{i}"] = i
            if i == 1000:
                print("ready", flush=True)
"""


@needs_sigkill
def test_sigkill_mid_transaction_loses_only_the_batch(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path) as db:
        db["before"] = 1
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with shelf.open(path) as db:
        assert db["before"] == 1 and db["committed"] == "yes"
        assert not any(k.startswith("pending-") for k in db)
        db["after"] = 2  # still writable: the dead writer's lock is gone
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
