"""Hand-computed money cases: gas, L1 fees, net profit across nested operations, slippage, huge amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mevobs
from mevobs import _money
from mevobs.testing import Captured

GWEI = 10**9
ETH = 10**18


def test_gas_cost_includes_the_l1_fee_exactly(mevobs_telemetry: Captured) -> None:
    """21 000 gas at 1.5 gwei + 0.0001 ETH L1 fee = 31 500 gwei + 100 000 gwei = 131 500 gwei."""
    with mevobs.swap(exchange="uniswap_v2", chain="optimism") as op:
        op.record_gas(gas_used=21_000, effective_gas_price_wei=1_500_000_000, l1_fee_wei=10**14)
    assert op.gas_cost_wei == 131_500 * GWEI
    span = mevobs_telemetry.span("swap uniswap_v2")
    assert span.attributes is not None
    assert span.attributes["mev.gas.cost_wei"] == "131500000000000"
    assert mevobs_telemetry.counter_value("mev.gas.cost") == pytest.approx(0.0001315, rel=1e-12)


def test_arbitrum_l1_gas_is_a_breakdown_not_an_addition(mevobs_telemetry: Captured) -> None:
    with mevobs.swap(exchange="camelot", chain="arbitrum") as op:
        op.record_gas(gas_used=700_000, effective_gas_price_wei=10**8, gas_used_for_l1=250_000)
    assert op.gas_cost_wei == 700_000 * 10**8
    attrs = mevobs_telemetry.span("swap camelot").attributes
    assert attrs is not None and attrs["mev.gas.used_for_l1"] == 250_000


def test_builder_payment_is_part_of_the_cost() -> None:
    with mevobs.swap(exchange="uniswap_v3") as op:
        op.record_gas(gas_used=150_000, effective_gas_price_wei=30 * GWEI, coinbase_transfer_wei=ETH // 100)
    assert op.gas_cost_wei == 150_000 * 30 * GWEI + ETH // 100


def test_net_profit_of_an_arbitrage_with_two_child_swaps(mevobs_telemetry: Captured) -> None:
    """gross 0.05 ETH - (120 000 x 20 gwei) - (90 000 x 20 gwei + 0.0002 ETH L1) = 0.0456 ETH."""

    @mevobs.swap(exchange="uniswap_v2")
    def leg1() -> None:
        mevobs.current_operation().record_gas(gas_used=120_000, effective_gas_price_wei=20 * GWEI)

    @mevobs.swap(exchange="sushiswap")
    def leg2() -> None:
        mevobs.current_operation().record_gas(
            gas_used=90_000, effective_gas_price_wei=20 * GWEI, l1_fee_wei=2 * 10**14
        )

    with mevobs.arbitrage(strategy="cross_dex") as arb:
        leg1()
        leg2()
        arb.record_profit(gross_eth="0.05")
    expected = 5 * 10**16 - 120_000 * 20 * GWEI - (90_000 * 20 * GWEI + 2 * 10**14)
    assert expected == 45_600_000_000_000_000
    assert arb.net_profit_wei == expected
    assert arb.total_gas_cost_wei == 120_000 * 20 * GWEI + 90_000 * 20 * GWEI + 2 * 10**14
    attrs = mevobs_telemetry.span("arbitrage cross_dex").attributes
    assert attrs is not None and attrs["mev.profit.net_wei"] == str(expected)
    # Profit is counted once, on the arbitrage; the legs carry only gas.
    assert mevobs_telemetry.counter_value("mev.profit") == pytest.approx(0.0456, rel=1e-12)
    assert mevobs_telemetry.counter_value("mev.profit", operation="swap") == 0
    assert mevobs_telemetry.counter_value("mev.loss") == 0
    assert mevobs_telemetry.counter_value("mev.gas.cost") == pytest.approx(0.0044, rel=1e-12)


def test_reverted_transaction_counts_its_gas_as_loss(mevobs_telemetry: Captured) -> None:
    with mevobs.swap(exchange="balancer") as op:
        op.record_tx(tx_hash="0x" + "ab" * 32, block_number=19_000_000, status=0)
        op.record_gas(gas_used=45_000, effective_gas_price_wei=12 * GWEI)
    assert op.outcome == "reverted"
    assert op.net_profit_wei == -540_000 * GWEI
    assert mevobs_telemetry.counter_value("mev.loss", outcome="reverted") == pytest.approx(0.00054, rel=1e-12)
    log = mevobs_telemetry.logs[-1]
    assert log.level == "WARNING" and log.attributes["mev.tx.hash"] == "0x" + "ab" * 32


def test_reverted_child_inside_a_profitable_arbitrage_is_not_counted_twice(
    mevobs_telemetry: Captured,
) -> None:
    with mevobs.arbitrage(strategy="s") as arb:
        with mevobs.swap(exchange="curve") as leg:
            leg.record_tx(status=0)
            leg.record_gas(gas_used=50_000, effective_gas_price_wei=GWEI)
        arb.record_profit(gross_wei=10**15)
    assert arb.net_profit_wei == 10**15 - 50_000 * GWEI
    assert mevobs_telemetry.counter_value("mev.loss") == 0
    assert mevobs_telemetry.counter_value("mev.profit") == pytest.approx(0.00095, rel=1e-12)


@pytest.mark.parametrize("child_gross", [0, 5])
def test_a_child_profit_of_zero_wei_still_settles_the_parent(
    mevobs_telemetry: Captured, child_gross: int
) -> None:
    """A child swap that records gross_wei=0 hands a net of 0 up: the parent
    arbitrage's net profit is 0, not None (and 5 for gross_wei=5)."""
    with mevobs.arbitrage(strategy="cross_dex") as arb, mevobs.swap(exchange="uniswap_v2") as child:
        child.record_profit(gross_wei=child_gross)
    assert child.net_profit_wei == child_gross
    assert arb.net_profit_wei == child_gross
    attrs = mevobs_telemetry.span("arbitrage cross_dex").attributes
    assert attrs is not None and attrs["mev.profit.net_wei"] == str(child_gross)


def test_slippage_of_an_under_filled_swap(mevobs_telemetry: Captured) -> None:
    """Quoted 2 000 USDC, received 1 990: (2000 - 1990) / 2000 x 10 000 = 50 bp adverse."""
    with mevobs.swap(exchange="uniswap_v3") as op:
        op.record_swap(
            token_in="WETH",
            token_out="USDC",
            amount_in=ETH,
            amount_out=1_990_000_000,
            expected_amount_out=2_000_000_000,
        )
    assert mevobs_telemetry.histogram_sum("mev.slippage", direction="adverse") == 50.0
    with mevobs.swap(exchange="uniswap_v3") as op:
        op.record_swap(amount_out=2_010_000_000, expected_amount_out=2_000_000_000)
    assert mevobs_telemetry.histogram_sum("mev.slippage", direction="favorable") == 50.0
    attrs = mevobs_telemetry.spans[-1].attributes
    assert attrs is not None and attrs["mev.slippage.bp"] == -50.0


def test_amounts_above_2_pow_64_stay_exact_on_spans(mevobs_telemetry: Captured) -> None:
    huge = 2**64 * 1_000 + 7  # about 18 447 ETH in wei, far past int64
    with mevobs.arbitrage(strategy="whale") as arb:
        arb.record_swap(amount_in=huge, amount_out=huge + 1)
        arb.record_profit(gross_wei=huge)
    attrs = mevobs_telemetry.span("arbitrage whale").attributes
    assert attrs is not None
    assert attrs["mev.amount.in"] == str(huge)
    assert attrs["mev.profit.net_wei"] == str(huge)
    assert int(attrs["mev.profit.net_wei"]) == huge
    assert mevobs_telemetry.counter_value("mev.profit") == pytest.approx(huge / ETH)


def test_usd_net_profit_deducts_gas_at_the_implied_price(mevobs_telemetry: Captured) -> None:
    with mevobs.arbitrage(strategy="usd") as arb:
        arb.record_gas(gas_used=100_000, effective_gas_price_wei=10 * GWEI)  # 0.001 ETH
        arb.record_profit(gross_eth=Decimal("0.01"), usd=Decimal("30"))  # 3 000 USD/ETH
    assert mevobs_telemetry.counter_value("mev.profit.usd") == pytest.approx(27.0)


@given(st.integers(min_value=0, max_value=2**255), st.integers(min_value=1, max_value=10**30))
def test_wei_to_eth_keeps_leading_digits(wei: int, _unused: int) -> None:
    assert _money.wei_to_eth(wei) == pytest.approx(float(Decimal(wei) / ETH), rel=1e-15)


@given(st.integers(min_value=1, max_value=2**200), st.integers(min_value=0, max_value=2**200))
def test_slippage_formula_is_exact(expected: int, actual: int) -> None:
    bp = _money.slippage_bp(expected, actual)
    assert bp is not None
    assert bp * expected == pytest.approx(Decimal(expected - actual) * 10_000)
    assert (bp < 0) == (actual > expected)


def test_a_reverted_swap_records_no_slippage(mevobs_telemetry: Captured) -> None:
    """A reverted swap filled nothing: its amount_out of 0 is not 10 000 bp of adverse
    slippage. A successful swap in the same run still records its slippage."""
    with mevobs.swap(exchange="uniswap_v2") as op:
        op.record_tx(tx_hash="0x" + "01" * 32, status=0)
        op.record_swap(amount_in=10**18, amount_out=0, expected_amount_out=3_000 * 10**6)
    assert op.outcome == "reverted"
    assert mevobs_telemetry.histogram_count("mev.slippage") == 0
    with mevobs.swap(exchange="uniswap_v2"):
        mevobs.current_operation().record_swap(amount_out=995, expected_amount_out=1000)
    assert mevobs_telemetry.histogram_count("mev.slippage", direction="adverse") == 1
    assert mevobs_telemetry.histogram_sum("mev.slippage") == pytest.approx(50.0)
