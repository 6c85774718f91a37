"""Exact-integer AMM math for the demo: Uniswap V2, Uniswap V3 (within one tick) and Curve.

Amounts are token base units (ints). Nothing here knows about telemetry: the
demo's exchange helpers wrap these pools with ``mevobs.swap`` / ``mevobs.liquidity``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from math import isqrt

Q96 = 2**96


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
        if not self.total_supply:
            self.total_supply = isqrt(self.reserve0 * self.reserve1)

    @property
    def address(self) -> str:
        return _address(self.exchange, self.token0, self.token1)

    def quote(self, token_in: str, amount_in: int) -> int:
        """Output for an exact input, fee included (Uniswap V2's getAmountOut)."""
        r_in, r_out = (
            (self.reserve0, self.reserve1) if token_in == self.token0 else (self.reserve1, self.reserve0)
        )
        if amount_in <= 0:
            return 0
        with_fee = amount_in * (10_000 - self.fee_bps)
        return with_fee * r_out // (r_in * 10_000 + with_fee)

    def swap(self, token_in: str, amount_in: int) -> int:
        out = self.quote(token_in, amount_in)
        if token_in == self.token0:
            self.reserve0 += amount_in
            self.reserve1 -= out
        else:
            self.reserve1 += amount_in
            self.reserve0 -= out
        return out

    def add_liquidity(self, amount0: int, amount1: int) -> tuple[int, int, int]:
        """Mint LP tokens for a deposit at the current ratio; returns (used0, used1, minted)."""
        minted = min(
            amount0 * self.total_supply // self.reserve0, amount1 * self.total_supply // self.reserve1
        )
        used0 = minted * self.reserve0 // self.total_supply
        used1 = minted * self.reserve1 // self.total_supply
        self.reserve0 += used0
        self.reserve1 += used1
        self.total_supply += minted
        return used0, used1, minted

    def remove_liquidity(self, liquidity: int) -> tuple[int, int]:
        amount0 = liquidity * self.reserve0 // self.total_supply
        amount1 = liquidity * self.reserve1 // self.total_supply
        self.reserve0 -= amount0
        self.reserve1 -= amount1
        self.total_supply -= liquidity
        return amount0, amount1

    def price(self, token: str) -> float:
        """Mid price of ``token`` in the other token's units (for display and noise only)."""
        return self.reserve1 / self.reserve0 if token == self.token0 else self.reserve0 / self.reserve1


@dataclass
class V3Pool:
    """Concentrated-liquidity pool, swaps kept within the active tick range.

    ``sqrt_price_x96`` is sqrt(token1/token0) in Q64.96 as in Uniswap V3. A swap
    that would cross the range boundary is filled only up to it.
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

    @property
    def address(self) -> str:
        return _address(self.exchange, self.token0, self.token1)

    def _step(self, token_in: str, amount_in: int) -> tuple[int, int, int]:
        """(amount used, amount out, next sqrt price) for an exact input."""
        if amount_in <= 0:
            return 0, 0, self.sqrt_price_x96
        less_fee = amount_in * (1_000_000 - self.fee_pips) // 1_000_000
        liq, sp = self.liquidity, self.sqrt_price_x96
        if token_in == self.token0:  # price goes down
            nxt = liq * Q96 * sp // (liq * Q96 + less_fee * sp)
            nxt = max(nxt, self.sqrt_lower_x96)
            used = liq * Q96 * (sp - nxt) // (sp * nxt) if nxt < sp else 0
            out = liq * (sp - nxt) // Q96
        else:  # price goes up
            nxt = min(sp + less_fee * Q96 // liq, self.sqrt_upper_x96)
            used = liq * (nxt - sp) // Q96
            out = liq * Q96 * (nxt - sp) // (nxt * sp)
        used_gross = min(amount_in, used * 1_000_000 // (1_000_000 - self.fee_pips) + 1)
        return used_gross, out, nxt

    def quote(self, token_in: str, amount_in: int) -> int:
        return self._step(token_in, amount_in)[1]

    def swap(self, token_in: str, amount_in: int) -> int:
        _, out, nxt = self._step(token_in, amount_in)
        self.sqrt_price_x96 = nxt
        return out

    def add_liquidity(self, amount0: int, amount1: int) -> tuple[int, int, int]:
        """Add liquidity in the current range; returns (used0, used1, liquidity minted)."""
        sp, lo, hi = self.sqrt_price_x96, self.sqrt_lower_x96, self.sqrt_upper_x96
        liq0 = amount0 * sp * hi // (Q96 * (hi - sp))
        liq1 = amount1 * Q96 // (sp - lo)
        minted = min(liq0, liq1)
        used0 = minted * Q96 * (hi - sp) // (sp * hi)
        used1 = minted * (sp - lo) // Q96
        self.liquidity += minted
        return used0, used1, minted

    def remove_liquidity(self, liquidity: int) -> tuple[int, int]:
        sp, lo, hi = self.sqrt_price_x96, self.sqrt_lower_x96, self.sqrt_upper_x96
        liquidity = min(liquidity, self.liquidity)
        self.liquidity -= liquidity
        return liquidity * Q96 * (hi - sp) // (sp * hi), liquidity * (sp - lo) // Q96

    def price(self, token: str) -> float:
        p = (self.sqrt_price_x96 / Q96) ** 2
        return p if token == self.token0 else 1 / p


@dataclass
class CurvePool:
    """Two-coin StableSwap pool (Curve's invariant), amounts in the same decimals."""

    exchange: str
    chain: str
    token0: str
    token1: str
    balance0: int
    balance1: int
    amp: int = 200
    fee_bps: int = 4
    total_supply: int = 0

    def __post_init__(self) -> None:
        if not self.total_supply:
            self.total_supply = self.d()

    @property
    def address(self) -> str:
        return _address(self.exchange, self.token0, self.token1)

    def d(self, x0: int | None = None, x1: int | None = None) -> int:
        """The StableSwap invariant D by Newton's method (n = 2)."""
        xs = (self.balance0 if x0 is None else x0, self.balance1 if x1 is None else x1)
        s = sum(xs)
        if s == 0:
            return 0
        ann = self.amp * 4
        d = s
        for _ in range(255):
            d_p = d * d // (xs[0] * 2) * d // (xs[1] * 2)
            prev = d
            d = (ann * s + d_p * 2) * d // ((ann - 1) * d + 3 * d_p)
            if abs(d - prev) <= 1:
                break
        return d

    def _y(self, x: int, d: int) -> int:
        """Balance of the other coin keeping D, given this coin's balance x."""
        ann = self.amp * 4
        c = d * d // (x * 2) * d // (ann * 2)
        b = x + d // ann
        y = d
        for _ in range(255):
            prev = y
            y = (y * y + c) // (2 * y + b - d)
            if abs(y - prev) <= 1:
                break
        return y

    def quote(self, token_in: str, amount_in: int) -> int:
        if amount_in <= 0:
            return 0
        d = self.d()
        if token_in == self.token0:
            new_out = self._y(self.balance0 + amount_in, d)
            dy = self.balance1 - new_out - 1
        else:
            new_out = self._y(self.balance1 + amount_in, d)
            dy = self.balance0 - new_out - 1
        return max(0, dy - dy * self.fee_bps // 10_000)

    def swap(self, token_in: str, amount_in: int) -> int:
        out = self.quote(token_in, amount_in)
        if token_in == self.token0:
            self.balance0 += amount_in
            self.balance1 -= out
        else:
            self.balance1 += amount_in
            self.balance0 -= out
        return out

    def add_liquidity(self, amount0: int, amount1: int) -> tuple[int, int, int]:
        d0 = self.d()
        d1 = self.d(self.balance0 + amount0, self.balance1 + amount1)
        minted = self.total_supply * (d1 - d0) // d0
        self.balance0 += amount0
        self.balance1 += amount1
        self.total_supply += minted
        return amount0, amount1, minted

    def remove_liquidity(self, liquidity: int) -> tuple[int, int]:
        amount0 = liquidity * self.balance0 // self.total_supply
        amount1 = liquidity * self.balance1 // self.total_supply
        self.balance0 -= amount0
        self.balance1 -= amount1
        self.total_supply -= liquidity
        return amount0, amount1

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
