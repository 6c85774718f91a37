"""Deterministic plain-dict export of captured telemetry, for snapshot tests.

Trace and span ids are replaced by their order of first appearance (``trace-1``,
``span-1``...); timestamps are left out; durations become zero (the sum of a
metric in seconds, its bucket counts, the "in 1.23 ms" of a log line); a stack
trace keeps only its last line (no file paths); cumulative metric points keep
only what a call decides (attributes, counts, sums, bucket counts). So the same
code under test gives the same dict on every run and machine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mevobs import semconv

_MILLIS = re.compile(r"\b\d+(?:\.\d+)? ms\b")
_STACKTRACE = "exception.stacktrace"


class _Ids:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.seen: dict[int, str] = {}

    def __call__(self, value: int | None) -> str | None:
        if not value:
            return None
        if value not in self.seen:
            self.seen[value] = f"{self.prefix}-{len(self.seen) + 1}"
        return self.seen[value]


def _attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {}
    for key, value in sorted((attributes or {}).items()):
        if key == semconv.ATTR_DURATION_MS:
            continue
        if key == _STACKTRACE and isinstance(value, str):
            lines = value.strip().splitlines()
            value = lines[-1] if lines else ""
        out[key] = _plain(value)
    return out


def _body(value: Any) -> Any:
    return _MILLIS.sub("0 ms", value) if isinstance(value, str) else _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# Gauges of the process (uptime, memory, its limit) differ from machine to machine.
_OF_THE_MACHINE = frozenset(
    spec.name for spec in (semconv.HEARTBEAT, semconv.PROCESS_MEMORY, semconv.PROCESS_MEMORY_LIMIT)
)


def snapshot(spans: Sequence[Any], metrics: Any, logs: Sequence[Any]) -> dict[str, Any]:
    """``{"spans": [...], "metrics": [...], "logs": [...]}`` with fixed ids and times."""
    traces, span_ids = _Ids("trace"), _Ids("span")
    out_spans = []
    for span in spans:
        ctx = span.context
        parent = span.parent
        out_spans.append(
            {
                "name": span.name,
                "kind": span.kind.name,
                "trace_id": traces(ctx.trace_id),
                "span_id": span_ids(ctx.span_id),
                "parent_id": span_ids(parent.span_id) if parent is not None else None,
                "status": span.status.status_code.name,
                "attributes": _attributes(span.attributes),
                "events": [{"name": e.name, "attributes": _attributes(e.attributes)} for e in span.events],
            }
        )
    out_metrics = []
    for rm in getattr(metrics, "resource_metrics", None) or ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name in _OF_THE_MACHINE:
                    continue
                timed = metric.unit == "s"  # a duration: its values differ on every run
                points = []
                for point in metric.data.data_points:
                    entry: dict[str, Any] = {"attributes": _attributes(point.attributes)}
                    if hasattr(point, "bucket_counts"):
                        buckets = [0] * len(point.bucket_counts) if timed else list(point.bucket_counts)
                        entry.update(
                            count=point.count, sum=0.0 if timed else point.sum, bucket_counts=buckets
                        )
                    else:
                        entry["value"] = 0 if timed else point.value
                    points.append(entry)
                points.sort(key=lambda p: repr(p["attributes"]))
                out_metrics.append({"name": metric.name, "unit": metric.unit, "points": points})
    out_metrics.sort(key=lambda m: m["name"])
    out_logs = []
    for log in logs:
        record = log.log_record
        out_logs.append(
            {
                "severity": record.severity_text,
                "body": _body(record.body),
                "trace_id": traces(record.trace_id),
                "span_id": span_ids(record.span_id),
                "attributes": _attributes(record.attributes),
            }
        )
    return {"spans": out_spans, "metrics": out_metrics, "logs": out_logs}
