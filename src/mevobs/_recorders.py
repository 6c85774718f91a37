"""What an operation's recorders accept: transaction, gas, swap, liquidity and profit figures.

A mixin of :class:`~mevobs.Operation`, kept apart from its lifecycle: each
recorder validates what it is given, keeps exact integers (wei, base units) and
a few span attributes, and never raises into the host: a value it cannot use is
counted on ``mev.telemetry.dropped`` and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mevobs import _money, semconv
from mevobs._protocols import FACT_PROFIT, FACT_TRANSACTION
from mevobs._scrub import scrub_value
from mevobs._state import STATE

if TYPE_CHECKING:
    from mevobs._wrap import OperationSpec

_VALID_OUTCOMES = frozenset(semconv.OUTCOMES)
_VALID_STAGES = frozenset(semconv.OPPORTUNITY_STAGES)
_ATTR_VALUE_TYPES = (str, bool, int, float)
_NO_ATTRS: Mapping[str, Any] = MappingProxyType({})


def _recorder(fn: Callable[..., None]) -> Callable[..., None]:
    """Make a recorder safe: any error inside it is counted, never raised."""

    def safe(self: Recorders, *args: Any, **kwargs: Any) -> None:
        if self._spec is None or self._done:
            return  # the inert handle, or a finished operation (its record may be in export)
        self._touched = True  # no longer a plain success (see _fastcall.finish)
        try:
            fn(self, *args, **kwargs)
        except Exception as exc:
            STATE.dropped("recorder_error", f"{fn.__name__}: {type(exc).__name__}")

    safe.__name__ = fn.__name__
    safe.__qualname__ = fn.__qualname__
    safe.__doc__ = fn.__doc__
    return safe


class Recorders:
    """The recorders of an operation and the figures they keep (class defaults: an
    operation stores only what it is given)."""

    # No __slots__ here: the figures live in the instance dict, created on the first one.
    _spec: OperationSpec | None
    _attrs: Mapping[str, Any]
    _done: bool
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
    # Metric points recorded by recorders: (spec, value, extra attributes), recorded
    # at finish with the operation's own metric attributes.
    _points: list[tuple[semconv.MetricSpec, float, dict[str, str] | None, bool]] | None = None
    _done = False
    _facts = 0  # what the recorders saw, as FACT_* bits (see ``facts``)
    # Set by every recorder, an exception, a failing result and a child's roll-up: an
    # operation never touched is a plain success, finished without reading the rest.
    _touched = False

    if TYPE_CHECKING:

        @property
        def kind(self) -> str: ...

    def _writable_attrs(self) -> dict[str, Any]:
        """The recorded attributes, created on the first one (most calls record none)."""
        attrs = self._attrs
        if attrs is _NO_ATTRS:
            attrs = self._attrs = {}
        assert isinstance(attrs, dict)
        return attrs

    def _record_point(
        self,
        spec: semconv.MetricSpec,
        value: float,
        extra: dict[str, str] | None = None,
        *,
        success_only: bool = False,
    ) -> None:
        """Record ``value`` on metric ``spec`` when the operation finishes, with its metric
        attributes (plus ``extra``, which must be bounded labels of that spec).
        ``success_only``: only if the operation succeeds (a reverted swap filled nothing:
        no slippage, no volume)."""
        points = self._points
        if points is None:
            points = self._points = []
        points.append((spec, value, extra, success_only))

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
        attrs = self._writable_attrs()
        if tx_hash is not None:
            text = _hex_text(tx_hash)
            if text is None:
                self._bad("tx_hash", tx_hash)
            else:
                attrs[semconv.ATTR_TX_HASH] = text
                self._facts |= FACT_TRANSACTION
        block = self._int("block_number", block_number)
        if block is not None:
            attrs[semconv.ATTR_BLOCK_NUMBER] = block if block < 2**63 else str(block)
        if status is not None:
            st = _money.to_int(status)
            if st not in (0, 1):
                self._bad("status", status)
            else:
                self._tx_status = st
                attrs[semconv.ATTR_TX_STATUS] = st
        if to is not None:
            text = _hex_text(to)
            if text is None:
                self._bad("to", to)
            else:
                attrs[semconv.ATTR_TX_TO] = text
                self._facts |= FACT_TRANSACTION

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
        self._facts |= FACT_TRANSACTION
        self._gas_cost_wei += cost
        attrs = self._writable_attrs()
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
        notional_eth: Any = None,
        notional_usd: Any = None,
    ) -> None:
        """Record a swap's tokens and exact amounts (base units).

        With ``expected_amount_out``, realised slippage is recorded in basis
        points: (expected - actual) / expected x 10 000, negative when favourable.
        ``notional_eth``/``notional_usd`` (what the swap was worth, priced by the bot)
        feed ``mev.volume``/``mev.volume.usd``: exchange utilisation as a share of
        volume. Slippage and volume reach their metrics only if the operation
        succeeds: a reverted or failed swap filled nothing.
        """
        attrs = self._writable_attrs()
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
                    direction = {semconv.ATTR_SLIPPAGE_DIRECTION: "favorable" if bp < 0 else "adverse"}
                    self._record_point(semconv.SLIPPAGE, float(abs(bp)), direction, success_only=True)
                    attrs[semconv.ATTR_SLIPPAGE_BP] = float(bp)
        for spec, name, raw in (
            (semconv.VOLUME, "notional_eth", notional_eth),
            (semconv.VOLUME_USD, "notional_usd", notional_usd),
        ):
            if raw is not None:
                amount = _money.to_decimal(raw)
                if amount is None or amount < 0:
                    self._bad(name, raw)
                else:
                    self._record_point(spec, float(amount), success_only=True)

    @_recorder
    def record_liquidity(
        self, *, pool: Any = None, amount0: Any = None, amount1: Any = None, liquidity: Any = None
    ) -> None:
        """Record a liquidity change: pool, token amounts and liquidity units (base units)."""
        attrs = self._writable_attrs()
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
            self._writable_attrs()[semconv.ATTR_PROFIT_GROSS_WEI] = str(gross)
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
            self._facts |= FACT_PROFIT
            self._writable_attrs()[semconv.ATTR_PROFIT_EXPECTED_WEI] = str(expected)

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
        self._writable_attrs()[key] = scrub_value(key, value) if STATE.scrub else value


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
