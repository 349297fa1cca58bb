"""A persistent dict that survives crashes and concurrency, on SQLite.

``binrec.shelf.open`` has :mod:`shelve`'s API (``sync``, ``close``, context
manager, flags ``r w c n``, ``writeback``) over one SQLite table keyed by the
UTF-8 key, with the durability settings shelve-alikes usually trade away:
WAL journal, ``synchronous=NORMAL`` (never OFF), a busy timeout.  Several
threads may share one shelf and several processes may open the same file.

Values are pickled.  With ``key=`` every value is signed
(:mod:`binrec.signing`, with the entry's own key in the signing context, so
rows cannot be swapped either), and a tampered row raises
:class:`~binrec.signing.BadSignature` on read.  Reads use the restricted
unpickler by default (``allow=`` as in :func:`binrec.pickling.safe_loads`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sqlite3
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

from . import signing
from .pickling import ALL, AllowSpec, safe_loads

__all__ = ["Shelf", "open", "import_shelve"]

_TABLE = "binrec_shelf"
_SELECT = f"SELECT value FROM {_TABLE} WHERE key = ?"


class Shelf(MutableMapping[str, Any]):
    """A SQLite-backed persistent mapping of ``str`` keys to picklable values.
    Use :func:`open` to make one."""

    def __init__(
        self,
        path: str | os.PathLike,
        flag: str = "c",
        *,
        writeback: bool = False,
        key: bytes | list[bytes] | None = None,
        allow: AllowSpec = None,
        protocol: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        if flag not in ("r", "w", "c", "n"):
            raise ValueError(f"flag must be one of 'r', 'w', 'c', 'n', not {flag!r}")
        self.path = os.fspath(path)
        self.flag = flag
        self.writeback = writeback
        self._keys = None if key is None else ([key] if isinstance(key, (bytes, bytearray)) else list(key))
        if self._keys is not None:
            for k in self._keys:
                signing._check_key(k)
        self._allow = allow
        self._protocol = pickle.HIGHEST_PROTOCOL if protocol is None else protocol
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}
        self._depth = 0  # nesting of transaction()
        self._closed = False
        if flag in ("r", "w") and not os.path.exists(self.path):
            raise FileNotFoundError(f"no shelf at {self.path!r} (flag {flag!r} does not create one)")
        if flag == "r":
            uri = "file:" + _uri_path(self.path) + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
        else:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if flag != "r":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            if flag != "r":
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {_TABLE} (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
                )
                if flag == "n":
                    self._db.execute(f"DELETE FROM {_TABLE}")
            else:
                self._db.execute(f"SELECT 1 FROM {_TABLE} LIMIT 1")
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    # -- encoding ------------------------------------------------------------

    @staticmethod
    def _context(key: str) -> bytes:
        return b"binrec.shelf\x00" + key.encode("utf-8")

    def _dumps(self, key: str, value: Any) -> bytes:
        data = pickle.dumps(value, protocol=self._protocol)
        if self._keys is not None:
            data = signing.sign(data, self._keys[0], context=self._context(key))
        return data

    def _loads(self, key: str, blob: bytes) -> Any:
        payload: Any = blob
        if self._keys is not None:
            payload = signing._open_envelope(blob, self._keys, self._context(key), None, None)
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
            return self._db.execute(f"SELECT COUNT(*) FROM {_TABLE}").fetchone()[0]

    def _check_writable(self) -> None:
        if self.flag == "r":
            raise PermissionError(f"shelf {self.path!r} is open read-only")

    # -- transactions and lifecycle ---------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Shelf]:
        """Batch writes into one commit; rolled back if the block raises.

        >>> import tempfile, os
        >>> with open(os.path.join(tempfile.mkdtemp(), "s.db")) as db:
        ...     with db.transaction():
        ...         for i in range(3):
        ...             db[f"user:{i}"] = {"id": i}
        ...     len(db)
        3
        """
        self._check_writable()
        with self._lock:
            self._check_open()
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def sync(self) -> None:
        """Write back cached entries (``writeback=True``) in one commit."""
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


def _uri_path(path: str) -> str:
    """``file:`` URI of a path, on POSIX and Windows alike."""
    from pathlib import Path

    return Path(os.path.abspath(path)).as_uri()[len("file:") :]


def open(
    path: str | os.PathLike,
    flag: str = "c",
    *,
    writeback: bool = False,
    key: bytes | list[bytes] | None = None,
    allow: AllowSpec = None,
    protocol: int | None = None,
    timeout: float = 30.0,
) -> Shelf:
    """Open a persistent mapping stored in SQLite at ``path``.

    Parameters
    ----------
    flag : {'c', 'w', 'r', 'n'}
        ``'c'`` create if missing (default), ``'w'`` read-write (must exist),
        ``'r'`` read-only (does not block writers), ``'n'`` always start empty.
    writeback : bool
        As :mod:`shelve`: entries read are cached and written back on
        ``sync()``/``close()`` (only the entries actually read or set).
    key : bytes or list of bytes
        Sign every value (HMAC-SHA256); the first key signs, all verify.
    allow :
        Extra globals for the restricted unpickler, or
        :data:`binrec.pickling.ALL` for plain pickle.
    protocol : int
        Pickle protocol (default highest).
    timeout : float
        Seconds to wait for another writer's lock.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "profiles.db")
    >>> with open(path) as db:
    ...     db["alice"] = {"age": 30, "tags": ["admin"]}
    >>> with open(path, "r") as db:
    ...     db["alice"]["tags"]
    ['admin']
    """
    return Shelf(path, flag, writeback=writeback, key=key, allow=allow, protocol=protocol, timeout=timeout)


def import_shelve(src: str | os.PathLike, dst: str | os.PathLike | Shelf, **open_kw: Any) -> int:
    """Copy every entry of a stdlib :mod:`shelve` database into a binrec
    shelf, in one transaction.  Returns the number of entries copied.

    The source is your own shelve file, read with plain pickle (as shelve
    does).
    """
    import shelve

    target = dst if isinstance(dst, Shelf) else open(dst, "c", **open_kw)
    try:
        with shelve.open(os.fspath(src), "r") as old, target.transaction():
            n = 0
            for k in old.keys():
                target[k] = old[k]
                n += 1
        return n
    finally:
        if not isinstance(dst, Shelf):
            target.close()
