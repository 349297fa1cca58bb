"""Shared fixtures.

``backend`` runs a test once per kernel backend (as aio-libs/multidict does):
"python" always, "compiled" when the extension is importable.  A missing
extension is a skip, unless ``--require-extension`` or
``BINREC_REQUIRE_EXTENSION=1`` (deprecated spelling: ``BINREC_REQUIRE_COMPILED=1``)
is given: then it is a failure, so CI can never go green on the slow path by
accident.
"""

from __future__ import annotations

import os

import pytest

import binrec
from binrec import _backend


def pytest_addoption(parser):
    parser.addoption(
        "--require-extension",
        action="store_true",
        default=False,
        help="fail (instead of skip) when the compiled backend is not available",
    )


def require_compiled(config) -> bool:
    return bool(config.getoption("--require-extension")) or _backend.switch(_backend.REQUIRE_NAMES) is not None


def pytest_report_header(config):
    compiled = "available" if _backend.compiled_kernels is not None else "MISSING"
    return f"binrec {binrec.__version__} from {os.path.dirname(binrec.__file__)}; active backend: {binrec.backend}; compiled extension: {compiled}"


@pytest.fixture(params=["python", "compiled"], scope="session")
def backend(request):
    """Switch the kernels the codec calls; yields the backend's name."""
    if request.param == "compiled":
        if _backend.compiled_kernels is None:
            if require_compiled(request.config):
                pytest.fail("the compiled backend binrec._kernels_c is missing but was required")
            pytest.skip("compiled backend binrec._kernels_c not built")
    with _backend.use(request.param):
        yield request.param
