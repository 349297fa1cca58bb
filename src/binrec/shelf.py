"""A persistent dict that survives crashes and concurrency, on SQLite.

``binrec.shelf.open`` has :mod:`shelve`'s API (``sync``, ``close``, context
manager, flags ``r w c n``, ``writeback``) over one SQLite table keyed by the
UTF-8 key, with the durability settings shelve-alikes usually trade away:
WAL journal, ``synchronous=NORMAL`` (never OFF), a busy timeout.  Several
threads may share one shelf and several processes may open the same file.

Only a binrec shelf is ever written: opening any other file (a directory,
a stdlib :mod:`shelve` or :mod:`dbm` file, another application's SQLite
database) raises :class:`ShelfError` before anything in it changes.
:func:`import_shelve` copies a :mod:`shelve` file into a new shelf.

Values are pickled.  With ``key=`` every value is signed
(:mod:`binrec.signing`, HMAC-SHA256 or with ``alg="blake3"`` keyed BLAKE3,
with the entry's own key in the signing context, so rows cannot be swapped
either; each row records its algorithm), and a tampered row raises
:class:`~binrec.signing.BadSignature` on read.  Reads use the restricted
unpickler by default (``allow=`` as in :func:`binrec.pickling.safe_loads`).
"""

from __future__ import annotations

import builtins
import contextlib
import dbm
import os
import pickle
import sqlite3
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

from . import signing
from .pickling import ALL, AllowSpec, safe_loads

__all__ = ["Shelf", "ShelfError", "open", "import_shelve"]

_TABLE = "binrec_shelf"
_SELECT = f"SELECT value FROM {_TABLE} WHERE key = ?"
# The table as binrec 0.1.0 created it.  SQLite stores this text verbatim in
# sqlite_master, which is how an existing file is recognised as a shelf:
# change it only together with a new recognised definition.
_CREATE = f"CREATE TABLE {_TABLE} (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
_CREATE_IF_MISSING = _CREATE.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_URI_MODE = {"r": "ro", "w": "rw", "c": "rwc", "n": "rwc"}


class ShelfError(dbm.error[0]):  # type: ignore[misc,valid-type]  # dbm.error is a tuple of classes
    """A file cannot be opened as a binrec shelf (a directory, not SQLite,
    another program's SQLite database, unreadable).  The message names the
    file.  It subclasses :mod:`dbm`'s error class, so ``except dbm.error``
    catches it as it does for :mod:`shelve`.

    Examples
    --------
    >>> import dbm, os, tempfile
    >>> from binrec import shelf
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "notes.txt")
    ...     with open(path, "w") as fh:
    ...         _ = fh.write("not a database")
    ...     try:
    ...         shelf.open(path)
    ...     except dbm.error as exc:
    ...         print(type(exc).__name__, str(exc).endswith("is not a binrec shelf: it is not SQLite"))
    ...     with open(path) as fh:  # left unchanged
    ...         print(fh.read())
    ShelfError True
    not a database
    """


class Shelf(MutableMapping[str, Any]):
    """A SQLite-backed persistent mapping of ``str`` keys to picklable values.

    Use :func:`open` to make one; the parameters are :func:`open`'s.  A
    :class:`collections.abc.MutableMapping`, so ``get``, ``keys``,
    ``items``, ``update``, ``pop``... work as on a dict.  Keys iterate in
    sorted order.

    Parameters
    ----------
    path : path
        The SQLite file.
    flag : {'c', 'w', 'r', 'n'}
        As for :func:`open`.
    writeback : bool
        As for :func:`open`.
    key : bytes or list of bytes, optional
        As for :func:`open`.
    alg : {'hmac-sha256', 'blake3'}
        As for :func:`open`.
    allow : optional
        As for :func:`open`.
    protocol : int, optional
        As for :func:`open`.
    timeout : float
        As for :func:`open`.

    Attributes
    ----------
    path : str
    flag : str
    writeback : bool

    Examples
    --------
    >>> import os, tempfile
    >>> from binrec import shelf
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with shelf.open(os.path.join(folder, "s.db")) as db:
    ...         db.update({"b": 2, "a": [1]})
    ...         print(list(db), db.get("c", "missing"), len(db))
    ['a', 'b'] missing 2
    """

    def __init__(
        self,
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        flag: str = "c",
        *,
        writeback: bool = False,
        key: bytes | list[bytes] | None = None,
        alg: str = signing.DEFAULT_ALG,
        allow: AllowSpec = None,
        protocol: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        if flag not in ("r", "w", "c", "n"):
            raise ValueError(f"flag must be one of 'r', 'w', 'c', 'n', not {flag!r}")
        if key is None and alg != signing.DEFAULT_ALG:
            raise ValueError(f"alg={alg!r} chooses the signature algorithm: give key= too")
        self.path = os.fsdecode(path)
        self.flag = flag
        self.writeback = writeback
        self._alg = signing.DEFAULT_ALG if key is None else signing.check_alg(alg)
        self._keys = None if key is None else signing.check_keys(key, self._alg)
        self._allow = allow
        self._protocol = pickle.HIGHEST_PROTOCOL if protocol is None else protocol
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}
        self._depth = 0  # nesting of transaction()
        self._closed = False
        self._db = self._connect(flag, timeout)

    def _connect(self, flag: str, timeout: float) -> sqlite3.Connection:
        """Check what is at ``self.path`` (changing nothing), then connect."""
        state = _probe(self.path)
        if state == "missing" and flag in ("r", "w"):
            raise FileNotFoundError(f"no shelf at {self.path!r} (flag {flag!r} does not create one)")
        if state == "empty" and flag in ("r", "w"):
            raise ShelfError(f"{self.path!r} is an empty file, not a shelf (flag {flag!r} does not create one)")
        try:
            db = sqlite3.connect(
                _uri(self.path, f"mode={_URI_MODE[flag]}"),
                uri=True,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise ShelfError(f"cannot open shelf {self.path!r}: {exc}") from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if flag != "r":
                # The table first, so that no crash leaves a WAL-mode file
                # without it (which would no longer be recognised as a shelf).
                db.execute(_CREATE_IF_MISSING)
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            if flag == "n":
                db.execute(f"DELETE FROM {_TABLE}")
            elif flag == "r":
                db.execute(f"SELECT 1 FROM {_TABLE} LIMIT 1")
        except sqlite3.Error as exc:
            db.close()
            raise ShelfError(f"cannot open shelf {self.path!r}: {exc}") from exc
        return db

    # -- encoding ------------------------------------------------------------

    @staticmethod
    def _context(key: str) -> bytes:
        return b"binrec.shelf\x00" + key.encode("utf-8")

    def _dumps(self, key: str, value: Any) -> bytes:
        data = pickle.dumps(value, protocol=self._protocol)
        if self._keys is not None:
            data = signing.sign(data, self._keys[0], context=self._context(key), alg=self._alg)
        return data

    def _loads(self, key: str, blob: bytes) -> Any:
        payload: Any = blob
        if self._keys is not None:
            payload = signing.open_envelope(blob, self._keys, self._context(key), None, None)
        if self._allow is ALL:
            return pickle.loads(payload)
        return safe_loads(payload, allow=self._allow)

    # -- mapping --------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("invalid operation on a closed shelf")

    @staticmethod
    def _check_key(key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(f"shelf keys must be str, not {type(key).__name__}")
        return key

    def __getitem__(self, key: str) -> Any:
        self._check_key(key)
        with self._lock:
            self._check_open()
            if self.writeback and key in self._cache:
                return self._cache[key]
            row = self._db.execute(_SELECT, (key,)).fetchone()
            if row is None:
                raise KeyError(key)
            value = self._loads(key, row[0])
            if self.writeback:
                self._cache[key] = value
            return value

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_key(key)
        self._check_writable()
        blob = self._dumps(key, value)
        with self._lock:
            self._check_open()
            if self.writeback:
                self._cache[key] = value
            self._db.execute(f"INSERT OR REPLACE INTO {_TABLE} (key, value) VALUES (?, ?)", (key, blob))

    def __delitem__(self, key: str) -> None:
        self._check_key(key)
        self._check_writable()
        with self._lock:
            self._check_open()
            self._cache.pop(key, None)
            cur = self._db.execute(f"DELETE FROM {_TABLE} WHERE key = ?", (key,))
            if cur.rowcount == 0:
                raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with self._lock:
            self._check_open()
            return self._db.execute(f"SELECT 1 FROM {_TABLE} WHERE key = ?", (key,)).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            self._check_open()
            keys = [row[0] for row in self._db.execute(f"SELECT key FROM {_TABLE} ORDER BY key")]
        return iter(keys)

    def __len__(self) -> int:
        with self._lock:
            self._check_open()
            count: int = self._db.execute(f"SELECT COUNT(*) FROM {_TABLE}").fetchone()[0]
            return count

    def _check_writable(self) -> None:
        if self.flag == "r":
            raise PermissionError(f"shelf {self.path!r} is open read-only")

    # -- transactions and lifecycle ---------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Shelf]:
        """Batch writes into one commit; rolled back if the block raises.

        A rollback also undoes the block's assignments and deletions in the
        write-back cache (``writeback=True``); in-place changes to objects
        that were cached before the block began cannot be undone and are
        still written back.  Transactions nest: only the outermost commits.

        Yields
        ------
        Shelf
            This shelf.

        Raises
        ------
        PermissionError
            The shelf is open read-only.

        Examples
        --------
        >>> import os, tempfile
        >>> from binrec import shelf
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with shelf.open(os.path.join(folder, "s.db")) as db:
        ...         with db.transaction():
        ...             for i in range(3):
        ...                 db[f"user:{i}"] = {"id": i}
        ...         try:
        ...             with db.transaction():
        ...                 db["user:3"] = {"id": 3}
        ...                 raise RuntimeError("abort")
        ...         except RuntimeError:
        ...             pass
        ...         print(len(db), "user:3" in db)
        3 False
        """
        self._check_writable()
        with self._lock:
            self._check_open()
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
                # What the write-back cache held before: a rollback restores
                # it, so that neither reads nor close() see rolled-back writes.
                saved_cache = dict(self._cache)
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._cache = saved_cache
                    if self._db.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                        self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def sync(self) -> None:
        """Write back cached entries (``writeback=True``) in one commit.

        Without ``writeback`` every assignment is already written, and this
        does nothing.

        Raises
        ------
        ValueError
            The shelf is closed.

        Examples
        --------
        >>> import os, tempfile
        >>> from binrec import shelf
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "s.db")
        ...     db = shelf.open(path, writeback=True)
        ...     db["log"] = []
        ...     db["log"].append("started")  # changes the cached object only
        ...     db.sync()
        ...     with shelf.open(path, "r") as reader:
        ...         print(reader["log"])
        ...     db.close()
        ['started']
        """
        with self._lock:
            self._check_open()
            if self.writeback and self._cache and self.flag != "r":
                items = list(self._cache.items())
                with self.transaction():
                    for k, v in items:
                        self._db.execute(
                            f"INSERT OR REPLACE INTO {_TABLE} (key, value) VALUES (?, ?)", (k, self._dumps(k, v))
                        )
            self._cache.clear()

    def close(self) -> None:
        """Write back cached entries (:meth:`sync`) and close the database.

        Closing twice is harmless; any other use of a closed shelf raises
        :class:`ValueError`, as :mod:`shelve` does.  ``with shelf.open(...)``
        closes on leaving the block.

        Examples
        --------
        >>> import os, tempfile
        >>> from binrec import shelf
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     db = shelf.open(os.path.join(folder, "s.db"))
        ...     db["a"] = 1
        ...     db.close()
        ...     db.close()
        ...     try:
        ...         db["a"]
        ...     except ValueError as exc:
        ...         print(exc)
        invalid operation on a closed shelf
        """
        with self._lock:
            if self._closed:
                return
            try:
                self.sync()
            finally:
                self._closed = True
                self._db.close()

    def __enter__(self) -> Shelf:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort, as shelve
        with contextlib.suppress(Exception):
            if not self._closed:
                self.close()

    def __repr__(self) -> str:
        return f"<binrec.shelf.Shelf {self.path!r} flag={self.flag!r}{' closed' if self._closed else ''}>"


def _uri(path: str, query: str) -> str:
    """SQLite ``file:`` URI of a path, on POSIX and Windows alike.
    (``as_uri`` percent-encodes ``?``, ``#`` and undecodable bytes.)"""
    from pathlib import Path

    return "file:" + Path(os.path.abspath(path)).as_uri()[len("file:") :] + "?" + query


def _is_sqlite_file(path: str) -> bool:
    """Whether ``path`` starts with the SQLite header.  Opening and closing
    a file drops every POSIX lock this process holds on it, SQLite's
    included, so use this only on files no connection here may hold (a
    migration source), never on a shelf path."""
    with builtins.open(path, "rb") as f:
        return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


@contextlib.contextmanager
def _inspecting(path: str) -> Iterator[sqlite3.Connection]:
    """A query-only connection to the existing file ``path`` that leaves no
    trace.  Through SQLite, never a plain ``open()``: see
    :func:`_is_sqlite_file`.  Read-write mode, although nothing is written,
    so that closing the last connection to a WAL-mode file removes the
    ``-wal``/``-shm`` files that opening it created (a read-only connection
    would leave them); read-only where the file is not writable."""
    try:
        con = sqlite3.connect(_uri(path, "mode=rw"), uri=True, isolation_level=None)
    except sqlite3.OperationalError:
        con = sqlite3.connect(_uri(path, "mode=ro"), uri=True, isolation_level=None)
    try:
        con.execute("PRAGMA query_only = ON")
        yield con
    finally:
        con.close()


def _read_schema(path: str) -> list[tuple[str, str, str | None]]:
    """``(type, name, sql)`` of every object in the SQLite file ``path``."""
    with _inspecting(path) as con:
        return con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()


def _probe(path: str) -> str:
    """What is at ``path``: ``'missing'``, ``'empty'`` (0 bytes) or
    ``'shelf'``; anything else raises :class:`ShelfError` naming the file.
    Changes nothing."""
    if os.path.isdir(path):
        raise ShelfError(f"{path!r} is a directory, not a shelf file")
    try:
        if os.path.getsize(path) == 0:
            return "empty"
    except FileNotFoundError:
        return "missing"
    try:
        objects = _read_schema(path)
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorname != "SQLITE_NOTADB":
            raise ShelfError(f"cannot open shelf {path!r}: {exc}") from exc
        kind = dbm.whichdb(path)  # safe here: SQLite holds no lock on a file that is not SQLite
        what = f"a {kind} database (stdlib dbm/shelve; binrec.shelf.import_shelve copies one)" if kind else "not SQLite"
        raise ShelfError(f"{path!r} is not a binrec shelf: it is {what}") from None
    tables = {name: sql for typ, name, sql in objects if not name.startswith("sqlite_")}
    if tables == {_TABLE: _CREATE}:
        return "shelf"
    if not tables:
        detail = "a SQLite database with no tables"
    elif _is_dbm_sqlite3(objects):
        detail = "a dbm.sqlite3 database (Python 3.13 shelve; binrec.shelf.import_shelve copies one)"
    else:
        detail = "a SQLite database with tables " + ", ".join(sorted(tables))
    raise ShelfError(f"{path!r} is not a binrec shelf: it is {detail}; it was left unchanged")


def _is_dbm_sqlite3(objects: list[tuple[str, str, str | None]]) -> bool:
    return any(typ == "table" and name == "Dict" for typ, name, _ in objects)


def open(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    flag: str = "c",
    *,
    writeback: bool = False,
    key: bytes | list[bytes] | None = None,
    alg: str = signing.DEFAULT_ALG,
    allow: AllowSpec = None,
    protocol: int | None = None,
    timeout: float = 30.0,
) -> Shelf:
    """Open a persistent mapping stored in SQLite at ``path``.

    Parameters
    ----------
    path : path
        The SQLite file.
    flag : {'c', 'w', 'r', 'n'}
        ``'c'`` create if missing (default), ``'w'`` read-write (must exist),
        ``'r'`` read-only (does not block writers), ``'n'`` always start empty.
    writeback : bool
        As :mod:`shelve`: entries read are cached and written back on
        ``sync()``/``close()`` (only the entries actually read or set).
    key : bytes or list of bytes, optional
        Sign every value; the first key signs, all verify (each row
        records its algorithm, so rows signed with either read back).
    alg : {'hmac-sha256', 'blake3'}
        The algorithm new rows are signed with (needs ``key=``):
        HMAC-SHA256 (the default, standard library) or keyed BLAKE3 (the
        ``blake3`` package, ``pip install "binrec[fast]"``; the signing key
        must be exactly 32 bytes).
    allow : optional
        Extra globals for the restricted unpickler, or
        :data:`binrec.pickling.ALL` for plain pickle.
    protocol : int, optional
        Pickle protocol (default highest).
    timeout : float
        Seconds to wait for another writer's lock.

    Returns
    -------
    Shelf

    Raises
    ------
    ShelfError
        ``path`` is not a binrec shelf: a directory, a file that is not
        SQLite (a :mod:`dbm` file, say), or a SQLite database of another
        program, such as a Python 3.13 :mod:`shelve` file (see
        :func:`import_shelve`).  Nothing in the file is changed.  Also an
        empty file with flag ``'r'`` or ``'w'``.
    ValueError
        An unknown ``alg``, ``alg`` without ``key``, or a key of the wrong
        length for ``alg``.
    binrec.signing.UnsupportedAlgorithm
        ``alg="blake3"`` without the ``blake3`` package (reading a row
        signed with BLAKE3 raises it too).
    FileNotFoundError
        No file at ``path`` with flag ``'r'`` or ``'w'``.

    Examples
    --------
    >>> import os, sqlite3, tempfile
    >>> from binrec import shelf
    >>> key = bytes(range(32))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "profiles.db")
    ...     with shelf.open(path, key=key) as db:
    ...         db["alice"] = {"age": 30, "tags": ["admin"]}
    ...     with shelf.open(path, "r", key=key) as db:
    ...         print(db["alice"]["tags"])
    ...     with sqlite3.connect(path) as con:  # one row per key, the value a signed envelope
    ...         print(con.execute("SELECT key, substr(value, 1, 4) FROM binrec_shelf").fetchall())
    ...     con.close()
    ['admin']
    [('alice', b'BRSG')]
    """
    return Shelf(path, flag, writeback=writeback, key=key, alg=alg, allow=allow, protocol=protocol, timeout=timeout)


def import_shelve(
    src: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    dst: str | bytes | os.PathLike[str] | os.PathLike[bytes] | Shelf,
    **open_kw: Any,
) -> int:
    """Copy every entry of a stdlib :mod:`shelve` database into a binrec
    shelf, in one transaction.  Returns the number of entries copied.

    Parameters
    ----------
    src : path
        The :mod:`shelve` file, in any format :mod:`dbm` writes here, plus
        Python 3.13's ``dbm.sqlite3`` format on every Python (read directly
        with :mod:`sqlite3` where :mod:`dbm.sqlite3` does not exist).  It is
        your own file, so values are read with plain pickle, as shelve does.
    dst : path or Shelf
        The binrec shelf to write (opened with flag ``'c'`` and ``open_kw``
        if a path).
    **open_kw
        Passed to :func:`open` when ``dst`` is a path (``key=``...).

    Returns
    -------
    int
        The number of entries copied.

    Raises
    ------
    ShelfError
        ``src`` does not exist, is in no format :mod:`dbm` knows, or is a
        SQLite database that is not a ``dbm.sqlite3`` file.  The message
        names ``src``.  Checked before ``dst`` is opened: a path ``dst`` is
        then neither created nor changed.

    Examples
    --------
    >>> import os, shelve, tempfile
    >>> from binrec import shelf
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with shelve.open(os.path.join(folder, "old")) as old:
    ...         old["alice"] = {"age": 30}
    ...     print(shelf.import_shelve(os.path.join(folder, "old"), os.path.join(folder, "new.db")))
    ...     with shelf.open(os.path.join(folder, "new.db"), "r") as new:
    ...         print(dict(new))
    1
    {'alice': {'age': 30}}
    """
    src = os.fsdecode(src)
    _check_shelve_source(src)
    target = dst if isinstance(dst, Shelf) else open(dst, "c", **open_kw)
    try:
        with target.transaction():
            n = 0
            for k, v in _shelve_items(src):
                target[k] = v
                n += 1
        return n
    finally:
        if not isinstance(dst, Shelf):
            target.close()


def _check_shelve_source(src: str) -> None:
    """Raise :class:`ShelfError` naming ``src`` unless it is a shelve file
    that can be read here: a ``dbm.sqlite3`` database, or a file whose
    format :func:`dbm.whichdb` recognises and whose module is available."""
    if os.path.isfile(src) and _is_sqlite_file(src):
        try:
            with _inspecting(src) as con:
                tables = con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        except sqlite3.Error as exc:
            raise ShelfError(f"cannot read the dbm.sqlite3 file {src!r}: {exc}") from exc
        if not _is_dbm_sqlite3(tables):
            raise ShelfError(f"{src!r} is a SQLite database but not a dbm.sqlite3 shelve file (it has no Dict table)")
        return
    kind = dbm.whichdb(src)
    if kind is None:
        raise ShelfError(f"cannot import {src!r}: no shelve file there (it does not exist or cannot be read)")
    if kind == "":
        raise ShelfError(f"cannot import {src!r}: not a shelve file (its format is none that dbm knows)")
    try:
        __import__(kind)
    except ImportError as exc:
        raise ShelfError(f"cannot import {src!r}: it is a {kind} file and {kind} is not available here") from exc


def _shelve_items(src: str) -> Iterator[tuple[str, Any]]:
    """``(key, value)`` of a :mod:`shelve` file, keys decoded as UTF-8
    (shelve's default ``keyencoding``)."""
    if os.path.isfile(src) and _is_sqlite_file(src):
        yield from _dbm_sqlite3_items(src)
        return
    import shelve

    with shelve.open(src, "r") as old:
        for k in old.keys():
            yield k, old[k]


def _dbm_sqlite3_items(src: str) -> Iterator[tuple[str, Any]]:
    """Rows of a ``dbm.sqlite3`` file (one table ``Dict(key BLOB, value
    BLOB)``), read without writing anything."""
    try:
        with _inspecting(src) as con:
            if not _is_dbm_sqlite3(con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()):
                raise ShelfError(
                    f"{src!r} is a SQLite database but not a dbm.sqlite3 shelve file (it has no Dict table)"
                )
            for key, value in con.execute("SELECT key, value FROM Dict"):
                text = key if isinstance(key, str) else bytes(key).decode("utf-8")
                yield text, pickle.loads(value)
    except sqlite3.Error as exc:
        raise ShelfError(f"cannot read the dbm.sqlite3 file {src!r}: {exc}") from exc
