"""An S3-compatible server on 127.0.0.1 for the tests: moto's standalone
server (``moto[server]``) in a subprocess on a free port, with fixed fake
credentials, so no test touches the network or the user's ~/.aws.

Use the fixtures (import them into a test module)::

    from s3_server import s3_bucket, s3_server  # noqa: F401

    def test_something(s3_bucket):
        server, bucket = s3_bucket            # a fresh, empty bucket
        fs = server.filesystem()              # s3fs, pointed at the server
        fs.pipe_file(f"{bucket}/a.bin", b"...")
        binrec.Struct("<i").read_file(f"s3://{bucket}/a.bin", storage_options=server.storage_options)

``s3_server`` is one server for the whole session; :func:`start_server`
starts a private one (for a test that stops it mid-read, or one that
refuses credentials: ``start_server(check_credentials=True)``).  The
server is a separate process, so Dask workers and Spark executors reach it
at the same ``endpoint``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

#: fixed fake credentials: moto accepts any unless told to check them
FAKE_KEY = "binrec-test-key"
FAKE_SECRET = "binrec-test-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """A running moto server (a subprocess); ``stop()`` ends it."""

    def __init__(
        self, *, check_credentials: bool = False, timeout: float = 60.0, extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if check_credentials:
            # moto enforces IAM authentication after this many requests: 0
            # means every request needs a key moto's IAM knows (none does)
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        else:
            env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        env.update(extra_env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"moto server exited with {self.process.returncode}: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not listen on port {self.port} within {timeout} s") from None
                time.sleep(0.1)

    @property
    def storage_options(self) -> dict[str, Any]:
        """What binrec and s3fs need to reach this server: fixed fake
        credentials, the endpoint, and no botocore retries (s3fs still retries
        5 times, about 2 s, before a stopped server is an error)."""
        return {
            "key": FAKE_KEY,
            "secret": FAKE_SECRET,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": REGION},
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 5, "read_timeout": 30},
        }

    def filesystem(self, **overrides: Any) -> Any:
        """A fresh s3fs filesystem on this server (no instance cache)."""
        import s3fs

        return s3fs.S3FileSystem(**{**self.storage_options, **overrides}, skip_instance_cache=True)

    def make_bucket(self) -> str:
        """A new empty bucket; returns its name."""
        name = f"binrec-{uuid.uuid4().hex[:20]}"
        self.filesystem().call_s3("create_bucket", Bucket=name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


@contextlib.contextmanager
def start_server(*, check_credentials: bool = False, extra_env: dict[str, str] | None = None) -> Iterator[S3Server]:
    """A private moto server for one test, stopped after it (``extra_env``:
    moto settings, such as ``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE``); skips the
    test where s3fs or moto is not installed (the foreign-arch runs)."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    server = S3Server(check_credentials=check_credentials, extra_env=extra_env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the test session."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    with start_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> tuple[S3Server, str]:
    """The session's server and a fresh, empty bucket on it."""
    return s3_server, s3_server.make_bucket()
