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


LEAN_SCRIPT = textwrap.dedent(
    """
    import sys
    import mevobs
    from mevobs._state import STATE

    assert STATE.lane is not None and STATE.lane is not STATE.fast  # the lean lane
    GWEI = 10**9
    handles = {}

    @mevobs.swap(exchange="uniswap_v2")
    def leg(gas):
        mevobs.current_operation().record_gas(gas_used=gas, effective_gas_price_wei=20 * GWEI)

    @mevobs.swap(exchange="sushiswap")
    def quiet():
        return "nothing recorded"

    @mevobs.arbitrage(strategy="cross_dex")
    def arb():
        leg(120_000)          # the child materializes its parent to hand its gas up
        assert quiet() == "nothing recorded"
        leg(90_000)
        op = handles["arb"] = mevobs.current_operation()
        op.record_profit(gross_eth="0.05")
        return op

    @mevobs.arbitrage(strategy="deep")
    def deep(n):
        if n:
            return deep(n - 1)
        return mevobs.current_operation()   # materializes every pending level above

    op = arb()
    assert op is handles["arb"] and op.outcome == "success"
    assert op.total_gas_cost_wei == 210_000 * 20 * GWEI
    assert op.net_profit_wei == 5 * 10**16 - 210_000 * 20 * GWEI
    bottom = deep(900)
    levels = 0
    while bottom is not None:
        assert bottom.kind == "arbitrage"
        levels, bottom = levels + 1, bottom._parent
    assert levels == 901
    assert mevobs.current_operation() is mevobs._operation.NOOP_OPERATION
    """
)


def test_lean_lane_handles_appear_when_asked_and_roll_up_exactly() -> None:
    """Unconfigured, a decorated call creates its operation only when something asks for
    it: a child that records gas hands it to the parent exactly, current_operation()
    inside returns the same finished handle, and 900 nested levels materialize in a loop
    (no RecursionError at the bottom of a deep stack)."""
    proc = subprocess.run([sys.executable, "-c", LEAN_SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
