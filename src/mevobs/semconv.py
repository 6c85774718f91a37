"""The mevobs telemetry contract: every metric, attribute and value name, once.

Dashboards, alert rules, the docs table and the tests are built from these
constants, so a rename here is a rename everywhere (and a failing test where
something was retyped by hand).

Metric attributes are a fixed, bounded set (:data:`METRIC_ATTRIBUTES`); the
unbounded facts of a trade (hashes, addresses, blocks, amounts) are span and
log attributes only (:data:`SPAN_ONLY_ATTRIBUTES`).
"""

from __future__ import annotations

from typing import Final, Literal

from mevobs._metricspec import InstrumentKind as InstrumentKind
from mevobs._metricspec import MetricSpec as MetricSpec
from mevobs._metricspec import prometheus_label as prometheus_label
from mevobs._metricspec import prometheus_name as prometheus_name

# --------------------------------------------------------------------------
# Metric attributes (bounded; values beyond the cardinality cap become "other")
# --------------------------------------------------------------------------

ATTR_OPERATION: Final = "mev.operation"
"""Operation kind: ``swap``, ``liquidity``, ``arbitrage``, ``rpc`` or a generic kind."""

ATTR_EXCHANGE: Final = "mev.exchange"
"""Exchange or protocol, e.g. ``uniswap_v2``, ``uniswap_v3``, ``curve``."""

ATTR_CHAIN: Final = "mev.chain"
"""Chain name, e.g. ``ethereum``, ``arbitrum``."""

ATTR_STRATEGY: Final = "mev.strategy"
"""Arbitrage or trading strategy name, e.g. ``triangular``."""

ATTR_LIQUIDITY_ACTION: Final = "mev.liquidity.action"
"""Liquidity action: ``add`` or ``remove``."""

ATTR_RPC_METHOD: Final = "mev.rpc.method"
"""JSON-RPC or API method, e.g. ``eth_call``."""

ATTR_OUTCOME: Final = "mev.outcome"
"""Outcome of the operation: one of :data:`OUTCOMES`."""

ATTR_ERROR_TYPE: Final = "error.type"
"""Exception class name or classified RPC error (see :data:`RPC_ERROR_TYPES`)."""

ATTR_SLIPPAGE_DIRECTION: Final = "mev.slippage.direction"
"""``adverse`` (filled below expectation) or ``favorable``; only on ``mev.slippage``."""

ATTR_OPPORTUNITY_STAGE: Final = "mev.opportunity.stage"
"""Funnel stage, one of :data:`OPPORTUNITY_STAGES`; only on ``mev.opportunities``."""

ATTR_POOL: Final = "mev.pool"
"""Pool name (e.g. ``WETH/USDC 0.05%``); only on ``mev.pool.liquidity`` and ``mev.price.deviation``,
bounded by the cardinality cap: report the pools the bot watches, not every pool on chain."""

ATTR_SECURITY_KIND: Final = "mev.security.kind"
"""Security event kind, one of :data:`SECURITY_KINDS`; only on ``mev.security.events``."""

ATTR_CIRCUIT: Final = "mev.circuit.name"
"""Circuit breaker name (chosen by the bot, bounded); only on ``mev.circuit.state``."""

ATTR_TOKEN: Final = "mev.token"
"""Token symbol; only on ``mev.exposure`` (bounded by the cardinality cap)."""

ATTR_DB_SYSTEM: Final = "db.system"
"""Database system of a traced query (OpenTelemetry's name, e.g. ``sqlite``); only on
``mev.db.duration``."""

ATTR_DB_OPERATION: Final = "db.operation.name"
"""The query's operation (``select``, ``insert``... from a fixed set, else ``other``); only on
``mev.db.duration``."""

ATTR_DROP_REASON: Final = "reason"
"""Why telemetry was dropped, one of :data:`DROP_REASONS`; only on ``mev.telemetry.dropped``."""

METRIC_ATTRIBUTES: Final = (
    ATTR_OPERATION,
    ATTR_EXCHANGE,
    ATTR_CHAIN,
    ATTR_STRATEGY,
    ATTR_LIQUIDITY_ACTION,
    ATTR_RPC_METHOD,
    ATTR_OUTCOME,
    ATTR_ERROR_TYPE,
)
"""The attributes an operation may put on its metrics; nothing else reaches a metric."""

# --------------------------------------------------------------------------
# Span and log attributes (unbounded; never on metrics)
# --------------------------------------------------------------------------

ATTR_TX_HASH: Final = "mev.tx.hash"
"""Transaction hash (hex)."""

ATTR_BLOCK_NUMBER: Final = "mev.block.number"
"""Block the transaction was included in."""

ATTR_TX_STATUS: Final = "mev.tx.status"
"""Receipt status: 1 success, 0 reverted."""

ATTR_TX_TO: Final = "mev.tx.to"
"""Transaction ``to`` address (router or contract called)."""

ATTR_POOL_ADDRESS: Final = "mev.pool.address"
"""Pool address or id."""

ATTR_TOKEN_IN: Final = "mev.token.in"
"""Token sold (symbol or address)."""

ATTR_TOKEN_OUT: Final = "mev.token.out"
"""Token bought (symbol or address)."""

ATTR_AMOUNT_IN: Final = "mev.amount.in"
"""Exact amount sold, base units, decimal string."""

ATTR_AMOUNT_OUT: Final = "mev.amount.out"
"""Exact amount bought, base units, decimal string."""

ATTR_AMOUNT_OUT_EXPECTED: Final = "mev.amount.out_expected"
"""Quoted amount the swap expected to receive, base units, decimal string."""

ATTR_SLIPPAGE_BP: Final = "mev.slippage.bp"
"""Realised slippage in basis points, signed (negative is favourable)."""

ATTR_LIQUIDITY_AMOUNT0: Final = "mev.liquidity.amount0"
"""Token0 amount added or removed, base units, decimal string."""

ATTR_LIQUIDITY_AMOUNT1: Final = "mev.liquidity.amount1"
"""Token1 amount added or removed, base units, decimal string."""

ATTR_LIQUIDITY_UNITS: Final = "mev.liquidity.units"
"""Liquidity (LP tokens or V3 liquidity) minted or burned, decimal string."""

ATTR_GAS_USED: Final = "mev.gas.used"
"""Gas used by the transaction (as on the receipt)."""

ATTR_GAS_USED_FOR_L1: Final = "mev.gas.used_for_l1"
"""Part of ``gas_used`` spent on L1 data (Arbitrum); a breakdown, not an addition."""

ATTR_GAS_PRICE_WEI: Final = "mev.gas.effective_price_wei"
"""Effective gas price in wei, decimal string."""

ATTR_L1_FEE_WEI: Final = "mev.gas.l1_fee_wei"
"""Separately reported L1 data fee in wei (OP-stack), decimal string."""

ATTR_COINBASE_TRANSFER_WEI: Final = "mev.gas.coinbase_transfer_wei"
"""Direct payment to the block builder in wei, decimal string."""

ATTR_GAS_COST_WEI: Final = "mev.gas.cost_wei"
"""This operation's own gas cost in wei, decimal string."""

ATTR_GAS_COST_TOTAL_WEI: Final = "mev.gas.cost_total_wei"
"""Gas cost of this operation and all nested operations, wei, decimal string."""

ATTR_GAS_COST_ETH: Final = "mev.gas.cost_eth"
"""This operation's own gas cost in ETH (float, for reading)."""

ATTR_PROFIT_GROSS_WEI: Final = "mev.profit.gross_wei"
"""Gross profit before gas in wei, decimal string."""

ATTR_PROFIT_NET_WEI: Final = "mev.profit.net_wei"
"""Net profit (gross minus all gas in the operation tree) in wei, decimal string."""

ATTR_PROFIT_NET_ETH: Final = "mev.profit.net_eth"
"""Net profit in ETH (float, for reading)."""

ATTR_PROFIT_USD: Final = "mev.profit.net_usd"
"""Net profit in USD, when a USD value was recorded."""

ATTR_PROFIT_EXPECTED_WEI: Final = "mev.profit.expected_wei"
"""Profit the bot expected before execution, wei, decimal string."""

ATTR_RPC_PROVIDER: Final = "mev.rpc.provider"
"""RPC provider name or scrubbed URL."""

ATTR_DURATION_MS: Final = "mev.duration_ms"
"""Operation duration in milliseconds (logs only)."""

ATTR_SECURITY_SCORE: Final = "mev.security.score"
"""How anomalous a security finding is (a robust z-score, a count or a ratio, per kind);
span events and logs only."""

ATTR_SECURITY_BASELINE: Final = "mev.security.baseline"
"""The baseline a security finding was judged against (e.g. typical gas); span events and logs only."""

ATTR_CIRCUIT_FROM: Final = "mev.circuit.from"
"""Circuit breaker state before a transition (``closed``, ``open``, ``half_open``); logs only."""

ATTR_CIRCUIT_TO: Final = "mev.circuit.to"
"""Circuit breaker state after a transition; logs only."""

ATTR_CIRCUIT_REASON: Final = "mev.circuit.reason"
"""Why a circuit breaker changed state (free text, bounded by the bot); logs only."""

EVENT_SECURITY: Final = "mev.security"
"""Name of the span event a security finding adds to the operation it concerns."""


SPAN_ONLY_ATTRIBUTES: Final = (
    ATTR_TX_HASH,
    ATTR_BLOCK_NUMBER,
    ATTR_TX_STATUS,
    ATTR_TX_TO,
    ATTR_POOL_ADDRESS,
    ATTR_TOKEN_IN,
    ATTR_TOKEN_OUT,
    ATTR_AMOUNT_IN,
    ATTR_AMOUNT_OUT,
    ATTR_AMOUNT_OUT_EXPECTED,
    ATTR_SLIPPAGE_BP,
    ATTR_LIQUIDITY_AMOUNT0,
    ATTR_LIQUIDITY_AMOUNT1,
    ATTR_LIQUIDITY_UNITS,
    ATTR_GAS_USED,
    ATTR_GAS_USED_FOR_L1,
    ATTR_GAS_PRICE_WEI,
    ATTR_L1_FEE_WEI,
    ATTR_COINBASE_TRANSFER_WEI,
    ATTR_GAS_COST_WEI,
    ATTR_GAS_COST_TOTAL_WEI,
    ATTR_GAS_COST_ETH,
    ATTR_PROFIT_GROSS_WEI,
    ATTR_PROFIT_NET_WEI,
    ATTR_PROFIT_NET_ETH,
    ATTR_PROFIT_USD,
    ATTR_PROFIT_EXPECTED_WEI,
    ATTR_RPC_PROVIDER,
    ATTR_DURATION_MS,
    ATTR_SECURITY_SCORE,
    ATTR_SECURITY_BASELINE,
    ATTR_CIRCUIT_FROM,
    ATTR_CIRCUIT_TO,
    ATTR_CIRCUIT_REASON,
)
"""Attributes that go on spans, span events and logs only: never on a metric."""

# OpenTelemetry RPC conventions used on ``rpc`` spans.
ATTR_RPC_SYSTEM_NAME: Final = "rpc.system.name"
"""Always ``jsonrpc`` on rpc spans (OpenTelemetry RPC conventions)."""

ATTR_OTEL_RPC_METHOD: Final = "rpc.method"
"""The JSON-RPC method (OpenTelemetry RPC conventions)."""

ATTR_SERVER_ADDRESS: Final = "server.address"
"""Host of the RPC endpoint, never its path or query (which may hold an API key)."""

# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------

Outcome = Literal["success", "failure", "reverted", "cancelled", "rate_limited", "skipped"]

OUTCOME_SUCCESS: Final = "success"
OUTCOME_FAILURE: Final = "failure"
OUTCOME_REVERTED: Final = "reverted"
OUTCOME_CANCELLED: Final = "cancelled"
OUTCOME_RATE_LIMITED: Final = "rate_limited"
OUTCOME_SKIPPED: Final = "skipped"
OUTCOMES: Final = (
    OUTCOME_SUCCESS,
    OUTCOME_FAILURE,
    OUTCOME_REVERTED,
    OUTCOME_CANCELLED,
    OUTCOME_RATE_LIMITED,
    OUTCOME_SKIPPED,
)
"""Every value of ``mev.outcome``."""

OpportunityStage = Literal["detected", "simulated", "submitted", "included", "profitable", "missed"]
OPPORTUNITY_STAGES: Final = ("detected", "simulated", "submitted", "included", "profitable", "missed")
"""Every value of ``mev.opportunity.stage``, in funnel order (``missed`` last)."""

RPC_ERROR_TYPES: Final = (
    "rate_limited",
    "nonce_too_low",
    "replacement_underpriced",
    "already_known",
    "insufficient_funds",
    "execution_reverted",
    "timeout",
    "connection",
)
"""Classified ``error.type`` values for failed RPC calls (else the exception class name)."""

DROP_REASONS: Final = (
    "invalid_value",
    "invalid_attribute",
    "unbounded_label",
    "recorder_error",
    "export_failed",
    "queue_full",
    "overload",
    "log_queue_full",
    "series_cap",
    "truncated",
    "sampling_overflow",
)
"""Every value of the ``reason`` attribute on ``mev.telemetry.dropped``: refused input
(``invalid_value``, ``invalid_attribute``, ``recorder_error``, and ``unbounded_label``: a
metric label that looked like a URL, an address or a key became ``other``), lost
telemetry (``export_failed``, ``queue_full``, ``overload``: a successful trace shed above
the queue's high-water mark, ``log_queue_full``: a stalled log destination), and fidelity
lost but data kept (``series_cap``: recorded into the ``other`` series, ``truncated``: a
value cut to its limit, ``sampling_overflow``: spans exported before their trace's tail
decision)."""

LOSS_REASONS: Final = ("export_failed", "queue_full", "overload", "log_queue_full")
"""The reasons that mean telemetry never arrived (the telemetry-lost alert counts these)."""

SECURITY_KINDS: Final = (
    "abnormal_gas",
    "unexpected_contract",
    "tx_pattern",
    "rpc_pattern",
    "profit_deviation",
    "manual",
)
"""Every value of ``mev.security.kind`` (``manual``: recorded by the bot itself)."""

OTHER_VALUE: Final = "other"
"""What a metric attribute value becomes once its key has seen the cap of distinct values."""

OPERATION_SWAP: Final = "swap"
OPERATION_LIQUIDITY: Final = "liquidity"
OPERATION_ARBITRAGE: Final = "arbitrage"
OPERATION_RPC: Final = "rpc"

# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------

# MetricSpec and the Prometheus naming rules live in _metricspec (re-exported here).
DURATION_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Explicit bucket advice for ``mev.operation.duration`` (seconds)."""

GAS_BUCKETS: Final = (
    21_000.0,
    50_000.0,
    100_000.0,
    150_000.0,
    200_000.0,
    300_000.0,
    500_000.0,
    750_000.0,
    1_000_000.0,
    2_000_000.0,
    5_000_000.0,
    10_000_000.0,
)
"""Explicit bucket advice for ``mev.gas.used``."""

SLIPPAGE_BUCKETS: Final = (0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
"""Explicit bucket advice for ``mev.slippage`` (basis points)."""

_OP_ATTRS = METRIC_ATTRIBUTES

OPERATION_DURATION: Final = MetricSpec(
    "mev.operation.duration",
    "histogram",
    "s",
    "Duration of a swap, liquidity, arbitrage or RPC operation, awaits included.",
    _OP_ATTRS,
    buckets=DURATION_BUCKETS,
)
GAS_USED: Final = MetricSpec(
    "mev.gas.used",
    "histogram",
    "{gas}",
    "Gas used per transaction-carrying operation.",
    _OP_ATTRS,
    buckets=GAS_BUCKETS,
)
GAS_COST: Final = MetricSpec(
    "mev.gas.cost",
    "counter",
    "ETH",
    "Gas paid in the native token: gas used x effective price + L1 data fee + builder payment.",
    _OP_ATTRS,
)
PROFIT: Final = MetricSpec(
    "mev.profit", "counter", "ETH", "Positive net profit (gross minus all gas in the tree).", _OP_ATTRS
)
LOSS: Final = MetricSpec(
    "mev.loss", "counter", "ETH", "Magnitude of negative net profit, reverted gas included.", _OP_ATTRS
)
PROFIT_USD: Final = MetricSpec(
    "mev.profit.usd", "counter", "USD", "Positive net profit in USD, when a USD value is given.", _OP_ATTRS
)
LOSS_USD: Final = MetricSpec(
    "mev.loss.usd", "counter", "USD", "Negative net profit in USD, when a USD value is given.", _OP_ATTRS
)
SLIPPAGE: Final = MetricSpec(
    "mev.slippage",
    "histogram",
    "{bp}",
    "Magnitude of realised slippage versus the quoted amount, in basis points.",
    (*_OP_ATTRS, ATTR_SLIPPAGE_DIRECTION),
    buckets=SLIPPAGE_BUCKETS,
)
OPPORTUNITIES: Final = MetricSpec(
    "mev.opportunities",
    "counter",
    "{opportunity}",
    "Opportunities by funnel stage (detected, simulated, submitted, included, profitable, missed).",
    (ATTR_OPERATION, ATTR_EXCHANGE, ATTR_CHAIN, ATTR_STRATEGY, ATTR_OPPORTUNITY_STAGE),
)
POOL_LIQUIDITY: Final = MetricSpec(
    "mev.pool.liquidity",
    "gauge",
    "USD",
    "Liquidity (TVL) of a pool the bot trades, in USD, as last reported.",
    (ATTR_EXCHANGE, ATTR_CHAIN, ATTR_POOL),
)
PRICE_DEVIATION: Final = MetricSpec(
    "mev.price.deviation",
    "gauge",
    "{bp}",
    "Deviation of a pool's price from the bot's reference price, in basis points, as last reported.",
    (ATTR_EXCHANGE, ATTR_CHAIN, ATTR_POOL),
)
SECURITY_EVENTS: Final = MetricSpec(
    "mev.security.events",
    "counter",
    "{event}",
    "Security anomalies detected (abnormal gas, unexpected contract, unusual patterns, profit deviation).",
    (ATTR_SECURITY_KIND, ATTR_OPERATION, ATTR_EXCHANGE, ATTR_CHAIN),
)
CIRCUIT_STATE: Final = MetricSpec(
    "mev.circuit.state",
    "gauge",
    "{state}",
    "Circuit breaker state: 0 closed, 1 half open, 2 open (trading halted).",
    (ATTR_CIRCUIT,),
    observable=True,
)
EXCHANGE_UP: Final = MetricSpec(
    "mev.exchange.up",
    "gauge",
    "{up}",
    "1 while the last connectivity check of an exchange or chain passed, else 0.",
    (ATTR_EXCHANGE, ATTR_CHAIN),
)
EXPOSURE: Final = MetricSpec(
    "mev.exposure",
    "gauge",
    "{token}",
    "Inventory held per token, in whole tokens, as last recorded with record_exposure (risk exposure).",
    (ATTR_TOKEN, ATTR_CHAIN),
)
EVENT_LOOP_LAG: Final = MetricSpec(
    "mev.eventloop.lag",
    "histogram",
    "s",
    "How late asyncio's event loop ran a callback scheduled on time (with system_metrics=True).",
    (),
    buckets=DURATION_BUCKETS,
)
VOLUME: Final = MetricSpec(
    "mev.volume",
    "counter",
    "ETH",
    "Notional volume of successful swaps in ETH, as the bot priced it (record_swap notional_eth).",
    _OP_ATTRS,
)
VOLUME_USD: Final = MetricSpec(
    "mev.volume.usd",
    "counter",
    "USD",
    "Notional volume of successful swaps in USD, as the bot priced it (record_swap notional_usd).",
    _OP_ATTRS,
)
DB_DURATION: Final = MetricSpec(
    "mev.db.duration",
    "histogram",
    "s",
    "Duration of database queries traced by a contrib instrumentation (instrument=['sqlite3']...).",
    (ATTR_DB_SYSTEM, ATTR_DB_OPERATION),
    buckets=DURATION_BUCKETS,
)
HEARTBEAT: Final = MetricSpec(
    "mev.heartbeat",
    "gauge",
    "s",
    "Seconds since the instrumented process started, reported at every collection: it vanishes "
    "when the bot dies (the bot-down alert).",
    (),
    observable=True,
)
PROCESS_MEMORY: Final = MetricSpec(
    "mev.process.memory.usage",
    "gauge",
    "By",
    "Resident memory of the bot process, read at every collection.",
    (),
    observable=True,
)
PROCESS_MEMORY_LIMIT: Final = MetricSpec(
    "mev.process.memory.limit",
    "gauge",
    "By",
    "The process's memory limit: the smallest of the memory_limit_bytes setting, its cgroup's "
    "limit and the host's RAM.",
    (),
    observable=True,
)
EXPOSURE_LIMIT: Final = MetricSpec(
    "mev.exposure.limit",
    "gauge",
    "{token}",
    "Risk limit per token from the exposure_limits setting, in whole tokens (the exposure alert).",
    (ATTR_TOKEN,),
    observable=True,
)
TELEMETRY_DROPPED: Final = MetricSpec(
    "mev.telemetry.dropped",
    "counter",
    "{item}",
    "Telemetry refused (bad values) or lost (full queues, failed exports).",
    (ATTR_DROP_REASON,),
)

METRICS: Final = (
    OPERATION_DURATION,
    GAS_USED,
    GAS_COST,
    PROFIT,
    LOSS,
    PROFIT_USD,
    LOSS_USD,
    SLIPPAGE,
    OPPORTUNITIES,
    POOL_LIQUIDITY,
    PRICE_DEVIATION,
    SECURITY_EVENTS,
    CIRCUIT_STATE,
    EXCHANGE_UP,
    EXPOSURE,
    EVENT_LOOP_LAG,
    VOLUME,
    VOLUME_USD,
    DB_DURATION,
    HEARTBEAT,
    PROCESS_MEMORY,
    PROCESS_MEMORY_LIMIT,
    EXPOSURE_LIMIT,
    TELEMETRY_DROPPED,
)
"""Every metric the core library emits."""


SPAN_KIND_RPC: Final = "CLIENT"
"""Span kind of ``rpc`` operations (the name of an ``opentelemetry.trace.SpanKind``);
every other operation is INTERNAL."""

INSTRUMENTATION_SCOPE: Final = "mevobs"
"""Tracer, meter and logger name, and the stdlib logger the operation logs go to."""
