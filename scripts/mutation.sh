#!/usr/bin/env bash
# Release checklist: mutation testing of binrec modules (issue 11).  Too slow
# for .ci/run; record the last run's table in docs/mutation.md.
#
#   1. clone the repository's HEAD (or, with --worktree, copy the working
#      tree: tracked and untracked, not ignored files) into a temp dir;
#   2. use the venv given by --venv / $MUTATION_VENV, or make a fresh one
#      there with mutmut 3.8.1, numpy, pytest, hypothesis, Cython, setuptools;
#      build the extension in place (the compiled backend must load);
#   3. for each MODULE (signing, _layout, files, _coerce, checkpoint,
#      pickling): run mutmut with only_mutate = src/binrec/MODULE.py and the
#      module's test selection (TESTS in scripts/mutation_manual.py).  Every
#      mutant runs in a process forked from a server that imported nothing of
#      binrec ([tool.mutmut] process_isolation = "forkserver", warmup "none"),
#      so caches start empty and import-time code runs under the mutant;
#      mutmut chooses a mutant's tests by which tests called the function, so
#      code run only at import time or cached gets the wrong tests: every
#      survivor that is not reviewed is run again, applied to the source
#      (mutmut apply), with the whole selection in a fresh interpreter;
#   4. run the module's hand-written mutants (MANUAL in
#      scripts/mutation_manual.py: module-level tables and decorated
#      functions, which mutmut never mutates), each in a fresh interpreter;
#   5. print the score table (killed / survived / equivalent / message-only
#      per module), with the reviewed list scripts/mutation-reviewed.toml, and
#      the diff of every survivor that is not reviewed.
#
# Exit status 1 when a module has an unreviewed survivor (or a mutant that
# could not be checked), 2 on a setup failure.
#
#   usage: scripts/mutation.sh [--worktree] [--venv DIR] [--max-children N]
#                              [--no-manual] [--no-recheck] [--out DIR] [--keep]
#                              MODULE...
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORKTREE=0
KEEP=0
MANUAL=1
RECHECK=1
CHILDREN=2
OUT=""
VENV_GIVEN=${MUTATION_VENV:-}
MODULES=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --worktree) WORKTREE=1 ;;
    --venv) VENV_GIVEN=$2; shift ;;
    --max-children) CHILDREN=$2; shift ;;
    --no-manual) MANUAL=0 ;;
    --no-recheck) RECHECK=0 ;;
    --out) OUT=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    -*) echo "mutation.sh: unknown argument $1" >&2; exit 2 ;;
    *) MODULES+=("$1") ;;
  esac
  shift
done
[[ ${#MODULES[@]} -gt 0 ]] || { sed -n '30,32p' "$0"; exit 2; }

PY=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/binrec-mutation.XXXXXX")
cleanup() {
  if [[ $KEEP == 1 ]]; then echo "mutation.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { printf 'mutation.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# -- 1. a clean source tree
SRC="$WORK/src"
# shellcheck source=scripts/_scratch_tree.sh
source "$ROOT/scripts/_scratch_tree.sh"
scratch_tree "$ROOT" "$SRC" "$WORKTREE" || die "no scratch copy of the source"
log "source: $REV -> $SRC"
# the scripts that drive the run come from the checkout that was called
cp "$ROOT/scripts/mutation_manual.py" "$ROOT/scripts/mutation-reviewed.toml" "$WORK/" || die "scripts missing"
HELPER="$WORK/mutation_manual.py"
REVIEWED="$WORK/mutation-reviewed.toml"

# -- 2. a venv and the extension built in place
if [[ -n $VENV_GIVEN ]]; then
  VPY="$VENV_GIVEN/bin/python"
  [[ -x $VPY ]] || die "no python in $VENV_GIVEN"
else
  "$PY" -m venv "$WORK/venv" || die "cannot create a venv with $PY"
  VPY="$WORK/venv/bin/python"
  "$VPY" -m pip install -q "mutmut==3.8.1" "numpy>=2.0" "pytest>=7" "hypothesis>=6.80" "Cython>=3.1" "setuptools>=77" \
    >"$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log"; die "pip install failed"; }
fi
MUTMUT="$(dirname "$VPY")/mutmut"
[[ -x $MUTMUT ]] || die "mutmut is not installed in $(dirname "$(dirname "$VPY")")"
log "python: $("$VPY" -c 'import sys; print(sys.version.split()[0])'), $("$VPY" -m pip list 2>/dev/null | awk '$1=="mutmut"{print "mutmut " $2}')"
(cd "$SRC" && BINREC_REQUIRE_EXTENSION=1 "$VPY" setup.py build_ext --inplace -q >"$WORK/build.log" 2>&1) || { tail -20 "$WORK/build.log"; die "building the extension failed"; }
# the tree's own binrec must be the one imported, with its compiled backend
(cd "$SRC" && PYTHONPATH="$SRC/src" "$VPY" -c "
import binrec, sys
from binrec import _backend
assert binrec.__file__.startswith('$SRC/'), binrec.__file__
assert _backend.compiled_kernels is not None, 'compiled extension missing'
") || die "the scratch tree's binrec (with its extension) does not import"

RESULTS="$WORK/results"
mkdir -p "$RESULTS"
STATUS=0
for MOD in "${MODULES[@]}"; do
  [[ -f "$SRC/src/binrec/$MOD.py" ]] || die "no module src/binrec/$MOD.py"
  log "== $MOD: tests $("$VPY" "$HELPER" tests "$MOD" "$SRC" | tr '\n' ' ')"
  # -- 3. mutmut, one module at a time, on a fresh copy of pyproject.toml
  cp "$SRC/pyproject.toml" "$WORK/pyproject.orig" || die "no pyproject.toml"
  "$VPY" "$HELPER" configure "$MOD" "$SRC/pyproject.toml" || die "cannot configure mutmut for $MOD"
  rm -rf "$SRC/mutants"
  T0=$SECONDS
  (cd "$SRC" && "$MUTMUT" run --max-children "$CHILDREN" >"$RESULTS/$MOD.log" 2>&1)
  RC=$?
  (cd "$SRC" && "$MUTMUT" results --all true >"$RESULTS/$MOD.mutmut" 2>>"$RESULTS/$MOD.log")
  N=$(grep -c ': ' "$RESULTS/$MOD.mutmut")
  log "$MOD: mutmut exit $RC, $N mutants in $((SECONDS - T0)) s"
  if [[ $RC != 0 || $N == 0 ]]; then tail -30 "$RESULTS/$MOD.log" >&2; STATUS=1; fi
  cp "$WORK/pyproject.orig" "$SRC/pyproject.toml"
  # -- 4. hand-written mutants
  if [[ $MANUAL == 1 ]]; then
    T0=$SECONDS
    "$VPY" "$HELPER" manual "$MOD" "$SRC" >"$RESULTS/$MOD.manual" 2>"$RESULTS/$MOD.manual.log" || { cat "$RESULTS/$MOD.manual.log" >&2; STATUS=1; }
    log "$MOD: $(grep -c ': ' "$RESULTS/$MOD.manual") hand-written mutants in $((SECONDS - T0)) s"
  fi
  # the diffs of unreviewed survivors, for the report
  "$VPY" - "$REVIEWED" "$RESULTS/$MOD.mutmut" "$MOD" >"$RESULTS/$MOD.survivors" <<'EOF'
import sys, tomllib
reviewed = tomllib.load(open(sys.argv[1], "rb")).get(sys.argv[3], {})
for line in open(sys.argv[2]):
    name, _, status = line.strip().rpartition(": ")
    if status in ("survived", "no tests", "suspicious") and name not in reviewed:
        print(name)
EOF
  # -- 3b. survivors again, applied to the source, whole selection, fresh interpreter
  if [[ $RECHECK == 1 && -s "$RESULTS/$MOD.survivors" ]]; then
    T0=$SECONDS
    "$VPY" "$HELPER" recheck "$MOD" "$SRC" "$RESULTS/$MOD.survivors" "$MUTMUT" >"$RESULTS/$MOD.recheck" 2>"$RESULTS/$MOD.recheck.log" || STATUS=1
    log "$MOD: $(grep -c ': killed' "$RESULTS/$MOD.recheck") of $(wc -l <"$RESULTS/$MOD.survivors") survivors killed on recheck in $((SECONDS - T0)) s"
  fi
  while read -r NAME; do
    grep -qxF "$NAME: killed" "$RESULTS/$MOD.recheck" 2>/dev/null && continue
    (cd "$SRC" && "$MUTMUT" show "$NAME" 2>&1) >>"$RESULTS/$MOD.diffs"
  done <"$RESULTS/$MOD.survivors"
  if [[ -s "$RESULTS/$MOD.manual" ]]; then
    grep -E ': (survived|stale|error)$' "$RESULTS/$MOD.manual" | cut -d: -f1 | while read -r NAME; do
      "$VPY" "$HELPER" list "$MOD" | grep -F "$NAME:" >>"$RESULTS/$MOD.diffs"
    done
  fi
done

# -- 5. the table
echo
echo "binrec mutation run: $(date -u +%Y-%m-%dT%H:%MZ), $REV, $("$VPY" -m pip list 2>/dev/null | awk '$1=="mutmut"{print "mutmut " $2}'), $(uname -m), $(nproc) cores"
echo
"$VPY" "$HELPER" score "$REVIEWED" "$RESULTS" "${MODULES[@]}" || STATUS=1
for MOD in "${MODULES[@]}"; do
  if [[ -s "$RESULTS/$MOD.diffs" ]]; then
    echo; echo "-- $MOD: survivors not in the reviewed list"; cat "$RESULTS/$MOD.diffs"
  fi
done
if [[ -n $OUT ]]; then
  mkdir -p "$OUT" && cp "$RESULTS"/* "$OUT"/ && log "results copied to $OUT"
fi
exit $STATUS
