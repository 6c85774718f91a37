"""The demo's AMM math: exact against the reference formulas, and total at the edges
(empty pools, dust, 2**200 amounts, prices at Uniswap V3's bounds, drained sides)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mevobs.demo._amm import (
    MAX_SQRT_X96,
    MIN_SQRT_X96,
    Q96,
    CurvePool,
    Pool,
    V2Pool,
    V3Pool,
    sqrt_price_x96,
)

E18 = 10**18
E6 = 10**6
BIG = 2**200


class TestReferenceMath:
    def test_v2_matches_uniswap_get_amount_out(self) -> None:
        pool = V2Pool("uniswap_v2", "ethereum", "WETH", "USDC", 1_000 * E18, 3_000_000 * E6)
        amount_in = 10 * E18
        expected = amount_in * 997 * 3_000_000 * E6 // (1_000 * E18 * 1000 + amount_in * 997)
        assert pool.quote("WETH", amount_in) == expected
        k_before = pool.reserve0 * pool.reserve1
        pool.swap("WETH", amount_in)
        assert pool.reserve0 * pool.reserve1 >= k_before  # fees only ever grow k

    def test_v2_liquidity_round_trip(self) -> None:
        pool = V2Pool("uniswap_v2", "ethereum", "WETH", "USDC", 1_000 * E18, 3_000_000 * E6)
        used0, used1, minted = pool.add_liquidity(10 * E18, 30_000 * E6)
        back0, back1 = pool.remove_liquidity(minted)
        assert back0 <= used0 and back1 <= used1
        assert used0 - back0 < 10**6 and used1 - back1 < 10

    def test_v3_within_tick_swap_moves_price_and_pays_out_fairly(self) -> None:
        sp = sqrt_price_x96(3_000 * E6 / E18)
        pool = V3Pool("uniswap_v3", "ethereum", "WETH", "USDT", 10**17, sp, sp * 9 // 10, sp * 11 // 10)
        out = pool.swap("WETH", E18)
        assert pool.sqrt_price_x96 < sp  # selling token0 lowers its price
        assert 2_900 * E6 < out < 3_000 * E6  # close to the mid price, less fee and impact
        out_back = pool.swap("USDT", out)
        assert out_back < E18  # a round trip loses the fees

    def test_curve_trades_near_one_to_one_at_balance(self) -> None:
        pool = CurvePool("curve", "ethereum", "USDC", "USDT", 10_000_000 * E6, 10_000_000 * E6)
        out = pool.quote("USDC", 100_000 * E6)
        assert 99_900 * E6 < out < 100_000 * E6  # stableswap: tiny impact, 4 bp fee
        skewed = CurvePool("curve", "ethereum", "USDC", "USDT", 19_000_000 * E6, 1_000_000 * E6)
        assert skewed.quote("USDC", 100_000 * E6) < out  # imbalance costs more

    def test_curve_d_is_the_exact_floor_of_the_invariant_root(self) -> None:
        for b0, b1 in ((10 * E6, 10 * E6), (1, BIG), (BIG, 3), (7, 11), (19 * E6, E6)):
            pool = CurvePool("curve", "ethereum", "USDC", "USDT", b0, b1)
            d = pool.d()
            assert pool._d_ok(d, b0, b1) and not pool._d_ok(d + 1, b0, b1)


def _demo_v3(liquidity: int = 10**16) -> V3Pool:
    sp = sqrt_price_x96(3_000 * E6 / E18)
    return V3Pool("uniswap_v3", "ethereum", "WETH", "USDT", liquidity, sp, sp * 9 // 10, sp * 11 // 10)


class TestV3OutsideTheRange:
    def test_a_swap_past_the_range_fills_up_to_the_boundary_and_no_further(self) -> None:
        pool = _demo_v3()
        used, out, nxt = pool.fill("WETH", 10**6 * E18)
        assert nxt == pool.sqrt_lower_x96 and 0 < used < 10**6 * E18
        assert pool.swap("WETH", 10**6 * E18) == out and pool.sqrt_price_x96 == pool.sqrt_lower_x96
        assert pool.amounts()[1] == 0  # at the lower bound the position is all token0
        assert pool.quote("WETH", E18) == 0 and pool.swap("WETH", E18) == 0  # nothing below the range
        assert pool.quote("USDT", 1_000 * E6) > 0  # the other way still trades

    def test_the_operators_crash_adding_at_the_lower_boundary_is_token0_only(self) -> None:
        """The demo crashed with ZeroDivisionError adding liquidity once the price sat on
        the range's lower bound."""
        pool = _demo_v3()
        pool.swap("WETH", 10**6 * E18)
        used0, used1, minted = pool.add_liquidity(5 * E18, 20_000 * E6)
        assert used1 == 0 and 0 < used0 <= 5 * E18 and minted > 0

    def test_above_the_range_the_position_is_all_token1(self) -> None:
        pool = _demo_v3()
        pool.swap("USDT", 10**12 * E6)
        assert pool.sqrt_price_x96 == pool.sqrt_upper_x96 and pool.amounts()[0] == 0
        used0, used1, minted = pool.add_liquidity(5 * E18, 20_000 * E6)
        assert used0 == 0 and 0 < used1 <= 20_000 * E6 and minted > 0
        assert pool.quote("USDT", E6) == 0  # nothing above the range

    def test_a_price_constructed_outside_the_range_crosses_the_empty_ticks_to_it(self) -> None:
        sp = sqrt_price_x96(3_000 * E6 / E18)
        below = V3Pool("v3", "ethereum", "WETH", "USDT", 10**16, sp // 2, sp, sp * 2)
        assert below.amounts()[1] == 0 and below.quote("WETH", E18) == 0
        assert below.swap("USDT", 1_000 * E6) > 0
        assert sp <= below.sqrt_price_x96 <= sp * 2

    def test_removing_all_liquidity_empties_the_position_and_stops_trading(self) -> None:
        pool = _demo_v3()
        pool.remove_liquidity(2 * pool.liquidity)  # more than there is: all of it
        assert pool.liquidity == 0 and pool.amounts() == (0, 0)
        assert pool.quote("WETH", E18) == 0 and pool.swap("USDT", E6) == 0
        assert pool.balance0 >= 0 and pool.balance1 >= 0


class TestEdges:
    def test_empty_pools_trade_nothing_and_accept_a_first_deposit(self) -> None:
        v2 = V2Pool("v2", "ethereum", "A", "B", 0, 0)
        curve = CurvePool("c", "ethereum", "A", "B", 0, 0)
        for pool in (v2, curve):
            assert pool.quote("A", E18) == 0 and pool.swap("B", E18) == 0 and pool.price("A") == 0.0
            assert pool.remove_liquidity(10) == (0, 0)
            assert pool.add_liquidity(E18, E18)[2] > 0
            assert pool.quote("A", E6) > 0

    def test_dust_and_zero_amounts_are_harmless(self) -> None:
        for pool in (
            V2Pool("v2", "ethereum", "A", "B", E18, E18),
            _demo_v3(),
            CurvePool("c", "ethereum", "A", "B", E6, E6),
        ):
            token = pool.token0
            for amount in (-5, 0, 1):
                assert pool.quote(token, amount) == pool.swap(token, amount) >= 0
            assert pool.add_liquidity(0, 0)[2] == 0 and pool.remove_liquidity(0) == (0, 0)

    def test_curve_with_one_side_nearly_drained_still_quotes_within_its_balance(self) -> None:
        pool = CurvePool("c", "ethereum", "USDC", "USDT", 10**9 * E6, 1)
        assert pool.quote("USDC", BIG) <= 1
        assert 0 < pool.quote("USDT", 10**6) < 10**9 * E6

    def test_v3_at_the_price_bounds(self) -> None:
        low = V3Pool("v3", "e", "A", "B", 2**120, MIN_SQRT_X96, MIN_SQRT_X96, MIN_SQRT_X96 + 10**6)
        high = V3Pool("v3", "e", "A", "B", 2**120, MAX_SQRT_X96, MAX_SQRT_X96 - 10**30, MAX_SQRT_X96)
        for pool in (low, high):
            for token in ("A", "B"):
                assert pool.quote(token, BIG) == pool.swap(token, BIG) >= 0
                assert MIN_SQRT_X96 <= pool.sqrt_price_x96 <= MAX_SQRT_X96
            assert pool.price("A") > 0 and pool.price("B") > 0
            pool.add_liquidity(BIG, BIG)
            pool.remove_liquidity(pool.liquidity)
            assert pool.liquidity == 0 and min(pool.balance0, pool.balance1) >= 0


# ------------------------------------------------------------------ properties

# Log-uniform magnitudes (every size from dust to 2**200 is as likely), plus the edges.
amounts = st.one_of(
    st.integers(0, 200).flatmap(lambda bits: st.integers(0, 2**bits)),
    st.sampled_from([0, 1, 2, 3, 999, E6, E18, BIG - 1, BIG]),
)
sqrt_prices = st.one_of(
    st.integers(33, 160).flatmap(
        lambda bits: st.integers(max(MIN_SQRT_X96, 2 ** (bits - 1)), min(MAX_SQRT_X96, 2**bits))
    ),
    st.integers(MIN_SQRT_X96, MIN_SQRT_X96 + 10**9),
    st.integers(MAX_SQRT_X96 - 10**30, MAX_SQRT_X96),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("swap"), st.booleans(), amounts),
        st.tuples(st.just("add"), amounts, amounts),
        st.tuples(st.just("remove"), st.one_of(amounts, st.fractions(0, 1))),
    ),
    max_size=12,
)


@st.composite
def v3_pools(draw: st.DrawFn) -> V3Pool:
    lo, hi = sorted(draw(st.lists(sqrt_prices, min_size=2, max_size=2, unique=True)))
    sp = draw(st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi]), sqrt_prices))  # in, on, anywhere
    fee = draw(st.sampled_from([0, 500, 3000]))
    return V3Pool("v3", "e", "A", "B", draw(amounts), sp, lo, hi, fee_pips=fee)


pools = st.one_of(
    st.builds(
        lambda r0, r1, fee: V2Pool("v2", "e", "A", "B", r0, r1, fee_bps=fee),
        amounts,
        amounts,
        st.sampled_from([0, 30]),
    ),
    v3_pools(),
    st.builds(
        lambda b0, b1, amp, fee: CurvePool("c", "e", "A", "B", b0, b1, amp=amp, fee_bps=fee),
        amounts,
        amounts,
        st.sampled_from([1, 2, 200, 5000]),
        st.sampled_from([0, 4]),
    ),
)


def _holdings(pool: Pool) -> tuple[int, int]:
    if isinstance(pool, V3Pool):
        return pool.balance0, pool.balance1
    return pool.amounts()


def _invariant(pool: Pool) -> int:
    """k for V2, D for Curve, liquidity for V3 (a swap must not lower it)."""
    if isinstance(pool, V2Pool):
        return pool.reserve0 * pool.reserve1
    if isinstance(pool, CurvePool):
        return pool.d()
    return pool.liquidity


def _in_range(pool: Pool) -> bool:
    return not isinstance(pool, V3Pool) or pool.sqrt_lower_x96 <= pool.sqrt_price_x96 <= pool.sqrt_upper_x96


def _check(pool: Pool, was_in_range: bool) -> bool:
    """Assert the invariants that hold in any state; returns whether V3's price is in its range."""
    h0, h1 = _holdings(pool)
    assert h0 >= 0 and h1 >= 0 and pool.shares >= 0
    if isinstance(pool, V3Pool):
        assert MIN_SQRT_X96 <= pool.sqrt_price_x96 <= MAX_SQRT_X96
        # Rounding favours the pool: it holds at least the exact amounts the position is owed.
        owed0, owed1 = pool._owed(pool.liquidity, round_up=True)
        assert h0 >= owed0 and h1 >= owed1
    for token in (pool.token0, pool.token1):
        assert pool.price(token) >= 0
    in_range = _in_range(pool)
    assert in_range or not was_in_range  # once in its range, V3's price never leaves it
    return in_range


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=pools, ops=operations)
def test_any_sequence_of_operations_keeps_every_pool_sound(pool: Pool, ops: list[Any]) -> None:
    """Swaps, deposits and withdrawals of 0 .. 2**200 in any order never raise, never
    leave a negative holding, pay exactly the quote, never lower the invariant on a
    swap (V2 k, Curve D), and keep V3's price within Uniswap's bounds (and within the
    range once inside it)."""
    in_range = _check(pool, False)
    for op in ops:
        before = _holdings(pool)
        if op[0] == "swap":
            token = pool.token0 if op[1] else pool.token1
            k = _invariant(pool)
            quoted = pool.quote(token, op[2])
            out = pool.swap(token, op[2])
            assert out == quoted and out >= 0
            assert out <= (before[1] if op[1] else before[0])
            assert _invariant(pool) >= k
        elif op[0] == "add":
            used0, used1, minted = pool.add_liquidity(op[1], op[2])
            assert 0 <= used0 <= op[1] and 0 <= used1 <= op[2] and minted >= 0
        else:
            shares = pool.shares
            units = op[1] if isinstance(op[1], int) else int(shares * op[1])
            amount0, amount1 = pool.remove_liquidity(units)
            assert 0 <= amount0 <= before[0] and 0 <= amount1 <= before[1]
            assert pool.shares == shares - min(units, shares)
        in_range = _check(pool, in_range)


@settings(max_examples=300, deadline=None)
@given(pool=pools, zero_for_one=st.booleans(), amount=amounts, deposit=st.tuples(amounts, amounts))
def test_rounding_always_favours_the_pool_by_less_than_a_unit(
    pool: Pool, zero_for_one: bool, amount: int, deposit: tuple[int, int]
) -> None:
    """Against exact rational arithmetic: a V3 swap takes at least the exact input for
    its price move plus the fee on it, and pays at most the exact output (less than a unit apart); a
    deposit pays at least the exact value of what it mints; Curve's D is the floor of
    the invariant's root."""
    if isinstance(pool, V3Pool):
        token = pool.token0 if zero_for_one else pool.token1
        used, out, nxt = pool.fill(token, amount)
        # A swap that trades starts at the range (the ticks outside it are empty).
        start = min(max(pool.sqrt_price_x96, pool.sqrt_lower_x96), pool.sqrt_upper_x96) if used else nxt
        a, b = sorted((start, nxt))
        liq = Fraction(pool.liquidity)
        exact0, exact1 = liq * Q96 * (b - a) / (a * b), liq * (b - a) / Q96
        exact_in, exact_out = (exact0, exact1) if zero_for_one else (exact1, exact0)
        assert used <= max(0, amount) and exact_in * 10**6 / (10**6 - pool.fee_pips) <= used  # fee included
        assert out <= exact_out < out + 1
        before = pool.liquidity
        used0, used1, minted = pool.add_liquidity(*deposit)
        assert minted == pool.liquidity - before
        sp = min(max(pool.sqrt_price_x96, pool.sqrt_lower_x96), pool.sqrt_upper_x96)
        lo, hi = pool.sqrt_lower_x96, pool.sqrt_upper_x96
        owed0 = Fraction(minted * Q96 * (hi - sp), sp * hi)
        owed1 = Fraction(minted * (sp - lo), Q96)
        assert owed0 <= used0 < owed0 + 1 and owed1 <= used1 < owed1 + 1
    elif isinstance(pool, V2Pool):
        r0, r1, supply = pool.reserve0, pool.reserve1, pool.total_supply
        used0, used1, minted = pool.add_liquidity(*deposit)
        if supply and minted:
            assert used0 * supply >= minted * r0 and used1 * supply >= minted * r1
    else:
        b0, b1 = pool.balance0 + deposit[0], pool.balance1 + deposit[1]
        d = pool.d(b0, b1)
        if b0 and b1:
            assert pool._d_ok(d, b0, b1) and not pool._d_ok(d + 1, b0, b1)
