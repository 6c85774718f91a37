"""What a finished operation turns into: settled PnL, metric points, span attributes,
the log record, and the hooks (detectors, audit, breaker) that see it first.

Split from ``_operation.py`` so that the handle (recorders and lifecycle) and its
emission each stay one readable module; these functions read the handle's
private state by design.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Status, StatusCode

from mevobs import _money, semconv
from mevobs._logs import emit_operation_log
from mevobs._state import LOGGER, STATE, on_fork_in_child

if TYPE_CHECKING:
    from mevobs._operation import Operation
    from mevobs._wrap import OperationSpec

TREE_LOCK = threading.Lock()


def _new_tree_lock() -> None:
    global TREE_LOCK
    TREE_LOCK = threading.Lock()  # another thread of the parent may have held it at the fork


on_fork_in_child(_new_tree_lock)

LOG_LEVELS = {
    semconv.OUTCOME_SUCCESS: logging.INFO,
    semconv.OUTCOME_SKIPPED: logging.INFO,
    semconv.OUTCOME_CANCELLED: logging.INFO,
    semconv.OUTCOME_REVERTED: logging.WARNING,
    semconv.OUTCOME_RATE_LIMITED: logging.WARNING,
    semconv.OUTCOME_FAILURE: logging.ERROR,
}


def has_pnl(op: Operation) -> bool:
    """Whether anything in ``op``'s tree carries gas or profit (there is PnL to settle).

    One predicate for every caller: a child's PnL of exactly 0 wei is still PnL.
    """
    return bool(
        op._gas_cost_wei or op._child_gas_wei or op._gross_wei is not None or op._pending_pnl_wei is not None
    )


def settle_pnl(op: Operation, outcome: str) -> None:
    """Compute net profit for this operation and hand gas and PnL up the tree."""
    own_gas = op._gas_cost_wei
    with TREE_LOCK:
        total_gas = own_gas + op._child_gas_wei
        unaccounted = own_gas + op._unaccounted_gas_wei
        pending = op._pending_pnl_wei
    pnl: int | None
    if outcome == semconv.OUTCOME_REVERTED and total_gas:
        pnl = -total_gas  # a reverted transaction earns nothing and pays its gas
    elif op._gross_wei is not None:
        pnl = op._gross_wei - total_gas
    elif pending is not None:
        pnl = pending - unaccounted
    else:
        pnl = None
    op.net_profit_wei = pnl
    parent = op._parent
    if parent is not None and parent._spec is not None:
        with TREE_LOCK:
            parent._touched = True  # its finish settles the roll-up (see _fastcall.finish)
            parent._child_gas_wei += total_gas
            if pnl is None:
                parent._unaccounted_gas_wei += unaccounted
            else:
                parent._pending_pnl_wei = (parent._pending_pnl_wei or 0) + pnl


def resolve_outcome(op: Operation) -> str:
    """The final outcome: an exception's, else the one set, else from the receipt or result."""
    outcome = op._outcome  # set by an exception
    if outcome is None:
        if op._explicit_outcome is not None:
            outcome = op._explicit_outcome
        elif op._tx_status == 0:
            outcome = semconv.OUTCOME_REVERTED
        elif op._result_failed:
            outcome = semconv.OUTCOME_FAILURE
        else:
            outcome = semconv.OUTCOME_SUCCESS
        op._outcome = outcome
    if outcome == semconv.OUTCOME_REVERTED and op._error_type is None:
        op._error_type = "execution_reverted"
    return outcome


def settle(op: Operation) -> str:
    """Settle a finished operation, on every path: outcome, PnL up the tree, then the
    hooks (detectors, audit) and its guard see it. Returns the outcome."""
    outcome = op._outcome
    if outcome is None:
        if op._explicit_outcome is None and op._tx_status is None and not op._result_failed:
            outcome = op._outcome = semconv.OUTCOME_SUCCESS  # the common case, inline
        else:
            outcome = resolve_outcome(op)
    if op._gas_cost_wei or op._child_gas_wei or op._gross_wei is not None or op._pending_pnl_wei is not None:
        settle_pnl(op, outcome)
    # Hooks and the guard see the settled operation before its span is ended or
    # handed to the worker, so a detector's event lands on this operation's span.
    run_hooks(op)
    spec = op._spec
    assert spec is not None
    if spec.breaker is not None:
        try:
            spec.breaker.after_call(op)
        except Exception as err:
            STATE.dropped("recorder_error", f"breaker: {type(err).__name__}")
    return outcome


def run_hooks(op: Operation) -> None:
    """Every hook that wants what ``op`` carries (its ``fact_mask``; all of them by
    default) sees it; a hook that raises is counted, the others still run."""
    hooks = STATE.hooks
    if not hooks:
        return
    spec = op._spec
    facts = op._facts | (spec.facts if spec is not None else 0)
    for hook in hooks:
        mask = getattr(hook, "fact_mask", -1)
        if mask == -1 or mask & facts:
            try:
                hook(op)
            except Exception as err:
                STATE.dropped("recorder_error", f"hook: {type(err).__name__}")


def wants_any(op: Operation) -> bool:
    """Whether some hook would see ``op`` (so settling it is more than its outcome)."""
    spec = op._spec
    return _wants(op._facts | (spec.facts if spec is not None else 0))


def spec_wants_hooks(spec: OperationSpec) -> bool:
    """Whether some hook would see an operation of ``spec`` that recorded nothing.
    Hooks change only with ``STATE.generation``, so the answer holds until it moves."""
    return _wants(spec.facts)


def _wants(facts: int) -> bool:
    for hook in STATE.hooks:
        mask = getattr(hook, "fact_mask", -1)
        if mask == -1 or mask & facts:
            return True
    return False


def metric_attrs_of(op: Operation, outcome: str) -> dict[str, Any]:
    """The metric attributes of a finished operation (cached per outcome and error type)."""
    spec = op._spec
    assert spec is not None
    error_type = op._error_type
    if op._metric_extra is None and spec._generation == STATE.generation:
        cached = spec._cache.get((outcome, error_type))
        if cached is not None:
            return cached
    return spec.metric_attrs(outcome, error_type, op._metric_extra)


def emit(op: Operation, duration_ns: int, exc: BaseException | None) -> None:
    """Settle ``op`` and, on the API path, record its metrics, end its span and log it."""
    spec = op._spec
    assert spec is not None
    outcome = settle(op)
    level = LOG_LEVELS.get(outcome, logging.INFO)
    log = LOGGER.isEnabledFor(level)
    if op._live or log:
        metric_attrs = metric_attrs_of(op, outcome)
        if (
            op._gas_used is not None
            or op._child_gas_wei
            or op.net_profit_wei is not None
            or op._usd is not None
        ):
            derive_attributes(op)
        if op._live:
            record_metrics(op, duration_ns, outcome, op._error_type, metric_attrs)
        if log:
            emit_operation_log(
                LOGGER,
                level,
                spec.span_name,
                outcome,
                duration_ns,
                {**spec.span_attrs, **op._attrs, **metric_attrs},
                op._span_ctx,
                exc if outcome == semconv.OUTCOME_FAILURE else None,
                spec.where,
            )


def derive_attributes(op: Operation) -> None:
    """Gas and profit figures for the span and the log, exact in wei."""
    attrs = op._writable_attrs()
    if op._gas_used is not None:
        attrs[semconv.ATTR_GAS_COST_WEI] = str(op._gas_cost_wei)
        attrs[semconv.ATTR_GAS_COST_ETH] = _money.wei_to_eth(op._gas_cost_wei)
    if op._child_gas_wei:
        attrs[semconv.ATTR_GAS_COST_TOTAL_WEI] = str(op._gas_cost_wei + op._child_gas_wei)
    pnl = op.net_profit_wei
    if pnl is not None:
        attrs[semconv.ATTR_PROFIT_NET_WEI] = str(pnl)
        attrs[semconv.ATTR_PROFIT_NET_ETH] = _money.wei_to_eth(pnl)
    if op._usd is not None:
        attrs[semconv.ATTR_PROFIT_USD] = float(net_usd(op))


def record_metrics(
    op: Operation, duration_ns: int, outcome: str, error_type: str | None, metric_attrs: dict[str, Any]
) -> None:
    """Metric points and span attributes of a finished operation."""
    inst = STATE.instruments
    inst.histogram(semconv.OPERATION_DURATION).record(duration_ns / 1e9, metric_attrs)
    attrs = op._attrs
    if op._gas_used is not None:
        inst.histogram(semconv.GAS_USED).record(op._gas_used, metric_attrs)
        inst.counter(semconv.GAS_COST).add(attrs[semconv.ATTR_GAS_COST_ETH], metric_attrs)
    record_points(op, outcome, metric_attrs)
    pnl = op.net_profit_wei
    if pnl is not None and op.is_root:
        # Profit is emitted once per operation tree, at its root.
        if pnl > 0:
            inst.counter(semconv.PROFIT).add(_money.wei_to_eth(pnl), metric_attrs)
        elif pnl < 0:
            inst.counter(semconv.LOSS).add(_money.wei_to_eth(-pnl), metric_attrs)
    net_usd = attrs.get(semconv.ATTR_PROFIT_USD)
    if net_usd is not None:
        if net_usd > 0:
            inst.counter(semconv.PROFIT_USD).add(net_usd, metric_attrs)
        elif net_usd < 0:
            inst.counter(semconv.LOSS_USD).add(-net_usd, metric_attrs)

    span = op._span
    if span is not None:  # attributes on a non-recording (sampled-out) span are no-ops
        if attrs:
            span.set_attributes(attrs)
        span.set_attribute(semconv.ATTR_OUTCOME, outcome)
        if error_type is not None:
            span.set_attribute(semconv.ATTR_ERROR_TYPE, error_type)
        if outcome in (semconv.OUTCOME_FAILURE, semconv.OUTCOME_REVERTED):
            span.set_status(Status(StatusCode.ERROR, error_type))
        elif outcome == semconv.OUTCOME_RATE_LIMITED:
            span.set_status(Status(StatusCode.ERROR, "rate_limited"))
        span.end()


def record_points(op: Operation, outcome: str, metric_attrs: dict[str, Any]) -> None:
    """The metric points recorders queued (slippage, volume, a kind's own metric), with the
    operation's metric attributes; success-only ones are skipped for any other outcome
    (only a filled swap has slippage: a reverted one's amount_out of 0 is not 10 000 bp)."""
    record = STATE.instruments.record
    for spec, value, extra, success_only in op._points or ():
        if success_only and outcome != semconv.OUTCOME_SUCCESS:
            continue
        record(spec, value, metric_attrs if extra is None else {**metric_attrs, **extra})


def net_usd(op: Operation) -> Decimal:
    usd = op._usd
    assert usd is not None
    total_gas = op._gas_cost_wei + op._child_gas_wei
    price = op._eth_price_usd
    if price is None and op._gross_wei:
        price = usd / (Decimal(op._gross_wei) / _money.WEI_PER_ETH)
    if price is None or total_gas == 0:
        return usd
    return usd - (Decimal(total_gas) / _money.WEI_PER_ETH) * price
