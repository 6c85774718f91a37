"""The Prometheus rule file: recording rules and critical/warning alerts, built from
the telemetry contract and :class:`AlertSettings`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mevobs import semconv
from mevobs.alerts import _promql as q
from mevobs.alerts._settings import AlertSettings

Severity = Literal["critical", "warning"]

# Recording rule names, level:metric:operations (Prometheus naming practice).
OPERATIONS_RATE = "mev:operations:rate"
SUCCESS_RATIO = "mev:operation_success:ratio"
FAILURE_RATIO = "mev:operation_failure:ratio"
LATENCY = {q_: f"mev:operation_duration_seconds:p{int(q_ * 100)}" for q_ in (0.5, 0.95, 0.99)}
LATENCY_P99 = LATENCY[0.99]
GAS_SPEND_RATE = "mev:gas_cost_eth:rate"
NET_PROFIT_RATE = "mev:net_profit_eth:rate"
NET_PROFIT_USD_RATE = "mev:net_profit_usd:rate"
CAPTURE_RATIO = "mev:opportunity_capture:ratio"
RPC_FAILURE_RATIO = "mev:rpc_failure:ratio"
RPC_RATE_LIMITED_RATIO = "mev:rpc_rate_limited:ratio"
SLIPPAGE_P95 = "mev:slippage_bp:p95"

RECORDING_GROUP = "mevobs.recording"
CRITICAL_GROUP = "mevobs.alerts.critical"
WARNING_GROUP = "mevobs.alerts.warning"


def _t(label: str) -> str:
    """An alert template reference to a label of the firing series."""
    return "{{ $labels." + label + " }}"


T_OP, T_EX, T_CHAIN, T_STRAT = (_t(x) for x in (q.L_OPERATION, q.L_EXCHANGE, q.L_CHAIN, q.L_STRATEGY))
T_POOL, T_KIND, T_JOB, T_INSTANCE = _t(q.L_POOL), _t(q.L_SECURITY_KIND), _t("job"), _t("instance")


@dataclass(frozen=True)
class AlertRule:
    """One generated alert: what it means, when it fires and where its runbook is."""

    name: str
    severity: Severity
    expr: str
    for_: str
    summary: str
    description: str
    runbook: str
    threshold: str

    def as_rule(self, settings: AlertSettings) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{settings.runbook_url}#{self.runbook}",
            },
        }


def recording_rules(s: AlertSettings) -> list[dict[str, str]]:
    """Success rate, latency quantiles, gas spend, net profit, capture rate and RPC health."""
    sel, w = s.selector, s.rate_window
    settled = q.sum_rate(q.DURATION_COUNT, sel, w, q.BY_OPERATION, q.none_of(q.L_OUTCOME, q.NEUTRAL_OUTCOMES))
    rpc = q.eq(q.L_OPERATION, semconv.OPERATION_RPC)
    rpc_all = q.sum_rate(q.DURATION_COUNT, sel, w, (q.L_CHAIN,), rpc)
    rules = [
        (OPERATIONS_RATE, q.sum_rate(q.DURATION_COUNT, sel, w, (*q.BY_OPERATION, q.L_OUTCOME))),
        (
            SUCCESS_RATIO,
            q.ratio(
                q.sum_rate(
                    q.DURATION_COUNT, sel, w, q.BY_OPERATION, q.eq(q.L_OUTCOME, semconv.OUTCOME_SUCCESS)
                ),
                settled,
            ),
        ),
        (
            FAILURE_RATIO,
            q.ratio(
                q.sum_rate(
                    q.DURATION_COUNT, sel, w, q.BY_OPERATION, q.one_of(q.L_OUTCOME, q.FAILED_OUTCOMES)
                ),
                settled,
            ),
        ),
        *((name, q.quantile(p, q.DURATION_BUCKET, sel, w, q.BY_OPERATION)) for p, name in LATENCY.items()),
        (GAS_SPEND_RATE, q.sum_rate(q.GAS_COST, sel, w, q.BY_OPERATION)),
        (NET_PROFIT_RATE, q.net(q.PROFIT, q.LOSS, sel, w, q.BY_STRATEGY, fn="rate")),
        (NET_PROFIT_USD_RATE, q.net(q.PROFIT_USD, q.LOSS_USD, sel, w, q.BY_STRATEGY, fn="rate")),
        (
            CAPTURE_RATIO,
            q.ratio(
                q.sum_increase(q.OPPORTUNITIES, sel, w, q.BY_STRATEGY, q.eq(q.L_STAGE, "included")),
                q.sum_increase(q.OPPORTUNITIES, sel, w, q.BY_STRATEGY, q.eq(q.L_STAGE, "detected")),
            ),
        ),
        (
            RPC_FAILURE_RATIO,
            q.ratio(
                q.sum_rate(
                    q.DURATION_COUNT, sel, w, (q.L_CHAIN,), rpc, q.eq(q.L_OUTCOME, semconv.OUTCOME_FAILURE)
                ),
                rpc_all,
            ),
        ),
        (
            RPC_RATE_LIMITED_RATIO,
            q.ratio(
                q.sum_rate(
                    q.DURATION_COUNT,
                    sel,
                    w,
                    (q.L_CHAIN,),
                    rpc,
                    q.eq(q.L_OUTCOME, semconv.OUTCOME_RATE_LIMITED),
                ),
                rpc_all,
            ),
        ),
        (
            SLIPPAGE_P95,
            q.quantile(0.95, q.SLIPPAGE_BUCKET, sel, w, q.BY_OPERATION, q.eq(q.L_DIRECTION, "adverse")),
        ),
    ]
    return [{"record": name, "expr": expr} for name, expr in rules]


def _pct(x: float) -> str:
    return f"{x * 100:g} %"


def alert_rules(s: AlertSettings) -> list[AlertRule]:
    """Every alert, critical first, with its thresholds filled in from ``s``."""
    sel, w = s.selector, s.rate_window
    not_rpc = q.ne(q.L_OPERATION, semconv.OPERATION_RPC)
    where = f"{T_OP} on {T_EX} ({T_CHAIN})"
    rpc = q.eq(q.L_OPERATION, semconv.OPERATION_RPC)
    rpc_ok = q.eq(q.L_OUTCOME, semconv.OUTCOME_SUCCESS)
    silence = s.rpc_silence
    new_events = q.series(q.SECURITY_EVENTS, sel)
    security_by = (q.L_SECURITY_KIND, q.L_EXCHANGE, q.L_CHAIN)
    memory = q.series("", sel, q.one_of("__name__", semconv.PROCESS_MEMORY_PROMETHEUS))
    profit_per_hour = q.net(q.PROFIT, q.LOSS, sel, s.profit_window, q.BY_STRATEGY, fn="rate")
    return [
        AlertRule(
            "MevFailedTransactions",
            "critical",
            f"{q.series(FAILURE_RATIO, '', not_rpc)} > {s.failure_ratio}\n"
            f"and {q.sum_rate(q.DURATION_COUNT, sel, w, q.BY_OPERATION, not_rpc)} > {s.failure_min_rate}",
            s.failure_for,
            f"Failed transactions: {where}",
            f"More than {_pct(s.failure_ratio)} of {T_OP} calls on "
            f"{T_EX} ({T_CHAIN}) failed or reverted over {w}.",
            "failed-transactions",
            f"failure_ratio = {s.failure_ratio} over rate_window = {w} for {s.failure_for}",
        ),
        AlertRule(
            "MevSecurityIncident",
            "critical",
            # increase() cannot see a counter's first sample; a series that is new
            # within the window counts as an incident too.
            f"sum {q.by(security_by)} (increase({new_events}[{w}])) > 0\n"
            f"or sum {q.by(security_by)} ({new_events} unless {new_events} offset {w}) > 0",
            s.security_for,
            f"Security incident: {T_KIND} ({T_CHAIN})",
            f"mevobs detected a {T_KIND} anomaly on {T_EX} "
            f"({T_CHAIN}) within the last {w}. Halt trading until it is explained.",
            "security-incident",
            "any mev.security.events increase",
        ),
        AlertRule(
            "MevLatencyDegraded",
            "critical",
            f"{LATENCY_P99} > {s.latency_p99_seconds}\n"
            f"and {LATENCY_P99} > {s.latency_baseline_factor} * "
            f"avg_over_time({LATENCY_P99}[{s.latency_baseline_window}])",
            s.latency_for,
            f"Latency degraded: {where}",
            f"p99 latency of {T_OP} on {T_EX} "
            f"({T_CHAIN}) is above {s.latency_p99_seconds} s and above "
            f"{s.latency_baseline_factor}x its {s.latency_baseline_window} average.",
            "latency-degraded",
            f"latency_p99_seconds = {s.latency_p99_seconds} and latency_baseline_factor = "
            f"{s.latency_baseline_factor} x the {s.latency_baseline_window} average, for {s.latency_for}",
        ),
        AlertRule(
            "MevProfitabilityDrop",
            "critical",
            f"({profit_per_hour}) * 3600 < {s.min_profit_eth_per_hour}",
            s.profit_for,
            f"Profitability drop: {T_STRAT} ({T_CHAIN})",
            f"Net profit of strategy {T_STRAT} on {T_CHAIN} over "
            f"{s.profit_window} is below {s.min_profit_eth_per_hour} ETH per hour "
            "(gas and reverts included).",
            "profitability-drop",
            f"min_profit_eth_per_hour = {s.min_profit_eth_per_hour} over profit_window = "
            f"{s.profit_window} for {s.profit_for}",
        ),
        AlertRule(
            "MevExchangeConnectivity",
            "critical",
            f"{RPC_FAILURE_RATIO} > {s.rpc_failure_ratio}\n"
            f"or ({q.sum_rate(q.DURATION_COUNT, sel, silence, (q.L_CHAIN,), rpc)} > 0\n"
            f"    unless {q.sum_rate(q.DURATION_COUNT, sel, silence, (q.L_CHAIN,), rpc, rpc_ok)} > 0)\n"
            f"or {q.sum_increase(q.DURATION_COUNT, sel, silence, (q.L_CHAIN,), rpc, rpc_ok)} == 0\n"
            f"or min {q.by((q.L_EXCHANGE, q.L_CHAIN))} ({q.series(q.EXCHANGE_UP, sel)}) == 0",
            s.connectivity_for,
            f"Exchange connectivity: RPC failing on {T_CHAIN}",
            f"RPC calls on {T_CHAIN} fail more than {_pct(s.rpc_failure_ratio)} of the "
            f"time, none succeeded in the last {silence}, or the connectivity check of {T_EX} fails.",
            "exchange-connectivity",
            f"rpc_failure_ratio = {s.rpc_failure_ratio}, no successful RPC for rpc_silence = {silence}, "
            "or mev.exchange.up = 0",
        ),
        AlertRule(
            "MevHighSlippage",
            "warning",
            f"{SLIPPAGE_P95} > {s.slippage_p95_bp}",
            s.slippage_for,
            f"High slippage: {where}",
            f"p95 adverse slippage of {T_OP} on {T_EX} ({T_CHAIN}) is above {s.slippage_p95_bp:g} bp.",
            "high-slippage",
            f"slippage_p95_bp = {s.slippage_p95_bp:g} for {s.slippage_for}",
        ),
        AlertRule(
            "MevLowPoolLiquidity",
            "warning",
            f"{q.series(q.POOL_LIQUIDITY, sel)} < {s.min_pool_liquidity_usd:g}",
            s.liquidity_for,
            f"Low liquidity: {T_POOL} on {T_EX} ({T_CHAIN})",
            f"Pool {T_POOL} on {T_EX} holds less than "
            f"{s.min_pool_liquidity_usd:,.0f} USD: trades there move its price.",
            "low-pool-liquidity",
            f"min_pool_liquidity_usd = {s.min_pool_liquidity_usd:g} for {s.liquidity_for}",
        ),
        AlertRule(
            "MevPriceDeviation",
            "warning",
            f"{q.series(q.PRICE_DEVIATION, sel)} > {s.max_price_deviation_bp:g}",
            s.price_deviation_for,
            f"Unusual price: {T_POOL} on {T_EX} ({T_CHAIN})",
            f"The price of {T_POOL} on {T_EX} is more than "
            f"{s.max_price_deviation_bp:g} bp from the bot's reference price.",
            "price-deviation",
            f"max_price_deviation_bp = {s.max_price_deviation_bp:g} for {s.price_deviation_for}",
        ),
        AlertRule(
            "MevRpcRateLimited",
            "warning",
            f"{RPC_RATE_LIMITED_RATIO} > {s.rate_limited_ratio}",
            s.rate_limited_for,
            f"API rate limiting on {T_CHAIN}",
            f"More than {_pct(s.rate_limited_ratio)} of RPC calls on {T_CHAIN} were rate limited over {w}.",
            "rpc-rate-limited",
            f"rate_limited_ratio = {s.rate_limited_ratio} over rate_window = {w} for {s.rate_limited_for}",
        ),
        AlertRule(
            "MevMemoryHigh",
            "warning",
            f"max by (job, instance) ({memory}) > {s.memory_fraction} * {s.memory_limit_bytes}",
            s.memory_for,
            f"Memory approaching its limit: {T_JOB} {T_INSTANCE}",
            f"Resident memory of {T_JOB} {T_INSTANCE} is above "
            f"{_pct(s.memory_fraction)} of the {s.memory_limit_bytes / 1024**3:g} GiB limit.",
            "memory-high",
            f"memory_fraction = {s.memory_fraction} of memory_limit_bytes = {s.memory_limit_bytes} "
            f"for {s.memory_for}",
        ),
    ]


def build_rules(settings: AlertSettings | None = None) -> dict[str, Any]:
    """The Prometheus rule file as a mapping, ready for ``yaml.safe_dump``."""
    s = settings or AlertSettings()
    alerts = alert_rules(s)
    return {
        "groups": [
            {"name": RECORDING_GROUP, "interval": s.group_interval, "rules": recording_rules(s)},
            {
                "name": CRITICAL_GROUP,
                "interval": s.group_interval,
                "rules": [a.as_rule(s) for a in alerts if a.severity == "critical"],
            },
            {
                "name": WARNING_GROUP,
                "interval": s.group_interval,
                "rules": [a.as_rule(s) for a in alerts if a.severity == "warning"],
            },
        ]
    }
