"""The fast path under load, through a real Rotel collector to the OTLP sink.

Paced: 40 000 decorated calls a second for 10 s with every trace sampled; every
span reaches a receiver behind the collector (in a process of its own) and nothing
is dropped. At the maximum call rate of four
threads with a small queue: what does not arrive is exactly what
``mev.telemetry.dropped`` counts, failed traces are kept in preference to
successful ones, and the duration histogram counts every call.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Rotel, missing, rotel_binary
from tests.integration.otlp_sink import Sink, attrs

import mevobs
from mevobs import semconv

pytestmark = pytest.mark.integration

RATE = 40_000
SECONDS = 10
SPAN_LOSSES = frozenset({"queue_full", "overload"})
"""The reasons a span of a healthy pipeline can be dropped for (no export may fail here)."""


def _configure(rotel: Rotel, **overrides: Any) -> mevobs.Telemetry:
    settings: dict[str, Any] = {
        "service_name": "throughput-bot",
        "exporter": "otlp",
        "endpoint": f"http://127.0.0.1:{rotel.grpc_port}",
        "sample_ratio": 1.0,
        "log_destination": "none",
        "export_interval_seconds": 60.0,  # metrics leave once, on force_flush
        "export_timeout_seconds": 10.0,
        **overrides,
    }
    return mevobs.configure(**settings)


def _new_drops(before: dict[str, int]) -> dict[str, int]:
    after = mevobs.dropped_counts()
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _latest_points(sink: Sink, metric: str, **labels: str) -> list[tuple[dict[str, Any], Any]]:
    """The last cumulative point of every series of ``metric`` whose attributes include ``labels``."""
    latest: dict[tuple[tuple[str, Any], ...], tuple[dict[str, Any], Any]] = {}
    for m, point in sink.metric_points():
        if m.name != metric:
            continue
        labelled = attrs(point.attributes)
        if any(labelled.get(k) != v for k, v in labels.items()):
            continue
        key = tuple(sorted(labelled.items()))
        if key not in latest or point.time_unix_nano >= latest[key][1].time_unix_nano:
            latest[key] = (labelled, point)
    return list(latest.values())


class SpanCounter:
    """``span_counter.py`` in a process of its own, behind its own Rotel collector."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("span_counter.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def counts(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        answer: dict[str, int] = json.loads(self.proc.stdout.readline())["spans"]
        return answer

    def wait_for(self, name: str, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (seen := self.counts().get(name, 0)) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return seen

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()


@pytest.fixture
def counted_rotel(tmp_path: Path) -> Iterator[tuple[Rotel, SpanCounter]]:
    """A Rotel collector forwarding to a span counter that runs in another process."""
    binary = rotel_binary()
    if binary is None:
        missing("the Rotel collector (pip install rotel)")
    counter = SpanCounter()
    collector = Rotel(binary, counter.port, tmp_path)
    try:
        collector.start()
        yield collector, counter
    finally:
        collector.stop()
        counter.stop()


def test_paced_40k_calls_per_second_lose_no_span(counted_rotel: tuple[Rotel, SpanCounter]) -> None:
    """40 000 calls/s for 10 s, sample_ratio=1: every span reaches what is behind the
    collector, and ``mevobs.dropped_counts()`` gains nothing. The bot is a process of
    its own (``paced_bot.py``), as is the receiver: a test process would lend it the
    heap and leftover threads of the whole suite, and decoding 40 000 spans a second
    in it would take GIL time from the pipeline under test."""
    rotel, counter = counted_rotel
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("paced_bot.py")),
            f"http://127.0.0.1:{rotel.grpc_port}",
            str(RATE),
            str(SECONDS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = json.loads(proc.stdout.splitlines()[-1])
    calls = RATE * SECONDS
    expected = run["warmup"] + calls
    # The schedule held: the calls were made at 40 000/s, not spread over a longer time.
    assert run["elapsed"] < SECONDS * 1.05, f"the caller issued {calls / run['elapsed']:,.0f} calls/s"
    assert run["flushed"], "force_flush() timed out"
    assert run["drops"] == {}, (
        f"{sum(run['drops'].values()):,} of {calls:,} spans dropped ({run['drops']}): the worker"
        f" fell behind; CPU seconds by thread: {run['cpu']}"
    )
    arrived = counter.wait_for("swap paced", expected, timeout=60)
    time.sleep(0.5)  # anything beyond the expected count would arrive now
    assert counter.counts() == {"swap paced": expected}, arrived


def test_max_rate_losses_are_counted_and_failures_kept_first(rotel: Rotel, sink: Sink) -> None:
    """Four threads call as fast as they can into a 512-span queue, one call in ten
    failing: spans at the sink plus drops (by reason) equal the calls, failed traces
    arrive at a higher rate than successful ones, and the duration histogram and the
    dropped counter the collector receives are exact."""
    telemetry = _configure(rotel, max_queue_size=512, log_level="CRITICAL")  # spans only
    threads, per_thread = 4, 20_000

    @mevobs.swap(exchange="maxrate", chain="ethereum")
    def swap(i: int) -> int:
        if i % 10 == 0:
            raise ValueError("no liquidity")
        return i

    def run(start: threading.Barrier) -> None:
        start.wait()
        for i in range(per_thread):
            with contextlib.suppress(ValueError):
                swap(i)

    before = mevobs.dropped_counts()
    barrier = threading.Barrier(threads)
    workers = [threading.Thread(target=run, args=(barrier,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    calls = threads * per_thread
    failures = threads * len(range(0, per_thread, 10))
    assert telemetry.force_flush(60)
    drops = _new_drops(before)
    lost = sum(drops.values())
    assert set(drops) <= SPAN_LOSSES, drops
    assert lost > 0, "the queue never overflowed: the test did not load the pipeline"
    assert sink.wait_for(lambda: sink.span_total >= calls - lost, timeout=60)
    time.sleep(0.5)  # anything beyond the expected count would arrive now
    spans = [s for s in sink.spans() if s.name == "swap maxrate"]
    assert len(spans) + lost == calls

    kept_failures = sum(1 for s in spans if attrs(s.attributes)[semconv.ATTR_OUTCOME] == "failure")
    kept_successes = len(spans) - kept_failures
    assert kept_failures / failures > kept_successes / (calls - failures)
    # Only a full queue drops a failed trace; past the high-water mark only successes go.
    assert failures - kept_failures <= drops.get("queue_full", 0)

    def metrics_arrived() -> bool:
        points = _latest_points(sink, semconv.OPERATION_DURATION.name, **{semconv.ATTR_EXCHANGE: "maxrate"})
        return sum(p.count for _, p in points) == calls

    assert sink.wait_for(metrics_arrived, timeout=30)
    by_outcome = {
        labels[semconv.ATTR_OUTCOME]: point.count
        for labels, point in _latest_points(
            sink, semconv.OPERATION_DURATION.name, **{semconv.ATTR_EXCHANGE: "maxrate"}
        )
    }
    assert by_outcome == {"success": calls - failures, "failure": failures}
    dropped_metric = {
        labels[semconv.ATTR_DROP_REASON]: int(point.as_int or point.as_double)
        for labels, point in _latest_points(sink, semconv.TELEMETRY_DROPPED.name)
    }
    assert dropped_metric == drops
    telemetry.shutdown()
