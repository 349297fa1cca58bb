#!/usr/bin/env bash
# Release checklist: the compiled extension under AddressSanitizer and
# UndefinedBehaviorSanitizer (issue 11).  Too slow for .ci/run.
#
#   1. clone the repository's HEAD (or, with --worktree, copy the working
#      tree: tracked and untracked, not ignored files) into a temp dir;
#   2. make a fresh venv there, install Cython/setuptools/numpy, then build and
#      install binrec with gcc -fsanitize=address,undefined -O1 -g
#      (pip --no-build-isolation; BINREC_REQUIRE_EXTENSION=1) plus its
#      [test] extras, and check that the installed _kernels_c links libasan;
#   3. run the test suite with libasan (and libubsan) preloaded,
#      PYTHONMALLOC=malloc, leak detection off, abort on the first error;
#   4. run scripts/fuzz_differential.py (compiled vs numpy backend vs struct)
#      for --fuzz-seconds seconds under the same sanitizers.
#
# Sanitizer reports of every process (pytest's subprocesses too) go to
# log_path files; the script fails on any "ERROR: AddressSanitizer" or
# "runtime error:" there or in the output, on a failed test, or on a fuzz
# mismatch, and prints a summary.
#
#   usage: scripts/sanitize.sh [--worktree] [--fuzz-seconds T] [--fuzz-cases N]
#                              [--seed S] [--fuzz-args "..."] [--skip-suite]
#                              [--keep] [-- PYTEST_ARGS...]
#   default PYTEST_ARGS: -x -q -p no:cacheprovider --require-extension tests
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ_SECONDS=300
FUZZ_CASES=""
SEED=""
FUZZ_EXTRA=""
WORKTREE=0
SKIP_SUITE=0
KEEP=0
PYTEST_ARGS=(-x -q -p no:cacheprovider --require-extension tests)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --worktree) WORKTREE=1 ;;
    --fuzz-seconds) FUZZ_SECONDS=$2; shift ;;
    --fuzz-cases) FUZZ_CASES=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --fuzz-args) FUZZ_EXTRA=$2; shift ;;
    --skip-suite) SKIP_SUITE=1 ;;
    --keep) KEEP=1 ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "sanitize.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

PY=${PYTHON:-python3}
CC=${CC:-gcc}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/binrec-sanitize.XXXXXX")
LOGS="$WORK/logs"
mkdir -p "$LOGS"
cleanup() {
  if [[ $KEEP == 1 ]]; then echo "sanitize.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { printf 'sanitize.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# -- 1. a clean source tree
SRC="$WORK/src"
# shellcheck source=scripts/_scratch_tree.sh
source "$ROOT/scripts/_scratch_tree.sh"
scratch_tree "$ROOT" "$SRC" "$WORKTREE" || die "no scratch copy of the source"
log "source: $REV -> $SRC"

# -- 2. fresh venv, sanitized build
VENV="$WORK/venv"
"$PY" -m venv "$VENV" || die "cannot create a venv with $PY"
VPY="$VENV/bin/python"
"$VPY" -m pip install -q "Cython>=3.1" "setuptools>=77" "numpy>=2.0" wheel >"$LOGS/pip-tools.log" 2>&1 || { tail -20 "$LOGS/pip-tools.log"; die "cannot install Cython/setuptools/numpy"; }
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1 -g"
log "building binrec._kernels_c with $CC $SAN_FLAGS"
# setup.py adds -O3 only when CFLAGS sets no -O level (it would come after CFLAGS).
(cd "$SRC" && CC="$CC" CFLAGS="$SAN_FLAGS" LDFLAGS="-fsanitize=address,undefined" BINREC_REQUIRE_EXTENSION=1 \
  "$VPY" -m pip install -v --no-build-isolation ".[test]") >"$LOGS/build.log" 2>&1 || { tail -30 "$LOGS/build.log"; die "build/install failed (log: $LOGS/build.log)"; }
grep -E -- '-fsanitize=address,undefined' "$LOGS/build.log" | grep -q -- '_kernels_c' || die "the compile line in the build log has no -fsanitize flags"
COMPILE_LINE=$(grep -E -- ' -c src/binrec/_kernels_c\.c' "$LOGS/build.log" | tail -1)
[[ "$(grep -oE -- ' -O[0-9s]' <<<"$COMPILE_LINE" | tail -1)" == " -O1" ]] || die "the last -O flag compiling _kernels_c.c is not -O1: $COMPILE_LINE"
SO=$(ls "$VENV"/lib/python*/site-packages/binrec/_kernels_c*.so 2>/dev/null | head -1)
[[ -n "$SO" ]] || die "binrec._kernels_c is not installed in the venv"
LIBASAN=$("$CC" -print-file-name=libasan.so)
LIBUBSAN=$("$CC" -print-file-name=libubsan.so)
[[ -e "$LIBASAN" ]] || die "$CC has no libasan.so"
readelf -d "$SO" 2>/dev/null | grep -q 'libasan' || die "$SO does not link libasan: not a sanitized build"
PRELOAD="$LIBASAN"
readelf -d "$SO" 2>/dev/null | grep -q 'libubsan' && [[ -e "$LIBUBSAN" ]] && PRELOAD="$LIBASAN:$LIBUBSAN"
log "sanitized extension: $SO"

# -- the sanitizer environment for everything below (children inherit it)
export LD_PRELOAD="$PRELOAD"
export PYTHONMALLOC=malloc
# allocator_may_return_null: a huge np.empty must raise MemoryError, as it does without ASan
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=0:strict_init_order=1:log_path=$LOGS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan"
export BINREC_REQUIRE_EXTENSION=1
BACKEND=$(cd "$WORK" && "$VPY" -c 'import binrec; print(binrec.backend)' 2>&1) || die "import binrec under the sanitizers failed: $BACKEND"
[[ "$BACKEND" == "compiled" ]] || die "backend under the sanitizers is $BACKEND"

sanitizer_reports() {  # files or output holding a report
  grep -l -E 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer' "$LOGS"/asan.* "$LOGS"/ubsan.* "$@" 2>/dev/null
}

FAIL=0
SUITE="skipped"
# -- 3. the test suite
if [[ $SKIP_SUITE == 0 ]]; then
  log "running pytest ${PYTEST_ARGS[*]} (log: suite.log)"
  start=$SECONDS
  (cd "$SRC" && "$VPY" -m pytest "${PYTEST_ARGS[@]}") >"$LOGS/suite.log" 2>&1
  rc=$?
  line=$(grep -E '[0-9]+ (passed|failed|error)' "$LOGS/suite.log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')
  SUITE="pytest exit $rc in $((SECONDS - start)) s: ${line:-no summary line (aborted?)}"
  if [[ $rc != 0 ]]; then
    FAIL=1
    tail -40 "$LOGS/suite.log"
  fi
fi
SUITE_REPORTS=$(sanitizer_reports "$LOGS/suite.log")

# -- 4. the differential fuzz
log "fuzzing for ${FUZZ_CASES:+$FUZZ_CASES cases or }$FUZZ_SECONDS s (log: fuzz.log)"
FUZZ_ARGS=(--seconds "$FUZZ_SECONDS" --progress "$LOGS/fuzz.progress")
[[ -n "$FUZZ_CASES" ]] && FUZZ_ARGS+=(--cases "$FUZZ_CASES")
[[ -n "$SEED" ]] && FUZZ_ARGS+=(--seed "$SEED")
# shellcheck disable=SC2206
[[ -n "$FUZZ_EXTRA" ]] && FUZZ_ARGS+=($FUZZ_EXTRA)
(cd "$WORK" && "$VPY" "$SRC/scripts/fuzz_differential.py" "${FUZZ_ARGS[@]}") >"$LOGS/fuzz.log" 2>&1
frc=$?
FUZZ=$(grep '^fuzz_differential: [0-9]* cases' "$LOGS/fuzz.log" | tail -1)
if [[ $frc != 0 ]]; then
  FAIL=1
  grep -v '^  *[a-z]*: returned' "$LOGS/fuzz.log" | cut -c1-400 | tail -60
  [[ -z "$FUZZ" ]] && FUZZ="fuzz exit $frc, no summary (crashed at: $(cat "$LOGS/fuzz.progress" 2>/dev/null))"
fi

ALL_REPORTS=$(sanitizer_reports "$LOGS/suite.log" "$LOGS/fuzz.log" | sort -u)
if [[ -n "$ALL_REPORTS" ]]; then
  FAIL=1
  for f in $ALL_REPORTS; do
    echo "---- sanitizer report in $(basename "$f")"
    grep -E -A25 'ERROR: AddressSanitizer|runtime error:' "$f" | head -60
  done
fi

echo
echo "sanitize.sh summary ($(date -u +%Y-%m-%dT%H:%MZ), $REV)"
echo "  compiler:  $("$CC" --version | head -1); flags: $SAN_FLAGS"
echo "  python:    $("$VPY" -c 'import platform, numpy; print(platform.python_version(), "numpy", numpy.__version__)')"
echo "  suite:     $SUITE"
echo "  fuzz:      ${FUZZ:-none}"
echo "  sanitizer reports: $([[ -z "$ALL_REPORTS" ]] && echo none || echo "$ALL_REPORTS" | xargs -n1 basename | tr '\n' ' ')"
[[ -z "$SUITE_REPORTS" && -n "$ALL_REPORTS" ]] && echo "  (reports came from the fuzz run)"
if [[ $FAIL == 0 ]]; then echo "  result:    PASS"; else echo "  result:    FAIL"; KEEP=1; fi
exit $FAIL
