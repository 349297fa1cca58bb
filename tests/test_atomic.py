"""binrec._atomic's options for callers that manage their own folder (the
checkpoint store): a temp-name hook and ``follow=False``.  The behaviour
shared with write_file (symlinks followed, special files written through,
errors naming the user's path) is specified in test_files.py.

Oracles: the file system itself (os.listdir, os.lstat, the bytes on disk)."""

from __future__ import annotations

import errno
import os
import signal
import stat

import pytest

from binrec._atomic import TEMP_PREFIX, atomic_writer


def tagged(final_name: str) -> str:
    return f".binrec-tmp-test-{final_name}"


def test_the_temp_name_hook_names_the_file_written_before_the_rename(tmp_path):
    path = tmp_path / "x.ckpt"
    with atomic_writer(path, temp_name=tagged) as fh:
        fh.write(b"data")
        fh.flush()
        assert sorted(os.listdir(tmp_path)) == [".binrec-tmp-test-x.ckpt"]
        assert (tmp_path / ".binrec-tmp-test-x.ckpt").read_bytes() == b"data"
    assert sorted(os.listdir(tmp_path)) == ["x.ckpt"]
    assert path.read_bytes() == b"data"


def test_a_hooked_temp_file_is_removed_when_the_write_fails(tmp_path):
    path = tmp_path / "x.ckpt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(path, temp_name=tagged) as fh:
        fh.write(b"new")
        raise RuntimeError("interrupted")
    assert sorted(os.listdir(tmp_path)) == ["x.ckpt"]
    assert path.read_bytes() == b"old"


def test_a_hooked_temp_file_that_cannot_be_created_is_an_error_naming_the_path(tmp_path):
    (tmp_path / ".binrec-tmp-test-x.ckpt").mkdir()  # where the temp file would go
    with pytest.raises(OSError) as err, atomic_writer(tmp_path / "x.ckpt", temp_name=tagged):
        pass
    assert err.value.errno == errno.EISDIR and err.value.filename == str(tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()


def test_follow_false_replaces_a_symlink_itself_and_leaves_its_target_alone(tmp_path):
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(b"target")
    link = tmp_path / "x.ckpt"
    link.symlink_to(target)
    with atomic_writer(link, follow=False) as fh:
        fh.write(b"new")
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert target.read_bytes() == b"target"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_follow_false_replaces_a_fifo_instead_of_writing_through_it(tmp_path):
    fifo = tmp_path / "x.ckpt"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that a write-through would not block
    try:
        with atomic_writer(fifo, follow=False) as fh:
            fh.write(b"new")
        assert stat.S_ISREG(os.lstat(fifo).st_mode) and fifo.read_bytes() == b"new"
        assert os.read(reader, 10) == b""  # nothing went down the pipe (a write-through leaves b"new" in it)
    finally:
        os.close(reader)


def test_follow_false_gives_a_replaced_file_the_default_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = tmp_path / "x.ckpt"
        path.write_bytes(b"old")
        os.chmod(path, 0o600)
        with atomic_writer(path, follow=False, temp_name=tagged) as fh:
            fh.write(b"new")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # 0o666 less the umask, not the old 0o600
        os.chmod(path, 0o600)
        with atomic_writer(path) as fh:  # the default: the file keeps its permissions
            fh.write(b"newer")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        os.umask(umask)


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks only")
def test_a_signal_right_after_the_temp_file_is_made_leaves_no_temp_file(tmp_path, monkeypatch):
    # A real SIGTERM sent to this process the moment mkstemp has created the
    # file (before atomic_writer has its name): the handler's exception must
    # unwind through the cleanup.  Oracle: the folder's listing.
    class Terminated(Exception):
        pass

    def on_term(signum, frame):
        raise Terminated

    real_open = os.open
    sent = []

    def open_then_signal(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        if TEMP_PREFIX in os.path.basename(path) and not sent:
            sent.append(path)
            os.kill(os.getpid(), signal.SIGTERM)  # numpy's BLAS threads may take it: the handler runs at once
        return fd

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        monkeypatch.setattr(os, "open", open_then_signal)
        with pytest.raises(Terminated):
            with atomic_writer(tmp_path / "out.bin") as fh:
                fh.write(b"data")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sent  # the signal came right after the temporary file was made
    assert os.listdir(tmp_path) == []
