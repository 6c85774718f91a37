"""The exporters ``configure(exporter=...)`` knows, as a table: name, builder, push or pull.

Adding an exporter is adding a row here; ``Settings`` validates names against
the table and the CLI and the demo list its names. A builder returns the SDK
exporters of each signal (any may be None); the SDK is imported inside the
builders, so reading this table costs nothing. Each signal may use its own row
(``traces_exporter``, ``metrics_exporter``, ``logs_exporter``, or the
``OTEL_<SIGNAL>_EXPORTER`` variables): :func:`build_exporters` builds each row once
for the signals that use it. OTLP exporters are built without an endpoint or
headers unless the user gave them to ``configure()``, so the SDK's own reading of
the ``OTEL_EXPORTER_OTLP_*`` variables (general and per-signal) applies as its
specification says; only the timeout variables are read here (``_otel_env``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from mevobs._otel_env import SIGNALS, signal_protocol, timeout_seconds, warn_once


@dataclass
class SignalExporters:
    """What one row builds: an SDK exporter per signal, or None where it has none."""

    spans: Any = None
    metrics: Any = None
    logs: Any = None
    protocol: str = ""


@dataclass(frozen=True)
class ExporterRow:
    """One way out: ``pull`` rows serve metrics (Prometheus) instead of pushing them.

    ``build(settings, signals)`` builds the exporters of the named signals only.
    """

    name: str
    description: str
    build: Callable[[Any, Collection[str]], SignalExporters]
    pull: bool = False
    signals: tuple[str, ...] = SIGNALS


def _otlp_kwargs(settings: Any, signal: str, protocol: str) -> dict[str, Any]:
    """Only what the user gave configure() explicitly; the SDK reads the environment.

    The timeout is the exception: the specification gives ``OTEL_EXPORTER_OTLP_TIMEOUT``
    in milliseconds and the Python SDK reads seconds, so mevobs reads it and passes seconds.
    """
    kwargs: dict[str, Any] = {}
    explicit = settings.model_fields_set
    if settings.endpoint and "endpoint" in explicit:
        base = settings.endpoint.rstrip("/")
        kwargs["endpoint"] = base if protocol == "grpc" else f"{base}/v1/{signal}"
    from_env = None if "export_timeout_seconds" in explicit else timeout_seconds(signal)
    kwargs["timeout"] = from_env if from_env is not None else settings.export_timeout_seconds
    return kwargs


def _exporter(signal: str, protocol: str, settings: Any) -> Any:
    """The OTLP exporter of ``signal``: the SDK's, able to send pre-encoded payloads too
    (``_otlp_export``); the plain SDK exporter where the adapter is unavailable."""
    from mevobs._otlp_export import (
        EncodedExportUnavailable,
        build_encoded_log_exporter,
        build_encoded_span_exporter,
    )

    kwargs = _otlp_kwargs(settings, signal, protocol)
    build = build_encoded_span_exporter if signal == "traces" else build_encoded_log_exporter
    try:
        return build(protocol, **kwargs)  # type: ignore[arg-type]
    except EncodedExportUnavailable as exc:
        warn_once(f"falling back to the SDK's OTLP encoding for {signal}: {exc}")
    if protocol == "grpc":
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

            return GrpcSpans(**kwargs)
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs

        return GrpcLogs(**kwargs)
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

        return HttpSpans(**kwargs)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs

    return HttpLogs(**kwargs)


def _metric_exporter(protocol: str, settings: Any) -> Any:
    kwargs = _otlp_kwargs(settings, "metrics", protocol)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

        return Grpc(max_export_batch_size=METRIC_BATCH, **kwargs)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

    return Http(max_export_batch_size=METRIC_BATCH, **kwargs)


def _otlp(settings: Any, signals: Collection[str], default: str) -> SignalExporters:
    protocols = {signal: signal_protocol(signal, default) for signal in signals}
    return SignalExporters(
        _exporter("traces", protocols["traces"], settings) if "traces" in signals else None,
        _metric_exporter(protocols["metrics"], settings) if "metrics" in signals else None,
        _exporter("logs", protocols["logs"], settings) if "logs" in signals else None,
        protocols.get("traces", default),
    )


def _otlp_grpc(settings: Any, signals: Collection[str]) -> SignalExporters:
    return _otlp(settings, signals, "grpc")


def _otlp_http(settings: Any, signals: Collection[str]) -> SignalExporters:
    return _otlp(settings, signals, "http/protobuf")


def _console(settings: Any, signals: Collection[str]) -> SignalExporters:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    # Log lines already print through the mevobs log destination; not twice.
    return SignalExporters(
        ConsoleSpanExporter() if "traces" in signals else None,
        ConsoleMetricExporter() if "metrics" in signals else None,
        None,
        "console",
    )


def _prometheus(settings: Any, signals: Collection[str]) -> SignalExporters:
    return SignalExporters(protocol="prometheus")


def _none(settings: Any, signals: Collection[str]) -> SignalExporters:
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
            signals=("metrics",),
        ),
        ExporterRow("none", "nothing leaves the process (logs still go to log_destination)", _none),
    )
}
EXPORTER_NAMES: tuple[str, ...] = tuple(EXPORTERS)


def row_of(settings: Any, signal: str) -> ExporterRow:
    """The exporter row ``signal`` uses: its own setting, else the general ``exporter``."""
    return EXPORTERS[getattr(settings, f"{signal}_exporter", None) or settings.exporter]


def build_exporters(settings: Any) -> SignalExporters:
    """The exporters of every signal, each from its row; a row that does not serve a
    signal (``prometheus`` for spans) gives it none. Each row is built once."""
    wanted: dict[str, list[str]] = {}
    for signal in SIGNALS:
        row = row_of(settings, signal)
        if signal in row.signals:
            wanted.setdefault(row.name, []).append(signal)
    out = SignalExporters(protocol=row_of(settings, "traces").name)
    for name, signals in wanted.items():
        built = EXPORTERS[name].build(settings, signals)
        out.spans = built.spans if "traces" in signals else out.spans
        out.metrics = built.metrics if "metrics" in signals else out.metrics
        out.logs = built.logs if "logs" in signals else out.logs
        if "traces" in signals:
            out.protocol = built.protocol
    return out
