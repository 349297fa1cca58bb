"""The README stays short and true.

* at most 10 KiB (features get a line and a link; their examples live in docs/);
* every relative link and image points to a file or folder of the checkout;
* its Python examples run, in order, in an empty folder; its ``binrec``
  command lines run on a file written with :mod:`struct` (the oracle);
* its test command is the one ``.ci/run`` runs;
* its benchmark block is what ``scripts/render_bench_docs.py`` renders from
  the recorded runs in ``docs/benchmarks/`` (so every figure in it comes
  from a recorded benchmark file), and so is ``docs/benchmarks.md``.

These read the source checkout, so they are skipped where only ``tests/`` is
copied (the wheel tests).
"""

from __future__ import annotations

import importlib.util
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_BYTES = 10_240

pytestmark = pytest.mark.skipif(
    not README.exists() or not (ROOT / "docs").is_dir(),
    reason="run from a source checkout (wheel tests copy only tests/ and pyproject.toml)",
)

# [text](target) and ![alt](target); the target ends at whitespace or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def readme() -> str:
    return README.read_text(encoding="utf-8")


def code_blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(readme()) if kind == lang]


def relative_links(text: str) -> list[str]:
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def render_module():
    spec = importlib.util.spec_from_file_location("render_bench_docs", ROOT / "scripts" / "render_bench_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_at_most_10_kib():
    assert README.stat().st_size <= MAX_BYTES, (
        f"README.md is {README.stat().st_size} bytes; keep it <= {MAX_BYTES}: move examples into docs/"
    )


def test_readme_relative_links_and_images_exist():
    links = relative_links(readme())
    assert links, "the link pattern found no relative links: is it still matching?"
    missing = [t for t in links if not (ROOT / t.split("#", 1)[0]).exists()]
    assert missing == []


def test_link_check_sees_a_missing_target():
    # the oracle for the check above: a made-up path is reported, URLs and anchors are not
    text = "[a](docs/nope.md) ![b](img/x.png) [c](https://example.org/x) [d](#install) [e](README.md#install)"
    assert relative_links(text) == ["docs/nope.md", "img/x.png", "README.md#install"]


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = code_blocks("python")
    assert len(blocks) >= 4
    if any("binrec.dask" in b for b in blocks):
        pytest.importorskip("dask.dataframe", reason="the README's Dask example needs binrec[dask]")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:  # one namespace: later examples use the records of the first
        exec(compile(block, "README.md", "exec"), namespace)
    # what the first example claims, checked against struct itself
    s, raw = namespace["s"], namespace["raw"]
    assert [tuple(r) for r in s.unpack(raw).tolist()] == [
        (i, name.rstrip(b"\0"), temp) for i, name, temp in struct.iter_unpack(">I10sf", raw)
    ]


def test_readme_binrec_commands_run(tmp_path):
    lines = [line for block in code_blocks("bash") for line in block.splitlines() if line.startswith("binrec ")]
    assert len(lines) >= 3
    raw = b"".join(struct.pack(">I10sf", i, b"north", 20.5 + i) for i in range(5))
    (tmp_path / "sensors.bin").write_bytes(raw)
    import shlex

    for line in lines:
        argv = shlex.split(line.split("  #", 1)[0])[1:]
        done = subprocess.run([sys.executable, "-m", "binrec", *argv], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    # decode then encode gives the bytes struct packed
    assert (tmp_path / "copy.bin").read_bytes() == raw


def test_readme_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install ".[test]" && pytest' in readme()
    assert re.search(r'pip install (--quiet )?"\.\[test(,\w+)*\]"', ci)  # the test extras (and maybe more)
    assert ci.rstrip().splitlines()[-1].startswith("exec python -m pytest")


def test_readme_benchmark_figures_are_rendered_from_recorded_runs():
    render = render_module()
    data = render.load()
    block = render.render_readme_block(data)
    assert block in readme(), "run: python scripts/render_bench_docs.py"


def test_benchmarks_page_is_rendered_from_recorded_runs():
    render = render_module()
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert page == render.render_page(render.load()), "run: python scripts/render_bench_docs.py"


def test_recorded_figures_reach_the_readme():
    # the oracle for the two tests above: a changed recorded figure changes the README block
    render = render_module()
    data = render.load()
    before = render.render_readme_block(data)
    rows = [r for r in data["codec"]["rows"] if r["impl"] == "binrec compiled" and r["op"] == "unpack"]
    row = max(rows, key=lambda r: r["n"])  # the README shows the largest run
    row["MBps"] += 1000
    assert render.render_readme_block(data) != before
