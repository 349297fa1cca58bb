"""Atomic, durable file replacement.

Write to a temporary file in the destination's folder, flush, fsync, then
``os.replace`` it over the destination and fsync the folder, so a crash at
any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_writer", "fsync_dir", "TEMP_PREFIX"]

#: Temporary files start with this, so readers and cleaners can skip them.
TEMP_PREFIX = ".binrec-tmp-"


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a directory so a rename inside it is durable (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file; on a clean exit the file
    atomically replaces ``path``; on an exception it is removed and ``path``
    is untouched.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with atomic_writer(os.path.join(d, "x.bin")) as fh:
    ...     _ = fh.write(b"abc")
    >>> open(os.path.join(d, "x.bin"), "rb").read()
    b'abc'
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` atomically with ``data`` (bytes, or a function that
    writes to the file object it is given)."""
    with atomic_writer(path) as fh:
        if callable(data):
            data(fh)
        else:
            fh.write(data)
