"""Tail sampling through a real Rotel collector: what must arrive arrives whole.

2 000 arbitrages with three child swaps each, 5 % failing, 2 % reverting and 1 %
slow, at ``sample_ratio=0.01``: every failing, reverted and slow trace reaches the
sink complete (root and all three children, correctly parented), successful traces
arrive at 1 % within the 99 % binomial interval, and every operation's log line
(JSON file and OTLP) carries its trace id, whether its trace was kept or not.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry import trace
from tests.integration.conftest import Rotel
from tests.integration.otlp_sink import Sink

import mevobs

pytestmark = pytest.mark.integration

ARBITRAGES = 2_000
FAILING, REVERTING, SLOW = 100, 40, 20  # 5 %, 2 %, 1 %
RATIO = 0.01
SLOW_THRESHOLD = 0.005
SLOW_SLEEP = 0.02


def binomial_interval(n: int, p: float, confidence: float = 0.99) -> tuple[int, int]:
    """The central ``confidence`` interval [lo, hi] of Binomial(n, p), exact: each tail
    outside it holds at most (1 - confidence) / 2 of the probability."""
    tail = (1 - confidence) / 2

    def pmf(k: int) -> float:
        # In logs: comb(n, k) overflows a float for large n and k.
        log = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        return math.exp(log + k * math.log(p) + (n - k) * math.log1p(-p))

    lo, below = 0, 0.0
    while below + pmf(lo) <= tail:
        below += pmf(lo)
        lo += 1
    hi, above = n, 0.0
    while above + pmf(hi) <= tail:
        above += pmf(hi)
        hi -= 1
    return lo, hi


def test_binomial_interval_matches_known_quantiles() -> None:
    """The interval helper against sums of math.comb terms: for Binomial(1840, 0.01)
    P(X <= 7) = 0.0022 and P(X <= 8) = 0.0054, P(X > 30) = 0.0043 and P(X > 29) > 0.005,
    so the 99 % interval is 8..30; for a fair coin tossed 100 times it is 37..63."""
    assert binomial_interval(1840, 0.01) == (8, 30)
    assert binomial_interval(100, 0.5) == (37, 63)


@dataclass
class Arbitrage:
    """What the test knows about one arbitrage it ran."""

    kind: str  # success, failing, reverting, slow
    trace_id: int = 0
    span_ids: list[int] = field(default_factory=list)  # the arbitrage's, then its swaps'
    longest: float = 0.0  # the longest call as timed from outside, seconds


def _current_ids() -> tuple[int, int]:
    ctx = trace.get_current_span().get_span_context()
    return ctx.trace_id, ctx.span_id


def _run(plan: list[str]) -> list[Arbitrage]:
    """Run one arbitrage per entry of ``plan``; the swap of index 2 fails, reverts or
    sleeps when the plan says so."""
    done: list[Arbitrage] = []

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap(record: Arbitrage, index: int) -> mevobs.SwapResult | None:
        record.span_ids.append(_current_ids()[1])
        if index == 2:
            if record.kind == "failing":
                raise RuntimeError("insufficient output amount")
            if record.kind == "reverting":
                return mevobs.SwapResult(status=0, gas_used=90_000, effective_gas_price_wei=10**9)
            if record.kind == "slow":
                time.sleep(SLOW_SLEEP)
        return None

    @mevobs.arbitrage(strategy="triangular", chain="ethereum")
    def arbitrage(record: Arbitrage) -> None:
        record.trace_id, span_id = _current_ids()
        record.span_ids.append(span_id)
        for index in range(3):
            began = time.perf_counter()
            swap(record, index)
            record.longest = max(record.longest, time.perf_counter() - began)

    for kind in plan:
        record = Arbitrage(kind)
        began = time.perf_counter()
        try:
            arbitrage(record)
        except RuntimeError:
            assert kind == "failing"
        record.longest = max(record.longest, time.perf_counter() - began)
        done.append(record)
    return done


def _json_lines(path: Path) -> Iterator[dict[str, object]]:
    """Every line of the log file and of its rotated parts (a run across midnight UTC)."""
    for file in sorted(path.parent.glob(path.name + "*")):
        text = gzip.decompress(file.read_bytes()).decode() if file.suffix == ".gz" else file.read_text()
        for line in text.splitlines():
            yield json.loads(line)


def test_tail_sampling_keeps_whole_traces_and_logs_every_operation(
    rotel: Rotel, sink: Sink, tmp_path: Path
) -> None:
    log_path = tmp_path / "bot.jsonl"
    telemetry = mevobs.configure(
        service_name="tail-bot",
        exporter="otlp",
        endpoint=f"http://127.0.0.1:{rotel.grpc_port}",
        sample_ratio=RATIO,
        slow_threshold_seconds=SLOW_THRESHOLD,
        log_destination="file",
        log_path=str(log_path),
        log_level="INFO",
        max_queue_size=50_000,  # this test is about sampling, not load: nothing may be shed
        export_timeout_seconds=10.0,
    )
    plan = ["failing"] * FAILING + ["reverting"] * REVERTING + ["slow"] * SLOW
    plan += ["success"] * (ARBITRAGES - len(plan))
    rng = random.Random(20261126)
    rng.shuffle(plan)
    saved = random.getstate()
    # mevobs draws trace ids from the random module: a fixed seed makes which successful
    # traces are sampled the same on every run (the bound below is still the 99 % one).
    random.seed(9_001)
    try:
        before = mevobs.dropped_counts()
        records = _run(plan)
    finally:
        random.setstate(saved)
    operations = 4 * ARBITRAGES
    assert telemetry.force_flush(30)
    assert mevobs.dropped_counts() == before

    # A successful arbitrage may still have been slow on a busy machine: the tail
    # sampler then keeps it, rightly. Only arbitrages whose every call took less than
    # the threshold, timed from outside, are a plain sample of successes.
    must_keep = [r for r in records if r.kind != "success"]
    plain = [r for r in records if r.kind == "success" and r.longest < SLOW_THRESHOLD]
    assert all(r.longest >= SLOW_SLEEP for r in records if r.kind == "slow")

    by_trace: dict[int, dict[int, object]] = {}

    def arrived() -> int:
        by_trace.clear()
        for span in sink.spans():
            by_trace.setdefault(int.from_bytes(span.trace_id, "big"), {})[
                int.from_bytes(span.span_id, "big")
            ] = span
        return sum(len(spans) for spans in by_trace.values())

    def complete() -> bool:
        arrived()
        return all(len(by_trace.get(r.trace_id, {})) == 4 for r in must_keep)

    sink.wait_for(complete, 30)
    time.sleep(0.5)  # a stray span of a dropped trace would arrive now
    arrived()
    for record in must_keep:
        spans = by_trace.get(record.trace_id, {})
        assert sorted(spans) == sorted(record.span_ids), record.kind
        root_id = record.span_ids[0]
        root = spans[root_id]
        assert root.parent_span_id == b"", "the arbitrage is the trace's root"  # type: ignore[attr-defined]
        for child_id in record.span_ids[1:]:
            assert spans[child_id].parent_span_id == root_id.to_bytes(8, "big")  # type: ignore[attr-defined]

    # No trace arrives in part, and only traces of this run arrive.
    known = {r.trace_id: r for r in records}
    assert set(by_trace) <= set(known)
    for trace_id, spans in by_trace.items():
        assert sorted(spans) == sorted(known[trace_id].span_ids)
    kept_plain = sum(1 for r in plain if r.trace_id in by_trace)
    lo, hi = binomial_interval(len(plain), RATIO)
    assert lo <= kept_plain <= hi, (kept_plain, len(plain), (lo, hi))

    # Every operation's log line carries its own trace and span id, kept or not.
    expected = {(r.trace_id, span_id) for r in records for span_id in r.span_ids}
    assert len(expected) == operations
    lines = list(_json_lines(log_path))
    assert len(lines) == operations
    logged = {(int(str(line["trace_id"]), 16), int(str(line["span_id"]), 16)) for line in lines}
    assert logged == expected
    # ... and so does its OTLP log record at the sink.
    assert sink.wait_for(lambda: sum(1 for _ in sink.log_records()) >= operations, 30)
    otlp = {(int.from_bytes(r.trace_id, "big"), int.from_bytes(r.span_id, "big")) for r in sink.log_records()}
    assert otlp == expected
    telemetry.shutdown()
