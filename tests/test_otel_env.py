"""The OTEL_* environment, table-driven: every variable of docs/getting-started.md's table
runs through configure() against local OTLP receivers, and the test checks what arrives.

Each row sets variables (and maybe configure() arguments), runs one successful swap
and one failing RPC call, shuts down, and checks the receivers: the resource, which
signals came, over which protocol, with which headers, and the warning an invalid
value gives. The table in the docs is rendered from ``mevobs._otel_env.ENV_VARIABLES``;
a test checks the page holds it and that every variable of it has a row here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.otlp_capture import GrpcCapture, HttpCapture

import mevobs
from mevobs._otel_env import ENV_VARIABLES, env_table_markdown, reset_warnings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"
SWAP, RPC = "swap uniswap_v2", "rpc eth_call"
MEVOBS_METRIC = "mev.operation.duration"


@dataclass
class Run:
    """What one row's configure() produced and what the receivers got."""

    grpc: GrpcCapture
    grpc2: GrpcCapture
    http: HttpCapture
    telemetry: mevobs.Telemetry
    warnings: list[str]
    scraped: str = ""
    metrics_arrived_early: bool = False

    def resource(self) -> dict[str, Any]:
        for receiver in (self.grpc, self.grpc2, self.http):
            for resource in receiver.received.resources():
                return resource
        raise AssertionError("nothing arrived")


@dataclass
class Row:
    covers: tuple[str, ...]  # the table's variables this row checks
    env: dict[str, str]  # {grpc}, {grpc2} and {http} are the receivers' URLs
    check: Callable[[Run], Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    warns: str | None = None  # text of the one expected warning (it names the variable)
    http_delay: float = 0.0
    early_metrics: bool = False  # wait for a periodic metric export before shutting down

    @property
    def id(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.env.items() if not v.startswith("{")) or self.covers[0]


def _all_signals_at(receiver: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        got = getattr(run, receiver).received
        assert {SWAP, RPC} <= got.span_names()
        assert MEVOBS_METRIC in got.metric_names()
        assert len(got.log_bodies()) >= 2

    return check


def _signals(run: Run) -> tuple[set[str], set[str], int]:
    got = run.grpc.received
    return got.span_names(), got.metric_names(), len(got.log_bodies())


def _no_spans(run: Run) -> None:
    spans, metrics, logs = _signals(run)
    assert not spans and MEVOBS_METRIC in metrics and logs >= 2


def _both_spans(run: Run) -> None:
    assert {SWAP, RPC} <= run.grpc.received.span_names()


GRPC = {"OTEL_EXPORTER_OTLP_ENDPOINT": "{grpc}"}

ROWS: list[Row] = [
    # --- the resource
    Row(
        ("OTEL_SERVICE_NAME",),
        {**GRPC, "OTEL_SERVICE_NAME": "svc-env"},
        lambda run: run.resource()["service.name"] == "svc-env",
    ),
    Row(
        ("OTEL_SERVICE_NAME",),
        {**GRPC, "OTEL_SERVICE_NAME": "svc-env"},
        lambda run: run.resource()["service.name"] == "svc-arg",
        kwargs={"service_name": "svc-arg"},
    ),
    Row(
        ("OTEL_RESOURCE_ATTRIBUTES",),
        {
            **GRPC,
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=a,deployment.environment.name=production,"
            "team=alpha%20beta",
        },
        lambda run: (
            run.resource()["service.name"] == "a"
            and run.resource()["deployment.environment.name"] == "production"
            and run.resource()["team"] == "alpha beta"
            and run.resource()["telemetry.distro.name"] == "mevobs"
        ),
    ),
    Row(
        ("OTEL_RESOURCE_ATTRIBUTES",),
        {**GRPC, "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=production,team=env"},
        lambda run: (
            run.resource()["deployment.environment.name"] == "staging" and run.resource()["team"] == "arg"
        ),
        kwargs={"environment": "staging", "resource_attributes": {"team": "arg"}},
    ),
    # --- the SDK switch
    Row(
        ("OTEL_SDK_DISABLED",),
        {**GRPC, "OTEL_SDK_DISABLED": "true"},
        lambda run: run.telemetry.pipeline == "disabled" and not run.grpc.received.signals(),
    ),
    Row(
        ("OTEL_SDK_DISABLED",),
        {**GRPC, "OTEL_SDK_DISABLED": "maybe"},
        _all_signals_at("grpc"),
        warns="OTEL_SDK_DISABLED='maybe' is invalid",
    ),
    # --- the sampler
    Row(("OTEL_TRACES_SAMPLER",), {**GRPC, "OTEL_TRACES_SAMPLER": "always_off"}, _no_spans),
    Row(("OTEL_TRACES_SAMPLER",), {**GRPC, "OTEL_TRACES_SAMPLER": "parentbased_always_off"}, _no_spans),
    Row(
        ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"),
        {**GRPC, "OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "0"},
        _both_spans,
    ),
    Row(
        ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"),
        {**GRPC, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
        # tail sampling: the failed trace is kept whole, the successful one is not
        lambda run: run.grpc.received.span_names() == {RPC},
    ),
    Row(
        ("OTEL_TRACES_SAMPLER_ARG",),
        {**GRPC, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
        _both_spans,
        warns="OTEL_TRACES_SAMPLER_ARG='2' is invalid",
    ),
    Row(
        ("OTEL_TRACES_SAMPLER",),
        {**GRPC, "OTEL_TRACES_SAMPLER": "xray"},
        _both_spans,
        warns="OTEL_TRACES_SAMPLER='xray' is invalid",
    ),
    Row(
        ("OTEL_TRACES_SAMPLER",),
        {**GRPC, "OTEL_TRACES_SAMPLER": "always_off"},
        _both_spans,
        kwargs={"sample_ratio": 1.0},  # an explicit argument wins
    ),
    # --- the exporter of each signal
    Row(("OTEL_TRACES_EXPORTER",), {**GRPC, "OTEL_TRACES_EXPORTER": "none"}, _no_spans),
    Row(
        ("OTEL_TRACES_EXPORTER",),
        {**GRPC, "OTEL_TRACES_EXPORTER": "zipkin"},
        _all_signals_at("grpc"),
        warns="OTEL_TRACES_EXPORTER='zipkin' is invalid",
    ),
    Row(
        ("OTEL_METRICS_EXPORTER",),
        {**GRPC, "OTEL_METRICS_EXPORTER": "none"},
        lambda run: _signals(run)[0] >= {SWAP, RPC} and not _signals(run)[1] and _signals(run)[2] >= 2,
    ),
    Row(
        ("OTEL_LOGS_EXPORTER",),
        {**GRPC, "OTEL_LOGS_EXPORTER": "none"},
        lambda run: (
            _signals(run)[0] >= {SWAP, RPC} and MEVOBS_METRIC in _signals(run)[1] and not _signals(run)[2]
        ),
    ),
    Row(
        ("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT"),
        {
            **GRPC,
            "OTEL_METRICS_EXPORTER": "prometheus",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
        },
        lambda run: (
            run.telemetry.metrics_port not in (None, 0, 9464)
            and "mev_operation_duration_seconds_count" in run.scraped
            and not run.grpc.received.metric_names()
            and {SWAP, RPC} <= run.grpc.received.span_names()
        ),
    ),
    # --- endpoints
    Row(("OTEL_EXPORTER_OTLP_ENDPOINT",), dict(GRPC), _all_signals_at("grpc")),
    Row(
        ("OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT",),
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{grpc}",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "{grpc}",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "{grpc}",
        },
        _all_signals_at("grpc"),  # set alone, they select the OTLP exporter
    ),
    Row(
        ("OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT",),
        {**GRPC, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{grpc2}"},
        lambda run: (
            run.grpc2.received.signals() == {"traces"} and run.grpc.received.signals() == {"metrics", "logs"}
        ),
    ),
    # --- protocols
    Row(
        ("OTEL_EXPORTER_OTLP_PROTOCOL",),
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "{http}", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
        _all_signals_at("http"),
    ),
    Row(
        ("OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL",),
        {
            **GRPC,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{http}/v1/traces",
        },
        lambda run: (
            run.http.received.signals() == {"traces"} and run.grpc.received.signals() == {"metrics", "logs"}
        ),
    ),
    Row(
        ("OTEL_EXPORTER_OTLP_PROTOCOL",),
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "{http}", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
        lambda run: (
            _all_signals_at("http")(run) is None and set(run.http.content_types) == {"application/x-protobuf"}
        ),
        warns="OTEL_EXPORTER_OTLP_PROTOCOL='http/json' is not supported",
    ),
    Row(
        ("OTEL_EXPORTER_OTLP_PROTOCOL",),
        {**GRPC, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc-bogus"},
        _all_signals_at("grpc"),
        warns="OTEL_EXPORTER_OTLP_PROTOCOL='grpc-bogus' is invalid",
    ),
    # --- headers
    Row(
        ("OTEL_EXPORTER_OTLP_HEADERS",),
        {**GRPC, "OTEL_EXPORTER_OTLP_HEADERS": "x-team=alpha%20beta,x-other=1"},
        lambda run: (
            all(
                h.get("x-team") == "alpha beta"
                for s in ("traces", "metrics", "logs")
                for h in run.grpc.received.headers(s)
            )
            and run.grpc.received.headers("traces")
        ),
    ),
    Row(
        ("OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_HEADERS",),
        {
            **GRPC,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-team=all",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-team=traces",
        },
        lambda run: (
            {h.get("x-team") for h in run.grpc.received.headers("traces")} == {"traces"}
            and {h.get("x-team") for h in run.grpc.received.headers("metrics")} == {"all"}
        ),
    ),
    # --- timeouts: milliseconds, as the specification says (the receiver answers after 1 s)
    Row(
        ("OTEL_EXPORTER_OTLP_TIMEOUT",),
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "{http}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "200",
        },
        lambda run: mevobs.dropped_counts().get("export_failed", 0) > 0,
        http_delay=1.0,
    ),
    Row(
        ("OTEL_EXPORTER_OTLP_TIMEOUT",),
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "{http}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "200",
        },
        lambda run: (
            not mevobs.dropped_counts().get("export_failed") and {SWAP, RPC} <= run.http.received.span_names()
        ),
        kwargs={"export_timeout_seconds": 5},  # an explicit argument wins
        http_delay=1.0,
    ),
    Row(
        ("OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_TIMEOUT",),
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "{http}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "5000",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "200",
        },
        # spans give up; logs wait and arrive
        lambda run: (
            mevobs.dropped_counts().get("export_failed", 0) > 0 and len(run.http.received.log_bodies()) >= 2
        ),
        http_delay=1.0,
    ),
    # --- the metric reader (read by the SDK)
    Row(
        ("OTEL_METRIC_EXPORT_INTERVAL",),
        {**GRPC, "OTEL_METRIC_EXPORT_INTERVAL": "100"},
        lambda run: run.metrics_arrived_early,
        early_metrics=True,
    ),
    Row(
        ("OTEL_METRIC_EXPORT_TIMEOUT",),
        {**GRPC, "OTEL_METRIC_EXPORT_TIMEOUT": "1234"},
        lambda run: (
            [r._export_timeout_millis for r in run.telemetry.meter_provider._metric_readers] == [1234]
        ),
    ),
]


@pytest.fixture
def receivers() -> Iterator[tuple[GrpcCapture, GrpcCapture]]:
    first, second = GrpcCapture(), GrpcCapture()
    first.start()
    second.start()
    yield first, second
    first.stop()
    second.stop()


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _workload() -> None:
    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap() -> None:
        mevobs.current_operation().record_gas(gas_used=21_000, effective_gas_price_wei=10**9)

    swap()
    with contextlib.suppress(TimeoutError), mevobs.rpc(method="eth_call"):
        raise TimeoutError("slow node")


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_environment_variable_reaches_the_receiver(
    row: Row, receivers: tuple[GrpcCapture, GrpcCapture], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("OTEL_", "MEVOBS_")):
            monkeypatch.delenv(name)
    http = HttpCapture(delay=row.http_delay)  # cheap: one thread, stopped at the end
    http.start()
    grpc, grpc2 = receivers
    urls = {"{grpc}": grpc.endpoint, "{grpc2}": grpc2.endpoint, "{http}": http.endpoint}
    for name, value in row.env.items():
        for placeholder, url in urls.items():
            value = value.replace(placeholder, url)
        monkeypatch.setenv(name, value)
    reset_warnings()
    warned = _Warnings()
    logging.getLogger("mevobs.env").addHandler(warned)
    monkeypatch.setattr("mevobs._state.STATE.dropped_tally", {})
    try:
        kwargs = {"log_destination": "none", **row.kwargs}
        telemetry = mevobs.configure(**kwargs)
        _workload()
        run = Run(grpc, grpc2, http, telemetry, warned.messages)
        if row.early_metrics:
            run.metrics_arrived_early = grpc.received.wait_for(
                lambda: MEVOBS_METRIC in grpc.received.metric_names(), timeout=5
            )
        if telemetry.metrics_url is not None:
            run.scraped = urllib.request.urlopen(telemetry.metrics_url, timeout=5).read().decode()
        telemetry.shutdown(timeout_seconds=5)
        verdict = row.check(run)
        assert verdict is None or verdict, f"{row.env} {row.kwargs}: not as the table says"
        expected = [row.warns] if row.warns else []
        assert [m for m in warned.messages if not any(e in m for e in expected)] == []
        assert all(any(e in m for m in warned.messages) for e in expected), warned.messages
    finally:
        logging.getLogger("mevobs.env").removeHandler(warned)
        http.stop()


def test_every_variable_of_the_table_has_a_row() -> None:
    covered = {name for row in ROWS for name in row.covers}
    assert {v.name for v in ENV_VARIABLES} == covered


def test_the_getting_started_page_shows_the_table() -> None:
    assert env_table_markdown() in DOCS.read_text(encoding="utf-8")


def test_an_invalid_value_is_warned_about_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two configure() calls with the same bad value: one warning, naming the variable."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "2")
    reset_warnings()
    with caplog.at_level(logging.WARNING, logger="mevobs.env"):
        mevobs.configure(log_destination="none")
        mevobs.configure(log_destination="none")
    warnings = [r.getMessage() for r in caplog.records if r.name == "mevobs.env"]
    assert warnings == [
        "mevobs: OTEL_TRACES_SAMPLER_ARG='2' is invalid (a ratio from 0 to 1); ignored, using 1.0"
    ]
