"""Instruments built from the metric specs of :mod:`mevobs.semconv`, on one meter.

A metric is described once, by its :class:`~mevobs.semconv.MetricSpec`; this
module turns every spec into the matching OpenTelemetry API instrument, so
adding a metric to the contract is adding a spec. Observable gauges are fed by
callbacks that higher layers register (in the manner of a prometheus_client
collector registering with its registry): this module never imports them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation, _Gauge

from mevobs import semconv
from mevobs.semconv import MetricSpec

ObserveFn = Callable[[], Iterable[tuple[float, Mapping[str, Any]]]]
"""Returns the current (value, attributes) points of an observable gauge."""

_OBSERVERS: dict[str, list[ObserveFn]] = {}
_OBSERVERS_LOCK = threading.Lock()


def after_fork_in_child() -> None:
    """A fresh lock: another thread of the parent may have held this one at the fork."""
    global _OBSERVERS_LOCK
    _OBSERVERS_LOCK = threading.Lock()


def register_observer(spec: MetricSpec, fn: ObserveFn) -> None:
    """Report points of the observable gauge ``spec`` at each collection, from ``fn``."""
    if not spec.observable:
        raise ValueError(f"{spec.name} is not an observable metric")
    with _OBSERVERS_LOCK:
        _OBSERVERS.setdefault(spec.name, []).append(fn)


def observe(spec: MetricSpec) -> list[tuple[float, Mapping[str, Any]]]:
    """Every point the registered observers of ``spec`` report now; a failing one is skipped."""
    with _OBSERVERS_LOCK:
        observers = list(_OBSERVERS.get(spec.name, ()))
    points: list[tuple[float, Mapping[str, Any]]] = []
    for fn in observers:
        try:
            points.extend(fn())
        except Exception:  # an observer must not break the collection of every metric
            continue
    return points


def _callback(spec: MetricSpec) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, dict(attrs)) for value, attrs in observe(spec)]

    return callback


def _build(meter: Meter, spec: MetricSpec) -> Any:
    if spec.observable:
        return meter.create_observable_gauge(
            spec.name, callbacks=[_callback(spec)], unit=spec.unit, description=spec.description
        )
    if spec.instrument == "histogram":
        return meter.create_histogram(
            spec.name,
            unit=spec.unit,
            description=spec.description,
            explicit_bucket_boundaries_advisory=list(spec.buckets) or None,
        )
    if spec.instrument == "counter":
        return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
    if spec.instrument == "updowncounter":
        return meter.create_up_down_counter(spec.name, unit=spec.unit, description=spec.description)
    return meter.create_gauge(spec.name, unit=spec.unit, description=spec.description)


class Instruments:
    """One instrument per metric spec, created once per meter."""

    def __init__(self, meter: Meter, specs: Sequence[MetricSpec] = semconv.METRICS) -> None:
        self._by_name: dict[str, Any] = {spec.name: _build(meter, spec) for spec in specs}

    def counter(self, spec: MetricSpec) -> Counter:
        instrument: Counter = self._by_name[spec.name]
        return instrument

    def histogram(self, spec: MetricSpec) -> Histogram:
        instrument: Histogram = self._by_name[spec.name]
        return instrument

    def gauge(self, spec: MetricSpec) -> _Gauge:
        instrument: _Gauge = self._by_name[spec.name]
        return instrument

    def record(self, spec: MetricSpec, value: float, attributes: Mapping[str, Any]) -> None:
        """Record ``value`` the way ``spec``'s instrument takes it (add, record or set)."""
        instrument = self._by_name[spec.name]
        if spec.instrument == "histogram":
            instrument.record(value, attributes)
        elif spec.instrument == "gauge":
            instrument.set(value, attributes)
        else:
            instrument.add(value, attributes)
