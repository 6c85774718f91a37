"""Real backends for the integration tests, started by the tests on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.otlp_sink import Sink


def missing(what: str) -> None:
    """Skip when a backend binary is truly absent, but fail where CI promised to install it."""
    message = f"{what} is not installed"
    if os.environ.get("MEVOBS_REQUIRE_BACKENDS"):
        pytest.fail(f"{message}, and MEVOBS_REQUIRE_BACKENDS is set (CI installs it)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def rotel_binary() -> Path | None:
    try:
        import rotel
    except ImportError:
        return None
    path = Path(rotel.__file__).parent / "rotel-agent"
    return path if path.exists() else None


class Rotel:
    """The Rotel OpenTelemetry collector: OTLP gRPC and HTTP in, OTLP gRPC out to the sink."""

    def __init__(self, binary: Path, sink_port: int, workdir: Path) -> None:
        self.binary = binary
        self.sink_port = sink_port
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.workdir / "rotel.out").open("ab") as out:
            self._spawn(out)
        wait_port(self.grpc_port)
        wait_port(self.http_port)

    def _spawn(self, out: typing.BinaryIO) -> None:
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "start",
                "--otlp-grpc-endpoint",
                f"127.0.0.1:{self.grpc_port}",
                "--otlp-http-endpoint",
                f"127.0.0.1:{self.http_port}",
                "--exporter",
                "otlp",
                "--otlp-exporter-endpoint",
                f"http://127.0.0.1:{self.sink_port}",
                "--batch-timeout",
                "100ms",
                "--log-file",
                str(self.workdir / "rotel.log"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rotel(sink: Sink, tmp_path: Path) -> Iterator[Rotel]:
    binary = rotel_binary()
    if binary is None:
        missing("the Rotel collector (pip install rotel)")
    collector = Rotel(binary, sink.port, tmp_path)
    collector.start()
    yield collector
    collector.stop()


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")
