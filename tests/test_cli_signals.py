"""Signals that a library swallows must still stop the CLI from committing
its output (a new user's Ctrl-C during `binrec encode` once ended in a
finished file and exit status 0: pyarrow's lazy pandas import ate the
KeyboardInterrupt)."""

from __future__ import annotations

import os
import signal
import struct

import pytest

from binrec import cli
from binrec.records import Struct


def _swallowing_pack(signum):
    real = Struct.pack

    def pack(self, values, **kw):
        try:
            signal.raise_signal(
                signum
            )  # to this thread (os.kill may reach a BLAS thread first): the handler runs here ...
        except BaseException:  # ... and a careless library eats its exception
            pass
        return real(self, values, **kw)

    return pack


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_swallowed_signal_leaves_no_output(tmp_path, monkeypatch, capsys, signum):
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n3,4\n")
    out = tmp_path / "out.bin"
    monkeypatch.setattr(Struct, "pack", _swallowing_pack(signum))
    status = cli.main(["encode", ">ii", str(src), "-o", str(out), "--quiet"])
    assert status == 128 + signum
    assert not out.exists()
    assert os.listdir(tmp_path) == ["in.csv"]  # no temporary file either


def test_without_a_signal_the_same_run_writes_the_file(tmp_path):
    # the control: the path above commits when no signal came
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n3,4\n")
    out = tmp_path / "out.bin"
    assert cli.main(["encode", ">ii", str(src), "-o", str(out), "--quiet"]) == 0
    assert out.read_bytes() == struct.pack(">ii", 1, 2) + struct.pack(">ii", 3, 4)


def test_handlers_are_restored(tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    cli.main(["info", ">ii"])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
