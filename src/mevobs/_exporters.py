"""The exporters ``configure(exporter=...)`` knows, as a table: name, builder, push or pull.

Adding an exporter is adding a row here; ``Settings`` validates names against
the table and the CLI and the demo list its names. A builder returns the SDK
exporters of each signal (any may be None); the SDK is imported inside the
builders, so reading this table costs nothing. OTLP exporters are built without
an endpoint, headers or timeout unless the user gave one to ``configure()``, so
the SDK's own reading of the ``OTEL_EXPORTER_OTLP_*`` variables (general and
per-signal) applies as its specification says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SIGNALS = ("traces", "metrics", "logs")


@dataclass
class SignalExporters:
    """What one row builds: an SDK exporter per signal, or None where it has none."""

    spans: Any = None
    metrics: Any = None
    logs: Any = None
    protocol: str = ""


@dataclass(frozen=True)
class ExporterRow:
    """One way out: ``pull`` rows serve metrics (Prometheus) instead of pushing them."""

    name: str
    description: str
    build: Callable[[Any], SignalExporters]
    pull: bool = False


def _otlp_kwargs(settings: Any, signal: str, protocol: str) -> dict[str, Any]:
    """Only what the user gave configure() explicitly; the SDK reads the environment."""
    kwargs: dict[str, Any] = {}
    explicit = settings.model_fields_set
    if settings.endpoint and "endpoint" in explicit:
        base = settings.endpoint.rstrip("/")
        kwargs["endpoint"] = base if protocol == "grpc" else f"{base}/v1/{signal}"
    if "export_timeout_seconds" in explicit or not _env_timeout(signal):
        kwargs["timeout"] = settings.export_timeout_seconds
    return kwargs


def _env_timeout(signal: str) -> bool:
    import os

    return bool(
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    )


def _otlp_grpc(settings: Any) -> SignalExporters:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return SignalExporters(
        OTLPSpanExporter(**_otlp_kwargs(settings, "traces", "grpc")),
        OTLPMetricExporter(max_export_batch_size=METRIC_BATCH, **_otlp_kwargs(settings, "metrics", "grpc")),
        OTLPLogExporter(**_otlp_kwargs(settings, "logs", "grpc")),
        "grpc",
    )


def _otlp_http(settings: Any) -> SignalExporters:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return SignalExporters(
        OTLPSpanExporter(**_otlp_kwargs(settings, "traces", "http/protobuf")),
        OTLPMetricExporter(
            max_export_batch_size=METRIC_BATCH, **_otlp_kwargs(settings, "metrics", "http/protobuf")
        ),
        OTLPLogExporter(**_otlp_kwargs(settings, "logs", "http/protobuf")),
        "http/protobuf",
    )


def _console(settings: Any) -> SignalExporters:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    # Log lines already print through the mevobs log destination; not twice.
    return SignalExporters(ConsoleSpanExporter(), ConsoleMetricExporter(), None, "console")


def _prometheus(settings: Any) -> SignalExporters:
    return SignalExporters(protocol="prometheus")


def _none(settings: Any) -> SignalExporters:
    return SignalExporters()


METRIC_BATCH = 1000
"""Data points per OTLP metrics request: keeps every request far below gRPC's 4 MiB."""

EXPORTERS: dict[str, ExporterRow] = {
    row.name: row
    for row in (
        ExporterRow("otlp", "OTLP to a collector (gRPC, or OTEL_EXPORTER_OTLP_PROTOCOL)", _otlp_grpc),
        ExporterRow("otlp-http", "OTLP over HTTP/protobuf", _otlp_http),
        ExporterRow("console", "spans and metrics printed to stdout (development)", _console),
        ExporterRow(
            "prometheus",
            "metrics served on metrics_host:metrics_port (needs the prometheus extra)",
            _prometheus,
            pull=True,
        ),
        ExporterRow("none", "nothing leaves the process (logs still go to log_destination)", _none),
    )
}
EXPORTER_NAMES: tuple[str, ...] = tuple(EXPORTERS)
