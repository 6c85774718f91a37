"""Bounds of the fast path: exact counts under threads, series and queues that stay
bounded with every loss counted, outputs the host stalls that never block a call,
a forked child that starts empty, the cost after shutdown(), and exit without it.

Scenarios that need a process of their own (a stalled stderr, fork, exit) run a
script in a subprocess; the ones that need a real OTLP receiver are in
``tests/integration/test_fast_bounds_e2e.py``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource

import mevobs
from mevobs import semconv
from mevobs._fastcall import PENDING_CAP
from mevobs._pipeline import child_resource
from mevobs._settings import Settings
from mevobs._slots import HistogramSlot, SlotTable, SumSlot
from mevobs._state import LEAN_OWN, LOGGER, STATE, dropped_counts
from mevobs.testing import capture

THREADS, CALLS = 8, 100_000


@mevobs.swap(exchange="uniswap_v2", chain="ethereum")
def paid_swap(i: int) -> int:
    """A swap paying exactly 0.5 ETH of gas: sums of it are exact in binary floating point."""
    mevobs.current_operation().record_gas(gas_used=500_000, effective_gas_price_wei=10**12)
    return i


def _delta(before: dict[str, int], reason: str) -> int:
    return dropped_counts().get(reason, 0) - before.get(reason, 0)


def _script(code: str) -> str:
    return textwrap.dedent(code)


def _wait(proc: subprocess.Popen[str], timeout: float) -> float:
    """Wait for ``proc`` (killed past ``timeout``); the monotonic time it ended."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return time.monotonic()


# ----------------------------------------------------------------------- threads


def test_8_threads_of_100_000_calls_give_exact_counts_through_capture() -> None:
    """No recording is lost or doubled under threads: the duration count and the gas
    cost sum are exact (each slot adds under its own lock)."""
    with capture(sample_ratio=0.0) as tel:
        LOGGER.setLevel(logging.WARNING)  # capture() restores the level it found

        def run() -> None:
            for i in range(CALLS):
                paid_swap(i)

        threads = [threading.Thread(target=run) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert tel.histogram_count("mev.operation.duration", exchange="uniswap_v2") == THREADS * CALLS
        assert tel.counter_value("mev.gas.cost", exchange="uniswap_v2") == THREADS * CALLS * 0.5


# -------------------------------------------------------------------- the series cap


def test_each_metric_keeps_at_most_max_series_plus_one_overflow_and_counts_the_rest() -> None:
    """Past ``max_series_per_metric`` a new label combination records into one ``other``
    series (operation and outcome kept): nothing is lost, the merges are counted."""
    before = dropped_counts()
    combos = [(f"ex{e}", f"chain{c}", f"s{s}") for e in range(10) for c in range(10) for s in range(2)]

    @mevobs.arbitrage(strategy="base")
    def run(exchange: str, chain: str, strategy: str) -> None:
        op = mevobs.current_operation()
        op.set_attribute(semconv.ATTR_EXCHANGE, exchange)
        op.set_attribute(semconv.ATTR_CHAIN, chain)
        op.set_attribute(semconv.ATTR_STRATEGY, strategy)
        op.record_profit(gross_wei=10**15)

    with capture(sample_ratio=0.0, max_series_per_metric=10) as tel:
        for combo in combos:
            run(*combo)
        durations = tel.points("mev.operation.duration")
        profits = tel.points("mev.profit")
        assert len(durations) == len(profits) == 10 + 1
        assert sum(p.count for p in durations) == len(combos)
        assert tel.counter_value("mev.profit") == pytest.approx(len(combos) * 0.001)
        other = [p for p in durations if p.attributes[semconv.ATTR_EXCHANGE] == semconv.OTHER_VALUE]
        assert len(other) == 1 and other[0].count == len(combos) - 10
        assert other[0].attributes[semconv.ATTR_OPERATION] == "arbitrage"
        assert other[0].attributes[semconv.ATTR_OUTCOME] == semconv.OUTCOME_SUCCESS
        merged = 2 * (len(combos) - 10)  # two metrics per call
        assert tel.counter_value("mev.telemetry.dropped", reason="series_cap") == merged
    assert _delta(before, "series_cap") == merged


@settings(max_examples=60, deadline=None)
@given(cap=st.integers(1, 12), keys=st.lists(st.integers(0, 30), max_size=120))
def test_a_slot_table_admits_cap_series_and_sends_every_other_recording_to_one_overflow(
    cap: int, keys: list[int]
) -> None:
    overflowed: list[str] = []
    table = SlotTable(cap, on_overflow=lambda spec: overflowed.append(spec.name))
    admitted: list[int] = []
    for key in keys:
        if key not in admitted and len(admitted) < cap:
            admitted.append(key)
        slot = table.slot(semconv.PROFIT, {semconv.ATTR_EXCHANGE: f"ex{key}"})
        assert isinstance(slot, SumSlot)
        slot.add(1)
    slots = [slot for _, series in table.metrics() for _, slot in series]
    assert table.series_count(semconv.PROFIT) == len(admitted) + bool(overflowed)
    assert len(overflowed) == sum(1 for key in keys if key not in admitted)
    assert sum(slot.value for slot in slots if isinstance(slot, SumSlot)) == len(keys)


# ------------------------------------------------------------- the tail buffer, queues


def test_a_root_with_more_than_pending_cap_children_exports_them_early_and_counts_them() -> None:
    """A root holds at most PENDING_CAP finished children for its tail decision; each
    full batch is exported at once (counted as ``sampling_overflow``), not held."""
    before = dropped_counts()

    @mevobs.swap(exchange="uniswap_v2")
    def hop(i: int) -> int:
        return i

    @mevobs.arbitrage(strategy="long")
    def route(n: int) -> None:
        for i in range(n):
            hop(i)

    with capture(sample_ratio=0.0) as tel:
        route(2 * PENDING_CAP + 100)  # a plain success: the trace is not kept
        assert len(tel.spans) == 2 * PENDING_CAP  # the two full batches; the last 100 and the root dropped
    assert _delta(before, "sampling_overflow") == 2 * PENDING_CAP


def test_a_burst_past_the_span_queue_is_shed_and_every_lost_span_counted() -> None:
    before = dropped_counts()

    @mevobs.swap(exchange="uniswap_v2")
    def swap(i: int) -> int:
        return i

    with capture(max_queue_size=64) as tel:
        LOGGER.setLevel(logging.WARNING)
        for i in range(20_000):
            swap(i)
        exported = len(tel.spans)
    lost = _delta(before, "overload") + _delta(before, "queue_full")
    assert lost > 0
    assert exported + lost == 20_000


# ------------------------------------------------------------------- stalled outputs

STALLED = _script(
    """
    import json, sys, time, urllib.request
    import mevobs
    from mevobs import semconv
    from mevobs._state import dropped_counts
    from prometheus_client.parser import text_string_to_metric_families

    tel = mevobs.configure(exporter="prometheus", metrics_port=0, log_level="INFO", **json.loads(sys.argv[1]))

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap(i):
        return i

    start = time.monotonic()
    for i in range(100_000):
        swap(i)
    elapsed = time.monotonic() - start
    low = dropped_counts().get("log_queue_full", 0)
    body = urllib.request.urlopen(tel.metrics_url, timeout=10).read().decode()
    high = dropped_counts().get("log_queue_full", 0)
    exported = sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == semconv.TELEMETRY_DROPPED.prometheus_name
        and sample.labels.get(semconv.ATTR_DROP_REASON) == "log_queue_full"
    )
    print(json.dumps({"elapsed": elapsed, "low": low, "high": high, "exported": exported}), flush=True)
    if sys.argv[2] == "wait":
        sys.stdin.readline()  # the test drains the output from now on
        tel.shutdown()
        print(json.dumps({"dropped": dropped_counts().get("log_queue_full", 0)}), flush=True)
    """
)


def _reference_elapsed() -> float:
    """The same 100 000 calls with a stderr that takes everything (the baseline)."""
    proc = subprocess.run(
        [sys.executable, "-c", STALLED, "{}", "exit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        timeout=120,
        check=True,
    )
    return float(json.loads(proc.stdout.splitlines()[0])["elapsed"])


def test_a_stalled_stderr_never_blocks_a_call_and_every_lost_line_is_counted() -> None:
    """stderr is a pipe the test does not read: calls go on at their usual pace, the
    lines past the bounded queues are dropped and counted (the tally and the exported
    ``mev.telemetry.dropped{reason="log_queue_full"}``), and once the reader drains the
    pipe every line is either written or counted."""
    with subprocess.Popen(
        [sys.executable, "-c", STALLED, "{}", "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdin is not None
            first = json.loads(proc.stdout.readline())
            reference = _reference_elapsed()
            assert first["elapsed"] <= 3 * reference + 1.0, (first, reference)
            assert 0 < first["low"] <= first["exported"] <= first["high"]
            proc.stdin.write("\n")
            proc.stdin.flush()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    final = json.loads(out.splitlines()[-1])
    written = [
        line for line in err.splitlines() if line.startswith('{"timestamp"') and "swap uniswap_v2" in line
    ]
    assert len(written) + final["dropped"] == 100_000


def test_a_log_fifo_nobody_reads_never_blocks_a_call_nor_the_exit(tmp_path: Path) -> None:
    """The log file is a FIFO whose reader never reads: calls go on, lines past the
    queue are counted, and the process still exits within the export timeout (closing
    the file used to wait for the lock of a writer stuck on the full pipe)."""
    fifo = tmp_path / "bot.log"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read
    try:
        kw = {"log_destination": "file", "log_path": str(fifo), "export_timeout_seconds": 2}
        with subprocess.Popen(
            [sys.executable, "-c", STALLED, json.dumps(kw), "exit"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            reported = time.monotonic()
            exit_seconds = _wait(proc, 30) - reported
    finally:
        os.close(reader)
    assert 0 < first["low"] <= first["exported"] <= first["high"]
    assert first["elapsed"] < 60
    assert proc.returncode == 0
    assert exit_seconds <= 2 + 1.5


def test_configure_with_a_log_fifo_that_has_no_reader_returns_at_once(tmp_path: Path) -> None:
    """Opening a FIFO for writing waits for a reader; the log file does not: the lines
    are counted as lost until a reader comes."""
    fifo = tmp_path / "bot.log"
    os.mkfifo(fifo)
    code = _script(
        """
        import sys, time
        import mevobs
        from mevobs._state import dropped_counts
        start = time.monotonic()
        tel = mevobs.configure(exporter="none", log_destination="file", log_path=sys.argv[1])

        @mevobs.swap(exchange="uniswap_v2")
        def swap(i):
            return i

        for i in range(1000):
            swap(i)
        tel.shutdown()
        print(time.monotonic() - start, dropped_counts().get("export_failed", 0))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seconds, lost = proc.stdout.split()
    assert float(seconds) < 10
    assert int(lost) == 1000
    assert "No such device or address" in proc.stderr  # reported once, not per line


# ---------------------------------------------------------------------------- fork

FORK_CAPTURE = _script(
    """
    import json, os
    import mevobs
    from mevobs.testing import capture

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap(i):
        mevobs.current_operation().record_gas(gas_used=500_000, effective_gas_price_wei=10**12)
        return i

    def totals(tel):
        return [tel.histogram_count("mev.operation.duration"), tel.counter_value("mev.gas.cost")]

    with capture() as tel:
        for i in range(100):
            swap(i)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            empty = totals(tel)
            spans_before = len(tel.spans)
            for i in range(30):
                swap(i)
            child = {"empty": empty, "own": totals(tel), "new_spans": len(tel.spans) - spans_before}
            os.write(write, json.dumps(child).encode())
            os._exit(0)
        os.close(write)
        child = json.loads(os.read(read, 65536))
        assert os.waitpid(pid, 0)[1] == 0
        unchanged = totals(tel)
        for i in range(10):
            swap(i)
        print(json.dumps({"child": child, "parent": [unchanged, totals(tel)]}))
    """
)


def test_a_forked_child_starts_with_empty_slots_and_its_own_worker_and_the_parent_is_unchanged() -> None:
    proc = subprocess.run([sys.executable, "-c", FORK_CAPTURE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["child"] == {"empty": [0, 0], "own": [30, 15.0], "new_spans": 30}
    assert result["parent"] == [[100, 50.0], [110, 55.0]]


def test_a_forked_child_gets_a_new_instance_id_unless_the_user_set_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent = Resource({"service.name": "bot", "service.instance.id": "parent"})
    renewed = child_resource(parent, Settings.load({}))
    assert renewed.attributes["service.instance.id"] not in ("parent", "")
    assert renewed.attributes["service.name"] == "bot"
    chosen = Settings.load({}, resource_attributes={"service.instance.id": "parent"})
    assert child_resource(parent, chosen).attributes["service.instance.id"] == "parent"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=mev,service.instance.id=parent")
    assert child_resource(parent, Settings.load({})).attributes["service.instance.id"] == "parent"


# ------------------------------------------------------------------ after shutdown


def _totals(table: SlotTable) -> dict[tuple[str, object], float]:
    """Every series of ``table`` with its count (histograms) or value."""
    out: dict[tuple[str, object], float] = {}
    for spec, series in table.metrics():
        for key, slot in series:
            out[(spec.name, key)] = slot.count if isinstance(slot, HistogramSlot) else slot.value
    return out


def test_after_shutdown_a_call_takes_the_lean_lane_records_nothing_and_current_operation_works() -> None:
    """Once configure()'s providers are shut down nothing can receive telemetry: calls
    take the unconfigured lane instead of recording into dead providers."""
    tel = mevobs.configure(exporter="none", log_destination="none")
    pipeline = tel._fast
    assert pipeline is not None
    paid_swap(0)
    recorded = _totals(pipeline.table)
    assert recorded
    tel.shutdown()
    assert STATE.lane is LEAN_OWN and STATE.fast is None
    seen: list[tuple[bool, str, bool]] = []

    @mevobs.swap(exchange="curve", chain="ethereum")
    def swap(i: int) -> int:
        op = mevobs.current_operation()
        seen.append((op.active, op.kind, op.span.is_recording()))
        op.record_gas(gas_used=21_000, effective_gas_price_wei=10**9)
        return i

    assert [swap(i) for i in range(50)] + [paid_swap(i) for i in range(50)] == [*range(50), *range(50)]
    assert seen == [(True, "swap", False)] * 50
    assert not mevobs.current_operation().active
    assert _totals(pipeline.table) == recorded
    assert not pipeline._queue


# -------------------------------------------------------------------------- exit

EXIT = _script(
    """
    import sys, time
    import mevobs

    mevobs.configure(
        exporter="otlp", endpoint=sys.argv[1], export_timeout_seconds=2, export_interval_seconds=0.5
    )

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap(i):
        return i

    for i in range(20_000):
        swap(i)
    time.sleep(0.7)  # span batches and a metric export are on their way to the dead port
    print("calls done", flush=True)
    """
)


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port  # closed: connections are refused


def test_exit_without_shutdown_against_a_dead_collector_ends_within_the_export_timeout(
    closed_port: int,
) -> None:
    """atexit flushes within ``export_timeout_seconds`` and nothing else waits (daemon
    threads, no SDK atexit handler): the process ends within the timeout + 1.5 s."""
    with subprocess.Popen(
        [sys.executable, "-c", EXIT, f"http://127.0.0.1:{closed_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "calls done"
        done = time.monotonic()
        seconds = _wait(proc, 30) - done
    assert proc.returncode == 0
    assert seconds <= 2 + 1.5, seconds
