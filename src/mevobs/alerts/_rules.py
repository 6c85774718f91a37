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
EXCHANGE_FAILURE_RATIO = "mev:exchange_failure:ratio"
SLIPPAGE_P95 = "mev:slippage_bp:p95"
VOLUME_RATE = "mev:volume_eth:rate"
VOLUME_USD_RATE = "mev:volume_usd:rate"
VOLUME_SHARE = "mev:volume_share:ratio"
CALL_SHARE = "mev:call_share:ratio"

#: The operations whose failures say an exchange or its node is unreachable.
CONNECTIVITY_OPERATIONS = (semconv.OPERATION_RPC, semconv.OPERATION_SWAP)

RECORDING_GROUP = "mevobs.recording"
CRITICAL_GROUP = "mevobs.alerts.critical"
WARNING_GROUP = "mevobs.alerts.warning"


def _t(label: str) -> str:
    """An alert template reference to a label of the firing series."""
    return "{{ $labels." + label + " }}"


T_OP, T_EX, T_CHAIN, T_STRAT = (_t(x) for x in (q.L_OPERATION, q.L_EXCHANGE, q.L_CHAIN, q.L_STRATEGY))
T_POOL, T_KIND, T_JOB, T_INSTANCE = _t(q.L_POOL), _t(q.L_SECURITY_KIND), _t(q.L_JOB), _t(q.L_INSTANCE)
T_SERVICE, T_CIRCUIT, T_TOKEN, T_REASON = (
    _t(x) for x in (q.L_SERVICE_NAME, q.L_CIRCUIT, q.L_TOKEN, q.L_DROP_REASON)
)
#: Which process an alert is about, on either path (a label missing renders empty).
T_PROCESS = f"{T_JOB} {T_INSTANCE} {T_SERVICE}"


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
    """Success rate, latency quantiles, gas spend, net profit, capture rate, RPC and exchange
    health, slippage, notional volume and each exchange's share of volume and calls."""
    sel, w = s.selector, s.rate_window
    settled = q.none_of(q.L_OUTCOME, q.NEUTRAL_OUTCOMES)
    rpc = q.eq(q.L_OPERATION, semconv.OPERATION_RPC)
    rpc_all = q.sum_rate(q.DURATION_COUNT, sel, w, (q.L_CHAIN,), rpc)
    by_exchange = (q.L_EXCHANGE, q.L_CHAIN)
    exchange_ops = q.one_of(q.L_OPERATION, CONNECTIVITY_OPERATIONS)
    trades = q.ne(q.L_OPERATION, semconv.OPERATION_RPC)
    volume = q.sum_rate(q.VOLUME, sel, w, by_exchange)

    def outcome_ratio(labels: tuple[str, ...], part: str, *m: str) -> str:
        return q.ratio(
            q.sum_rate(q.DURATION_COUNT, sel, w, labels, part, *m),
            q.sum_rate(q.DURATION_COUNT, sel, w, labels, settled, *m),
        )

    def rpc_ratio(outcome: str) -> str:
        return q.ratio(
            q.sum_rate(q.DURATION_COUNT, sel, w, (q.L_CHAIN,), rpc, q.eq(q.L_OUTCOME, outcome)), rpc_all
        )

    def share(part: str) -> str:
        # Of everything the fleet did: sum() has no labels, so on() matches every series.
        return f"{part} / on () group_left sum({part})"

    rules = [
        (OPERATIONS_RATE, q.sum_rate(q.DURATION_COUNT, sel, w, (*q.BY_OPERATION, q.L_OUTCOME))),
        (SUCCESS_RATIO, outcome_ratio(q.BY_OPERATION, q.eq(q.L_OUTCOME, semconv.OUTCOME_SUCCESS))),
        (FAILURE_RATIO, outcome_ratio(q.BY_OPERATION, q.one_of(q.L_OUTCOME, q.FAILED_OUTCOMES))),
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
        (RPC_FAILURE_RATIO, rpc_ratio(semconv.OUTCOME_FAILURE)),
        (RPC_RATE_LIMITED_RATIO, rpc_ratio(semconv.OUTCOME_RATE_LIMITED)),
        # Failures only (an exception: timeout, refused connection...): a revert is the
        # chain answering, a rate limit has its own alert.
        (
            EXCHANGE_FAILURE_RATIO,
            outcome_ratio(by_exchange, q.eq(q.L_OUTCOME, semconv.OUTCOME_FAILURE), exchange_ops),
        ),
        # Successful swaps only: a reverted swap filled nothing, its "slippage" is not one.
        (
            SLIPPAGE_P95,
            q.quantile(
                0.95,
                q.SLIPPAGE_BUCKET,
                sel,
                w,
                q.BY_OPERATION,
                q.eq(q.L_DIRECTION, "adverse"),
                q.eq(q.L_OUTCOME, semconv.OUTCOME_SUCCESS),
            ),
        ),
        (VOLUME_RATE, volume),
        (VOLUME_USD_RATE, q.sum_rate(q.VOLUME_USD, sel, w, by_exchange)),
        (VOLUME_SHARE, share(volume)),
        (CALL_SHARE, share(q.sum_rate(q.DURATION_COUNT, sel, w, by_exchange, trades))),
    ]
    return [{"record": name, "expr": expr} for name, expr in rules]


def _pct(x: float) -> str:
    return f"{x * 100:g} %"


def alert_rules(s: AlertSettings) -> list[AlertRule]:
    """Every alert, critical first, with its thresholds filled in from ``s``."""
    return [*_critical(s), *_warning(s)]


def _critical(s: AlertSettings) -> list[AlertRule]:
    sel, w = s.selector, s.rate_window
    not_rpc = q.ne(q.L_OPERATION, semconv.OPERATION_RPC)
    where = f"{T_OP} on {T_EX} ({T_CHAIN})"
    security_by = (q.L_SECURITY_KIND, q.L_EXCHANGE, q.L_CHAIN)
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
            q.increase_or_new(q.SECURITY_EVENTS, sel, w, security_by),
            s.security_for,
            f"Security incident: {T_KIND} ({T_CHAIN})",
            f"mevobs detected a {T_KIND} anomaly on {T_EX} "
            f"({T_CHAIN}) within the last {w}. Halt trading until it is explained.",
            "security-incident",
            "any mev.security.events increase",
        ),
        _latency_degraded(s),
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
        _exchange_connectivity(s),
        _bot_down(s),
        AlertRule(
            "MevTradingHalted",
            "critical",
            # Not closed, rather than open: a breaker whose trial calls keep failing goes
            # open, half open, open... and is halted throughout; == 2 would restart the
            # `for` clock at every half-open sample.
            f"{q.per_process('max', q.series(q.CIRCUIT_STATE, sel))} > 0",
            s.trading_halted_for,
            f"Trading halted: circuit {T_CIRCUIT} on {T_PROCESS}",
            f"Circuit breaker {T_CIRCUIT} of {T_PROCESS} has not been closed for "
            f"{s.trading_halted_for}: the operations it guards are refused.",
            "trading-halted",
            f"mev.circuit.state open or half open for trading_halted_for = {s.trading_halted_for}",
        ),
        AlertRule(
            "MevTelemetryLost",
            "critical",
            q.increase_or_new(
                q.TELEMETRY_DROPPED, sel, w, (), q.one_of(q.L_DROP_REASON, semconv.LOSS_REASONS)
            ),
            s.telemetry_lost_for,
            f"Telemetry lost ({T_REASON}): {T_PROCESS}",
            f"{T_PROCESS} dropped telemetry ({T_REASON}) within every {w} for "
            f"{s.telemetry_lost_for}: traces, metrics or logs never reached the backend, and "
            "what the other alerts see is incomplete.",
            "telemetry-lost",
            f"mev.telemetry.dropped rising for {'/'.join(semconv.LOSS_REASONS)} over rate_window = {w} "
            f"for {s.telemetry_lost_for}",
        ),
    ]


def _latency_degraded(s: AlertSettings) -> AlertRule:
    # The baseline is the median of the recorded p99 over a window that ends where the
    # current rate window begins: the degradation is never in it, and half the baseline
    # window must be slow before "slow" becomes the new normal.
    baseline = f"quantile_over_time(0.5, {LATENCY_P99}[{s.latency_baseline_window}] offset {s.rate_window})"
    where = f"{T_OP} on {T_EX} ({T_CHAIN})"
    return AlertRule(
        "MevLatencyDegraded",
        "critical",
        f"{LATENCY_P99} > {s.latency_p99_seconds}\n"
        f"and {LATENCY_P99} > {s.latency_baseline_factor} * {baseline}",
        s.latency_for,
        f"Latency degraded: {where}",
        f"p99 latency of {T_OP} on {T_EX} ({T_CHAIN}) over the last {s.rate_window} is above "
        f"{s.latency_p99_seconds} s and above {s.latency_baseline_factor}x its median p99 of the "
        f"{s.latency_baseline_window} before.",
        "latency-degraded",
        f"latency_p99_seconds = {s.latency_p99_seconds} and latency_baseline_factor = "
        f"{s.latency_baseline_factor} x the median p99 of latency_baseline_window = "
        f"{s.latency_baseline_window} before rate_window, for {s.latency_for}",
    )


def _exchange_connectivity(s: AlertSettings) -> AlertRule:
    by_exchange = (q.L_EXCHANGE, q.L_CHAIN)
    up = q.series(q.EXCHANGE_UP, s.selector)
    calls = q.sum_rate(
        q.DURATION_COUNT,
        s.selector,
        s.rate_window,
        by_exchange,
        q.one_of(q.L_OPERATION, CONNECTIVITY_OPERATIONS),
        q.none_of(q.L_OUTCOME, q.NEUTRAL_OUTCOMES),
    )
    # A health check's verdict where one reports the exchange (HealthServer), the failure
    # ratio elsewhere; both carry (exchange, chain) only, so `or` keeps one alert per pair.
    return AlertRule(
        "MevExchangeConnectivity",
        "critical",
        f"min {q.by(by_exchange)} ({up}) == 0\n"
        f"or (\n"
        f"  {EXCHANGE_FAILURE_RATIO} > {s.connectivity_failure_ratio}\n"
        f"  and {calls} > {s.connectivity_min_rate}\n"
        f"  unless on ({', '.join(by_exchange)}) max {q.by(by_exchange)} ({up}) == 1\n"
        f")",
        s.connectivity_for,
        f"Exchange connectivity: {T_EX} ({T_CHAIN})",
        f"The connectivity check of {T_EX} on {T_CHAIN} fails, or more than "
        f"{_pct(s.connectivity_failure_ratio)} of its RPC and swap calls failed over {s.rate_window}.",
        "exchange-connectivity",
        f"mev.exchange.up = 0, or connectivity_failure_ratio = {s.connectivity_failure_ratio} of "
        f"RPC and swap calls over rate_window = {s.rate_window} for {s.connectivity_for}",
    )


def _bot_down(s: AlertSettings) -> AlertRule:
    sel = s.selector
    hb = q.series(q.HEARTBEAT, sel)
    up_down = f"{q.series(q.UP, sel)} == 0"
    bot = (q.L_JOB, q.L_SERVICE_NAME)
    seen = f"group {q.by(bot)} (present_over_time({hb}[{s.bot_down_lookback}]))"
    # The heartbeat is the process's age: one younger than the window is alive, not stuck.
    alive = (
        f"group {q.by(bot)} (changes({hb}[{s.bot_down_window}]) > 0 "
        f"or {hb} < {q.seconds(s.bot_down_window):g})"
    )
    return AlertRule(
        "MevBotDown",
        "critical",
        # A scraped target that is down, in a job that has reported a heartbeat; or a bot
        # (job and service: behind a collector, the job is the collector's) whose heartbeat
        # stopped changing, unless its job's target is down (the first form reports that).
        f"(\n"
        f"  {up_down}\n"
        f"  and on ({q.L_JOB}) group {q.by((q.L_JOB,))} (present_over_time({hb}[{s.bot_down_lookback}]))\n"
        f")\n"
        f"or (\n"
        f"  {seen}\n"
        f"  unless on ({', '.join(bot)}) {alive}\n"
        f"  unless on ({q.L_JOB}) ({up_down})\n"
        f")",
        s.bot_down_for,
        f"Bot down: {T_PROCESS}",
        f"{T_PROCESS} stopped reporting: its scrape target is down, or its mev.heartbeat has not "
        f"changed for {s.bot_down_window}. Nothing it does is being watched.",
        "bot-down",
        f"up == 0, or mev.heartbeat unchanged for bot_down_window = {s.bot_down_window}, "
        f"for {s.bot_down_for}",
    )


def _warning(s: AlertSettings) -> list[AlertRule]:
    sel, w = s.selector, s.rate_window
    where = f"{T_OP} on {T_EX} ({T_CHAIN})"
    by_pool = (q.L_EXCHANGE, q.L_CHAIN, q.L_POOL)
    ratio = f"{q.series(q.MEMORY, sel)} / {q.series(q.MEMORY_LIMIT, sel)}"
    over_limit = (
        f"abs({q.series(q.EXPOSURE, sel)}) > ignoring ({q.L_CHAIN}) group_left "
        f"{q.series(q.EXPOSURE_LIMIT, sel)}"
    )
    return [
        AlertRule(
            "MevHighSlippage",
            "warning",
            f"{SLIPPAGE_P95} > {s.slippage_p95_bp}",
            s.slippage_for,
            f"High slippage: {where}",
            f"p95 adverse slippage of successful {T_OP} calls on {T_EX} ({T_CHAIN}) is above "
            f"{s.slippage_p95_bp:g} bp.",
            "high-slippage",
            f"slippage_p95_bp = {s.slippage_p95_bp:g} for {s.slippage_for}",
        ),
        AlertRule(
            "MevLowPoolLiquidity",
            "warning",
            f"min {q.by(by_pool)} ({q.series(q.POOL_LIQUIDITY, sel)}) < {s.min_pool_liquidity_usd:g}",
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
            f"max {q.by(by_pool)} ({q.series(q.PRICE_DEVIATION, sel)}) > {s.max_price_deviation_bp:g}",
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
            f"{q.per_process('max', ratio)} > {s.memory_fraction}",
            s.memory_for,
            f"Memory approaching its limit: {T_PROCESS}",
            f"Resident memory of {T_PROCESS} is above {_pct(s.memory_fraction)} of the limit it "
            "reports (the smallest of memory_limit_bytes, its cgroup's and the host's RAM).",
            "memory-high",
            f"memory_fraction = {s.memory_fraction} of mev.process.memory.limit for {s.memory_for}",
        ),
        AlertRule(
            "MevRiskExposure",
            "warning",
            # The limit is per token, the exposure per token and chain: each chain's
            # holding is held against the token's limit.
            q.per_process("max", over_limit),
            s.exposure_for,
            f"Risk exposure: {T_TOKEN} ({T_CHAIN}) above its limit",
            f"The inventory of {T_TOKEN} on {T_CHAIN} held by {T_PROCESS} is above the limit "
            "configured for it (exposure_limits).",
            "risk-exposure",
            f"abs(mev.exposure) > mev.exposure.limit for {s.exposure_for}",
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
