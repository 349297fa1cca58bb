"""Framed record streams: length-prefixed, optionally tagged messages.

Most binary logs are not one fixed-size record repeated but a run of
*frames* (protocol frames, not DataFrames): a small fixed prefix that gives
the frame's length and often a type tag, then a body whose layout the tag
selects, then sometimes a fixed suffix (a checksum).  pcap packets,
NASDAQ TotalView-ITCH messages and TFRecord records are all framed.

:class:`Framing` describes such a stream with ordinary :class:`~binrec.Struct`
formats: :meth:`Framing.scan` walks the prefixes once and returns a
:class:`FrameIndex` (where each body starts and how long it is), and
:meth:`Framing.unpack` decodes each type's bodies in bulk into structured
arrays, each row carrying ``_frame``, its position in the stream.

The scan is the only loop over frames; it checks every length against the
buffer and ``max_length`` *before* it records the frame, so a corrupt length
never allocates anything.  Errors are :class:`binrec.Error` and name the
frame number and its byte offset.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _backend
from ._coerce import byte_view
from ._errors import Error
from ._kernels import FrameScan, FrameSpec
from ._layout import Field
from .files import file_offset, is_path, is_stream, source_name
from .records import Struct, resolve_offset

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["Framing", "FrameIndex"]

_INT_CODES = "bBhHiIlLqQnN"
_BYTE_ORDERS = "@=<>!"
_EXTRA = ("error", "ignore")
_TRAILING = ("error", "ignore", "return")
#: bytes read from a stream at a time (at least one chunk's worth of frames is never needed)
_READ_BYTES = 1 << 20
_UNKNOWN = ("error", "skip")
#: frames the scan's arrays have room for at first (they grow by estimates)
_FIRST_CHUNK = 1 << 12
#: largest |adjust|: the compiled scan adds it to a 64-bit length without overflow
_MAX_ADJUST = 1 << 32
#: largest max_length (no buffer comes near it; the compiled scan relies on it)
_MAX_LENGTH = 1 << 61
#: the keys of a framing's JSON document (Framing.to_json)
_JSON_KEYS = frozenset(
    ("prefix", "names", "length", "counts_from", "adjust", "tag", "formats", "suffix", "max_length", "extra")
)
#: bodies at or past this many bytes make to_arrow's body column large_binary
#: (Arrow's binary type has 32-bit offsets)
_LARGE_BINARY = 2**31
#: bytes of bodies to_arrow gathers at a time (its byte index is 8x this)
_VARLEN_GROUP = 1 << 20
#: name of the stream-position field appended to every decoded body
FRAME_FIELD = "_frame"


def _as_struct(spec: Any, what: str) -> Struct:
    if isinstance(spec, Struct):
        return spec
    if isinstance(spec, (str, bytes)):
        return Struct(spec)
    raise TypeError(f"{what} must be a struct format or a binrec.Struct, not {type(spec).__name__}")


def _field(prefix: Struct, key: Any, what: str) -> Field:
    """The prefix field named (str) or numbered (int) by ``key``."""
    fields = prefix.layout.fields
    if isinstance(key, str):
        for f in fields:
            if f.name == key:
                return f
        raise Error(
            f"{what} {key!r} is not a field of the prefix {prefix.format!r} (fields: {', '.join(prefix.names)})"
        )
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"{what} must be a prefix field name or index, not {type(key).__name__}")
    if not -len(fields) <= key < len(fields):
        raise Error(f"{what} index {key} is out of range for the {len(fields)} fields of the prefix {prefix.format!r}")
    return fields[key]


def _reader(prefix: Struct, f: Field) -> struct.Struct:
    """A :class:`struct.Struct` that reads field ``f`` alone at its offset."""
    order = prefix.format[0] if prefix.format[:1] in _BYTE_ORDERS else "@"
    return struct.Struct(order + f.code)


def _key_to_json(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


class FrameIndex:
    """Where each frame of a stream lies: the result of :meth:`Framing.scan`.

    Parameters
    ----------
    buffer : memoryview
        The scanned bytes (kept, so :meth:`body` can return views of them).
    prefix : numpy.ndarray
        Structured array of the prefix fields, one row per frame.
    offsets : numpy.ndarray
        int64 byte offset of each body in ``buffer``.
    lengths : numpy.ndarray
        int64 length of each body in bytes.
    suffix : numpy.ndarray or None
        Structured array of the suffix fields, where the framing has one.
    end : int
        Byte offset just past the last frame.

    Attributes
    ----------
    prefix, offsets, lengths, suffix, end

    Examples
    --------
    >>> import struct
    >>> import binrec
    >>> raw = struct.pack("<H", 2) + b"hi" + struct.pack("<H", 3) + b"abc"
    >>> index = binrec.Framing("<H", length=0).scan(raw)
    >>> len(index), index.offsets.tolist(), index.lengths.tolist()
    (2, [2, 6], [2, 3])
    >>> bytes(index.body(1))
    b'abc'
    """

    __slots__ = ("_buffer", "prefix", "offsets", "lengths", "suffix", "end")

    def __init__(
        self,
        buffer: memoryview,
        prefix: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        suffix: np.ndarray | None,
        end: int,
    ) -> None:
        self._buffer = buffer
        self.prefix = prefix
        self.offsets = offsets
        self.lengths = lengths
        self.suffix = suffix
        self.end = end

    def __len__(self) -> int:
        return len(self.offsets)

    def __repr__(self) -> str:
        return f"<FrameIndex of {len(self)} frames ending at byte {self.end}>"

    def body(self, i: int) -> memoryview:
        """The body of frame ``i``, as a view of the scanned buffer (no copy).

        Parameters
        ----------
        i : int
            Frame number (negative counts from the end).

        Returns
        -------
        memoryview

        Examples
        --------
        >>> import binrec
        >>> index = binrec.Framing("B", length=0).scan(b"\\x02hi\\x01!")
        >>> bytes(index.body(0)), bytes(index.body(-1))
        (b'hi', b'!')
        """
        start = int(self.offsets[i])
        return self._buffer[start : start + int(self.lengths[i])]

    def to_arrow(self) -> pa.Table:
        """The prefix columns plus a ``body`` column of binary values.

        The bodies are copied (Arrow needs them contiguous); past 2 GiB of
        bodies the column is ``large_binary``.

        Returns
        -------
        pyarrow.Table

        Examples
        --------
        >>> import binrec
        >>> index = binrec.Framing("B", names="n", length="n").scan(b"\\x02hi\\x01!")
        >>> index.to_arrow().to_pydict()
        {'n': [2, 1], 'body': [b'hi', b'!']}
        """
        import pyarrow as pa

        lengths = self.lengths
        total = int(lengths.sum()) if len(lengths) else 0
        large = total >= _LARGE_BINARY
        bounds = np.zeros(len(lengths) + 1, dtype=np.int64 if large else np.int32)
        np.cumsum(lengths, out=bounds[1:])
        data = _gather_varlen(self._buffer, self.offsets, lengths, total)
        body = pa.Array.from_buffers(
            pa.large_binary() if large else pa.binary(),
            len(lengths),
            [None, pa.py_buffer(bounds), pa.py_buffer(data)],
        )
        names = list(self.prefix.dtype.names or ())
        columns = [pa.array(self.prefix[n]) for n in names] + [body]
        return pa.Table.from_arrays(columns, names=[*names, "body"])


def _gather_varlen(buf: memoryview, offsets: np.ndarray, lengths: np.ndarray, total: int) -> np.ndarray:
    """The bodies, concatenated in frame order (uint8).  Frames are copied
    in groups of about ``_VARLEN_GROUP`` bytes, so the byte index a group
    needs stays small beside the output."""
    out = np.empty(total, dtype=np.uint8)
    if total == 0:
        return out
    raw = np.frombuffer(buf, dtype=np.uint8)
    ends = np.cumsum(lengths)
    first = 0
    while first < len(lengths):
        done = int(ends[first - 1]) if first else 0
        last = max(int(np.searchsorted(ends, done + _VARLEN_GROUP, side="right")), first + 1)
        sizes = lengths[first:last]
        # each byte's source: its frame's body offset, plus its place in that body
        base = np.repeat(offsets[first:last] - (ends[first:last] - sizes), sizes)
        stop = int(ends[last - 1])
        out[done:stop] = raw[base + np.arange(done, stop, dtype=np.int64)]
        first = last
    return out


def _frame_dtype(body: np.dtype) -> np.dtype:
    """``body``'s fields, then an int64 ``_frame`` field after them."""
    assert body.fields is not None
    names = list(body.names or ())
    return np.dtype(
        {
            "names": [*names, FRAME_FIELD],
            "formats": [body.fields[n][0] for n in names] + [np.int64],
            "offsets": [body.fields[n][1] for n in names] + [body.itemsize],
            "itemsize": body.itemsize + 8,
        }
    )


class _Types:
    """The body types of a framing in the kernels' slot order: the tag
    values as sorted int64 keys (an unsigned 8-byte tag as its two's
    complement), each type's Struct, size and output dtype.  Without a tag:
    one slot and no keys."""

    __slots__ = ("tags", "keys", "structs", "sizes", "dtypes")

    def __init__(self, formats: dict[Any, Struct] | Struct, tag: Field | None) -> None:
        if isinstance(formats, Struct):
            pairs: list[tuple[int, Any, Struct]] = [(0, None, formats)]
            keys: list[int] = []
        else:
            assert tag is not None
            pairs = sorted((self._key(tag, value), value, body) for value, body in formats.items())
            keys = [k for k, _, _ in pairs]
        self.tags = [value for _, value, _ in pairs]
        self.structs = [body for _, _, body in pairs]
        self.keys = np.array(keys, dtype=np.int64)
        self.sizes = np.array([body.size for body in self.structs], dtype=np.int64)
        self.dtypes = [_frame_dtype(body.dtype) for body in self.structs]

    @staticmethod
    def _key(tag: Field, value: Any) -> int:
        key = value[0] if isinstance(value, bytes) else int(value)
        return key - (1 << 64) if key >= 1 << 63 else key


class _Runs:
    """Where a streaming decode stands: the next frame's position in the
    current buffer, the buffer's byte offset in the stream, the stream's
    frame number of the next frame, and why the last scan stopped."""

    __slots__ = ("pos", "base", "first", "stop")

    def __init__(self, pos: int, base: int = 0) -> None:
        self.pos = pos
        self.base = base
        self.first = 0
        self.stop = FrameScan.DONE


class Framing:
    """A framed record stream: a fixed prefix holding each frame's length
    (and optionally a type tag), a body, and an optional fixed suffix.

    "Frame" means a protocol frame (a pcap packet, an ITCH message, a
    TFRecord record), not a DataFrame.

    Parameters
    ----------
    prefix : str or bytes or Struct
        Struct format of the fixed prefix of every frame (``"<IIII"`` for
        pcap packet headers, ``">Hc"`` for ITCH).
    names : str or sequence of str, optional
        Names of the prefix fields, as for :class:`~binrec.Struct`.
    length : str or int
        The prefix field (name or index) holding the length; an integer field.
    counts_from : int, optional
        Byte position within the frame where the counted length starts; the
        counted region always ends at the end of the body (a suffix is never
        counted).  ``None`` (default): the length counts only the body.
        ``0``: it counts the whole frame, prefix included.  ITCH: ``2``.
    adjust : int
        Added to the length field before it is used.
    tag : str or int, optional
        Prefix field (name or index) whose value selects the body's layout:
        an integer field (tag values are ints) or a ``c`` field (tag values
        are one-byte ``bytes``).
    formats : str or Struct or mapping, optional
        With ``tag``: a mapping from tag value to the body's format (or
        Struct).  Without: one format for every body.  Needed by
        :meth:`unpack`, not by :meth:`scan`.
    suffix : str or bytes or Struct, optional
        Struct format of a fixed suffix after each body (TFRecord's CRC).
    max_length : int, optional
        Largest body length in bytes a valid frame may have.
    extra : {"error", "ignore"}
        A body longer than its format: an error, or decode its leading part.
        A body shorter than its format is always an error.

    Raises
    ------
    binrec.Error
        A field that is not in the prefix, a length field that is not an
        integer, a tag field that is neither an integer nor ``c``,
        ``counts_from`` outside the prefix, or a format that can never fit
        under ``max_length``.

    Examples
    --------
    Two ITCH-like messages: a 2-byte big-endian length counting everything
    after itself, a type byte, then a body whose layout the type selects.

    >>> import struct
    >>> import binrec
    >>> itch = binrec.Framing(">Hc", names="length type", length="length", counts_from=2,
    ...                       tag="type", formats={b"D": ">HH6sQ", b"X": ">HH6sQI"})
    >>> raw = (struct.pack(">Hc", 19, b"D") + struct.pack(">HH6sQ", 1, 2, b"\\0" * 6, 77)
    ...        + struct.pack(">Hc", 23, b"X") + struct.pack(">HH6sQI", 1, 3, b"\\0" * 6, 78, 100))
    >>> tables = itch.unpack(raw)
    >>> tables[b"D"]["f3"].tolist(), tables[b"X"][["f3", "f4", "_frame"]].tolist()
    ([77], [(78, 100, 1)])
    """

    __slots__ = (
        "_prefix",
        "_length",
        "_length_reader",
        "_length_signed",
        "_length_big",
        "_counted_prefix",
        "_counts_from",
        "_adjust",
        "_tag",
        "_tag_reader",
        "_formats",
        "_suffix",
        "_max_length",
        "_extra",
        "_spec",
        "_types",
    )

    def __init__(
        self,
        prefix: str | bytes | Struct,
        *,
        names: str | list[str] | tuple[str, ...] | None = None,
        length: str | int,
        counts_from: int | None = None,
        adjust: int = 0,
        tag: str | int | None = None,
        formats: str | bytes | Struct | Mapping[Any, str | bytes | Struct] | None = None,
        suffix: str | bytes | Struct | None = None,
        max_length: int | None = None,
        extra: str = "error",
    ) -> None:
        given = _as_struct(prefix, "prefix")
        self._prefix: Struct = given if names is None else Struct(given.format, names)
        self._length = _field(self._prefix, length, "length")
        if self._length.code not in _INT_CODES:
            raise Error(f"length field {self._length.name!r} has format {self._length.code!r}: it must be an integer")
        self._length_reader = _reader(self._prefix, self._length)
        psize = self._prefix.size
        if counts_from is not None:
            if isinstance(counts_from, bool) or not isinstance(counts_from, int):
                raise TypeError(f"counts_from must be an integer or None, not {type(counts_from).__name__}")
            if not 0 <= counts_from <= psize:
                raise Error(f"counts_from {counts_from} is past the {psize}-byte prefix {self._prefix.format!r}")
        self._counts_from = counts_from
        self._counted_prefix = 0 if counts_from is None else psize - counts_from
        self._length_signed = self._length.code.islower()
        order = self._prefix.format[:1]
        self._length_big = order in ">!" or (order != "<" and sys.byteorder == "big")
        if isinstance(adjust, bool) or not isinstance(adjust, int):
            raise TypeError(f"adjust must be an integer, not {type(adjust).__name__}")
        if not -_MAX_ADJUST <= adjust <= _MAX_ADJUST:
            raise Error(f"adjust {adjust} is out of range (at most {_MAX_ADJUST} either way)")
        self._adjust = adjust
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, int):
                raise TypeError(f"max_length must be an integer or None, not {type(max_length).__name__}")
            if not 0 <= max_length <= _MAX_LENGTH:
                raise Error(f"max_length must be between 0 and 2**61, got {max_length}")
        self._max_length = max_length
        if extra not in _EXTRA:
            raise ValueError(f"extra must be 'error' or 'ignore', not {extra!r}")
        self._extra = extra
        self._suffix = None if suffix is None else _as_struct(suffix, "suffix")
        self._tag: Field | None = None
        self._tag_reader: struct.Struct | None = None
        if tag is not None:
            self._tag = _field(self._prefix, tag, "tag")
            if self._tag.code not in _INT_CODES and self._tag.code != "c":
                raise Error(
                    f"tag field {self._tag.name!r} has format {self._tag.code!r}: it must be an integer or a byte code 'c'"
                )
            self._tag_reader = _reader(self._prefix, self._tag)
        self._formats = self._check_formats(formats)
        self._spec = self._frame_spec()
        self._types = None if self._formats is None else _Types(self._formats, self._tag)

    def _frame_spec(self) -> FrameSpec:
        """What the kernels need to walk these frames (and sort them by tag)."""
        tag = self._tag
        order = self._prefix.format[:1]
        big = order in ">!" or (order != "<" and sys.byteorder == "big")
        return FrameSpec(
            psize=self._prefix.size,
            ssize=0 if self._suffix is None else self._suffix.size,
            length_at=self._length.offset,
            length_width=self._length.size,
            length_signed=self._length_signed,
            length_big=self._length_big,
            counted_prefix=self._counted_prefix,
            adjust=self._adjust,
            max_length=-1 if self._max_length is None else self._max_length,
            tag_at=0 if tag is None else tag.offset,
            tag_width=0 if tag is None else tag.size,
            tag_signed=tag is not None and tag.code in _INT_CODES and tag.code.islower(),
            tag_big=big,
        )

    def _check_formats(self, formats: Any) -> dict[Any, Struct] | Struct | None:
        if formats is None:
            return None
        if self._tag is None:
            if isinstance(formats, Mapping):
                raise TypeError("formats is a mapping but no tag was given: pass tag=, or one format for every body")
            body = _as_struct(formats, "formats")
            self._check_fits(body, None)
            return body
        if not isinstance(formats, Mapping):
            raise TypeError("with tag=, formats must be a mapping from tag value to format")
        out: dict[Any, Struct] = {}
        for key, spec in formats.items():
            key = self._tag_key(key)
            body = _as_struct(spec, f"formats[{key!r}]")
            self._check_fits(body, key)
            out[key] = body
        return out

    def _tag_key(self, key: Any) -> Any:
        assert self._tag is not None
        if self._tag.code == "c":
            if not (isinstance(key, bytes) and len(key) == 1):
                raise Error(f"tag field {self._tag.name!r} is a 'c' field: its values are one byte (b'A'), not {key!r}")
            return key
        if isinstance(key, bool) or not isinstance(key, int):
            raise Error(f"tag field {self._tag.name!r} is an integer field: its values are int, not {key!r}")
        bits = 8 * self._tag.size
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self._tag.code.islower() else (0, (1 << bits) - 1)
        if not low <= key <= high:
            raise Error(
                f"tag value {key} does not fit the tag field {self._tag.name!r} ({self._tag.code!r}: {low}..{high})"
            )
        return key

    def _check_fits(self, body: Struct, key: Any) -> None:
        if self._max_length is not None and body.size > self._max_length:
            which = "formats" if key is None else f"formats[{key!r}]"
            raise Error(
                f"{which} {body.format!r} needs {body.size} bytes, more than max_length {self._max_length}: "
                "no valid frame could hold it"
            )

    # -- description ---------------------------------------------------------
    @property
    def prefix(self) -> Struct:
        """The prefix layout.

        Examples
        --------
        >>> import binrec
        >>> binrec.Framing("<HB", names="n t", length="n").prefix.names
        ('n', 't')
        """
        return self._prefix

    @property
    def formats(self) -> dict[Any, Struct] | Struct | None:
        """The body layouts: a dict from tag value to :class:`~binrec.Struct`
        (with ``tag``), one Struct (without), or None (no formats given).

        Examples
        --------
        >>> import binrec
        >>> f = binrec.Framing(">Hc", length=0, counts_from=2, tag=1, formats={b"D": ">HH6sQ"})
        >>> {tag: body.format for tag, body in f.formats.items()}
        {b'D': '>HH6sQ'}
        """
        return dict(self._formats) if isinstance(self._formats, dict) else self._formats

    def __repr__(self) -> str:
        return f"Framing.from_json({self.to_json()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Framing) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())

    # -- JSON ----------------------------------------------------------------
    def to_json(self) -> str:
        """The framing as a JSON document (what :meth:`from_json` reads).

        Tag values of a ``c`` field are written as one-character strings
        (Latin-1), those of an integer field as decimal strings (JSON keys
        are strings).

        Returns
        -------
        str

        Examples
        --------
        >>> import binrec
        >>> f = binrec.Framing("<QI", length=0, suffix="<I", max_length=1 << 20)
        >>> binrec.Framing.from_json(f.to_json()) == f
        True
        """

        def spec(s: Struct) -> dict[str, Any]:
            return {"format": s.format, "names": list(s.names)}

        formats: Any
        if self._formats is None:
            formats = None
        elif isinstance(self._formats, Struct):
            formats = spec(self._formats)
        else:
            formats = {_key_to_json(k): spec(v) for k, v in self._formats.items()}
        doc = {
            "prefix": self._prefix.format,
            "names": list(self._prefix.names),
            "length": self._length.name,
            "counts_from": self._counts_from,
            "adjust": self._adjust,
            "tag": None if self._tag is None else self._tag.name,
            "formats": formats,
            "suffix": None if self._suffix is None else spec(self._suffix),
            "max_length": self._max_length,
            "extra": self._extra,
        }
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, document: str | bytes) -> Framing:
        """Build a framing from the JSON document :meth:`to_json` writes.

        A format may be given as a plain string or as
        ``{"format": ..., "names": [...]}``.

        Parameters
        ----------
        document : str or bytes

        Returns
        -------
        Framing

        Raises
        ------
        binrec.Error
            A document that is not a JSON object, or unknown keys.

        Examples
        --------
        >>> import binrec
        >>> f = binrec.Framing.from_json('{"prefix": ">Hc", "length": 0, "counts_from": 2, '
        ...                              '"tag": 1, "formats": {"D": ">HH6sQ"}}')
        >>> f.unpack(b"\\x00\\x13D" + bytes(18))[b"D"].dtype.names
        ('f0', 'f1', 'f2', 'f3', '_frame')
        """
        try:
            doc = json.loads(document)
        except ValueError as exc:
            raise Error(f"framing document is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise Error("framing document must be a JSON object")
        unknown = sorted(set(doc) - _JSON_KEYS)
        if unknown:
            raise Error(f"framing document has unknown keys: {', '.join(unknown)}")
        for key in ("prefix", "length"):
            if key not in doc:
                raise Error(f"framing document has no {key!r}")

        def struct_of(spec: Any) -> Struct:
            if isinstance(spec, dict):
                return Struct(spec["format"], spec.get("names"))
            return _as_struct(spec, "format")

        prefix = Struct(doc["prefix"], doc.get("names"))
        tag = doc.get("tag")
        formats: Any = doc.get("formats")
        if isinstance(formats, dict) and "format" not in formats:
            tag_field = _field(prefix, tag, "tag") if tag is not None else None
            as_bytes = tag_field is not None and tag_field.code == "c"

            def decode_key(k: str) -> Any:
                if as_bytes:
                    return k.encode("latin-1")
                try:
                    return int(k)
                except ValueError:
                    raise Error(f"tag value {k!r} of an integer tag field is not an integer") from None

            formats = {decode_key(k): struct_of(v) for k, v in formats.items()}
        elif formats is not None:
            formats = struct_of(formats)
        suffix = doc.get("suffix")
        return cls(
            prefix,
            length=doc["length"],
            counts_from=doc.get("counts_from"),
            adjust=doc.get("adjust", 0),
            tag=tag,
            formats=formats,
            suffix=None if suffix is None else struct_of(suffix),
            max_length=doc.get("max_length"),
            extra=doc.get("extra", "error"),
        )

    # -- the scan ------------------------------------------------------------
    def _tally(
        self, buf: memoryview, start: int, count: int, unknown: str = "error"
    ) -> tuple[np.ndarray, int, int, FrameScan]:
        """(frames per body type, frames walked, end, status): one pass over
        the prefixes that writes nothing but the counts, so that each type's
        table can be allocated once, at its final size.  It checks each
        frame's length, tag and body size; ``count`` -1 means to the end of
        ``buf``.  The kernels check every length before they count its frame."""
        types = self._types
        assert types is not None
        counts = np.zeros(len(types.sizes), dtype=np.int64)
        n, end, code = _backend.kernels.tally_frames(
            buf, start, count, self._spec, types.keys, types.sizes, self._extra == "error", unknown == "skip", counts
        )
        return counts, n, end, FrameScan(code)

    def _frames(self, buf: memoryview, start: int, count: int | None) -> tuple[np.ndarray, np.ndarray, int]:
        """(frame starts, body lengths, end), or the error for the frame
        the scan stopped at.

        One walk over the prefixes.  The two arrays start with room for
        ``_FIRST_CHUNK`` frames and grow in place (``ndarray.resize``:
        realloc, no second copy) to what the frames seen so far say the rest
        of the buffer holds, plus 3%; they are trimmed to the frames found
        at the end.  Room never exceeds the frames the buffer could hold, so
        a corrupt length cannot size anything.
        """
        kernels = _backend.kernels
        spec = self._spec
        limit = (len(buf) - start) // (spec.psize + spec.ssize) + 1  # + 1: room to reach the check that stops
        if count is not None:
            limit = min(limit, count)
        room = min(limit, _FIRST_CHUNK)
        starts = np.empty(room, dtype=np.int64)
        lengths = np.empty(room, dtype=np.int64)
        n, pos = 0, start
        while True:
            got, pos, code = kernels.scan_frames(
                buf, pos, -1 if count is None else count - n, spec.psize, spec.ssize, spec.length_at,
                spec.length_width, spec.length_signed, spec.length_big, spec.counted_prefix, spec.adjust,
                spec.max_length, starts[n:], lengths[n:],
            )  # fmt: skip
            n += got
            status = FrameScan(code)
            if status != FrameScan.FULL:
                break
            per_frame = (pos - start) / n  # n > 0: a full scan had room
            room = n + int((len(buf) - pos) / per_frame * 1.03) + 64
            room = min(max(room, n + n // 16 + 1), limit)
            starts.resize(room, refcheck=False)
            lengths.resize(room, refcheck=False)
        if status != FrameScan.DONE:
            raise self._scan_error(buf, status, n, pos)
        starts.resize(n, refcheck=False)
        lengths.resize(n, refcheck=False)
        return starts, lengths, pos

    def _scan_error(
        self, buf: memoryview, status: FrameScan, frame: int, pos: int, first: int = 0, base: int = 0
    ) -> Error:
        """The error for the frame at ``pos`` that the scan stopped at: the
        one wording, whichever backend scanned.  ``first`` and ``base`` are
        the stream's frame number and byte offset of ``buf[0]``'s frame."""
        where = f"frame {first + frame} at byte offset {base + pos}"
        psize = self._prefix.size
        if status == FrameScan.PARTIAL:
            short = pos + psize - len(buf)
            return Error(
                f"{where}: partial frame: its {psize}-byte prefix needs {short} more bytes than the buffer holds"
            )
        counted = self._length_reader.unpack_from(buf, pos + self._length.offset)[0] + self._adjust
        body = counted - self._counted_prefix
        if status == FrameScan.TOO_SMALL:
            return Error(
                f"{where}: length {counted} is smaller than the {self._counted_prefix} prefix bytes it must count"
            )
        if status == FrameScan.TOO_LONG:
            return Error(f"{where}: body length {body} is above max_length {self._max_length}")
        if status == FrameScan.UNKNOWN_TAG:
            assert self._tag is not None and self._tag_reader is not None
            key = self._tag_reader.unpack_from(buf, pos + self._tag.offset)[0]
            return Error(
                f"{where}: unknown tag {key!r} (field {self._tag.name!r}): no format for it "
                "(unknown='skip' drops such frames)"
            )
        if status in (FrameScan.BODY_SHORT, FrameScan.BODY_LONG):
            return self._body_error(buf, status, where, pos, body)
        ssize = 0 if self._suffix is None else self._suffix.size
        return Error(
            f"{where}: length {counted} runs past the end of the buffer: "
            f"the frame needs {psize + body + ssize} bytes, {len(buf) - pos} are left"
        )

    def _body_error(self, buf: memoryview, status: FrameScan, where: str, pos: int, body: int) -> Error:
        """A body shorter than its type's format (or longer, ``extra='error'``)."""
        assert self._formats is not None
        if isinstance(self._formats, Struct):
            fmt, what = self._formats, "type"
        else:
            assert self._tag is not None and self._tag_reader is not None
            key = self._tag_reader.unpack_from(buf, pos + self._tag.offset)[0]
            fmt, what = self._formats[key], f"tag {key!r}"
        short = status == FrameScan.BODY_SHORT
        side = "shorter" if short else "longer"
        hint = "" if short else " (extra='ignore' decodes its leading part)"
        return Error(
            f"{where}: body of {body} bytes is {side} than its {what}'s format {fmt.format!r} ({fmt.size} bytes){hint}"
        )

    def scan(self, buffer: Any, *, offset: int = 0, count: int | None = None) -> FrameIndex:
        """Walk the prefixes once: where each frame's body lies.

        Parameters
        ----------
        buffer : bytes-like
            The framed stream (bytes, bytearray, memoryview, mmap, ndarray).
        offset : int
            Byte offset of the first frame (negative counts from the end).
        count : int, optional
            Frames to scan.  Default: every frame to the end of the buffer,
            which must end exactly at a frame boundary.

        Returns
        -------
        FrameIndex

        Raises
        ------
        binrec.Error
            A length smaller than the prefix bytes it counts, above
            ``max_length``, or past the end of the buffer, or a partial
            frame at the end; the message names the frame and byte offset.

        Examples
        --------
        >>> import struct
        >>> import binrec
        >>> raw = b"".join(struct.pack("<I", len(p)) + p for p in (b"ab", b"", b"xyz"))
        >>> index = binrec.Framing("<I", names="n", length="n").scan(raw)
        >>> index.prefix["n"].tolist(), index.offsets.tolist()
        ([2, 0, 3], [4, 10, 14])
        >>> try:
        ...     binrec.Framing("<I", length=0).scan(raw[:-1])
        ... except binrec.Error as exc:
        ...     print(exc)
        frame 2 at byte offset 10: length 3 runs past the end of the buffer: the frame needs 7 bytes, 6 are left
        """
        buf = byte_view(buffer)
        start = resolve_offset(offset, len(buf))
        if start > len(buf):
            raise Error(f"offset {start} is past the end of the buffer ({len(buf)} bytes)")
        if count is not None:
            if isinstance(count, bool) or not isinstance(count, int):
                raise TypeError(f"count must be an integer or None, not {type(count).__name__}")
            if count < 0:
                raise Error(f"count must be >= 0, got {count}")
        starts, lengths, end = self._frames(buf, start, count)
        return self._index(buf, starts, lengths, end)

    def _index(self, buf: memoryview, frame_starts: np.ndarray, body_lengths: np.ndarray, end: int) -> FrameIndex:
        """The index, each array decoded straight into its final place:
        ``frame_starts`` becomes the body offsets (in place)."""
        kernels = _backend.kernels
        n = len(frame_starts)
        prefix = np.empty(n, dtype=self._prefix.dtype)
        kernels.decode_at(self._prefix.layout, buf, frame_starts, None, 0, prefix)
        frame_starts += self._prefix.size
        suffix = None
        if self._suffix is not None:
            suffix = np.empty(n, dtype=self._suffix.dtype)
            if self._suffix.size:
                kernels.decode_at(self._suffix.layout, buf, frame_starts, body_lengths, 0, suffix)
        return FrameIndex(buf, prefix, frame_starts, body_lengths, suffix, end)

    # -- decoding ------------------------------------------------------------
    def unpack(self, buffer: Any, *, offset: int = 0, unknown: str = "error") -> dict[Any, np.ndarray] | np.ndarray:
        """Decode every frame's body, in bulk per type.

        Parameters
        ----------
        buffer : bytes-like
            The framed stream.
        offset : int
            Byte offset of the first frame (negative counts from the end).
        unknown : {"error", "skip"}
            A frame whose tag has no format: an error, or left out (it stays
            reachable through :meth:`scan`).

        Returns
        -------
        dict or numpy.ndarray
            With ``tag``: a dict from tag value to a structured array of that
            type's bodies (only the types present).  Without: one structured
            array.  Each array has the body's fields, then an int64
            ``_frame`` field: the frame's position in the stream.

        Raises
        ------
        binrec.Error
            Anything :meth:`scan` refuses; an unknown tag (``unknown="error"``);
            a body shorter than its format, or longer with
            ``extra="error"``.  The first bad frame in stream order is the
            one reported; messages name the frame and byte offset.

        Examples
        --------
        >>> import struct
        >>> import binrec
        >>> f = binrec.Framing("<B", names="n", length="n", formats="<hh")
        >>> raw = struct.pack("<Bhh", 4, 1, 2) + struct.pack("<Bhh", 4, -3, 4)
        >>> f.unpack(raw).tolist()
        [(1, 2, 0), (-3, 4, 1)]
        """
        if unknown not in _UNKNOWN:
            raise ValueError(f"unknown must be 'error' or 'skip', not {unknown!r}")
        if self._formats is None:
            raise Error("this framing has no formats: pass formats= to decode bodies (scan() needs none)")
        buf = byte_view(buffer)
        start = resolve_offset(offset, len(buf))
        if start > len(buf):
            raise Error(f"offset {start} is past the end of the buffer ({len(buf)} bytes)")
        counts, n, end, status = self._tally(buf, start, -1, unknown)
        if status != FrameScan.DONE:
            raise self._scan_error(buf, status, n, end)
        return self._decode(buf, start, n, counts)

    def _decode(
        self, buf: memoryview, start: int, n: int, counts: np.ndarray, first: int = 0
    ) -> dict[Any, np.ndarray] | np.ndarray:
        """Decode the ``n`` frames from ``start`` that a tally counted
        (``counts`` per type): each body straight into its type's output row.
        ``first`` is the stream's frame number of the first (for ``_frame``)."""
        types = self._types
        assert types is not None
        outs = [np.empty(int(c), dtype=dt) for c, dt in zip(counts.tolist(), types.dtypes)]
        layouts = [body.layout for body in types.structs]
        _backend.kernels.unpack_frames(buf, start, n, first, self._spec, types.keys, layouts, outs)
        if self._tag is None:
            return outs[0]
        present = [(int(out[FRAME_FIELD][0]), tag, out) for tag, out in zip(types.tags, outs) if len(out)]
        return {tag: out for _, tag, out in sorted(present, key=lambda t: t[0])}

    # -- streaming -----------------------------------------------------------
    def iter_unpack(
        self,
        source: Any,
        *,
        chunk_size: int = 65536,
        offset: int = 0,
        trailing: str = "error",
        unknown: str = "error",
    ) -> Iterator[dict[Any, np.ndarray] | np.ndarray | bytes]:
        """Decode a framed stream run by run, as :meth:`unpack` does.

        Parameters
        ----------
        source : path, binary file object or bytes-like
            A path, a file object opened for binary reading (a regular file,
            a pipe, a socket file, a decompressing wrapper), or a buffer.
        chunk_size : int
            Most frames per yielded run.  Frames that cross read boundaries
            are joined; a run can hold fewer frames (at a read boundary).
        offset : int
            Bytes before the first frame (a file header: pcap's 24 bytes).
            Never negative for a file; a buffer's counts from its end.
        trailing : {"error", "ignore", "return"}
            A partial frame at the end of the stream: an error, dropped, or
            yielded last as ``bytes``.
        unknown : {"error", "skip"}
            As for :meth:`unpack`.

        Yields
        ------
        dict or numpy.ndarray or bytes
            What :meth:`unpack` returns, for each run; ``_frame`` counts
            from the first frame of the stream.  With
            ``trailing="return"``, the partial frame's bytes last.

        Raises
        ------
        binrec.Error
            As :meth:`unpack`, with the stream's frame number and byte
            offset; a partial frame at the end (``trailing="error"``).

        Examples
        --------
        >>> import io
        >>> import struct
        >>> import binrec
        >>> f = binrec.Framing("<B", length=0, formats="<h")
        >>> stream = io.BytesIO(b"".join(struct.pack("<Bh", 2, i) for i in range(5)))
        >>> [run.tolist() for run in f.iter_unpack(stream, chunk_size=2)]
        [[(0, 0), (1, 1)], [(2, 2), (3, 3)], [(4, 4)]]
        """
        if trailing not in _TRAILING:
            raise ValueError(f"trailing must be one of {_TRAILING}, got {trailing!r}")
        if unknown not in _UNKNOWN:
            raise ValueError(f"unknown must be 'error' or 'skip', not {unknown!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        if self._formats is None:
            raise Error("this framing has no formats: pass formats= to decode bodies (scan() needs none)")
        if is_path(source):
            where = source_name(source)
            start = file_offset(offset, where)
            with open(source, "rb") as fh:
                yield from self._iter_stream(fh, start, chunk_size, trailing, unknown, where)
        elif is_stream(source):
            where = source_name(source)
            yield from self._iter_stream(source, file_offset(offset, where), chunk_size, trailing, unknown, where)
        else:
            buf = byte_view(source)
            start = resolve_offset(offset, len(buf))
            if start > len(buf):
                raise Error(f"offset {start} is past the end of the buffer ({len(buf)} bytes)")
            state = _Runs(start)
            yield from self._runs(buf, state, chunk_size, unknown, eof=True)
            yield from self._trailing(buf, state, trailing)

    def _iter_stream(
        self, fh: Any, offset: int, chunk_size: int, trailing: str, unknown: str, where: str
    ) -> Iterator[dict[Any, np.ndarray] | np.ndarray | bytes]:
        skipped = 0
        while skipped < offset:  # a header to skip: read it, pipes cannot seek
            got = len(fh.read(min(offset - skipped, _READ_BYTES)))
            if got == 0:
                raise Error(f"{where}: offset {offset} is past the end of the stream ({skipped} bytes)")
            skipped += got
        pending = b""
        state = _Runs(0, base=offset)
        eof = False
        while not eof:
            data = fh.read(_READ_BYTES)
            eof = not data
            pending += data
            buf = memoryview(pending)
            yield from self._runs(buf, state, chunk_size, unknown, eof=eof)
            if eof:
                yield from self._trailing(buf, state, trailing)
                return
            # keep the unfinished frame; the stream offset moves past the rest
            state.base += state.pos
            pending = bytes(buf[state.pos :])
            state.pos = 0
            del buf

    def _runs(
        self, buf: memoryview, state: _Runs, chunk_size: int, unknown: str, *, eof: bool
    ) -> Iterator[dict[Any, np.ndarray] | np.ndarray]:
        """Decode the whole frames of ``buf`` from ``state.pos`` in runs of at
        most ``chunk_size``; stop at an unfinished frame (``state.stop``)."""
        while True:
            counts, n, end, status = self._tally(buf, state.pos, chunk_size, unknown)
            if status not in (FrameScan.DONE, FrameScan.PARTIAL, FrameScan.PAST_END):
                raise self._scan_error(buf, status, n, end, state.first, state.base)
            if n:
                yield self._decode(buf, state.pos, n, counts, state.first)
                state.first += n
            state.pos = end
            if status != FrameScan.DONE:
                state.stop = status
                return

    def _trailing(self, buf: memoryview, state: _Runs, trailing: str) -> Iterator[bytes]:
        """The bytes after the last whole frame, once the stream has ended."""
        if state.pos >= len(buf):
            return
        if trailing == "error":
            raise self._scan_error(buf, state.stop, 0, state.pos, state.first, state.base)
        if trailing == "return":
            yield bytes(buf[state.pos :])
