"""Paths and fsspec URLs: one way to name, list, size and read record files
wherever they live (``pip install "binrec[cloud]"`` for URLs).

A *URL* is a string with a ``protocol://`` scheme (``s3://``, ``gs://``,
``memory://``, ``file://``...), optionally chained (``simplecache::s3://``).
Everything else -- a plain string, an ``os.PathLike`` -- is a local path, and
so is a ``file://`` URL as far as reading goes: :func:`local_path` turns it
back into a path, so local files keep their fast paths (``readinto``,
``mmap``) whichever way they are named.

fsspec is imported lazily, on the first remote URL: ``import binrec`` and
every local path work without it.  Remote reads are ranged requests of
:data:`RANGE_BYTES` to :data:`MAX_RANGE_BYTES` each, :data:`IN_FLIGHT` of
them at once (:func:`iter_ranges`), never one request per record.

Shared by ``files.py``, ``cli.py``, ``dask.py`` and ``spark.py`` (a name two
modules share is public within the package); not part of the public API.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import io
import os
import re
import stat
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "FileEntry",
    "FileSystem",
    "IN_FLIGHT",
    "MAX_RANGE_BYTES",
    "RANGE_BYTES",
    "RangeReader",
    "StrPaths",
    "expand",
    "is_url",
    "iter_ranges",
    "local_path",
    "open_input",
    "read_range",
    "named_error",
    "reject_options",
    "stat_entry",
    "upload",
    "url_to_fs",
    "write_object",
]

#: An fsspec ``AbstractFileSystem`` (fsspec is optional and ships no type
#: information, so it is not imported even for the annotations).
FileSystem: TypeAlias = Any

#: one path or URL, or several (each may be a glob pattern)
StrPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

#: Bytes per ranged request to object storage: large enough that the
#: request's round trip is a small part of its time.
RANGE_BYTES = 8 << 20
#: Ranges grow up to this size for a large object, so that one round of
#: requests covers objects up to ``IN_FLIGHT * MAX_RANGE_BYTES`` (256 MiB):
#: fewer requests, and memory in flight stays under 256 MiB.
MAX_RANGE_BYTES = 64 << 20
#: Ranged requests kept in flight at once while streaming a remote file.
IN_FLIGHT = 4

# A scheme of two or more characters (one letter followed by ":" is a
# Windows drive, as fsspec also decides), then "://"; chained URLs
# ("simplecache::s3://...") put "name::" links first.
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]+::)*[A-Za-z][A-Za-z0-9+.\-]+://")
_LOCAL_SCHEMES = ("file://", "local://")


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL (a ``str`` with a ``proto://`` scheme,
    ``file://`` included) rather than a local path.

    Parameters
    ----------
    path : object
        What the caller passed as a path.

    Returns
    -------
    bool
        True for ``"s3://b/k"``, ``"file:///tmp/x"``, ``"simplecache::s3://b/k"``;
        False for plain paths, ``os.PathLike`` objects, ``bytes`` and Windows
        paths such as ``C:\\data\\x.bin``.

    Examples
    --------
    >>> import pathlib
    >>> from binrec._fs import is_url
    >>> is_url("s3://bucket/key.bin"), is_url("file:///tmp/x.bin"), is_url("C:\\\\data\\\\x.bin")
    (True, True, False)
    >>> is_url("data/x.bin"), is_url(pathlib.Path("s3://x"))
    (False, False)
    """
    return isinstance(path, str) and _URL.match(path) is not None


def local_path(path: object) -> str | None:
    """The local filesystem path of a plain path or a ``file://`` URL; None
    for a remote URL (and for anything that is not a path).

    The ``file://`` prefix is stripped as fsspec strips it (no
    percent-decoding); ``file:///C:/x`` gives ``C:/x`` on Windows.

    Parameters
    ----------
    path : str or os.PathLike
        A path or URL.

    Returns
    -------
    str or None

    Examples
    --------
    >>> from binrec._fs import local_path
    >>> local_path("file:///tmp/x.bin"), local_path("data/x.bin"), local_path("s3://b/x.bin")
    ('/tmp/x.bin', 'data/x.bin', None)
    """
    if isinstance(path, os.PathLike):
        return os.fsdecode(path)
    if not isinstance(path, str):
        return None
    if not is_url(path):
        return path
    for scheme in _LOCAL_SCHEMES:
        if path.startswith(scheme):
            rest = path[len(scheme) :]
            if rest.startswith("localhost/"):
                rest = rest[len("localhost") :]
            if os.name == "nt" and re.match(r"^/[A-Za-z]:", rest):  # pragma: no cover - Windows
                rest = rest[1:]
            return rest
    return None


def _import_fsspec(url: str) -> Any:
    try:
        return importlib.import_module("fsspec")
    except ImportError as exc:
        raise ImportError(
            f'{url!r} is a URL: reading or writing URLs needs fsspec: pip install "binrec[cloud]" ({exc})'
        ) from exc


def reject_options(path: object, storage_options: Mapping[str, Any] | None) -> None:
    """``storage_options`` belong to URLs: given with a local path they are
    a mistake, refused as pandas refuses them.

    Raises
    ------
    ValueError
        ``storage_options`` is not empty and ``path`` is not a URL.

    Examples
    --------
    >>> from binrec._fs import reject_options
    >>> reject_options("s3://b/k", {"anon": True})  # fine
    >>> try:
    ...     reject_options("data.bin", {"anon": True})
    ... except ValueError as exc:
    ...     print(exc)
    storage_options are for fsspec URLs (s3://...), not the local path 'data.bin'
    """
    if storage_options and not is_url(path):
        if isinstance(path, (str, os.PathLike)):
            shown = f"the local path {os.fsdecode(path)!r}"
        else:
            shown = f"a {type(path).__name__}"
        raise ValueError(f"storage_options are for fsspec URLs (s3://...), not {shown}")


def url_to_fs(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[FileSystem, str]:
    """The fsspec filesystem for ``url`` and the path within it.

    Parameters
    ----------
    url : str
        An fsspec URL (``s3://bucket/key``, ``memory://x``...).  A local path
        is accepted too (its filesystem is fsspec's local one).
    storage_options : mapping, optional
        Passed to the filesystem (credentials, ``client_kwargs``...).

    Returns
    -------
    (fsspec.AbstractFileSystem, str)

    Raises
    ------
    ImportError
        fsspec is not installed (``pip install "binrec[cloud]"``), or the
        protocol's own package (s3fs, gcsfs, adlfs...) is missing; the
        message names the URL.
    ValueError
        ``storage_options`` with a local path, or an unknown protocol.

    Examples
    --------
    >>> from binrec._fs import url_to_fs
    >>> fs, path = url_to_fs("memory://binrec-doc/x.bin")
    >>> type(fs).__name__, path
    ('MemoryFileSystem', '/binrec-doc/x.bin')
    """
    reject_options(url, storage_options)
    fsspec = _import_fsspec(url)
    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:  # the protocol's package (s3fs...) is missing
        raise ImportError(f"{url!r}: {exc}") from exc
    except ValueError as exc:  # an unknown protocol
        raise ValueError(f"{url!r}: {exc}") from exc
    return fs, path


@dataclass(frozen=True)
class FileEntry:
    """One record file, found and sized: what readers need to plan their
    reads without opening it.

    ``url`` is the name messages use (the path or URL as the user wrote it,
    or the glob match); ``fs`` is None for a local file (``path`` is then
    its local path) and the fsspec filesystem otherwise (``path`` is the
    path within it).  Picklable, so it can travel to Dask and Spark workers.
    """

    url: str
    fs: FileSystem | None
    path: str
    size: int

    @property
    def is_local(self) -> bool:
        return self.fs is None


def named_error(exc: BaseException, url: str, what: str = "") -> OSError:
    """An error from a filesystem, as an OSError naming ``url`` (the same
    OSError class when it was one: FileNotFoundError stays one)."""
    cls = type(exc) if isinstance(exc, OSError) else OSError
    detail = str(exc) or type(exc).__name__
    if not isinstance(exc, OSError):
        detail = f"{type(exc).__name__}: {detail}"
    message = f"{url}: {what}{detail}"
    try:
        new = cls(message)
    except Exception:  # pragma: no cover - an OSError subclass with another signature
        new = OSError(message)
    new.__cause__ = exc
    return new


def _directory_error(shown: str) -> IsADirectoryError:
    sep = "/" if is_url(shown) else os.sep
    suggestion = shown.rstrip("/" + os.sep) + sep + "*.bin"
    return IsADirectoryError(
        f"{shown!r} is a directory, not a record file (to read the files in it, pass a glob such as {suggestion!r})"
    )


def _local_entries(item: str, path: str) -> list[FileEntry]:
    """Local files (binrec.dask's rules: a glob skips directories it
    matches, a directory named outright is an error)."""
    url_prefix = item[: len(item) - len(path)] if item != path and item.endswith(path) else ""
    if glob.has_magic(path):
        out = []
        for match in sorted(glob.glob(path)):
            try:
                st = os.stat(match)
            except (FileNotFoundError, NotADirectoryError):  # gone since the glob
                continue
            if not stat.S_ISDIR(st.st_mode):
                out.append(FileEntry(url_prefix + match, None, match, st.st_size))
        if not out:
            raise FileNotFoundError(f"no record files match {item!r}")
        return out
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"no such record file: {item!r}") from None
    if stat.S_ISDIR(st.st_mode):
        raise _directory_error(item)
    return [FileEntry(item, None, path, st.st_size)]


def _remote_entries(item: str, storage_options: Mapping[str, Any] | None) -> list[FileEntry]:
    fs, path = url_to_fs(item, storage_options)
    if glob.has_magic(path):
        try:
            found = fs.glob(path, detail=True)
        except FileNotFoundError:
            found = {}
        except Exception as exc:
            raise named_error(exc, item, "cannot list: ") from exc
        files = sorted(p for p, info in found.items() if info.get("type") != "directory")
        if not files:
            raise FileNotFoundError(f"no record files match {item!r}")
        return [FileEntry(fs.unstrip_protocol(p), fs, p, int(found[p]["size"])) for p in files]
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such record file: {item!r}") from None
    except Exception as exc:
        raise named_error(exc, item) from exc
    if info.get("type") == "directory":
        raise _directory_error(item)
    return [FileEntry(item, fs, path, int(info["size"]))]


def stat_entry(path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> FileEntry:
    """One file, named outright (no glob expansion): its entry, sized by
    ``os.stat`` or the filesystem's ``info``.

    Examples
    --------
    >>> import fsspec
    >>> from binrec._fs import stat_entry
    >>> fsspec.filesystem("memory").pipe("/binrec-doc/a[1].bin", b"12345")
    >>> stat_entry("memory://binrec-doc/a[1].bin").size
    5
    """
    reject_options(path, storage_options)
    local = local_path(path)
    shown = os.fsdecode(path)
    if local is not None:
        try:
            st = os.stat(local)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(f"no such record file: {shown!r}") from None
        if stat.S_ISDIR(st.st_mode):
            raise _directory_error(shown)
        return FileEntry(shown, None, local, st.st_size)
    fs, fspath = url_to_fs(shown, storage_options)
    try:
        info = fs.info(fspath)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such record file: {shown!r}") from None
    except Exception as exc:
        raise named_error(exc, shown) from exc
    if info.get("type") == "directory":
        raise _directory_error(shown)
    return FileEntry(shown, fs, fspath, int(info["size"]))


def expand(paths: StrPaths, storage_options: Mapping[str, Any] | None = None) -> list[FileEntry]:
    """Paths, URLs and glob matches, in order, each one a file with its size.

    A glob is expanded by its own filesystem (``glob.glob`` locally,
    ``fs.glob`` for a URL), sorted, skipping the directories it matches.
    Sizes come from ``os.stat`` / ``fs.info`` (one listing for a glob):
    no file is opened.

    Parameters
    ----------
    paths : path, URL, glob pattern, or a sequence of them
        The record files.
    storage_options : mapping, optional
        For the URLs' filesystems; an error with a local path.

    Returns
    -------
    list of FileEntry

    Raises
    ------
    FileNotFoundError
        A path or URL that does not exist, or a glob that matches no file
        (the message names it).
    IsADirectoryError
        A directory named outright.
    ValueError
        No paths at all, or ``storage_options`` with a local path.
    OSError
        The filesystem refused (credentials, a missing bucket...): the
        message names the URL.

    Examples
    --------
    >>> import fsspec
    >>> from binrec._fs import expand
    >>> fs = fsspec.filesystem("memory")
    >>> fs.pipe({"/binrec-doc/logs/b.bin": b"1234", "/binrec-doc/logs/a.bin": b"12"})
    >>> [(e.url, e.size) for e in expand("memory://binrec-doc/logs/*.bin")]
    [('memory:///binrec-doc/logs/a.bin', 2), ('memory:///binrec-doc/logs/b.bin', 4)]
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[FileEntry] = []
    for item in items:
        reject_options(item, storage_options)
        shown = os.fsdecode(item)
        local = local_path(item)
        if local is not None:
            out.extend(_local_entries(shown, local))
        else:
            out.extend(_remote_entries(shown, storage_options))
    if not out:
        raise ValueError("no record files given")
    return out


def open_input(path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> Any:
    """Open a path or URL for reading, as a binary file object.

    A local path (or ``file://`` URL) is opened with :func:`open`; a remote
    URL with the filesystem's ``open`` (buffered, read-ahead of
    :data:`RANGE_BYTES`).  Prefer :func:`iter_ranges` to stream a whole
    remote file: it keeps several requests in flight.

    Examples
    --------
    >>> import fsspec
    >>> from binrec._fs import open_input
    >>> fsspec.filesystem("memory").pipe("/binrec-doc/o.bin", b"abc")
    >>> with open_input("memory://binrec-doc/o.bin") as fh:
    ...     fh.read()
    b'abc'
    """
    reject_options(path, storage_options)
    local = local_path(path)
    if local is not None:
        return open(local, "rb")
    url = os.fsdecode(path)
    fs, fspath = url_to_fs(url, storage_options)
    try:
        return fs.open(fspath, "rb", block_size=RANGE_BYTES)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such record file: {url!r}") from None
    except Exception as exc:
        raise named_error(exc, url) from exc


def read_range(entry: FileEntry, start: int, length: int) -> bytes:
    """``length`` bytes of ``entry`` from byte ``start``, in one request.

    Raises
    ------
    OSError
        The read failed, or returned fewer bytes (the file shrank since it
        was sized); the message names the URL.

    Examples
    --------
    >>> import fsspec
    >>> from binrec._fs import expand, read_range
    >>> fsspec.filesystem("memory").pipe("/binrec-doc/r.bin", b"0123456789")
    >>> read_range(expand("memory://binrec-doc/r.bin")[0], 2, 3)
    b'234'
    """
    if length <= 0:
        return b""
    if entry.fs is None:
        with open(entry.path, "rb") as fh:
            fh.seek(start)
            data = fh.read(length)
    else:
        try:
            data = entry.fs.cat_file(entry.path, start=start, end=start + length)
        except Exception as exc:
            raise named_error(exc, entry.url, f"reading bytes {start}-{start + length}: ") from exc
    if len(data) != length:
        raise OSError(
            f"{entry.url}: the file shrank while being read (bytes {start}-{start + length} asked, {len(data)} returned)"
        )
    return bytes(data)


def iter_ranges(
    entry: FileEntry,
    start: int,
    stop: int,
    *,
    piece: int | None = None,
    in_flight: int | None = None,
    align: int = 1,
) -> Iterator[bytes]:
    """The bytes ``start:stop`` of ``entry``, as consecutive pieces of about
    ``piece`` bytes (default: the range split across the requests in
    flight, at least :data:`RANGE_BYTES`, at most :data:`MAX_RANGE_BYTES`; a multiple of ``align``,
    so record files can be cut on record boundaries), fetched ``in_flight``
    (default :data:`IN_FLIGHT`) ranged requests at a time and yielded in
    order.

    Examples
    --------
    >>> import fsspec
    >>> from binrec._fs import expand, iter_ranges
    >>> fsspec.filesystem("memory").pipe("/binrec-doc/i.bin", b"0123456789")
    >>> list(iter_ranges(expand("memory://binrec-doc/i.bin")[0], 1, 10, piece=4, align=3))
    [b'123', b'456', b'789']
    """
    in_flight = IN_FLIGHT if in_flight is None else in_flight
    if piece is None:  # the object split across the requests in flight, within the bounds
        piece = min(MAX_RANGE_BYTES, max(RANGE_BYTES, -(-(stop - start) // in_flight)))
    if align <= 0 or piece <= 0 or in_flight <= 0:
        raise ValueError("iter_ranges: piece, in_flight and align must be positive")
    step = max(align, piece - piece % align)
    bounds = [(a, min(stop, a + step)) for a in range(start, stop, step)]
    if len(bounds) <= 1 or in_flight == 1:
        for a, b in bounds:
            yield read_range(entry, a, b - a)
        return
    pool = ThreadPoolExecutor(max_workers=min(in_flight, len(bounds)), thread_name_prefix="binrec-range")
    pending: deque[Future[bytes]] = deque()
    todo = iter(bounds)
    try:
        for a, b in todo:
            pending.append(pool.submit(read_range, entry, a, b - a))
            if len(pending) >= in_flight:
                break
        while pending:
            data = pending.popleft().result()
            for a, b in todo:
                pending.append(pool.submit(read_range, entry, a, b - a))
                break
            yield data
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


class RangeReader(io.RawIOBase):
    """A read-only, seekable binary file over a remote :class:`FileEntry`,
    fed by :func:`iter_ranges` (large ranged requests, several in flight,
    started lazily from the current position by the first read after a
    seek).  Errors name the entry's URL.

    Examples
    --------
    >>> import fsspec
    >>> from binrec._fs import RangeReader, expand
    >>> fsspec.filesystem("memory").pipe("/binrec-doc/rr.bin", b"0123456789")
    >>> fh = RangeReader(expand("memory://binrec-doc/rr.bin")[0], piece=4)
    >>> _ = fh.seek(3)
    >>> fh.read(5), fh.read()
    (b'34567', b'89')
    """

    def __init__(self, entry: FileEntry, *, piece: int | None = None, in_flight: int | None = None) -> None:
        super().__init__()
        self.entry = entry
        self.name = entry.url
        self._piece = piece
        self._in_flight = in_flight
        self._pos = 0
        self._pieces: Iterator[bytes] | None = None
        self._block = memoryview(b"")
        self._at = 0  # position in _block

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.entry.size}[whence]
        target = base + pos
        if target < 0:
            raise ValueError(f"{self.entry.url}: negative seek position {target}")
        if target != self._pos:
            self._stop()
            self._pos = target
        return target

    def _stop(self) -> None:
        if self._pieces is not None:
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()
        self._pieces = None
        self._block = memoryview(b"")
        self._at = 0

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` as far as the file goes (short only at its end)."""
        view = memoryview(buffer).cast("B")
        got = 0
        while got < len(view) and self._pos < self.entry.size:
            if self._at >= len(self._block):
                if self._pieces is None:
                    self._pieces = iter_ranges(
                        self.entry, self._pos, self.entry.size, piece=self._piece, in_flight=self._in_flight
                    )
                block = next(self._pieces, None)
                if block is None:  # pragma: no cover - iter_ranges covers pos..size
                    break
                self._block = memoryview(block)
                self._at = 0
            n = min(len(view) - got, len(self._block) - self._at)
            view[got : got + n] = self._block[self._at : self._at + n]
            self._at += n
            self._pos += n
            got += n
        return got

    def close(self) -> None:
        self._stop()
        super().close()


#: Filesystems whose ``open(..., autocommit=False)`` still commits at once
#: outside a transaction (fsspec's memory filesystem stores the file when it
#: is opened): their objects are built in memory and stored in one put.
_COMMITS_ON_OPEN = {"memory"}


def _protocols(fs: FileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _write_then_put(fs: FileSystem, path: str, url: str, write: Callable[[Any], object]) -> None:
    buffer = io.BytesIO()
    write(buffer)
    try:
        fs.pipe_file(path, buffer.getvalue())
    except Exception as exc:
        raise named_error(exc, url, "writing failed, nothing written: ") from exc


def write_object(url: str, storage_options: Mapping[str, Any] | None, write: Callable[[Any], object]) -> None:
    """Write one object through its fsspec filesystem so that it appears
    only complete: ``write(fh)`` fills a file opened without auto-commit
    (fsspec's transactional open), which is committed after it returns (on
    S3: a completed multipart upload) and discarded if anything fails (the
    upload aborted), leaving nothing under ``url``.  (On fsspec's
    ``memory://`` filesystem, which stores a file as soon as it is opened,
    the object is built in memory and stored in one ``pipe_file``.)

    Parameters
    ----------
    url : str
        The object to write (a remote fsspec URL).
    storage_options : mapping, optional
        For the filesystem.
    write : callable
        Called with the open binary file; writes the bytes.

    Raises
    ------
    OSError
        The store refused (the message names the URL); exceptions from
        ``write`` itself that are not OSErrors pass through unchanged.

    Examples
    --------
    >>> import fsspec
    >>> from binrec._fs import write_object
    >>> write_object("memory://binrec-doc/w.bin", None, lambda fh: fh.write(b"whole"))
    >>> fsspec.filesystem("memory").cat("/binrec-doc/w.bin")
    b'whole'
    >>> def fail(fh):
    ...     fh.write(b"half")
    ...     raise RuntimeError("disk on fire")
    >>> try:
    ...     write_object("memory://binrec-doc/half.bin", None, fail)
    ... except RuntimeError:
    ...     print(fsspec.filesystem("memory").exists("/binrec-doc/half.bin"))
    False
    """
    fs, path = url_to_fs(url, storage_options)
    if set(_protocols(fs)) & _COMMITS_ON_OPEN:
        _write_then_put(fs, path, url, write)
        return
    try:
        fh = fs.open(path, "wb", autocommit=False)
    except Exception as exc:
        raise named_error(exc, url, "cannot write: ") from exc
    try:
        write(fh)
        fh.close()
        fh.commit()
    except BaseException as exc:
        with contextlib.suppress(Exception):  # a store that went away never completed the upload either
            fh.discard()
        if isinstance(exc, OSError):
            raise named_error(exc, url, "writing failed, nothing written: ") from exc
        raise


def upload(source: Any, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Copy a binary file object (from its current position) to ``url``
    with :func:`write_object`: the object appears only complete.

    Examples
    --------
    >>> import io, fsspec
    >>> from binrec._fs import upload
    >>> upload(io.BytesIO(b"abc"), "memory://binrec-doc/u.bin")
    >>> fsspec.filesystem("memory").cat("/binrec-doc/u.bin")
    b'abc'
    """

    def copy(fh: Any) -> None:
        while block := source.read(RANGE_BYTES):
            fh.write(block)

    write_object(url, storage_options, copy)
