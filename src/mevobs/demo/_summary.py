"""The demo's live tally and final summary, read from mevobs's own log records.

Every finished operation writes one record on the ``mevobs`` logger with its
kind, exchange (or strategy or method), outcome and duration; a handler that
counts those records sees exactly what the metrics see. Each operation lands in
exactly one outcome column, so a row's columns add up to its count and the
columns add up to the total row. Memory is bounded however long the run: latencies
go into log-spaced buckets, not a list.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from typing import Any

from mevobs import semconv, wei_to_eth

#: Outcome columns in display order, with their headers; an unknown outcome goes to
#: "other" (shown only when there is one).
COLUMNS: tuple[tuple[str, str], ...] = (
    (semconv.OUTCOME_SUCCESS, "success"),
    (semconv.OUTCOME_FAILURE, "failed"),
    (semconv.OUTCOME_REVERTED, "reverted"),
    (semconv.OUTCOME_RATE_LIMITED, "rate-ltd"),
    (semconv.OUTCOME_SKIPPED, "skipped"),
    (semconv.OUTCOME_CANCELLED, "cancelled"),
    ("other", "other"),
)
_KNOWN = frozenset(outcome for outcome, _ in COLUMNS)
#: Bucket width of the latency histogram: percentiles are exact to within 1 %.
_GROWTH = math.log(1.01)


class Latencies:
    """Durations in log-spaced buckets (1 % wide): bounded memory, percentiles to 1 %."""

    def __init__(self) -> None:
        self.buckets: dict[int, int] = defaultdict(int)
        self.count = 0

    def add(self, ms: float) -> None:
        # Bucket 0 holds everything up to 1 us (and NaN); bucket i > 0 ends at 1 us * 1.01**i.
        ms = min(ms, 1e12)  # about 30 years: keeps the logarithm finite
        index = math.ceil(math.log(ms * 1000) / _GROWTH) if ms > 0.001 else 0
        self.buckets[index] += 1
        self.count += 1

    def merge(self, other: Latencies) -> None:
        for index, n in other.buckets.items():
            self.buckets[index] += n
        self.count += other.count

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (q in 0..100), as its bucket's upper bound in ms; 0 if empty."""
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return 0.001 * math.exp(index * _GROWTH)
        return 0.0


class Tally(logging.Handler):
    """Counts finished operations by (kind, label) and outcome, with their durations."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.outcomes: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        self.durations: dict[tuple[str, str], Latencies] = defaultdict(Latencies)
        self.security_events = 0

    def emit(self, record: logging.LogRecord) -> None:
        attrs: dict[str, Any] | None = getattr(record, "mevobs", None)
        if attrs and semconv.ATTR_SECURITY_KIND in attrs:
            self.security_events += 1
            return
        if not attrs or semconv.ATTR_OUTCOME not in attrs:
            return
        kind = str(attrs.get(semconv.ATTR_OPERATION, "?"))
        label = str(
            attrs.get(semconv.ATTR_EXCHANGE)
            or attrs.get(semconv.ATTR_STRATEGY)
            or attrs.get(semconv.ATTR_RPC_METHOD)
            or "-"
        )
        key = (kind, label)
        outcome = str(attrs[semconv.ATTR_OUTCOME])
        if outcome not in _KNOWN:
            outcome = "other"
        by_outcome = self.outcomes[key]
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        self.durations[key].add(float(attrs.get(semconv.ATTR_DURATION_MS, 0.0)))

    def total(self, kind: str | None = None, outcome: str | None = None) -> int:
        return sum(
            n
            for (k, _), by_outcome in self.outcomes.items()
            if kind is None or k == kind
            for o, n in by_outcome.items()
            if outcome is None or o == outcome
        )


def _row(
    kind: str, label: str, by: dict[str, int], columns: list[tuple[str, str]], latencies: Latencies
) -> str:
    cells = " ".join(f"{by.get(outcome, 0):>{max(7, len(header))}}" for outcome, header in columns)
    p50, p95, p99 = (latencies.percentile(q) for q in (50, 95, 99))
    return f"{kind:<10} {label:<25} {sum(by.values()):>7} {cells} {p50:>8.2f} {p95:>8.2f} {p99:>8.2f}"


def _share(part: int, whole: int) -> str:
    return f"{part / whole * 100 if whole else 0:.1f}%"


def render(
    tally: Tally,
    *,
    gas_wei: int,
    net_wei: int,
    eth_usd: float,
    funnel: dict[str, int],
    guards: dict[str, str] | None = None,
) -> str:
    """The final summary table: one row per (operation, label), a count and one column
    per outcome, latency percentiles, then a total row and the run's figures."""
    overall: dict[str, int] = defaultdict(int)
    all_latencies = Latencies()
    for key, by in tally.outcomes.items():
        for outcome, n in by.items():
            overall[outcome] += n
        all_latencies.merge(tally.durations[key])
    columns = [(o, h) for o, h in COLUMNS if o != "other" or overall["other"]]
    headers = " ".join(f"{header:>{max(7, len(header))}}" for _, header in columns)
    lines = [
        f"{'operation':<10} {'exchange/strategy/method':<25} {'count':>7} {headers} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}",
    ]
    for key in sorted(tally.outcomes):
        lines.append(_row(key[0], key[1], tally.outcomes[key], columns, tally.durations[key]))
    lines.append(_row("total", "-", overall, columns, all_latencies))
    total = sum(overall.values())
    detected = funnel.get("detected", 0)
    included = funnel.get("included", 0)
    capture = included / detected * 100 if detected else 0.0
    lines += [
        "",
        f"operations          {total}",
        f"success rate        {_share(overall[semconv.OUTCOME_SUCCESS], total)}",
        f"failure rate        {_share(overall[semconv.OUTCOME_FAILURE], total)}",
        f"revert rate         {_share(overall[semconv.OUTCOME_REVERTED], total)}",
        f"rate-limited rate   {_share(overall[semconv.OUTCOME_RATE_LIMITED], total)}",
        f"skip rate           {_share(overall[semconv.OUTCOME_SKIPPED], total)}",
        f"gas spent           {wei_to_eth(gas_wei):.6f} ETH",
        f"net profit          {wei_to_eth(net_wei):.6f} ETH ({wei_to_eth(net_wei) * eth_usd:,.2f} USD)",
        f"net profit (wei)    {net_wei}",
        f"capture rate        {capture:.1f}% ({included} included / {detected} detected)",
        "funnel              " + ", ".join(f"{s}={funnel.get(s, 0)}" for s in semconv.OPPORTUNITY_STAGES),
        f"rate-limited RPC    {tally.total(kind='rpc', outcome=semconv.OUTCOME_RATE_LIMITED)}",
    ]
    lines += [f"{name:<19} {value}" for name, value in (guards or {}).items()]
    return "\n".join(lines)
