"""The fast path of one operation: what the calling thread does when ``configure()``
owns the pipeline.

The trading thread does only timing and a compact record: ids from the random
generator, the operation's span context attached to the OpenTelemetry context
(so spans the application or an instrumented library starts inside nest under
it), a few adds into pre-resolved metric slots, and a tail-sampling decision.
The operation object itself is the record: the worker (``_fastpath``) turns it
into a span and a log record, scrubbed and encoded off this thread.

Tail sampling happens here, where the facts are: every operation of a trace
waits in its local root's pending list until the root ends; the root then keeps
the whole trace if any operation in it failed, reverted, was rate limited,
raised a security event or was slow, and otherwise with the sampled ratio.
A dropped trace costs the worker nothing.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.context import Context
from opentelemetry.trace.propagation import _SPAN_KEY

from mevobs import _money, semconv
from mevobs._context import CURRENT
from mevobs._emission import (
    LOG_LEVELS,
    derive_attributes,
    metric_attrs_of,
    record_points,
    settle,
    spec_wants_hooks,
)
from mevobs._slots import HistogramSlot, SlotTable, SumSlot
from mevobs._state import LOGGER, STATE, on_fork_in_child

if TYPE_CHECKING:
    from mevobs._operation import Operation
    from mevobs._wrap import OperationSpec

_MASK64 = (1 << 64) - 1
_getrandbits = random.getrandbits
_bisect = bisect.bisect_left
_LOG_CACHE: dict[int, bool] = LOGGER._cache  # type: ignore[attr-defined]  # stdlib clears it in place
_perf_ns = time.perf_counter_ns
_time_ns = time.time_ns
# Outcomes that keep their whole trace whatever the sample ratio.
KEEP_OUTCOMES = frozenset({semconv.OUTCOME_FAILURE, semconv.OUTCOME_REVERTED, semconv.OUTCOME_RATE_LIMITED})
PENDING, KEPT, DROPPED = 0, 1, 2
PENDING_CAP = 1024
_SUCCESS_LEVEL = LOG_LEVELS[semconv.OUTCOME_SUCCESS]
"""Most operations one local root holds before its decision; past it they are exported early."""

_TREE = threading.Lock()


def _new_tree_lock() -> None:
    global _TREE
    _TREE = threading.Lock()  # another thread of the parent may have held it at the fork


on_fork_in_child(_new_tree_lock)


class FastSink(Protocol):
    """What the calling thread hands finished operations to (the pipeline's worker)."""

    table: SlotTable
    sample_threshold: int
    slow_ns: Mapping[str, int]

    def submit_trace(self, ops: list[Any], important: bool) -> None: ...

    def submit_log(self, op: Operation, level: int) -> None: ...

    def export_early(self, ops: list[Any]) -> None: ...


OP_TYPE: Any = None
"""The Operation class (registered by ``_operation``, which imports this module)."""


# ------------------------------------------------------------ context access

_runtime: Any = getattr(otel_context, "_RUNTIME_CONTEXT", None)
_CURRENT_CONTEXT: Any = getattr(_runtime, "_current_context", None)
# The public attach/detach wrap one ContextVar in two calls and a try block; use the
# variable itself where the runtime is the standard contextvars one.
_DIRECT = _CURRENT_CONTEXT is not None and type(_runtime).__name__ == "ContextVarsRuntimeContext"


def _attach(span: Any) -> Any:
    if _DIRECT:
        current = _CURRENT_CONTEXT.get()
        ctx = Context(current)
        dict.__setitem__(ctx, _SPAN_KEY, span)  # Context forbids item assignment; a fresh copy
        return _CURRENT_CONTEXT.set(ctx)
    return otel_context.attach(trace.set_span_in_context(span))


def detach(token: Any) -> None:
    """Restore the context an operation attached; tolerant of a foreign context."""
    try:
        if _DIRECT:
            _CURRENT_CONTEXT.reset(token)
        else:
            otel_context.detach(token)
    except ValueError:  # a generator resumed in another context: nothing of ours to undo
        pass


def _current_span() -> Any:
    if _DIRECT:
        return _CURRENT_CONTEXT.get().get(_SPAN_KEY)
    return trace.get_current_span()


# ------------------------------------------------------------------ lifecycle


def start(op: Operation, sink: FastSink) -> None:
    """Give ``op`` its ids and parent, make it current (mevobs's and OpenTelemetry's
    context) and start the clock. Everything here is a few attribute stores."""
    if _DIRECT:
        current = _CURRENT_CONTEXT.get()
        span = current.get(_SPAN_KEY)
    else:
        current = None
        span = trace.get_current_span()
    span_id = _getrandbits(64) or 1
    if type(span) is OP_TYPE:  # a mevobs operation of the fast path: its ids directly
        trace_id = span._trace_id
        op._parent_span_id = span._span_id
    elif span is not None and (sc := span.get_span_context()).is_valid:
        trace_id = sc.trace_id
        op._parent_span_id = sc.span_id
        op._parent_remote = sc.is_remote
    else:
        trace_id = _getrandbits(128) or 1
    # The local root of the trace holds its pending operations (a list made by the
    # first child that joins). A root's own _root stays None: a self-reference would
    # make every operation a cycle for the GC.
    parent_op = op._parent
    if parent_op is not None and parent_op._sink is sink:
        root = parent_op._root or parent_op
        if root._decided == PENDING:
            op._root = root
    op._sink = sink
    op._trace_id = trace_id
    op._span_id = span_id
    # The operation is itself the span in the OpenTelemetry context (non-recording,
    # with its own ids): no second object per call.
    if current is not None:
        if current:
            ctx = Context(current)
            dict.__setitem__(ctx, _SPAN_KEY, op)  # Context forbids item assignment; a fresh copy
        else:
            ctx = Context({_SPAN_KEY: op})  # from the empty root context: one copy fewer
        op._ctx_token = _CURRENT_CONTEXT.set(ctx)
    else:
        op._ctx_token = otel_context.attach(trace.set_span_in_context(op))
    op._op_token = CURRENT.set(op)
    op._wall_ns = _time_ns()
    op._start_ns = _perf_ns()


def activate(op: Operation) -> None:
    """Make ``op``'s span current again (a generator resumed)."""
    op._ctx_token = _attach(op)


def finish(op: Operation, sink: FastSink, exc: BaseException | None) -> None:
    """Settle ``op``, add it to its metric slots and hand it to the tail sampler.

    The common case (nothing recorded beyond timing) runs inline in this one
    function: every Python call saved here is saved on every operation. Never raises
    into the host: a failure here is counted as dropped telemetry.
    """
    duration = _perf_ns() - op._start_ns
    op._duration_ns = duration
    token = op._op_token
    if token is not None:  # else a generator already deactivated it
        op._op_token = None
        try:
            CURRENT.reset(token)
        except ValueError:  # reset from another context (a generator resumed elsewhere)
            CURRENT.set(op._parent)
        ctx_token = op._ctx_token
        if ctx_token is not None:
            op._ctx_token = None
            try:
                if _DIRECT:
                    _CURRENT_CONTEXT.reset(ctx_token)
                else:
                    otel_context.detach(ctx_token)
            except ValueError:  # a generator resumed in another context: nothing of ours to undo
                pass
    op._done = True
    try:
        spec: OperationSpec = op._spec  # type: ignore[assignment]  # a fast-path operation has one
        bundle = spec._plain
        if exc is None and bundle is not None and not op._touched and spec._generation == STATE.generation:
            # A plain success (no recorder, exception or child touched the operation, no
            # hook wants its spec): its slots and thresholds were resolved by an earlier call.
            op._outcome = semconv.OUTCOME_SUCCESS
            level = _SUCCESS_LEVEL
            important = op._keep or duration >= spec._slow_ns
        else:
            bundle, outcome = _settle(op, sink, exc)
            level = LOG_LEVELS[outcome]
            slow = sink.slow_ns
            important = outcome in KEEP_OUTCOMES or op._keep or duration >= slow.get(spec.kind, slow[""])
        op._bundle = bundle
        # HistogramSlot.record, inline.
        slot = bundle.duration
        seconds = duration / 1e9
        index = op._dur_index = _bisect(slot.bounds, seconds)
        lock = slot.lock
        lock.acquire()  # not ``with``: a bound __enter__ and __exit__ per call cost twice as much
        try:
            slot.counts[index] += 1
            slot.sum += seconds
            if seconds < slot.min:
                slot.min = seconds
            if seconds > slot.max:
                slot.max = seconds
        finally:
            lock.release()
        enabled = _LOG_CACHE.get(level)
        if enabled is None:
            enabled = LOGGER.isEnabledFor(level)
        if enabled:
            sink.submit_log(op, level)
        if op._root is None:
            sampled = (op._trace_id & _MASK64) < sink.sample_threshold
            tree = _TREE
            tree.acquire()
            try:
                # Read under the lock: a child failing on another thread sets _keep there.
                important = important or op._keep
                keep = important or sampled
                pending = op._pending
                if pending is not None:
                    op._pending = None  # kept or dropped: no root -> child -> root cycle left
                op._decided = KEPT if keep else DROPPED
            finally:
                tree.release()
            if keep:
                if pending is None:
                    pending = [op]
                else:
                    pending.append(op)
                sink.submit_trace(pending, important)
        else:
            _join_root(op, sink, important)
    except Exception as err:  # pragma: no cover - defensive: the host comes first
        STATE.dropped("recorder_error", f"finish: {type(err).__name__}")


def _settle(op: Operation, sink: FastSink, exc: BaseException | None) -> tuple[Any, str]:
    """Settle an operation that is not a plain success of a resolved spec: outcome,
    PnL, hooks, its figures into their slots. Returns its slot bundle, and keeps the
    spec's plain-success bundle for the calls that follow when the spec qualifies."""
    if exc is not None:
        op._fail(exc)
    outcome = settle(op)
    spec = op._spec
    assert spec is not None
    # The slots of this (spec, outcome, error type): a cache hit in the common case.
    bundle = None
    # The spec caches the slots of the pipeline in place now: an operation that started
    # under an earlier one (in flight across a reconfigure) must not fill them with its own.
    cacheable = op._metric_extra is None and sink is STATE.fast
    if cacheable and spec._generation == STATE.generation:
        bundle = spec._fast.get((outcome, op._error_type))
    if bundle is None:
        attrs = metric_attrs_of(op, outcome)
        bundle = spec.fast_bundle(sink.table, attrs, cacheable, outcome, op._error_type)
        if (
            cacheable
            and outcome == semconv.OUTCOME_SUCCESS
            and op._error_type is None
            and op._metric_extra is None
            and spec.breaker is None
            and not spec_wants_hooks(spec)
            and spec._generation == STATE.generation
        ):
            slow = sink.slow_ns
            spec._slow_ns = slow.get(spec.kind, slow[""])
            spec._plain = bundle
    if (
        op._gas_used is not None
        or op._child_gas_wei
        or op.net_profit_wei is not None
        or op._usd is not None
        or op._points is not None
    ):
        _record_figures(op, sink, bundle, outcome)
    return bundle, outcome


def _join_root(op: Operation, sink: FastSink, important: bool) -> None:
    """A child operation waits in its root's pending list for the trace's decision."""
    root = op._root
    assert root is not None
    with _TREE:
        if important:
            root._keep = True
        decided = root._decided
        held = root._pending
        if decided == PENDING:
            if held is None:
                held = root._pending = []
            held.append(op)
            if len(held) < PENDING_CAP:
                return
            root._pending = []
    if decided == PENDING and held is not None:
        sink.export_early(held)  # a root with thousands of children: export, don't hold
    elif decided == KEPT or important:
        # Finished after its root (a detached task): a failure is kept even when the
        # rest of its trace was sampled out.
        sink.submit_trace([op], important)


def _record_figures(op: Operation, sink: FastSink, bundle: Any, outcome: str) -> None:
    """Gas, profit and the points recorders queued, into the operation's slots."""
    if op._gas_used is not None or op._child_gas_wei or op.net_profit_wei is not None or op._usd is not None:
        derive_attributes(op)
    table = sink.table
    if op._gas_used is not None:
        op._gas_index = bundle.slot(table, semconv.GAS_USED, HistogramSlot).record(op._gas_used)
        bundle.slot(table, semconv.GAS_COST, SumSlot).add(op._attrs[semconv.ATTR_GAS_COST_ETH])
    pnl = op.net_profit_wei
    if pnl is not None and op.is_root:
        if pnl > 0:
            bundle.slot(table, semconv.PROFIT, SumSlot).add(_money.wei_to_eth(pnl))
        elif pnl < 0:
            bundle.slot(table, semconv.LOSS, SumSlot).add(_money.wei_to_eth(-pnl))
    usd = op._attrs.get(semconv.ATTR_PROFIT_USD)
    if usd is not None:
        if usd > 0:
            bundle.slot(table, semconv.PROFIT_USD, SumSlot).add(usd)
        elif usd < 0:
            bundle.slot(table, semconv.LOSS_USD, SumSlot).add(-usd)
    if op._points is not None:
        record_points(op, outcome, bundle.attrs)


def adopt_foreign(span: Any, sink: FastSink) -> bool:
    """An SDK span ended inside a fast-path operation of ``sink`` waits with that
    operation's trace for its tail decision. False when there is no such operation."""
    op = CURRENT.get()
    if op is None or getattr(op, "_sink", None) is not sink:  # a lean lane's Pending has none
        return False
    root = op._root or op
    held = None
    with _TREE:
        if root._decided == PENDING:
            held = root._pending
            if held is None:
                held = root._pending = []
            held.append(span)
            if len(held) < PENDING_CAP:
                return True
            root._pending = []  # bounded like the operations that join it (see _join_root)
        kept = root._decided == KEPT
    if held is not None:
        sink.export_early(held)
        return True
    if kept:
        sink.submit_trace([span], False)
    return True  # a dropped trace drops the spans nested in it
