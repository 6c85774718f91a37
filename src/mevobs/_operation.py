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
import contextvars
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext

from mevobs import _fastcall, _money, semconv
from mevobs._emission import emit
from mevobs._records import exception_event
from mevobs._rpc_errors import classify_rpc_error
from mevobs._scrub import scrub_value
from mevobs._state import STATE

if TYPE_CHECKING:
    from mevobs._wrap import OperationSpec

CURRENT: contextvars.ContextVar[Operation | None] = contextvars.ContextVar(
    "mevobs_current_operation", default=None
)

_VALID_OUTCOMES = frozenset(semconv.OUTCOMES)
_VALID_STAGES = frozenset(semconv.OPPORTUNITY_STAGES)
_ATTR_VALUE_TYPES = (str, bool, int, float)


def _recorder(fn: Callable[..., None]) -> Callable[..., None]:
    """Make a recorder safe: any error inside it is counted, never raised."""

    def safe(self: Operation, *args: Any, **kwargs: Any) -> None:
        if self._spec is None or self._done:
            return  # the inert handle, or a finished operation (its record may be in export)
        try:
            fn(self, *args, **kwargs)
        except Exception as exc:
            STATE.dropped("recorder_error", f"{fn.__name__}: {type(exc).__name__}")

    safe.__name__ = fn.__name__
    safe.__qualname__ = fn.__qualname__
    safe.__doc__ = fn.__doc__
    return safe


class Operation:
    """Handle on a running operation, yielded by ``with`` and returned by
    :func:`mevobs.current_operation`.

    All recorders take keyword arguments and accept bad values without raising.
    """

    # Defaults live on the class so that creating an operation per call costs
    # two assignments, not twenty; the recorders set what they are given.
    _span: Span | None = None
    _start_ns = 0
    _live = False
    _ctx_token: Any = None
    _op_token: Any = None
    _span_ctx: SpanContext | None = None
    _metric_extra: dict[str, Any] | None = None
    _explicit_outcome: str | None = None
    _error_type: str | None = None
    _result_failed = False
    _tx_status: int | None = None
    _gas_used: int | None = None
    _gas_cost_wei = 0
    _child_gas_wei = 0
    _unaccounted_gas_wei = 0
    _pending_pnl_wei: int | None = None
    _gross_wei: int | None = None
    _expected_profit_wei: int | None = None
    _usd: Decimal | None = None
    _eth_price_usd: Decimal | None = None
    _slippage_bp: list[Decimal] | None = None
    # Metric points recorded by recorders: (spec, value, extra attributes), recorded
    # at finish with the operation's own metric attributes.
    _points: list[tuple[semconv.MetricSpec, float, dict[str, str] | None]] | None = None
    _done = False
    # The fast path (see _fastcall): the pipeline, ids, the local root of the trace and
    # its pending operations, the tail decision, and what the worker needs later.
    _sink: Any = None
    _root: Operation | None = None
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
    _metric_attrs: dict[str, Any] | None = None
    _bundle: Any = None
    _dur_index = 0
    _gas_index = -1
    #: Final outcome, set when the operation finishes.
    outcome: str | None = None
    #: Net profit in wei computed at finish (None when no PnL applies).
    net_profit_wei: int | None = None

    def __init__(self, spec: OperationSpec | None, parent: Operation | None) -> None:
        self._spec = spec
        self._parent = parent
        self._attrs: dict[str, Any] = {}

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
        """The operation's span (a non-recording span when tracing is off)."""
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

    def _record_point(
        self, spec: semconv.MetricSpec, value: float, extra: dict[str, str] | None = None
    ) -> None:
        """Record ``value`` on metric ``spec`` when the operation finishes, with its metric
        attributes (plus ``extra``, which must be bounded labels of that spec)."""
        points = self._points
        if points is None:
            points = self._points = []
        points.append((spec, value, extra))

    def add_event(self, name: str, attributes: Mapping[str, Any]) -> None:
        """Add an event to this operation's span (no-op when it is not recorded)."""
        if self._sink is not None:
            # A security event is a reason to keep the trace whole.
            if self._events is None:
                self._events = []
            self._events.append((name, time.time_ns(), dict(attributes)))
            self._keep = True
            return
        span = self._span
        if span is not None and span.is_recording():
            span.add_event(name, dict(attributes))

    # ------------------------------------------------------------- recorders

    def _bad(self, field: str, value: Any) -> None:
        STATE.dropped("invalid_value", f"{self.kind}.{field}={type(value).__name__}")

    def _int(self, field: str, value: Any, *, allow_negative: bool = False) -> int | None:
        if value is None:
            return None
        result = _money.to_int(value, allow_negative=allow_negative)
        if result is None:
            self._bad(field, value)
        return result

    @_recorder
    def record_tx(
        self,
        *,
        tx_hash: Any = None,
        block_number: Any = None,
        status: Any = None,
        to: Any = None,
    ) -> None:
        """Record the transaction: hash, inclusion block, receipt status, ``to`` address.

        A receipt ``status`` of 0 makes the outcome ``reverted``.
        """
        if tx_hash is not None:
            text = _hex_text(tx_hash)
            if text is None:
                self._bad("tx_hash", tx_hash)
            else:
                self._attrs[semconv.ATTR_TX_HASH] = text
        block = self._int("block_number", block_number)
        if block is not None:
            self._attrs[semconv.ATTR_BLOCK_NUMBER] = block if block < 2**63 else str(block)
        if status is not None:
            st = _money.to_int(status)
            if st not in (0, 1):
                self._bad("status", status)
            else:
                self._tx_status = st
                self._attrs[semconv.ATTR_TX_STATUS] = st
        if to is not None:
            text = _hex_text(to)
            if text is None:
                self._bad("to", to)
            else:
                self._attrs[semconv.ATTR_TX_TO] = text

    @_recorder
    def record_gas(
        self,
        *,
        gas_used: Any,
        effective_gas_price_wei: Any,
        l1_fee_wei: Any = 0,
        gas_used_for_l1: Any = None,
        coinbase_transfer_wei: Any = 0,
    ) -> None:
        """Record what the transaction cost, exactly in wei.

        cost = gas_used x effective_gas_price_wei + l1_fee_wei + coinbase_transfer_wei.
        ``gas_used_for_l1`` (Arbitrum) is the part of ``gas_used`` spent on L1
        data: it is reported as a breakdown and never added twice. Calling this
        more than once adds up (e.g. an approval and a swap in one operation).
        """
        used = self._int("gas_used", gas_used)
        price = self._int("effective_gas_price_wei", effective_gas_price_wei)
        l1_fee = self._int("l1_fee_wei", l1_fee_wei if l1_fee_wei is not None else 0)
        coinbase = self._int(
            "coinbase_transfer_wei", coinbase_transfer_wei if coinbase_transfer_wei is not None else 0
        )
        if used is None or price is None or l1_fee is None or coinbase is None:
            return
        cost = _money.gas_cost_wei(used, price, l1_fee, coinbase)
        self._gas_used = (self._gas_used or 0) + used
        self._gas_cost_wei += cost
        attrs = self._attrs
        attrs[semconv.ATTR_GAS_USED] = self._gas_used
        attrs[semconv.ATTR_GAS_PRICE_WEI] = str(price)
        if l1_fee:
            attrs[semconv.ATTR_L1_FEE_WEI] = str(l1_fee)
        if coinbase:
            attrs[semconv.ATTR_COINBASE_TRANSFER_WEI] = str(coinbase)
        l1_gas = self._int("gas_used_for_l1", gas_used_for_l1)
        if l1_gas is not None:
            if l1_gas > used:
                self._bad("gas_used_for_l1", gas_used_for_l1)
            else:
                attrs[semconv.ATTR_GAS_USED_FOR_L1] = l1_gas

    @_recorder
    def record_swap(
        self,
        *,
        token_in: Any = None,
        token_out: Any = None,
        amount_in: Any = None,
        amount_out: Any = None,
        expected_amount_out: Any = None,
    ) -> None:
        """Record a swap's tokens and exact amounts (base units).

        With ``expected_amount_out``, realised slippage is recorded in basis
        points: (expected - actual) / expected x 10 000, negative when favourable.
        It reaches the ``mev.slippage`` metric only if the operation succeeds: a
        reverted or failed swap filled nothing, so it has no slippage.
        """
        attrs = self._attrs
        for key, token in ((semconv.ATTR_TOKEN_IN, token_in), (semconv.ATTR_TOKEN_OUT, token_out)):
            if token is not None:
                text = _hex_text(token)
                if text is None:
                    self._bad(key, token)
                else:
                    attrs[key] = scrub_value(key, text)
        a_in = self._int("amount_in", amount_in)
        a_out = self._int("amount_out", amount_out)
        expected = self._int("expected_amount_out", expected_amount_out)
        if a_in is not None:
            attrs[semconv.ATTR_AMOUNT_IN] = str(a_in)
        if a_out is not None:
            attrs[semconv.ATTR_AMOUNT_OUT] = str(a_out)
        if expected is not None:
            attrs[semconv.ATTR_AMOUNT_OUT_EXPECTED] = str(expected)
            if a_out is not None:
                bp = _money.slippage_bp(expected, a_out)
                if bp is None:
                    self._bad("expected_amount_out", expected_amount_out)
                else:
                    if self._slippage_bp is None:
                        self._slippage_bp = []
                    self._slippage_bp.append(bp)
                    attrs[semconv.ATTR_SLIPPAGE_BP] = float(bp)

    @_recorder
    def record_liquidity(
        self, *, pool: Any = None, amount0: Any = None, amount1: Any = None, liquidity: Any = None
    ) -> None:
        """Record a liquidity change: pool, token amounts and liquidity units (base units)."""
        attrs = self._attrs
        if pool is not None:
            text = _hex_text(pool)
            if text is None:
                self._bad("pool", pool)
            else:
                attrs[semconv.ATTR_POOL_ADDRESS] = text
        for key, name, value in (
            (semconv.ATTR_LIQUIDITY_AMOUNT0, "amount0", amount0),
            (semconv.ATTR_LIQUIDITY_AMOUNT1, "amount1", amount1),
            (semconv.ATTR_LIQUIDITY_UNITS, "liquidity", liquidity),
        ):
            number = self._int(name, value)
            if number is not None:
                attrs[key] = str(number)

    @_recorder
    def record_profit(
        self,
        *,
        gross_wei: Any = None,
        gross_eth: Any = None,
        usd: Any = None,
        eth_price_usd: Any = None,
        expected_wei: Any = None,
    ) -> None:
        """Record gross profit (before gas), in wei or ETH, and optionally in USD.

        Net profit = gross minus the gas of this operation and of all nested
        operations; it is computed when the operation finishes. ``usd`` is the
        gross in USD; gas is deducted from it at ``eth_price_usd`` (or the price
        implied by ``usd`` / ``gross_eth``). ``expected_wei`` is the profit the
        bot expected before execution.
        """
        gross: int | None = None
        if gross_wei is not None:
            gross = self._int("gross_wei", gross_wei, allow_negative=True)
        elif gross_eth is not None:
            eth = _money.to_decimal(gross_eth)
            if eth is None:
                self._bad("gross_eth", gross_eth)
            else:
                gross = _money.eth_to_wei(eth)
        if gross is not None:
            self._gross_wei = gross
            self._attrs[semconv.ATTR_PROFIT_GROSS_WEI] = str(gross)
        if usd is not None:
            value = _money.to_decimal(usd)
            if value is None:
                self._bad("usd", usd)
            else:
                self._usd = value
        if eth_price_usd is not None:
            price = _money.to_decimal(eth_price_usd)
            if price is None or price <= 0:
                self._bad("eth_price_usd", eth_price_usd)
            else:
                self._eth_price_usd = price
        expected = self._int("expected_wei", expected_wei, allow_negative=True)
        if expected is not None:
            self._expected_profit_wei = expected
            self._attrs[semconv.ATTR_PROFIT_EXPECTED_WEI] = str(expected)

    @_recorder
    def record_opportunity(self, stage: semconv.OpportunityStage) -> None:
        """Count an opportunity at a funnel stage (detected ... profitable, missed)."""
        if stage not in _VALID_STAGES:
            self._bad("stage", stage)
            return
        spec = self._spec
        assert spec is not None
        attrs = dict(spec.opportunity_attrs())
        attrs[semconv.ATTR_OPPORTUNITY_STAGE] = stage
        STATE.instruments.counter(semconv.OPPORTUNITIES).add(1, attrs)

    @_recorder
    def set_outcome(self, outcome: semconv.Outcome) -> None:
        """Set the outcome explicitly (an exception raised later still wins)."""
        if outcome not in _VALID_OUTCOMES:
            self._bad("outcome", outcome)
            return
        self._explicit_outcome = outcome

    @_recorder
    def set_attribute(self, key: Any, value: Any) -> None:
        """Set a span/log attribute; metric attributes (``mev.exchange``...) also
        relabel the metrics, through the cardinality cap."""
        if not isinstance(key, str) or not key:
            STATE.dropped("invalid_attribute", repr(type(key)))
            return
        if not _valid_attr_value(value):
            STATE.dropped("invalid_attribute", f"{key}={type(value).__name__}")
            return
        if key in semconv.METRIC_ATTRIBUTES:
            if self._metric_extra is None:
                self._metric_extra = {}
            self._metric_extra[key] = STATE.limiter.limit(key, value)
        self._attrs[key] = scrub_value(key, value) if STATE.scrub else value

    # --------------------------------------------------------------- lifecycle

    def _start(self) -> None:
        """Start the span and the clock; make this the current operation."""
        sink = STATE.fast
        if sink is not None:
            _fastcall.start(self, sink)
            self._op_token = CURRENT.set(self)
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
        if isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
            # Cancellation, GeneratorExit, KeyboardInterrupt: not a failure of the trade logic.
            self.outcome = semconv.OUTCOME_CANCELLED
            return
        error_type = classify_rpc_error(exc) if spec.is_rpc else type(exc).__name__
        self._error_type = error_type
        self.outcome = (
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
        self._error_type = error_type

    def _finish(self, exc: BaseException | None = None) -> None:
        """Turn what was recorded into span, metrics and log; never raises."""
        sink = self._sink
        if sink is not None:
            try:
                _fastcall.finish(self, sink, exc)
            except Exception as err:  # pragma: no cover - defensive: the host comes first
                STATE.dropped("recorder_error", f"finish: {type(err).__name__}")
            self._done = True
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


NOOP_OPERATION = Operation(None, None)
"""Inert handle returned by ``current_operation()`` outside any operation."""


def current_operation() -> Operation:
    """The operation running in this context, or an inert handle whose recorders do nothing."""
    op = CURRENT.get()
    return op if op is not None else NOOP_OPERATION


def _hex_text(value: Any) -> str | None:
    """Text form of a hash, address or symbol: HexBytes and bytes become 0x-hex."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        hex_method = getattr(value, "to_0x_hex", None)
        if callable(hex_method):
            return str(hex_method())
        return "0x" + bytes(value).hex()
    return None


def _valid_attr_value(value: Any) -> bool:
    if isinstance(value, _ATTR_VALUE_TYPES):
        return not (isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63)
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, _ATTR_VALUE_TYPES) for v in value)
    return False


__all__ = ["CURRENT", "NOOP_OPERATION", "Operation", "current_operation"]
