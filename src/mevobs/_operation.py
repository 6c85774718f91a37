"""The ``Operation`` handle: one running swap, liquidity, arbitrage or RPC call.

An operation is created per call by a wrapper (``_wrap.py``), holds what the
recorders are told, and on finish turns it into one span, a few metric
points and one log record (``_emission.py``). Recorders never raise into the host: a value they
cannot use is counted on ``mev.telemetry.dropped`` and ignored.

Gas and profit flow up the operation tree: a child's gas is added to its
parent's, and net profit is emitted once per tree, at the outermost operation,
so that no wei of gas is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, Span, SpanContext, TraceFlags

from mevobs import _fastcall, semconv
from mevobs._context import CURRENT
from mevobs._emission import emit
from mevobs._recorders import _NO_ATTRS, Recorders
from mevobs._records import exception_event
from mevobs._rpc_errors import classify_rpc_error
from mevobs._state import LOGGER, STATE

if TYPE_CHECKING:
    from mevobs._wrap import OperationSpec


_VALID_OUTCOMES = frozenset(semconv.OUTCOMES)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_VALID_STAGES = frozenset(semconv.OPPORTUNITY_STAGES)
_ATTR_VALUE_TYPES = (str, bool, int, float)


class Operation(Recorders, NonRecordingSpan):
    """Handle on a running operation, yielded by ``with`` and returned by
    :func:`mevobs.current_operation`.

    All recorders take keyword arguments and accept bad values without raising.
    In the fast path the operation is itself the (non-recording) span in the
    OpenTelemetry context: spans started inside it take it as their parent, and
    ``trace.get_current_span().set_attribute(...)`` records onto it.
    """

    # The two fields every operation has are slots, set without an __init__ frame by
    # new_operation(); everything else defaults on the class, so creating an
    # operation per call costs two stores, and the recorders set what they are given.
    __slots__ = ("_depth", "_parent", "_spec")
    _depth: int
    _parent: Operation | None
    _spec: OperationSpec | None
    _attrs: Mapping[str, Any] = _NO_ATTRS
    _span: Span | None = None
    _start_ns = 0
    _live = False
    _ctx_token: Any = None
    _op_token: Any = None
    _span_ctx: SpanContext | None = None
    # The fast path (see _fastcall): the pipeline, ids, the local root of the trace and
    # its pending operations, the tail decision, and what the worker needs later.
    _sink: Any = None
    _root: Operation | None = None  # the trace's local root; None for a root itself
    _pending: list[Any] | None = None
    _decided = 0
    _keep = False
    _trace_id = 0
    _span_id = 0
    _parent_span_id = 0
    _parent_remote = False
    _wall_ns = 0
    _duration_ns = 0
    _exc: BaseException | None = None
    _events: list[tuple[str, int, dict[str, Any]]] | None = None
    _bundle: Any = None
    # The recorded attributes as they may leave the process, cleaned once by the worker
    # for the log record and the span (a finished operation's recorders refuse values).
    _cleaned: dict[str, Any] | None = None
    _dur_index = 0
    _gas_index = -1
    _outcome: str | None = None
    #: Net profit in wei computed at finish (None when no PnL applies).
    net_profit_wei: int | None = None

    def __init__(self, spec: OperationSpec | None, parent: Operation | None) -> None:
        self._spec = spec
        self._parent = parent
        self._depth = 0 if parent is None else parent._depth + 1

    @property
    def outcome(self) -> str | None:
        """The final outcome, set when the operation finishes (None until then)."""
        return self._outcome

    @outcome.setter
    def outcome(self, value: Any) -> None:
        # Assigning it while the call runs is taken as set_outcome() (validated, and
        # the operation is no longer a plain success); after the finish it is ignored.
        self.set_outcome(value)

    @property
    def _metric_attrs(self) -> dict[str, Any] | None:
        """The metric attributes a fast-path operation finished with."""
        bundle = self._bundle
        return bundle.attrs if bundle is not None else None

    def get_span_context(self) -> SpanContext:
        """The operation's span context in the fast path (built on first use), else invalid."""
        ctx = self.__dict__.get("_span_ctx")
        if ctx is None:
            if not self._trace_id:
                return INVALID_SPAN_CONTEXT
            ctx = self._span_ctx = SpanContext(self._trace_id, self._span_id, False, _SAMPLED)
        return ctx

    # ------------------------------------------------------------------ info

    @property
    def kind(self) -> str:
        """The operation kind (``swap``, ``liquidity``, ``arbitrage``, ``rpc``, ...)."""
        return self._spec.kind if self._spec is not None else ""

    @property
    def active(self) -> bool:
        """False for the inert handle returned outside any operation."""
        return self._spec is not None

    @property
    def span(self) -> Span:
        """The operation's span: itself in the fast path, the SDK span on the API path,
        a non-recording span when nothing records."""
        if self._sink is not None:
            return self
        return self._span if self._span is not None else trace.INVALID_SPAN

    @property
    def gas_cost_wei(self) -> int:
        """This operation's own gas cost so far, exact in wei."""
        return self._gas_cost_wei

    @property
    def total_gas_cost_wei(self) -> int:
        """Gas cost of this operation plus every finished nested operation, in wei."""
        return self._gas_cost_wei + self._child_gas_wei

    @property
    def is_root(self) -> bool:
        """True for an outermost operation: the one whose net profit is the tree's."""
        return self._parent is None or self._parent._spec is None

    @property
    def facts(self) -> int:
        """What the operation carries, as ``FACT_*`` bits of ``mevobs._protocols``: an RPC
        call, a transaction (gas, hash or ``to``), an expected profit. Detectors declare
        the facts they need; the monitor skips the ones an operation cannot interest."""
        spec = self._spec
        return self._facts | (spec.facts if spec is not None else 0)

    @property
    def error_type(self) -> str | None:
        """The ``error.type`` of a failed, reverted or rate-limited operation (else None)."""
        return self._error_type

    @property
    def gas_used(self) -> int | None:
        """Gas used as recorded (None when no gas was recorded)."""
        return self._gas_used

    @property
    def gross_profit_wei(self) -> int | None:
        """Gross profit recorded with ``record_profit`` (None when none was)."""
        return self._gross_wei

    @property
    def expected_profit_wei(self) -> int | None:
        """Profit the bot expected before execution (``record_profit(expected_wei=...)``)."""
        return self._expected_profit_wei

    def attribute(self, key: str) -> Any:
        """One span/log attribute (recorded, else static), without copying them all."""
        value = self._attrs.get(key)
        if value is None and self._spec is not None:
            value = self._spec.span_attrs.get(key)
        return value

    @property
    def attributes(self) -> dict[str, Any]:
        """A copy of the span/log attributes recorded so far (static ones included)."""
        if self._spec is None:
            return {}
        return {**self._spec.span_attrs, **self._attrs}

    def _known_hashes(self) -> frozenset[str]:
        """Hashes this operation recorded itself: public, never scrubbed as keys."""
        tx = self._attrs.get(semconv.ATTR_TX_HASH)
        return frozenset((tx,)) if isinstance(tx, str) else frozenset()

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        """Add an event to this operation's span (no-op when it is not recorded)."""
        if self._sink is not None:
            # A security event is a reason to keep the trace whole.
            if self._events is None:
                self._events = []
            self._events.append((name, timestamp or time.time_ns(), dict(attributes or {})))
            self._keep = True
            return
        span = self._span
        if span is not None and span.is_recording():
            span.add_event(name, dict(attributes or {}), timestamp)

    # --------------------------------------------------------------- lifecycle

    def _start(self) -> None:
        """Start the span and the clock; make this the current operation."""
        sink = STATE.fast
        if sink is not None:
            _fastcall.start(self, sink)
            return
        if STATE.live or STATE.check_live():
            spec = self._spec
            assert spec is not None
            self._live = True
            span = STATE.tracer.start_span(spec.span_name, kind=spec.span_kind, attributes=spec.span_attrs)
            self._span = span
            span_ctx = span.get_span_context()
            if span_ctx.is_valid:
                self._span_ctx = span_ctx
                self._ctx_token = otel_context.attach(trace.set_span_in_context(span))
        self._op_token = CURRENT.set(self)
        self._start_ns = time.perf_counter_ns()

    def _deactivate(self) -> None:
        """Undo what ``_start``/``_activate`` made current; safe to call twice."""
        op_token = self._op_token
        if op_token is None:
            return
        ctx_token = self._ctx_token
        self._op_token = self._ctx_token = None
        try:
            CURRENT.reset(op_token)
        except ValueError:  # reset from another context (a generator resumed elsewhere)
            CURRENT.set(self._parent)
        if ctx_token is not None:
            if self._sink is not None:
                _fastcall.detach(ctx_token)
            else:
                with contextlib.suppress(Exception):
                    otel_context.detach(ctx_token)

    def _activate(self) -> None:
        """Make this operation current again (generators, between resumptions)."""
        if self._sink is not None:
            _fastcall.activate(self)
        else:
            span = self._span
            if span is not None and self._span_ctx is not None:
                self._ctx_token = otel_context.attach(trace.set_span_in_context(span))
        self._op_token = CURRENT.set(self)

    def _fail(self, exc: BaseException) -> None:
        spec = self._spec
        assert spec is not None
        self._touched = True
        if isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
            # Cancellation, GeneratorExit, KeyboardInterrupt: not a failure of the trade logic.
            self._outcome = semconv.OUTCOME_CANCELLED
            return
        error_type = classify_rpc_error(exc) if spec.is_rpc else type(exc).__name__
        self._error_type = error_type
        self._outcome = (
            semconv.OUTCOME_RATE_LIMITED if error_type == "rate_limited" else semconv.OUTCOME_FAILURE
        )
        if self._sink is not None:
            self._exc = exc  # formatted and scrubbed by the worker, off the caller's thread
            return
        span = self._span
        if span is not None and span.is_recording():
            name, time_ns, attrs = exception_event(exc, time.time_ns(), self._known_hashes())
            span.add_event(name, attrs, time_ns)

    def _mark_result_failed(self, error_type: str) -> None:
        self._result_failed = True
        self._touched = True
        self._error_type = error_type

    def _end_lean(self, start_ns: int, exc: BaseException | None) -> None:
        """Finish on the lean lane (nothing receives telemetry): the outcome and the
        profit roll-up, which current_operation() users rely on, and the log record
        if its level is enabled. A plain success returns after a few reads."""
        self._done = True
        # Nothing recorded, no child rolled up into it (see Recorders._touched).
        if exc is None and not self._touched and not STATE.hooks and not LOGGER.isEnabledFor(logging.INFO):
            self._outcome = semconv.OUTCOME_SUCCESS
            return
        try:
            if exc is not None:
                self._fail(exc)
            emit(self, time.perf_counter_ns() - start_ns, exc)
        except Exception as err:  # pragma: no cover - defensive: the host comes first
            STATE.dropped("recorder_error", f"finish: {type(err).__name__}")

    def _finish(self, exc: BaseException | None = None) -> None:
        """Turn what was recorded into span, metrics and log; never raises."""
        sink = self._sink
        if sink is not None:
            _fastcall.finish(self, sink, exc)
            return
        duration_ns = time.perf_counter_ns() - self._start_ns
        self._deactivate()
        self._done = True
        try:
            if exc is not None:
                self._fail(exc)
            emit(self, duration_ns, exc)
        except Exception as err:  # pragma: no cover - defensive: the host comes first
            STATE.dropped("recorder_error", f"finish: {type(err).__name__}")
            span = self._span
            if span is not None:
                span.end()


_fastcall.OP_TYPE = Operation
_new_object = object.__new__


def new_operation(spec: OperationSpec, parent: Operation | None) -> Operation:
    """A fresh operation without an ``__init__`` frame (the wrappers inline the same)."""
    op: Operation = _new_object(Operation)
    op._spec = spec
    op._parent = parent
    if parent is None:
        op._depth = 0
    else:
        depth = op._depth = parent._depth + 1
        if not depth & HEADROOM_EVERY:
            ensure_headroom(depth, 2)  # this path: the wrapper's frame and _sync_call's
    return op


HEADROOM_EVERY = 63
"""Every 64 levels of nesting the recursion limit is checked (see :func:`ensure_headroom`)."""
_limits: dict[str, int] = {}


def ensure_headroom(depth: int, frames: int) -> None:
    """Give Python's recursion limit the frames mevobs's wrappers take.

    A decorated function that calls itself would otherwise reach RecursionError at a
    third to a half of its bare depth (each level adds the wrapper's ``frames``). Every
    64 levels the limit is raised to the user's own limit plus the wrappers' frames
    for 64 levels ahead, up to as many levels as the user's limit: the function keeps
    its bare depth, and a runaway recursion still ends in RecursionError (at its bare
    depth, never in a C stack overflow). The limit is raised, never lowered (another
    thread may be deep), and a limit the user set since is taken as the new base.
    """
    current = sys.getrecursionlimit()
    if _limits.get("set") != current:
        _limits["base"] = current
    base = _limits["base"]
    wanted = base + min(depth + HEADROOM_EVERY + 1, base) * frames
    if wanted > current:
        sys.setrecursionlimit(wanted)
        _limits["set"] = wanted


NOOP_OPERATION = Operation(None, None)
"""Inert handle returned by ``current_operation()`` outside any operation."""


Pending: type[list[Any]] = list
"""The type of a decorated call's placeholder on the lean lane (nothing receives
telemetry) whose handle nobody has asked for yet: what ``CURRENT`` holds instead of an
:class:`Operation`. No other list is ever current, so ``type(x) is Pending`` tells them apart.

An unconfigured bot makes millions of calls that nobody records into; each one costs
the host one four-item list ``[spec, parent, depth, operation]`` (indices
:data:`P_SPEC`, :data:`P_PARENT`, :data:`P_DEPTH`, :data:`P_OP`) instead of an
operation. A list display is the cheapest per-call object Python makes that can still
be filled in later: a third of the instructions of a slotted instance created with
``object.__new__`` and four attribute stores. The first reader that needs the handle
(``current_operation()``, a child that records, a result to inspect, a failure, an
enabled log level) calls :func:`materialize`, which stores the operation in the list,
and the wrapper finishes that operation.
"""
P_SPEC, P_PARENT, P_DEPTH, P_OP = 0, 1, 2, 3


def materialize(pending: list[Any]) -> Operation:
    """The operation of ``pending``, created on first use with its parents (a loop, not
    recursion: the call stack may already be as deep as the recursion limit allows)."""
    op: Operation | None = pending[P_OP]
    if op is not None:
        return op
    chain = [pending]
    parent = pending[P_PARENT]
    while type(parent) is Pending and parent[P_OP] is None:
        chain.append(parent)
        parent = parent[P_PARENT]
    above: Operation | None = parent[P_OP] if type(parent) is Pending else parent
    for entry in reversed(chain):
        op = _new_object(Operation)
        op._spec = entry[P_SPEC]
        op._parent = above
        op._depth = entry[P_DEPTH]
        entry[P_OP] = above = op
    assert op is not None
    return op


def current() -> Operation | None:
    """The running operation of this context (a pending one is materialized)."""
    op = CURRENT.get()
    if type(op) is Pending:
        return materialize(op)
    return op  # type: ignore[no-any-return]


def current_operation() -> Operation:
    """The operation running in this context, or an inert handle whose recorders do nothing."""
    op = CURRENT.get()
    if op is None:
        return NOOP_OPERATION
    if type(op) is Pending:
        return materialize(op)
    return op  # type: ignore[no-any-return]


__all__ = ["CURRENT", "NOOP_OPERATION", "Operation", "Pending", "current", "current_operation", "materialize"]
