"""binrec.shelf against its oracles: the shelve API, sqlite3 itself, real
processes and a real SIGKILL."""

from __future__ import annotations

import builtins
import dbm
import multiprocessing as mp
import os
import pickle
import re
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


# -- paths, foreign files and the shelf error class ------------------------------------------


@pytest.mark.parametrize("flag", ["c", "w", "r", "n"])
def test_bytes_paths_open_with_every_flag_as_shelve_does(tmp_path, flag):
    path = os.fsencode(tmp_path / "s.db")
    # oracle: shelve accepts a bytes path with this flag
    with shelve.open(os.fsencode(tmp_path / "oracle"), "c") as old:
        old["a"] = 1
    with shelve.open(os.fsencode(tmp_path / "oracle"), flag) as old:
        assert flag == "n" or old["a"] == 1
    with shelf.open(path, "c") as db:
        db["a"] = 1
    with shelf.open(path, flag) as db:
        assert db.path == os.fsdecode(path)
        assert flag == "n" or db["a"] == 1


def test_pathlike_of_bytes_opens(tmp_path):
    class BytesPath:
        def __fspath__(self):
            return os.fsencode(tmp_path / "s.db")

    with shelf.open(BytesPath()) as db:
        db["a"] = 1
    with shelf.open(tmp_path / "s.db", "r") as db:
        assert db["a"] == 1


def test_shelf_error_is_a_dbm_error():
    assert issubclass(shelf.ShelfError, dbm.error[0])
    assert not issubclass(shelf.ShelfError, sqlite3.Error)


def _dbm_sqlite3_by_hand(path, items):
    """The file Python 3.13's shelve writes by default (dbm.sqlite3): its
    table definition, WAL mode, UTF-8 keys and pickled values as BLOBs."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = wal")
    con.execute("CREATE TABLE IF NOT EXISTS Dict (\n    key BLOB UNIQUE NOT NULL,\n    value BLOB NOT NULL\n  )")
    for k, v in items.items():
        con.execute(
            "REPLACE INTO Dict (key, value) VALUES (CAST(? AS BLOB), CAST(? AS BLOB))",
            (k.encode("utf-8"), pickle.dumps(v, protocol=4)),
        )
    con.commit()
    con.close()


def _python313():
    """A Python 3.13 interpreter, if one is installed (pyenv or PATH)."""
    import glob
    import shutil

    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    found = [
        p for r in roots if r for p in sorted(glob.glob(os.path.join(r, "versions", "3.13*", "bin", "python3.13")))
    ]
    return found[0] if found else shutil.which("python3.13")


PY313 = _python313()
needs_py313 = pytest.mark.skipif(
    PY313 is None, reason="no Python 3.13 interpreter installed to write a real dbm.sqlite3 shelve"
)


def _shelve_by_python313(path, items):
    script = (
        "import shelve, sys, ast\nwith shelve.open(sys.argv[1]) as s:\n    s.update(ast.literal_eval(sys.argv[2]))\n"
    )
    subprocess.run([PY313, "-c", script, str(path), repr(items)], check=True)
    assert dbm_whichdb_313(path) == "dbm.sqlite3"


def dbm_whichdb_313(path):
    out = subprocess.run(
        [PY313, "-c", "import dbm, sys; print(dbm.whichdb(sys.argv[1]))", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _app_database(path, wal):
    con = sqlite3.connect(path)
    if wal:
        con.execute("PRAGMA journal_mode = wal")
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO users (name) VALUES ('ann'), ('bob')")
    con.commit()
    con.close()


def _no_tables_database(path):
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 7")  # writes the header page, no schema
    con.close()


FOREIGN_SQLITE = {
    "dbm.sqlite3 by hand": lambda p: _dbm_sqlite3_by_hand(p, {"a": 1}),
    "app database": lambda p: _app_database(p, wal=False),
    "app database in WAL mode": lambda p: _app_database(p, wal=True),
    "SQLite without tables": _no_tables_database,
    "app database with a binrec_shelf table": lambda p: (
        _app_database(p, wal=False),
        _exec(p, shelf._CREATE),
    ),
}
if PY313:
    FOREIGN_SQLITE["dbm.sqlite3 by Python 3.13 shelve"] = lambda p: _shelve_by_python313(p, {"a": 1})


def _exec(path, sql):
    con = sqlite3.connect(path)
    con.execute(sql)
    con.commit()
    con.close()


def _snapshot(path):
    """Everything opening may change: the bytes (header bytes 18/19 say WAL),
    the files beside it."""
    with builtins.open(path, "rb") as f:
        data = f.read()
    return data, sorted(os.listdir(os.path.dirname(path)))


@pytest.mark.parametrize("flag", ["r", "w", "c", "n"])
@pytest.mark.parametrize("kind", sorted(FOREIGN_SQLITE))
def test_a_foreign_sqlite_database_is_refused_and_left_unchanged(tmp_path, kind, flag):
    path = str(tmp_path / "other.db")
    FOREIGN_SQLITE[kind](path)
    before = _snapshot(path)
    con = sqlite3.connect(path)
    mode_before = con.execute("PRAGMA journal_mode").fetchone()[0]
    schema_before = con.execute("SELECT * FROM sqlite_master").fetchall()
    con.close()
    assert _snapshot(path) == before  # the oracle itself leaves nothing behind
    with pytest.raises(shelf.ShelfError, match="not a binrec shelf") as info:
        shelf.open(path, flag)
    assert path in str(info.value)
    after_bytes, after_files = _snapshot(path)
    assert after_files == before[1]  # no -wal, -shm or -journal left behind
    assert after_bytes[18:20] == before[0][18:20]  # journal mode in the header
    assert after_bytes == before[0]
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == mode_before
    assert con.execute("SELECT * FROM sqlite_master").fetchall() == schema_before
    con.close()


def test_the_refusal_says_what_the_file_is(tmp_path):
    path = str(tmp_path / "x.db")
    _dbm_sqlite3_by_hand(path, {"a": 1})
    with pytest.raises(shelf.ShelfError, match="dbm.sqlite3.*import_shelve"):
        shelf.open(path)
    path = str(tmp_path / "y.db")
    _app_database(path, wal=False)
    with pytest.raises(shelf.ShelfError, match="tables users"):
        shelf.open(path)


def _dbm_files():
    """(name, make(path) -> the file to open) for each dbm module here that
    does not write SQLite."""
    makers = {}
    for name in ("dbm.gnu", "dbm.ndbm", "dbm.dumb"):
        try:
            mod = __import__(name, fromlist=["open"])
        except ImportError:
            continue

        def make(path, mod=mod, name=name):
            with mod.open(path, "c") as d:
                d[b"k"] = b"v"
            # dumb writes path.dat/.dir, ndbm path.db (or several): open one of them
            for cand in (path, path + ".db", path + ".dat", path + ".pag"):
                if os.path.exists(cand):
                    return cand
            raise AssertionError(f"{name} wrote no file we know")

        makers[name] = make
    return makers


DBM_FILES = _dbm_files()


def _random_file(path):
    with builtins.open(path, "wb") as f:
        f.write(os.urandom(5000))
    return path


def _directory(path):
    os.mkdir(path)
    return path


def _foreign_sqlite(path):
    _app_database(path, wal=False)
    return path


NOT_A_SHELF = {"directory": _directory, "random bytes": _random_file, "foreign SQLite": _foreign_sqlite}
NOT_A_SHELF.update({f"{name} file": make for name, make in DBM_FILES.items()})


@pytest.mark.parametrize("flag", ["r", "w", "c", "n"])
@pytest.mark.parametrize("kind", sorted(NOT_A_SHELF))
def test_what_is_not_a_shelf_raises_one_error_class_naming_the_path(tmp_path, kind, flag):
    target = NOT_A_SHELF[kind](str(tmp_path / "thing"))
    before = None if os.path.isdir(target) else _snapshot(target)
    try:
        shelf.open(target, flag)
    except dbm.error as exc:  # as code written for shelve catches it
        assert type(exc) is shelf.ShelfError, repr(exc)
        assert target in str(exc)
    else:
        raise AssertionError(f"{kind} opened as a shelf with flag {flag!r}")
    if before is not None:
        assert _snapshot(target) == before


@pytest.mark.parametrize("flag", ["r", "w"])
def test_an_empty_file_is_not_a_shelf_to_open_without_creating(tmp_path, flag):
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(shelf.ShelfError, match="empty"):
        shelf.open(path, flag)
    assert path.stat().st_size == 0


@pytest.mark.parametrize("flag", ["c", "n"])
def test_an_empty_file_becomes_a_new_shelf(tmp_path, flag):
    path = tmp_path / "empty.db"
    path.touch()  # as tempfile.mkstemp leaves it
    with shelf.open(path, flag) as db:
        db["a"] = 1
    with shelf.open(path, "r") as db:
        assert dict(db) == {"a": 1}


def _shelf_as_010_made_it(path, items):
    """A shelf as binrec 0.1.0 wrote it: WAL first, then its table, values
    pickled at the highest protocol."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS binrec_shelf (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
    )
    for k, v in items.items():
        con.execute("INSERT OR REPLACE INTO binrec_shelf (key, value) VALUES (?, ?)", (k, pickle.dumps(v, protocol=5)))
    return con


@pytest.mark.parametrize("flag", ["r", "w", "c"])
def test_shelves_of_version_010_keep_opening(tmp_path, flag):
    path = str(tmp_path / "old.db")
    _shelf_as_010_made_it(path, {"a": [1, 2], "b": "x"}).close()
    with shelf.open(path, flag) as db:
        assert dict(db) == {"a": [1, 2], "b": "x"}


def test_a_shelf_whose_table_is_still_in_the_wal_opens(tmp_path):
    # A 0.1.0 writer that is still running (or was killed) has its table in
    # the -wal file only: the main file alone shows no tables.
    path = str(tmp_path / "live.db")
    writer = _shelf_as_010_made_it(path, {"a": 1})
    try:
        assert os.path.getsize(path + "-wal") > 0
        with shelf.open(path, "r") as db:
            assert db["a"] == 1
        with shelf.open(path, "w") as db:
            db["b"] = 2
        assert writer.execute("SELECT COUNT(*) FROM binrec_shelf").fetchone()[0] == 2
    finally:
        writer.close()


def test_opening_never_drops_the_locks_of_another_connection(tmp_path):
    # Closing any descriptor of a file drops every POSIX lock this process
    # holds on it, SQLite's included.  Were shelf.open to inspect the file
    # with a plain open(), the shared lock of a shelf already open here would
    # vanish, the next process to close a connection would think itself the
    # last, checkpoint and delete the -wal still in use, and later writes
    # would be lost.  Oracle: SQLite keeps the -wal while any connection is
    # open.
    path = str(tmp_path / "s.db")
    with shelf.open(path) as a:
        a["x"] = 1
        shelf.open(path, "r").close()
        shelf.open(path, "w").close()
        code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT COUNT(*) FROM binrec_shelf'); c.close()"
        subprocess.run([sys.executable, "-c", code, path], check=True)
        assert os.path.exists(path + "-wal")
        a["y"] = 2
    with shelf.open(path, "r") as db:
        assert dict(db) == {"x": 1, "y": 2}


# -- write-back and transactions --------------------------------------------------------------


def test_writeback_rollback_leaves_no_trace_in_the_cache(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path) as db:
        db["kept"] = [1]
        db["deleted"] = "still here"
    with shelf.open(path, writeback=True) as db:
        assert db["kept"] == [1]
        with pytest.raises(RuntimeError):
            with db.transaction():
                db["kept"] = ["rolled back"]
                db["new"] = ["rolled back"]
                del db["deleted"]
                raise RuntimeError("boom")
        # reads after the rollback (served from the cache if it held them)
        assert db["kept"] == [1]
        assert "new" not in db and db.get("new") is None
        assert db["deleted"] == "still here"
    # close() wrote back nothing of the rolled-back block
    with shelf.open(path) as db:
        assert dict(db) == {"kept": [1], "deleted": "still here"}


def test_writeback_rollback_keeps_what_was_pending_before_it(tmp_path):
    path = tmp_path / "s.db"
    with shelf.open(path) as db:
        db["a"] = [1]
    with shelf.open(path, writeback=True) as db:
        db["a"].append(2)  # pending until sync()/close()
        with pytest.raises(RuntimeError):
            with db.transaction():
                db.sync()  # written inside the block, so rolled back with it
                raise RuntimeError("boom")
    with shelf.open(path) as db:
        assert db["a"] == [1, 2]


def test_closed_after_with(tmp_path):
    # CPython's test_with/test_close, on a file instead of a dict
    with shelf.open(tmp_path / "s.db", protocol=2) as db:
        db["key1"] = [1, 2, 3, 4]
        assert db["key1"] == [1, 2, 3, 4] and len(db) == 1
    for use in (len, lambda d: d["key1"], lambda d: d.__setitem__("k", 1), lambda d: "key1" in d, list):
        with pytest.raises(ValueError, match="closed"):
            use(db)
    db.close()  # closing twice is harmless, as for shelve


@pytest.mark.parametrize("writeback", [False, True])
def test_mutable_entry_as_shelve(tmp_path, writeback):
    # CPython's test_mutable_entry, on a file; oracle: shelve on a dbm file
    results = []
    for opener, name in ((shelve.open, "oracle"), (shelf.open, "s.db")):
        with opener(str(tmp_path / name), writeback=writeback) as s:
            s["key1"] = [1, 2, 3, 4]
            s["key1"].append(5)
            results.append(s["key1"])
        with opener(str(tmp_path / name)) as s:
            results.append(s["key1"])
    assert results[:2] == results[2:] == ([[1, 2, 3, 4, 5]] * 2 if writeback else [[1, 2, 3, 4]] * 2)


def test_writeback_also_writes_immediately(tmp_path):
    # CPython's test of the same name (issue 5754); oracle: sqlite3 reading the row
    path = tmp_path / "s.db"

    def stored():
        con = sqlite3.connect(path)
        try:
            return con.execute("SELECT value FROM binrec_shelf WHERE key = 'key'").fetchone()[0]
        finally:
            con.close()

    with shelf.open(path, writeback=True) as s:
        s["key"] = [1]
        p1 = stored()  # in the file before sync()/close()
        s["key"].append(2)
    assert pickle.loads(p1) == [1] and pickle.loads(stored()) == [1, 2]


# -- import_shelve --------------------------------------------------------------------------


ITEMS = {"alice": {"age": 30, "tags": ["admin"]}, "bøb": (1, 2.5, None), "": b"bytes"}


def _check_import(tmp_path, src):
    (tmp_path / "out").mkdir()
    before = _snapshot(src)
    dst = tmp_path / "out" / "new.db"
    assert shelf.import_shelve(src, dst) == len(ITEMS)
    with shelf.open(dst, "r") as db:
        assert dict(db) == ITEMS
    assert _snapshot(src) == before  # the source is read, never written


def test_import_shelve_reads_a_dbm_sqlite3_file_built_by_hand(tmp_path):
    src = str(tmp_path / "old")
    _dbm_sqlite3_by_hand(src, ITEMS)
    _check_import(tmp_path, src)


@needs_py313
def test_import_shelve_reads_a_file_written_by_python313_shelve(tmp_path):
    src = str(tmp_path / "old")
    _shelve_by_python313(src, ITEMS)
    _check_import(tmp_path, src)


def test_import_shelve_refuses_a_sqlite_file_that_is_no_shelve(tmp_path):
    src = str(tmp_path / "app.db")
    _app_database(src, wal=False)
    with pytest.raises(shelf.ShelfError, match="not a dbm.sqlite3"):
        shelf.import_shelve(src, tmp_path / "new.db")


def test_import_shelve_missing_source_names_it_and_creates_no_destination(tmp_path):
    # Oracle: dbm itself cannot open the path for reading (real files).
    src = str(tmp_path / "nope_shelve")
    with pytest.raises(dbm.error):
        dbm.open(src, "r")
    dst = tmp_path / "imp2.db"
    with pytest.raises(shelf.ShelfError, match=re.escape(repr(src))):
        shelf.import_shelve(src, dst)
    assert not dst.exists()
    assert sorted(os.listdir(tmp_path)) == []


def test_import_shelve_unrecognised_source_leaves_an_existing_destination_unchanged(tmp_path):
    # Oracle: dbm.whichdb cannot tell the format of a text file, and the
    # destination's bytes and the files beside it are read back from disk.
    src = tmp_path / "notes.txt"
    src.write_text("not a shelve file\n" * 10)
    assert dbm.whichdb(str(src)) == ""
    (tmp_path / "out").mkdir()
    dst = str(tmp_path / "out" / "kept.db")
    with shelf.open(dst, "c") as db:
        db["alice"] = 1
    before = _snapshot(dst)
    with pytest.raises(shelf.ShelfError, match=re.escape(repr(str(src)))):
        shelf.import_shelve(src, dst)
    assert _snapshot(dst) == before


def test_import_shelve_sqlite_non_shelve_source_creates_no_destination(tmp_path):
    # The dbm.sqlite3 check is made before the destination is opened too.
    src = str(tmp_path / "app.db")
    _app_database(src, wal=False)
    dst = tmp_path / "new.db"
    with pytest.raises(shelf.ShelfError, match="not a dbm.sqlite3"):
        shelf.import_shelve(src, dst)
    assert not dst.exists()


def test_a_memoryview_key_signs_as_its_bytes_do(tmp_path):
    # one spelling of "a key or a list of keys" for signing, shelf and
    # checkpoint: any bytes-like object is one key (signing.sign's rule)
    path = str(tmp_path / "s.db")
    with shelf.open(path, key=memoryview(KEY)) as db:
        db["a"] = [1, 2]
    with shelf.open(path, key=KEY) as db:
        assert db["a"] == [1, 2]


def test_an_empty_key_list_is_refused_when_the_shelf_is_opened(tmp_path):
    with pytest.raises(ValueError, match="no keys given"):
        shelf.open(str(tmp_path / "s.db"), key=[])
