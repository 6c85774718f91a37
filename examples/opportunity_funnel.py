"""The opportunity funnel: detected, simulated, submitted, included, profitable or missed.

Run: python examples/opportunity_funnel.py
"""

from __future__ import annotations

import asyncio
import random

import mevobs

GWEI = 10**9


@mevobs.swap(exchange="uniswap_v3", chain="ethereum")
async def leg(reverts: bool) -> dict[str, int | str]:
    await asyncio.sleep(0.005)
    return {
        "transactionHash": "0x" + "b1" * 32,
        "status": 0 if reverts else 1,
        "gasUsed": 140_000,
        "effectiveGasPrice": 12 * GWEI,
    }


async def pursue(rng: random.Random, expected_profit_wei: int) -> None:
    async with mevobs.arbitrage(strategy="triangular", chain="ethereum") as arb:
        arb.record_opportunity("detected")
        if expected_profit_wei < 140_000 * 12 * GWEI:  # not worth the gas
            arb.record_opportunity("missed")
            arb.set_outcome("skipped")
            return
        arb.record_opportunity("simulated")
        arb.record_profit(expected_wei=expected_profit_wei)
        arb.record_opportunity("submitted")
        receipt = await leg(reverts=rng.random() < 0.2)
        if receipt["status"] == 0:
            arb.record_tx(tx_hash=receipt["transactionHash"], status=0)
            arb.record_opportunity("missed")
            return
        arb.record_opportunity("included")
        arb.record_profit(gross_wei=expected_profit_wei)
        if arb.total_gas_cost_wei < expected_profit_wei:
            arb.record_opportunity("profitable")


async def main() -> None:
    rng = random.Random(7)
    for _ in range(10):
        await pursue(rng, rng.randint(10**14, 10**16))


if __name__ == "__main__":
    with mevobs.configure(service_name="funnel", exporter="console", log_destination="none"):
        asyncio.run(main())
