"""binrec.signing: envelopes, detached tags, signed pickles."""

from __future__ import annotations

import array
import hashlib
import hmac
import os
import pickle
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binrec.pickling import ALL, ForbiddenGlobal
from binrec.signing import (
    BadSignature,
    generate_key,
    key_id,
    sign,
    sign_detached,
    signed_dumps,
    signed_loads,
    verify,
    verify_detached,
)

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def test_round_trip_and_envelope_layout():
    env = sign(b"payload", KEY, context=b"ctx")
    assert env[:4] == b"BRSG" and env[4] == 1 and env[5] == 1
    assert env[6:14] == key_id(KEY)
    assert verify(env, KEY, context=b"ctx") == b"payload"
    # the tag is HMAC-SHA256 under the per-context subkey, over everything before it
    sub = hmac.new(KEY, b"binrec.signing.v1\x00ctx", hashlib.sha256).digest()
    assert env[-32:] == hmac.new(sub, env[:-32], hashlib.sha256).digest()


def test_every_tampered_byte_is_detected():
    env = sign(b"some payload bytes", KEY, context=b"c")
    for i in range(len(env)):
        for flip in (0x01, 0x80):
            bad = bytearray(env)
            bad[i] ^= flip
            with pytest.raises(BadSignature):
                verify(bytes(bad), KEY, context=b"c")


def test_truncated_and_padded_envelopes():
    env = sign(b"x" * 100, KEY)
    for cut in range(len(env)):
        with pytest.raises(BadSignature):
            verify(env[:cut], KEY)
    with pytest.raises(BadSignature):
        verify(env + b"\x00", KEY)


def test_wrong_key_and_context():
    env = sign(b"data", KEY, context=b"a")
    with pytest.raises(BadSignature, match="key id"):
        verify(env, OTHER, context=b"a")
    with pytest.raises(BadSignature, match="mismatch"):
        verify(env, KEY, context=b"b")
    with pytest.raises(BadSignature):
        verify(env, KEY)  # default context differs


def test_key_rotation_picks_by_key_id():
    old_env = sign(b"old", KEY)
    new_env = sign(b"new", OTHER)
    ring = [OTHER, KEY]  # the first signs, all verify
    assert verify(old_env, ring) == b"old"
    assert verify(new_env, ring) == b"new"


def test_unknown_version_and_algorithm():
    env = bytearray(sign(b"d", KEY))
    env[4] = 9
    with pytest.raises(BadSignature, match="version 9"):
        verify(bytes(env), KEY)
    env = bytearray(sign(b"d", KEY))
    env[5] = 7
    with pytest.raises(BadSignature, match="algorithm"):
        verify(bytes(env), KEY)


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        sign(b"d", b"short")
    with pytest.raises(ValueError):
        verify(sign(b"d", KEY), [KEY, b"x" * 31])
    with pytest.raises(TypeError):
        sign(b"d", "a string key that is long enough to pass the length")
    assert len(generate_key()) == 32 and generate_key() != generate_key()


def test_max_age_rejects_old_and_future():
    now = time.time_ns()
    old = sign(b"d", KEY, created_ns=now - 3600 * 10**9)
    with pytest.raises(BadSignature, match="old"):
        verify(old, KEY, max_age=60)
    assert verify(old, KEY, max_age=7200) == b"d"
    future = sign(b"d", KEY, created_ns=now + 3600 * 10**9)
    with pytest.raises(BadSignature, match="future"):
        verify(future, KEY, max_age=60)
    assert verify(future, KEY) == b"d"  # no max_age: time is not checked


def test_detached_tags():
    tag = sign_detached(b"file contents", KEY)
    assert len(tag) == 46
    assert verify_detached(b"file contents", tag, [OTHER, KEY])
    with pytest.raises(BadSignature):
        verify_detached(b"file contents!", tag, KEY)
    with pytest.raises(BadSignature):
        verify_detached(b"file contents", tag, OTHER)
    bad = bytearray(tag)
    bad[-1] ^= 1
    with pytest.raises(BadSignature):
        verify_detached(b"file contents", bytes(bad), KEY)
    # a detached tag is not an envelope tag for the same bytes
    env = sign(b"file contents", KEY)
    assert env[-32:] != tag[-32:]


class Gadget:
    def __init__(self, n):
        self.n = n


def test_signed_pickles_verify_first_then_restrict():
    blob = signed_dumps({"a": [1, 2, 3]}, KEY)
    assert signed_loads(blob, KEY) == {"a": [1, 2, 3]}
    tampered = bytearray(blob)
    tampered[40] ^= 0xFF
    with pytest.raises(BadSignature):
        signed_loads(bytes(tampered), KEY)
    # a correctly signed but dangerous payload is still refused by the loader
    evil = signed_dumps(os.system, KEY)
    with pytest.raises(ForbiddenGlobal):
        signed_loads(evil, KEY)
    g = signed_dumps(Gadget(5), KEY)
    with pytest.raises(ForbiddenGlobal):
        signed_loads(g, KEY)
    assert signed_loads(g, KEY, allow=[Gadget]).n == 5
    assert signed_loads(g, KEY, allow=ALL).n == 5
    # a signed pickle does not verify as a plain envelope of another context
    with pytest.raises(BadSignature):
        verify(blob, KEY)
    assert pickle.loads(verify(blob, KEY, context=b"binrec.pickle")) == {"a": [1, 2, 3]}


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=20))
def test_property_sign_verify(payload, context):
    assert verify(sign(payload, KEY, context=context), [OTHER, KEY], context=context) == payload


# -- specifications pinned by mutation testing (issue 11) -----------------------------------------
#
# Oracles: the layout in signing.py's module docstring, built and read with struct; tags recomputed
# with hmac/hashlib; pickles made by plain pickle.  Times are injected (created_ns / now_ns), never
# measured, except where a test is about "now" itself, and then with margins of an hour.

SEC = 10**9
T0 = 1_700_000_000 * SEC  # an arbitrary fixed creation time (2023-11-14)


def _subkey(key: bytes, context: bytes) -> bytes:
    return hmac.new(key, b"binrec.signing.v1\x00" + context, hashlib.sha256).digest()


def _forge_envelope(
    payload: bytes,
    *,
    key: bytes = KEY,
    context: bytes = b"",
    created_ns: int = T0,
    magic: bytes = b"BRSG",
    version: int = 1,
    alg: int = 1,
) -> bytes:
    """An envelope built from the documented layout, with a valid HMAC over whatever header it has."""
    kid = hmac.new(key, b"binrec key id", hashlib.sha256).digest()[:8]
    head = struct.pack("<4sBB8sH", magic, version, alg, kid, len(context)) + context
    head += struct.pack("<qQ", created_ns, len(payload))
    return head + payload + hmac.new(_subkey(key, context), head + payload, hashlib.sha256).digest()


def _forge_detached_tag(
    payload: bytes, *, key: bytes = KEY, context: bytes = b"", magic: bytes = b"BRDT", version: int = 1, alg: int = 1
) -> bytes:
    kid = hmac.new(key, b"binrec key id", hashlib.sha256).digest()[:8]
    head = struct.pack("<4sBB8s", magic, version, alg, kid)
    return head + hmac.new(_subkey(key, b"detached\x00" + context), head + payload, hashlib.sha256).digest()


def test_forged_layout_matches_sign():
    # the oracle above is the documented layout: sign() produces exactly it
    assert sign(b"payload", KEY, context=b"ctx", created_ns=T0) == _forge_envelope(b"payload", context=b"ctx")
    assert sign_detached(b"payload", KEY, context=b"ctx") == _forge_detached_tag(b"payload", context=b"ctx")


# max_age on verify: an envelope exactly max_age old is accepted, one nanosecond older is refused
# (README: "an envelope older than max_age ... raises"), measured against now_ns when given.


def test_max_age_accepts_an_envelope_exactly_max_age_old():
    env = sign(b"d", KEY, created_ns=T0)
    assert verify(env, KEY, max_age=60, now_ns=T0 + 60 * SEC) == b"d"


def test_max_age_refuses_an_envelope_one_nanosecond_older_than_max_age():
    env = sign(b"d", KEY, created_ns=T0)
    with pytest.raises(BadSignature, match="older than max_age"):
        verify(env, KEY, max_age=1, now_ns=T0 + SEC + 1)


def test_max_age_accepts_an_envelope_verified_at_its_creation_instant():
    env = sign(b"d", KEY, created_ns=T0)
    assert verify(env, KEY, max_age=60, now_ns=T0) == b"d"
    assert verify(env, KEY, max_age=0, now_ns=T0) == b"d"


def test_max_age_accepts_a_fresh_envelope_against_the_real_clock():
    # no created_ns and no now_ns: both are time.time_ns(); an hour of margin
    assert verify(sign(b"fresh", KEY), KEY, max_age=3600) == b"fresh"


def test_max_age_measures_age_against_now_ns_not_the_clock():
    # the envelope is 53 years old by the wall clock but 30 s old at now_ns
    env = sign(b"d", KEY, created_ns=0)
    assert verify(env, KEY, max_age=60, now_ns=30 * SEC) == b"d"
    # and brand new by the wall clock, but an hour old at now_ns
    env = sign(b"d", KEY)
    with pytest.raises(BadSignature, match="older than max_age"):
        verify(env, KEY, max_age=60, now_ns=time.time_ns() + 3600 * SEC)


def test_max_age_accepts_an_envelope_dated_exactly_one_second_in_the_future():
    # README: envelopes dated *more than* 1 s in the future are refused (clock skew allowance)
    env = sign(b"d", KEY, created_ns=T0 + SEC)
    assert verify(env, KEY, max_age=60, now_ns=T0) == b"d"


def test_max_age_refuses_an_envelope_dated_one_second_and_one_nanosecond_in_the_future():
    env = sign(b"d", KEY, created_ns=T0 + SEC + 1)
    with pytest.raises(BadSignature, match=r"dated 1\.000 s in the future"):
        verify(env, KEY, max_age=60, now_ns=T0)


def test_max_age_nan_is_refused_rather_than_passing_every_envelope():
    # NaN compares false with every age, so "age > max_age" would never refuse
    old = sign(b"d", KEY, created_ns=0)
    with pytest.raises(ValueError, match="NaN"):
        verify(old, KEY, max_age=float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        signed_loads(sign(pickle.dumps(1), KEY, context=b"binrec.pickle", created_ns=0), KEY, max_age=float("nan"))


def test_max_age_infinite_accepts_any_past_envelope():
    assert verify(sign(b"d", KEY, created_ns=-(2**63)), KEY, max_age=float("inf"), now_ns=T0) == b"d"


def test_without_max_age_now_ns_is_not_checked():
    env = sign(b"d", KEY, created_ns=T0)
    assert verify(env, KEY, now_ns=T0 + 10**6 * SEC) == b"d"
    assert verify(env, KEY, now_ns=T0 - 10**6 * SEC) == b"d"


# signed_loads(max_age=): the same rule, against the real clock (signed_loads has no now_ns)


def test_signed_loads_max_age_refuses_an_old_signed_pickle():
    # a signed pickle is an envelope of plain pickle bytes in context b"binrec.pickle"
    old = sign(pickle.dumps([1, 2]), KEY, context=b"binrec.pickle", created_ns=time.time_ns() - 3600 * SEC)
    assert signed_loads(old, KEY) == [1, 2]  # no max_age: no age check
    with pytest.raises(BadSignature, match="older than max_age"):
        signed_loads(old, KEY, max_age=60)


def test_signed_loads_max_age_refuses_a_signed_pickle_from_the_future():
    future = sign(pickle.dumps([1, 2]), KEY, context=b"binrec.pickle", created_ns=time.time_ns() + 3600 * SEC)
    with pytest.raises(BadSignature, match="in the future"):
        signed_loads(future, KEY, max_age=60)


def test_signed_loads_max_age_accepts_a_fresh_signed_pickle():
    assert signed_loads(signed_dumps({"a": 1}, KEY), KEY, max_age=3600) == {"a": 1}
    assert signed_loads(signed_dumps({"a": 1}, KEY), KEY, max_age=3600, allow=ALL) == {"a": 1}


# format checks hold even when the HMAC is valid (a future version may change the layout)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"magic": b"BRSX"}, "bad magic"),
        ({"version": 2}, "version 2"),
        ({"version": 0}, "version 0"),
        ({"alg": 3}, "algorithm id 3"),
        ({"alg": 255}, "algorithm id 255"),
        ({"alg": 0}, "algorithm id 0"),
    ],
    ids=["magic", "version-2", "version-0", "alg-3", "alg-255", "alg-0"],
)
def test_envelope_with_valid_hmac_but_unknown_format_is_refused(field, message):
    env = _forge_envelope(b"d", **field)
    with pytest.raises(BadSignature, match=message):
        verify(env, KEY)


@pytest.mark.parametrize(
    "field",
    [{"magic": b"BRDX"}, {"magic": b"BRSG"}, {"version": 2}, {"version": 0}, {"alg": 3}, {"alg": 0}],
    ids=["magic", "envelope-magic", "version-2", "version-0", "alg-3", "alg-0"],
)
def test_detached_tag_with_valid_hmac_but_unknown_format_is_refused(field):
    tag = _forge_detached_tag(b"data", **field)
    with pytest.raises(BadSignature, match="unknown version"):
        verify_detached(b"data", tag, KEY)


def test_context_length_pointing_past_the_end_is_bad_signature():
    # the header claims a context so long that the time/length fields would lie beyond the envelope
    env = bytearray(sign(b"p" * 10, KEY))
    for clen in range(len(env) - 48, len(env) + 40):
        env[14:16] = struct.pack("<H", clen)
        with pytest.raises(BadSignature):
            verify(bytes(env), KEY)


def test_detached_tag_of_the_wrong_length_is_refused():
    tag = sign_detached(b"data", KEY)
    for bad in (tag[:-1], tag + b"\x00", tag[:14], b""):
        with pytest.raises(BadSignature, match="must be 46 bytes"):
            verify_detached(b"data", bad, KEY)


# inputs: str contexts, long contexts, non-byte buffers


def test_str_context_is_its_utf8_encoding():
    env = sign(b"d", KEY, context="café")
    assert env[16:21] == b"caf\xc3\xa9" and struct.unpack_from("<H", env, 14)[0] == 5
    assert verify(env, KEY, context=b"caf\xc3\xa9") == b"d"
    assert verify(sign(b"d", KEY, context=b"caf\xc3\xa9"), KEY, context="café") == b"d"


def test_context_of_65535_bytes_is_accepted():
    ctx = b"c" * 0xFFFF
    env = sign(b"d", KEY, context=ctx)
    assert struct.unpack_from("<H", env, 14)[0] == 0xFFFF
    assert verify(env, KEY, context=ctx) == b"d"


def test_context_of_65536_bytes_is_refused_with_value_error():
    with pytest.raises(ValueError, match="65535"):
        sign(b"d", KEY, context=b"c" * 0x10000)
    with pytest.raises(ValueError, match="65535"):
        verify(sign(b"d", KEY), KEY, context=b"c" * 0x10000)


def test_payload_of_any_buffer_type_signs_its_bytes():
    # oracle: the buffer's raw bytes (array.tobytes) signed as bytes
    words = array.array("I", [1, 2, 0xFFFFFFFF])
    env = sign(memoryview(words), KEY, created_ns=T0)
    assert env == _forge_envelope(words.tobytes())
    assert sign(words, KEY, created_ns=T0) == env
    assert sign(bytearray(b"abc"), KEY, created_ns=T0) == _forge_envelope(b"abc")
    assert verify(env, KEY) == words.tobytes()


def test_envelope_of_any_buffer_type_verifies():
    env = sign(b"\x00\x01" * 8, KEY)
    as_words = array.array("H")
    as_words.frombytes(env)
    assert verify(memoryview(as_words), KEY) == b"\x00\x01" * 8
    assert verify(bytearray(env), KEY) == b"\x00\x01" * 8


def test_a_string_key_is_refused_with_type_error():
    with pytest.raises(TypeError, match="bytes, not str"):
        verify(sign(b"d", KEY), "k" * 40)


def test_an_empty_key_list_is_refused():
    with pytest.raises(ValueError, match="no keys"):
        verify(sign(b"d", KEY), [])
    with pytest.raises(ValueError, match="no keys"):
        verify_detached(b"d", sign_detached(b"d", KEY), [])


# signed_dumps: the payload is plain pickle's output


def test_signed_dumps_uses_the_highest_pickle_protocol_by_default():
    obj = {"a": [1, 2.5, "x"]}
    payload = verify(signed_dumps(obj, KEY), KEY, context=b"binrec.pickle")
    assert payload == pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def test_signed_dumps_uses_the_protocol_given():
    obj = {"a": [1, 2.5, "x"]}
    payload = verify(signed_dumps(obj, KEY, protocol=2), KEY, context=b"binrec.pickle")
    assert payload == pickle.dumps(obj, protocol=2)
