"""Bad input to every recorder never raises into the caller; it is counted as dropped."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mevobs
from mevobs.testing import Captured, capture

BAD_VALUES: list[Any] = [None, math.nan, math.inf, -math.inf, -1, "abc", 2**300, [1], {"a": 1}, object(), 1.5]
BAD_REQUIRED = [v for v in BAD_VALUES if v is not None]


def dropped(tel: Captured) -> float:
    return tel.counter_value("mev.telemetry.dropped")


@pytest.mark.parametrize("value", BAD_REQUIRED, ids=repr)
def test_record_gas_rejects_and_counts(value: Any, mevobs_telemetry: Captured) -> None:
    with mevobs.swap(exchange="x") as op:
        op.record_gas(gas_used=value, effective_gas_price_wei=1)
        op.record_gas(gas_used=21_000, effective_gas_price_wei=value)
    assert op.gas_cost_wei == 0
    assert dropped(mevobs_telemetry) == 2
    assert mevobs_telemetry.counter_value("mev.telemetry.dropped", reason="invalid_value") == 2


@pytest.mark.parametrize("value", BAD_REQUIRED, ids=repr)
def test_every_recorder_survives_bad_values(value: Any, mevobs_telemetry: Captured) -> None:
    with mevobs.arbitrage(strategy="s") as op:
        op.record_tx(tx_hash=value, block_number=value, status=value, to=value)
        op.record_gas(gas_used=1, effective_gas_price_wei=1, l1_fee_wei=value, coinbase_transfer_wei=value)
        op.record_swap(
            token_in=value, token_out=value, amount_in=value, amount_out=value, expected_amount_out=value
        )
        op.record_liquidity(pool=value, amount0=value, amount1=value, liquidity=value)
        op.record_profit(gross_wei=value, usd=value, eth_price_usd=value, expected_wei=value)
        op.record_profit(gross_eth=value)
        op.record_opportunity(value)
        op.set_outcome(value)
        op.set_attribute(value, value)
        op.set_attribute("mev.note", value)
    assert op.outcome == "success"
    assert dropped(mevobs_telemetry) >= 8


def test_unhashable_and_odd_attribute_values_are_dropped(mevobs_telemetry: Captured) -> None:
    wrapper = mevobs.swap(exchange="curve", pool={"not": "hashable"}, note=[{"x": 1}])

    @wrapper
    def call() -> int:
        mevobs.current_operation().set_attribute("mev.exchange", {"x"})
        return 7

    assert call() == 7
    assert mevobs_telemetry.counter_value("mev.telemetry.dropped", reason="invalid_attribute") == 3


def test_negative_gross_profit_is_a_loss_not_an_error(mevobs_telemetry: Captured) -> None:
    with mevobs.arbitrage(strategy="s") as op:
        op.record_profit(gross_wei=-(10**15))
    assert op.net_profit_wei == -(10**15)
    assert mevobs_telemetry.counter_value("mev.loss") == pytest.approx(0.001)
    assert dropped(mevobs_telemetry) == 0


def test_good_forms_are_accepted() -> None:
    with capture() as tel, mevobs.swap(exchange="x") as op:
        op.record_gas(gas_used="0x5208", effective_gas_price_wei=Decimal(10**9), l1_fee_wei=b"\x01")
        op.record_tx(tx_hash=bytes(32), block_number="0x10", status="0x1")
    assert op.gas_cost_wei == 21_000 * 10**9 + 1
    assert dropped(tel) == 0


def test_recorders_outside_any_operation_do_nothing() -> None:
    op = mevobs.current_operation()
    assert not op.active
    op.record_gas(gas_used=1, effective_gas_price_wei=1)
    op.record_profit(gross_wei=1)
    assert op.gas_cost_wei == 0


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=40),
    st.decimals(allow_nan=True),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=anything, b=anything, c=anything, d=anything)
def test_fuzzed_recorders_never_raise(a: Any, b: Any, c: Any, d: Any) -> None:
    with capture(), mevobs.swap(exchange="fuzz") as op:
        op.record_gas(gas_used=a, effective_gas_price_wei=b, l1_fee_wei=c, gas_used_for_l1=d)
        op.record_swap(amount_in=a, amount_out=b, expected_amount_out=c, token_in=d)
        op.record_profit(gross_wei=a, gross_eth=b, usd=c, expected_wei=d)
        op.record_tx(tx_hash=a, block_number=b, status=c, to=d)
        op.record_liquidity(pool=a, amount0=b, amount1=c, liquidity=d)
        op.set_attribute("mev.fuzz", a)
        op.record_opportunity(a)
