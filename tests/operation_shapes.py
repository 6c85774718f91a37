"""The shapes of a finished operation the exporters' shortcuts are checked against.

One decorated function per shape, made fresh on each call of :func:`shapes` (so each
test starts with cold per-spec caches): a plain success, an RPC call, a failure, an
operation with recorded attributes (one not primitive, one repeating a static
attribute), a parent with two children, and an explicit outcome.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import mevobs


def shapes() -> dict[str, Callable[[], object]]:
    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def plain(x: int) -> int:
        return x

    @mevobs.rpc(method="eth_call", chain="arbitrum")
    def call() -> None:
        pass

    @mevobs.swap(exchange="curve", chain="ethereum")
    def fails() -> None:
        raise ValueError("no route")

    @mevobs.swap(exchange="camelot", chain="arbitrum")
    def with_attrs() -> None:
        op = mevobs.current_operation()
        assert op is not None
        op.set_attribute("bot.route", "weth-usdc")
        op.set_attribute("bot.hops", [1, 2])  # not primitive: OTLP writes it as text
        op.set_attribute("mev.exchange", "camelot_v3")  # repeats a static attribute

    @mevobs.arbitrage(strategy="triangle", chain="ethereum")
    def nested() -> None:
        plain(1)
        call()

    @mevobs.swap(exchange="sushiswap", chain="ethereum")
    def skipped() -> None:
        op = mevobs.current_operation()
        assert op is not None
        op.set_outcome("skipped")

    def failing() -> None:
        with contextlib.suppress(ValueError):
            fails()

    return {
        "plain": lambda: plain(1),
        "rpc": call,
        "failed": failing,
        "attributes": with_attrs,
        "nested": nested,
        "skipped": skipped,
    }
