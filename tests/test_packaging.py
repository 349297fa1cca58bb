"""Packaging: installed metadata, the cibuildwheel configuration, and the
GitHub workflows (YAML structure, and actionlint when it is installed, which
the ``test`` extra does)."""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
HAVE_SOURCE = (ROOT / "pyproject.toml").exists() and WORKFLOWS.exists()


def test_installed_metadata():
    meta = md.metadata("binrec")
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "MIT" or "MIT" in (meta.get("License") or "")
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"test", "pandas", "arrow", "dask", "bench"} <= extras
    requires = [r for r in (meta.get_all("Requires-Dist") or []) if "extra ==" not in r]
    assert [r.split(">")[0].strip() for r in requires] == ["numpy"]
    scripts = {ep.name: ep.value for ep in md.entry_points(group="console_scripts") if ep.name == "binrec"}
    assert scripts == {"binrec": "binrec.cli:main"}


def test_installed_version_is_the_package_version():
    # one version source: the metadata pip installed is read from binrec.__version__
    import binrec

    assert md.version("binrec") == binrec.__version__


needs_source = pytest.mark.skipif(
    not HAVE_SOURCE, reason="run from a source checkout (wheel tests copy only tests/ and pyproject.toml)"
)


def load_toml():
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@needs_source
def test_cibuildwheel_configuration():
    cfg = load_toml()["tool"]["cibuildwheel"]
    for tag in ("cp311-*", "cp312-*", "cp313-*", "cp314-*", "cp314t-*"):
        assert tag in cfg["build"]
    assert "pp*" in cfg["skip"] and "*-musllinux_aarch64" in cfg["skip"]
    assert "--require-extension" in cfg["test-command"]
    assert cfg["test-environment"]["BINREC_REQUIRE_EXTENSION"] == "1"
    assert "tests" in cfg["test-sources"]  # run against the installed wheel, not src/
    assert cfg["linux"]["archs"] == ["x86_64", "aarch64"]
    assert cfg["macos"]["archs"] == ["x86_64", "arm64"]
    assert cfg["windows"]["archs"] == ["AMD64"]
    build = load_toml()["build-system"]["requires"]
    assert any(r.startswith("Cython") for r in build)


@needs_source
def test_workflows_structure():
    yaml = pytest.importorskip("yaml")
    wheels = yaml.safe_load((WORKFLOWS / "wheels.yml").read_text())
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    jobs = wheels["jobs"]
    assert {"build_wheels", "sdist", "publish"} <= set(jobs)
    oses = {m["os"] for m in jobs["build_wheels"]["strategy"]["matrix"]["include"]}
    assert (
        any(o.startswith("ubuntu") for o in oses)
        and any(o.startswith("macos") for o in oses)
        and any(o.startswith("windows") for o in oses)
    )
    steps = jobs["build_wheels"]["steps"]
    assert any("setup-qemu-action" in s.get("uses", "") for s in steps)
    assert any("cibuildwheel" in s.get("uses", "") for s in steps)
    publish = jobs["publish"]
    assert publish["permissions"]["id-token"] == "write"  # trusted publishing
    assert any("pypi-publish" in s.get("uses", "") for s in publish["steps"])
    assert {"lint", "tests", "pure-python"} <= set(ci["jobs"])
    pure = ci["jobs"]["pure-python"]
    # the install step itself builds nothing (the same switch as at import)
    assert any(
        "pip install" in s.get("run", "") and s.get("env", {}).get("BINREC_PUREPYTHON") == "1" for s in pure["steps"]
    )


@needs_source
def test_workflows_validate_against_the_github_schema(tmp_path):
    """actionlint's PyPI package downloads its binary at install time, which
    cannot work offline; check-jsonschema ships the GitHub workflow schema."""
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert exe, "check-jsonschema is part of the test extra"
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    res = subprocess.run(
        [exe, "--builtin-schema", "vendor.github-workflows", *files], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    bad = tmp_path / "bad-workflow.yml"
    bad.write_text("on: push\njobs:\n  x:\n    steps: 5\n")
    res = subprocess.run(
        [exe, "--builtin-schema", "vendor.github-workflows", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0  # the check can fail


@needs_source
def test_version_has_one_source():
    project = load_toml()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert load_toml()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "binrec.__version__"}
