"""Exact-integer AMM math for the demo: Uniswap V2, Uniswap V3 (one position) and Curve.

Amounts are token base units (ints of any size). Nothing here knows about
telemetry: the demo's exchange helpers wrap these pools with ``mevobs.swap`` /
``mevobs.liquidity``. Every method is total: zero, dust and huge amounts, empty
pools and extreme prices give a (possibly zero) result, never an exception, and
rounding always favours the pool, so its holdings never go negative and its
invariant never shrinks on a swap. ``quote(t, x)`` is exactly what ``swap(t, x)``
would pay out from the same state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from math import inf, isqrt

Q96 = 2**96
#: Uniswap V3's bounds on sqrt(price) in Q64.96 (TickMath.MIN_SQRT_RATIO / MAX_SQRT_RATIO).
MIN_SQRT_X96 = 4295128739
MAX_SQRT_X96 = 1461446703485210103287273052203988822378723970342
_PIPS = 1_000_000


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _ratio(a: int, b: int) -> float:
    """a / b as a float for display: 0.0 when b is 0, inf beyond the float range."""
    if b == 0:
        return 0.0
    try:
        return a / b
    except OverflowError:
        return inf


@dataclass
class V2Pool:
    """Constant-product pool (x * y = k) with a 0.3 % fee, as Uniswap V2 and its forks."""

    exchange: str
    chain: str
    token0: str
    token1: str
    reserve0: int
    reserve1: int
    fee_bps: int = 30
    total_supply: int = 0

    def __post_init__(self) -> None:
        if min(self.reserve0, self.reserve1, self.total_supply) < 0 or not 0 <= self.fee_bps < 10_000:
            raise ValueError("reserves and supply must be >= 0 and the fee below 100 %")
        if not self.total_supply:
            self.total_supply = isqrt(self.reserve0 * self.reserve1)

    @property
    def address(self) -> str:
        return _address(self.exchange, self.token0, self.token1)

    @property
    def shares(self) -> int:
        """Liquidity units outstanding (LP tokens)."""
        return self.total_supply

    def quote(self, token_in: str, amount_in: int) -> int:
        """Output for an exact input, fee included (Uniswap V2's getAmountOut); 0 from an
        empty side, as the pair would refuse the trade."""
        r_in, r_out = (
            (self.reserve0, self.reserve1) if token_in == self.token0 else (self.reserve1, self.reserve0)
        )
        if amount_in <= 0 or r_in <= 0 or r_out <= 0:
            return 0
        with_fee = amount_in * (10_000 - self.fee_bps)
        # < r_out for any input: a swap never empties a side.
        return with_fee * r_out // (r_in * 10_000 + with_fee)

    def swap(self, token_in: str, amount_in: int) -> int:
        out = self.quote(token_in, amount_in)
        if out == 0:
            return 0  # nothing traded: the input stays with the trader
        if token_in == self.token0:
            self.reserve0 += amount_in
            self.reserve1 -= out
        else:
            self.reserve1 += amount_in
            self.reserve0 -= out
        return out

    def add_liquidity(self, amount0: int, amount1: int) -> tuple[int, int, int]:
        """Mint LP tokens for a deposit at the current ratio; returns (used0, used1, minted).

        The first deposit into an empty pool sets the ratio. Used amounts round up, so a
        deposit never dilutes the other holders."""
        amount0, amount1 = max(0, amount0), max(0, amount1)
        r0, r1, supply = self.reserve0, self.reserve1, self.total_supply
        if supply == 0:
            minted = isqrt(amount0 * amount1)
            used0, used1 = (amount0, amount1) if minted else (0, 0)
        elif r0 == 0 or r1 == 0:
            return 0, 0, 0  # one-sided pool with holders: no ratio to deposit at
        else:
            minted = min(amount0 * supply // r0, amount1 * supply // r1)
            used0, used1 = _ceil_div(minted * r0, supply), _ceil_div(minted * r1, supply)
        self.reserve0 += used0
        self.reserve1 += used1
        self.total_supply += minted
        return used0, used1, minted

    def remove_liquidity(self, liquidity: int) -> tuple[int, int]:
        """Burn up to all LP tokens; returns the amounts paid out (rounded down)."""
        supply = self.total_supply
        liquidity = min(max(0, liquidity), supply)
        if liquidity == 0:
            return 0, 0
        amount0 = liquidity * self.reserve0 // supply
        amount1 = liquidity * self.reserve1 // supply
        self.reserve0 -= amount0
        self.reserve1 -= amount1
        self.total_supply -= liquidity
        return amount0, amount1

    def amounts(self) -> tuple[int, int]:
        return self.reserve0, self.reserve1

    def price(self, token: str) -> float:
        """Mid price of ``token`` in the other token's units (display and noise only; 0 if empty)."""
        if self.reserve0 == 0 or self.reserve1 == 0:
            return 0.0
        if token == self.token0:
            return _ratio(self.reserve1, self.reserve0)
        return _ratio(self.reserve0, self.reserve1)


# --------------------------------------------------------------- Uniswap V3 math
# Ports of Uniswap V3's SqrtPriceMath and SwapMath, on Python ints (no overflow
# branches needed). Prices are sqrt(token1/token0) in Q64.96, ``a < b``.


def amount0_delta(a: int, b: int, liquidity: int, round_up: bool) -> int:
    """Token0 between sqrt prices a < b for ``liquidity`` (SqrtPriceMath.getAmount0Delta)."""
    num = (liquidity << 96) * (b - a)
    return _ceil_div(num, a * b) if round_up else num // (a * b)


def amount1_delta(a: int, b: int, liquidity: int, round_up: bool) -> int:
    """Token1 between sqrt prices a < b for ``liquidity`` (SqrtPriceMath.getAmount1Delta)."""
    num = liquidity * (b - a)
    return _ceil_div(num, Q96) if round_up else num >> 96


def _swap_step(sp: int, target: int, liquidity: int, remaining: int, fee_pips: int) -> tuple[int, int, int]:
    """One exact-input step towards ``target`` (SwapMath.computeSwapStep); returns
    (next sqrt price, input taken including the fee, output)."""
    zero_for_one = sp >= target
    less_fee = remaining * (_PIPS - fee_pips) // _PIPS
    if zero_for_one:
        needed = amount0_delta(target, sp, liquidity, True)
    else:
        needed = amount1_delta(sp, target, liquidity, True)
    if less_fee >= needed:
        nxt = target
    elif zero_for_one:  # getNextSqrtPriceFromAmount0RoundingUp: the price moves less
        num = liquidity << 96
        nxt = _ceil_div(num * sp, num + less_fee * sp) if less_fee else sp
    else:  # getNextSqrtPriceFromAmount1RoundingDown (liquidity > 0 here: needed > less_fee >= 0)
        nxt = sp + (less_fee << 96) // liquidity
    if zero_for_one:
        amount_in = amount0_delta(nxt, sp, liquidity, True)
        out = amount1_delta(nxt, sp, liquidity, False)
    else:
        amount_in = amount1_delta(sp, nxt, liquidity, True)
        out = amount0_delta(sp, nxt, liquidity, False)
    if nxt != target:
        return nxt, remaining, out  # stopped inside the range: the rest of the input is the fee
    return nxt, amount_in + _ceil_div(amount_in * fee_pips, _PIPS - fee_pips), out


@dataclass
class V3Pool:
    """Concentrated-liquidity pool with one position (all liquidity in one tick range).

    ``sqrt_price_x96`` is sqrt(token1/token0) in Q64.96 as in Uniswap V3. Below the
    range the position is all token0, above it all token1. A swap never moves the
    price past the range: it fills up to the boundary and leaves the rest of the
    input with the trader (a partial fill, as a router's sqrtPriceLimit would). A
    price outside the range (possible at construction) crosses the empty ticks up to
    the range for free, as in Uniswap. ``balance0``/``balance1`` are what the pool
    holds; rounding keeps them at least what the position is owed.
    """

    exchange: str
    chain: str
    token0: str
    token1: str
    liquidity: int
    sqrt_price_x96: int
    sqrt_lower_x96: int
    sqrt_upper_x96: int
    fee_pips: int = 500  # 0.05 %
    balance0: int = field(init=False, default=0)
    balance1: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        lo, hi, sp = self.sqrt_lower_x96, self.sqrt_upper_x96, self.sqrt_price_x96
        if not MIN_SQRT_X96 <= lo < hi <= MAX_SQRT_X96 or not MIN_SQRT_X96 <= sp <= MAX_SQRT_X96:
            raise ValueError("need MIN_SQRT_X96 <= lower < upper <= MAX_SQRT_X96 and the price within bounds")
        if self.liquidity < 0 or not 0 <= self.fee_pips < _PIPS:
            raise ValueError("liquidity must be >= 0 and the fee below 100 %")
        self.balance0, self.balance1 = self._owed(self.liquidity, round_up=True)

    @property
    def address(self) -> str:
        return _address(self.exchange, self.token0, self.token1)

    @property
    def shares(self) -> int:
        """Liquidity units outstanding (the position's liquidity)."""
        return self.liquidity

    def _clamped(self) -> int:
        return min(max(self.sqrt_price_x96, self.sqrt_lower_x96), self.sqrt_upper_x96)

    def _owed(self, liquidity: int, round_up: bool) -> tuple[int, int]:
        """Token amounts of ``liquidity`` at the current price (one side is 0 outside the range)."""
        sp, lo, hi = self._clamped(), self.sqrt_lower_x96, self.sqrt_upper_x96
        return amount0_delta(sp, hi, liquidity, round_up), amount1_delta(lo, sp, liquidity, round_up)

    def amounts(self) -> tuple[int, int]:
        """What the position holds at the current price (rounded down)."""
        return self._owed(self.liquidity, round_up=False)

    def fill(self, token_in: str, amount_in: int) -> tuple[int, int, int]:
        """(input taken, output, next sqrt price) of an exact-input swap, without trading."""
        sp, lo, hi = self.sqrt_price_x96, self.sqrt_lower_x96, self.sqrt_upper_x96
        if amount_in <= 0 or self.liquidity <= 0:
            return 0, 0, sp
        if token_in == self.token0:  # the price goes down, towards the lower bound
            if sp <= lo:
                return 0, 0, sp  # no liquidity below the range
            start, target = min(sp, hi), lo
        else:  # the price goes up, towards the upper bound
            if sp >= hi:
                return 0, 0, sp
            start, target = max(sp, lo), hi
        nxt, used, out = _swap_step(start, target, self.liquidity, amount_in, self.fee_pips)
        return used, out, nxt

    def quote(self, token_in: str, amount_in: int) -> int:
        return self.fill(token_in, amount_in)[1]

    def swap(self, token_in: str, amount_in: int) -> int:
        """Trade; the pool takes only the input it fills (``fill()[0]``)."""
        used, out, nxt = self.fill(token_in, amount_in)
        self.sqrt_price_x96 = nxt
        if token_in == self.token0:
            self.balance0 += used
            self.balance1 -= out
        else:
            self.balance1 += used
            self.balance0 -= out
        return out

    def add_liquidity(self, amount0: int, amount1: int) -> tuple[int, int, int]:
        """Add to the position; returns (used0, used1, liquidity minted).

        Below the range only token0 is taken, above it only token1, inside both in the
        current proportion (Uniswap's LiquidityAmounts). Used amounts round up."""
        amount0, amount1 = max(0, amount0), max(0, amount1)
        sp, lo, hi = self._clamped(), self.sqrt_lower_x96, self.sqrt_upper_x96
        by0 = amount0 * sp * hi // ((hi - sp) << 96) if sp < hi else None
        by1 = (amount1 << 96) // (sp - lo) if sp > lo else None
        minted = min(x for x in (by0, by1) if x is not None)  # one of them exists: lo < hi
        used0, used1 = self._owed(minted, round_up=True)
        self.liquidity += minted
        self.balance0 += used0
        self.balance1 += used1
        return used0, used1, minted

    def remove_liquidity(self, liquidity: int) -> tuple[int, int]:
        """Withdraw up to all of the position's liquidity; returns the amounts (rounded down)."""
        liquidity = min(max(0, liquidity), self.liquidity)
        amount0, amount1 = self._owed(liquidity, round_up=False)
        self.liquidity -= liquidity
        self.balance0 -= amount0
        self.balance1 -= amount1
        return amount0, amount1

    def price(self, token: str) -> float:
        p = (self.sqrt_price_x96 / Q96) ** 2  # > 0: the price is at least MIN_SQRT_X96
        return p if token == self.token0 else 1 / p


# ------------------------------------------------------------------ Curve math


@dataclass
class CurvePool:
    """Two-coin StableSwap pool (Curve's invariant), amounts in the same decimals.

    D is the exact integer floor of the invariant's root (Newton's method as in
    Curve, then an exact check), and a swap's new balance is the least one that
    keeps D, so D never decreases on a swap. A pool with an empty side has D = 0
    and does not trade."""

    exchange: str
    chain: str
    token0: str
    token1: str
    balance0: int
    balance1: int
    amp: int = 200
    fee_bps: int = 4
    total_supply: int = 0
    _d_cache: tuple[int, int, int] = field(init=False, default=(0, 0, 0), repr=False, compare=False)

    def __post_init__(self) -> None:
        if min(self.balance0, self.balance1, self.total_supply) < 0 or self.amp < 1:
            raise ValueError("balances and supply must be >= 0 and amp >= 1")
        if not 0 <= self.fee_bps < 10_000:
            raise ValueError("the fee must be below 100 %")
        if not self.total_supply:
            self.total_supply = self.d()

    @property
    def address(self) -> str:
        return _address(self.exchange, self.token0, self.token1)

    @property
    def shares(self) -> int:
        """Liquidity units outstanding (LP tokens)."""
        return self.total_supply

    def _d_ok(self, d: int, x0: int, x1: int) -> bool:
        """Whether ``d`` is at most the invariant's root for balances x0, x1 (exact)."""
        ann, p4 = self.amp * 4, 4 * x0 * x1
        return d**3 + (ann - 1) * d * p4 <= ann * (x0 + x1) * p4

    def d(self, x0: int | None = None, x1: int | None = None) -> int:
        """The StableSwap invariant D (n = 2): the largest integer not above the root."""
        if x0 is None and x1 is None:
            b0, b1, cached = self._d_cache
            if (b0, b1) == (self.balance0, self.balance1):
                return cached
            d = self._solve_d(self.balance0, self.balance1)
            self._d_cache = (self.balance0, self.balance1, d)
            return d
        return self._solve_d(self.balance0 if x0 is None else x0, self.balance1 if x1 is None else x1)

    def _solve_d(self, x0: int, x1: int) -> int:
        if x0 <= 0 or x1 <= 0:
            return 0
        s, ann = x0 + x1, self.amp * 4
        d = s  # the root is at most s: Newton from here comes down to it
        for _ in range(255):
            d_p = d * d // (x0 * 2) * d // (x1 * 2)
            prev = d
            d = (ann * s + d_p * 2) * d // ((ann - 1) * d + 3 * d_p)
            if abs(d - prev) <= 1:
                break
        for _ in range(4):  # Newton ends within a unit or two of the root: settle exactly
            if not self._d_ok(d, x0, x1):
                d -= 1
            elif self._d_ok(d + 1, x0, x1):
                d += 1
            else:
                return d
        lo, hi = 0, s + 1  # did not settle: bisect (_d_ok(0) holds, _d_ok(s + 1) does not)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self._d_ok(mid, x0, x1) else (lo, mid)
        return lo

    def _y(self, x: int, d: int) -> int:
        """Least balance of the other coin that keeps the invariant at least ``d`` when
        this coin's balance is ``x`` (> 0): the positive root of a quadratic, exactly."""
        if d <= 0:
            return 0
        ann = self.amp * 4
        a = 4 * x * ann
        b = 4 * x * (ann * x - (ann - 1) * d)
        c = d * d * d
        # The invariant holds at y when a*y*y + b*y >= c; isqrt is off by less than one,
        # so the exact answer is a step or two away at most.
        y = max(0, (isqrt(b * b + 4 * a * c) - b) // (2 * a))
        while (a * y + b) * y < c:
            y += 1
        while y > 0 and (a * (y - 1) + b) * (y - 1) >= c:
            y -= 1
        return y

    def quote(self, token_in: str, amount_in: int) -> int:
        if amount_in <= 0 or self.balance0 <= 0 or self.balance1 <= 0:
            return 0
        d = self.d()
        if token_in == self.token0:
            dy = self.balance1 - self._y(self.balance0 + amount_in, d)
        else:
            dy = self.balance0 - self._y(self.balance1 + amount_in, d)
        dy = max(0, dy)  # the new balance keeps D: it is never above the old one
        return dy - _ceil_div(dy * self.fee_bps, 10_000)

    def swap(self, token_in: str, amount_in: int) -> int:
        out = self.quote(token_in, amount_in)
        if out == 0:
            return 0
        if token_in == self.token0:
            self.balance0 += amount_in
            self.balance1 -= out
        else:
            self.balance1 += amount_in
            self.balance0 -= out
        return out

    def add_liquidity(self, amount0: int, amount1: int) -> tuple[int, int, int]:
        """Deposit any mix; LP tokens in proportion to the growth of D. Returns (used0, used1, minted)."""
        amount0, amount1 = max(0, amount0), max(0, amount1)
        d0 = self.d()
        d1 = self.d(self.balance0 + amount0, self.balance1 + amount1)
        if self.total_supply == 0:
            minted = d1 - d0
        elif d0 == 0:
            return 0, 0, 0  # an emptied side with holders left: no fair price for new shares
        else:
            minted = self.total_supply * (d1 - d0) // d0
        if minted <= 0:
            return 0, 0, 0
        self.balance0 += amount0
        self.balance1 += amount1
        self.total_supply += minted
        return amount0, amount1, minted

    def remove_liquidity(self, liquidity: int) -> tuple[int, int]:
        """Burn up to all LP tokens for a proportional share of both coins (rounded down)."""
        supply = self.total_supply
        liquidity = min(max(0, liquidity), supply)
        if liquidity == 0:
            return 0, 0
        amount0 = liquidity * self.balance0 // supply
        amount1 = liquidity * self.balance1 // supply
        self.balance0 -= amount0
        self.balance1 -= amount1
        self.total_supply -= liquidity
        return amount0, amount1

    def amounts(self) -> tuple[int, int]:
        return self.balance0, self.balance1

    def price(self, token: str) -> float:
        unit = 10**6
        return self.quote(token, unit) / unit


Pool = V2Pool | V3Pool | CurvePool


def sqrt_price_x96(price: float) -> int:
    """Q64.96 square root of a token1/token0 price given in base units."""
    return int(price**0.5 * Q96)


def _address(*parts: str) -> str:
    """A stable, address-shaped id for a simulated pool."""
    return "0x" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:40]
