"""A plain success is finished from its spec's cached slots; anything that touches an
operation still settles it in full, even after plain calls of the same spec.

The fast lane keeps, per spec, the slot bundle of a call that recorded nothing
(``OperationSpec._plain``) and skips settling for the next such call. These tests
call a spec plainly first, so the cache is warm, then touch an operation in each
way the cache must not hide: a recorder, an exception, a child's roll-up, a hook.
"""

from __future__ import annotations

from typing import Any

import pytest

import mevobs
from mevobs import semconv
from mevobs.testing import capture

GAS = 21_000
PRICE = 10**9


@mevobs.swap(exchange="uniswap_v2", chain="ethereum")
def _swap(gas: int = 0, gross_wei: int | None = None) -> int:
    op = mevobs.current_operation()
    if gas:
        op.record_gas(gas_used=gas, effective_gas_price_wei=PRICE)
    if gross_wei is not None:
        op.record_profit(gross_wei=gross_wei)
    return gas


@mevobs.arbitrage(strategy="plain-cache")
def _arbitrage(gas: int = 0, gross_wei: int | None = None) -> int:
    return _swap(gas, gross_wei)


def test_a_recorder_after_plain_calls_records_gas_and_cost() -> None:
    with capture() as cap:
        for _ in range(3):
            _swap()
        _swap(GAS)
        _swap()
        cap.flush()
        assert cap.histogram_count(semconv.OPERATION_DURATION.name, operation="swap") == 5
        assert cap.histogram_count(semconv.GAS_USED.name) == 1
        assert cap.counter_value(semconv.GAS_COST.name) == pytest.approx(GAS * PRICE / 10**18)


def test_an_exception_after_plain_calls_is_a_failure() -> None:
    @mevobs.swap(exchange="sushiswap", chain="ethereum")
    def flaky(fail: bool) -> None:
        if fail:
            raise RuntimeError("boom")

    with capture() as cap:
        flaky(False)
        flaky(False)
        with pytest.raises(RuntimeError, match="boom"):
            flaky(True)
        cap.flush()
        assert cap.histogram_count(semconv.OPERATION_DURATION.name, outcome="success") == 2
        assert cap.histogram_count(semconv.OPERATION_DURATION.name, outcome="failure") == 1


def test_a_child_roll_up_after_plain_parent_calls_settles_the_parent_profit() -> None:
    with capture() as cap:
        _arbitrage()
        _arbitrage()
        _arbitrage(GAS, gross_wei=10**18)
        cap.flush()
        net_eth = (10**18 - GAS * PRICE) / 10**18
        # Profit is counted once, at the root, from the child's roll-up.
        assert cap.counter_value(semconv.PROFIT.name) == pytest.approx(net_eth)
        roots = cap.find_spans("arbitrage plain-cache")
        assert [(r.attributes or {}).get(semconv.ATTR_PROFIT_NET_WEI) for r in roots] == [
            None,
            None,
            str(10**18 - GAS * PRICE),
        ]


def test_a_hook_added_after_plain_calls_sees_every_call() -> None:
    seen: list[Any] = []
    with capture():
        _swap()  # the spec's plain-success cache is warm
    with capture(hooks=[seen.append]):
        _swap()
        _swap()
    assert len(seen) == 2
    with capture():
        _swap()
    assert len(seen) == 2  # the hook is gone with its capture


def test_a_hook_that_wants_none_of_a_spec_facts_leaves_its_calls_plain() -> None:
    class ProfitOnly:
        fact_mask = 1 << 30  # no spec carries this fact

        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, op: Any) -> None:
            self.calls += 1

    hook = ProfitOnly()
    with capture(hooks=[hook]) as cap:
        for _ in range(4):
            _swap()
        cap.flush()
        assert hook.calls == 0
        assert cap.histogram_count(semconv.OPERATION_DURATION.name, operation="swap") == 4
