"""Real backends for the integration tests, started by the tests on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import typing
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def alertmanager_binary() -> str | None:
    # Debian names the binary prometheus-alertmanager; upstream tarballs, alertmanager.
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_ready(port: int, timeout: float = 30.0) -> None:
    """Wait for ``/-/ready`` to answer 200: the port opens before the server can serve
    (Prometheus answers 503 while its storage starts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"127.0.0.1:{port} not ready after {timeout:.0f} s")
        time.sleep(0.1)


def _serve(log_path: Path, command: list[str], port: int) -> subprocess.Popen[bytes]:
    """Start a server logging to ``log_path``; return once ``/-/ready`` answers on ``port``."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, 30)
    wait_ready(port)
    return proc


def _get_json(url: str) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=5).read())


class Prometheus:
    """A real Prometheus scraping one target (``scrape_port``, job ``mevobs-demo``) or the
    jobs given (``scrape_configs``) every ``scrape_interval``, optionally evaluating rule
    files every second, sending alerts to an Alertmanager, with feature flags
    (``exemplar-storage``)."""

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_port: int | None = None,
        scrape_configs: list[dict[str, Any]] | None = None,
        scrape_interval: str = "1s",
        rule_files: list[Path] | None = None,
        alertmanager_port: int | None = None,
        features: tuple[str, ...] = (),
    ) -> None:
        binary = prometheus_binary()
        assert binary is not None
        if scrape_configs is None:
            assert scrape_port is not None
            scrape_configs = [
                {"job_name": "mevobs-demo", "static_configs": [{"targets": [f"127.0.0.1:{scrape_port}"]}]}
            ]
        self.port = free_port()
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": "1s"},
            "scrape_configs": scrape_configs,
        }
        if rule_files:
            config["rule_files"] = [str(p) for p in rule_files]
        if alertmanager_port:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
            }
        path = workdir / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        self.proc = _serve(
            workdir / "prometheus.log",
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *(f"--enable-feature={feature}" for feature in features),
            ],
            self.port,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        body = _get_json(url)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        _stop(self.proc)


class Alertmanager:
    """A real Alertmanager, single node, on 127.0.0.1."""

    def __init__(self, workdir: Path, config: Path) -> None:
        binary = alertmanager_binary()
        assert binary is not None
        self.port = free_port()
        self.proc = _serve(
            workdir / "alertmanager.log",
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            self.port,
        )

    def alerts(self) -> list[dict[str, Any]]:
        return list(_get_json(f"http://127.0.0.1:{self.port}/api/v2/alerts"))

    def stop(self) -> None:
        _stop(self.proc)
