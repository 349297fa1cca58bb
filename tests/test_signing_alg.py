"""binrec.signing: algorithm agility (HMAC-SHA256 and keyed BLAKE3).

Oracles: the ``blake3`` package itself (keyed mode and derive-key mode,
computed here from the documented layout), :mod:`hmac`/:mod:`hashlib`,
:mod:`struct` for the headers and plain :mod:`pickle` for payloads.  The
"package missing" path is tested with the import blocked
(``sys.modules["blake3"] = None``), in process and in a fresh interpreter.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import struct
import subprocess
import sys
import textwrap

import pytest

from binrec import signing
from binrec.signing import (
    BadSignature,
    UnsupportedAlgorithm,
    sign,
    sign_detached,
    signed_dumps,
    signed_loads,
    verify,
    verify_detached,
)

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
LONG_KEY = bytes(range(40))  # fine for HMAC-SHA256, refused by BLAKE3's keyed mode
DERIVE_CONTEXT = "binrec 2026-11-28 signing subkey v1"  # docs/envelope-format.md


@pytest.fixture
def b3():
    """The blake3 package (the oracle); tests that need it skip without it."""
    return pytest.importorskip("blake3")


def _b3_subkey(b3, key: bytes, context: bytes) -> bytes:
    """BLAKE3 derive-key mode over key + context, as documented."""
    return b3.blake3(key + context, derive_key_context=DERIVE_CONTEXT).digest()


def _forged_blake3_envelope(payload: bytes, key: bytes = KEY) -> bytes:
    """A well-formed envelope claiming BLAKE3 (algorithm id 2), made without the blake3 package
    (its tag is zeros): what a reader without the package is handed."""
    head = struct.pack("<4sBB8sH", b"BRSG", 1, 2, _kid(key), 0) + struct.pack("<qQ", 0, len(payload))
    return head + payload + bytes(32)


def _kid(key: bytes) -> bytes:
    return hmac.new(key, b"binrec key id", hashlib.sha256).digest()[:8]


@pytest.fixture
def no_blake3(monkeypatch):
    """As if the blake3 package were not installed (importing it fails)."""
    monkeypatch.setitem(sys.modules, "blake3", None)


# -- envelopes -------------------------------------------------------------------


def test_blake3_envelope_matches_the_documented_layout(b3):
    env = sign(b"payload", KEY, context=b"ctx", created_ns=123, alg="blake3")
    head = struct.pack("<4sBB8sH", b"BRSG", 1, 2, _kid(KEY), 3) + b"ctx" + struct.pack("<qQ", 123, 7)
    tag = b3.blake3(head + b"payload", key=_b3_subkey(b3, KEY, b"ctx")).digest()
    assert env == head + b"payload" + tag


def test_blake3_envelope_verifies_without_naming_the_algorithm(b3):
    env = sign(b"payload", KEY, context=b"ctx", alg="blake3")
    assert verify(env, KEY, context=b"ctx") == b"payload"


def test_default_algorithm_is_still_hmac_sha256():
    env = sign(b"payload", KEY, created_ns=0)
    assert env[5] == 1
    sub = hmac.new(KEY, b"binrec.signing.v1\x00", hashlib.sha256).digest()
    assert env[-32:] == hmac.new(sub, env[:-32], hashlib.sha256).digest()


def test_every_tampered_byte_of_a_blake3_envelope_is_detected(b3):
    env = sign(b"some payload bytes", KEY, context=b"c", alg="blake3")
    for i in range(len(env)):
        bad = bytearray(env)
        bad[i] ^= 0x01
        with pytest.raises((BadSignature, UnsupportedAlgorithm)) as info:
            verify(bytes(bad), KEY, context=b"c")
        assert info.type is BadSignature


def test_blake3_context_separates_envelopes(b3):
    env = sign(b"d", KEY, context=b"one", alg="blake3")
    with pytest.raises(BadSignature, match="signature mismatch"):
        verify(env, KEY, context=b"two")


@pytest.mark.parametrize(("made", "claimed"), [("hmac-sha256", 2), ("blake3", 1)])
def test_rewriting_the_algorithm_byte_is_detected(b3, made, claimed):
    env = bytearray(sign(b"data", KEY, alg=made))
    env[5] = claimed
    with pytest.raises(BadSignature, match="signature mismatch"):
        verify(bytes(env), KEY)


def test_key_list_picks_by_key_id_across_algorithms(b3):
    ring = [OTHER, KEY, LONG_KEY]
    assert verify(sign(b"a", KEY, alg="blake3"), ring) == b"a"
    assert verify(sign(b"b", OTHER, alg="blake3"), ring) == b"b"
    assert verify(sign(b"c", LONG_KEY), ring) == b"c"


def test_verify_with_alg_refuses_the_other_algorithm(b3):
    with pytest.raises(BadSignature, match="signed with blake3, but alg='hmac-sha256' was required"):
        verify(sign(b"d", KEY, alg="blake3"), KEY, alg="hmac-sha256")
    with pytest.raises(BadSignature, match="signed with hmac-sha256, but alg='blake3' was required"):
        verify(sign(b"d", KEY), KEY, alg="blake3")


def test_verify_with_alg_accepts_its_own_algorithm(b3):
    assert verify(sign(b"d", KEY, alg="blake3"), KEY, alg="blake3") == b"d"


@pytest.mark.parametrize(
    "call",
    [
        lambda: sign(b"d", LONG_KEY, alg="blake3"),
        lambda: sign_detached(b"d", LONG_KEY, alg="blake3"),
        lambda: signed_dumps(1, LONG_KEY, alg="blake3"),
    ],
    ids=["sign", "sign_detached", "signed_dumps"],
)
def test_blake3_refuses_a_key_that_is_not_32_bytes(b3, call):
    with pytest.raises(ValueError, match=r"key of 40 bytes refused: alg='blake3' takes keys of exactly 32 bytes"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: sign(b"d", KEY, alg="md5"),
        lambda: sign_detached(b"d", KEY, alg="HMAC-SHA256"),
        lambda: signed_dumps(1, KEY, alg="sha256"),
        lambda: verify(sign(b"d", KEY), KEY, alg="blake2b"),
    ],
    ids=["sign", "sign_detached", "signed_dumps", "verify"],
)
def test_unknown_algorithm_name_is_a_value_error_naming_alg(call):
    with pytest.raises(ValueError, match=r"alg='.*' is not a signature algorithm: use one of 'hmac-sha256', 'blake3'"):
        call()


def test_blake3_envelope_whose_key_id_names_a_long_key_is_refused(b3):
    # forge: an HMAC envelope by a 40-byte key, its algorithm byte rewritten to BLAKE3;
    # no BLAKE3 envelope can have been made with that key
    env = bytearray(sign(b"d", LONG_KEY))
    env[5] = 2
    with pytest.raises(BadSignature, match="blake3, which takes 32-byte keys"):
        verify(bytes(env), [KEY, LONG_KEY])


# -- detached tags -------------------------------------------------------------------


def test_blake3_detached_tag_matches_the_documented_layout(b3):
    tag = sign_detached(b"data", KEY, context=b"side", alg="blake3")
    head = struct.pack("<4sBB8s", b"BRDT", 1, 2, _kid(KEY))
    assert tag == head + b3.blake3(head + b"data", key=_b3_subkey(b3, KEY, b"detached\x00side")).digest()
    assert len(tag) == 46


def test_blake3_detached_tag_verifies_and_detects_a_changed_payload(b3):
    tag = sign_detached(b"data", KEY, alg="blake3")
    assert verify_detached(b"data", tag, [OTHER, KEY]) is True
    with pytest.raises(BadSignature, match="signature mismatch"):
        verify_detached(b"datA", tag, KEY)


def test_detached_verify_with_alg_refuses_the_other_algorithm(b3):
    with pytest.raises(BadSignature, match="signed with hmac-sha256, but alg='blake3' was required"):
        verify_detached(b"data", sign_detached(b"data", KEY), KEY, alg="blake3")


# -- signed pickles ----------------------------------------------------------------------


def test_blake3_signed_pickle_round_trips_and_holds_a_plain_pickle(b3):
    obj = {"a": [1, 2.5, "x"], "b": b"\x00" * 1000}
    blob = signed_dumps(obj, KEY, alg="blake3")
    assert blob[5] == 2
    assert signed_loads(blob, KEY) == obj
    assert pickle.loads(verify(blob, KEY, context=b"binrec.pickle")) == obj


def test_signed_loads_with_alg_refuses_the_other_algorithm(b3):
    with pytest.raises(BadSignature, match="but alg='blake3' was required"):
        signed_loads(signed_dumps(1, KEY), KEY, alg="blake3")


# -- the blake3 package missing (import blocked) -------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: sign(b"d", KEY, alg="blake3"),
        lambda: sign_detached(b"d", KEY, alg="blake3"),
        lambda: signed_dumps(1, KEY, alg="blake3"),
    ],
    ids=["sign", "sign_detached", "signed_dumps"],
)
def test_signing_with_blake3_missing_raises_unsupported_algorithm(no_blake3, call):
    with pytest.raises(UnsupportedAlgorithm, match=r'needs the blake3 package: pip install "binrec\[fast\]"') as info:
        call()
    assert not isinstance(info.value, BadSignature)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no ImportError chained


@pytest.mark.parametrize(
    "call",
    [
        lambda: verify(_forged_blake3_envelope(b"d"), KEY),
        lambda: signed_loads(_forged_blake3_envelope(pickle.dumps(1)), KEY, context=b""),
        lambda: verify_detached(b"d", struct.pack("<4sBB8s", b"BRDT", 1, 2, _kid(KEY)) + bytes(32), KEY),
    ],
    ids=["verify", "signed_loads", "verify_detached"],
)
def test_reading_blake3_data_with_blake3_missing_raises_unsupported_algorithm(no_blake3, call):
    with pytest.raises(UnsupportedAlgorithm, match=r'needs the blake3 package: pip install "binrec\[fast\]"'):
        call()


def test_hmac_sha256_needs_no_blake3(no_blake3):
    assert signed_loads(signed_dumps([1, 2], KEY), KEY) == [1, 2]
    assert verify_detached(b"d", sign_detached(b"d", KEY), KEY)


def test_fresh_interpreter_without_blake3_reports_the_extra_not_an_import_error(tmp_path):
    env_file = tmp_path / "env.bin"
    env_file.write_bytes(_forged_blake3_envelope(b"d"))
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["blake3"] = None
        from binrec import signing
        signing.verify(open({str(env_file)!r}, "rb").read(), bytes(range(32)))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        "binrec.signing.UnsupportedAlgorithm: signature algorithm 'blake3' needs the blake3 package:"
        ' pip install "binrec[fast]"'
    )
    assert "ImportError" not in proc.stderr and "ModuleNotFoundError" not in proc.stderr


def test_algorithms_lists_the_names_alg_takes():
    assert signing.ALGORITHMS == ("hmac-sha256", "blake3")
