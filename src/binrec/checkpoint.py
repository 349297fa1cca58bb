"""A checkpoint store for training state with numpy arrays.

One file per checkpoint (format: ``docs/checkpoint-format.md``): a JSON
header that ``list()`` reads without touching the payload, a pickle
skeleton, numpy arrays written out of band (pickle protocol 5) as raw
(or, with ``compress=``, zstd-compressed) 64-byte-aligned sections each
with a checksum of the stored bytes (zlib CRC32, or XXH3 with
``checksum="xxh3"``), and a footer with SHA-256 digests (XXH3-128 with
``checksum="xxh3"``; with ``key=``,
HMAC-SHA256 or keyed BLAKE3, as the header's ``digest`` field records).  Writes are atomic and durable (``binrec._atomic``: a
pid-tagged temporary file in the same folder, fsync, ``os.replace``, fsync
of the folder); loads check lengths and
checksums before anything is unpickled, and unpickle with the restricted
loader.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib
import io
import json
import mmap as _mmap
import os
import pickle
import re
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import signing
from ._atomic import TEMP_PREFIX, atomic_writer, fsync_dir
from ._crc32 import crc32, crc32_each
from ._pickle_versioned import check_version
from .pickling import AllowSpec, PickleSecurityError, TruncatedError, migrate, restricted_loads
from .signing import BadSignature, UnsupportedAlgorithm

__all__ = [
    "CheckpointStore",
    "CheckpointInfo",
    "CheckpointError",
    "CheckpointNotFound",
    "CheckpointCorrupted",
    "CorruptSkeleton",
    "InvalidCheckpointName",
    "BadSignature",
    "UnsupportedAlgorithm",
    "CHECKSUMS",
    "CODECS",
    "FORMAT_VERSION",
]

MAGIC = b"BINRECCK"
FOOTER_MAGIC = b"BRCKFOOT"
FORMAT_VERSION = 1
FLAG_KEYED = 1
ALIGN = 64
SUFFIX = ".ckpt"
_PREFIX = struct.Struct("<8sIIQ")  # magic, format version, flags, header length
_FOOTER = struct.Struct("<8s32s32sI")  # magic, head digest, file digest, crc32 of the 72 bytes before it
_MAX_HEADER = 64 << 20
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+=@-]{0,199}$")
_CONTEXT = b"binrec.checkpoint"
_CHUNK = 8 << 20
#: The header's ``digest`` field: what made the footer's digests.
_UNKEYED_DIGEST = "sha256"
_KEYED_DIGESTS = signing.ALGORITHMS  # "hmac-sha256", "blake3"
#: Per-section checksums, by the name ``checksum=`` takes.  ``"crc32"``
#: (zlib's, the default: the standard library reads it everywhere) or
#: ``"xxh3"`` (XXH3-64 via the ``xxhash`` package, ``binrec[fast]``).
CHECKSUMS = ("crc32", "xxh3")
_DEFAULT_CHECKSUM = "crc32"
#: Without a key, the footer digest goes with the checksum: SHA-256 with
#: CRC32 (as in every older file), XXH3-128 with XXH3.
_UNKEYED_DIGESTS = {"crc32": _UNKEYED_DIGEST, "xxh3": "xxh3-128"}
_BOUNCE = 256 << 10


#: Codecs ``compress=`` takes: zstd (the standard library's
#: ``compression.zstd`` on Python 3.14+, the ``zstandard`` package before,
#: ``binrec[compress]``), after a byte-shuffle of each array's elements.
CODECS = ("zstd",)
_DEFAULT_LEVEL = 1
_ZSTD_LEVELS = range(1, 23)
#: Sections smaller than this are stored raw (and stay mappable).
_COMPRESS_MIN = 64 << 10
_COMPRESS_EXTRA = 'pip install "binrec[compress]"'


def _check_compress(compress: Any) -> tuple[str, int] | None:
    """``compress=`` as ``(codec, level)``, or None (no compression)."""
    if compress is None or compress is False:
        return None
    if isinstance(compress, str):
        codec, level = compress, _DEFAULT_LEVEL
    elif isinstance(compress, tuple) and len(compress) == 2:
        codec, level = compress
    else:
        raise ValueError(f"compress={compress!r}: use None, a codec name ('zstd') or (name, level)")
    if codec not in CODECS:
        raise ValueError(f"compress={compress!r}: unknown codec {codec!r} (binrec compresses with {', '.join(CODECS)})")
    if not isinstance(level, int) or isinstance(level, bool) or level not in _ZSTD_LEVELS:
        raise ValueError(f"compress={compress!r}: a zstd level is an int from 1 to 22")
    _zstd()
    return codec, level


class _Zstd:
    """zstd frames (with their content checksum) through whichever module
    this Python has."""

    def __init__(self, module: Any, stdlib: bool) -> None:
        self._m = module
        self._stdlib = stdlib

    def compress(self, data: Any, level: int) -> bytes:
        if self._stdlib:
            opts = {
                self._m.CompressionParameter.compression_level: level,
                self._m.CompressionParameter.checksum_flag: 1,
            }
            return bytes(self._m.compress(data, options=opts))
        return bytes(self._m.ZstdCompressor(level=level, write_checksum=True).compress(data))

    def content_size(self, data: Any) -> int | None:
        """The decompressed size the frame's header declares (None: unstated)."""
        if self._stdlib:
            size = self._m.get_frame_info(data).decompressed_size
        else:
            size = self._m.frame_content_size(data)
        return None if size is None or size < 0 else int(size)

    def decompress(self, data: Any, raw_length: int) -> bytes:
        if self._stdlib:
            return bytes(self._m.decompress(data))
        return bytes(self._m.ZstdDecompressor().decompress(data, max_output_size=raw_length))

    @property
    def error(self) -> type[Exception]:
        return self._m.ZstdError  # type: ignore[no-any-return]


def _zstd() -> _Zstd:
    """The zstd codec, or UnsupportedAlgorithm naming the extra."""
    try:
        return _Zstd(importlib.import_module("compression.zstd"), True)
    except ImportError:
        pass
    try:
        return _Zstd(importlib.import_module("zstandard"), False)
    except ImportError:
        raise UnsupportedAlgorithm(
            f"zstd compression needs the zstandard package (or Python 3.14's compression.zstd): {_COMPRESS_EXTRA}"
        ) from None


def _shuffle(view: memoryview, itemsize: int) -> Any:
    """Byte i of every element, then byte i+1...: what makes float arrays
    compress (their sign/exponent bytes repeat)."""
    if itemsize <= 1:
        return view
    return np.ascontiguousarray(np.frombuffer(view, dtype=np.uint8).reshape(-1, itemsize).T)


def _unshuffle(data: Any, itemsize: int, out: np.ndarray[Any, Any]) -> None:
    raw = np.frombuffer(data, dtype=np.uint8)
    if itemsize <= 1:
        out[:] = raw
        return
    # one byte plane at a time: 3.5x faster than assigning the transpose
    # (measured on 32 MiB of float32: 2.6 against 0.74 GB/s)
    planes, rows = raw.reshape(itemsize, -1), out.reshape(-1, itemsize)
    for b in range(itemsize):
        rows[:, b] = planes[b]


def _compress_sections(
    views: list[memoryview], itemsizes: list[int], compress: tuple[str, int] | None
) -> tuple[list[Any], list[dict[str, Any]]]:
    """What each section stores, and the table fields saying how: a
    section is kept compressed only when large and smaller for it."""
    if compress is None:
        return list(views), [{} for _ in views]
    zstd = _zstd()
    codec, level = compress

    def one(view: memoryview, itemsize: int) -> tuple[Any, dict[str, Any]]:
        shuffle = itemsize if itemsize > 1 and view.nbytes % itemsize == 0 else 1
        data = zstd.compress(_shuffle(view, shuffle), level) if view.nbytes >= _COMPRESS_MIN else None
        if data is None or len(data) >= view.nbytes:
            return view, {}
        return data, {"codec": codec, "raw_length": view.nbytes, "shuffle": shuffle}

    # zstd and numpy's copies release the GIL: sections compress in parallel
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        done = list(pool.map(one, views, itemsizes))
    return [d for d, _ in done], [f for _, f in done]


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class CheckpointError(Exception):
    """Base class of checkpoint errors.

    Examples
    --------
    >>> from binrec import checkpoint
    >>> issubclass(checkpoint.CheckpointNotFound, checkpoint.CheckpointError)
    True
    >>> issubclass(checkpoint.CheckpointCorrupted, checkpoint.CheckpointError)
    True
    """


class CheckpointNotFound(CheckpointError, LookupError):
    """No checkpoint of that name.  Also a :class:`LookupError`.

    Examples
    --------
    >>> import tempfile
    >>> from binrec import checkpoint
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     try:
    ...         checkpoint.CheckpointStore(folder).load("missing")
    ...     except LookupError as exc:
    ...         print(type(exc).__name__, str(exc).startswith("no checkpoint named 'missing' in "))
    CheckpointNotFound True
    """


class CheckpointCorrupted(CheckpointError, ValueError):
    """The file is truncated, bit-flipped or not a checkpoint.  Also a
    :class:`ValueError`.

    Examples
    --------
    >>> import tempfile
    >>> from binrec import checkpoint
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     store = checkpoint.CheckpointStore(folder)
    ...     _ = store.save("run", {"step": 1})
    ...     data = store.path("run").read_bytes()
    ...     _ = store.path("run").write_bytes(data[:-10])  # truncated
    ...     try:
    ...         store.load("run")
    ...     except checkpoint.CheckpointCorrupted as exc:
    ...         print(str(exc).split(": ", 1)[1])
    inconsistent header: file is ... bytes, header says ... (truncated or extended)
    """


class CorruptSkeleton(CheckpointCorrupted, TruncatedError):
    """The skeleton pickle is malformed: a :class:`CheckpointCorrupted` that
    is also the :class:`~binrec.pickling.TruncatedError` that
    :func:`~binrec.pickling.safe_loads` raises for the same bytes.

    Parameters
    ----------
    message : str
        What went wrong, naming the file.
    offset : int
        Byte offset in the skeleton where unpickling failed.
    index : int
        As for :class:`~binrec.pickling.TruncatedError` (always 0: the
        skeleton is one object).

    Examples
    --------
    >>> from binrec import checkpoint, pickling
    >>> issubclass(checkpoint.CorruptSkeleton, checkpoint.CheckpointCorrupted)
    True
    >>> issubclass(checkpoint.CorruptSkeleton, pickling.TruncatedError)
    True
    """

    def __init__(self, message: str, offset: int = 0, index: int = 0) -> None:
        Exception.__init__(self, message)
        self.offset = offset
        self.index = index


class InvalidCheckpointName(CheckpointError, ValueError):
    """Names are 1-200 characters of letters, digits and ``._+=@-``, not
    starting with a dot, with no ``..`` and no path separators.

    Also a :class:`ValueError`.  Checked before any file is touched, so a
    name can never reach outside the store's folder.

    Examples
    --------
    >>> import tempfile
    >>> from binrec import checkpoint
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     store = checkpoint.CheckpointStore(folder)
    ...     try:
    ...         store.save("../escape", {})
    ...     except checkpoint.InvalidCheckpointName as exc:
    ...         print(exc)
    invalid checkpoint name '../escape': use 1-200 letters, digits and ._+=@- (no leading dot, no '..', no path separators)
    """


@dataclass(frozen=True)
class CheckpointInfo:
    """What ``list()`` knows from a checkpoint's header alone.

    Attributes
    ----------
    name : str
    path : str
    created : float
        Save time, seconds since the Unix epoch.
    size : int
        File size in bytes.
    metadata : dict
        The JSON metadata given to :meth:`CheckpointStore.save`.
    format_version : int
        The file format version (:data:`FORMAT_VERSION`).
    version : int or None
        The data version given to :meth:`CheckpointStore.save`.
    signed : bool
        Whether the checkpoint is signed (the store had a key).
    buffers : int
        Number of out-of-band array sections.
    digest : str
        What made the footer's digests: ``"sha256"`` or ``"xxh3-128"``
        (unsigned), ``"hmac-sha256"`` or ``"blake3"`` (signed, keyed BLAKE3).
    checksum : str
        The per-section checksum: ``"crc32"`` or ``"xxh3"`` (XXH3-64).
    compression : tuple or None
        ``(codec, level)`` the checkpoint was saved with (``compress=``),
        or None.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from binrec import checkpoint
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     info = checkpoint.CheckpointStore(folder).save("run", {"w": np.zeros(4)}, {"loss": 0.25}, version=3)
    ...     print(info.name, info.metadata, info.version, info.signed, info.buffers)
    run {'loss': 0.25} 3 False 1
    """

    name: str
    path: str
    created: float
    size: int
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    version: int | None = None
    signed: bool = False
    buffers: int = 0
    digest: str = _UNKEYED_DIGEST
    checksum: str = _DEFAULT_CHECKSUM
    compression: tuple[str, int] | None = None


def _pad(n: int) -> int:
    return (-n) % ALIGN


def _header_length_problem(hlen: int, size: int) -> str | None:
    """Why a header of ``hlen`` bytes cannot be in a checkpoint file of
    ``size`` bytes, or None.  Readers refuse, and writers never write, a
    header over the cap (64 MiB)."""
    if hlen > _MAX_HEADER:
        return f"header length {hlen} exceeds the limit of {_MAX_HEADER} bytes"
    if _PREFIX.size + hlen > size:
        return f"header length {hlen} does not fit in a file of {size} bytes"
    return None


def _checksum_of(header: dict[str, Any], where: str) -> str:
    """The header's per-section checksum (files without the field: CRC32)."""
    checksum = header.get("checksum", _DEFAULT_CHECKSUM)
    if checksum not in CHECKSUMS:
        raise CheckpointCorrupted(
            f"{where}: unknown section checksum {checksum!r} (this binrec reads {', '.join(CHECKSUMS)})"
        )
    return str(checksum)


def _compression_of(header: dict[str, Any]) -> tuple[str, int] | None:
    c = header.get("compression")
    if isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and isinstance(c[1], int):
        return c[0], c[1]
    return None


def _check_codec_fields(b: dict[str, Any], where: str, bad: Callable[[str], CheckpointCorrupted]) -> None:
    """A compressed section's fields: a known codec, a raw length and a
    shuffle width that divides it."""
    if b["codec"] not in CODECS:
        raise CheckpointCorrupted(
            f"{where}: unknown compression codec {b['codec']!r} (this binrec reads {', '.join(CODECS)})"
        )
    raw, shuffle = b["raw_length"], b["shuffle"]
    if not (isinstance(raw, int) and isinstance(shuffle, int)) or raw < 0 or shuffle < 1 or raw % shuffle:
        raise bad("compressed section's raw_length/shuffle")


def _decompressed(
    zstd: _Zstd, b: dict[str, Any], stored: np.ndarray[Any, Any], path: Path, i: int
) -> np.ndarray[Any, Any]:
    """Section ``i`` as the array bytes it holds (``stored`` itself when it
    was not compressed; its checksum was verified before this is called)."""
    if "codec" not in b:
        return stored
    where = f"{path}: buffer {i} (bytes {b['offset']}..{b['offset'] + b['length']})"
    try:
        declared = zstd.content_size(stored)
        if declared != b["raw_length"]:  # refused before any allocation of that size
            raise CheckpointCorrupted(
                f"{where}: its zstd frame declares {declared} bytes, the header says {b['raw_length']}"
            )
        data = zstd.decompress(stored, b["raw_length"])
    except zstd.error as exc:
        raise CheckpointCorrupted(f"{where} does not decompress: {exc}") from None
    if len(data) != b["raw_length"]:
        raise CheckpointCorrupted(f"{where} decompresses to {len(data)} bytes, the header says {b['raw_length']}")
    out = np.empty(b["raw_length"], dtype=np.uint8)
    _unshuffle(data, b["shuffle"], out)
    return out


def _decompressed_all(table: list[dict[str, Any]], stored: list[Any], path: Path) -> list[Any]:
    """Every section as array bytes, the compressed ones decompressed in
    parallel (each already checked)."""
    if not any("codec" in b for b in table):
        return stored
    zstd = _zstd()
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        return list(pool.map(lambda i: _decompressed(zstd, table[i], stored[i], path, i), range(len(table))))


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidCheckpointName(
            f"invalid checkpoint name {name!r}: use 1-200 letters, digits and ._+=@- (no leading dot, no '..', no path separators)"
        )
    return name


@dataclass
class _Checked:
    """An open checkpoint whose header, footer and head digest were checked
    (what load and verify go on from)."""

    fh: io.BufferedReader
    path: Path
    size: int  # of the file, in bytes
    header: dict[str, Any]
    key: bytes | None  # the key it is signed with (None: unsigned store)
    digest: str  # the header's digest algorithm
    checksum: str  # the header's per-section checksum
    hasher: _Hasher  # has hashed the head; the rest of the file goes on from here
    head_end: int  # offset where the head (prefix, header, skeleton) ends
    skeleton: memoryview
    file_digest: bytes  # the footer's whole-file digest


def _xxhash() -> Any:
    """The xxhash module, or UnsupportedAlgorithm naming the extra (looked
    up on each use, so a package blocked after import is reported)."""
    try:
        return importlib.import_module("xxhash")
    except ImportError:
        raise UnsupportedAlgorithm("checksum 'xxh3' needs the xxhash package: pip install \"binrec[fast]\"") from None


def _check_checksum(checksum: Any) -> str:
    if checksum not in CHECKSUMS:
        known = ", ".join(repr(c) for c in CHECKSUMS)
        raise ValueError(f"checksum={checksum!r} is not a checkpoint checksum: use one of {known}")
    if checksum == "xxh3":
        _xxhash()
    return str(checksum)


def _checksum_each(checksum: str, views: list[memoryview]) -> list[int]:
    """Each section's checksum (CRC32s of large sections in parallel)."""
    if checksum == "crc32":
        return crc32_each(views)
    each = _xxhash().xxh3_64_intdigest
    return [int(each(v)) for v in views]


class _Running:
    """One section's checksum, fed its pieces in order."""

    def __init__(self, checksum: str) -> None:
        self._xxh = _xxhash().xxh3_64() if checksum == "xxh3" else None
        self._crc = 0

    def update(self, data: Any) -> None:
        if self._xxh is None:
            self._crc = zlib.crc32(data, self._crc)
        else:
            self._xxh.update(data)

    def value(self) -> int:
        return self._crc & 0xFFFFFFFF if self._xxh is None else int(self._xxh.intdigest())


class _Hasher:
    """The footer digest over a byte stream: SHA-256 or XXH3-128 (zero-padded
    to 32 bytes), or with a key HMAC-SHA256 or keyed BLAKE3."""

    _h: signing.Mac

    def __init__(self, key: bytes | None, alg: str = signing.DEFAULT_ALG, checksum: str = _DEFAULT_CHECKSUM) -> None:
        if key:
            self._h = signing.new_mac(alg, signing.subkey(key, _CONTEXT, alg))
        elif checksum == "xxh3":
            self._h = _xxhash().xxh3_128()
        else:
            self._h = hashlib.sha256()

    def update(self, data: Any) -> None:
        self._h.update(data)

    def copy(self) -> _Hasher:
        h = _Hasher.__new__(_Hasher)
        h._h = self._h.copy()
        return h

    def digest(self) -> bytes:
        return self._h.digest().ljust(32, b"\x00")


class _BackgroundHasher:
    """Hash views in a worker thread while the caller writes them (hashlib
    releases the GIL on large updates): the digest costs no extra wall time
    when writing is the slower of the two."""

    def __init__(self, hasher: _Hasher) -> None:
        self._hasher = hasher
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._last: Future[None] | None = None

    def update(self, data: Any) -> None:
        self._last = self._pool.submit(self._hasher.update, data)

    def snapshot(self) -> bytes:
        if self._last is not None:
            self._last.result()
        return self._hasher.copy().digest()

    def digest(self) -> bytes:
        if self._last is not None:
            self._last.result()
        self._pool.shutdown()
        return self._hasher.digest()


def _temp_name(final_name: str) -> str:
    """A save's temporary file: tagged with the writer's pid (and thread),
    which is how :meth:`CheckpointStore._clean_temp_files` tells a crashed
    saver's leftovers from a live one's."""
    return f"{TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{final_name}"


def _pid_alive(pid: int, path: Path) -> bool:
    """Might process ``pid`` still be writing ``path``?"""
    if os.name != "posix":
        # os.kill(pid, 0) would send CTRL_C_EVENT on Windows: judge by age
        try:
            return time.time() - path.stat().st_mtime < 3600
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


class CheckpointStore:
    """A folder of checkpoints, one file each.

    Parameters
    ----------
    directory : path
        Created if missing.
    key : bytes or list of bytes, optional
        Sign checkpoints (the first key signs; all verify).
    alg : {'hmac-sha256', 'blake3'}
        The algorithm saves sign with (needs ``key``): HMAC-SHA256 (the
        default, standard library) or keyed BLAKE3 (the ``blake3``
        package, ``pip install "binrec[fast]"``; the signing key must be
        exactly 32 bytes).  Loads read the algorithm from each file.
    checksum : {'crc32', 'xxh3'}
        The per-section checksum saves use (``save(..., checksum=)``
        overrides it per checkpoint): zlib's CRC32, with a SHA-256 footer
        digest when unsigned (the default; any Python reads it), or XXH3-64
        with an XXH3-128 footer digest, several times faster (the
        ``xxhash`` package, ``pip install "binrec[fast]"``).  Loads read
        the checksum from each file.
    compress : str or (str, int), optional
        Compress the arrays of every save (``save(..., compress=)``
        overrides it per checkpoint): ``"zstd"`` (level 1) or
        ``("zstd", level)`` with a level from 1 to 22.  Each array of at
        least 64 KiB is byte-shuffled by its element size and stored as one
        zstd frame, if that is smaller; other arrays are stored raw.  Needs
        ``compression.zstd`` (Python 3.14+) or the ``zstandard`` package
        (``pip install "binrec[compress]"``).  Loads read the codec from
        each file; compressed arrays cannot be memory-mapped, so
        ``load(mmap=True)`` maps the raw ones and decompresses the rest.
    keep_last : int, optional
        After each successful save, delete the oldest checkpoints beyond this many.

    Attributes
    ----------
    directory : pathlib.Path
    keep_last : int or None

    Raises
    ------
    ValueError
        ``keep_last`` is not a positive int, a key is shorter than 32
        bytes, an unknown ``alg``, ``alg`` without ``key``, or a signing
        key of the wrong length for ``alg``, an unknown ``checksum``, or a
        ``compress`` that names no known codec or level.
    UnsupportedAlgorithm
        ``alg="blake3"`` without the ``blake3`` package,
        ``checksum="xxh3"`` without the ``xxhash`` package, or
        ``compress="zstd"`` without a zstd module.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from binrec import checkpoint
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     store = checkpoint.CheckpointStore(folder, keep_last=2)
    ...     for step in (100, 200, 300):
    ...         _ = store.save(f"step-{step}", {"step": step, "w": np.full(3, step / 100)}, metadata={"loss": 1 / step})
    ...     print([info.name for info in store.list()], "step-100" in store)
    ...     print(store.load("step-300")["w"])
    ['step-200', 'step-300'] False
    [3. 3. 3.]
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        key: bytes | list[bytes] | None = None,
        alg: str = signing.DEFAULT_ALG,
        checksum: str = _DEFAULT_CHECKSUM,
        compress: str | tuple[str, int] | None = None,
        keep_last: int | None = None,
    ) -> None:
        if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 1):
            raise ValueError(f"keep_last must be a positive int or None, got {keep_last!r}")
        if key is None and alg != signing.DEFAULT_ALG:
            raise ValueError(f"alg={alg!r} chooses the signature algorithm: give key= too")
        self._alg = signing.DEFAULT_ALG if key is None else signing.check_alg(alg)
        if key is None:
            self._keys: list[bytes] | None = None
        else:
            self._keys = signing.check_keys(key, self._alg)
        self._checksum = _check_checksum(checksum)
        self._compress = _check_compress(compress)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keep_last = keep_last
        self._lock = threading.Lock()

    # -- paths ------------------------------------------------------------------

    def _not_found(self, name: str) -> CheckpointNotFound:
        return CheckpointNotFound(f"no checkpoint named {name!r} in {self.directory}")

    def path(self, name: str) -> Path:
        """The file that holds (or would hold) checkpoint ``name``.

        Parameters
        ----------
        name : str
            A checkpoint name.

        Returns
        -------
        pathlib.Path
            ``directory / (name + ".ckpt")``.

        Raises
        ------
        InvalidCheckpointName
            ``name`` is not a valid checkpoint name.

        Examples
        --------
        >>> import tempfile
        >>> from binrec import checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = checkpoint.CheckpointStore(folder)
        ...     print(store.path("epoch-3").name, store.path("epoch-3").parent == store.directory)
        epoch-3.ckpt True
        """
        return self.directory / (_check_name(name) + SUFFIX)

    def __contains__(self, name: str) -> bool:
        return self.path(name).exists()

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.directory)!r}, keep_last={self.keep_last})"

    # -- save ---------------------------------------------------------------------

    def save(
        self,
        name: str,
        state: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        checksum: str | None = None,
        compress: str | tuple[str, int] | bool | None = None,
    ) -> CheckpointInfo:
        """Write ``state`` as checkpoint ``name`` (replacing one of that name).

        numpy arrays inside ``state`` go out of band (pickle protocol 5) as raw
        64-byte-aligned sections.  The write is atomic and durable: a
        temporary file in the same folder, fsync, rename, fsync of the folder.
        A crash leaves the old checkpoint or the new one.

        Parameters
        ----------
        name : str
            1-200 letters, digits and ``._+=@-`` (see :class:`InvalidCheckpointName`).
        state : object
            Anything picklable; arrays are stored without copying.
        metadata : mapping, optional
            JSON-serialisable data stored in the header, readable by
            :meth:`info` and :meth:`list` without loading the state.
        version : int, optional
            The data version used by ``load(..., migrations=...)``.
        checksum : {'crc32', 'xxh3'}, optional
            The per-section checksum for this checkpoint (default: the
            store's, see :class:`CheckpointStore`).
        compress : str, (str, int) or False, optional
            Compression for this checkpoint, as for :class:`CheckpointStore`
            (default: the store's; ``False``: none).

        Returns
        -------
        CheckpointInfo
            What :meth:`info` now returns for ``name``.

        Raises
        ------
        TypeError
            ``metadata`` is not JSON-serialisable.
        ValueError
            ``version`` is not a non-negative int, the header would exceed
            64 MiB, an unknown ``checksum``, or a bad ``compress``.
        UnsupportedAlgorithm
            ``checksum="xxh3"`` without the ``xxhash`` package, or
            ``compress="zstd"`` without a zstd module.
        InvalidCheckpointName
            A bad ``name``.

        Examples
        --------
        >>> import json, struct, tempfile
        >>> import numpy as np
        >>> from binrec import checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = checkpoint.CheckpointStore(folder)
        ...     info = store.save("epoch-1", {"w": np.arange(4.0)}, metadata={"loss": 0.5}, version=1)
        ...     data = store.path("epoch-1").read_bytes()
        ...     magic, fmt, flags, header_length = struct.unpack_from("<8sIIQ", data)
        ...     header = json.loads(data[24 : 24 + header_length])
        ...     print(magic, info.size == len(data), header["metadata"], header["buffers"][0]["shape"])
        b'BINRECCK' True {'loss': 0.5} [4]
        """
        path = self.path(name)
        meta = dict(metadata or {})
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"checkpoint metadata must be JSON-serialisable: {exc}") from None
        if version is not None:
            check_version(version)
        checksum = self._checksum if checksum is None else _check_checksum(checksum)
        if compress is True:
            raise ValueError("compress=True: name the codec, compress='zstd' or ('zstd', level)")
        codec = self._compress if compress is None else _check_compress(compress)
        buffers: list[pickle.PickleBuffer] = []
        skeleton = pickle.dumps(state, protocol=5, buffer_callback=buffers.append)
        raw_views = [b.raw() for b in buffers]
        # checksums cover the stored (compressed) bytes: a flipped byte is
        # found before anything is decompressed
        views, codecs = _compress_sections(raw_views, [memoryview(b).itemsize for b in buffers], codec)
        crcs = _checksum_each(checksum, [memoryview(skeleton)] + [memoryview(v) for v in views])
        created = time.time()
        key = self._keys[0] if self._keys else None
        header, offsets, footer_at = self._layout(
            name, meta, version, created, skeleton, crcs, buffers, views, key, self._alg, checksum, codecs, codec
        )
        problem = _header_length_problem(len(header), footer_at + _FOOTER.size)
        if problem:  # no reader would open it: refuse before writing (or retention deletes anything)
            raise ValueError(f"cannot save checkpoint {name!r}: {problem} (metadata too large, or too many arrays)")
        self._clean_temp_files()
        prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, FLAG_KEYED if key else 0, len(header))
        with atomic_writer(path, temp_name=_temp_name, follow=False) as fh:
            hasher = _BackgroundHasher(_Hasher(key, self._alg, checksum))
            pos = 0

            def write(data: Any) -> None:
                nonlocal pos
                hasher.update(data)
                fh.write(data)
                pos += memoryview(data).nbytes

            write(prefix)
            write(header)
            write(bytes(_pad(pos)))
            write(skeleton)
            head_digest = hasher.snapshot()
            for view, off in zip(views, offsets):
                write(bytes(off - pos))
                write(view)
            write(bytes(footer_at - pos))
            file_digest = hasher.digest()
            fh.write(
                _FOOTER.pack(FOOTER_MAGIC, head_digest, file_digest, crc32(FOOTER_MAGIC + head_digest + file_digest))
            )
        info = self._info_from_header(json.loads(header), path, path.stat().st_size, bool(key))
        if self.keep_last is not None:
            self._apply_retention(keep=name)
        return info

    def _layout(
        self,
        name: str,
        meta: dict[str, Any],
        version: int | None,
        created: float,
        skeleton: bytes,
        crcs: list[int],
        buffers: list[pickle.PickleBuffer],
        views: list[Any],
        key: bytes | None,
        alg: str,
        checksum: str,
        codecs: list[dict[str, Any]],
        compress: tuple[str, int] | None,
    ) -> tuple[bytes, list[int], int]:
        """Header JSON bytes, buffer offsets and footer offset.  Offsets
        depend on the header's length, so settle it by iterating."""
        header_len = 0
        for _ in range(8):
            pos = _PREFIX.size + header_len
            pos += _pad(pos)
            skel_off = pos
            pos += len(skeleton)
            table = []
            offsets = []
            for pb, view, crc, how in zip(buffers, views, crcs[1:], codecs):
                pos += _pad(pos)
                mv = memoryview(pb)
                offsets.append(pos)
                stored = memoryview(view).nbytes
                table.append(
                    {
                        "offset": pos,
                        "length": stored,
                        checksum: crc,
                        "format": mv.format,
                        "shape": list(mv.shape) if mv.shape is not None else None,
                        "readonly": mv.readonly,
                        **how,
                    }
                )
                pos += stored
            pos += _pad(pos)
            footer_at = pos
            header_obj = {
                "format_version": FORMAT_VERSION,
                "name": name,
                "created": created,
                "metadata": meta,
                "version": version,
                "digest": alg if key else _UNKEYED_DIGESTS[checksum],
                "key_id": signing.key_id(key).hex() if key else None,
                "skeleton": {"offset": skel_off, "length": len(skeleton), checksum: crcs[0]},
                "buffers": table,
                "footer_offset": footer_at,
                "file_size": footer_at + _FOOTER.size,
            }
            if checksum != _DEFAULT_CHECKSUM:  # CRC32 files keep the layout (and bytes) of older ones
                header_obj["checksum"] = checksum
            if compress is not None:  # so do files saved without compression
                header_obj["compression"] = list(compress)
            header = json.dumps(header_obj, separators=(",", ":"), sort_keys=True).encode("utf-8")
            if len(header) == header_len:
                return header, offsets, footer_at
            header_len = len(header)
        raise AssertionError("checkpoint header length did not settle")  # pragma: no cover

    def _clean_temp_files(self) -> None:
        """Remove temporary files left by crashed savers (dead PIDs only:
        another live process may be saving right now)."""
        for p in self.directory.glob(TEMP_PREFIX + "*" + SUFFIX):
            m = re.match(re.escape(TEMP_PREFIX) + r"(\d+)-", p.name)
            if not m:
                continue
            pid = int(m.group(1))
            if pid == os.getpid() or _pid_alive(pid, p):
                continue
            with contextlib.suppress(FileNotFoundError, PermissionError):
                p.unlink()

    def _apply_retention(self, keep: str) -> None:
        infos = sorted(self.list(), key=lambda i: (i.created, i.name))
        excess = len(infos) - (self.keep_last or len(infos))
        for info in infos:
            if excess <= 0:
                break
            if info.name == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(info.path)
            excess -= 1
        fsync_dir(self.directory)

    # -- reading headers -------------------------------------------------------------

    def _read_header(self, fh: Any, size: int, where: str) -> tuple[dict[str, Any], int, int]:
        prefix = fh.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            raise CheckpointCorrupted(f"{where}: file of {size} bytes is too short to be a checkpoint")
        magic, fmt_version, flags, hlen = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise CheckpointCorrupted(f"{where}: not a binrec checkpoint (bad magic {magic!r})")
        if fmt_version != FORMAT_VERSION:
            raise CheckpointCorrupted(
                f"{where}: unsupported checkpoint format version {fmt_version} (this binrec reads {FORMAT_VERSION})"
            )
        problem = _header_length_problem(hlen, size)
        if problem:  # before reading: a corrupt length must not make us allocate it
            raise CheckpointCorrupted(f"{where}: {problem}")
        raw = fh.read(hlen)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CheckpointCorrupted(f"{where}: unreadable header: {exc}") from None
        self._check_header(header, size, where, hlen)
        return header, flags, hlen

    @staticmethod
    def _check_header(h: Any, size: int, where: str, hlen: int) -> None:
        def bad(why: str) -> CheckpointCorrupted:
            return CheckpointCorrupted(f"{where}: inconsistent header: {why}")

        try:
            if not isinstance(h, dict):
                raise bad("not an object")
            if h["file_size"] != size:
                raise bad(f"file is {size} bytes, header says {h['file_size']} (truncated or extended)")
            sk = h["skeleton"]
            field = _checksum_of(h, where)
            for section in [sk, *h["buffers"]]:
                if not isinstance(section[field], int):
                    raise bad(f"{field} checksum is not an integer")
            for b in h["buffers"]:
                if "codec" in b:
                    _check_codec_fields(b, where, bad)
            sections = [(sk["offset"], sk["length"])] + [(b["offset"], b["length"]) for b in h["buffers"]]
            end = _PREFIX.size + hlen  # sections follow the header, in order, without overlapping
            for off, length in sections:
                if not (isinstance(off, int) and isinstance(length, int)) or off < end or length < 0:
                    raise bad(f"section at {off} overlaps or is out of order")
                end = off + length
            if h["footer_offset"] < end or h["footer_offset"] + _FOOTER.size != size:
                raise bad("footer offset")
            if not isinstance(h.get("metadata", {}), dict) or not isinstance(h["created"], (int, float)):
                raise bad("metadata")
        except (KeyError, TypeError) as exc:
            raise bad(f"missing or malformed field {exc}") from None

    def _info_from_header(self, h: dict[str, Any], path: Path, size: int, signed: bool) -> CheckpointInfo:
        return CheckpointInfo(
            name=h["name"],
            path=str(path),
            created=float(h["created"]),
            size=size,
            metadata=h.get("metadata", {}),
            format_version=h["format_version"],
            version=h.get("version"),
            signed=signed,
            buffers=len(h["buffers"]),
            digest=self._digest_of(h, signed, str(path)),
            checksum=_checksum_of(h, str(path)),
            compression=_compression_of(h),
        )

    def info(self, name: str) -> CheckpointInfo:
        """Header-only information about one checkpoint.

        Parameters
        ----------
        name : str
            A checkpoint name.

        Returns
        -------
        CheckpointInfo

        Raises
        ------
        CheckpointNotFound
            No checkpoint of that name.
        CheckpointCorrupted
            The header cannot be read.

        Examples
        --------
        >>> import tempfile
        >>> from binrec import checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = checkpoint.CheckpointStore(folder)
        ...     _ = store.save("run", {"step": 7}, metadata={"loss": 0.125})
        ...     info = store.info("run")
        ...     print(info.name, info.metadata, info.size == store.path("run").stat().st_size)
        run {'loss': 0.125} True
        """
        path = self.path(name)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                header, flags, _ = self._read_header(fh, size, str(path))
        except FileNotFoundError:
            raise self._not_found(name) from None
        return self._info_from_header(header, path, size, bool(flags & FLAG_KEYED))

    def list(self) -> list[CheckpointInfo]:
        """Every checkpoint, oldest first, from headers only.

        Temporary files of interrupted saves are ignored; an unreadable file
        is skipped with a :class:`RuntimeWarning`.

        Returns
        -------
        list of CheckpointInfo
            Sorted by creation time, then name.

        Examples
        --------
        >>> import tempfile
        >>> from binrec import checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = checkpoint.CheckpointStore(folder)
        ...     for name in ("b", "a"):
        ...         _ = store.save(name, {})
        ...     print([info.name for info in store.list()])
        ['b', 'a']
        """
        infos = []
        for p in self.directory.glob("*" + SUFFIX):
            if p.name.startswith("."):
                continue
            try:
                infos.append(self.info(p.name[: -len(SUFFIX)]))
            except (CheckpointError, OSError) as exc:
                warnings.warn(f"skipping unreadable checkpoint {p.name}: {exc}", RuntimeWarning, stacklevel=2)
        return sorted(infos, key=lambda i: (i.created, i.name))

    def latest(self) -> CheckpointInfo | None:
        """The most recently saved checkpoint, or None.

        Returns
        -------
        CheckpointInfo or None

        Examples
        --------
        >>> import tempfile
        >>> from binrec import checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = checkpoint.CheckpointStore(folder)
        ...     print(store.latest())
        ...     _ = store.save("first", {})
        ...     _ = store.save("second", {})
        ...     print(store.latest().name)
        None
        second
        """
        infos = self.list()
        return infos[-1] if infos else None

    def delete(self, name: str) -> None:
        """Delete checkpoint ``name`` (and fsync the folder).

        Parameters
        ----------
        name : str
            A checkpoint name.

        Raises
        ------
        CheckpointNotFound
            No checkpoint of that name.

        Examples
        --------
        >>> import tempfile
        >>> from binrec import checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = checkpoint.CheckpointStore(folder)
        ...     _ = store.save("old", {})
        ...     store.delete("old")
        ...     print("old" in store, store.path("old").exists())
        False False
        """
        path = self.path(name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            raise self._not_found(name) from None
        fsync_dir(self.directory)

    # -- load and verify ----------------------------------------------------------------

    @staticmethod
    def _digest_of(header: dict[str, Any], signed: bool, where: str) -> str:
        """The header's digest algorithm, checked against the signed flag
        (and, unsigned, against the checksum)."""
        digest = header.get("digest")
        known = _KEYED_DIGESTS if signed else (_UNKEYED_DIGESTS[_checksum_of(header, where)],)
        if digest not in known:
            kind = "signed" if signed else "unsigned"
            raise CheckpointCorrupted(
                f"{where}: unknown digest algorithm {digest!r} for a {kind} checkpoint"
                f" (this binrec reads {', '.join(known)})"
            )
        return str(digest)

    def _key_for(self, header: dict[str, Any], flags: int, where: str) -> tuple[bytes | None, str]:
        signed = bool(flags & FLAG_KEYED)
        digest = self._digest_of(header, signed, where)
        if signed:
            signing.check_alg(digest)  # its package missing: UnsupportedAlgorithm, before any key question
        _check_checksum(_checksum_of(header, where))  # xxh3 without xxhash: UnsupportedAlgorithm
        if any("codec" in b for b in header["buffers"]):
            _zstd()  # compressed sections without a zstd module: UnsupportedAlgorithm naming the extra
        if self._keys is None:
            if signed:
                raise BadSignature(f"{where}: checkpoint is signed; open the store with key=")
            return None, digest
        if not signed:
            raise BadSignature(f"{where}: checkpoint is not signed, but the store requires a key")
        wanted = header.get("key_id")
        for k in self._keys:
            if signing.key_id(k).hex() == wanted:
                return signing.key_for_alg(k, digest, where), digest
        raise BadSignature(f"{where}: signed with key id {wanted}, which is not among the store's keys")

    def _open_checked(self, name: str) -> _Checked:
        path = self.path(name)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise self._not_found(name) from None
        try:
            size = os.fstat(fh.fileno()).st_size
            header, flags, hlen = self._read_header(fh, size, str(path))
            key, digest = self._key_for(header, flags, str(path))
            checksum = _checksum_of(header, str(path))
            sk = header["skeleton"]
            fh.seek(0)
            head = fh.read(sk["offset"] + sk["length"])
            fh.seek(header["footer_offset"])
            magic, head_digest, file_digest, footer_crc = _FOOTER.unpack(fh.read(_FOOTER.size))
            if magic != FOOTER_MAGIC or crc32(magic + head_digest + file_digest) != footer_crc:
                raise CheckpointCorrupted(f"{path}: damaged footer")
            hasher = _Hasher(key, digest, checksum)
            hasher.update(head)
            if not hmac.compare_digest(hasher.copy().digest(), head_digest):
                if key:
                    raise BadSignature(f"{path}: header or skeleton signature mismatch (tampered, or a different key)")
                raise CheckpointCorrupted(f"{path}: header/skeleton digest mismatch")
            skeleton = memoryview(head)[sk["offset"] :]
            if _checksum_each(checksum, [skeleton])[0] != sk[checksum]:
                raise CheckpointCorrupted(f"{path}: skeleton checksum mismatch")
            return _Checked(fh, path, size, header, key, digest, checksum, hasher, len(head), skeleton, file_digest)
        except BaseException:
            fh.close()
            raise

    def load(
        self,
        name: str,
        *,
        mmap: bool = False,
        allow: AllowSpec = None,
        migrations: Mapping[int, Callable[[Any], Any]] | None = None,
        current: int | None = None,
    ) -> Any:
        """Load checkpoint ``name``.

        Lengths, the header/skeleton digest and every section's checksum are
        checked before anything is unpickled (with a key, the whole-file
        HMAC too).  Arrays are read with ``readinto`` into fresh arrays, or
        with ``mmap=True`` returned as read-only views of a memory map (no
        copy; header and footer are checked, :meth:`verify` does the full
        pass).  Compressed arrays are checked (their stored bytes), then
        decompressed into fresh writable arrays, with or without ``mmap``.  The skeleton is unpickled with the restricted loader:
        numpy, plain data and ``datetime`` by default; ``allow=`` extends.

        Parameters
        ----------
        name : str
            A checkpoint name.
        mmap : bool
            Return arrays as read-only views of a memory map.
        allow : optional
            Extra globals for the restricted unpickler, as for
            :func:`binrec.pickling.safe_loads`.
        migrations : mapping of int to callable, optional
            ``{version: function}``: each function upgrades state saved with
            ``version=`` by one version.
        current : int, optional
            The version to migrate to (default: one past the highest
            migration).

        Returns
        -------
        object
            The state, migrated if asked.

        Raises
        ------
        CheckpointNotFound
            No checkpoint of that name.
        CheckpointCorrupted
            A length, digest or checksum does not match (:class:`CorruptSkeleton`
            for a malformed skeleton pickle).
        BadSignature
            A signed checkpoint that does not verify, or a signed checkpoint
            opened without a key (or the reverse).
        UnsupportedAlgorithm
            The file needs a package that is not installed (``blake3``,
            ``xxhash``, or a zstd module for compressed arrays), naming the
            extra to install.
        binrec.pickling.PickleSecurityError
            The skeleton names a global outside the allowlist.
        CheckpointError
            ``migrations`` given for a checkpoint saved without ``version=``.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from binrec import checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = checkpoint.CheckpointStore(folder)
        ...     _ = store.save("run", {"w": np.arange(3.0), "lr": 0.1}, version=1)
        ...     state = store.load("run")
        ...     print(state["w"], state["lr"])
        ...     view = store.load("run", mmap=True)["w"]
        ...     print(view, view.flags.writeable)
        ...     del view
        ...     print(store.load("run", migrations={1: lambda s: {**s, "momentum": 0.9}})["momentum"])
        [0. 1. 2.] 0.1
        [0. 1. 2.] False
        0.9
        """
        checked = self._open_checked(name)
        fh, path, header, key = checked.fh, checked.path, checked.header, checked.key
        checksum = checked.checksum
        try:
            buffers: list[Any] = []
            table = header["buffers"]
            if mmap:
                if table:
                    mm = _mmap.mmap(fh.fileno(), 0, access=_mmap.ACCESS_READ)
                    for i, b in enumerate(table):
                        section = np.frombuffer(mm, dtype=np.uint8, count=b["length"], offset=b["offset"])
                        if "codec" in b:  # cannot be mapped: checked, then decompressed into memory
                            if _checksum_each(checksum, [section.data])[0] != b[checksum]:
                                raise CheckpointCorrupted(
                                    f"{path}: checksum mismatch in buffer {i}"
                                    f" (bytes {b['offset']}..{b['offset'] + b['length']})"
                                )
                        buffers.append(section)
                if key:  # authenticity of array data needs the full pass
                    self._full_digest(checked)
                buffers = _decompressed_all(table, buffers, path)
            else:
                arrays = [np.empty(b["length"], dtype=np.uint8) for b in table]
                # Reads go through a small bounce buffer (copies out of the
                # page cache into a cache-resident buffer run several times
                # faster than into fresh memory), and a second thread
                # checksums each finished 8 MiB piece while the next is read
                # (one worker: each section's pieces are summed in order).
                bounce = bytearray(_BOUNCE)
                bview = memoryview(bounce)
                running = [_Running(checksum) for _ in table]
                with ThreadPoolExecutor(max_workers=1) as pool:
                    pending = []
                    for b, arr, run in zip(table, arrays, running):
                        fh.seek(b["offset"])
                        view = arr.data  # memoryview(arr); numpy types ndarray as a buffer only for Python >= 3.12
                        for start in range(0, max(len(view), 1), _CHUNK):
                            piece = view[start : start + _CHUNK]
                            got = 0
                            while got < len(piece):
                                n = fh.readinto(bview[: min(_BOUNCE, len(piece) - got)])
                                if not n:
                                    raise CheckpointCorrupted(
                                        f"{path}: truncated buffer at byte {b['offset'] + start + got}"
                                    )
                                piece[got : got + n] = bview[:n]
                                got += n
                            pending.append(pool.submit(run.update, piece))
                    for f in pending:
                        f.result()
                for i, (b, run) in enumerate(zip(table, running)):
                    if run.value() != b[checksum]:
                        raise CheckpointCorrupted(
                            f"{path}: checksum mismatch in buffer {i} (bytes {b['offset']}..{b['offset'] + b['length']})"
                        )
                if key:
                    self._full_digest(checked)
                buffers = _decompressed_all(table, arrays, path)
        finally:
            fh.close()
        try:
            state = restricted_loads(checked.skeleton, allow, buffers)
        except PickleSecurityError:
            raise
        except TruncatedError as exc:  # what every restricted loader raises for malformed bytes
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            raise CorruptSkeleton(
                f"{path}: skeleton does not unpickle: {type(cause).__name__}: {cause}", exc.offset, exc.index
            ) from exc
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
            # allow=ALL: plain pickle's own errors
            raise CorruptSkeleton(f"{path}: skeleton does not unpickle: {type(exc).__name__}: {exc}") from exc
        if migrations:
            version = header.get("version")
            if version is None:
                raise CheckpointError(f"{path}: checkpoint was saved without version=, cannot migrate")
            target = current if current is not None else max(migrations) + 1
            state = migrate(state, version, target, migrations, where=str(path))
        return state

    def _full_digest(self, checked: _Checked) -> None:
        """Hash the rest of the file (after the skeleton) and compare."""
        fh, hasher, path = checked.fh, checked.hasher, checked.path
        fh.seek(checked.head_end)
        left = checked.header["footer_offset"] - checked.head_end
        buf = bytearray(min(_CHUNK, max(left, 1)))
        view = memoryview(buf)
        while left:
            n = fh.readinto(view[: min(len(view), left)])
            if not n:
                raise CheckpointCorrupted(f"{path}: truncated")
            hasher.update(view[:n])
            left -= n
        if not hmac.compare_digest(hasher.digest(), checked.file_digest):
            if checked.key:
                raise BadSignature(f"{path}: signature mismatch (tampered, or a different key)")
            shown = {"sha256": "SHA-256", "xxh3-128": "XXH3-128"}.get(checked.digest, checked.digest)
            raise CheckpointCorrupted(f"{path}: whole-file {shown} mismatch")

    def verify(self, name: str) -> CheckpointInfo:
        """The full pass: header, every section's checksum and the whole-file
        digest (SHA-256 or XXH3-128; the MAC with a key).  Returns the info, or raises
        :class:`CheckpointCorrupted` / :class:`BadSignature`.

        Parameters
        ----------
        name : str
            A checkpoint name.

        Returns
        -------
        CheckpointInfo

        Raises
        ------
        CheckpointNotFound
            No checkpoint of that name.
        CheckpointCorrupted
            Any byte of the file changed.
        BadSignature
            With a key: the HMAC does not verify.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from binrec import checkpoint
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     store = checkpoint.CheckpointStore(folder)
        ...     _ = store.save("run", {"w": np.zeros(8)})
        ...     print(store.verify("run").name)
        ...     data = bytearray(store.path("run").read_bytes())
        ...     data[-100] ^= 1  # a bit of the array (its 64 bytes end where the 76-byte footer starts)
        ...     _ = store.path("run").write_bytes(data)
        ...     try:
        ...         store.verify("run")
        ...     except checkpoint.CheckpointCorrupted as exc:
        ...         print(str(exc).split(": ", 1)[1])
        run
        checksum mismatch in buffer 0
        """
        checked = self._open_checked(name)
        fh, path = checked.fh, checked.path
        try:
            for i, b in enumerate(checked.header["buffers"]):
                fh.seek(b["offset"])
                run = _Running(checked.checksum)
                left = b["length"]
                while left:
                    chunk = fh.read(min(_CHUNK, left))
                    if not chunk:
                        raise CheckpointCorrupted(f"{path}: truncated buffer {i}")
                    run.update(chunk)
                    left -= len(chunk)
                if run.value() != b[checked.checksum]:
                    raise CheckpointCorrupted(f"{path}: checksum mismatch in buffer {i}")
            self._full_digest(checked)
        finally:
            fh.close()
        return self._info_from_header(checked.header, path, checked.size, bool(checked.key))
