"""Circuit breaker: every transition, the guarded wrapper, concurrency, telemetry."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import mevobs
from mevobs import semconv
from mevobs.testing import Captured


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**kwargs: Any) -> tuple[mevobs.CircuitBreaker, Clock, list[mevobs.Transition]]:
    clock = Clock()
    options: dict[str, Any] = {
        "max_failure_rate": 0.5,
        "window_seconds": 10,
        "min_calls": 4,
        "max_consecutive_failures": 3,
        "cooldown_seconds": 5,
    }
    options.update(kwargs)
    b = mevobs.CircuitBreaker("test", clock=clock, **options)
    changes: list[mevobs.Transition] = []
    b.on_change(changes.append)
    return b, clock, changes


def call(b: mevobs.CircuitBreaker, outcome: str = "success", net_wei: int | None = None) -> bool:
    """One guarded operation with the given outcome; False when the breaker refused it."""
    try:
        with mevobs.operation("swap", breaker=b) as op:
            if net_wei is not None:
                op.record_profit(gross_wei=net_wei)
            if outcome == "failure":
                raise ValueError("boom")
            if outcome != "success":
                op.set_outcome(outcome)
    except mevobs.CircuitOpenError:
        return False
    except ValueError:
        pass
    return True


class TestTransitions:
    def test_consecutive_failures_open_it(self) -> None:
        """closed -> open after max_consecutive_failures in a row; a success resets the streak."""
        b, _, changes = breaker(min_calls=100)
        call(b, "failure"), call(b, "failure"), call(b), call(b, "failure"), call(b, "reverted")
        assert b.state == "closed"
        call(b, "failure")
        assert b.state == "open"
        assert changes[-1].old == "closed" and changes[-1].new == "open"
        assert "3 consecutive failures" in changes[-1].reason

    def test_failure_rate_over_the_window_opens_it(self) -> None:
        """Above max_failure_rate once min_calls are in the window; old calls age out."""
        b, clock, _ = breaker(max_consecutive_failures=100)
        for outcome in ("failure", "success", "failure", "success"):
            call(b, outcome)
        assert b.state == "closed"  # 50 % is not above 50 %
        clock.now += 11  # the window forgets those four
        for outcome in ("failure", "failure", "success"):
            call(b, outcome)
        assert b.state == "closed"  # only three calls in the window
        call(b, "failure")
        assert b.state == "open" and "failure rate 75%" in b.reason

    def test_neutral_outcomes_do_not_count(self) -> None:
        """Cancelled and skipped calls are neither failures nor successes."""
        b, _, _ = breaker(max_consecutive_failures=2)
        call(b, "failure"), call(b, "cancelled"), call(b, "skipped")
        call(b, "failure")
        assert b.state == "open"

    def test_drawdown_opens_it(self) -> None:
        """Cumulative PnL falling more than max_drawdown_eth below its peak trips it."""
        b, _, _ = breaker(max_drawdown_eth=0.5, max_consecutive_failures=100, min_calls=100)
        call(b, net_wei=10**18)
        call(b, net_wei=-4 * 10**17)
        assert b.state == "closed"
        call(b, net_wei=-2 * 10**17)
        assert b.state == "open" and "drawdown 0.6 ETH" in b.reason

    def test_open_refuses_without_running_then_half_open_trial_closes(self) -> None:
        """open refuses calls; after the cooldown one trial runs (half_open) and its
        success closes the breaker; a second concurrent call is refused meanwhile."""
        b, clock, changes = breaker()
        for _ in range(3):
            call(b, "failure")
        ran = []

        @mevobs.swap(exchange="x", breaker=b)
        def guarded() -> None:
            ran.append(b.state)
            if len(ran) == 1:
                with pytest.raises(mevobs.CircuitOpenError, match="trial call is running"):
                    guarded()

        with pytest.raises(mevobs.CircuitOpenError, match="consecutive failures"):
            guarded()
        assert ran == []
        clock.now += 5
        guarded()
        assert ran == ["half_open"]
        assert b.state == "closed"
        assert [(c.old, c.new) for c in changes] == [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
        ]

    def test_failed_trial_reopens_with_a_new_cooldown(self) -> None:
        b, clock, _ = breaker()
        for _ in range(3):
            call(b, "failure")
        clock.now += 5
        assert call(b, "failure")
        assert b.state == "open"
        clock.now += 4
        assert not call(b)
        clock.now += 1
        assert call(b) and b.state == "closed"

    def test_neutral_trial_keeps_it_half_open(self) -> None:
        """A cancelled trial proves nothing: the next call is the trial."""
        b, clock, _ = breaker()
        for _ in range(3):
            call(b, "failure")
        clock.now += 5
        call(b, "cancelled")
        assert b.state == "half_open"
        call(b)
        assert b.state == "closed"

    def test_manual_trip_is_held_until_reset(self) -> None:
        """trip() ignores the cooldown; reset() closes and forgets the history."""
        b, clock, changes = breaker()
        b.trip("operator halt")
        clock.now += 3600
        assert not call(b)
        assert b.state == "open" and b.reason == "operator halt"
        b.reset()
        assert b.state == "closed" and call(b)
        assert changes[-1].reason == "reset"
        assert b.stats.rejected == 1 and b.stats.trips == 1

    def test_security_event_trips_breakers_listening_for_it(self) -> None:
        """record_security_event trips (held) the breakers with that kind in trip_on_security."""
        listening, _, _ = breaker(trip_on_security=("unexpected_contract",))
        other, _, _ = breaker()
        mevobs.record_security_event("abnormal_gas", "gas")
        assert listening.state == "closed"
        mevobs.record_security_event("unexpected_contract", "unknown router")
        assert listening.state == "open" and "unexpected_contract" in listening.reason
        assert other.state == "closed"

    def test_a_raising_listener_does_not_break_the_breaker(self) -> None:
        b, _, _ = breaker()

        @b.on_change
        def bad(_t: mevobs.Transition) -> None:
            raise RuntimeError("listener bug")

        b.trip("x")
        assert b.state == "open"

    def test_invalid_configuration_is_refused(self) -> None:
        with pytest.raises(ValueError):
            mevobs.CircuitBreaker("x", max_failure_rate=2)
        with pytest.raises(ValueError):
            mevobs.CircuitBreaker("x", window_seconds=0)


def test_state_gauge_and_critical_logs(mevobs_telemetry: Captured) -> None:
    """mev.circuit.state reads 0/2 and each transition is a CRITICAL log with its reason."""
    b = mevobs.CircuitBreaker("arb-main")
    name = semconv.CIRCUIT_STATE.name
    assert mevobs_telemetry.gauge_value(name, {semconv.ATTR_CIRCUIT: "arb-main"}) == 0
    b.trip("drawdown review")
    assert mevobs_telemetry.gauge_value(name, {semconv.ATTR_CIRCUIT: "arb-main"}) == 2
    (entry,) = [e for e in mevobs_telemetry.logs if e.message.startswith("circuit arb-main")]
    assert entry.level == "CRITICAL" and "drawdown review" in entry.message
    assert entry.attributes["mev.circuit.to"] == "open"


def test_threads_never_run_the_call_while_open_and_counts_add_up() -> None:
    """8 threads hammer a guarded call while the breaker is tripped and reset over and
    over: no call is admitted while it is open, every attempt either ran or was
    refused, and the runs are exactly the admissions."""
    b = mevobs.CircuitBreaker("threads", max_consecutive_failures=10**9, min_calls=10**9)
    lock = threading.Lock()
    runs = 0

    @mevobs.arbitrage(strategy="s", breaker=b)
    def trade() -> None:
        nonlocal runs
        with lock:
            runs += 1

    attempts = [0] * 8
    refused = [0] * 8
    stop = threading.Event()

    def hammer(i: int) -> None:
        while not stop.is_set():
            attempts[i] += 1
            try:
                trade()
            except mevobs.CircuitOpenError:
                refused[i] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    admitted_while_open = 0
    for _ in range(20):
        stop.wait(0.01)
        b.trip("test")
        at_trip = b.stats.admitted
        stop.wait(0.01)
        admitted_while_open += b.stats.admitted - at_trip
        b.reset()
    stop.set()
    for t in threads:
        t.join()
    stats = b.stats
    assert admitted_while_open == 0
    assert sum(attempts) == runs + sum(refused)
    assert stats.admitted == runs and stats.rejected == sum(refused)
    assert runs > 0 and sum(refused) > 0


def test_asyncio_tasks_never_run_the_call_while_open_and_counts_add_up() -> None:
    """1 000 concurrent tasks, failures tripping the breaker and cooldowns re-closing it:
    no call body ever starts while the breaker is open, and the counts add up."""
    b = mevobs.CircuitBreaker("tasks", max_consecutive_failures=5, min_calls=10**9, cooldown_seconds=0.002)
    ran_while_open = 0
    runs = 0
    refused = 0

    @mevobs.swap(exchange="x", breaker=b)
    async def trade(i: int) -> None:
        nonlocal ran_while_open, runs
        runs += 1
        if b.state == "open":  # checked before the first await: nothing can interleave
            ran_while_open += 1
        await asyncio.sleep(0)
        if i < 400:  # the first 400 tasks always fail: streaks that trip the breaker
            raise ValueError("reverted")

    async def attempt(i: int) -> None:
        nonlocal refused
        for _ in range(5):
            try:
                await trade(i)
            except mevobs.CircuitOpenError:
                refused += 1
            except ValueError:
                pass
            await asyncio.sleep(0.001)

    async def main() -> None:
        await asyncio.gather(*(attempt(i) for i in range(1000)))

    asyncio.run(main())
    assert ran_while_open == 0
    assert runs + refused == 5000
    assert b.stats.admitted == runs and b.stats.rejected == refused
    assert b.stats.trips > 0 and refused > 0
