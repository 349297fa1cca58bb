"""HMAC-SHA256 envelopes: know a payload is yours before you unpickle it.

Envelope layout (all integers little-endian)::

    offset  size  field
    0       4     magic b"BRSG"
    4       1     format version (1)
    5       1     algorithm id (1 = HMAC-SHA256)
    6       8     key id: first 8 bytes of HMAC-SHA256(key, b"binrec key id")
    14      2     context length C
    16      C     context label (bytes)
    16+C    8     creation time, nanoseconds since the Unix epoch (signed)
    24+C    8     payload length N
    32+C    N     payload
    32+C+N  32    HMAC-SHA256 over every byte before it

The tag is made with a subkey derived per context,
``HMAC-SHA256(key, b"binrec.signing.v1\\x00" + context)``, so a tag made for
one purpose never verifies for another even if the label were rewritten.
Several keys may verify (rotation): the key id picks the key, none is tried
blindly.  Tags are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import math
import pickle
import secrets
import struct
import time
from collections.abc import Iterable
from typing import Any

from .pickling import ALL, AllowSpec, safe_loads

__all__ = [
    "BadSignature",
    "generate_key",
    "sign",
    "verify",
    "sign_detached",
    "verify_detached",
    "signed_dumps",
    "signed_loads",
    "key_id",
    "ALL",
    "MIN_KEY_BYTES",
]

MAGIC = b"BRSG"
VERSION = 1
ALG_HMAC_SHA256 = 1
TAG_BYTES = 32
MIN_KEY_BYTES = 32
_PREFIX = struct.Struct("<4sBB8sH")  # magic, version, alg, key id, context length
_MIDDLE = struct.Struct("<qQ")  # created (ns), payload length
_DETACHED = struct.Struct("<4sBB8s")
_DETACHED_MAGIC = b"BRDT"
_PICKLE_CONTEXT = b"binrec.pickle"
#: With max_age, envelopes dated this far in the future pass (clock skew).
_FUTURE_SKEW_S = 1.0


class BadSignature(ValueError):
    """The envelope or tag does not verify: tampered, wrong key or context,
    truncated, expired, or of an unknown format.

    A :class:`ValueError`.  The message says which check failed; it never
    contains the key.

    Examples
    --------
    >>> from binrec import signing
    >>> key = bytes(range(32))
    >>> envelope = signing.sign(b"hello", key, context=b"greeting")
    >>> try:
    ...     signing.verify(envelope, key, context=b"farewell")
    ... except signing.BadSignature as exc:
    ...     print(exc)
    signature mismatch: the envelope was tampered with, or the context is wrong
    """


def generate_key() -> bytes:
    """32 random bytes from :mod:`secrets`, suitable as a signing key.

    Returns
    -------
    bytes
        A new key, 32 bytes long (the shortest binrec accepts).

    Examples
    --------
    >>> from binrec import signing
    >>> key = signing.generate_key()
    >>> len(key), key == signing.generate_key()
    (32, False)
    """
    return secrets.token_bytes(32)


# package-internal: used by shelf.py and checkpoint.py (not in __all__)
def check_key(key: Any) -> bytes:
    if isinstance(key, str):
        raise TypeError("keys must be bytes, not str (use generate_key(), or encode a secret of >= 32 bytes)")
    raw = bytes(key)
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(f"key of {len(raw)} bytes refused: signing keys must have at least {MIN_KEY_BYTES} bytes")
    return raw


def key_id(key: bytes) -> bytes:
    """The 8-byte public identifier of a key (stored in envelopes).

    It is the first 8 bytes of ``HMAC-SHA256(key, b"binrec key id")``: it
    names the key without revealing it, so a verifier holding several keys
    (rotation) picks the right one.

    Parameters
    ----------
    key : bytes
        A signing key of at least 32 bytes.

    Returns
    -------
    bytes
        8 bytes.

    Raises
    ------
    ValueError
        A key shorter than 32 bytes.
    TypeError
        A ``str`` key.

    Examples
    --------
    >>> import hmac
    >>> from binrec import signing
    >>> key = bytes(range(32))
    >>> signing.key_id(key).hex()
    '3c3fbefd8fdde2f9'
    >>> signing.key_id(key) == hmac.digest(key, b"binrec key id", "sha256")[:8]
    True
    """
    return _key_id(check_key(key))


# Derivations are cached: small payloads would otherwise spend most of
# their time re-deriving the same key id and subkey.
@functools.lru_cache(maxsize=64)
def _key_id(key: bytes) -> bytes:
    return hmac.digest(key, b"binrec key id", "sha256")[:8]


# package-internal: used by checkpoint.py (not in __all__)
@functools.lru_cache(maxsize=256)
def subkey(key: bytes, context: bytes) -> bytes:
    return hmac.digest(key, b"binrec.signing.v1\x00" + context, "sha256")


# package-internal: used by shelf.py and checkpoint.py (not in __all__)
def check_keys(keys: Any) -> list[bytes]:
    """One key (bytes-like) or an iterable of keys, each checked, in order;
    the first is the one that signs."""
    if isinstance(keys, (bytes, bytearray, memoryview)):
        keys = [keys]
    checked = [check_key(k) for k in keys]
    if not checked:
        raise ValueError("no keys given")
    return checked


def _keyring(keys: Any) -> dict[bytes, bytes]:
    ring: dict[bytes, bytes] = {}
    for k in check_keys(keys):
        ring.setdefault(_key_id(k), k)
    return ring


def _context(context: Any) -> bytes:
    if isinstance(context, str):
        context = context.encode("utf-8")
    label = bytes(context)
    if len(label) > 0xFFFF:
        raise ValueError("context label longer than 65535 bytes")
    return label


def sign(
    payload: bytes | bytearray | memoryview, key: bytes, *, context: bytes | str = b"", created_ns: int | None = None
) -> bytes:
    """Wrap ``payload`` in a signed envelope (layout in this module's docstring).

    Parameters
    ----------
    payload : bytes-like
        The bytes to protect.
    key : bytes
        A signing key of at least 32 bytes.
    context : bytes or str
        A label for the payload's purpose; :func:`verify` must be given the
        same one (str is encoded as UTF-8).
    created_ns : int, optional
        Creation time stored in the envelope, in nanoseconds since the
        Unix epoch (default :func:`time.time_ns`).

    Returns
    -------
    bytes
        The envelope: a 32-byte header plus the context, the payload, and a
        32-byte HMAC-SHA256 tag.

    Raises
    ------
    ValueError
        A key shorter than 32 bytes, or a context over 65535 bytes.
    TypeError
        A ``str`` key.

    Examples
    --------
    >>> from binrec import signing
    >>> key = bytes(range(32))
    >>> envelope = signing.sign(b"hello", key, context=b"greeting", created_ns=0)
    >>> envelope[:4], len(envelope) == 32 + len(b"greeting") + len(b"hello") + 32
    (b'BRSG', True)
    >>> signing.verify(envelope, key, context=b"greeting")
    b'hello'
    """
    key = check_key(key)
    ctx = _context(context)
    payload = memoryview(payload).cast("B") if not isinstance(payload, bytes) else payload
    created = time.time_ns() if created_ns is None else int(created_ns)
    header = _header(key, ctx, created, len(payload))
    mac = hmac.new(subkey(key, ctx), header, hashlib.sha256)
    mac.update(payload)
    return b"".join((header, payload, mac.digest()))


def _header(key: bytes, ctx: bytes, created_ns: int, length: int) -> bytes:
    return (
        _PREFIX.pack(MAGIC, VERSION, ALG_HMAC_SHA256, _key_id(key), len(ctx)) + ctx + _MIDDLE.pack(created_ns, length)
    )


# package-internal: used by shelf.py (not in __all__)
def open_envelope(envelope: Any, keys: Any, context: Any, max_age: float | None, now_ns: int | None) -> memoryview:
    ring = _keyring(keys)
    ctx = _context(context)
    env = memoryview(envelope).cast("B")
    if len(env) < _PREFIX.size + _MIDDLE.size + TAG_BYTES:
        raise BadSignature(f"envelope of {len(env)} bytes is truncated")
    magic, version, alg, kid, clen = _PREFIX.unpack_from(env, 0)
    if magic != MAGIC:
        raise BadSignature("not a binrec signed envelope (bad magic)")
    if version != VERSION:
        raise BadSignature(f"unknown envelope format version {version}")
    if alg != ALG_HMAC_SHA256:
        raise BadSignature(f"unknown signature algorithm id {alg}")
    head_end = _PREFIX.size + clen + _MIDDLE.size
    if len(env) < head_end + TAG_BYTES:
        raise BadSignature("envelope is truncated")
    created, length = _MIDDLE.unpack_from(env, _PREFIX.size + clen)
    if len(env) != head_end + length + TAG_BYTES:
        raise BadSignature(
            f"envelope length {len(env)} does not match its payload length {length} (truncated or padded)"
        )
    key = ring.get(bytes(kid))
    if key is None:
        raise BadSignature(
            f"envelope was signed with key id {bytes(kid).hex()}, which is not among the {len(ring)} key(s) given"
        )
    digest = hmac.digest(subkey(key, ctx), env[: head_end + length], "sha256")
    if not hmac.compare_digest(digest, env[head_end + length :]):
        raise BadSignature("signature mismatch: the envelope was tampered with, or the context is wrong")
    if not hmac.compare_digest(bytes(env[_PREFIX.size : _PREFIX.size + clen]), ctx):
        raise BadSignature("context mismatch")  # unreachable: the subkey already binds the context
    if max_age is not None:
        if math.isnan(max_age):  # NaN compares false with everything: the check would pass every envelope
            raise ValueError("max_age is NaN: give a number of seconds, or None for no age check")
        now = time.time_ns() if now_ns is None else now_ns
        age = (now - created) / 1e9
        if age > max_age:
            raise BadSignature(f"envelope is {age:.3f} s old, older than max_age={max_age} s")
        if age < -_FUTURE_SKEW_S:
            raise BadSignature(f"envelope is dated {-age:.3f} s in the future")
    return env[head_end : head_end + length]


def verify(
    envelope: bytes | bytearray | memoryview,
    keys: bytes | Iterable[bytes],
    *,
    context: bytes | str = b"",
    max_age: float | None = None,
    now_ns: int | None = None,
) -> bytes:
    """Check an envelope and return its payload.

    Parameters
    ----------
    envelope : bytes-like
        What :func:`sign` returned.
    keys : bytes or list of bytes
        One key, or several (rotation): the envelope's key id picks one.
    context : bytes or str
        Must equal the context it was signed with.
    max_age : float, optional
        Seconds.  The age is ``(now_ns - created) / 1e9`` with the creation
        time stored in the envelope: an envelope with age > ``max_age`` is
        refused, one exactly ``max_age`` old is accepted; so is one dated
        up to 1 s in the future (clock skew), while one dated more than 1 s
        in the future is refused.  ``None`` (the default): no age check.
    now_ns : int, optional
        The time to measure the age against, in nanoseconds since the Unix
        epoch; default :func:`time.time_ns`.  Used only with ``max_age``.

    Returns
    -------
    bytes
        The payload.

    Raises
    ------
    BadSignature
        Any tampered byte, wrong key or context, truncation, unknown
        version, magic or algorithm (even under a valid HMAC), expired or
        future-dated (with ``max_age``).
    ValueError
        A key shorter than 32 bytes, no keys, a context over 65535 bytes,
        or ``max_age`` NaN.

    Examples
    --------
    >>> from binrec import signing
    >>> key = bytes(range(32))
    >>> envelope = signing.sign(b"hi", key, created_ns=0)
    >>> signing.verify(envelope, key, max_age=60, now_ns=60 * 10**9)  # exactly 60 s old: accepted
    b'hi'
    >>> try:
    ...     signing.verify(envelope, key, max_age=60, now_ns=60 * 10**9 + 1)
    ... except signing.BadSignature as exc:
    ...     print(exc)
    envelope is 60.000 s old, older than max_age=60 s
    >>> tampered = bytearray(envelope)
    >>> tampered[32] ^= 1  # the first payload byte
    >>> try:
    ...     signing.verify(tampered, key)
    ... except signing.BadSignature as exc:
    ...     print(exc)
    signature mismatch: the envelope was tampered with, or the context is wrong
    """
    return bytes(open_envelope(envelope, keys, context, max_age, now_ns))


def sign_detached(payload: bytes | bytearray | memoryview, key: bytes, *, context: bytes | str = b"") -> bytes:
    """A 46-byte tag for ``payload`` (for a sidecar file): magic, version,
    algorithm, key id and HMAC-SHA256.

    Parameters
    ----------
    payload : bytes-like
        The bytes to protect (not copied into the tag).
    key : bytes
        A signing key of at least 32 bytes.
    context : bytes or str
        A label for the payload's purpose; :func:`verify_detached` must be
        given the same one.

    Returns
    -------
    bytes
        The 46-byte tag.

    Raises
    ------
    ValueError
        A key shorter than 32 bytes.

    Examples
    --------
    >>> from binrec import signing
    >>> key = bytes(range(32))
    >>> tag = signing.sign_detached(b"data", key)
    >>> len(tag), tag[:4]
    (46, b'BRDT')
    >>> signing.verify_detached(b"data", tag, [key])
    True
    """
    key = check_key(key)
    ctx = _context(context)
    head = _DETACHED.pack(_DETACHED_MAGIC, VERSION, ALG_HMAC_SHA256, key_id(key))
    mac = hmac.new(subkey(key, b"detached\x00" + ctx), head, hashlib.sha256)
    mac.update(payload)
    return head + mac.digest()


def verify_detached(
    payload: bytes | bytearray | memoryview, tag: bytes, keys: bytes | Iterable[bytes], *, context: bytes | str = b""
) -> bool:
    """Return True if ``tag`` was made by :func:`sign_detached` for
    ``payload`` with one of ``keys``; raise :class:`BadSignature` otherwise.

    Parameters
    ----------
    payload : bytes-like
        The bytes the tag should cover.
    tag : bytes
        What :func:`sign_detached` returned.
    keys : bytes or list of bytes
        One key, or several (rotation): the tag's key id picks one.
    context : bytes or str
        Must equal the context the tag was made with.

    Returns
    -------
    bool
        Always True (a mismatch raises).

    Raises
    ------
    BadSignature
        The payload or tag was changed, or a wrong key or context.

    Examples
    --------
    >>> from binrec import signing
    >>> key = bytes(range(32))
    >>> tag = signing.sign_detached(b"data", key, context="sidecar")
    >>> signing.verify_detached(b"data", tag, key, context="sidecar")
    True
    >>> try:
    ...     signing.verify_detached(b"datA", tag, key, context="sidecar")
    ... except signing.BadSignature as exc:
    ...     print(exc)
    signature mismatch
    """
    ring = _keyring(keys)
    ctx = _context(context)
    tag = bytes(tag)
    if len(tag) != _DETACHED.size + TAG_BYTES:
        raise BadSignature(f"detached tag must be {_DETACHED.size + TAG_BYTES} bytes, got {len(tag)}")
    magic, version, alg, kid = _DETACHED.unpack_from(tag, 0)
    if magic != _DETACHED_MAGIC or version != VERSION or alg != ALG_HMAC_SHA256:
        raise BadSignature("not a binrec detached tag, or an unknown version")
    key = ring.get(kid)
    if key is None:
        raise BadSignature(f"tag was made with key id {kid.hex()}, which is not among the keys given")
    mac = hmac.new(subkey(key, b"detached\x00" + ctx), tag[: _DETACHED.size], hashlib.sha256)
    mac.update(payload)
    if not hmac.compare_digest(mac.digest(), tag[_DETACHED.size :]):
        raise BadSignature("signature mismatch")
    return True


def signed_dumps(obj: Any, key: bytes, *, context: bytes | str = _PICKLE_CONTEXT, protocol: int | None = None) -> bytes:
    """Pickle ``obj`` and sign it (the same envelope as :func:`sign`).

    The pickle is written straight after a header placeholder in one
    buffer, so the payload is never copied to build the envelope.

    Parameters
    ----------
    obj : object
        Anything picklable.
    key : bytes
        A signing key of at least 32 bytes.
    context : bytes or str
        The envelope's context (default ``b"binrec.pickle"``).
    protocol : int, optional
        Pickle protocol (default :data:`pickle.HIGHEST_PROTOCOL`).

    Returns
    -------
    bytes
        A signed envelope whose payload is the pickle.

    Examples
    --------
    >>> import pickle
    >>> from binrec import signing
    >>> key = bytes(range(32))
    >>> blob = signing.signed_dumps({"a": [1, 2]}, key)
    >>> signing.signed_loads(blob, key)
    {'a': [1, 2]}
    >>> pickle.loads(signing.verify(blob, key, context=b"binrec.pickle"))  # the payload is a plain pickle
    {'a': [1, 2]}
    """
    key = check_key(key)
    ctx = _context(context)
    created = time.time_ns()
    head_len = len(_header(key, ctx, created, 0))
    buf = io.BytesIO()
    buf.write(bytes(head_len))
    pickle.dump(obj, buf, protocol=pickle.HIGHEST_PROTOCOL if protocol is None else protocol)
    length = buf.tell() - head_len
    buf.seek(0)
    buf.write(_header(key, ctx, created, length))
    with buf.getbuffer() as view:
        tag = hmac.digest(subkey(key, ctx), view, "sha256")
    buf.seek(0, io.SEEK_END)
    buf.write(tag)
    return buf.getvalue()


def signed_loads(
    blob: bytes | bytearray | memoryview,
    keys: bytes | Iterable[bytes],
    *,
    allow: AllowSpec = None,
    context: bytes | str = _PICKLE_CONTEXT,
    max_age: float | None = None,
) -> Any:
    """Verify first, unpickle second.

    Unpickling uses the restricted loader (:func:`binrec.pickling.safe_loads`)
    with ``allow`` extending the default allowlist; only ``allow=ALL``
    (spelled out in the caller's code) unpickles without restriction.

    Parameters
    ----------
    blob : bytes-like
        What :func:`signed_dumps` returned.
    keys : bytes or list of bytes
        One key, or several (rotation).
    allow : optional
        Extra globals for the restricted unpickler, as for
        :func:`binrec.pickling.safe_loads`, or :data:`ALL` for plain pickle.
    context : bytes or str
        Must equal the context it was signed with.
    max_age : float, optional
        Seconds, with :func:`verify`'s rule (age > ``max_age`` or dated
        more than 1 s in the future: refused), measured against
        :func:`time.time_ns`.  ``None`` (the default): no age check.

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    BadSignature
        As :func:`verify`; nothing is unpickled.
    binrec.pickling.PickleSecurityError
        A correctly signed pickle that names a global outside the allowlist.

    Examples
    --------
    >>> import os
    >>> from binrec import pickling, signing
    >>> key = bytes(range(32))
    >>> signing.signed_loads(signing.signed_dumps([1, 2], key), key, max_age=3600)
    [1, 2]
    >>> try:  # a valid signature does not make os.system loadable
    ...     signing.signed_loads(signing.signed_dumps(os.system, key), key)
    ... except pickling.ForbiddenGlobal as exc:
    ...     print(exc.name)
    system
    """
    payload = open_envelope(blob, keys, context, max_age, None)
    if allow is ALL:
        return pickle.loads(payload)
    return safe_loads(payload, allow=allow)
