"""Build script: the Cython extension ``binrec._codec``, optional.

* ``BINREC_NO_EXTENSIONS=1``: build nothing, install pure Python.
* A failed compile (no compiler, no Cython) still installs pure Python and
  prints one warning line: the numpy backend gives the same results.
* Under cibuildwheel (``CIBUILDWHEEL=1``) or with ``BINREC_REQUIRE_EXTENSIONS=1``
  a failed compile fails the build: no wheel ships without its extension.

``cythonize()`` returns new Extension objects and drops ``optional=True``;
we never rely on that flag and instead catch failures in ``build_ext``.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NO_EXT = os.environ.get("BINREC_NO_EXTENSIONS", "").strip() not in ("", "0")
REQUIRE_EXT = any(os.environ.get(v, "").strip() not in ("", "0") for v in ("CIBUILDWHEEL", "BINREC_REQUIRE_EXTENSIONS"))
WARNING = "binrec: WARNING: could not compile the extension binrec._codec ({}); installing the pure-Python backend"


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
    """``-O3``, unless ``CFLAGS`` already chooses an optimisation level.

    extra_compile_args come last on the compiler's command line, after
    ``CFLAGS``, so an unconditional ``-O3`` would override the ``-O1`` of a
    sanitizer or debug build (scripts/sanitize.sh)."""
    if sys.platform == "win32":
        return []
    if any(flag.startswith("-O") for flag in os.environ.get("CFLAGS", "").split()):
        return []
    return ["-O3"]


def extensions():
    if NO_EXT:
        print("binrec: BINREC_NO_EXTENSIONS is set; installing the pure-Python backend", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if REQUIRE_EXT:
            raise
        print(WARNING.format(f"Cython unavailable: {exc}"), file=sys.stderr)
        return []
    ext = Extension("binrec._codec", ["src/binrec/_codec.pyx"], extra_compile_args=optimisation_args())
    if not os.path.exists(ext.sources[0]):
        return []
    exts = cythonize([ext], language_level=3, compiler_directives={"cdivision": True})
    for e in exts:  # cythonize() drops optional=True: set it again
        e.optional = not REQUIRE_EXT
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
