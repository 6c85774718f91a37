"""The demo's live tally and final summary, read from mevobs's own log records.

Every finished operation writes one record on the ``mevobs`` logger with its
kind, exchange (or strategy or method), outcome and duration; a handler that
counts those records sees exactly what the metrics see.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from typing import Any

from mevobs import semconv


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Tally(logging.Handler):
    """Counts finished operations by (kind, label) and outcome, with their durations."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.outcomes: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        self.durations: dict[tuple[str, str], list[float]] = defaultdict(list)
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
        self.outcomes[key][outcome] = self.outcomes[key].get(outcome, 0) + 1
        self.durations[key].append(float(attrs.get(semconv.ATTR_DURATION_MS, 0.0)))

    def total(self, kind: str | None = None, outcome: str | None = None) -> int:
        return sum(
            n
            for (k, _), by_outcome in self.outcomes.items()
            if kind is None or k == kind
            for o, n in by_outcome.items()
            if outcome is None or o == outcome
        )


def render(
    tally: Tally,
    *,
    gas_wei: int,
    net_wei: int,
    eth_usd: float,
    funnel: dict[str, int],
    guards: dict[str, str] | None = None,
) -> str:
    """The final summary table."""
    lines = [
        f"{'operation':<10} {'exchange/strategy/method':<26} {'count':>6} {'success':>8} {'failed':>7} "
        f"{'reverted':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}",
    ]
    for key in sorted(tally.outcomes):
        by = tally.outcomes[key]
        count = sum(by.values())
        durations = tally.durations[key]
        ok = by.get("success", 0) / count * 100
        lines.append(
            f"{key[0]:<10} {key[1]:<26} {count:>6} {ok:>7.1f}% {by.get('failure', 0):>7} "
            f"{by.get('reverted', 0):>9} {percentile(durations, 50):>8.1f} {percentile(durations, 95):>8.1f} "
            f"{percentile(durations, 99):>8.1f}"
        )
    total = tally.total()
    detected = funnel.get("detected", 0)
    included = funnel.get("included", 0)
    capture = included / detected * 100 if detected else 0.0
    from mevobs import wei_to_eth

    lines += [
        "",
        f"operations          {total}",
        f"success rate        {tally.total(outcome='success') / total * 100 if total else 0:.1f}%",
        f"failure rate        {tally.total(outcome='failure') / total * 100 if total else 0:.1f}%",
        f"revert rate         {tally.total(outcome='reverted') / total * 100 if total else 0:.1f}%",
        f"gas spent           {wei_to_eth(gas_wei):.6f} ETH",
        f"net profit          {wei_to_eth(net_wei):.6f} ETH ({wei_to_eth(net_wei) * eth_usd:,.2f} USD)",
        f"net profit (wei)    {net_wei}",
        f"capture rate        {capture:.1f}% ({included} included / {detected} detected)",
        "funnel              " + ", ".join(f"{s}={funnel.get(s, 0)}" for s in semconv.OPPORTUNITY_STAGES),
        f"rate-limited RPC    {tally.total(kind='rpc', outcome='rate_limited')}",
    ]
    lines += [f"{name:<19} {value}" for name, value in (guards or {}).items()]
    return "\n".join(lines)
