"""Build script: the Cython extension ``binrec._kernels_c``, optional.

The same two switches mean the same at build time (here) and at import time
(``binrec._backend``):

* ``BINREC_PUREPYTHON=1``: build nothing, install pure Python.
* ``BINREC_REQUIRE_EXTENSION=1``: a failed compile fails the build.  Under
  cibuildwheel (``CIBUILDWHEEL=1``) the extension is always required: no
  wheel ships without it.
* Otherwise a failed compile (no compiler, no Cython) still installs pure
  Python and prints one warning line: the numpy backend gives the same results.

``BINREC_PUREPYTHON`` wins when both are set.  Deprecated spellings, still
accepted for the 0.2 series: ``BINREC_NO_EXTENSIONS`` (= ``BINREC_PUREPYTHON``)
and ``BINREC_REQUIRE_EXTENSIONS`` or ``BINREC_REQUIRE_COMPILED`` (=
``BINREC_REQUIRE_EXTENSION``), as at import (``binrec._backend``).

``cythonize()`` returns new Extension objects and drops ``optional=True``;
we never rely on that flag and instead catch failures in ``build_ext``.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# the first name is the current one; the others are deprecated spellings
PURE_NAMES = ("BINREC_PUREPYTHON", "BINREC_NO_EXTENSIONS")
REQUIRE_NAMES = ("BINREC_REQUIRE_EXTENSION", "BINREC_REQUIRE_EXTENSIONS", "BINREC_REQUIRE_COMPILED", "CIBUILDWHEEL")


def switch(environ, names):
    """The first of ``names`` set to something other than empty or ``0``, else None."""
    for name in names:
        if environ.get(name, "").strip() not in ("", "0"):
            return name
    return None


NO_EXT = switch(os.environ, PURE_NAMES)
REQUIRE_EXT = switch(os.environ, REQUIRE_NAMES) is not None
WARNING = "binrec: WARNING: could not compile the extension binrec._kernels_c ({}); installing the pure-Python backend"


class OptionalBuildExt(build_ext):
    """build_ext that degrades to pure Python unless the extension is required."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler/setup failure
            self._give_up(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._give_up(exc)

    def _give_up(self, exc):
        if REQUIRE_EXT:
            raise exc
        print(WARNING.format(str(exc).splitlines()[0] if str(exc) else type(exc).__name__), file=sys.stderr)


def optimisation_args():
    """``-O3`` and aligned loops, unless ``CFLAGS`` already chooses an optimisation level.

    extra_compile_args come last on the compiler's command line, after
    ``CFLAGS``, so an unconditional ``-O3`` would override the ``-O1`` of a
    sanitizer or debug build (scripts/sanitize.sh)."""
    if sys.platform == "win32":
        return []
    if any(flag.startswith("-O") for flag in os.environ.get("CFLAGS", "").split()):
        return []
    # Hot loops start on a 32-byte boundary.  Without it, where a loop falls
    # depends on everything else in the module: adding unrelated code once
    # moved the byte-swap loop of ">I10sf" and made it 1.5x slower on an AMD
    # EPYC (issue 12).  Compilers that do not know the flag ignore it.
    return ["-O3", "-falign-loops=32"]


def extensions():
    if NO_EXT:
        print(f"binrec: {NO_EXT} is set; installing the pure-Python backend", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if REQUIRE_EXT:
            raise
        print(WARNING.format(f"Cython unavailable: {exc}"), file=sys.stderr)
        return []
    ext = Extension("binrec._kernels_c", ["src/binrec/_kernels_c.pyx"], extra_compile_args=optimisation_args())
    if not os.path.exists(ext.sources[0]):
        return []
    exts = cythonize([ext], language_level=3, compiler_directives={"cdivision": True})
    for e in exts:  # cythonize() drops optional=True: set it again
        e.optional = not REQUIRE_EXT
    return exts


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import switch()
    setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
