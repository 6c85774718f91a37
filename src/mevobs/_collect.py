"""Metric collection for the fast path: slots become OpenTelemetry metric data.

Each metric reader of the pipeline (periodic OTLP or console export, the
Prometheus endpoint, the test kit's in-memory reader) collects the SDK's own
instruments (system metrics, contrib instrumentations) as usual; the readers
here add mevobs's slots to what the SDK hands them, in the reader's preferred
temporality, with the latest exemplar of each histogram bucket. The Prometheus
collector wrapper adds those exemplars to the exposition, which prometheus_client
serves in OpenMetrics format when the scraper asks for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics import Counter as SdkCounter
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics._internal.exemplar import Exemplar as SdkExemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from mevobs import semconv
from mevobs._instruments import observe
from mevobs._slots import GaugeSlot, HistogramSlot, SeriesKey, SlotTable, SumSlot

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_DELTA = AggregationTemporality.DELTA


class SlotCollection:
    """Turns a slot table into SDK metric data for one reader (its own delta baseline)."""

    def __init__(self, table: SlotTable, scope: InstrumentationScope, resource: Resource) -> None:
        self.table = table
        self.scope = scope
        self.resource = resource
        self._last: dict[tuple[str, SeriesKey], Any] = {}
        self._last_ns = time.time_ns()

    def retarget(self, table: SlotTable) -> None:
        """Read ``table`` from now on, with no delta baseline (a forked child's table)."""
        self.table = table
        self._last = {}
        self._last_ns = time.time_ns()

    def metrics(self, temporality: dict[type, AggregationTemporality]) -> list[Metric]:
        now = time.time_ns()
        delta_hist = temporality.get(SdkHistogram, _CUMULATIVE) == _DELTA
        delta_sum = temporality.get(SdkCounter, _CUMULATIVE) == _DELTA
        out: list[Metric] = []
        for spec, series in self.table.metrics():
            data: Any
            if spec.instrument == "histogram":
                hist = [self._histogram(spec.name, key, slot, now, delta_hist) for key, slot in series]
                data = Histogram([p for p in hist if p is not None], _DELTA if delta_hist else _CUMULATIVE)
            elif spec.instrument == "gauge":
                data = Gauge([self._gauge(key, slot) for key, slot in series])
            else:
                sums = [self._sum(spec.name, key, slot, now, delta_sum) for key, slot in series]
                data = Sum([p for p in sums if p is not None], _DELTA if delta_sum else _CUMULATIVE, True)
            if data.data_points:
                out.append(Metric(spec.name, spec.description, spec.unit, data))
        for spec in semconv.METRICS:
            if spec.observable:
                observed = [
                    NumberDataPoint(dict(attrs), self._last_ns, now, value) for value, attrs in observe(spec)
                ]
                if observed:
                    out.append(Metric(spec.name, spec.description, spec.unit, Gauge(observed)))
        self._last_ns = now
        return out

    def _histogram(
        self, name: str, key: SeriesKey, slot: Any, now: int, delta: bool
    ) -> HistogramDataPoint | None:
        assert isinstance(slot, HistogramSlot)
        counts, total, count, low, high = slot.state()
        exemplars = [
            SdkExemplar({}, e.value, e.time_ns, e.span_id, e.trace_id)
            for e in slot.exemplars
            if e is not None
        ]
        start = slot.start_ns
        if delta:
            previous = self._last.get((name, key))
            self._last[(name, key)] = (counts, total, count)
            if previous is not None:
                counts = [a - b for a, b in zip(counts, previous[0], strict=True)]
                total, count = total - previous[1], count - previous[2]
                start = self._last_ns
            if count == 0:
                return None
        if count == 0:
            low = high = 0.0
        return HistogramDataPoint(
            dict(key), start, now, count, total, counts, list(slot.bounds), low, high, exemplars
        )

    def _sum(self, name: str, key: SeriesKey, slot: Any, now: int, delta: bool) -> NumberDataPoint | None:
        assert isinstance(slot, SumSlot)
        value, start = slot.value, slot.start_ns
        if delta:
            previous = self._last.get((name, key))
            self._last[(name, key)] = value
            if previous is not None:
                value, start = value - previous, self._last_ns
            if not value:
                return None
        return NumberDataPoint(dict(key), start, now, value)

    @staticmethod
    def _gauge(key: SeriesKey, slot: Any) -> NumberDataPoint:
        assert isinstance(slot, GaugeSlot)
        return NumberDataPoint(dict(key), slot.start_ns, slot.time_ns, slot.value)

    def merge(self, data: MetricsData | None, temporality: dict[type, AggregationTemporality]) -> MetricsData:
        """``data`` (the SDK's collection) with the slots added as mevobs's scope."""
        ours = ScopeMetrics(self.scope, self.metrics(temporality), "")
        if data is None or not data.resource_metrics:
            return MetricsData([ResourceMetrics(self.resource, [ours], "")])
        first, *rest = data.resource_metrics
        merged = ResourceMetrics(first.resource, [*first.scope_metrics, ours], first.schema_url)
        return MetricsData([merged, *rest])


def _temporality(reader: MetricReader) -> dict[type, AggregationTemporality]:
    table: dict[type, AggregationTemporality] = {}
    for cls, value in reader._instrument_class_temporality.items():
        name = cls.__name__.lstrip("_")
        if name == "Histogram":
            table[SdkHistogram] = value
        elif name == "Counter":
            table[SdkCounter] = value
    return table


def attach_slots(reader: MetricReader, slots: SlotCollection) -> None:
    """Make every collection of ``reader`` (already registered with its MeterProvider)
    also return mevobs's slots, in the reader's own temporality.

    The SDK hands a reader its collection through a callback, and skips the reader
    when no SDK instrument has data; wrapping that callback adds the slots whatever
    the SDK collected, for any kind of reader (periodic, Prometheus, in-memory).
    """
    inner: Any = reader._collect
    if inner is None:
        raise ValueError("attach_slots: the reader is not registered with a MeterProvider yet")
    temporality = _temporality(reader)

    def collect(metric_reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData:
        return slots.merge(inner(metric_reader, timeout_millis=timeout_millis), temporality)

    reader._collect = collect  # type: ignore[assignment]  # the SDK types it loosely


class ExemplarCollector:
    """Wraps the Prometheus collector of a reader and adds the slots' exemplars to the
    ``_bucket`` samples of mevobs's histograms (served only in OpenMetrics format)."""

    def __init__(self, inner: Any, table: SlotTable) -> None:
        self.inner = inner
        self.table = table

    def collect(self) -> Iterator[Any]:
        from prometheus_client.samples import Exemplar, Sample

        index = self._index()
        for family in self.inner.collect():
            if family.type != "histogram" or family.name not in index:
                yield family
                continue
            by_labels = index[family.name]
            samples = []
            for sample in family.samples:
                exemplar = None
                if sample.name.endswith("_bucket"):
                    # The exporter gives every series of a family the union of their label
                    # names, "" where a series has none (error_type="" on a success): a
                    # series is known by its non-empty labels.
                    labels = {
                        k: v
                        for k, v in sample.labels.items()
                        if v != "" and not k.startswith("otel_scope_") and k != "le"
                    }
                    slot = by_labels.get(tuple(sorted(labels.items())))
                    if slot is not None:
                        exemplar = _bucket_exemplar(slot, sample.labels.get("le", ""))
                if exemplar is not None:
                    e = Exemplar(
                        {
                            "trace_id": format(exemplar.trace_id, "032x"),
                            "span_id": format(exemplar.span_id, "016x"),
                        },
                        exemplar.value,
                        exemplar.time_ns / 1e9,
                    )
                    sample = Sample(sample.name, sample.labels, sample.value, sample.timestamp, e)
                samples.append(sample)
            family.samples = samples
            yield family

    def _index(self) -> dict[str, dict[tuple[tuple[str, str], ...], HistogramSlot]]:
        index: dict[str, dict[tuple[tuple[str, str], ...], HistogramSlot]] = {}
        for spec, series in self.table.metrics():
            if spec.instrument != "histogram":
                continue
            name = semconv.prometheus_name(spec.name, spec.unit, spec.instrument)
            entries = index.setdefault(name, {})
            for key, slot in series:
                if isinstance(slot, HistogramSlot):
                    labels = tuple(
                        sorted((semconv.prometheus_label(k), str(v)) for k, v in key if str(v) != "")
                    )
                    entries[labels] = slot
        return index


def _bucket_exemplar(slot: HistogramSlot, le: str) -> Any:
    if le == "+Inf":
        return slot.exemplars[-1]
    try:
        bound = float(le)
    except ValueError:
        return None
    for i, b in enumerate(slot.bounds):
        if b == bound:
            return slot.exemplars[i]
    return None
