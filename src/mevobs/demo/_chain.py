"""A simulated chain and RPC node: EIP-1559 fees, Arbitrum L1 data fees, receipts, reverts,
latency, timeouts and HTTP 429 rate limiting, all driven by one seeded RNG.

The RPC calls are decorated with ``mevobs.rpc``: they are the demo's API
response-time and error telemetry.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field
from math import isqrt
from typing import Any

import mevobs
from mevobs import semconv
from mevobs.demo._conditions import Conditions

#: The router every simulated transaction goes to (the allowlisted contract).
ROUTER = "0x" + "77" * 20
#: Where a misdirected transaction goes (see ``Conditions.misdirected_txs``).
STRANGER = "0x" + "66" * 20

GWEI = 10**9
#: Receipts kept for the bot to fetch; older ones are forgotten (bounded memory).
MAX_PENDING = 1024


class RpcError(Exception):
    """A JSON-RPC or HTTP failure as a provider reports it."""

    def __init__(self, message: str, *, status_code: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


@dataclass
class Chain:
    """Block production and fee market of one chain."""

    name: str
    base_fee_wei: int
    gas_target: int = 15_000_000
    l1_fee_per_tx_wei: int = 0  # Arbitrum: L1 data fee, paid through gas_used_for_l1
    block_number: int = 21_000_000
    gas_in_block: int = 0
    nonce: int = 0
    #: The fee other users are used to (default: the starting base fee).
    usual_fee_wei: int = 0

    def __post_init__(self) -> None:
        self.usual_fee_wei = self.usual_fee_wei or self.base_fee_wei

    def next_block(self, rng: random.Random) -> None:
        """EIP-1559: the base fee moves by up to 1/8 towards the gas target.

        Other users send less when the fee is above its usual level and more below it
        (demand falls with the square root of the fee), so over a long run the fee
        wanders around that level; without it, the bot's own gas on top of a demand
        centred on the target made the fee climb for good (from 12 to 9000 gwei in
        11 000 blocks)."""
        demand = rng.randint(8_000_000, 22_000_000)
        demand = demand * isqrt(self.usual_fee_wei * 10**12 // self.base_fee_wei) // 10**6
        used = min(2 * self.gas_target, self.gas_in_block + demand)  # the block gas limit
        delta = self.base_fee_wei * (used - self.gas_target) // self.gas_target // 8
        self.base_fee_wei = max(GWEI // 100, self.base_fee_wei + delta)
        self.block_number += 1
        self.gas_in_block = 0


@dataclass
class Node:
    """One simulated RPC provider with latency, timeouts and a rate limit.

    ``exchange`` arguments say on whose behalf a call is made (for the scenario
    conditions); they are not recorded."""

    rng: random.Random
    chains: dict[str, Chain]
    time_scale: float = 1.0
    fail_rate: float = 0.0
    rate_limit_p: float = 0.03
    timeout_p: float = 0.01
    #: False: latency is drawn (the random stream stays the same) but not slept.
    paced: bool = True
    conditions: Conditions = field(default_factory=Conditions)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def _latency(self, method: str, chain: str, exchange: str) -> None:
        """Simulated network time; failures are decided by the RNG, not the clock."""
        # The chain is an argument, not known at decoration: label the running rpc operation.
        mevobs.current_operation().set_attribute(semconv.ATTR_CHAIN, chain)
        roll = self.rng.random()
        latency = self.rng.lognormvariate(-4.0, 0.6)  # ~18 ms median
        conditions = self.conditions
        if self.paced:
            factor = conditions.lookup(conditions.rpc_latency_factor, exchange, 1.0)
            await asyncio.sleep(min(latency, 0.25) * self.time_scale * factor)
        rate_limit_p = self.rate_limit_p if conditions.rate_limit_rate is None else conditions.rate_limit_rate
        if roll < rate_limit_p:
            raise RpcError("429 Too Many Requests", status_code=429)
        if roll < rate_limit_p + self.timeout_p:
            raise TimeoutError(f"{method} timed out after 2.0 s")
        extra = conditions.lookup(conditions.rpc_failure_rate, exchange, 0.0)
        if extra > 0 and self.rng.random() < extra:  # no draw when neutral: the stream is unchanged
            raise RpcError("503 Service Unavailable", status_code=503)

    @mevobs.rpc(method="eth_blockNumber", provider="sim://node-1")
    async def block_number(self, chain: str) -> int:
        await self._latency("eth_blockNumber", chain, "")
        return self.chains[chain].block_number

    @mevobs.rpc(method="eth_call", provider="sim://node-1")
    async def call(self, chain: str, quote: int) -> int:
        """Simulate a transaction against the current state; returns the simulated output."""
        await self._latency("eth_call", chain, "")
        return quote

    @mevobs.rpc(method="eth_sendRawTransaction", provider="sim://node-1")
    async def send_raw_transaction(
        self, chain: str, gas_estimate: int, raw: bytes, exchange: str = ""
    ) -> str:
        await self._latency("eth_sendRawTransaction", chain, exchange)
        c = self.chains[chain]
        c.nonce += 1
        tx_hash = "0x" + hashlib.sha256(f"{chain}/{c.nonce}".encode()).hexdigest()
        conditions = self.conditions
        revert_rate = self.fail_rate if conditions.revert_rate is None else conditions.revert_rate
        reverted = self.rng.random() < revert_rate
        gas_used = gas_estimate if not reverted else gas_estimate * self.rng.randint(30, 70) // 100
        priority = self.rng.randint(1, 30) * GWEI // 10
        if conditions.priority_fee_factor != 1.0:
            priority = int(priority * conditions.priority_fee_factor)
        self.sent[tx_hash] = {
            "transactionHash": tx_hash,
            "blockNumber": c.block_number + 1,
            "status": 0 if reverted else 1,
            "gasUsed": gas_used,
            "effectiveGasPrice": c.base_fee_wei + (priority if not c.l1_fee_per_tx_wei else 0),
            "to": ROUTER,
        }
        if conditions.misdirected_txs > 0:
            conditions.misdirected_txs -= 1
            self.sent[tx_hash]["to"] = STRANGER
        if c.l1_fee_per_tx_wei:
            # Arbitrum folds the L1 data fee into gas used: a breakdown, not an addition.
            l1_gas = c.l1_fee_per_tx_wei // c.base_fee_wei
            self.sent[tx_hash]["gasUsed"] = gas_used + l1_gas
            self.sent[tx_hash]["gasUsedForL1"] = l1_gas
        c.gas_in_block += gas_used
        if len(self.sent) > MAX_PENDING:  # receipts nobody fetched (every attempt failed)
            del self.sent[next(iter(self.sent))]
        return tx_hash

    @mevobs.rpc(method="eth_getTransactionReceipt", provider="sim://node-1")
    async def receipt(self, chain: str, tx_hash: str, exchange: str = "") -> dict[str, Any]:
        await self._latency("eth_getTransactionReceipt", chain, exchange)
        return self.sent.pop(tx_hash)
