"""Test kit: capture what mevobs emits and assert on it.

``capture()`` runs the same fast pipeline ``configure()`` runs in production
(slots, worker, tail sampling, the export boundary), with in-memory exporters,
isolated from any global OpenTelemetry providers (left untouched) and from a
running ``configure()`` (restored afterwards)::

    from mevobs.testing import capture

    with capture() as tel:
        my_bot.swap_exact_in(...)
    assert tel.counter_value("mev.gas.cost", exchange="uniswap_v2") > 0
    assert tel.span("swap uniswap_v2").attributes["mev.outcome"] == "success"

The pytest plugin (``mevobs._pytest_plugin``) provides the same as the
``mevobs_telemetry`` fixture. Lookups are strict: an unknown metric name or
filter key raises with the closest valid name, so a typo cannot make a negative
assertion pass. Attribute filters take full names (``**{"mev.exchange": "curve"}``)
or the short forms ``operation``, ``exchange``, ``chain``, ``strategy``, ``action``,
``method``, ``outcome``, ``error_type``, ``stage``, ``direction``, ``reason``,
``pool``, ``kind``. :meth:`Captured.export` gives everything as plain dicts with
fixed ids and times, for snapshot tests.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mevobs import semconv
from mevobs._exporters import SignalExporters
from mevobs._pipeline import Extras, build_api, build_fast
from mevobs._protocols import Detector, Hook
from mevobs._settings import Settings
from mevobs._state import LOGGER, STATE
from mevobs.guards._process import LIMITS, configure_limits
from mevobs.guards._runtime import start_instrumentations, start_system_metrics, watch_if_running
from mevobs.guards._start import security_monitor

SHORT_NAMES = {
    "operation": semconv.ATTR_OPERATION,
    "exchange": semconv.ATTR_EXCHANGE,
    "chain": semconv.ATTR_CHAIN,
    "strategy": semconv.ATTR_STRATEGY,
    "action": semconv.ATTR_LIQUIDITY_ACTION,
    "method": semconv.ATTR_RPC_METHOD,
    "outcome": semconv.ATTR_OUTCOME,
    "error_type": semconv.ATTR_ERROR_TYPE,
    "stage": semconv.ATTR_OPPORTUNITY_STAGE,
    "direction": semconv.ATTR_SLIPPAGE_DIRECTION,
    "reason": semconv.ATTR_DROP_REASON,
    "pool": semconv.ATTR_POOL,
    "kind": semconv.ATTR_SECURITY_KIND,
    "token": semconv.ATTR_TOKEN,
    "circuit": semconv.ATTR_CIRCUIT,
}
_METRICS = {spec.name: spec for spec in semconv.METRICS}


def _closest(word: str, choices: Sequence[str]) -> str:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"; did you mean {found[0]!r}?" if found else ""


@dataclass(frozen=True)
class LogEntry:
    """One record written on the ``mevobs`` logger."""

    level: str
    levelno: int
    logger: str
    message: str
    attributes: Mapping[str, Any]
    trace_id: str | None
    span_id: str | None
    exc_type: str | None = None


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.entries: list[LogEntry] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[0] if record.exc_info else None
        self.entries.append(
            LogEntry(
                level=record.levelname,
                levelno=record.levelno,
                logger=record.name,
                message=record.getMessage(),
                attributes=dict(getattr(record, "mevobs", None) or {}),
                trace_id=getattr(record, "trace_id", None),
                span_id=getattr(record, "span_id", None),
                exc_type=exc.__name__ if exc is not None else None,
            )
        )


@dataclass
class Captured:
    """What mevobs emitted inside a :func:`capture` block."""

    span_exporter: InMemorySpanExporter
    metric_reader: MetricReader
    log_exporter: InMemoryLogRecordExporter
    _log_handler: _ListHandler = field(repr=False)
    _flush: Any = field(repr=False, default=None)

    def flush(self) -> None:
        """Wait until everything recorded so far has been exported (done by every lookup)."""
        if self._flush is not None:
            self._flush()

    # ------------------------------------------------------------------ spans

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they were exported."""
        self.flush()
        return list(self.span_exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (the last, if several)."""
        found = [s for s in self.spans if s.name == name]
        if not found:
            names = sorted({s.name for s in self.spans})
            raise LookupError(f"no span named {name!r}{_closest(name, names)}; spans: {names}")
        return found[-1]

    def find_spans(
        self,
        name: str | None = None,
        *,
        kind: str | None = None,
        outcome: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        **short: Any,
    ) -> list[ReadableSpan]:
        """Spans matching every given criterion: name, span kind (``"CLIENT"``...),
        outcome, and attributes (full names, or the short forms of the module doc;
        an unknown short form raises with the closest one)."""
        for key in short:
            if "." not in key and key not in SHORT_NAMES:
                raise LookupError(
                    f"unknown span filter {key!r}{_closest(key, [*SHORT_NAMES, 'kind', 'outcome'])}; "
                    f"short forms: {', '.join(SHORT_NAMES)}; full names go in attributes={{...}}"
                )
        kinds = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
        if kind is not None and kind.upper() not in kinds:
            raise LookupError(f"unknown span kind {kind!r}{_closest(kind.upper(), kinds)}")
        wanted = _filters(attributes, short)
        if outcome is not None:
            wanted[semconv.ATTR_OUTCOME] = outcome
        return [
            s
            for s in self.spans
            if (name is None or s.name == name)
            and (kind is None or s.kind.name == kind.upper())
            and all((s.attributes or {}).get(k) == v for k, v in wanted.items())
        ]

    # ------------------------------------------------------------------- logs

    @property
    def logs(self) -> list[LogEntry]:
        """Records written on the ``mevobs`` logger (and its children)."""
        self.flush()
        return list(self._log_handler.entries)

    @property
    def otel_logs(self) -> list[ReadableLogRecord]:
        """The same records as they left through the OpenTelemetry logs exporter."""
        self.flush()
        return list(self.log_exporter.get_finished_logs())

    # ---------------------------------------------------------------- metrics

    def points(self, name: str) -> list[Any]:
        """Every data point of metric ``name`` collected now (cumulative)."""
        self.flush()
        data = self.metric_reader.get_metrics_data()  # type: ignore[attr-defined]
        found: list[Any] = []
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def metric_names(self) -> set[str]:
        """Names of every metric with at least one data point."""
        self.flush()
        data = self.metric_reader.get_metrics_data()  # type: ignore[attr-defined]
        if data is None:
            return set()
        return {
            m.name
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.data.data_points
        }

    def _matching(
        self, name: str, attributes: Mapping[str, Any] | None, short: Mapping[str, Any]
    ) -> list[Any]:
        spec = _METRICS.get(name)
        points = self.points(name)
        if spec is None and not points:
            known = sorted({*_METRICS, *self.metric_names()})
            raise LookupError(f"no metric named {name!r}{_closest(name, known)}")
        wanted = _filters(attributes, short)
        if spec is not None:
            unknown = [k for k in wanted if k not in spec.attributes]
            if unknown:
                valid = [*spec.attributes, *(s for s, full in SHORT_NAMES.items() if full in spec.attributes)]
                raise LookupError(
                    f"{name} has no attribute {unknown[0]!r}{_closest(unknown[0], valid)}; "
                    f"its attributes: {', '.join(spec.attributes)}"
                )
        return [p for p in points if all(p.attributes.get(k) == v for k, v in wanted.items())]

    def counter_value(self, name: str, attributes: Mapping[str, Any] | None = None, **short: Any) -> float:
        """Sum of counter ``name`` over points whose attributes include the given ones."""
        return sum(p.value for p in self._matching(name, attributes, short) if isinstance(p, NumberDataPoint))

    def gauge_value(
        self, name: str, attributes: Mapping[str, Any] | None = None, **short: Any
    ) -> float | None:
        """Last value of gauge ``name`` for the one series matching the attributes
        (``None`` when no series matches; ``LookupError`` when several do)."""
        found = [p for p in self._matching(name, attributes, short) if isinstance(p, NumberDataPoint)]
        if len(found) > 1:
            raise LookupError(f"{len(found)} series of {name} match; give more attributes")
        return found[0].value if found else None

    def histogram_count(self, name: str, attributes: Mapping[str, Any] | None = None, **short: Any) -> int:
        """Number of recordings of histogram ``name`` matching the attributes."""
        return sum(
            p.count for p in self._matching(name, attributes, short) if isinstance(p, HistogramDataPoint)
        )

    def histogram_sum(self, name: str, attributes: Mapping[str, Any] | None = None, **short: Any) -> float:
        """Sum of recordings of histogram ``name`` matching the attributes."""
        return sum(
            p.sum for p in self._matching(name, attributes, short) if isinstance(p, HistogramDataPoint)
        )

    def metric_attribute_keys(self, names: Sequence[str] | None = None) -> set[str]:
        """Every attribute key seen on the given metrics (all metrics by default)."""
        self.flush()
        data = self.metric_reader.get_metrics_data()  # type: ignore[attr-defined]
        keys: set[str] = set()
        if data is None:
            return keys
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if names is None or m.name in names:
                        for p in m.data.data_points:
                            keys.update(p.attributes or {})
        return keys

    def export(self) -> dict[str, Any]:
        """Spans, metrics and logs as plain dicts with deterministic ids, times and
        durations (ids numbered in order of appearance, timestamps left out,
        durations zeroed, stack traces without file paths), for snapshot tests."""
        from mevobs._snapshot import snapshot

        self.flush()
        data = self.metric_reader.get_metrics_data()  # type: ignore[attr-defined]
        return snapshot(self.spans, data, self.otel_logs)

    def clear(self) -> None:
        """Forget captured spans and logs (metrics are cumulative and stay)."""
        self.flush()
        self.span_exporter.clear()
        self.log_exporter.clear()
        self._log_handler.entries.clear()


def _filters(attributes: Mapping[str, Any] | None, short: Mapping[str, Any]) -> dict[str, Any]:
    wanted = dict(attributes or {})
    for key, value in short.items():
        wanted[SHORT_NAMES.get(key, key)] = value
    return wanted


@contextmanager
def capture(
    *,
    cardinality_cap: int = 100,
    scrub: bool = True,
    system_metrics: bool = False,
    instrument: Sequence[str] = (),
    hooks: Sequence[Hook] = (),
    detectors: Sequence[Detector] = (),
    sample_ratio: float = 1.0,
    pipeline: str = "fast",
    **settings: Any,
) -> Iterator[Captured]:
    """Record mevobs telemetry in memory for the duration of the block.

    ``system_metrics`` and ``instrument`` work as in ``configure()``; ``hooks`` (any
    :class:`mevobs.Hook`) run on every finished operation, ``detectors`` under a
    security monitor; ``sample_ratio`` and other :class:`~mevobs.Settings` fields
    (``slow_threshold_seconds``, ``max_series_per_metric``...) configure the fast
    pipeline as in production. ``pipeline="api"`` records through the OpenTelemetry
    API instead.
    """
    resolved = Settings.load(
        {},
        cardinality_cap=cardinality_cap,
        scrub_secrets=scrub,
        sample_ratio=sample_ratio,
        pipeline=pipeline,
        log_destination="none",
        **settings,
    )
    span_exporter = InMemorySpanExporter()
    log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    reader = InMemoryMetricReader()
    exporters = SignalExporters(spans=span_exporter, logs=log_exporter)
    if pipeline == "api":
        built = build_api(resolved, Extras(), exporters=exporters, metric_reader=reader)
    else:
        built = build_fast(resolved, exporters=exporters, metric_reader=reader)
    handler = _ListHandler()
    previous = (STATE.providers, STATE.instruments, STATE.fast, STATE.limiter.cap, STATE.scrub)
    saved = (LOGGER.level, list(STATE.hooks), STATE.extra_security_kinds)
    STATE.install(built.providers, cap=cardinality_cap, instruments=built.instruments, fast=built.fast)
    STATE.scrub = scrub
    for h in (handler, *built.handlers):
        LOGGER.addHandler(h)
    LOGGER.setLevel(logging.DEBUG)
    STATE.hooks.extend(hooks)
    monitor = security_monitor(resolved.security.model_copy(update={"enabled": False}), {}, detectors)
    if monitor is not None:
        STATE.hooks.append(monitor)
        STATE.extra_security_kinds = frozenset(d.kind for d in detectors)
    STATE.generation += 1  # specs cache whether a hook wants them (see _emission)
    closers: list[Any] = []
    limits_before = (LIMITS.memory_limit_bytes, dict(LIMITS.exposure_limits))
    configure_limits(resolved.memory_limit_bytes, resolved.exposure_limits)
    closers.append(lambda: configure_limits(*limits_before))
    if system_metrics:
        stop = start_system_metrics(built.providers.meter_provider)
        closers += [stop] if stop is not None else []
        watcher = watch_if_running()
        closers += [watcher] if watcher is not None else []
    closers += start_instrumentations(
        instrument, built.providers.tracer_provider, built.providers.meter_provider
    )
    fast = built.fast
    providers = built.providers

    def flush() -> None:
        if fast is not None:
            fast.flush(10.0)
        else:
            providers.tracer_provider.force_flush()  # type: ignore[attr-defined]
            providers.logger_provider.force_flush()  # type: ignore[attr-defined]

    try:
        yield Captured(span_exporter, reader, log_exporter, handler, flush)
    finally:
        for close in closers:
            close()
        flush()
        for h in (handler, *built.handlers):
            LOGGER.removeHandler(h)
        providers_before, instruments, fast_before, cap, scrub_before = previous
        level, hooks_before, kinds = saved
        LOGGER.setLevel(level)
        STATE.install(
            providers_before,
            cap=cap,
            instruments=instruments if fast_before is not None else None,
            fast=fast_before,
        )
        STATE.scrub = scrub_before
        STATE.hooks[:] = hooks_before
        STATE.extra_security_kinds = kinds
        STATE.generation += 1
        built.close()


__all__ = ["Captured", "LogEntry", "capture"]
