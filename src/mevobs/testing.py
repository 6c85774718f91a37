"""Test kit: capture what mevobs emits and assert on it.

``capture()`` records mevobs's spans, metrics and logs in memory, isolated from
any global OpenTelemetry providers (which are left untouched) and from a
running ``configure()`` (restored afterwards)::

    from mevobs.testing import capture

    with capture() as tel:
        my_bot.swap_exact_in(...)
    assert tel.counter_value("mev.gas.cost", exchange="uniswap_v2") > 0
    assert tel.span("swap uniswap_v2").attributes["mev.outcome"] == "success"

Installed as a pytest plugin, it also provides the ``mevobs_telemetry`` fixture.
Attribute filters accept full names (``**{"mev.exchange": "curve"}``) or the
short forms ``operation``, ``exchange``, ``chain``, ``strategy``, ``action``,
``method``, ``outcome``, ``error_type``, ``stage``, ``direction``, ``reason``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mevobs import semconv
from mevobs._logs import OtelLogBridge
from mevobs._protocols import Hook
from mevobs._state import LOGGER, STATE, Providers
from mevobs.guards._runtime import start_instrumentations, start_system_metrics, watch_if_running

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
}


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


def _filters(attributes: Mapping[str, Any] | None, short: Mapping[str, Any]) -> dict[str, Any]:
    wanted = dict(attributes or {})
    for key, value in short.items():
        wanted[SHORT_NAMES.get(key, key)] = value
    return wanted


@dataclass
class Captured:
    """What mevobs emitted inside a :func:`capture` block."""

    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter
    _log_handler: _ListHandler = field(repr=False)

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self.span_exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (the last, if several)."""
        found = [s for s in self.spans if s.name == name]
        if not found:
            names = sorted({s.name for s in self.spans})
            raise LookupError(f"no span named {name!r}; spans: {names}")
        return found[-1]

    @property
    def logs(self) -> list[LogEntry]:
        """Records written on the ``mevobs`` logger (and its children)."""
        return list(self._log_handler.entries)

    @property
    def otel_logs(self) -> list[ReadableLogRecord]:
        """The same records as they left through the OpenTelemetry logs bridge."""
        return list(self.log_exporter.get_finished_logs())

    def points(self, name: str) -> list[Any]:
        """Every data point of metric ``name`` collected now (cumulative)."""
        data = self.metric_reader.get_metrics_data()
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
        data = self.metric_reader.get_metrics_data()
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
        wanted = _filters(attributes, short)
        return [p for p in self.points(name) if all(p.attributes.get(k) == v for k, v in wanted.items())]

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
        data = self.metric_reader.get_metrics_data()
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

    def clear(self) -> None:
        """Forget captured spans and logs (metrics are cumulative and stay)."""
        self.span_exporter.clear()
        self.log_exporter.clear()
        self._log_handler.entries.clear()


@contextmanager
def capture(
    *,
    cardinality_cap: int = 100,
    scrub: bool = True,
    system_metrics: bool = False,
    instrument: Sequence[str] = (),
    hooks: Sequence[Hook] = (),
) -> Iterator[Captured]:
    """Record mevobs telemetry in memory for the duration of the block.

    ``system_metrics`` and ``instrument`` work as in ``configure()``; ``hooks`` (any
    :class:`mevobs.Hook`, e.g. ``mevobs.guards.SecurityMonitor()``) run on every
    finished operation;
    the event-loop lag watcher starts when the block runs inside a loop.
    """
    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))

    handler = _ListHandler()
    bridge = OtelLogBridge(logger_provider, scrub=scrub)
    previous = (STATE.providers, STATE.limiter.cap, STATE.scrub, LOGGER.level, list(STATE.hooks))
    STATE.install(Providers(tracer_provider, meter_provider, logger_provider), cap=cardinality_cap)
    STATE.scrub = scrub
    LOGGER.addHandler(handler)
    LOGGER.addHandler(bridge)
    LOGGER.setLevel(logging.DEBUG)
    STATE.hooks.extend(hooks)
    closers: list[Callable[[], Any]] = []
    if system_metrics:
        stop = start_system_metrics(meter_provider)
        closers += [stop] if stop is not None else []
        watcher = watch_if_running()
        closers += [watcher] if watcher is not None else []
    closers += start_instrumentations(instrument, tracer_provider, meter_provider)
    try:
        yield Captured(span_exporter, reader, log_exporter, handler)
    finally:
        for close in closers:
            close()
        LOGGER.removeHandler(handler)
        LOGGER.removeHandler(bridge)
        providers, cap, scrub_before, level, hooks = previous
        LOGGER.setLevel(level)
        STATE.install(providers, cap=cap)
        STATE.scrub = scrub_before
        STATE.hooks[:] = hooks
        tracer_provider.shutdown()
        meter_provider.shutdown()
        logger_provider.shutdown()


try:  # the pytest plugin, registered through the pytest11 entry point
    import pytest

    @pytest.fixture
    def mevobs_telemetry() -> Iterator[Captured]:
        """A :class:`Captured` recording everything mevobs emits during the test."""
        with capture() as captured:
            yield captured

except ImportError:  # pragma: no cover - pytest is optional outside tests
    pass

__all__ = ["Captured", "LogEntry", "capture"]
