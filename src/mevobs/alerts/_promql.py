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


def sum_increase(name: str, selector: str, window: str, labels: tuple[str, ...], *matchers: str) -> str:
    return f"sum {by(labels)} (increase({series(name, selector, *matchers)}[{window}]))"


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
