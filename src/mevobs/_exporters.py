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


_PROTOCOLS = ("grpc", "http/protobuf")


def signal_protocol(signal: str, default: str) -> str:
    """The OTLP protocol of ``signal``: the per-signal variable, then the general one,
    then ``default``. ``http/json`` (no SDK exporter speaks it) and unknown values are
    refused with one warning naming the variable; OTLP over HTTP/protobuf is used for
    http/json, the default otherwise."""
    import os

    for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = os.environ.get(name, "").strip().lower()
        if not value:
            continue
        if value in _PROTOCOLS:
            return value
        fallback = "http/protobuf" if value == "http/json" else default
        warn_once(f"{name}={value!r} is not supported (grpc or http/protobuf); using {fallback}")
        return fallback
    return default


_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """One WARNING on the mevobs logger per distinct message and process."""
    import logging

    if message not in _WARNED:
        _WARNED.add(message)
        logging.getLogger("mevobs").warning("mevobs: %s", message)


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


def _otlp(settings: Any, default: str) -> SignalExporters:
    protocols = {signal: signal_protocol(signal, default) for signal in SIGNALS}
    return SignalExporters(
        _exporter("traces", protocols["traces"], settings),
        _metric_exporter(protocols["metrics"], settings),
        _exporter("logs", protocols["logs"], settings),
        protocols["traces"],
    )


def _otlp_grpc(settings: Any) -> SignalExporters:
    return _otlp(settings, "grpc")


def _otlp_http(settings: Any) -> SignalExporters:
    return _otlp(settings, "http/protobuf")


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
