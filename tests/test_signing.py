"""binrec.signing: envelopes, detached tags, signed pickles."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
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
