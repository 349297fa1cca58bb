"""Versioned pickle files: a data version in a small header, upgraded on
load through a chain of migrations checked before anything is unpickled."""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._atomic import atomic_writer
from ._pickle_errors import VersionError
from ._pickle_policy import ALL, AllowSpec
from ._pickle_restricted import safe_loads

_VERSION_MAGIC = b"BRVER\x00\x01\n"
_VERSION_HEADER = struct.Struct("<8sQ")


def save_versioned(path: str | os.PathLike[str], data: Any, version: int, *, protocol: int | None = None) -> None:
    """Pickle ``data`` into ``path`` with a data version, atomically.

    Layout: 8-byte magic ``b"BRVER\\x00\\x01\\n"``, little-endian u64
    version, then one pickle.  The file is replaced atomically (temporary
    file, fsync, rename).

    Parameters
    ----------
    path : path
        The file to write.
    data : object
        Anything picklable.
    version : int
        The data version (a non-negative int).
    protocol : int, optional
        Default :data:`pickle.HIGHEST_PROTOCOL`.

    Raises
    ------
    VersionError
        ``version`` is not a non-negative int.

    Examples
    --------
    >>> import os, pickle, struct, tempfile
    >>> from binrec import pickling
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "profile.pkl")
    ...     pickling.save_versioned(path, {"name": "Ann"}, version=1)
    ...     with open(path, "rb") as fh:
    ...         raw = fh.read()
    ...     print(struct.unpack_from("<8sQ", raw), pickle.loads(raw[16:]))
    ...     print(pickling.load_versioned(path, current=2, migrations={1: lambda d: {**d, "age": None}}))
    (b'BRVER\\x00\\x01\\n', 1) {'name': 'Ann'}
    {'name': 'Ann', 'age': None}
    """
    check_version(version)
    payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL if protocol is None else protocol)
    with atomic_writer(path) as fh:
        fh.write(_VERSION_HEADER.pack(_VERSION_MAGIC, version))
        fh.write(payload)


# package-internal: used by checkpoint.py (its save's version=)
def check_version(version: Any) -> int:
    """``version`` if it is a data version (an int >= 0, not a bool), else
    :class:`VersionError` (a ``ValueError``)."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise VersionError(f"version must be a non-negative int, got {version!r}")
    return version


def read_version(path: str | os.PathLike[str]) -> int:
    """The data version stored in a file written by :func:`save_versioned`."""
    with open(path, "rb") as fh:
        head = fh.read(_VERSION_HEADER.size)
    return _parse_version_header(head, path)


def _parse_version_header(head: bytes, path: Any) -> int:
    if len(head) < _VERSION_HEADER.size:
        raise VersionError(f"{path}: too short to be a versioned file ({len(head)} bytes)")
    magic, version = _VERSION_HEADER.unpack(head[: _VERSION_HEADER.size])
    if magic != _VERSION_MAGIC:
        raise VersionError(f"{path}: not a binrec versioned file (bad magic {magic!r})")
    return int(version)  # already an int ("<8sQ"): a no-op that types the value


def migrate(
    data: Any, version: int, current: int, migrations: Mapping[int, Callable[[Any], Any]], *, where: str = "data"
) -> Any:
    """Apply ``migrations[version]``, ``migrations[version + 1]``, ... until
    ``data`` is at version ``current``."""
    if version > current:
        raise VersionError(
            f"{where} has version {version}, newer than the current version {current}: upgrade the program"
        )
    missing = [v for v in range(version, current) if v not in migrations]
    if missing:
        raise VersionError(
            f"{where} has version {version}; no migration from version {missing[0]} to {missing[0] + 1} (current is {current})"
        )
    for v in range(version, current):
        data = migrations[v](data)
    return data


def load_versioned(
    path: str | os.PathLike[str],
    *,
    current: int,
    migrations: Mapping[int, Callable[[Any], Any]] | None = None,
    allow: AllowSpec = ALL,
) -> Any:
    """Load a file written by :func:`save_versioned`, migrated to ``current``.

    A file newer than ``current``, or a gap in the chain of migrations,
    raises :class:`VersionError` before the payload is unpickled.

    Parameters
    ----------
    path : path
        A file written by :func:`save_versioned`.
    current : int
        The version the program works with.
    migrations : mapping of int to callable, optional
        Maps version n to a function turning version-n data into
        version-n+1 data.
    allow : optional
        As in :func:`load_many` (default: plain pickle).

    Returns
    -------
    object
        The data, at version ``current``.

    Raises
    ------
    VersionError
        Not a versioned file, a file newer than ``current``, or a missing
        migration.

    Examples
    --------
    >>> import os, tempfile
    >>> from binrec import pickling
    >>> steps = {1: lambda d: {**d, "age": None}, 2: lambda d: {**d, "tags": []}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "profile.pkl")
    ...     pickling.save_versioned(path, {"name": "Ann"}, version=1)
    ...     print(pickling.load_versioned(path, current=3, migrations=steps))
    ...     try:
    ...         pickling.load_versioned(path, current=3, migrations={1: steps[1]})
    ...     except pickling.VersionError as exc:
    ...         print(str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc).split("profile.pkl ", 1)[1])
    {'name': 'Ann', 'age': None, 'tags': []}
    has version 1; no migration from version 2 to 3 (current is 3)
    """
    migrations = migrations or {}
    raw = Path(path).read_bytes()
    version = _parse_version_header(raw, path)
    migrate(None, version, current, {v: (lambda d: d) for v in migrations}, where=str(path))  # validate first
    payload = memoryview(raw)[_VERSION_HEADER.size :]
    data = pickle.loads(payload) if allow is ALL else safe_loads(payload, allow=allow)
    return migrate(data, version, current, migrations, where=str(path))
