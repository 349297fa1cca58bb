#!/usr/bin/env bash
# Release checklist (slow, not part of .ci/run): build binrec's wheel for a
# foreign CPU with a cross compiler and run the test suite on it under
# qemu-user emulation, with the compiled backend required.
#
#   usage: scripts/check_foreign_arch.sh ARCH [--head] [--golden] [PYTEST_ARGS...]
#     ARCH      aarch64 (Debian 12 arm64: CPython 3.11, numpy 2 from PyPI's
#               manylinux aarch64 wheel) or s390x (big-endian; Debian 13
#               s390x: CPython 3.13 and Debian's python3-numpy 2.x, since
#               PyPI has no numpy wheel for s390x)
#     --head    build and test a clone of HEAD instead of the working tree
#               (whose untracked and uncommitted files, other people's work
#               in progress included, are otherwise part of the run)
#     --golden  also write the cross-byte-order golden files of this
#               architecture into tests/golden/foreign/ARCH/ (run under
#               emulation, with this build)
#     PYTEST_ARGS  instead of the whole suite ("tests"): modules, node ids,
#               -k EXPR, ... passed to pytest as they are
#
# Steps, each of which fails the script:
#   1. a sysroot of the target's Python, headers and libc: Debian .debs
#      fetched with `apt-get download` through a private apt configuration
#      and unpacked with `dpkg-deb -x` (scripts/foreign/sysroot.sh); nothing
#      foreign is installed on the host;
#   2. the target-side packages (numpy, pytest, hypothesis and whichever
#      test extras have a wheel for the target) with `pip install --target
#      --platform ... --only-binary=:all:`;
#   3. the wheel, built from the working tree by the PEP 517 path that
#      cibuildwheel's `build` frontend takes (setuptools.build_meta ->
#      setup.py), with the cross compiler, the target's sysconfig data and
#      headers, and BINREC_REQUIRE_EXTENSION=1 (a failed compile fails);
#   4. the wheel unpacked beside the target packages; `python` and `binrec`
#      wrappers run the target's CPython under qemu (tests that start
#      sys.executable or the console script get emulated children too);
#   5. `binrec.backend == "compiled"` asserted, then the suite from a copy
#      of tests/ with --require-extension.
#
# The last line is the summary, e.g. "aarch64: 812 passed, 3 skipped".
# Work files (sysroots, downloads, builds) go to $BINREC_FOREIGN_DIR
# (default ~/.cache/binrec-foreign), never into the checkout; sysroots and
# target packages are reused by later runs.
#
# Host needs: the cross compiler (gcc-aarch64-linux-gnu / gcc-s390x-linux-gnu),
# qemu-user, apt, dpkg-deb, and a Python 3.11+ with pip, setuptools>=77,
# Cython>=3.1 and wheel ($PYTHON, default python3).
set -uo pipefail

# The whole script is one function, read by bash before any of it runs: a
# run takes most of an hour, and bash reads a plain script as it goes, so an
# edit of this file during a run used to break that run's last lines.
main() {
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE="$ROOT/scripts/foreign"
ARCH=${1:-}
shift || true
GOLDEN=0 WORKTREE=1
while [[ ${1:-} == --golden || ${1:-} == --head ]]; do
  if [[ $1 == --golden ]]; then GOLDEN=1; else WORKTREE=0; fi
  shift
done
TESTS=("${@:-tests}")
PYTHON=${PYTHON:-python3}
BASE=${BINREC_FOREIGN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/binrec-foreign}

# the suite's optional extras: every one with a wheel for the target is
# installed; the tests of the others skip themselves (importorskip)
# (fsspec, dpkt and construct are pure Python: they install everywhere)
TEST_DEPS=("pytest>=7" "hypothesis>=6.80" "tqdm>=4.60" "pyyaml>=6" "fsspec" "dpkt>=1.9" "construct>=2.10")
case $ARCH in
  aarch64)
    SUITE=bookworm DEBARCH=arm64 PYVER=3.11 TRIPLET=aarch64-linux-gnu QEMU=qemu-aarch64
    PLATFORMS=(manylinux2014_aarch64 manylinux_2_28_aarch64)
    TARGET_DEPS=("numpy>=2.0" "pandas>=2.2" "pyarrow>=15" "dask[dataframe,distributed]>=2024.1" "check-jsonschema>=0.28")
    DEBS=(python3.11 libpython3.11-dev libc6-dev libsqlite3-0 libstdc++6)
    ;;
  s390x)
    # numpy comes from Debian (python3-numpy, 2.x in trixie); pandas,
    # pyarrow and dask need PyPI's numpy, which has no s390x wheel
    SUITE=trixie DEBARCH=s390x PYVER=3.13 TRIPLET=s390x-linux-gnu QEMU=qemu-s390x
    PLATFORMS=(manylinux2014_s390x manylinux_2_28_s390x)
    TARGET_DEPS=()
    DEBS=(python3.13 libpython3.13-dev python3-numpy libc6-dev libsqlite3-0 libstdc++6)
    ;;
  *)
    echo "usage: $0 aarch64|s390x [--head] [--golden] [PYTEST_ARGS...]" >&2
    exit 2
    ;;
esac

# Deselected under emulation, each for its run time alone (what it checks
# does not depend on the CPU, and the native suite runs it):
DESELECT=(
  # a loop of child savers SIGKILLed mid-write (about 270 s under qemu):
  # crash safety rests on write/fsync/rename order, not on the CPU
  tests/test_checkpoint.py::test_sigkill_during_saves_never_leaves_a_torn_checkpoint
)

WORK="$BASE/$ARCH"
mkdir -p "$WORK"
log() { printf '%s: %s\n' "$ARCH" "$*" >&2; }
die() {
  log "FAILED: $*"
  echo "$ARCH: FAILED ($*)"
  exit 1
}
START=$SECONDS

# -- 0. host tools -------------------------------------------------------------
for tool in "$TRIPLET-gcc" "$QEMU" apt-get dpkg-deb "$PYTHON"; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install gcc-$TRIPLET qemu-user)"
done
"$PYTHON" -c 'import Cython, setuptools, wheel' 2>/dev/null || die "$PYTHON lacks Cython, setuptools or wheel"

# -- 1. sysroot -------------------------------------------------------------------
SYSROOT=$("$HERE/sysroot.sh" "$SUITE" "$DEBARCH" "$WORK" "${DEBS[@]}") || die "sysroot ($SUITE $DEBARCH)"
TPY="$SYSROOT/usr/bin/python$PYVER"
[[ -x $TPY ]] || die "no python$PYVER in the sysroot"
SYSCONFIG_NAME="_sysconfigdata__linux_$TRIPLET"
[[ -f $SYSROOT/usr/lib/python$PYVER/$SYSCONFIG_NAME.py ]] || die "no $SYSCONFIG_NAME.py in the sysroot"

# -- 2. target packages ----------------------------------------------------------------
SITE="$WORK/site"
want_site="$PYVER ${PLATFORMS[*]} ${TEST_DEPS[*]} ${TARGET_DEPS[*]}"
if [[ ! -f $SITE/.binrec-site || $(cat "$SITE/.binrec-site") != "$want_site" ]]; then
  rm -rf "$SITE"
  platform_args=()
  for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
  "$PYTHON" -m pip install -q --no-compile --target "$SITE" "${platform_args[@]}" --python-version "$PYVER" \
    --implementation cp --only-binary=:all: "${TEST_DEPS[@]}" "${TARGET_DEPS[@]}" >"$WORK/pip.log" 2>&1 \
    || { tail -20 "$WORK/pip.log" >&2; die "pip install of the target packages"; }
  printf '%s' "$want_site" >"$SITE/.binrec-site"
fi

# -- 3. the wheel ------------------------------------------------------------------------
# shellcheck source=scripts/_scratch_tree.sh
source "$ROOT/scripts/_scratch_tree.sh"
rm -rf "$WORK/src" "$WORK/wheel" "$WORK/sysconfig"
scratch_tree "$ROOT" "$WORK/src" "$WORKTREE" || die "copy of the source tree"
log "building from the $REV"
# only the target's sysconfig module on the path: its EXT_SUFFIX, compiler
# flags and include folder, read by the host's setuptools
mkdir -p "$WORK/sysconfig"
cp "$SYSROOT/usr/lib/python$PYVER/$SYSCONFIG_NAME.py" "$WORK/sysconfig/"
CROSS_CC="$TRIPLET-gcc --sysroot=$SYSROOT"
env _PYTHON_HOST_PLATFORM="linux-$ARCH" _PYTHON_SYSCONFIGDATA_NAME="$SYSCONFIG_NAME" PYTHONPATH="$WORK/sysconfig" \
  CC="$CROSS_CC" LDSHARED="$CROSS_CC -shared" CPPFLAGS="-I$SYSROOT/usr/include/python$PYVER" \
  BINREC_REQUIRE_EXTENSION=1 \
  "$PYTHON" -m pip wheel -v --no-build-isolation --no-deps -w "$WORK/wheel" "$WORK/src" >"$WORK/build.log" 2>&1 \
  || { grep -E 'error|Error' "$WORK/build.log" | tail -20 >&2; die "wheel build (log: $WORK/build.log)"; }
WHEEL=$(ls "$WORK"/wheel/binrec-*.whl 2>/dev/null | head -1)
[[ -n $WHEEL ]] || die "no wheel was built"
EXT_SUFFIX=$("$PYTHON" -c "import sys, importlib; sys.path.insert(0, sys.argv[1]); print(importlib.import_module(sys.argv[2]).build_time_vars['EXT_SUFFIX'])" "$WORK/sysconfig" "$SYSCONFIG_NAME") \
  || die "no EXT_SUFFIX in $SYSCONFIG_NAME"
[[ -n $EXT_SUFFIX ]] || die "empty EXT_SUFFIX in $SYSCONFIG_NAME"
# the listing is read whole (grep -q would close the pipe early and, under
# pipefail, fail the check with zipfile's BrokenPipeError)
listing=$("$PYTHON" -m zipfile -l "$WHEEL") || die "cannot list $WHEEL"
grep -qF "binrec/_kernels_c$EXT_SUFFIX" <<<"$listing" || die "the wheel has no binrec/_kernels_c$EXT_SUFFIX"
log "built $(basename "$WHEEL") with _kernels_c$EXT_SUFFIX"

# -- 4. install: the wheel unpacked, wrappers for the emulated interpreter ------------------
PKG="$WORK/pkg"
rm -rf "$PKG" "$WORK/bin"
"$PYTHON" -m zipfile -e "$WHEEL" "$PKG" || die "unpacking the wheel"
mkdir -p "$WORK/bin/console"
# -0 makes the emulated argv[0] (so sys.executable) this wrapper: children
# started from sys.executable run under qemu too, with no binfmt_misc
cat >"$WORK/bin/python" <<EOF
#!/bin/sh
exec $QEMU -L "$SYSROOT" -0 "$WORK/bin/python" "$TPY" "\$@"
EOF
# the console script pip would install (binrec.cli:main, prog "binrec")
printf 'import sys\nfrom binrec.cli import main\nsys.exit(main())\n' >"$WORK/bin/console/binrec"
cat >"$WORK/bin/binrec" <<EOF
#!/bin/sh
exec "$WORK/bin/python" "$WORK/bin/console/binrec" "\$@"
EOF
chmod +x "$WORK/bin/python" "$WORK/bin/binrec"
export PYTHONPATH="$PKG:$SITE:$HERE"
export BINREC_REQUIRE_EXTENSION=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export HYPOTHESIS_STORAGE_DIRECTORY="$WORK/hypothesis"

# -- 5. run ---------------------------------------------------------------------------------
cd "$WORK" || die "cd $WORK"
"$WORK/bin/python" -c '
import platform, sys, binrec
assert binrec.backend == "compiled", binrec.backend
print(f"{platform.machine()} {sys.byteorder}-endian CPython {platform.python_version()}, numpy",
      __import__("numpy").__version__, "binrec", binrec.__version__, binrec.backend, "from", binrec.__file__)
' >&2 || die "binrec.backend is not \"compiled\" on the target"

# the golden files first, then the copy of tests/: the run decodes the
# folder it has just written
if [[ $GOLDEN == 1 ]]; then
  "$WORK/bin/python" "$ROOT/tests/golden/foreign/make_foreign_golden.py" >&2 || die "writing the golden files"
fi
# tests/ from the snapshot the wheel was built from, plus the golden folder
# just written
RUN="$WORK/run"
rm -rf "$RUN" && mkdir -p "$RUN"
cp -r "$WORK/src/tests" "$WORK/src/pyproject.toml" "$RUN/" || die "copy of tests/"
if [[ $GOLDEN == 1 ]]; then
  rm -rf "$RUN/tests/golden/foreign/$ARCH"
  cp -r "$ROOT/tests/golden/foreign/$ARCH" "$RUN/tests/golden/foreign/" || die "copy of the golden files"
fi
cd "$RUN" || die "cd $RUN"

deselect_args=()
for t in "${DESELECT[@]}"; do deselect_args+=(--deselect "$t"); done
"$WORK/bin/python" -m pytest -p no:cacheprovider -p qemu_plugin -q -o addopts="-ra --strict-markers" \
  --require-extension --durations=15 "${deselect_args[@]}" "${TESTS[@]}" 2>&1 | tee "$WORK/pytest.log" >&2
rc=${PIPESTATUS[0]}
summary=$(grep -E '^=* ?[0-9]+ (passed|failed)' "$WORK/pytest.log" | tail -1 | sed -E 's/^=+ //; s/ =+$//; s/ in [0-9.]+s.*$//')
log "$((SECONDS - START)) s in all (build and run); pytest exit status $rc"
echo "$ARCH: ${summary:-no pytest summary (exit $rc)}"
exit "$rc"
}

main "$@"
