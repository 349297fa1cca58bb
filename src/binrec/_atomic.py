"""Atomic, durable file replacement.

Write to a temporary file in the destination's folder, flush, fsync, then
``os.replace`` it over the destination and fsync the folder, so a crash at
any moment leaves either the old file or the new one, never half of one.

A symlink is followed: its final target is what gets replaced, and the
link stays a link.  An existing destination that is not a regular file (a
FIFO, a character or block device, a socket) cannot be replaced by a
rename without destroying it, so it is written through instead: opened for
writing and streamed to, with no atomicity (a reader of a FIFO sees the
data as it is written; a failed write leaves whatever was already sent).
A directory is an error (``IsADirectoryError``).  Errors name the path the
caller gave, never the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed import ReadableBuffer

__all__ = ["atomic_write", "atomic_writer", "fsync_dir", "TEMP_PREFIX"]

#: Temporary files start with this, so readers and cleaners can skip them.
TEMP_PREFIX = ".binrec-tmp-"


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename inside it is durable (POSIX only).

    Parameters
    ----------
    folder : path
        The directory whose entries were changed.

    Examples
    --------
    >>> import tempfile
    >>> from binrec._atomic import fsync_dir
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     fsync_dir(folder)  # returns nothing; on Windows does nothing
    """
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _named(exc: OSError, path: str) -> OSError:
    """The same error (same errno, same class), naming ``path``."""
    if exc.errno is None:
        return exc
    new = OSError(exc.errno, exc.strerror or os.strerror(exc.errno), path)
    new.__cause__ = exc
    return new


class _Writer(io.BufferedWriter):
    """A buffered writer whose unnamed I/O errors (ENOSPC, EPIPE...) name
    the destination the caller gave."""

    def __init__(self, raw: io.RawIOBase, shown: str) -> None:
        super().__init__(raw)
        self._shown = shown

    def write(self, data: ReadableBuffer, /) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            if exc.filename is None and not isinstance(exc, BlockingIOError):
                raise _named(exc, self._shown) from exc
            raise

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            if exc.filename is None and not self.closed:
                raise _named(exc, self._shown) from exc
            raise


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str] | os.PathLike[bytes],
    *,
    mode: int | None = None,
    temp_name: Callable[[str], str] | None = None,
    follow: bool = True,
) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file; on a clean exit the file
    atomically replaces ``path``; on an exception it is removed and ``path``
    is untouched.

    ``path`` may be a symlink (its final target is replaced; the link
    stays).  If ``path`` exists and is not a regular file (FIFO, device,
    socket) the data is written straight into it instead, without
    atomicity and ignoring ``mode``: no rename can replace such a file
    without destroying it.  A directory raises ``IsADirectoryError``.
    ``OSError`` raised here names ``path``, not the temporary file.

    Parameters
    ----------
    path : path
        The file to replace (or create).
    mode : int, optional
        Permission bits of the new file (default: the old file's, or those
        ``open()`` would give a new one).
    temp_name : callable, optional
        ``temp_name(final_name)`` names the temporary file (in the same
        folder) for a caller whose crash cleanup reads its own names, such
        as the checkpoint store's pid-tagged ones; it is created (or
        truncated) as ``open(..., "wb")`` would.  By default a unique name
        starting with :data:`TEMP_PREFIX` is created exclusively, mode 0o600,
        as :func:`tempfile.mkstemp` does.
    follow : bool
        ``False`` puts a new file at ``path`` itself, as ``os.replace``
        does: whatever entry is there (a symlink, a FIFO) is replaced,
        neither followed nor written through, and the new file gets the
        default permissions (``0o666`` less the umask), not the old file's.

    Yields
    ------
    BinaryIO
        The temporary file, open for writing.

    Raises
    ------
    IsADirectoryError
        ``path`` is a directory.
    OSError
        Creating, writing or renaming failed; it names ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from binrec._atomic import atomic_writer
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "x.bin")
    ...     with atomic_writer(path) as fh:
    ...         _ = fh.write(b"abc")
    ...     try:
    ...         with atomic_writer(path) as fh:
    ...             _ = fh.write(b"half of a new")
    ...             raise RuntimeError("crash")
    ...     except RuntimeError:
    ...         pass
    ...     with open(path, "rb") as fh:
    ...         print(fh.read(), os.listdir(folder))  # the old content, no temporary file left
    b'abc' ['x.bin']
    """
    shown = os.fspath(path)
    shown = shown.decode(errors="surrogateescape") if isinstance(shown, bytes) else shown
    # follow: a symlink's final target (the link stays); else the entry itself
    target = Path(os.path.realpath(shown) if follow else os.path.abspath(shown))
    try:
        st: os.stat_result | None = os.stat(target) if follow else os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _named(exc, shown) from exc
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown)
    if st is not None and not stat.S_ISREG(st.st_mode) and follow:
        yield from _write_through(target, shown)
        return
    if not follow:
        st = None  # a new file: default permissions
    folder = target.parent
    tmp: str | None = None
    try:
        # The name is chosen before the file exists, so the cleanup below
        # knows it whenever an exception lands (a SIGTERM or Ctrl-C right
        # after the file is made included).  Holding signals back with a
        # mask cannot do this: numpy's BLAS threads leave them unblocked, the
        # kernel delivers them there, and Python runs the handler at once.
        try:
            for _attempt in range(100):
                tmp = os.path.join(folder, temp_name(target.name) if temp_name else _temp_name(target.name))
                try:
                    raw = _create_temp(tmp, exclusive=temp_name is None)
                    break
                except FileExistsError:
                    tmp = None  # someone else's file: never ours to remove
                    if temp_name is not None:
                        raise
            else:
                raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(folder))
        except OSError as exc:
            raise _named(exc, shown) from exc
        with _Writer(raw, shown) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            if mode is not None:
                os.chmod(tmp, mode)
            elif st is not None:
                with contextlib.suppress(OSError):
                    os.chmod(tmp, st.st_mode & 0o7777)
            elif temp_name is None:  # created 0o600: give it what open() would
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, target)
        except OSError as exc:
            raise _named(exc, shown) from exc
    except BaseException:
        if tmp is not None:
            # not there (the error came before it was made) or not a file
            # (a directory in the hook's name's way): nothing of ours to remove
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                os.unlink(tmp)
        raise
    fsync_dir(folder)


def _temp_name(final_name: str) -> str:
    """A fresh temporary name beside ``final_name`` (64 random bits)."""
    return f"{TEMP_PREFIX}{final_name}.{secrets.token_hex(8)}"


def _create_temp(path: str, exclusive: bool) -> io.FileIO:
    """Create ``path`` for writing: a new file (``exclusive``, mode 0o600
    as mkstemp makes it), or as ``open(path, "wb")`` does."""
    if not exclusive:
        return io.FileIO(path, "wb")
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0), 0o600
    )
    try:
        return io.FileIO(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def _write_through(target: Path, shown: str) -> Iterator[BinaryIO]:
    """Stream into an existing FIFO, device or socket (not atomic)."""
    try:
        raw = io.FileIO(target, "wb")  # a FIFO: waits for a reader, like a shell redirection
    except OSError as exc:
        raise _named(exc, shown) from exc
    with _Writer(raw, shown) as fh:
        yield fh
        fh.flush()


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` atomically with ``data``.

    See :func:`atomic_writer` for symlinks and special files.

    Parameters
    ----------
    path : path
        The file to replace (or create).
    data : bytes or callable
        The new content, or a function that writes it to the file object
        it is given.

    Examples
    --------
    >>> import os, tempfile
    >>> from binrec._atomic import atomic_write
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "x.txt")
    ...     atomic_write(path, b"one")
    ...     atomic_write(path, lambda fh: fh.write(b"two"))
    ...     with open(path, "rb") as fh:
    ...         print(fh.read())
    b'two'
    """
    with atomic_writer(path) as fh:
        if callable(data):
            data(fh)
        else:
            fh.write(data)
