"""binrec ships ``py.typed``: code that uses its public API type-checks.

Each test writes a small user program, runs ``mypy --strict`` on it in a
child process and reads mypy's verdict (the oracle is mypy itself).  The
program imports the *installed* ``binrec`` (mypy runs outside the source
tree, so it finds the package the way a user's checker does: through
``py.typed`` in site-packages, or the editable install's path entry).
``typing.assert_type`` pins each public return type exactly, so a signature
that regresses to ``Any`` (or to a wider type) fails here, not in a user's CI.

The whole package is held to ``mypy --strict`` by ``.ci/run`` (configured in
pyproject.toml's ``[tool.mypy]``); these tests guard what users see.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

if importlib.util.find_spec("mypy") is None:
    pytest.skip('mypy is not installed (pip install ".[typing]")', allow_module_level=True)

#: the records API: Struct and the module-level shortcuts
RECORDS = """
    import io
    from collections.abc import Iterator

    import numpy as np
    from typing import assert_type

    import binrec

    s = binrec.Struct("<hd", names="a b")
    assert_type(s.format, str)
    assert_type(s.size, int)
    assert_type(s.names, tuple[str, ...])
    assert_type(s.dtype, np.dtype[np.void])

    data = s.pack([(1, 0.5), (2, 1.5)])
    assert_type(data, bytes)
    rows = s.unpack(data)
    assert_type(rows, np.ndarray)
    cols = s.unpack_columns(data, fields=["a"])
    assert_type(cols, dict[str, np.ndarray])
    buf = bytearray(s.size * 2)
    assert_type(s.pack_into(buf, 0, rows), int)

    assert_type(binrec.calcsize("<hd"), int)
    assert_type(binrec.dtype("<hd"), np.dtype[np.void])
    assert_type(binrec.pack("<h", [(1,)]), bytes)
    assert_type(binrec.unpack("<h", b"\\x01\\x00"), np.ndarray)
    assert_type(binrec.unpack_columns("<h", b"\\x01\\x00"), dict[str, np.ndarray])
    assert_type(binrec.pack_into("<h", bytearray(2), 0, [(1,)]), int)
    assert_type(binrec.backend, str)

    chunks = s.iter_unpack(io.BytesIO(data), chunk_size=1)
    assert_type(chunks, Iterator[np.ndarray])
    with_rest = s.iter_unpack(io.BytesIO(data + b"x"), trailing="return")
    assert_type(with_rest, Iterator[np.ndarray | bytes])

    try:
        binrec.unpack("<i", b"abc")
    except binrec.Error as exc:
        message: str = str(exc)
"""

#: persistence: pickling, signing, shelf, checkpoint
PERSISTENCE = """
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any, assert_type

    from binrec import checkpoint, pickling, shelf, signing

    key = signing.generate_key()
    assert_type(key, bytes)
    envelope = signing.sign(b"payload", key)
    assert_type(envelope, bytes)
    assert_type(signing.verify(envelope, key), bytes)
    tag = signing.sign_detached(b"payload", key)
    assert_type(tag, bytes)
    assert_type(signing.verify_detached(b"payload", tag, [key]), bool)
    assert_type(signing.key_id(key), bytes)
    blob = signing.signed_dumps({"a": 1}, key)
    assert_type(blob, bytes)
    loaded: object = signing.signed_loads(blob, key)  # an unpickled object: Any, as pickle.loads

    assert_type(pickling.inspect(b"\\x80\\x04K\\x01."), pickling.PickleReport)
    assert_type(pickling.dump_many([1, 2], Path("objects.pkl")), int)
    assert_type(pickling.load_many(Path("objects.pkl"), allow=None), Iterator[Any])
    pickling.save_versioned(Path("v.pkl"), {"a": 1}, 2)

    with shelf.open("data.db", key=key) as db:
        assert_type(db, shelf.Shelf)
        db["k"] = [1, 2]

    store = checkpoint.CheckpointStore(Path("ckpt"))
    assert_type(store.save("step1", {"w": [1.0]}), checkpoint.CheckpointInfo)
    assert_type(store.latest(), checkpoint.CheckpointInfo | None)
    assert_type(store.list(), list[checkpoint.CheckpointInfo])
"""


#: the optional extras, each checked when its types are installed
FRAMES = """
    from typing import assert_type

    import pandas as pd

    import binrec
    from binrec import files

    s = binrec.Struct("<hd", names="a b")
    assert_type(s.unpack_frame(s.pack([(1, 0.5)])), pd.DataFrame)
    assert_type(files.unpack_frame(s, s.pack([(1, 0.5)])), pd.DataFrame)
"""

DASK = """
    from typing import assert_type

    import dask.array as da
    import dask.dataframe as dd

    from binrec import dask as binrec_dask

    assert_type(binrec_dask.read_records("data/*.bin", "<hd"), dd.DataFrame)
    assert_type(binrec_dask.read_records(["a.bin", "b.bin"], "<hd", to_array=True), da.Array)
    flag: bool = bool(len("x"))
    assert_type(binrec_dask.read_records("a.bin", "<hd", to_array=flag), dd.DataFrame | da.Array)
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module: numpy's and pandas' stubs are
    analysed once, not once per test."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture
def mypy(tmp_path: Path, cache_dir: Path) -> Callable[[str], subprocess.CompletedProcess[str]]:
    return functools.partial(_mypy, tmp_path, cache_dir)


def _mypy(tmp_path: Path, cache_dir: Path, source: str) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on ``source`` as a user's module, outside the
    source tree, with a config of its own (not the project's)."""
    program = tmp_path / "user_program.py"
    program.write_text(textwrap.dedent(source))
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(cache_dir),
            "--no-error-summary",
            str(program),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_records_api_type_checks(mypy):
    result = mypy(RECORDS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_persistence_api_type_checks(mypy):
    result = mypy(PERSISTENCE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unpack_frame_returns_a_pandas_dataframe(mypy):
    try:
        importlib.metadata.distribution("pandas-stubs")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip('pandas-stubs is not installed (pip install ".[typing]")')
    result = mypy(FRAMES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_read_records_returns_a_dask_collection(mypy):
    # dask ships its own types (py.typed): a user with dask installed sees
    # a DataFrame, or an Array with to_array=True
    if importlib.util.find_spec("dask") is None:
        pytest.skip('dask is not installed (pip install ".[dask]")')
    result = mypy(DASK)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compiled_module_matches_its_stub(tmp_path):
    # the oracle: mypy's stubtest, which compares _kernels_c.pyi with the
    # built extension's runtime signatures (names, parameters, defaults)
    import binrec._backend

    if binrec._backend.compiled_kernels is None:
        pytest.skip("the compiled extension is not built here")
    allow = tmp_path / "allowlist.txt"
    # what Cython adds to every module: not part of the kernel interface
    allow.write_text(
        "binrec._kernels_c.__reduce_cython__\nbinrec._kernels_c.__setstate_cython__\nbinrec._kernels_c.__test__\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "binrec._kernels_c", "--allowlist", str(allow)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_annotation_is_reported(mypy):
    # the harness can fail: a user program that misreads a return type is
    # rejected, naming the line (calcsize returns int, not str)
    result = mypy('import binrec\nsize: str = binrec.calcsize("<i")\n')
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'user_program.py:2: error: Incompatible types in assignment (expression has type "int"' in result.stdout


def test_a_return_type_of_any_is_reported(tmp_path, mypy):
    # assert_type is exact: a function that returned Any would fail the
    # programs above (the oracle: a stand-in module typed to return Any)
    (tmp_path / "loose.py").write_text("from typing import Any\ndef f() -> Any: ...\n")
    result = mypy("from typing import assert_type\nimport loose\nassert_type(loose.f(), int)\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Expression is of type" in result.stdout
