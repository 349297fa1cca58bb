"""Hand-written mutants, test selections and scoring for scripts/mutation.sh.

mutmut 3 mutates the bodies of undecorated functions only: it never touches
module-level code (``MAGIC``, ``DEFAULT_ALLOW``, ``NEVER_ALLOW``, _layout's
size tables) nor functions under a decorator (``@functools.lru_cache``:
signing's ``_key_id``/``subkey``, checkpoint's ``_zeros_operator``).  Those
are exactly the places where a wrong value is silently shared by every call,
so :data:`MANUAL` lists reviewed text patches for them.  Each is applied alone
to the scratch copy and the module's test selection runs in a fresh
interpreter (fresh bytecode cache too): the mutant is killed when the tests
fail.

Subcommands (all used by scripts/mutation.sh; each prints to stdout):

``tests MODULE``
    the module's test selection, one path a line (existing files only)
``configure MODULE PYPROJECT``
    append ``only_mutate``, ``pytest_add_cli_args_test_selection`` and
    ``preload_modules_file`` (written next to PYPROJECT from :data:`PRELOAD`)
    for MODULE to the ``[tool.mutmut]`` table of PYPROJECT (a scratch copy)
``manual MODULE ROOT``
    run MODULE's hand-written mutants against the tree at ROOT; one line
    ``name: status`` per mutant (``killed``/``survived``/``stale``)
``recheck MODULE ROOT NAMES_FILE MUTMUT``
    rerun the mutmut survivors named in NAMES_FILE, each applied to the
    source and tested with the whole selection in a fresh interpreter
    (see :func:`recheck`); one line ``name: status`` per mutant
``score REVIEWED RESULTS_DIR MODULE...``
    combine ``RESULTS_DIR/<module>.mutmut`` (``mutmut results --all true``),
    ``.recheck`` and ``.manual`` with the reviewed list and print the
    table; exit status 1 when a module has an unreviewed survivor or a
    stale manual mutant.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: Test files that specify each module's behaviour.  mutmut runs, per mutant,
#: only the tests of this selection that call the mutated function.
TESTS: dict[str, list[str]] = {
    "signing": ["tests/test_signing.py", "tests/test_golden.py"],
    "_layout": [
        "tests/test_layout.py",
        "tests/test_records.py",
        "tests/test_cpython_struct.py",
        "tests/test_golden.py",
    ],
    "files": ["tests/test_files.py", "tests/test_files_spec.py", "tests/test_cli.py", "tests/test_golden.py"],
    "_coerce": ["tests/test_records.py", "tests/test_cpython_struct.py", "tests/test_hardening.py"],
    "checkpoint": ["tests/test_checkpoint.py", "tests/test_golden.py"],
    "_crc32": ["tests/test_checkpoint.py", "tests/test_golden.py"],
}
# The restricted unpickler, split out of pickling.py (issue 12): the allowlist
# policy, the loader, and the rest of the pickling facade share one selection.
_PICKLING_TESTS = [
    "tests/test_pickling.py",
    "tests/test_pickle_scan.py",
    "tests/test_malicious_corpus.py",
    "tests/test_golden.py",
]
for _mod in ("pickling", "_pickle_policy", "_pickle_restricted", "_pickle_stream", "_pickle_versioned", "_pickle_inspect"):
    TESTS[_mod] = _PICKLING_TESTS


#: What the fork server imports before it forks a process per mutant (the
#: "import" warmup): slow third-party and standard modules the tests use, never
#: binrec itself, whose import-time code and caches must run under each mutant.
PRELOAD = """numpy hypothesis hypothesis.strategies hypothesis.extra.numpy _hypothesis_pytestplugin
_pytest.python _pytest.runner _pytest.assertion.rewrite _pytest.fixtures _pytest.mark _pytest.capture
decimal fractions uuid pathlib hmac hashlib zlib pickle datetime collections subprocess threading
unittest sysconfig traceback json random shutil tempfile sqlite3 mmap""".split()


@dataclass(frozen=True)
class Mutant:
    module: str  # binrec module, e.g. "signing"
    ident: str  # short stable id; the mutant's name is manual.<module>.<ident>
    description: str
    old: str  # must occur exactly once in src/binrec/<module>.py
    new: str

    @property
    def name(self) -> str:
        return f"manual.{self.module}.{self.ident}"


M = Mutant
#: Reviewed hand-written mutants.  Each is a plausible bug that mutmut cannot
#: generate.  Keep ``old`` short so that unrelated edits do not make it stale.
# fmt: off
MANUAL: list[Mutant] = [
    # -- signing: format constants and the cached derivations
    M("signing", "magic", "envelope magic changed", 'MAGIC = b"BRSG"', 'MAGIC = b"BRSH"'),
    M("signing", "version", "envelope format version 2", "VERSION = 1\n", "VERSION = 2\n"),
    M("signing", "alg-id", "algorithm id 2", "ALG_HMAC_SHA256 = 1", "ALG_HMAC_SHA256 = 2"),
    M("signing", "min-key", "16-byte keys accepted", "MIN_KEY_BYTES = 32", "MIN_KEY_BYTES = 16"),
    M("signing", "detached-magic", "detached tag magic changed", '_DETACHED_MAGIC = b"BRDT"', '_DETACHED_MAGIC = b"BRDU"'),
    M("signing", "pickle-context", "signed_dumps' default context changed",
      '_PICKLE_CONTEXT = b"binrec.pickle"', '_PICKLE_CONTEXT = b"binrec.pickles"'),
    M("signing", "skew", "two seconds of future clock skew tolerated", "_FUTURE_SKEW_S = 1.0", "_FUTURE_SKEW_S = 2.0"),
    M("signing", "prefix-struct", "context length read as one byte",
      '_PREFIX = struct.Struct("<4sBB8sH")', '_PREFIX = struct.Struct("<4sBB8sB")'),
    M("signing", "middle-struct", "creation time unsigned",
      '_MIDDLE = struct.Struct("<qQ")', '_MIDDLE = struct.Struct("<QQ")'),
    M("signing", "key-id-label", "key id derived with another label",
      'hmac.digest(key, b"binrec key id", "sha256")[:8]', 'hmac.digest(key, b"binrec key-id", "sha256")[:8]'),
    M("signing", "key-id-bytes", "key id taken from the wrong digest bytes",
      'hmac.digest(key, b"binrec key id", "sha256")[:8]', 'hmac.digest(key, b"binrec key id", "sha256")[8:16]'),
    M("signing", "subkey-no-context", "subkey ignores the context (a tag verifies for every purpose)",
      'b"binrec.signing.v1\\x00" + context', 'b"binrec.signing.v1\\x00"'),
    M("signing", "subkey-label", "subkey derived with another label",
      'b"binrec.signing.v1\\x00" + context', 'b"binrec.signing.v2\\x00" + context'),
    M("signing", "subkey-is-key", "the tag is made with the key itself, no per-context subkey",
      'return hmac.digest(key, b"binrec.signing.v1\\x00" + context, "sha256")', "return key"),
    # -- _layout: the size, alignment, code and range tables
    M("_layout", "size-q", "standard size of q is 4", '"q": 8, "Q": 8', '"q": 4, "Q": 8'),
    M("_layout", "size-e", "standard size of e is 4", '"e": 2, "f": 4', '"e": 4, "f": 4'),
    M("_layout", "size-bool", "standard size of ? is 2", '"?": 1, "h": 2', '"?": 2, "h": 2'),
    M("_layout", "size-l", "standard size of l is 8 (the native size on LP64)", '"l": 4, "L": 4', '"l": 8, "L": 4'),
    M("_layout", "size-D", "standard size of D is 8", '"F": 8, "D": 16', '"F": 8, "D": 8'),
    M("_layout", "size-F", "standard size of F is 16", '"F": 8, "D": 16', '"F": 16, "D": 16'),
    M("_layout", "native-align-q", "native alignment of q is 4",
      "_NATIVE = {c: _native_size_align(c) for c in _ALL_CODES}",
      '_NATIVE = {c: _native_size_align(c) for c in _ALL_CODES}\n_NATIVE["q"] = (8, 4)'),
    M("_layout", "native-align-D", "native alignment of D is 16",
      "_NATIVE = {c: _native_size_align(c) for c in _ALL_CODES}",
      '_NATIVE = {c: _native_size_align(c) for c in _ALL_CODES}\n_NATIVE["D"] = (16, 16)'),
    M("_layout", "native-size-P", "native size of P is 4",
      "_NATIVE = {c: _native_size_align(c) for c in _ALL_CODES}",
      '_NATIVE = {c: _native_size_align(c) for c in _ALL_CODES}\n_NATIVE["P"] = (4, 4)'),
    M("_layout", "signed-n", "n is not signed", '_SIGNED = set("bhilqn")', '_SIGNED = set("bhilq")'),
    M("_layout", "signed-l", "l is not signed", '_SIGNED = set("bhilqn")', '_SIGNED = set("bhiqn")'),
    M("_layout", "unsigned-N", "N is not unsigned", '_UNSIGNED = set("BHILQN")', '_UNSIGNED = set("BHILQ")'),
    M("_layout", "native-only-P", "P accepted in standard mode", '_NATIVE_ONLY = "nNP"', '_NATIVE_ONLY = "nN"'),
    M("_layout", "native-only-n", "n accepted in standard mode", '_NATIVE_ONLY = "nNP"', '_NATIVE_ONLY = "NP"'),
    M("_layout", "byte-order-bang", "! is not a byte order", '_BYTE_ORDERS = "@=<>!"', '_BYTE_ORDERS = "@=<>"'),
    M("_layout", "int-codes-P", "P is not an integer", '_INT_CODES = "bBhHiIlLqQnNP"', '_INT_CODES = "bBhHiIlLqQnN"'),
    M("_layout", "float-codes-e", "e is not a float", '_FLOAT_CODES = "efd"', '_FLOAT_CODES = "fd"'),
    M("_layout", "complex-codes-D", "D is not complex", '_COMPLEX_CODES = "FD"', '_COMPLEX_CODES = "F"'),
    M("_layout", "max-fields", "one field more than documented is accepted",
      "MAX_FIELDS = 100_000", "MAX_FIELDS = 100_001"),
    M("_layout", "max-fields-less", "one field less than documented is accepted",
      "MAX_FIELDS = 100_000", "MAX_FIELDS = 99_999"),
    M("_layout", "max-record", "records of 2**31 bytes accepted",
      "MAX_RECORD_SIZE = 2**31 - 1", "MAX_RECORD_SIZE = 2**31"),
    M("_layout", "token-digits", "a repeat count may not start with 0",
      r'_TOKEN = re.compile(r"\s*(\d*)([^\s\d])")', r'_TOKEN = re.compile(r"\s*([1-9]\d*|)([^\s\d])")'),
    # -- _pickle_policy: the default allowlist, the never-allow lists, the default policy
    M("_pickle_policy", "allow-loadtxt", "default allowlist admits numpy.loadtxt (reads any file)",
      'names.add(("numpy", "ndarray"))', 'names.add(("numpy", "ndarray"))\n    names.add(("numpy", "loadtxt"))'),
    M("_pickle_policy", "allow-sysconfig", "default allowlist admits sysconfig.get_platform",
      'names.add(("numpy", "dtype"))', 'names.add(("numpy", "dtype"))\n    names.add(("sysconfig", "get_platform"))'),
    M("_pickle_policy", "allow-no-numpy", "default allowlist loses numpy.ndarray",
      'names.add(("numpy", "ndarray"))', "pass"),
    M("_pickle_policy", "never-subprocess", "subprocess removed from NEVER_ALLOW",
      "os posix nt subprocess _posixsubprocess", "os posix nt _posixsubprocess"),
    M("_pickle_policy", "never-os", "os removed from NEVER_ALLOW", '"""os posix nt subprocess', '"""posix nt subprocess'),
    M("_pickle_policy", "never-posix", "posix removed from NEVER_ALLOW", '"""os posix nt subprocess', '"""os nt subprocess'),
    M("_pickle_policy", "never-f2py", "numpy.f2py removed from NEVER_ALLOW",
      "numpy.load numpy.f2py numpy.testing", "numpy.load numpy.testing"),
    M("_pickle_policy", "never-builtins-getattr", "getattr removed from the never-admitted builtins",
      '"""getattr setattr delattr', '"""setattr delattr'),
    M("_pickle_policy", "never-builtins-exec", "exec removed from the never-admitted builtins",
      "delattr eval exec compile", "delattr eval compile"),
    M("_pickle_policy", "default-policy", "the shared default policy also admits numpy.loadtxt",
      "DEFAULT_POLICY = Policy(None)", 'DEFAULT_POLICY = Policy([("numpy", "loadtxt")])'),
    M("_pickle_versioned", "version-magic", "versioned-file magic changed",
      '_VERSION_MAGIC = b"BRVER\\x00\\x01\\n"', '_VERSION_MAGIC = b"BRVER\\x00\\x02\\n"'),
    # -- checkpoint: the format constants and the cached CRC operator
    M("checkpoint", "magic", "checkpoint magic changed", 'MAGIC = b"BINRECCK"', 'MAGIC = b"BINRECCL"'),
    M("checkpoint", "footer-magic", "footer magic changed", 'FOOTER_MAGIC = b"BRCKFOOT"', 'FOOTER_MAGIC = b"BRCKFOOU"'),
    M("checkpoint", "format-version", "format version 2", "FORMAT_VERSION = 1", "FORMAT_VERSION = 2"),
    M("checkpoint", "flag-keyed", "the keyed flag is bit 1", "FLAG_KEYED = 1", "FLAG_KEYED = 2"),
    M("checkpoint", "align", "sections aligned to 32 bytes", "ALIGN = 64", "ALIGN = 32"),
    M("checkpoint", "prefix-struct", "header length read as 4 bytes",
      '_PREFIX = struct.Struct("<8sIIQ")', '_PREFIX = struct.Struct("<8sIIIxxxx")'),
    M("checkpoint", "max-header", "header cap lifted to 64 GiB", "_MAX_HEADER = 64 << 20", "_MAX_HEADER = 64 << 30"),
    M("checkpoint", "context", "digest context label changed",
      '_CONTEXT = b"binrec.checkpoint"', '_CONTEXT = b"binrec.checkpoints"'),
    M("checkpoint", "name-length", "201-character names accepted", "{0,199}$", "{0,200}$"),
    M("_crc32", "crc-poly", "CRC combination with the wrong polynomial", "(0xEDB88320,)", "(0x82F63B78,)"),
    # -- files
    M("files", "trailing", "trailing='return' is not a valid mode",
      'TRAILING = ("error", "ignore", "return")', 'TRAILING = ("error", "ignore")'),
    # -- _coerce: which numpy kinds convert without a per-value check
    M("_coerce", "fast-int-float", "floats convert to int columns unchecked", '"int": "biu",', '"int": "biuf",'),
    M("_coerce", "fast-float-complex", "complex values convert to float columns unchecked",
      '"float": "biuf",', '"float": "biufc",'),
    M("_coerce", "fast-char-unicode", "str values convert to c columns unchecked", '"char": "S",', '"char": "SU",'),
]
# fmt: on

#: statuses of ``mutmut results`` grouped for scoring
_KILLED = {"killed", "timeout", "segfault", "caught by type check"}
_SURVIVED = {"survived", "no tests"}


def tests_for(module: str, root: Path) -> list[str]:
    if module not in TESTS:
        raise SystemExit(f"mutation: no test selection for module {module!r}; add it to TESTS in {__file__}")
    return [t for t in TESTS[module] if (root / t).exists()]


def configure(module: str, pyproject: Path) -> None:
    text = pyproject.read_text("utf-8")
    table = tomllib.loads(text).get("tool", {}).get("mutmut")
    if table is None:
        raise SystemExit(f"mutation: {pyproject} has no [tool.mutmut] table")
    clash = {"only_mutate", "pytest_add_cli_args_test_selection", "preload_modules_file"} & set(table)
    if clash:
        raise SystemExit(f"mutation: [tool.mutmut] must not set {sorted(clash)}: scripts/mutation.sh sets them")
    tests = tests_for(module, pyproject.parent)
    preload = pyproject.parent / "mutation-preload.txt"
    preload.write_text("\n".join(PRELOAD) + "\n", "utf-8")
    lines = [
        f'preload_modules_file = "{preload}"',
        f'only_mutate = ["src/binrec/{module}.py"]',
        "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]",
    ]
    text = text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + "\n".join(lines) + "\n", 1)
    tomllib.loads(text)  # still valid
    pyproject.write_text(text, "utf-8")


def _run_tests(root: Path, tests: list[str], timeout: float) -> tuple[str, str]:
    """Run ``tests`` in a fresh interpreter that imports binrec from
    ROOT/src, with an empty bytecode cache (an edit that keeps the file's
    size within the same second would otherwise reuse stale bytecode)."""
    with tempfile.TemporaryDirectory(prefix="binrec-mut-pyc-") as pyc:
        env = dict(os.environ, PYTHONPATH=str(root / "src"), PYTHONPYCACHEPREFIX=pyc, PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", ""
    if proc.returncode == 0:
        return "survived", proc.stdout[-2000:]
    out = proc.stdout[-2000:] + proc.stderr[-2000:]
    if proc.returncode == 4 and "ImportError while loading conftest" in out:
        return "killed", out  # binrec itself no longer imports
    if proc.returncode in (4, 5):  # usage error / no tests collected: not a kill
        return "error", out
    return "killed", proc.stdout[-2000:]


def run_manual(module: str, root: Path) -> int:
    path = root / "src" / "binrec" / f"{module}.py"
    tests = tests_for(module, root)
    original = path.read_text("utf-8")
    mutants = [m for m in MANUAL if m.module == module]
    if not mutants:
        return 0
    start = time.monotonic()
    status, out = _run_tests(root, tests, timeout=1800)
    if status != "survived":
        print(
            f"mutation: the unmutated tree fails {' '.join(tests)} ({status}); manual mutants not run", file=sys.stderr
        )
        print(out, file=sys.stderr)
        return 1
    timeout = max(60.0, 10 * (time.monotonic() - start))
    try:
        for m in mutants:
            n = original.count(m.old)
            if n != 1:
                print(f"{m.name}: stale", flush=True)
                print(f"mutation: {m.name}: the old text occurs {n} times in {path.name}", file=sys.stderr)
                continue
            path.write_text(original.replace(m.old, m.new), "utf-8")
            try:
                status, out = _run_tests(root, tests, timeout)
            finally:
                path.write_text(original, "utf-8")
            if status == "error":
                print(f"mutation: {m.name}: pytest could not run:\n{out}", file=sys.stderr)
            print(f"{m.name}: {status}", flush=True)
    finally:
        path.write_text(original, "utf-8")
    return 0


def recheck(module: str, root: Path, names_file: Path, mutmut: str) -> int:
    """Run each mutmut survivor named in NAMES_FILE again, applied to the
    source (``mutmut apply``) and tested with the module's whole selection in
    a fresh interpreter.  mutmut picks the tests of a mutant by which tests
    called the function while they ran, so code that only runs at import time
    (``_NATIVE = {c: _native_size_align(c) ...}``) or whose result is cached
    gets the wrong tests, or none; this run has no such blind spot."""
    path = root / "src" / "binrec" / f"{module}.py"
    tests = tests_for(module, root)
    original = path.read_text("utf-8")
    names = [n.strip() for n in names_file.read_text("utf-8").splitlines() if n.strip()]
    try:
        for name in names:
            applied = subprocess.run([mutmut, "apply", name], cwd=root, capture_output=True, text=True)
            if applied.returncode != 0 or path.read_text("utf-8") == original:
                print(f"mutation: {name}: mutmut apply failed: {applied.stderr[-500:]}", file=sys.stderr)
                path.write_text(original, "utf-8")
                continue
            try:
                status, _ = _run_tests(root, tests, timeout=600)
            finally:
                path.write_text(original, "utf-8")
            print(f"{name}: {status}", flush=True)
    finally:
        path.write_text(original, "utf-8")
    return 0


def _read_results(path: Path) -> dict[str, str]:
    results: dict[str, str] = {}
    if not path.exists():
        return results
    for line in path.read_text("utf-8").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name and not name.startswith("mutation:"):
            results[name] = status
    return results


def score(reviewed_path: Path, results_dir: Path, modules: list[str]) -> int:
    reviewed_all = tomllib.loads(reviewed_path.read_text("utf-8")) if reviewed_path.exists() else {}
    header = (
        "module",
        "mutants",
        "killed",
        "survived",
        "equivalent",
        "message",
        "other",
        "recheck k",
        "manual k/n",
        "score",
    )
    rows = []
    problems: list[str] = []
    for module in modules:
        reviewed: dict[str, str] = reviewed_all.get(module, {})
        auto = _read_results(results_dir / f"{module}.mutmut")
        rechecked = _read_results(results_dir / f"{module}.recheck")
        rk = sum(1 for n, st in rechecked.items() if st in _KILLED and auto.get(n) in _SURVIVED)
        auto.update({n: st for n, st in rechecked.items() if st in _KILLED})
        manual = _read_results(results_dir / f"{module}.manual")
        counts = dict(killed=0, survived=0, equivalent=0, message=0, other=0)
        for name, status in {**auto, **manual}.items():
            note = reviewed.get(name, "")
            kind = note.split(":", 1)[0].strip()
            if status in _KILLED:
                counts["killed"] += 1
                if note:
                    problems.append(f"{name}: reviewed as {kind!r} but {status} now (drop it from the list)")
            elif status in _SURVIVED:
                if kind in ("equivalent", "message"):
                    counts[kind] += 1
                else:
                    counts["survived"] += 1
                    why = (
                        f"reviewed as {note!r}: the reason must start 'equivalent:' or 'message:'"
                        if note
                        else "not reviewed"
                    )
                    problems.append(f"{name}: {status}, {why}")
            else:
                counts["other"] += 1
                problems.append(f"{name}: {status}")
        for name in reviewed:
            if name not in auto and name not in manual:
                problems.append(f"{name}: in the reviewed list but not generated (renumbered? review again)")
        mk = sum(1 for s in manual.values() if s in _KILLED)
        denom = counts["killed"] + counts["survived"]
        pct = f"{100 * counts['killed'] / denom:.1f}%" if denom else "-"
        rows.append((module, len(auto) + len(manual), *counts.values(), rk, f"{mk}/{len(manual)}", pct))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, widths))))
    print("\nscore = killed / (killed + survived); equivalent and message-only survivors are the reviewed ones")
    print("in scripts/mutation-reviewed.toml; other = suspicious/skipped/not checked/stale (not scored);")
    print("recheck k = mutmut survivors killed when rerun applied to the source with the whole selection")
    print("in a fresh interpreter (import-time code, caches); manual = hand-written mutants killed/run.")
    if problems:
        print("\nto look at:")
        for p in problems:
            print("  " + p)
    return 1 if any(r[3] or r[6] for r in rows) else 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "tests":
        print("\n".join(tests_for(args[0], Path(args[1]) if len(args) > 1 else Path("."))))
        return 0
    if cmd == "configure":
        configure(args[0], Path(args[1]))
        return 0
    if cmd == "manual":
        return run_manual(args[0], Path(args[1]).resolve())
    if cmd == "recheck":
        return recheck(args[0], Path(args[1]).resolve(), Path(args[2]), args[3])
    if cmd == "score":
        return score(Path(args[0]), Path(args[1]), args[2:])
    if cmd == "list":
        for m in MANUAL:
            if not args or m.module in args:
                print(f"{m.name}: {m.description}")
        return 0
    print(f"unknown subcommand {cmd!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
