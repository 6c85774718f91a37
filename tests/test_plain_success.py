"""A plain success is finished from its spec's cached slots; anything that touches an
operation still settles it in full, even after plain calls of the same spec.

The fast lane keeps, per spec, the slot bundle of a call that recorded nothing
(``OperationSpec._plain``) and skips settling for the next such call. These tests
call a spec plainly first, so the cache is warm, then touch an operation in each
way the cache must not hide: a recorder, an exception, a child's roll-up, a hook.
The last tests hold the trace tree the fast lane keeps around it (the root's list of
pending operations, made by the first child) to its bounds and its tail decisions.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import random
import sys
import threading
import time
import weakref
from typing import Any

import pytest

import mevobs
from mevobs import semconv
from mevobs._fastcall import PENDING_CAP
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


def test_assigning_outcome_after_plain_calls_counts_as_set_outcome() -> None:
    @mevobs.swap(exchange="assigned", chain="ethereum")
    def maybe_skip(skip: bool) -> None:
        if skip:
            mevobs.current_operation().outcome = "skipped"

    with capture() as cap:
        maybe_skip(False)
        maybe_skip(True)
        maybe_skip(True)
        cap.flush()
        assert (
            cap.histogram_count(semconv.OPERATION_DURATION.name, exchange="assigned", outcome="skipped") == 2
        )
        assert (
            cap.histogram_count(semconv.OPERATION_DURATION.name, exchange="assigned", outcome="success") == 1
        )


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


# ------------------------------------------------------- the trace tree around it


def test_a_dropped_root_with_children_is_freed_without_the_cycle_collector() -> None:
    """root._pending -> child and child._root -> root: the root lets go of its pending
    list whatever it decides, so a sampled-out trace is not cyclic garbage."""
    refs: list[weakref.ref[Any]] = []

    @mevobs.arbitrage(strategy="no-cycle")
    def parent() -> None:
        refs.append(weakref.ref(mevobs.current_operation()))
        _swap()

    with capture(sample_ratio=0.0) as cap:
        gc.collect()
        gc.disable()
        try:
            for _ in range(50):
                parent()
            cap.flush()
            assert sum(r() is not None for r in refs) <= 1  # the last may still be referenced
        finally:
            gc.enable()


def test_an_operation_in_flight_across_a_reconfigure_leaves_its_spec_to_the_new_pipeline() -> None:
    """It finishes on its old pipeline; the spec's cached slots stay the new one's."""
    stale = mevobs.swap(exchange="stale", chain="ethereum")
    first = capture()
    first.__enter__()
    stale.__enter__()  # in flight (a task, a thread) while the pipeline is replaced
    first.__exit__(None, None, None)
    with capture() as cap:
        stale.__exit__(None, None, None)
        for _ in range(5):
            with stale:
                pass
        cap.flush()
        assert cap.histogram_count(semconv.OPERATION_DURATION.name, exchange="stale") == 5


def test_failed_children_finishing_on_other_threads_are_kept_when_success_is_sampled_out() -> None:
    """A child that fails while (or after) its root decides keeps its span: the root
    reads the children's verdict under the tree lock, and a failure that comes after a
    dropped root is exported on its own."""

    @mevobs.swap(exchange="late", chain="ethereum")
    def child(spin: float) -> None:
        end = time.perf_counter() + spin
        while time.perf_counter() < end:
            pass
        raise RuntimeError("late failure")

    def run_child(spin: float) -> None:
        with contextlib.suppress(RuntimeError):
            child(spin)

    threads: list[threading.Thread] = []

    @mevobs.arbitrage(strategy="late-root")
    def root(spin: float) -> None:
        thread = threading.Thread(target=contextvars.copy_context().run, args=(run_child, spin))
        thread.start()
        threads.append(thread)
        end = time.perf_counter() + spin
        while time.perf_counter() < end:
            pass

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the two threads as much as possible
    rng = random.Random(7)
    try:
        with capture(sample_ratio=0.0) as cap:
            for _ in range(400):
                root(rng.choice([0.0, 2e-6, 1e-5, 2e-5]))
            for thread in threads:
                thread.join()
            cap.flush()
            failed = cap.histogram_count(semconv.OPERATION_DURATION.name, outcome="failure")
            assert failed == 400
            assert len(cap.find_spans("swap late")) == 400
    finally:
        sys.setswitchinterval(interval)


def test_foreign_spans_inside_one_long_operation_are_exported_early_past_the_cap() -> None:
    """SDK spans of other instrumentations wait with their trace, bounded like children."""
    from mevobs._state import STATE

    outer = mevobs.arbitrage(strategy="long-loop")
    with capture() as cap:
        assert STATE.providers is not None
        tracer = STATE.providers.tracer_provider.get_tracer("lib")
        with outer as op:
            for _ in range(PENDING_CAP * 3):
                with tracer.start_as_current_span("http"):
                    pass
            assert len(op._pending or []) < PENDING_CAP
        cap.flush()
        assert len(cap.find_spans("http")) == PENDING_CAP * 3
