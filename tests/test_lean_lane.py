"""The lean lane (nothing configured): a decorated call holds a placeholder, not an
operation, and still behaves like one wherever its handle is asked for.

The placeholder (``Pending``, a four-item list) is what the ``CURRENT`` context
variable holds during the call; these tests hold it to the operation semantics:
one handle per call, parents in call order across the lean and general paths,
contexts copied into threads and tasks, configure() called inside a lean call, and
results that must still be inspected after others were passed over as plain.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import metrics, trace

import mevobs
from mevobs import Operation
from mevobs._operation import NOOP_OPERATION
from mevobs._state import LEAN, LEAN_OWN, STATE
from mevobs.testing import capture

GWEI = 10**9


@pytest.fixture(autouse=True)
def _lean() -> None:
    """Every test here starts on the lean lane: no configure() and no OpenTelemetry
    provider, or mevobs's own providers after a shutdown (a test before this one)."""
    assert STATE.lane is LEAN_OWN or (
        STATE.lane is LEAN and trace._TRACER_PROVIDER is None and metrics._internal._METER_PROVIDER is None
    )


@mevobs.swap(exchange="uniswap_v2")
def leg(gas: int) -> Operation:
    op = mevobs.current_operation()
    op.record_gas(gas_used=gas, effective_gas_price_wei=GWEI)
    return op


def test_a_handle_is_the_same_within_a_call_and_new_for_each_call() -> None:
    @mevobs.swap(exchange="uniswap_v2")
    def swap() -> tuple[Operation, Operation]:
        return mevobs.current_operation(), mevobs.current_operation()

    first, again = swap()
    second, _ = swap()
    assert first is again and first is not second
    assert first.active and first.outcome == "success" and second.outcome == "success"
    assert mevobs.current_operation() is NOOP_OPERATION


def test_a_failed_lean_call_finishes_its_handle_as_a_failure() -> None:
    handles: list[Operation] = []

    @mevobs.swap(exchange="uniswap_v2")
    def swap() -> None:
        handles.append(mevobs.current_operation())
        raise ValueError("no route")

    with pytest.raises(ValueError, match="no route"):
        swap()
    assert handles[0].outcome == "failure" and handles[0].error_type == "ValueError"
    assert mevobs.current_operation() is NOOP_OPERATION


def test_a_context_copied_into_a_thread_sees_the_lean_call_and_rolls_up_to_it() -> None:
    """copy_context().run in a worker thread reads the running lean call as current, and a
    decorated call there is its child: its gas reaches the lean call's total."""

    @mevobs.arbitrage(strategy="threads")
    def arb() -> tuple[Operation, Operation, Operation]:
        with ThreadPoolExecutor(1) as pool:
            seen = pool.submit(contextvars.copy_context().run, mevobs.current_operation).result()
            child = pool.submit(contextvars.copy_context().run, leg, 100_000).result()
        return mevobs.current_operation(), seen, child

    op, seen, child = arb()
    assert seen is op and child._parent is op and child._depth == op._depth + 1 == 1
    assert op.total_gas_cost_wei == 100_000 * GWEI


def test_tasks_and_to_thread_started_inside_a_lean_call_are_its_children() -> None:
    """asyncio.run inside a lean call runs its task in a copy of the call's context, and
    asyncio.to_thread copies it again: both see the lean call as the parent."""

    async def main() -> Operation:
        await asyncio.to_thread(leg, 30_000)
        return await asyncio.to_thread(leg, 40_000)

    @mevobs.arbitrage(strategy="tasks")
    def arb() -> tuple[Operation, Operation]:
        return mevobs.current_operation(), asyncio.run(main())

    op, child = arb()
    assert child._parent is op
    assert op.total_gas_cost_wei == 70_000 * GWEI


def test_lean_calls_and_general_path_operations_nest_in_call_order() -> None:
    """A with-block and a generator take the general path (an Operation in CURRENT); lean
    calls inside them are their children, and they are children of the lean call around
    them, at the depth that follows."""

    @mevobs.swap(exchange="uniswap_v2")
    def inner() -> Operation:
        return mevobs.current_operation()

    @mevobs.arbitrage(strategy="stream")
    def stream() -> Iterator[Operation]:
        yield mevobs.current_operation()
        yield inner()

    @mevobs.arbitrage(strategy="outer")
    def outer() -> tuple[Operation, ...]:
        with mevobs.liquidity(exchange="curve", action="add") as block:
            in_block = inner()
        streamed, in_stream = list(stream())
        return mevobs.current_operation(), block, in_block, streamed, in_stream

    op, block, in_block, streamed, in_stream = outer()
    assert block._parent is op and in_block._parent is block
    assert streamed._parent is op and in_stream._parent is streamed
    assert (op._depth, block._depth, in_block._depth, streamed._depth, in_stream._depth) == (0, 1, 2, 1, 2)
    assert in_block.kind == in_stream.kind == "swap"
    assert mevobs.current_operation() is NOOP_OPERATION


def test_configure_inside_a_lean_call_parents_the_fast_operation() -> None:
    """A fast-lane call made after configure() ran inside a lean call has that lean call's
    operation as its parent (made on the spot), and the lean call still finishes it."""

    @mevobs.arbitrage(strategy="late")
    def arb() -> tuple[Operation, Operation]:
        with capture() as tel:
            child = leg(21_000)
            assert [s.name for s in tel.spans] == ["swap uniswap_v2"]
        return mevobs.current_operation(), child

    op, child = arb()
    assert child._parent is op and child._depth == 1
    assert op.outcome == "success"
    assert op.total_gas_cost_wei == 21_000 * GWEI


@pytest.mark.parametrize("lane", ["lean", "fast"])
@pytest.mark.parametrize(
    ("options", "results", "check"),
    [
        # Default extraction: after plain ints, a receipt-like mapping is still read.
        (
            {},
            [1, 2, {"gas_used": 21_000, "effective_gas_price": GWEI}, 3],
            lambda ops: [op.gas_used for op in ops] == [None, None, 21_000, None],
        ),
        # A predicate sees every result, plain types included.
        (
            {"record_error_if": lambda r: "zero" if r == 0 else None},
            [1, 0, 2, 0],
            lambda ops: [op.error_type for op in ops] == [None, "zero", None, "zero"],
        ),
    ],
)
def test_a_result_type_passed_over_as_plain_does_not_hide_later_results(
    lane: str, options: dict[str, Any], results: list[Any], check: Callable[[list[Operation]], bool]
) -> None:
    """The wrapper remembers the last result type it found plain (not worth inspecting);
    a result of another type, or any result when the spec always inspects, is inspected."""
    handles: list[Operation] = []

    @mevobs.swap(exchange="uniswap_v2", **options)
    def swap(result: Any) -> Any:
        handles.append(mevobs.current_operation())
        return result

    if lane == "fast":
        with capture():
            returned = [swap(r) for r in results]
    else:
        returned = [swap(r) for r in results]
    assert returned == results
    assert check(handles), [(op.gas_used, op.error_type) for op in handles]
