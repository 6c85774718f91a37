"""The simulated arbitrage bot: exchange helpers, price noise, scanner, simulator, executor.

Built only from mevobs's public API, so it doubles as the reference example.
Everything random comes from one ``random.Random(seed)`` consumed in a fixed
order (the bot awaits each step in turn), so a seed fixes every count and
every wei of profit; only wall-clock durations vary. What a scenario changes
arrives each block as :class:`Conditions` (see ``_conditions.py``).
"""

from __future__ import annotations

import contextlib
import copy
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import mevobs
from mevobs.demo._amm import CurvePool, Pool, V2Pool, V3Pool, sqrt_price_x96
from mevobs.demo._chain import GWEI, Chain, Node, RpcError
from mevobs.demo._conditions import Conditions

WETH = "WETH"
USDC = "USDC"
USDT = "USDT"
ETH_USD = 3_000
E18 = 10**18
E6 = 10**6
SWAP_GAS = {
    "uniswap_v2": 110_000,
    "sushiswap": 115_000,
    "camelot": 420_000,
    "uniswap_v3": 135_000,
    "curve": 160_000,
}


def make_pools() -> dict[str, Pool]:
    """The demo's markets: V2 forks, a V3 pool and a Curve pool on Ethereum, Camelot on Arbitrum."""
    v3_price = ETH_USD * E6 / E18  # USDT base units per wei
    sp = sqrt_price_x96(v3_price)
    return {
        "uniswap_v2": V2Pool("uniswap_v2", "ethereum", WETH, USDC, 4_000 * E18, 12_000_000 * E6),
        "sushiswap": V2Pool("sushiswap", "ethereum", WETH, USDC, 1_500 * E18, 4_500_000 * E6),
        "uniswap_v3": V3Pool(
            "uniswap_v3",
            "ethereum",
            WETH,
            USDT,
            liquidity=3 * 10**16,
            sqrt_price_x96=sp,
            sqrt_lower_x96=sp * 9 // 10,
            sqrt_upper_x96=sp * 11 // 10,
        ),
        "curve": CurvePool("curve", "ethereum", USDC, USDT, 20_000_000 * E6, 20_000_000 * E6),
        "camelot": V2Pool("camelot", "arbitrum", WETH, USDC, 800 * E18, 2_400_000 * E6),
        "uniswap_v2_arb": V2Pool("uniswap_v2", "arbitrum", WETH, USDC, 1_200 * E18, 3_600_000 * E6),
    }


# Token cycles starting and ending in WETH: (pool key, token in) for each leg.
CYCLES: dict[str, Sequence[tuple[str, str]]] = {
    "v2_v2": (("uniswap_v2", WETH), ("sushiswap", USDC)),
    "v2_v2_rev": (("sushiswap", WETH), ("uniswap_v2", USDC)),
    "tri_curve": (("uniswap_v2", WETH), ("curve", USDC), ("uniswap_v3", USDT)),
    "tri_curve_rev": (("uniswap_v3", WETH), ("curve", USDT), ("sushiswap", USDC)),
    "arb_l2": (("camelot", WETH), ("uniswap_v2_arb", USDC)),
    "arb_l2_rev": (("uniswap_v2_arb", WETH), ("camelot", USDC)),
}
#: The scanner's input bounds (wei of WETH) and the search's resolution (a share of the input).
MIN_IN, MAX_IN = 10**15, 200 * E18
_RESOLUTION_BITS = 10
_GOLDEN = 618_034  # (sqrt 5 - 1) / 2, in millionths

STRATEGY = {
    "v2_v2": "cross_dex",
    "v2_v2_rev": "cross_dex",
    "tri_curve": "triangular",
    "tri_curve_rev": "triangular",
    "arb_l2": "cross_dex_l2",
    "arb_l2_rev": "cross_dex_l2",
}


#: USD per base unit of each token (the bot's reference prices).
USD_PER_UNIT = {WETH: ETH_USD / E18, USDC: 1 / E6, USDT: 1 / E6}
#: The same, exact: USD per whole token and the token's decimals (for notional volume).
USD_PER_TOKEN = {WETH: Decimal(ETH_USD), USDC: Decimal(1), USDT: Decimal(1)}
DECIMALS = {WETH: 18, USDC: 6, USDT: 6}


def tvl_usd(pool: Pool) -> float:
    """Value of what a pool holds (for V3, what its position holds), at reference prices."""
    amount0, amount1 = pool.amounts()
    return amount0 * USD_PER_UNIT[pool.token0] + amount1 * USD_PER_UNIT[pool.token1]


def deviation_bp(pool: Pool) -> float:
    """How far the pool's price of token0 is from the reference price, in basis points."""
    reference = USD_PER_UNIT[pool.token0] / USD_PER_UNIT[pool.token1]
    return (pool.price(pool.token0) / reference - 1) * 10_000


def other(pool: Pool, token: str) -> str:
    return pool.token1 if token == pool.token0 else pool.token0


def notional_usd(token: str, amount: int) -> Decimal:
    """What ``amount`` base units of ``token`` are worth at the reference price, exactly."""
    usd: Decimal = Decimal(amount) * USD_PER_TOKEN[token] / 10 ** DECIMALS[token]
    return usd


def move_price(pool: Pool, target_bp: float) -> None:
    """Trade ``pool`` until its price of token0 is ``target_bp`` off the reference (to
    about half a basis point), as an outside arbitrageur would; pure arithmetic.

    The size is found by search on copies of the pool: a V2 pool moves about as its
    reserves say, a V3 position more, a Curve pool much less, so no one formula fits."""
    sell0 = deviation_bp(pool) > target_bp  # token0 too dear: sell it
    token = pool.token0 if sell0 else pool.token1

    def after(amount: int) -> float:
        trial = copy.copy(pool)
        trial.swap(token, amount)
        return deviation_bp(trial)

    def short(dev: float) -> bool:  # not moved far enough yet
        return dev > target_bp if sell0 else dev < target_bp

    held = pool.amounts()[0 if sell0 else 1]
    hi = max(1, held * round(abs(deviation_bp(pool) - target_bp)) // 20_000)
    for _ in range(64):  # bracket: double until the price passes the target
        if not short(after(hi)):
            break
        hi *= 2
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        dev = after(mid)
        if abs(dev - target_bp) < 0.5:
            lo = hi = mid
            break
        lo, hi = (mid, hi) if short(dev) else (lo, mid)
    pool.swap(token, hi)


@dataclass
class Opportunity:
    cycle: str
    chain: str
    amount_in: int
    expected_out: int
    legs: Sequence[tuple[str, str]]

    @property
    def gross_wei(self) -> int:
        return self.expected_out - self.amount_in


async def with_retries(call: Callable[[], Any], attempts: int = 3) -> Any:
    """Retry rate-limited and timed-out RPC calls (each attempt is its own rpc span)."""
    for attempt in range(attempts):
        try:
            return await call()
        except (RpcError, TimeoutError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@dataclass
class Bot:
    """One arbitrage bot over the demo's pools."""

    rng: random.Random
    node: Node
    pools: dict[str, Pool] = field(default_factory=make_pools)
    wrappers: dict[str, Any] = field(default_factory=dict)
    #: Opportunities per funnel stage, as recorded on mev.opportunities.
    funnel: dict[str, int] = field(default_factory=dict)
    #: Net profit and gas of every finished root operation, exact in wei.
    net_profit_wei: int = 0
    gas_spent_wei: int = 0
    #: Halts arbitrage when it fails too often or loses too much (None: unguarded).
    breaker: mevobs.CircuitBreaker | None = None
    #: Arbitrage attempts the open breaker refused.
    refused: int = 0
    #: WETH held per chain, exact in wei (starts at 100 WETH each).
    inventory_wei: dict[str, int] = field(
        default_factory=lambda: {"ethereum": 100 * E18, "arbitrum": 100 * E18}
    )
    #: Each cycle's last best input, where the next search starts.
    hints: dict[str, int] = field(default_factory=dict)
    #: What the bot retained because the conditions said so (a simulated leak).
    ballast: list[bytes] = field(default_factory=list)
    #: The bot's trade journal (a database it writes and reads; None: none).
    journal: sqlite3.Connection | None = None

    def _stage(self, op: mevobs.Operation, stage: str) -> None:
        op.record_opportunity(stage)
        self.funnel[stage] = self.funnel.get(stage, 0) + 1

    def _book(self, op: mevobs.Operation, chain: str) -> None:
        """Add a finished root operation to the ledger (its figures are final now) and
        report the resulting WETH inventory (risk exposure)."""
        net = op.net_profit_wei or 0
        self.net_profit_wei += net
        self.gas_spent_wei += op.total_gas_cost_wei
        self.inventory_wei[chain] = self.inventory_wei.get(chain, 0) + net
        mevobs.record_exposure(WETH, Decimal(self.inventory_wei[chain]) / E18, chain=chain)
        if self.journal is not None:
            self.journal.cursor().execute(
                "INSERT INTO trades (kind, chain, outcome, net_wei) VALUES (?, ?, ?, ?)",
                (op.kind, chain, op.outcome, str(net)),
            )

    def open_journal(self) -> None:
        """An in-memory trade journal; open it after ``configure()`` so that its sqlite3
        instrumentation (if on) traces the queries."""
        self.journal = sqlite3.connect(":memory:")
        self.journal.cursor().execute(
            "CREATE TABLE trades (kind TEXT, chain TEXT, outcome TEXT, net_wei TEXT)"
        )

    def journal_size(self) -> int:
        """Trades booked so far, read back from the journal (0 without one)."""
        if self.journal is None:
            return 0
        row = self.journal.cursor().execute("SELECT COUNT(*) FROM trades").fetchone()
        return int(row[0]) if row else 0

    def _swap_helper(self, key: str) -> Any:
        """The exchange helper of one pool: a swap decorated with mevobs.swap."""
        pool = self.pools[key]
        helper = self.wrappers.get(key)
        if helper is not None:
            return helper

        @mevobs.swap(exchange=pool.exchange, chain=pool.chain, pool=pool.address)
        async def swap(token_in: str, amount_in: int, expected_out: int) -> mevobs.SwapResult:
            tx = await with_retries(
                lambda: self.node.send_raw_transaction(
                    pool.chain, SWAP_GAS[pool.exchange], b"\x02signed", pool.exchange
                )
            )
            receipt = await with_retries(lambda: self.node.receipt(pool.chain, tx, pool.exchange))
            out = pool.swap(token_in, amount_in) if receipt["status"] == 1 else 0
            conditions = self.node.conditions
            cut = conditions.lookup(conditions.sandwich_bp, pool.exchange, 0.0)
            if cut > 0:  # a sandwich around the swap: the attacker keeps part of the output
                out -= out * round(min(cut, 10_000) * 100) // 1_000_000
            usd = notional_usd(token_in, amount_in)
            return mevobs.SwapResult(
                tx_hash=receipt["transactionHash"],
                block_number=receipt["blockNumber"],
                status=receipt["status"],
                to=receipt["to"],
                gas_used=receipt["gasUsed"],
                effective_gas_price_wei=receipt["effectiveGasPrice"],
                gas_used_for_l1=receipt.get("gasUsedForL1"),
                token_in=token_in,
                token_out=other(pool, token_in),
                amount_in=amount_in,
                amount_out=out,
                expected_amount_out=expected_out,
                notional_eth=usd / ETH_USD,
                notional_usd=usd,
            )

        self.wrappers[key] = swap
        return swap

    # ------------------------------------------------------------- market

    def noise(self) -> None:
        """Other traders move the prices: a random swap on every pool.

        They lean against a price that is off the reference (the wider market's): the
        further off, the likelier they sell the dear token (up to 90 %), so prices
        wander around the reference instead of drifting away from it for good."""
        for pool in self.pools.values():
            lean = max(-0.4, min(0.4, deviation_bp(pool) / 2_000))
            token_in = pool.token0 if self.rng.random() < 0.5 + lean else pool.token1
            size = self.rng.lognormvariate(0, 1.0)
            amount = int(size * (E18 if token_in == WETH else 2_000 * E6))
            pool.swap(token_in, amount)

    def report_market(self) -> None:
        """What a bot watches besides its trades: pool liquidity and price deviation."""
        for pool in self.pools.values():
            name = f"{pool.token0}/{pool.token1}"
            mevobs.record_pool_liquidity(name, tvl_usd(pool), exchange=pool.exchange, chain=pool.chain)
            mevobs.record_price_deviation(name, deviation_bp(pool), exchange=pool.exchange, chain=pool.chain)

    def quote_cycle(self, legs: Sequence[tuple[str, str]], amount_in: int) -> int:
        amount = amount_in
        for key, token in legs:
            amount = self.pools[key].quote(token, amount)
        return amount

    def best_input(self, legs: Sequence[tuple[str, str]], hint: int = MIN_IN) -> tuple[int, int] | None:
        """(input, output) of the most profitable input in [MIN_IN, MAX_IN], to within
        2**-10 of the input, or None if no input pays.

        Profit is concave in the input (every pool's output is) and zero at zero, so a
        loss at MIN_IN means a loss everywhere: most cycles cost one quote. Otherwise
        doubling or halving from ``hint`` (last block's answer) brackets the optimum
        within a factor of 4 and a golden-section search narrows it: about 20 quotes
        where a plain ternary search over the whole range needs 120."""
        outs = {MIN_IN: self.quote_cycle(legs, MIN_IN)}
        if outs[MIN_IN] <= MIN_IN:
            return None

        def profit(x: int) -> int:
            out = outs.get(x)
            if out is None:
                out = outs[x] = self.quote_cycle(legs, x)
            return out - x

        b = min(max(hint, MIN_IN), MAX_IN)
        if b < MAX_IN and profit(min(2 * b, MAX_IN)) > profit(b):
            while b < MAX_IN and profit(min(2 * b, MAX_IN)) > profit(b):
                b = min(2 * b, MAX_IN)
        else:
            while b > MIN_IN and profit(max(b // 2, MIN_IN)) > profit(b):
                b = max(b // 2, MIN_IN)
        # Unimodal profit, and b beats both neighbours: the optimum is in [b/2, 2b].
        lo, hi = max(MIN_IN, b // 2), min(MAX_IN, 2 * b)
        c, d = hi - (hi - lo) * _GOLDEN // 10**6, lo + (hi - lo) * _GOLDEN // 10**6
        while hi - lo > b >> _RESOLUTION_BITS:
            if profit(c) > profit(d):  # the optimum is left of d
                hi, d = d, c
                c = hi - (hi - lo) * _GOLDEN // 10**6
            else:
                lo, c = c, d
                d = lo + (hi - lo) * _GOLDEN // 10**6
        best = max(sorted(outs), key=lambda x: outs[x] - x)  # ties: the smallest input
        return best, outs[best]

    def scan(self) -> list[Opportunity]:
        """The profitable cycles, each at its best input."""
        found = []
        for name, legs in CYCLES.items():
            best = self.best_input(legs, self.hints.get(name, MIN_IN))
            if best is not None:
                self.hints[name] = best[0]
                found.append(Opportunity(name, self.pools[legs[0][0]].chain, best[0], best[1], legs))
        return found

    # ------------------------------------------------------------ execute

    async def pursue(self, opp: Opportunity, base_fee_wei: int) -> None:
        """Take one opportunity through the funnel: detected, simulated, submitted, included."""
        strategy = STRATEGY[opp.cycle]
        arb = None
        try:
            async with mevobs.arbitrage(strategy=strategy, chain=opp.chain, breaker=self.breaker) as arb:
                await self._pursue(arb, opp, base_fee_wei)
        except mevobs.CircuitOpenError:
            self.refused += 1  # halted: the opportunity is left alone
        finally:
            if arb is not None:
                self._book(arb, opp.chain)

    async def _pursue(self, arb: mevobs.Operation, opp: Opportunity, base_fee_wei: int) -> None:
        self._stage(arb, "detected")
        gas_estimate = sum(SWAP_GAS[self.pools[k].exchange] for k, _ in opp.legs) * base_fee_wei
        if opp.gross_wei <= gas_estimate:
            self._stage(arb, "missed")
            arb.set_outcome("skipped")
            return
        # Simulated against the state now, not the scan's: an earlier opportunity of this
        # block may have moved a pool this one trades (no random draw either way).
        simulated = await with_retries(
            lambda: self.node.call(opp.chain, self.quote_cycle(opp.legs, opp.amount_in))
        )
        self._stage(arb, "simulated")
        arb.record_profit(expected_wei=simulated - opp.amount_in)
        self._stage(arb, "submitted")
        amount = opp.amount_in
        for key, token in opp.legs:
            expected = self.pools[key].quote(token, amount)
            result = await self._swap_helper(key)(token, amount, expected)
            if result.status == 0:
                arb.record_tx(tx_hash=result.tx_hash, status=0)  # the bundle reverted
                self._stage(arb, "missed")
                return
            amount = result.amount_out or 0
        self._stage(arb, "included")
        gross = amount - opp.amount_in
        arb.record_profit(gross_wei=gross, usd=gross * ETH_USD / E18)
        if gross > arb.total_gas_cost_wei:
            self._stage(arb, "profitable")

    async def manage_liquidity(self) -> None:
        """Now and then, add to or remove from a pool (the liquidity operations)."""
        key = self.rng.choice(("uniswap_v2", "sushiswap", "uniswap_v3", "curve"))
        pool = self.pools[key]
        action: Literal["add", "remove"] = "add" if self.rng.random() < 0.6 else "remove"
        op = None
        try:
            async with mevobs.liquidity(exchange=pool.exchange, action=action, chain=pool.chain) as op:
                await self._liquidity(op, pool, action)
        finally:
            if op is not None:
                self._book(op, pool.chain)

    async def _liquidity(self, op: mevobs.Operation, pool: Pool, action: str) -> None:
        tx = await with_retries(
            lambda: self.node.send_raw_transaction(pool.chain, 180_000, b"\x02lp", pool.exchange)
        )
        receipt = await with_retries(lambda: self.node.receipt(pool.chain, tx, pool.exchange))
        op.record_tx(
            tx_hash=receipt["transactionHash"],
            block_number=receipt["blockNumber"],
            status=receipt["status"],
            to=receipt["to"],
        )
        op.record_gas(gas_used=receipt["gasUsed"], effective_gas_price_wei=receipt["effectiveGasPrice"])
        if receipt["status"] != 1:
            return
        if action == "add":
            a0 = 5 * E18 if pool.token0 == WETH else 10_000 * E6
            a1 = 20_000 * E6 if pool.token0 == WETH else a0
            used0, used1, minted = pool.add_liquidity(a0, a1)
            op.record_liquidity(pool=pool.address, amount0=used0, amount1=used1, liquidity=minted)
        else:
            units = pool.shares // 1000
            amount0, amount1 = pool.remove_liquidity(units)
            op.record_liquidity(pool=pool.address, amount0=amount0, amount1=amount1, liquidity=units)

    def apply(self, conditions: Conditions) -> None:
        """What the block's conditions do to the market and the bot (nothing by default;
        no random draws, so the seed's stream is the same with or without them)."""
        for key, share in conditions.liquidity_drain.items():
            pool = self.pools[key]
            pool.remove_liquidity(pool.shares * round(min(max(share, 0.0), 1.0) * 10**6) // 10**6)
        for key, cap in conditions.liquidity_cap_usd.items():
            pool = self.pools[key]
            tvl = tvl_usd(pool)
            if tvl > cap:
                pool.remove_liquidity(pool.shares * round((1 - max(cap, 0.0) / tvl) * 10**6) // 10**6)
        for key, bp in conditions.price_push_bp.items():
            pool = self.pools[key]
            # Selling token0 lowers its price; trading bp/2 of the side sold moves it about bp.
            token_in = pool.token0 if bp < 0 else pool.token1
            held = pool.amounts()[0 if token_in == pool.token0 else 1]
            pool.swap(token_in, held * round(min(abs(bp), 10_000)) // 20_000)
        if conditions.retain_bytes > 0:
            self.ballast.append(bytes(conditions.retain_bytes))

    def outside_arbitrage(self, conditions: Conditions) -> None:
        """Traders arbitraging against the wider market bring each pool back within the
        conditions' band of its reference (after the other traders moved it; nothing by
        default, and never a random draw)."""
        band, offsets = conditions.reference_band_bp, conditions.reference_offset_bp
        if band is None and not offsets:
            return
        for key, pool in self.pools.items():
            if band is None and key not in offsets:
                continue
            centre, width = offsets.get(key, 0.0), band or 0.0
            dev = deviation_bp(pool)
            if abs(dev - centre) > width + 0.5:
                move_price(pool, centre + width if dev > centre else centre - width)

    async def tick(self, chains: dict[str, Chain], conditions: Conditions | None = None) -> None:
        """One block: prices move, the bot scans and pursues what it finds."""
        for chain in chains.values():
            chain.next_block(self.rng)
        if conditions is not None:
            self.apply(conditions)
        self.noise()
        if conditions is not None:
            self.outside_arbitrage(conditions)
        self.report_market()
        try:
            await with_retries(lambda: self.node.block_number("ethereum"))
        except (RpcError, TimeoutError):
            return  # no fresh block: skip this tick
        for opp in self.scan():
            # A failed arbitrage is recorded as such; the bot moves on.
            with contextlib.suppress(RpcError, TimeoutError):
                await self.pursue(opp, chains[opp.chain].base_fee_wei)
        if self.rng.random() < 0.25:
            with contextlib.suppress(RpcError, TimeoutError):
                await self.manage_liquidity()


def make_chains() -> dict[str, Chain]:
    return {
        "ethereum": Chain("ethereum", base_fee_wei=12 * GWEI),
        "arbitrum": Chain("arbitrum", base_fee_wei=GWEI // 100, l1_fee_per_tx_wei=40_000 * GWEI),
    }
