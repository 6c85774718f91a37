"""SDK pipelines for ``configure()``: providers, processors, readers and exporters.

Imported only when ``configure()`` runs, so that instrumented code that is
never configured does not load the SDK. Every exporter is wrapped so that
failed exports and queue overflows are counted on ``mev.telemetry.dropped``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from mevobs._settings import Settings
from mevobs._state import STATE, Providers
from mevobs._version import __version__


@dataclass
class Built:
    providers: Providers
    closers: list[Callable[[], Any]] = field(default_factory=list)
    bridge_logs: bool = False


def resource_for(settings: Settings) -> Resource:
    return Resource.create(
        {
            **settings.resource_attributes,
            "service.name": settings.service_name,
            "deployment.environment.name": settings.environment,
            "telemetry.distro.name": "mevobs",
            "telemetry.distro.version": __version__,
        }
    )


def count_failed_exports(exporter: Any, size: Callable[[Any], int]) -> Any:
    """Wrap ``exporter.export`` so that failures are counted as dropped telemetry."""
    original = exporter.export

    def export(batch: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = original(batch, *args, **kwargs)
        except Exception:
            STATE.dropped("export_failed", type(exporter).__name__, size(batch))
            raise
        if getattr(result, "name", "") == "FAILURE":
            STATE.dropped("export_failed", type(exporter).__name__, size(batch))
        return result

    exporter.export = export
    return exporter


def _queue_len(processor: Any) -> int | None:
    inner = getattr(processor, "_batch_processor", None)
    queue = getattr(inner, "_queue", None)
    return len(queue) if queue is not None else None


class _DropCountingSpanProcessor(SpanProcessor):
    """Counts spans a full batch queue is about to drop, then delegates."""

    def __init__(self, inner: BatchSpanProcessor, max_queue: int) -> None:
        self._inner = inner
        self._max = max_queue

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if _queue_len(self._inner) == self._max:
            STATE.dropped("queue_full", "span")
        self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _DropCountingLogProcessor(LogRecordProcessor):
    """Counts log records a full batch queue is about to drop, then delegates."""

    def __init__(self, inner: BatchLogRecordProcessor, max_queue: int) -> None:
        self._inner = inner
        self._max = max_queue

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if _queue_len(self._inner) == self._max:
            STATE.dropped("queue_full", "log")
        self._inner.on_emit(log_record)

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _otlp_endpoint(settings: Settings, signal: str) -> str:
    if settings.exporter == "otlp":
        return settings.endpoint or "http://localhost:4317"
    base = (settings.endpoint or "http://localhost:4318").rstrip("/")
    return f"{base}/v1/{signal}"


def _exporters(
    settings: Settings,
) -> tuple[SpanExporter | None, MetricExporter | None, LogRecordExporter | None]:
    timeout = settings.export_timeout_seconds
    kind = settings.exporter
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = _otlp_endpoint(settings, "")
        insecure = not endpoint.startswith("https://")
        return (
            OTLPSpanExporter(endpoint=endpoint, insecure=insecure, timeout=timeout),
            OTLPMetricExporter(endpoint=endpoint, insecure=insecure, timeout=timeout),
            OTLPLogExporter(endpoint=endpoint, insecure=insecure, timeout=timeout),
        )
    if kind == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (
            OTLPLogExporter as HttpLogExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return (
            HttpSpanExporter(endpoint=_otlp_endpoint(settings, "traces"), timeout=timeout),
            HttpMetricExporter(endpoint=_otlp_endpoint(settings, "metrics"), timeout=timeout),
            HttpLogExporter(endpoint=_otlp_endpoint(settings, "logs"), timeout=timeout),
        )
    if kind == "console":
        # Log lines already print through the mevobs logger's handler; not twice.
        return ConsoleSpanExporter(), ConsoleMetricExporter(), None
    return None, None, None


def _prometheus_reader(settings: Settings, closers: list[Callable[[], Any]]) -> MetricReader:
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import REGISTRY, start_http_server
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError(
            "exporter='prometheus' needs the prometheus extra: pip install 'mevobs[prometheus]'"
        ) from exc
    reader = PrometheusMetricReader()
    started = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    server = started[0] if isinstance(started, tuple) else None

    def close() -> None:
        if server is not None:
            server.shutdown()
            server.server_close()
        with contextlib.suppress(Exception):
            REGISTRY.unregister(reader._collector)

    closers.append(close)
    return reader


def build(settings: Settings) -> Built:
    """Build providers for ``settings``; nothing global is touched here."""
    resource = resource_for(settings)
    closers: list[Callable[[], Any]] = []
    span_exp, metric_exp, log_exp = _exporters(settings)
    timeout_ms = int(settings.export_timeout_seconds * 1000)

    tracer_provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
    )
    if span_exp is not None:
        count_failed_exports(span_exp, len)
        batch = BatchSpanProcessor(
            span_exp, max_queue_size=settings.max_queue_size, export_timeout_millis=timeout_ms
        )
        tracer_provider.add_span_processor(_DropCountingSpanProcessor(batch, settings.max_queue_size))

    readers: list[MetricReader] = []
    if settings.exporter == "prometheus":
        readers.append(_prometheus_reader(settings, closers))
    elif metric_exp is not None:
        count_failed_exports(metric_exp, lambda _batch: 1)
        readers.append(
            PeriodicExportingMetricReader(
                metric_exp,
                export_interval_millis=settings.export_interval_seconds * 1000,
                export_timeout_millis=timeout_ms,
            )
        )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)

    logger_provider = LoggerProvider(resource=resource)
    if log_exp is not None:
        count_failed_exports(log_exp, _size)
        batch_logs = BatchLogRecordProcessor(
            log_exp, max_queue_size=settings.max_queue_size, export_timeout_millis=timeout_ms
        )
        logger_provider.add_log_record_processor(
            _DropCountingLogProcessor(batch_logs, settings.max_queue_size)
        )
    return Built(
        Providers(tracer_provider, meter_provider, logger_provider),
        closers,
        bridge_logs=log_exp is not None,
    )


def _size(batch: Sequence[Any]) -> int:
    return len(batch)
