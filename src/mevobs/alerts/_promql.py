"""PromQL built from the telemetry contract: series names and labels come from
:mod:`mevobs.semconv`, never retyped, so a renamed metric renames every rule and panel."""

from __future__ import annotations

from mevobs import semconv

L_OPERATION = semconv.prometheus_label(semconv.ATTR_OPERATION)
L_EXCHANGE = semconv.prometheus_label(semconv.ATTR_EXCHANGE)
L_CHAIN = semconv.prometheus_label(semconv.ATTR_CHAIN)
L_STRATEGY = semconv.prometheus_label(semconv.ATTR_STRATEGY)
L_OUTCOME = semconv.prometheus_label(semconv.ATTR_OUTCOME)
L_ERROR_TYPE = semconv.prometheus_label(semconv.ATTR_ERROR_TYPE)
L_RPC_METHOD = semconv.prometheus_label(semconv.ATTR_RPC_METHOD)
L_STAGE = semconv.prometheus_label(semconv.ATTR_OPPORTUNITY_STAGE)
L_DIRECTION = semconv.prometheus_label(semconv.ATTR_SLIPPAGE_DIRECTION)
L_POOL = semconv.prometheus_label(semconv.ATTR_POOL)
L_SECURITY_KIND = semconv.prometheus_label(semconv.ATTR_SECURITY_KIND)
L_CIRCUIT = semconv.prometheus_label(semconv.ATTR_CIRCUIT)
L_TOKEN = semconv.prometheus_label(semconv.ATTR_TOKEN)

DURATION_COUNT = semconv.OPERATION_DURATION.prometheus_name + "_count"
DURATION_BUCKET = semconv.OPERATION_DURATION.prometheus_name + "_bucket"
SLIPPAGE_BUCKET = semconv.SLIPPAGE.prometheus_name + "_bucket"
GAS_COST = semconv.GAS_COST.prometheus_name
PROFIT = semconv.PROFIT.prometheus_name
LOSS = semconv.LOSS.prometheus_name
PROFIT_USD = semconv.PROFIT_USD.prometheus_name
LOSS_USD = semconv.LOSS_USD.prometheus_name
OPPORTUNITIES = semconv.OPPORTUNITIES.prometheus_name
POOL_LIQUIDITY = semconv.POOL_LIQUIDITY.prometheus_name
PRICE_DEVIATION = semconv.PRICE_DEVIATION.prometheus_name
SECURITY_EVENTS = semconv.SECURITY_EVENTS.prometheus_name
EXCHANGE_UP = semconv.EXCHANGE_UP.prometheus_name
CIRCUIT_STATE = semconv.CIRCUIT_STATE.prometheus_name
EXPOSURE = semconv.EXPOSURE.prometheus_name
EXPOSURE_LIMIT = semconv.EXPOSURE_LIMIT.prometheus_name
HEARTBEAT = semconv.HEARTBEAT.prometheus_name
MEMORY = semconv.PROCESS_MEMORY.prometheus_name
MEMORY_LIMIT = semconv.PROCESS_MEMORY_LIMIT.prometheus_name
VOLUME = semconv.VOLUME.prometheus_name
VOLUME_USD = semconv.VOLUME_USD.prometheus_name
DB_DURATION_BUCKET = semconv.DB_DURATION.prometheus_name + "_bucket"
EVENT_LOOP_LAG_BUCKET = semconv.EVENT_LOOP_LAG.prometheus_name + "_bucket"
TELEMETRY_DROPPED = semconv.TELEMETRY_DROPPED.prometheus_name
L_DROP_REASON = semconv.prometheus_label(semconv.ATTR_DROP_REASON)
L_DB_SYSTEM = semconv.prometheus_label(semconv.ATTR_DB_SYSTEM)
L_DB_OPERATION = semconv.prometheus_label(semconv.ATTR_DB_OPERATION)

# -- Labels that are not mevobs attributes but identify where a series comes from.
#: Prometheus's own series per scrape target: 1 when its last scrape succeeded, else 0.
UP = "up"
L_JOB, L_INSTANCE = "job", "instance"
#: OpenTelemetry resource attributes as labels: the collector configuration mevobs
#: generates turns them into labels of every series (resource_to_telemetry_conversion),
#: so a bot behind a collector is told apart by its service, not by the scrape target.
L_SERVICE_NAME = semconv.prometheus_label("service.name")
L_SERVICE_INSTANCE = semconv.prometheus_label("service.instance.id")
#: What OpenTelemetry's Prometheus exporters add to every series: the instrumentation
#: scope. Aggregating them away keeps alert labels to what identifies the process.
SCOPE_LABELS = tuple(
    semconv.prometheus_label(a) for a in ("otel.scope.name", "otel.scope.version", "otel.scope.schema_url")
)
#: One bot process, on either path: scraped directly (job, instance) or behind a
#: collector (service name and instance id as labels).
PROCESS = (L_JOB, L_INSTANCE, L_SERVICE_NAME, L_SERVICE_INSTANCE)

# -- OpenTelemetry's system metrics (configure(system_metrics=True)). Not mevobs's
# contract (OpenTelemetry names them, mevobs only asks for them), so they live here,
# beside the panels that read them; tests/test_alerts.py checks these names and labels
# against what the real instrumentation and exporter produce.
L_CPU_TYPE = "type"
L_NET_DIRECTION = "direction"
L_GC_GENERATION = semconv.prometheus_label("cpython.gc.generation")
SYSTEM_METRICS = (
    CPU_TIME_SPEC := semconv.MetricSpec("process.cpu.time", "counter", "s", "CPU time.", (L_CPU_TYPE,)),
    NETWORK_IO_SPEC := semconv.MetricSpec(
        "system.network.io", "counter", "By", "Host network I/O.", ("device", L_NET_DIRECTION)
    ),
    GC_SPEC := semconv.MetricSpec(
        "cpython.gc.collections", "counter", "{collection}", "GC runs.", ("cpython.gc.generation",)
    ),
    THREADS_SPEC := semconv.MetricSpec("process.thread.count", "updowncounter", "{thread}", "Threads.", ()),
)
CPU_TIME = CPU_TIME_SPEC.prometheus_name
NETWORK_IO = NETWORK_IO_SPEC.prometheus_name
GC_COLLECTIONS = GC_SPEC.prometheus_name
THREADS = THREADS_SPEC.prometheus_name

#: Outcomes that count against success: the call ran and did not do its job.
FAILED_OUTCOMES = (semconv.OUTCOME_FAILURE, semconv.OUTCOME_REVERTED)
#: Outcomes left out of success ratios: the bot chose not to (or stopped) trading.
NEUTRAL_OUTCOMES = (semconv.OUTCOME_CANCELLED, semconv.OUTCOME_SKIPPED)

BY_OPERATION = (L_OPERATION, L_EXCHANGE, L_CHAIN)
BY_STRATEGY = (L_CHAIN, L_STRATEGY)


def eq(label: str, value: str) -> str:
    return f'{label}="{value}"'


def ne(label: str, value: str) -> str:
    return f'{label}!="{value}"'


def one_of(label: str, values: tuple[str, ...]) -> str:
    return f'{label}=~"{"|".join(values)}"'


def none_of(label: str, values: tuple[str, ...]) -> str:
    return f'{label}!~"{"|".join(values)}"'


def series(name: str, selector: str, *matchers: str) -> str:
    """``name{selector, matchers...}`` (a bare name when there is nothing to match)."""
    parts = [m for m in (selector, *matchers) if m]
    return f"{name}{{{', '.join(parts)}}}" if parts else name


def by(labels: tuple[str, ...]) -> str:
    return f"by ({', '.join(labels)})"


def sum_rate(name: str, selector: str, window: str, labels: tuple[str, ...], *matchers: str) -> str:
    return f"sum {by(labels)} (rate({series(name, selector, *matchers)}[{window}]))"


def without(labels: tuple[str, ...]) -> str:
    return f"without ({', '.join(labels)})"


def per_process(fn: str, expr: str) -> str:
    """``expr`` aggregated with ``fn`` over the exporter's scope labels only: one series
    per process (and per its own labels), named by what identifies the process."""
    return f"{fn} {without(SCOPE_LABELS)} ({expr})"


def sum_increase(name: str, selector: str, window: str, labels: tuple[str, ...], *matchers: str) -> str:
    return f"sum {by(labels)} (increase({series(name, selector, *matchers)}[{window}]))"


def increase_or_new(name: str, selector: str, window: str, labels: tuple[str, ...], *m: str) -> str:
    """Counters that grew within ``window``, summed ``by labels`` (``without`` the scope
    labels when ``labels`` is empty), counting a series born within the window as grown:
    ``increase()`` cannot see a counter's first sample, and counters such as
    ``mev.security.events`` are created by their first event."""
    agg = by(labels) if labels else without(SCOPE_LABELS)
    s = series(name, selector, *m)
    return f"sum {agg} (increase({s}[{window}])) > 0\nor sum {agg} ({s} unless {s} offset {window}) > 0"


def or_zero(expr: str, like: str) -> str:
    """``expr``, or 0 for every series of ``like`` where ``expr`` has none.

    Keeps ratios and differences defined when one side has no series yet (no
    failure has ever happened, no loss was ever booked).
    """
    return f"({expr} or ({like}) * 0)"


def ratio(part: str, whole: str) -> str:
    """``part / whole`` where ``part`` missing means 0 and ``whole`` 0 means no result."""
    return f"{or_zero(part, whole)} / ({whole} > 0)"


def quantile(q: float, bucket: str, selector: str, window: str, labels: tuple[str, ...], *m: str) -> str:
    return f"histogram_quantile({q}, {sum_rate(bucket, selector, window, ('le', *labels), *m)})"


def net(profit: str, loss: str, selector: str, window: str, labels: tuple[str, ...], *, fn: str) -> str:
    """Profit minus loss over ``window`` (``fn`` is ``rate`` or ``increase``), each side
    taken as zero where it has no series."""
    p = f"sum {by(labels)} ({fn}({series(profit, selector)}[{window}]))"
    loss_ = f"sum {by(labels)} ({fn}({series(loss, selector)}[{window}]))"
    return f"{or_zero(p, loss_)} - {or_zero(loss_, p)}"


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m``."""
    import re

    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration))
