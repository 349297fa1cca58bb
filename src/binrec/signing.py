"""Signed envelopes (HMAC-SHA256 or keyed BLAKE3): know a payload is yours
before you unpickle it.

Envelope layout (all integers little-endian)::

    offset  size  field
    0       4     magic b"BRSG"
    4       1     format version (1)
    5       1     algorithm id (1 = HMAC-SHA256, 2 = keyed BLAKE3)
    6       8     key id: first 8 bytes of HMAC-SHA256(key, b"binrec key id")
    14      2     context length C
    16      C     context label (bytes)
    16+C    8     creation time, nanoseconds since the Unix epoch (signed)
    24+C    8     payload length N
    32+C    N     payload
    32+C+N  32    the tag (MAC) over every byte before it

The tag is made with a subkey derived per context, so a tag made for one
purpose never verifies for another even if the label were rewritten:
``HMAC-SHA256(key, b"binrec.signing.v1\\x00" + context)`` for HMAC-SHA256,
BLAKE3's key-derivation mode over ``key + context`` (context string
``"binrec 2026-11-28 signing subkey v1"``) for BLAKE3.  The algorithm is
read from the envelope, so one verifier reads both.  Several keys may
verify (rotation): the key id picks the key, none is tried blindly.  Tags
are compared with :func:`hmac.compare_digest`.

BLAKE3 needs the ``blake3`` package (``pip install "binrec[fast]"``); without
it, making or reading a BLAKE3 envelope raises :class:`UnsupportedAlgorithm`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import io
import math
import pickle
import secrets
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .pickling import ALL, AllowSpec, safe_loads

__all__ = [
    "BadSignature",
    "UnsupportedAlgorithm",
    "ALGORITHMS",
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
ALG_BLAKE3 = 2
#: The signature algorithms, by the name ``alg=`` takes.  HMAC-SHA256 (the
#: default) needs only the standard library; keyed BLAKE3 needs the
#: ``blake3`` package (``pip install "binrec[fast]"``).
ALGORITHMS = ("hmac-sha256", "blake3")
DEFAULT_ALG = "hmac-sha256"
# package-internal: the algorithm id stored in envelopes and tags
ALG_IDS = {"hmac-sha256": ALG_HMAC_SHA256, "blake3": ALG_BLAKE3}
_ALG_NAMES = {v: k for k, v in ALG_IDS.items()}
#: What to install for an algorithm outside the standard library: (module, extra).
_ALG_PACKAGES = {"blake3": ("blake3", "fast")}
TAG_BYTES = 32
MIN_KEY_BYTES = 32
#: BLAKE3's keyed mode takes keys of exactly this many bytes.
BLAKE3_KEY_BYTES = 32
# BLAKE3's key-derivation context: hardcoded and unique to this use, as
# BLAKE3 asks; the per-purpose context goes in the key material.
_BLAKE3_DERIVE_CONTEXT = "binrec 2026-11-28 signing subkey v1"
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


class UnsupportedAlgorithm(ValueError):
    """A known signature algorithm that this Python cannot compute: its
    package is not installed.

    Raised when making, or reading, an envelope, tag, shelf row or
    checkpoint signed with such an algorithm (``"blake3"`` without the
    ``blake3`` package).  Nothing was tampered with, so it is not a
    :class:`BadSignature`; the message names the extra to install.  A
    :class:`ValueError`.

    Examples
    --------
    >>> import sys
    >>> from binrec import signing
    >>> saved = sys.modules.get("blake3")
    >>> sys.modules["blake3"] = None  # as if the package were not installed
    >>> try:
    ...     signing.sign(b"data", bytes(range(32)), alg="blake3")
    ... except signing.UnsupportedAlgorithm as exc:
    ...     print(exc)
    ... finally:
    ...     if saved is None:
    ...         del sys.modules["blake3"]
    ...     else:
    ...         sys.modules["blake3"] = saved
    signature algorithm 'blake3' needs the blake3 package: pip install "binrec[fast]"
    """


# package-internal: what every MAC object here offers (hmac.HMAC, blake3.blake3)
class Mac(Protocol):
    def update(self, data: Any, /) -> object: ...

    def digest(self) -> bytes: ...

    def copy(self) -> Mac: ...


def generate_key() -> bytes:
    """32 random bytes from :mod:`secrets`, suitable as a signing key.

    Returns
    -------
    bytes
        A new key, 32 bytes long (the shortest binrec accepts, and the
        length BLAKE3 requires).

    Examples
    --------
    >>> from binrec import signing
    >>> key = signing.generate_key()
    >>> len(key), key == signing.generate_key()
    (32, False)
    """
    return secrets.token_bytes(32)


def _missing_package(alg: str) -> UnsupportedAlgorithm:
    module, extra = _ALG_PACKAGES[alg]
    return UnsupportedAlgorithm(
        f'signature algorithm {alg!r} needs the {module} package: pip install "binrec[{extra}]"'
    )


def _blake3_class() -> Callable[..., Mac]:
    # imported on first use, and looked up each time so that a package
    # blocked or removed after import is reported, not half-used
    try:
        module = importlib.import_module("blake3")
    except ImportError:
        raise _missing_package("blake3") from None
    cls: Callable[..., Mac] = module.blake3
    return cls


# package-internal: used by shelf.py and checkpoint.py (not in __all__)
def check_alg(alg: Any) -> str:
    """``alg`` if it names a signature algorithm this Python can compute.

    ValueError (naming ``alg=``) for an unknown name; UnsupportedAlgorithm
    when its package is missing."""
    if alg not in ALG_IDS:
        known = ", ".join(repr(a) for a in ALGORITHMS)
        raise ValueError(f"alg={alg!r} is not a signature algorithm: use one of {known}")
    if alg == "blake3":
        _blake3_class()
    return str(alg)


# package-internal: used by shelf.py and checkpoint.py (not in __all__)
def check_key(key: Any, alg: str = DEFAULT_ALG) -> bytes:
    if isinstance(key, str):
        raise TypeError("keys must be bytes, not str (use generate_key(), or encode a secret of >= 32 bytes)")
    raw = bytes(key)
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(f"key of {len(raw)} bytes refused: signing keys must have at least {MIN_KEY_BYTES} bytes")
    if alg == "blake3" and len(raw) != BLAKE3_KEY_BYTES:
        raise ValueError(
            f"key of {len(raw)} bytes refused: alg='blake3' takes keys of exactly {BLAKE3_KEY_BYTES} bytes"
            " (generate_key() makes one)"
        )
    return raw


def key_id(key: bytes) -> bytes:
    """The 8-byte public identifier of a key (stored in envelopes).

    It is the first 8 bytes of ``HMAC-SHA256(key, b"binrec key id")``
    whatever the signature algorithm: it names the key without revealing
    it, so a verifier holding several keys (rotation) picks the right one.

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
def subkey(key: bytes, context: bytes, alg: str = DEFAULT_ALG) -> bytes:
    """The per-context key: HMAC-SHA256(key, prefix + context), or BLAKE3's
    derive-key mode over key + context (the key is exactly 32 bytes, so
    the concatenation is unambiguous)."""
    if alg == "blake3":
        derive = _blake3_class()(derive_key_context=_BLAKE3_DERIVE_CONTEXT)
        derive.update(key)
        derive.update(context)
        return derive.digest()
    return hmac.digest(key, b"binrec.signing.v1\x00" + context, "sha256")


# package-internal: used by checkpoint.py (not in __all__)
def new_mac(alg: str, sub: bytes) -> Mac:
    """An empty MAC under the subkey ``sub`` (from :func:`subkey`)."""
    if alg == "blake3":
        return _blake3_class()(key=sub)
    return hmac.new(sub, digestmod=hashlib.sha256)


def _mac_digest(alg: str, sub: bytes, data: Any) -> bytes:
    """One-shot MAC (hmac.digest's fast path for HMAC-SHA256)."""
    if alg == "blake3":
        return _blake3_class()(data, key=sub).digest()
    return hmac.digest(sub, data, "sha256")


# package-internal: used by shelf.py and checkpoint.py (not in __all__)
def check_keys(keys: Any, alg: str = DEFAULT_ALG) -> list[bytes]:
    """One key (bytes-like) or an iterable of keys, each checked, in order;
    the first is the one that signs, and must suit ``alg``.  The others
    only verify, so any length of at least 32 bytes is accepted (each file
    says which algorithm made it)."""
    if isinstance(keys, (bytes, bytearray, memoryview)):
        keys = [keys]
    checked = [check_key(k) for k in keys]
    if not checked:
        raise ValueError("no keys given")
    check_key(checked[0], alg)
    return checked


# package-internal: used by shelf.py and checkpoint.py (not in __all__)
def alg_from_id(alg_id: int, what: str) -> str:
    """The name of the algorithm stored as ``alg_id`` in ``what``, or
    BadSignature for an id this binrec does not know (a changed byte, or a
    newer binrec's algorithm)."""
    name = _ALG_NAMES.get(alg_id)
    if name is None:
        known = ", ".join(f"{i} = {n}" for i, n in _ALG_NAMES.items())
        raise BadSignature(f"{what}: unknown signature algorithm id {alg_id} (this binrec knows {known})")
    return name


# package-internal: used by checkpoint.py (not in __all__)
def key_for_alg(key: bytes, alg: str, what: str) -> bytes:
    """Refuse a key the algorithm could not have signed with (BLAKE3 takes
    exactly 32 bytes): nothing made by binrec would verify, so the data
    was changed or the wrong key has that id."""
    if alg == "blake3" and len(key) != BLAKE3_KEY_BYTES:
        raise BadSignature(
            f"{what} is signed with blake3, which takes {BLAKE3_KEY_BYTES}-byte keys, but the key with its id"
            f" has {len(key)} bytes"
        )
    return key


def _keyring(keys: Any) -> dict[bytes, bytes]:
    ring: dict[bytes, bytes] = {}
    for k in check_keys(keys):
        ring.setdefault(_key_id(k), k)
    return ring


def _required(alg: str | None, found: str, what: str) -> None:
    """With ``alg=`` given to a verifier, refuse data made with another."""
    if alg is not None and check_alg(alg) != found:
        raise BadSignature(f"{what} is signed with {found}, but alg={alg!r} was required")


def _context(context: Any) -> bytes:
    if isinstance(context, str):
        context = context.encode("utf-8")
    label = bytes(context)
    if len(label) > 0xFFFF:
        raise ValueError("context label longer than 65535 bytes")
    return label


def sign(
    payload: bytes | bytearray | memoryview,
    key: bytes,
    *,
    context: bytes | str = b"",
    created_ns: int | None = None,
    alg: str = DEFAULT_ALG,
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
    alg : {'hmac-sha256', 'blake3'}
        The signature algorithm, recorded in the envelope.
        ``"hmac-sha256"`` (the default) needs only the standard library;
        ``"blake3"`` (keyed BLAKE3, several times faster on large payloads)
        needs the ``blake3`` package and a key of exactly 32 bytes.

    Returns
    -------
    bytes
        The envelope: a 32-byte header plus the context, the payload, and a
        32-byte tag.

    Raises
    ------
    ValueError
        A key shorter than 32 bytes (for ``"blake3"``: not exactly 32
        bytes), an unknown ``alg``, or a context over 65535 bytes.
    UnsupportedAlgorithm
        ``alg="blake3"`` without the ``blake3`` package.
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
    >>> try:
    ...     fast = signing.sign(b"hello", key, alg="blake3")
    ... except signing.UnsupportedAlgorithm:  # no blake3 package here
    ...     fast = signing.sign(b"hello", key)
    >>> signing.verify(fast, key)  # the envelope says which algorithm made it
    b'hello'
    """
    alg = check_alg(alg)
    key = check_key(key, alg)
    ctx = _context(context)
    payload = memoryview(payload).cast("B") if not isinstance(payload, bytes) else payload
    created = time.time_ns() if created_ns is None else int(created_ns)
    header = _header(key, ctx, created, len(payload), alg)
    mac = new_mac(alg, subkey(key, ctx, alg))
    mac.update(header)
    mac.update(payload)
    return b"".join((header, payload, mac.digest()))


def _header(key: bytes, ctx: bytes, created_ns: int, length: int, alg: str) -> bytes:
    return _PREFIX.pack(MAGIC, VERSION, ALG_IDS[alg], _key_id(key), len(ctx)) + ctx + _MIDDLE.pack(created_ns, length)


# package-internal: used by shelf.py (not in __all__)
def open_envelope(
    envelope: Any, keys: Any, context: Any, max_age: float | None, now_ns: int | None, alg: str | None = None
) -> memoryview:
    ring = _keyring(keys)
    ctx = _context(context)
    env = memoryview(envelope).cast("B")
    if len(env) < _PREFIX.size + _MIDDLE.size + TAG_BYTES:
        raise BadSignature(f"envelope of {len(env)} bytes is truncated")
    magic, version, alg_id, kid, clen = _PREFIX.unpack_from(env, 0)
    if magic != MAGIC:
        raise BadSignature("not a binrec signed envelope (bad magic)")
    if version != VERSION:
        raise BadSignature(f"unknown envelope format version {version}")
    found = alg_from_id(alg_id, "envelope")
    _required(alg, found, "envelope")
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
    check_alg(found)  # a known algorithm whose package is missing: UnsupportedAlgorithm, not a mismatch
    key = key_for_alg(key, found, "envelope")
    digest = _mac_digest(found, subkey(key, ctx, found), env[: head_end + length])
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
    alg: str | None = None,
) -> bytes:
    """Check an envelope and return its payload.

    The envelope says which algorithm signed it; every algorithm in
    :data:`ALGORITHMS` verifies (BLAKE3 with the ``blake3`` package).

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
    alg : {'hmac-sha256', 'blake3'}, optional
        Accept only envelopes signed with this algorithm (default: any).

    Returns
    -------
    bytes
        The payload.

    Raises
    ------
    BadSignature
        Any tampered byte, wrong key or context, truncation, unknown
        version, magic or algorithm id (even under a valid HMAC), an
        algorithm other than ``alg``, expired or future-dated (with
        ``max_age``).
    UnsupportedAlgorithm
        The envelope is signed with BLAKE3 and the ``blake3`` package is
        not installed.
    ValueError
        A key shorter than 32 bytes, no keys, a context over 65535 bytes,
        an unknown ``alg``, or ``max_age`` NaN.

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
    return bytes(open_envelope(envelope, keys, context, max_age, now_ns, alg))


def sign_detached(
    payload: bytes | bytearray | memoryview, key: bytes, *, context: bytes | str = b"", alg: str = DEFAULT_ALG
) -> bytes:
    """A 46-byte tag for ``payload`` (for a sidecar file): magic, version,
    algorithm, key id and the 32-byte MAC.

    Parameters
    ----------
    payload : bytes-like
        The bytes to protect (not copied into the tag).
    key : bytes
        A signing key of at least 32 bytes.
    context : bytes or str
        A label for the payload's purpose; :func:`verify_detached` must be
        given the same one.
    alg : {'hmac-sha256', 'blake3'}
        The algorithm, recorded in the tag (as for :func:`sign`).

    Returns
    -------
    bytes
        The 46-byte tag.

    Raises
    ------
    ValueError
        A key shorter than 32 bytes (for ``"blake3"``: not exactly 32
        bytes), or an unknown ``alg``.
    UnsupportedAlgorithm
        ``alg="blake3"`` without the ``blake3`` package.

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
    alg = check_alg(alg)
    key = check_key(key, alg)
    ctx = _context(context)
    head = _DETACHED.pack(_DETACHED_MAGIC, VERSION, ALG_IDS[alg], _key_id(key))
    mac = new_mac(alg, subkey(key, b"detached\x00" + ctx, alg))
    mac.update(head)
    mac.update(payload)
    return head + mac.digest()


def verify_detached(
    payload: bytes | bytearray | memoryview,
    tag: bytes,
    keys: bytes | Iterable[bytes],
    *,
    context: bytes | str = b"",
    alg: str | None = None,
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
    alg : {'hmac-sha256', 'blake3'}, optional
        Accept only tags made with this algorithm (default: any; the tag
        says which).

    Returns
    -------
    bool
        Always True (a mismatch raises).

    Raises
    ------
    BadSignature
        The payload or tag was changed, a wrong key or context, or an
        algorithm other than ``alg``.
    UnsupportedAlgorithm
        A BLAKE3 tag without the ``blake3`` package.

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
    magic, version, alg_id, kid = _DETACHED.unpack_from(tag, 0)
    if magic != _DETACHED_MAGIC or version != VERSION:
        raise BadSignature("not a binrec detached tag, or an unknown version")
    if alg_id not in _ALG_NAMES:
        raise BadSignature(f"not a binrec detached tag, or an unknown version (algorithm id {alg_id})")
    found = _ALG_NAMES[alg_id]
    _required(alg, found, "detached tag")
    key = ring.get(kid)
    if key is None:
        raise BadSignature(f"tag was made with key id {kid.hex()}, which is not among the keys given")
    check_alg(found)  # a known algorithm whose package is missing: UnsupportedAlgorithm
    key = key_for_alg(key, found, "detached tag")
    mac = new_mac(found, subkey(key, b"detached\x00" + ctx, found))
    mac.update(tag[: _DETACHED.size])
    mac.update(payload)
    if not hmac.compare_digest(mac.digest(), tag[_DETACHED.size :]):
        raise BadSignature("signature mismatch")
    return True


def signed_dumps(
    obj: Any,
    key: bytes,
    *,
    context: bytes | str = _PICKLE_CONTEXT,
    protocol: int | None = None,
    alg: str = DEFAULT_ALG,
) -> bytes:
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
    alg : {'hmac-sha256', 'blake3'}
        The signature algorithm (as for :func:`sign`); ``"blake3"`` costs
        a fraction of HMAC-SHA256's time on large pickles.

    Returns
    -------
    bytes
        A signed envelope whose payload is the pickle.

    Raises
    ------
    ValueError
        A key shorter than 32 bytes (for ``"blake3"``: not exactly 32
        bytes), or an unknown ``alg``.
    UnsupportedAlgorithm
        ``alg="blake3"`` without the ``blake3`` package.

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
    alg = check_alg(alg)
    key = check_key(key, alg)
    ctx = _context(context)
    created = time.time_ns()
    head_len = len(_header(key, ctx, created, 0, alg))
    buf = io.BytesIO()
    buf.write(bytes(head_len))
    pickle.dump(obj, buf, protocol=pickle.HIGHEST_PROTOCOL if protocol is None else protocol)
    length = buf.tell() - head_len
    buf.seek(0)
    buf.write(_header(key, ctx, created, length, alg))
    with buf.getbuffer() as view:
        tag = _mac_digest(alg, subkey(key, ctx, alg), view)
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
    alg: str | None = None,
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
    alg : {'hmac-sha256', 'blake3'}, optional
        Accept only envelopes signed with this algorithm (default: any;
        the envelope says which).

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    BadSignature
        As :func:`verify`; nothing is unpickled.
    UnsupportedAlgorithm
        A BLAKE3 envelope without the ``blake3`` package.
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
    payload = open_envelope(blob, keys, context, max_age, None, alg)
    if allow is ALL:
        return pickle.loads(payload)
    return safe_loads(payload, allow=allow)
