"""Pre-aggregated metric slots: what an instrumented call adds to, instead of an SDK instrument.

A slot is one metric series (one metric, one set of attribute values): a
histogram's bucket counts, sum, count, min and max, a counter's sum or a
gauge's last value. Operations resolve their slots once (per operation spec,
outcome and error type), so a call does a few plain adds under the slot's own
lock (exact under threads) and nothing else: no attribute hashing, no
measurement objects. At collection time the pipeline reads every slot and hands
the points to the OpenTelemetry exporters.

The table caps the number of series of each metric, not only the values of each
label: past ``series_cap`` a new series records into one overflow series whose
labels are ``other`` (operation and outcome kept), and each such recording is
counted. Histograms also keep the latest exemplar of each bucket, offered by
the span worker for operations whose trace is kept.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

from mevobs import semconv
from mevobs.semconv import MetricSpec

SeriesKey = tuple[tuple[str, Any], ...]
SlotT = TypeVar("SlotT", "HistogramSlot", "SumSlot", "GaugeSlot")

DEFAULT_SERIES_CAP = 2000
# Labels an overflow series keeps: bounded by construction, and what alerts split on.
_KEPT_ON_OVERFLOW = frozenset({semconv.ATTR_OPERATION, semconv.ATTR_OUTCOME, semconv.ATTR_DROP_REASON})


class Exemplar(NamedTuple):
    """One sampled recording of a histogram, linked to the span that made it."""

    value: float
    time_ns: int
    trace_id: int
    span_id: int


class HistogramSlot:
    """Explicit-bucket histogram series: bucket ``i`` counts values in (bounds[i-1], bounds[i]]."""

    # No running count: it is the sum of the bucket counts, taken at collection
    # (one add fewer on every call).
    __slots__ = ("bounds", "counts", "exemplars", "lock", "max", "min", "start_ns", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.exemplars: list[Exemplar | None] = [None] * (len(bounds) + 1)
        self.lock = threading.Lock()
        self.start_ns = time.time_ns()

    def record(self, value: float) -> int:
        """Add one value; returns its bucket index (for an exemplar later)."""
        index = bisect_left(self.bounds, value)
        lock = self.lock
        lock.acquire()  # not ``with``: a bound __enter__ and __exit__ per call cost twice as much
        try:
            self.counts[index] += 1
            self.sum += value
            if value < self.min:
                self.min = value
            if value > self.max:
                self.max = value
        finally:
            lock.release()
        return index

    @property
    def count(self) -> int:
        """How many values were recorded."""
        return sum(self.counts)

    def offer_exemplar(self, index: int, exemplar: Exemplar) -> None:
        # One reference store: atomic, no lock. The latest kept recording wins.
        self.exemplars[index] = exemplar

    def state(self) -> tuple[list[int], float, int, float, float]:
        with self.lock:
            counts = list(self.counts)
            return counts, self.sum, sum(counts), self.min, self.max


class SumSlot:
    """Counter series: a monotonic sum."""

    __slots__ = ("lock", "start_ns", "value")

    def __init__(self) -> None:
        self.value: float = 0
        self.lock = threading.Lock()
        self.start_ns = time.time_ns()

    def add(self, amount: float) -> None:
        with self.lock:
            self.value += amount


class GaugeSlot:
    """Gauge series: the last value set."""

    __slots__ = ("start_ns", "time_ns", "value")

    def __init__(self) -> None:
        self.value: float = 0
        self.time_ns = self.start_ns = time.time_ns()

    def set(self, value: float) -> None:
        # Two reference stores; a reader may see the new value with the old time, harmless.
        self.value = value
        self.time_ns = time.time_ns()


Slot = HistogramSlot | SumSlot | GaugeSlot


def _new_slot(spec: MetricSpec) -> Slot:
    if spec.instrument == "histogram":
        return HistogramSlot(spec.buckets)
    if spec.instrument == "gauge":
        return GaugeSlot()
    return SumSlot()


def series_key(attributes: Mapping[str, Any]) -> SeriesKey:
    return tuple(sorted(attributes.items()))


class MetricSeries:
    """Every series of one metric, at most ``cap`` of them plus one overflow series."""

    __slots__ = ("cap", "overflow", "series", "spec")

    def __init__(self, spec: MetricSpec, cap: int) -> None:
        self.spec = spec
        self.cap = cap
        self.series: dict[SeriesKey, Slot] = {}
        self.overflow: tuple[SeriesKey, Slot] | None = None


class SlotTable:
    """The slots of every metric mevobs records in this process (fast path)."""

    def __init__(
        self, series_cap: int = DEFAULT_SERIES_CAP, on_overflow: Callable[[MetricSpec], None] | None = None
    ) -> None:
        self.series_cap = series_cap
        self._metrics: dict[str, MetricSeries] = {}
        self._lock = threading.Lock()
        self._on_overflow = on_overflow

    def empty_like(self) -> SlotTable:
        """A new table with the same cap and overflow counting, and no series (a forked child's)."""
        return SlotTable(self.series_cap, self._on_overflow)

    def slot(self, spec: MetricSpec, attributes: Mapping[str, Any]) -> Slot:
        """The slot of ``spec`` for ``attributes``, created on first use (under the cap)."""
        key = series_key(attributes)
        metric = self._metrics.get(spec.name)
        if metric is not None:
            found = metric.series.get(key)
            if found is not None:
                return found
        with self._lock:
            metric = self._metrics.get(spec.name)
            if metric is None:
                metric = self._metrics[spec.name] = MetricSeries(spec, self.series_cap)
            found = metric.series.get(key)
            if found is not None:
                return found
            if len(metric.series) < metric.cap:
                found = metric.series[key] = _new_slot(spec)
                return found
            if metric.overflow is None:
                other = tuple((k, v if k in _KEPT_ON_OVERFLOW else semconv.OTHER_VALUE) for k, v in key)
                metric.overflow = (other, _new_slot(spec))
            slot = metric.overflow[1]
        if self._on_overflow is not None:
            self._on_overflow(spec)
        return slot

    def is_overflow(self, spec: MetricSpec, slot: Slot) -> bool:
        metric = self._metrics.get(spec.name)
        return metric is not None and metric.overflow is not None and metric.overflow[1] is slot

    def metrics(self) -> Iterator[tuple[MetricSpec, list[tuple[SeriesKey, Slot]]]]:
        """Every metric with its series (a consistent list, read under the table lock)."""
        with self._lock:
            snapshot = [
                (m.spec, [*m.series.items(), *([m.overflow] if m.overflow is not None else [])])
                for m in self._metrics.values()
            ]
        yield from snapshot

    def series_count(self, spec: MetricSpec) -> int:
        metric = self._metrics.get(spec.name)
        return 0 if metric is None else len(metric.series) + (metric.overflow is not None)


class OpBundle:
    """The slots of one operation spec for one outcome and error type: the duration
    histogram resolved at once, the others (gas, profit...) on first use."""

    __slots__ = ("attrs", "duration", "others", "overflow")

    def __init__(self, table: SlotTable, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        duration = table.slot(semconv.OPERATION_DURATION, attrs)
        assert isinstance(duration, HistogramSlot)
        self.duration = duration
        self.overflow = table.is_overflow(semconv.OPERATION_DURATION, duration)
        self.others: dict[str, Slot] = {}

    def slot(self, table: SlotTable, spec: MetricSpec, kind: type[SlotT]) -> SlotT:
        found = self.others.get(spec.name)
        if found is None:
            found = self.others[spec.name] = table.slot(spec, self.attrs)
        assert isinstance(found, kind)
        return found


class _BoundCounter:
    __slots__ = ("spec", "table")

    def __init__(self, table: SlotTable, spec: MetricSpec) -> None:
        self.table, self.spec = table, spec

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        slot = self.table.slot(self.spec, attributes or {})
        slot.add(amount)  # type: ignore[union-attr]


class _BoundHistogram(_BoundCounter):
    __slots__ = ()

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        slot = self.table.slot(self.spec, attributes or {})
        slot.record(amount)  # type: ignore[union-attr]


class _BoundGauge(_BoundCounter):
    __slots__ = ()

    def set(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        slot = self.table.slot(self.spec, attributes or {})
        slot.set(amount)  # type: ignore[union-attr]


class SlotInstruments:
    """The :class:`~mevobs._instruments.Instruments` interface, recording into slots.

    Installed by the fast path, so every mevobs metric (per operation or not:
    funnel, security events, gauges, dropped telemetry) is pre-aggregated here and
    a forked child starts from empty slots.
    """

    def __init__(self, table: SlotTable) -> None:
        self.retarget(table)

    def retarget(self, table: SlotTable) -> None:
        """Record into ``table`` from now on (a forked child's empty table)."""
        self.table = table
        self._counters: dict[str, _BoundCounter] = {}
        self._histograms: dict[str, _BoundHistogram] = {}
        self._gauges: dict[str, _BoundGauge] = {}

    def counter(self, spec: MetricSpec) -> Any:
        bound = self._counters.get(spec.name)
        if bound is None:
            bound = self._counters[spec.name] = _BoundCounter(self.table, spec)
        return bound

    def histogram(self, spec: MetricSpec) -> Any:
        bound = self._histograms.get(spec.name)
        if bound is None:
            bound = self._histograms[spec.name] = _BoundHistogram(self.table, spec)
        return bound

    def gauge(self, spec: MetricSpec) -> Any:
        bound = self._gauges.get(spec.name)
        if bound is None:
            bound = self._gauges[spec.name] = _BoundGauge(self.table, spec)
        return bound

    def record(self, spec: MetricSpec, value: float, attributes: Mapping[str, Any]) -> None:
        slot = self.table.slot(spec, attributes)
        if isinstance(slot, HistogramSlot):
            slot.record(value)
        elif isinstance(slot, GaugeSlot):
            slot.set(value)
        else:
            slot.add(value)
