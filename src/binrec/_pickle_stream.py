"""Streams of pickled objects: :func:`dump_many` and :func:`load_many`.

Each object is pickled on its own (fresh memo), so a stream can be appended
to and read back lazily; a cut-short stream yields every complete object
and then raises :class:`~binrec.pickling.TruncatedError` at the byte offset
of the broken one, on pipes too.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, Literal

from . import _pickle_scan
from ._pickle_errors import LimitExceeded, PickleSecurityError, TruncatedError
from ._pickle_policy import ALL, AllowSpec, Policy, policy_for
from ._pickle_restricted import (
    MALFORMED,
    RestrictedUnpickler,
    as_pickle_error,
    extension_registry_in_use,
    scan_or_refuse,
)


def _open_for(file: BinaryIO | str | os.PathLike[str], mode: Literal["rb", "wb", "ab"]) -> tuple[BinaryIO, bool]:
    if isinstance(file, (str, os.PathLike)):
        return open(file, mode), True
    return file, False


def dump_many(
    objects: Iterable[Any],
    file: BinaryIO | str | os.PathLike[str],
    *,
    protocol: int | None = None,
    append: bool = False,
) -> int:
    """Pickle each object, one after another, into a file or stream.

    Each object is pickled on its own (fresh memo), so the stream can be
    appended to, and read back by repeated :func:`pickle.load` too.

    Parameters
    ----------
    objects : iterable
        The objects to write.
    file : binary file object or path
        A path is created (or appended to with ``append=True``).
    protocol : int, optional
        Default :data:`pickle.HIGHEST_PROTOCOL`.
    append : bool
        Append to a path instead of replacing it.

    Returns
    -------
    int
        How many objects were written.

    Examples
    --------
    >>> import io, pickle
    >>> from binrec import pickling
    >>> buf = io.BytesIO()
    >>> pickling.dump_many([{"id": 1}, {"id": 2}], buf)
    2
    >>> _ = buf.seek(0)
    >>> list(pickling.load_many(buf))
    [{'id': 1}, {'id': 2}]
    >>> _ = buf.seek(0)
    >>> pickle.load(buf), pickle.load(buf)  # plain pickle reads it too
    ({'id': 1}, {'id': 2})
    """
    protocol = pickle.HIGHEST_PROTOCOL if protocol is None else protocol
    fh, close = _open_for(file, "ab" if append else "wb")
    try:
        pickler = pickle.Pickler(fh, protocol=protocol)
        n = 0
        for obj in objects:
            pickler.dump(obj)
            pickler.clear_memo()  # each object stands alone, loadable by itself
            n += 1
        fh.flush()
        return n
    finally:
        if close:
            fh.close()


class _CountingReader(io.RawIOBase):
    """Wraps a binary stream and counts the bytes handed out, so a failure
    can be reported at its byte offset even on a pipe."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.position = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def readinto(self, b: Any) -> int:  # b: the writable buffer io hands in (a memoryview)
        reader = getattr(self._raw, "readinto", None)
        if reader is not None:
            n = reader(b) or 0
        else:
            chunk = self._raw.read(len(b))
            n = len(chunk)
            b[:n] = chunk
        self.position += n
        return n


def load_many(
    file: BinaryIO | str | os.PathLike[str], *, allow: AllowSpec = ALL, max_bytes: int | None = None
) -> Iterator[Any]:
    """Yield the objects of a stream written by :func:`dump_many` (or by
    repeated :func:`pickle.dump`), lazily, stopping at a clean end of file.

    Parameters
    ----------
    file : binary file object or path
        The stream (pipes too).
    allow : optional
        Default :data:`ALL` (plain pickle: for your own files).  Pass ``None``
        for :data:`DEFAULT_ALLOW`, or an allow spec as in :func:`safe_loads`,
        to load untrusted streams with the restricted loader.
    max_bytes : int, optional
        With the restricted loader: refuse an object larger than this.

    Yields
    ------
    object
        Each unpickled object, in order.

    Raises
    ------
    TruncatedError
        The last object is cut short or corrupt; every complete object
        before it has been yielded.  ``offset`` names where it starts.
    PickleSecurityError
        With ``allow`` other than :data:`ALL`: an object the restricted
        loader refuses; the objects before it have been yielded.

    Examples
    --------
    >>> import argparse, os, tempfile
    >>> from binrec import pickling
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "events.pkl")
    ...     pickling.dump_many([1, 2], path)
    ...     pickling.dump_many([argparse.Namespace(n=3)], path, append=True)
    ...     print(list(pickling.load_many(path)))
    ...     events = pickling.load_many(path, allow=None)  # untrusted: the restricted loader
    ...     print(next(events), next(events))
    ...     try:
    ...         next(events)
    ...     except pickling.ForbiddenGlobal as exc:
    ...         print(exc)
    2
    1
    [1, 2, Namespace(n=3)]
    1 2
    forbidden global argparse.Namespace: not in the allowlist
    """
    fh, close = _open_for(file, "rb")
    try:
        yield from _load_stream(fh, None if allow is ALL else policy_for(allow), max_bytes)
    finally:
        if close:
            fh.close()


def _seekable(fh: Any) -> bool:
    try:
        return bool(fh.seekable()) and hasattr(fh, "tell")
    except (AttributeError, ValueError, OSError):
        return False


class _RetainingReader(_CountingReader):
    """A pipe made seekable back to the start of the current object: the
    restricted loader rescans an object's bytes (see
    :meth:`RestrictedUnpickler.validate`) after the unpickler began
    reading it."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        self._kept = bytearray()  # bytes from self._base on
        self._base = 0

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.position + offset if whence == io.SEEK_CUR else -1
        if not self._base <= target <= self._base + len(self._kept):
            raise OSError(
                f"cannot seek to byte {target} of a pipe (kept: {self._base}..{self._base + len(self._kept)})"
            )
        self.position = target
        return target

    def forget_before(self, offset: int) -> None:
        del self._kept[: max(0, offset - self._base)]
        self._base = max(self._base, offset)

    def readinto(self, b: Any) -> int:  # b: the writable buffer io hands in (a memoryview)
        end = self._base + len(self._kept)
        if self.position == end:  # nothing kept ahead: read the pipe
            n = super().readinto(b)
            self._kept += memoryview(b)[:n]
            return n
        i = self.position - self._base
        n = min(len(b), len(self._kept) - i)
        b[:n] = self._kept[i : i + n]
        self.position += n
        return n


def _stream_rescan(reader: Any, start: int) -> Callable[[], _pickle_scan.Scan]:
    """A function that scans the pickle starting at ``start`` of a seekable
    ``reader`` and puts the reader back where it was."""

    def rescan() -> _pickle_scan.Scan:
        here = reader.tell()
        reader.seek(start)
        # What the unpickler has read so far plus a little, then doubling
        # reads: a small pickle in a long stream costs a small read, not
        # 64 KiB (the scan's result does not depend on how it is fed).
        size = max(here - start, 0) + 4096

        def more() -> bytes:
            nonlocal size
            chunk: bytes = reader.read(size)
            size = min(2 * size, 1 << 22)
            return chunk

        try:
            return scan_or_refuse(b"", 0, more)
        finally:
            reader.seek(here)

    return rescan


def _more_to_read(reader: Any) -> bool:
    here = reader.tell()
    probe = reader.read(1)
    reader.seek(here)
    return bool(probe)


def _load_stream(fh: BinaryIO, policy: Policy | None, max_bytes: int | None) -> Iterator[Any]:
    retaining = None
    if _seekable(fh):
        reader: Any = fh
        base = fh.tell()
    else:  # pipes, sockets: count what we hand to the unpickler
        raw = _CountingReader(fh) if policy is None else _RetainingReader(fh)
        retaining = raw if isinstance(raw, _RetainingReader) else None
        reader = io.BufferedReader(raw, buffer_size=1 << 16)
        base = 0
    index = 0
    start = reader.tell() - base
    while True:
        # A fresh unpickler per object: each pickle's memo starts at 0 (and
        # assigning ``Unpickler.memo = {}`` crashes CPython 3.11).
        try:
            if policy is None:
                obj = pickle.load(reader)
            else:
                if retaining is not None:
                    retaining.forget_before(start + base)
                unpickler = RestrictedUnpickler(reader, policy)
                unpickler.rescan = _stream_rescan(reader, start + base)
                if extension_registry_in_use() and _more_to_read(reader):
                    unpickler.validate()  # an EXT cache hit skips find_class
                obj = unpickler.load()
        except PickleSecurityError:
            raise
        except EOFError as exc:
            if reader.tell() - base == start:
                return  # nothing left: a clean end of the stream
            raise TruncatedError(start, index, exc) from exc
        except MALFORMED as exc:
            raise as_pickle_error(exc, start, index) from exc
        end = reader.tell() - base
        if max_bytes is not None and end - start > max_bytes:
            raise LimitExceeded(f"object #{index} at byte offset {start} is larger than max_bytes={max_bytes}")
        index += 1
        start = end
        yield obj
