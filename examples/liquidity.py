"""Adding and removing liquidity, as the demo's pool managers do.

Run: python examples/liquidity.py
"""

from __future__ import annotations

import mevobs

GWEI = 10**9


@mevobs.liquidity(exchange="uniswap_v2", action="add", chain="ethereum")
def add_liquidity(amount0: int, amount1: int) -> mevobs.LiquidityResult:
    # ... router.addLiquidity(...) and wait for the receipt ...
    return mevobs.LiquidityResult(
        tx_hash="0x" + "a1" * 32,
        status=1,
        gas_used=180_000,
        effective_gas_price_wei=15 * GWEI,
        pool="0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc",
        amount0=amount0,
        amount1=amount1,
        liquidity=54_772_255_750_516,
    )


@mevobs.liquidity(exchange="curve", action="remove", chain="ethereum")
def remove_liquidity(lp_tokens: int) -> mevobs.LiquidityResult:
    return mevobs.LiquidityResult(
        tx_hash="0x" + "a2" * 32,
        status=0,
        gas_used=90_000,
        effective_gas_price_wei=15 * GWEI,
        liquidity=lp_tokens,
    )


if __name__ == "__main__":
    with mevobs.configure(service_name="lp-manager", exporter="none", log_destination="stdout"):
        add_liquidity(10**18, 3_000 * 10**6)
        remove_liquidity(10**18)  # reverted: its gas is booked as a loss
