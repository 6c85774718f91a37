"""Quick start: instrument a tiny arbitrage and print the telemetry it emits.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import contextlib

import mevobs

GWEI = 10**9


@mevobs.swap(exchange="uniswap_v2", chain="ethereum")
async def swap_weth_for_usdc(amount_in: int) -> mevobs.SwapResult:
    await asyncio.sleep(0.01)  # the RPC round trip
    return mevobs.SwapResult(
        tx_hash="0x" + "ab" * 32,
        block_number=21_000_000,
        status=1,
        gas_used=120_000,
        effective_gas_price_wei=18 * GWEI,
        token_in="WETH",
        token_out="USDC",
        amount_in=amount_in,
        amount_out=3_012_400_000,
        expected_amount_out=3_015_000_000,
    )


@mevobs.swap(exchange="sushiswap", chain="ethereum")
async def swap_usdc_for_weth(amount_in: int) -> mevobs.SwapResult:
    await asyncio.sleep(0.01)
    return mevobs.SwapResult(
        tx_hash="0x" + "cd" * 32,
        status=1,
        gas_used=110_000,
        effective_gas_price_wei=18 * GWEI,
        token_in="USDC",
        token_out="WETH",
        amount_in=amount_in,
        amount_out=1_006_000_000_000_000_000,
    )


@mevobs.arbitrage(strategy="cross_dex", chain="ethereum")
async def arbitrage(amount_in: int) -> int:
    op = mevobs.current_operation()
    op.record_opportunity("detected")
    first = await swap_weth_for_usdc(amount_in)
    second = await swap_usdc_for_weth(first.amount_out or 0)
    gross = (second.amount_out or 0) - amount_in
    op.record_profit(gross_wei=gross)
    op.record_opportunity("included")
    return gross


@mevobs.rpc(
    method="eth_blockNumber", provider="https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef"
)
async def block_number() -> int:
    raise ConnectionError("429 Too Many Requests")


async def main() -> None:
    gross = await arbitrage(10**18)
    # Rate limited: recorded as outcome=rate_limited, with the API key scrubbed.
    with contextlib.suppress(ConnectionError):
        await block_number()
    print(f"gross profit {mevobs.wei_to_eth(gross):.6f} ETH")


if __name__ == "__main__":
    with mevobs.configure(service_name="quickstart-bot", exporter="console", log_destination="stdout"):
        asyncio.run(main())
