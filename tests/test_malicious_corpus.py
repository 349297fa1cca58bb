"""The malicious-pickle corpus (tests/corpus): every loader refuses every
entry, with no side effect, checked by an audit hook in a child process.

The child preloads what the loaders legitimately import, then turns on a
``sys.addaudithook`` hook that records and aborts any dangerous event
(process creation, exec/compile, sockets, writes, deletions, ctypes, a new
import...).  A control case runs plain ``pickle.loads`` behind the same
hook and must be caught, so this test can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"
sys.path.insert(0, str(CORPUS))
import make_malicious  # noqa: E402

CHILD = r"""
import io, json, os, pickle, sys, tempfile, types, warnings
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import make_malicious
from binrec import _pickle_versioned, pickling
from binrec.checkpoint import CheckpointStore
from binrec import checkpoint

# what the loaders import legitimately (the allowlisted modules), loaded now
import collections, datetime, decimal, fractions, pathlib, uuid, copyreg, _codecs, enum, numpy
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import numpy.core.multiarray, numpy.core.numeric, numpy._core.multiarray, numpy._core.numeric

mode = sys.argv[2]
tmp = Path(tempfile.mkdtemp())
entries = make_malicious.entries(str(tmp))
store = CheckpointStore(tmp / "ckpt")
fake = types.SimpleNamespace(**{k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
for i, e in enumerate(entries):  # everything written before the hook turns on
    (tmp / f"{i}.pkl").write_bytes(e.data)
    (tmp / f"{i}.ver").write_bytes(_pickle_versioned._VERSION_HEADER.pack(_pickle_versioned._VERSION_MAGIC, 1) + e.data)
    fake.dumps = lambda *a, _d=e.data, **k: _d
    checkpoint.pickle = fake
    store.save(f"c{i}", None)
checkpoint.pickle = pickle

DANGER = ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.fork", "os.forkpty", "os.spawn",
          "exec", "compile", "os.remove", "os.rename", "os.rmdir", "shutil.rmtree", "webbrowser.open",
          "os.kill", "os.startfile", "os.putenv", "os.chmod", "os.truncate", "marshal.loads", "urllib.Request",
          "http.client.connect", "smtplib.connect", "pty.spawn")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
active = False
events = []

def hook(event, args):
    if not active:
        return
    bad = event in DANGER or event.startswith(("socket.", "ctypes.", "os.exec", "os.posix_spawn"))
    if event == "open":
        mode, flags = args[1], args[2]
        bad = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
    if event == "import" and args[0] not in sys.modules:
        bad = True
    if bad:
        events.append(f"{event} {str(args)[:80]}")
        raise RuntimeError(f"audit hook stopped {event}")

def loaders(i):
    yield "safe_loads", lambda: pickling.safe_loads(entries[i].data)
    yield "safe_load", lambda: pickling.safe_load(tmp / f"{i}.pkl")
    yield "load_many", lambda: list(pickling.load_many(tmp / f"{i}.pkl", allow=None))
    yield "load_many_bytesio", lambda: list(pickling.load_many(io.BytesIO(entries[i].data), allow=None))
    yield "load_many_pipe", lambda: list(pickling.load_many(_Pipe(entries[i].data), allow=None))
    yield "load_versioned", lambda: pickling.load_versioned(tmp / f"{i}.ver", current=1, allow=None)
    yield "checkpoint", lambda: store.load(f"c{i}")

class _Pipe(io.RawIOBase):
    def __init__(self, data):
        self._b = io.BytesIO(data)
    def readable(self):
        return True
    def readinto(self, b):
        return self._b.readinto(b)

sys.addaudithook(hook)
results = []
if mode == "control":
    active = True
    try:
        pickle.loads(entries[0].data)  # plain pickle: the hook must catch it
        outcome = "loaded"
    except RuntimeError as exc:
        outcome = str(exc)
    active = False
    results.append({"entry": entries[0].name, "loader": "pickle.loads", "outcome": outcome, "events": events[:]})
else:
    for i, e in enumerate(entries):
        for name, load in loaders(i):
            events.clear()
            active = True
            try:
                value = load()
                outcome = "loaded " + repr(value)[:40]
            except pickling.PickleSecurityError as exc:
                outcome = "refused " + type(exc).__name__
            except Exception as exc:
                outcome = f"error {type(exc).__module__}.{type(exc).__name__}: {str(exc)[:80]}"
            finally:
                active = False
            results.append({"entry": e.name, "loader": name, "outcome": outcome, "events": events[:]})
        active = True
        report = pickling.inspect(e.data)
        active = False
        results.append({"entry": e.name, "loader": "inspect", "outcome": report.verdict.split(":")[0], "events": events[:]})
print(json.dumps(results))
"""


def run_child(mode: str) -> list[dict]:
    res = subprocess.run([sys.executable, "-c", CHILD, str(CORPUS), mode], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


def test_corpus_files_are_what_the_generator_makes(tmp_path):
    made = {p.name: p.read_bytes() for p in make_malicious.write(tmp_path)}
    stored = {p.name: p.read_bytes() for p in CORPUS.glob("*.pkl")}
    assert made == stored, "run: python tests/corpus/make_malicious.py"
    assert len(made) >= 36


def test_the_audit_hook_catches_plain_pickle():
    (result,) = run_child("control")
    assert result["outcome"].startswith("audit hook stopped"), result
    assert any(ev.startswith("os.system") for ev in result["events"])


@pytest.fixture(scope="module")
def corpus_results():
    return run_child("loaders")


def test_every_loader_refuses_every_entry_with_no_side_effect(corpus_results):
    by_entry = {e.name: e for e in make_malicious.entries()}
    problems = []
    for r in corpus_results:
        entry = by_entry[r["entry"]]
        if r["events"]:
            problems.append(f"{r['entry']} / {r['loader']}: side effects {r['events']}")
        outcome = r["outcome"]
        if r["loader"] == "inspect":
            ok = outcome == "unsafe"
        elif r["loader"] == "checkpoint":
            ok = outcome.startswith("refused") or (
                entry.harmless_first and outcome.startswith(("loaded", "error binrec.checkpoint.CorruptSkeleton"))
            )
        elif entry.harmless_when_peeked and r["loader"] in ("load_many", "load_many_pipe"):
            # buffered readers peek, so the unpickler reads linearly and finds garbage
            ok = outcome.startswith(("refused", "error binrec.pickling.TruncatedError"))
        elif entry.harmless_first and r["loader"] in ("safe_loads", "safe_load", "load_versioned"):
            ok = outcome.startswith("loaded 1")  # one pickle read: the harmless first one
        else:
            ok = outcome.startswith("refused")
        if not ok:
            problems.append(f"{r['entry']} / {r['loader']}: {outcome}")
    assert not problems, "\n".join(problems)
    assert len(corpus_results) == 8 * len(by_entry)
