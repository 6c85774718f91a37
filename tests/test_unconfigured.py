"""Without configure(): identical results, nothing printed, nothing new raised, no SDK imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import mevobs

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap(x):
        op = mevobs.current_operation()
        op.record_gas(gas_used=21000, effective_gas_price_wei=10**9)
        op.record_tx(tx_hash="0x" + "11" * 32, status=0)
        return x + 1

    @mevobs.rpc(method="eth_call")
    async def call():
        await asyncio.sleep(0)
        raise TimeoutError("slow node")

    @mevobs.arbitrage(strategy="s")
    def stream():
        yield from range(3)

    assert swap(1) == 2
    assert list(stream()) == [0, 1, 2]
    try:
        asyncio.run(call())
    except TimeoutError as exc:
        assert str(exc) == "slow node"
    else:
        raise AssertionError("exception swallowed")
    with mevobs.liquidity(exchange="curve", action="add") as op:
        op.record_liquidity(pool="0xabc", amount0=1)
    loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))
    assert not loaded, loaded
    """
)


def test_unconfigured_calls_print_nothing_and_import_no_sdk() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == ""
