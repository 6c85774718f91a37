"""configure() is all or nothing, reconfiguring and shutting down are silent, ports are reported.

Regression tests for the defects of issue 12: a failed configure() that left threads
and its log handler behind; configure() twice then shutdown() printing the SDK's
"A shutdown MeterProvider can not provide a Meter"; metrics_port=0 binding a port
nothing reported; /metrics serving process metrics twice. What must print nothing
runs in a subprocess, whose stderr is compared with "".
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry import metrics, trace

import mevobs
from mevobs import _setup
from mevobs._state import LOGGER, STATE


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("MEVOBS_", "OTEL_")):
            monkeypatch.delenv(name)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.is_alive()}


def _wait_for_threads(expected: set[str], timeout: float = 3.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _threads() - expected:
        time.sleep(0.02)
    return _threads() - expected


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60
    )


class TestAllOrNothing:
    @pytest.mark.parametrize("busy", ["health_port", "metrics_port"])
    def test_a_failed_configure_leaves_nothing_behind(self, busy: str, busy_port: int) -> None:
        """No thread, handler, level, state or global changed; the error is raised."""
        before = (_threads(), list(LOGGER.handlers), LOGGER.level, STATE.providers, STATE.generation)
        tracer_provider, meter_provider = trace.get_tracer_provider(), metrics.get_meter_provider()
        kwargs = {
            "exporter": "prometheus" if busy == "metrics_port" else "otlp",
            "endpoint": f"http://127.0.0.1:{_closed_port()}",
            "system_metrics": True,
            "audit_path": None,
            "health_port": 0,
            busy: busy_port,
        }
        with pytest.raises(OSError):
            mevobs.configure(**kwargs)
        assert _wait_for_threads(before[0]) == set()
        assert (list(LOGGER.handlers), LOGGER.level, STATE.providers, STATE.generation) == before[1:]
        assert trace.get_tracer_provider() is tracer_provider
        assert metrics.get_meter_provider() is meter_provider
        assert _setup._ACTIVE is None

    def test_a_failed_reconfigure_restarts_the_previous_configuration(self, busy_port: int) -> None:
        first = mevobs.configure(exporter="none", log_destination="none", service_name="first")
        with pytest.raises(OSError):
            mevobs.configure(exporter="none", log_destination="none", health_port=busy_port)
        running = _setup._ACTIVE
        assert running is not None and running is not first and not running._closed
        assert running.settings == first.settings
        assert STATE.providers is running.providers and STATE.fast is running._fast is not None
        assert trace.get_tracer_provider().target is running.tracer_provider  # type: ignore[attr-defined]

    def test_after_a_failed_configure_log_destination_none_prints_nothing(self, busy_port: int) -> None:
        proc = _run(
            f"""
            import logging, mevobs
            try:
                mevobs.configure(exporter="otlp", endpoint="http://127.0.0.1:{_closed_port()}",
                                 health_port={busy_port}, log_destination="stderr")
            except OSError:
                pass
            mevobs.configure(log_destination="none")
            with mevobs.swap(exchange="x"):
                pass
            logging.getLogger("mevobs").warning("a warning the bot logs")
            mevobs.shutdown()
            """
        )
        assert proc.returncode == 0, proc.stderr
        assert (proc.stdout, proc.stderr) == ("", "")


class TestSilentLifecycle:
    def test_reconfigure_then_shutdown_prints_nothing(self) -> None:
        """Twice configured with every part on, the application's own tracer and meter in
        use between, then shut down: nothing on stdout or stderr."""
        proc = _run(
            """
            import asyncio, sqlite3
            from opentelemetry import metrics, trace
            import mevobs

            for _ in range(2):
                mevobs.configure(log_destination="none", exporter="prometheus", metrics_port=0,
                                 health_port=0, system_metrics=True, instrument=["sqlite3"])
                metrics.get_meter("app").create_counter("app.calls").add(1)
                trace.get_tracer("app").start_span("app work").end()
                sqlite3.connect(":memory:").execute("select 1")
                with mevobs.swap(exchange="x"):
                    pass
            mevobs.shutdown()
            metrics.get_meter("app").create_counter("app.calls").add(1)
            trace.get_tracer("app").start_span("after shutdown").end()
            mevobs.configure(log_destination="none", pipeline="api", exporter="none")
            mevobs.configure(log_destination="none", exporter="none")
            mevobs.shutdown()
            """
        )
        assert proc.returncode == 0, proc.stderr
        assert (proc.stdout, proc.stderr) == ("", "")

    def test_the_application_tracer_and_meter_follow_a_reconfigure(self) -> None:
        """A tracer, meter and counter the application took before the second configure()
        record into the pipeline that is running, not the first, shut-down one."""
        proc = _run(
            """
            import urllib.request
            from opentelemetry import metrics, trace
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
            import mevobs

            first, second = InMemorySpanExporter(), InMemorySpanExporter()
            mevobs.configure(log_destination="none", span_processors=[SimpleSpanProcessor(first)])
            tracer = trace.get_tracer("app")
            counter = metrics.get_meter("app").create_counter("app.calls")
            tel = mevobs.configure(log_destination="none", exporter="prometheus", metrics_port=0,
                                   span_processors=[SimpleSpanProcessor(second)])
            tracer.start_span("after").end()
            counter.add(3)
            scraped = urllib.request.urlopen(tel.metrics_url).read().decode()
            print([s.name for s in first.get_finished_spans()], [s.name for s in second.get_finished_spans()])
            print([line for line in scraped.splitlines() if line.startswith("app_calls_total")])
            mevobs.shutdown()
            """
        )
        assert proc.returncode == 0, proc.stderr
        spans, counter = proc.stdout.splitlines()
        assert spans == "[] ['after']"
        assert counter.startswith("['app_calls_total{") and counter.endswith(" 3.0']")
        assert proc.stderr == ""


class TestPorts:
    def test_bound_ports_are_reported(self) -> None:
        telemetry = mevobs.configure(
            exporter="prometheus", metrics_port=0, health_port=0, log_destination="none"
        )
        assert telemetry.metrics_port not in (None, 0)
        assert telemetry.metrics_url == f"http://127.0.0.1:{telemetry.metrics_port}/metrics"
        assert telemetry.health_port not in (None, 0)
        with urllib.request.urlopen(telemetry.metrics_url, timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(
            f"http://127.0.0.1:{telemetry.health_port}/healthz", timeout=5
        ) as response:
            assert response.status == 200

    def test_process_metrics_are_served_once(self) -> None:
        """OpenTelemetry's system metrics, and none of prometheus_client's default collectors."""
        telemetry = mevobs.configure(
            exporter="prometheus", metrics_port=0, system_metrics=True, log_destination="none"
        )
        assert telemetry.metrics_url is not None
        body = urllib.request.urlopen(telemetry.metrics_url, timeout=5).read().decode()
        families = [line.split()[2] for line in body.splitlines() if line.startswith("# TYPE ")]
        assert [name for name, n in collections.Counter(families).items() if n > 1] == []
        assert "process_cpu_time_seconds" in families or "process_cpu_time_seconds_total" in families
        for default in (
            "process_cpu_seconds",
            "process_resident_memory_bytes",
            "python_gc_objects_collected",
        ):
            assert default not in families


def test_the_disabled_path_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    handlers = list(LOGGER.handlers)
    telemetry = mevobs.configure()
    assert telemetry.pipeline == "disabled" and list(LOGGER.handlers) == handlers
    assert logging.getLogger("mevobs").level == LOGGER.level
