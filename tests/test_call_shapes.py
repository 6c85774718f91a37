"""Every call shape, for every operation kind: spans, histograms, counters and logs agree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

import mevobs
from mevobs.testing import Captured

GAS = {"gas_used": 100_000, "effective_gas_price_wei": 2_000_000_000}
GAS_ETH = 100_000 * 2_000_000_000 / 10**18

KINDS: dict[str, tuple[Callable[[], mevobs.OperationWrapper], str]] = {
    "swap": (lambda: mevobs.swap(exchange="uniswap_v2", chain="ethereum"), "swap uniswap_v2"),
    "liquidity": (
        lambda: mevobs.liquidity(exchange="curve", action="add", chain="ethereum"),
        "liquidity curve",
    ),
    "arbitrage": (lambda: mevobs.arbitrage(strategy="triangular", chain="arbitrum"), "arbitrage triangular"),
    "rpc": (
        lambda: mevobs.rpc(method="eth_sendRawTransaction", provider="local"),
        "rpc eth_sendRawTransaction",
    ),
}


def _record() -> None:
    mevobs.current_operation().record_gas(**GAS)


def assert_one_operation(tel: Captured, span_name: str, outcome: str) -> None:
    """One span, one duration point, the gas counter and one log, all tied to one trace."""
    span = tel.span(span_name)
    assert span.attributes is not None
    assert span.attributes["mev.outcome"] == outcome
    kind = span.attributes["mev.operation"]
    assert tel.histogram_count("mev.operation.duration", operation=kind, outcome=outcome) == 1
    logs = [entry for entry in tel.logs if entry.message.startswith(span_name)]
    assert len(logs) == 1
    assert logs[0].trace_id == format(span.context.trace_id, "032x")
    assert logs[0].span_id == format(span.context.span_id, "016x")
    otel_logs = [r for r in tel.otel_logs if str(r.log_record.body).startswith(span_name)]
    assert otel_logs[0].log_record.trace_id == span.context.trace_id


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestSuccessfulShapes:
    def test_sync_function_returns_its_value_and_records_gas(
        self, kind: str, mevobs_telemetry: Captured
    ) -> None:
        factory, name = KINDS[kind]

        @factory()
        def call(x: int) -> int:
            _record()
            return x * 2

        assert call(21) == 42
        assert_one_operation(mevobs_telemetry, name, "success")
        assert mevobs_telemetry.counter_value("mev.gas.cost", operation=kind) == pytest.approx(GAS_ETH)
        assert mevobs_telemetry.histogram_sum("mev.gas.used", operation=kind) == 100_000

    def test_async_duration_includes_the_awaits(self, kind: str, mevobs_telemetry: Captured) -> None:
        factory, name = KINDS[kind]

        @factory()
        async def call() -> str:
            await asyncio.sleep(0.05)
            _record()
            return "done"

        assert asyncio.iscoroutinefunction(call)
        assert asyncio.run(call()) == "done"
        assert_one_operation(mevobs_telemetry, name, "success")
        assert mevobs_telemetry.histogram_sum("mev.operation.duration", operation=kind) >= 0.05

    def test_instance_class_and_static_methods(self, kind: str, mevobs_telemetry: Captured) -> None:
        factory, name = KINDS[kind]

        class Helper:
            scale = 3

            def __init__(self) -> None:
                self.offset = 1

            @factory()
            def instance(self, x: int) -> int:
                _record()
                return x + self.offset

            @factory()
            @classmethod
            def klass(cls, x: int) -> int:
                return x * cls.scale

            @factory()
            @staticmethod
            def static(x: int) -> int:
                return -x

        helper = Helper()
        assert helper.instance(1) == 2
        assert Helper.klass(2) == 6
        assert helper.klass(2) == 6
        assert Helper.static(5) == -5
        assert mevobs_telemetry.histogram_count("mev.operation.duration", operation=kind) == 4
        assert len([s for s in mevobs_telemetry.spans if s.name == name]) == 4

    def test_generator_is_one_operation_spanning_the_iteration(
        self, kind: str, mevobs_telemetry: Captured
    ) -> None:
        factory, name = KINDS[kind]

        @factory()
        def stream(n: int) -> Iterator[int]:
            _record()
            yield from range(n)

        assert list(stream(3)) == [0, 1, 2]
        assert_one_operation(mevobs_telemetry, name, "success")
        # Outside the generator's own frames, nothing of it stays current.
        assert not mevobs.current_operation().active

    def test_async_generator(self, kind: str, mevobs_telemetry: Captured) -> None:
        factory, name = KINDS[kind]

        @factory()
        async def stream(n: int) -> AsyncIterator[int]:
            for i in range(n):
                await asyncio.sleep(0)
                yield i

        async def main() -> list[int]:
            return [i async for i in stream(3)]

        assert asyncio.run(main()) == [0, 1, 2]
        assert_one_operation(mevobs_telemetry, name, "success")

    def test_with_and_async_with_blocks(self, kind: str, mevobs_telemetry: Captured) -> None:
        factory, _name = KINDS[kind]
        wrapper = factory()
        with wrapper as op:
            op.record_gas(**GAS)
            assert mevobs.current_operation() is op

        async def main() -> None:
            async with wrapper as op2:
                await asyncio.sleep(0.01)
                op2.record_gas(**GAS)

        asyncio.run(main())
        assert mevobs_telemetry.histogram_count("mev.operation.duration", operation=kind) == 2
        assert mevobs_telemetry.counter_value("mev.gas.cost", operation=kind) == pytest.approx(2 * GAS_ETH)


class TestFailures:
    def test_exception_is_recorded_then_reraised_unchanged(
        self, kind: str, mevobs_telemetry: Captured
    ) -> None:
        factory, name = KINDS[kind]
        boom = KeyError("pool")

        @factory()
        def call() -> None:
            raise boom

        with pytest.raises(KeyError) as info:
            call()
        assert info.value is boom
        assert_one_operation(mevobs_telemetry, name, "failure")
        span = mevobs_telemetry.span(name)
        assert span.status.status_code.name == "ERROR"
        assert span.attributes is not None and span.attributes["error.type"] == "KeyError"
        assert [e.name for e in span.events] == ["exception"]
        log = next(e for e in mevobs_telemetry.logs if e.message.startswith(name))
        assert log.level == "ERROR" and log.exc_type == "KeyError"

    def test_async_exception(self, kind: str, mevobs_telemetry: Captured) -> None:
        factory, name = KINDS[kind]

        @factory()
        async def call() -> None:
            await asyncio.sleep(0)
            raise ValueError("bad quote")

        with pytest.raises(ValueError, match="bad quote"):
            asyncio.run(call())
        assert_one_operation(mevobs_telemetry, name, "failure")

    def test_generator_exception(self, kind: str, mevobs_telemetry: Captured) -> None:
        factory, name = KINDS[kind]

        @factory()
        def stream() -> Iterator[int]:
            yield 1
            raise RuntimeError("halfway")

        with pytest.raises(RuntimeError, match="halfway"):
            list(stream())
        assert_one_operation(mevobs_telemetry, name, "failure")

    def test_cancellation_is_recorded_as_cancelled_not_failure(
        self, kind: str, mevobs_telemetry: Captured
    ) -> None:
        factory, name = KINDS[kind]

        @factory()
        async def call() -> None:
            await asyncio.sleep(10)

        async def main() -> None:
            task = asyncio.create_task(call())
            await asyncio.sleep(0.01)
            task.cancel()
            await task

        with pytest.raises(asyncio.CancelledError):
            asyncio.run(main())
        assert_one_operation(mevobs_telemetry, name, "cancelled")
        span = mevobs_telemetry.span(name)
        assert span.status.status_code.name != "ERROR"

    def test_generator_closed_early_is_cancelled(self, kind: str, mevobs_telemetry: Captured) -> None:
        factory, name = KINDS[kind]

        @factory()
        def stream() -> Iterator[int]:
            yield from range(100)

        gen = stream()
        assert next(gen) == 0
        gen.close()
        assert_one_operation(mevobs_telemetry, name, "cancelled")

    def test_record_error_if_marks_a_returned_result_as_failure(self, mevobs_telemetry: Captured) -> None:
        @mevobs.swap(exchange="curve", record_error_if=lambda r: r.get("error") and "quote_failed")
        def call() -> dict[str, Any]:
            return {"error": True}

        assert call() == {"error": True}
        assert (
            mevobs_telemetry.histogram_count(
                "mev.operation.duration", outcome="failure", error_type="quote_failed"
            )
            == 1
        )


class TestNesting:
    def test_child_operations_are_child_spans(self, mevobs_telemetry: Captured) -> None:
        @mevobs.swap(exchange="uniswap_v3")
        async def leg() -> None:
            _record()

        @mevobs.arbitrage(strategy="two_leg")
        async def arb() -> None:
            await asyncio.gather(leg(), leg())

        asyncio.run(arb())
        parent = mevobs_telemetry.span("arbitrage two_leg")
        children = [s for s in mevobs_telemetry.spans if s.name == "swap uniswap_v3"]
        assert len(children) == 2
        for child in children:
            assert child.parent is not None and child.parent.span_id == parent.context.span_id
            assert child.context.trace_id == parent.context.trace_id

    def test_bare_decorator_form(self, mevobs_telemetry: Captured) -> None:
        @mevobs.swap
        def call() -> int:
            return 1

        assert call() == 1
        assert mevobs_telemetry.span("swap").attributes == {"mev.operation": "swap", "mev.outcome": "success"}


def test_log_records_point_at_the_decorated_function(mevobs_telemetry: Captured) -> None:
    """One wrapper decorating two functions: each log names its own function."""
    import logging

    seen: list[tuple[str, int]] = []

    class Where(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.funcName, record.lineno))

    uniswap = mevobs.swap(exchange="uniswap_v2")

    @uniswap
    def first() -> None:
        pass

    @uniswap
    def second() -> None:
        pass

    handler = Where()
    logging.getLogger("mevobs").addHandler(handler)
    try:
        first()
        second()
        mevobs_telemetry.flush()  # operation logs are written by the worker thread
    finally:
        logging.getLogger("mevobs").removeHandler(handler)
    assert [name for name, _ in seen] == ["first", "second"]
    assert seen[0][1] == first.__wrapped__.__code__.co_firstlineno  # type: ignore[attr-defined]
