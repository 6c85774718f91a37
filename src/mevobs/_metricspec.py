"""What a metric is, as the contract describes it, and the Prometheus names it gets.

Kept apart from :mod:`mevobs.semconv` (which re-exports every name here) so the
contract module holds the names themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

InstrumentKind = Literal["histogram", "counter", "gauge", "updowncounter"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the contract: name, instrument, unit and what labels it carries.

    Instruments are built from specs (``buckets`` is the explicit bucket advice of a
    histogram; ``observable`` gauges are read through callbacks registered at
    collection time), so a metric is described here and nowhere else.
    """

    name: str
    instrument: InstrumentKind
    unit: str
    description: str
    attributes: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    observable: bool = False

    @property
    def prometheus_name(self) -> str:
        """The base name OpenTelemetry's Prometheus exporters give this metric.

        Histograms add ``_bucket``/``_sum``/``_count`` to it; counters end in
        ``_total``. Units in braces are annotations and are dropped.
        """
        return prometheus_name(self.name, self.unit, self.instrument)


_UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "", "%": "percent"}
_SANITIZE = re.compile(r"[^a-zA-Z0-9:]+")


def prometheus_name(name: str, unit: str, instrument: InstrumentKind) -> str:
    """Translate an OpenTelemetry metric name and unit to its Prometheus name."""
    base = _SANITIZE.sub("_", name)
    suffix = _UNIT_SUFFIX.get(unit, _SANITIZE.sub("_", re.sub(r"\{.*\}", "", unit)).strip("_"))
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if instrument == "counter":
        base += "_total"
    return base


def prometheus_label(attribute: str) -> str:
    """The Prometheus label name OpenTelemetry's exporters give a metric attribute."""
    return _SANITIZE.sub("_", attribute)


__all__ = ["InstrumentKind", "MetricSpec", "prometheus_label", "prometheus_name"]
