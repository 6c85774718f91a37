"""SDK pipelines for ``configure()``: the fast pipeline it owns, or the API path.

Imported only when ``configure()`` runs, so instrumented code that is never
configured does not load the SDK. :func:`build` creates everything and starts
nothing global: ``configure()`` installs the result only once every part of it
(ports included) is up, and on failure :meth:`Built.close` undoes what was made.

The fast pipeline (the default when mevobs owns the providers) records mevobs's
own telemetry through ``_fastcall``/``_fastpath``; the providers it still builds
serve everything else (the SDK spans of contrib instrumentations and of the
application's own tracer nest under mevobs's operations and join their traces).
The API path (``pipeline="api"``, or span processors, views or a sampler of the
application's own) records through the OpenTelemetry API into SDK providers, as
any instrumentation does: correct first, slower.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from mevobs import semconv
from mevobs._collect import ExemplarCollector, SlotCollection, attach_slots
from mevobs._exporters import SignalExporters, build_exporters, row_of
from mevobs._fastcall import adopt_foreign
from mevobs._fastpath import FastLogHandler, FastPipeline
from mevobs._logs import JsonFormatter, OtelLogBridge, TextFormatter
from mevobs._observations import record_db_span
from mevobs._otlp_export import EncodedExporter
from mevobs._otlp_output import EncodedLogOutput, EncodedSpanOutput
from mevobs._outputs import (
    FormattedLogOutput,
    LineWriter,
    ReadableLogOutput,
    ReadableSpanOutput,
    log_target,
    scrubbed_span,
)
from mevobs._settings import Settings
from mevobs._slots import SlotInstruments, SlotTable
from mevobs._state import STATE, Providers
from mevobs._version import __version__

SCOPE = InstrumentationScope(semconv.INSTRUMENTATION_SCOPE, __version__)


@dataclass
class Extras:
    """What configure() takes besides Settings: objects of the application's own."""

    span_processors: Sequence[SpanProcessor] = ()
    views: Sequence[Any] = ()
    sampler: Sampler | None = None
    app_owned: bool = False  # the application set global providers of its own

    @property
    def wants_api(self) -> bool:
        return bool(self.span_processors or self.views or self.sampler is not None or self.app_owned)


@dataclass
class Built:
    providers: Providers
    handlers: list[logging.Handler]
    fast: FastPipeline | None = None
    instruments: Any = None
    closers: list[Callable[[], Any]] = field(default_factory=list)
    metrics_port: int | None = None

    def close(self) -> None:
        """Undo a build that will not be installed (configure() failed later)."""
        if self.fast is not None:
            with contextlib.suppress(Exception):
                self.fast.shutdown(1.0)
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()


def resource_for(settings: Settings) -> Resource:
    """The resource: explicit configure() values win, then the OTEL_* environment
    (``Resource.create`` reads it), then mevobs's defaults, which never overwrite."""
    explicit = settings.model_fields_set
    given: dict[str, Any] = dict(settings.resource_attributes)
    if "service_name" in explicit:
        given["service.name"] = settings.service_name
    if "environment" in explicit:
        given["deployment.environment.name"] = settings.environment
    resource = Resource.create(given)
    attrs = dict(resource.attributes)
    defaults = {
        "deployment.environment.name": settings.environment,
        "service.instance.id": str(uuid.uuid4()),
        "telemetry.distro.name": "mevobs",
        "telemetry.distro.version": __version__,
    }
    if str(attrs.get("service.name", "")).startswith("unknown_service") and not os.environ.get(
        "OTEL_SERVICE_NAME"
    ):
        attrs["service.name"] = settings.service_name
    for key, value in defaults.items():
        attrs.setdefault(key, value)
    return Resource(attrs, resource.schema_url)


def child_resource(resource: Resource, settings: Settings) -> Resource:
    """The resource of a forked child: the parent's, with a ``service.instance.id`` of
    its own (unless the user set one) and its own ``process.pid``. Built from the
    parent's without ``Resource.create``, whose detector threads need locks that other
    modules re-create only after this runs in the child."""
    attrs = dict(resource.attributes)
    given = {
        item.partition("=")[0].strip() for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
    }
    if "service.instance.id" not in settings.resource_attributes and "service.instance.id" not in given:
        attrs["service.instance.id"] = str(uuid.uuid4())
    if "process.pid" in attrs:
        attrs["process.pid"] = os.getpid()
    return Resource(attrs, resource.schema_url)


def _formatter(settings: Settings, resource: Resource) -> logging.Formatter:
    if settings.log_format == "json":
        return JsonFormatter(str(resource.attributes.get("service.name")), scrub=settings.scrub_secrets)
    return TextFormatter(scrub=settings.scrub_secrets)


def _prometheus(settings: Settings, reader_for: Callable[[Any], MetricReader], built: Built) -> MetricReader:
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError(
            "exporter='prometheus' needs the prometheus extra: pip install 'mevobs[prometheus]'"
        ) from exc
    # A registry of our own: no prometheus_client default process collectors beside
    # OpenTelemetry's system metrics (each process metric once). No auto_describe:
    # it would collect from the reader before a MeterProvider owns it, which the SDK
    # reports on stderr.
    registry = CollectorRegistry(auto_describe=False)
    reader = reader_for(registry)
    server, thread = start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    built.metrics_port = int(server.server_address[1])

    pid = os.getpid()

    def close() -> None:
        if os.getpid() == pid:  # a forked child has the socket but not the serving thread
            server.shutdown()
        server.server_close()
        thread.join(2)

    built.closers.append(close)
    return reader


def _periodic_reader(settings: Settings, exporter: Any) -> MetricReader:
    """The push reader; the SDK reads OTEL_METRIC_EXPORT_INTERVAL and _TIMEOUT (and
    warns about a bad value) unless configure() was given the setting."""
    explicit = settings.model_fields_set
    interval: float | None = settings.export_interval_seconds * 1000
    timeout: float | None = settings.export_timeout_seconds * 1000
    if "export_interval_seconds" not in explicit and os.environ.get("OTEL_METRIC_EXPORT_INTERVAL"):
        interval = None
    if "export_timeout_seconds" not in explicit and os.environ.get("OTEL_METRIC_EXPORT_TIMEOUT"):
        timeout = None
    return PeriodicExportingMetricReader(
        exporter, export_interval_millis=interval, export_timeout_millis=timeout
    )


class ForeignSpanProcessor(SpanProcessor):
    """Spans of other instrumentations (SDK spans) join the fast pipeline: inside a
    mevobs operation they wait for its trace's tail decision, else they are queued."""

    def __init__(self, pipeline: FastPipeline) -> None:
        self.pipeline = pipeline

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        record_db_span(span)
        if not adopt_foreign(span, self.pipeline):
            self.pipeline.submit_foreign(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.pipeline.flush(timeout_millis / 1000)


def build_fast(
    settings: Settings,
    *,
    exporters: SignalExporters | None = None,
    metric_reader: MetricReader | None = None,
) -> Built:
    """The fast pipeline: slots, the worker, the outputs, and providers for the rest.

    The test kit passes its in-memory ``exporters`` and ``metric_reader``. A forked
    child gets an empty slot table and, when the exporters came from ``settings``,
    exporters, outputs, resource and meter provider of its own (:class:`_ChildRenewal`).
    """
    resource = resource_for(settings)
    own_exporters = exporters is None
    if exporters is None:
        exporters = build_exporters(settings)
    table = SlotTable(
        settings.max_series_per_metric, on_overflow=lambda spec: STATE.dropped("series_cap", spec.name)
    )
    slots = SlotCollection(table, SCOPE, resource)
    timeout_ms = settings.export_timeout_seconds * 1000
    built = Built(Providers(None, None, None), [])  # type: ignore[arg-type]
    readers: list[MetricReader] = []
    if metric_reader is not None:
        readers.append(metric_reader)
    elif row_of(settings, "metrics").pull:
        readers.append(_prometheus(settings, lambda registry: _exemplar_reader(table, registry), built))
    elif exporters.metrics is not None:
        readers.append(_periodic_reader(settings, exporters.metrics))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    for reader in readers:
        attach_slots(reader, slots)
    span_output, log_outputs = _fast_outputs(settings, resource, exporters)
    pipeline = FastPipeline(
        table=table,
        span_output=span_output,
        log_outputs=log_outputs,
        sample_ratio=settings.sample_ratio,
        slow_seconds=settings.slow_threshold_seconds,
        slow_by_kind=settings.slow_threshold_by_kind,
        max_queue=settings.max_queue_size,
    )
    # Not a closer: Telemetry.shutdown() stops the pipeline itself, first (and once: a
    # second shutdown of its exporters would print the SDK's "already shutdown").
    tracer_provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        shutdown_on_exit=False,
    )
    tracer_provider.add_span_processor(ForeignSpanProcessor(pipeline))
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    providers = built.providers = Providers(tracer_provider, meter_provider, logger_provider)

    def close_meter() -> None:
        # The provider of this process: a forked child replaces it (the Providers object
        # is shared with the state and the Telemetry, so they follow).
        current: Any = providers.meter_provider
        current.shutdown(timeout_millis=timeout_ms)

    built.closers.append(close_meter)
    instruments = SlotInstruments(table)
    built.fast = pipeline
    built.instruments = instruments
    built.handlers = [FastLogHandler(pipeline)]
    pipeline.fork_hooks.append(
        _ChildRenewal(settings, resource, pipeline, instruments, providers, slots, readers, own_exporters)
    )
    return built


def _fast_outputs(
    settings: Settings, resource: Resource, exporters: SignalExporters
) -> tuple[Any, list[Any]]:
    """The span output and the log outputs of the fast pipeline. OTLP goes through
    the hand encoder (the SDK exporter only sends the bytes); other exporters get
    SDK records."""
    span_output: Any = None
    if isinstance(exporters.spans, EncodedExporter):
        span_output = EncodedSpanOutput(exporters.spans, resource, SCOPE.name, SCOPE.version or "")
    elif exporters.spans is not None:
        span_output = ReadableSpanOutput(exporters.spans, resource, SCOPE)
    log_outputs: list[Any] = []
    if settings.log_destination != "none":
        writer = LineWriter(log_target(settings), settings.max_queue_size)
        log_outputs.append(FormattedLogOutput(_formatter(settings, resource), writer))
    if isinstance(exporters.logs, EncodedExporter):
        log_outputs.append(
            EncodedLogOutput(
                exporters.logs, resource, SCOPE.name, SCOPE.version or "", scrub=settings.scrub_secrets
            )
        )
    elif exporters.logs is not None:
        log_outputs.append(ReadableLogOutput(exporters.logs, resource, SCOPE))
    return span_output, log_outputs


class _ChildRenewal:
    """What a forked child of a fast pipeline re-creates (a ``FastPipeline.fork_hooks`` entry).

    The pipeline has already emptied its queues and made an empty slot table. The
    instruments record into that table. With exporters built from the settings, the
    child also gets its own resource (a new ``service.instance.id`` unless the user set
    one), its own exporters (a gRPC channel must not cross a fork) and outputs, and a
    new meter provider: the parent's holds the parent's cumulative SDK instruments and a
    reader whose thread the SDK restarts in the child, so that reader is silenced.
    Pulled metrics (Prometheus) are the parent's to serve: the child's stay in its slots.
    The test kit's in-memory exporters and reader stay, reading the new table.
    """

    def __init__(
        self,
        settings: Settings,
        resource: Resource,
        pipeline: FastPipeline,
        instruments: SlotInstruments,
        providers: Providers,
        slots: SlotCollection,
        readers: list[MetricReader],
        own_exporters: bool,
    ) -> None:
        self.settings = settings
        self.resource = resource
        self.pipeline = pipeline
        self.instruments = instruments
        self.providers = providers
        self.slots = slots
        self.readers = readers
        self.own_exporters = own_exporters

    def __call__(self) -> None:
        table = self.pipeline.table
        self.instruments.retarget(table)
        if not self.own_exporters:
            self.slots.retarget(table)
            return
        for reader in self.readers:
            _silence(reader)
        # Nothing of the parent's goes out from here, even if building the child's fails.
        self.pipeline.span_output, self.pipeline.log_outputs = None, []
        settings = self.settings
        resource = self.resource = child_resource(self.resource, settings)
        exporters = build_exporters(settings)
        readers: list[MetricReader] = []
        if exporters.metrics is not None and not row_of(settings, "metrics").pull:
            readers.append(_periodic_reader(settings, exporters.metrics))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
        self.slots = SlotCollection(table, SCOPE, resource)
        for reader in readers:
            attach_slots(reader, self.slots)
        self.readers = readers
        self.providers.meter_provider = meter_provider
        self.pipeline.span_output, self.pipeline.log_outputs = _fast_outputs(settings, resource, exporters)


def _silence(reader: MetricReader) -> None:
    """Stop a reader inherited from the parent without exporting: its collection
    returns nothing and its thread (restarted by the SDK in the child) ends at once."""
    reader._collect = lambda *args, **kwargs: None  # type: ignore[assignment]
    stop = getattr(reader, "_shutdown_event", None)
    if stop is not None:
        stop.set()


def _exemplar_reader(table: SlotTable, registry: Any) -> MetricReader:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    reader = PrometheusMetricReader(registry=registry)
    inner = reader._collector
    registry.unregister(inner)
    registry.register(ExemplarCollector(inner, table))
    return reader


class DbDurationProcessor(SpanProcessor):
    """The API path's ``mev.db.duration``: from the spans of database instrumentations."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        record_db_span(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class BoundarySpanExporter(SpanExporter):
    """The API path's export boundary: scrubs every span (mevobs's and other
    instrumentations') before the exporter sees it, and counts what it failed to send."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            clean = [scrubbed_span(span) for span in spans] if STATE.scrub else spans
            result = self.inner.export(clean)
        except Exception:
            result = SpanExportResult.FAILURE
        if result != SpanExportResult.SUCCESS:
            STATE.dropped("export_failed", type(self.inner).__name__, len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingLogExporter(LogRecordExporter):
    """Counts the log records an exporter failed to send, then delegates (API path)."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        try:
            result = self.inner.export(batch)
        except Exception:
            result = LogRecordExportResult.FAILURE
        if result != LogRecordExportResult.SUCCESS:
            STATE.dropped("export_failed", type(self.inner).__name__, len(batch))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))


def build_api(
    settings: Settings,
    extras: Extras,
    *,
    exporters: SignalExporters | None = None,
    metric_reader: MetricReader | None = None,
) -> Built:
    """The API path: SDK providers with batch processors, as any instrumentation uses."""
    resource = resource_for(settings)
    if exporters is None:
        exporters = build_exporters(settings)
    timeout_ms = int(settings.export_timeout_seconds * 1000)
    built = Built(Providers(None, None, None), [])  # type: ignore[arg-type]
    sampler = extras.sampler or ParentBased(TraceIdRatioBased(settings.sample_ratio))
    tracer_provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
    tracer_provider.add_span_processor(DbDurationProcessor())
    for processor in extras.span_processors:
        tracer_provider.add_span_processor(processor)
    if exporters.spans is not None:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                BoundarySpanExporter(exporters.spans),
                max_queue_size=settings.max_queue_size,
                export_timeout_millis=timeout_ms,
            )
        )
    readers: list[MetricReader] = []
    if metric_reader is not None:
        readers.append(metric_reader)
    elif row_of(settings, "metrics").pull:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers.append(
            _prometheus(settings, lambda registry: PrometheusMetricReader(registry=registry), built)
        )
    elif exporters.metrics is not None:
        readers.append(_periodic_reader(settings, exporters.metrics))
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, views=list(extras.views), shutdown_on_exit=False
    )
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    if exporters.logs is not None:
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(
                CountingLogExporter(exporters.logs),
                max_queue_size=settings.max_queue_size,
                export_timeout_millis=timeout_ms,
            )
        )
    built.providers = Providers(tracer_provider, meter_provider, logger_provider)
    built.closers += [
        lambda: tracer_provider.shutdown(),
        lambda: meter_provider.shutdown(timeout_millis=timeout_ms),
        lambda: logger_provider.shutdown(),
    ]
    handlers: list[logging.Handler] = []
    if settings.log_destination != "none":
        target = log_target(settings)
        handler: logging.Handler
        if hasattr(target, "write_lines"):
            from mevobs._logfile import LogFileHandler

            handler = LogFileHandler(target)
        else:
            handler = logging.StreamHandler(target)
        handler.setFormatter(_formatter(settings, resource))
        handlers.append(handler)
        built.closers.append(handler.close)
    if exporters.logs is not None:
        handlers.append(OtelLogBridge(logger_provider, scrub=settings.scrub_secrets))
    built.handlers = handlers
    return built


def build(settings: Settings, extras: Extras) -> Built:
    """Build the pipeline ``settings`` ask for; nothing global is touched here."""
    if settings.pipeline == "api" or extras.wants_api:
        return build_api(settings, extras)
    return build_fast(settings)
