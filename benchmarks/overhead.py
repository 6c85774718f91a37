"""Per-call cost of mevobs, side by side with a bare call and hand-written OpenTelemetry.

Run: python benchmarks/overhead.py [--calls N]

Each mode runs in its own subprocess (OpenTelemetry globals can be set only
once per process) and all modes print in one table. "full" and "hand-written"
share one SDK pipeline: a BatchSpanProcessor to an exporter that discards,
a MeterProvider with an in-memory reader, and an INFO log per call to a
handler that discards. The hand-written variant records the same span,
duration histogram, gas counters and log record a swap with gas does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

MODES = ("bare", "unconfigured", "metrics-only", "full", "full+detectors", "hand-written")


def _pipeline(sampled: bool) -> None:
    import logging

    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    for name in ("mevobs", "handwritten"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def _target(mode: str) -> Any:
    def swap(x: int) -> int:
        return x + 1

    if mode == "bare":
        return swap
    import mevobs

    if mode in ("metrics-only", "full", "full+detectors"):
        _pipeline(sampled=mode != "metrics-only")
    if mode == "full+detectors":
        # What configure() adds by default: the security detectors on every operation.
        from mevobs._state import STATE
        from mevobs.guards._security import SecurityMonitor

        STATE.hooks.append(SecurityMonitor())
    if mode in ("unconfigured", "metrics-only", "full", "full+detectors"):
        return mevobs.swap(exchange="uniswap_v2", chain="ethereum")(swap)
    _pipeline(sampled=True)
    return _hand_written(swap)


def _hand_written(func: Any) -> Any:
    """The same telemetry mevobs emits for a swap, written directly against the SDK."""
    import logging

    from opentelemetry import context, metrics, trace

    from mevobs.semconv import DURATION_BUCKETS

    tracer = trace.get_tracer("handwritten")
    meter = metrics.get_meter("handwritten")
    duration = meter.create_histogram(
        "mev.operation.duration",
        unit="s",
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
    )
    logger = logging.getLogger("handwritten")
    attrs = {"mev.operation": "swap", "mev.exchange": "uniswap_v2", "mev.chain": "ethereum"}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        span = tracer.start_span("swap uniswap_v2", attributes=attrs)
        token = context.attach(trace.set_span_in_context(span))
        start = time.perf_counter_ns()
        outcome = "success"
        try:
            return func(*args, **kwargs)
        except BaseException:
            outcome = "failure"
            raise
        finally:
            elapsed = time.perf_counter_ns() - start
            context.detach(token)
            point = {**attrs, "mev.outcome": outcome}
            duration.record(elapsed / 1e9, point)
            span.set_attribute("mev.outcome", outcome)
            span.end()
            ctx = span.get_span_context()
            logger.info(
                "swap uniswap_v2 %s in %.2f ms",
                outcome,
                elapsed / 1e6,
                extra={
                    "mevobs": {**point, "mev.duration_ms": elapsed / 1e6},
                    "trace_id": format(ctx.trace_id, "032x"),
                    "span_id": format(ctx.span_id, "016x"),
                },
            )

    return wrapper


def run_mode(mode: str, calls: int) -> float:
    """Best-of-5 mean nanoseconds per call."""
    target = _target(mode)
    for i in range(2_000):
        target(i)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for i in range(calls):
            target(i)
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is kept")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.calls)))
        return
    results: dict[str, float] = {}
    # Interleave the modes over several rounds so that machine noise hits all alike.
    for _ in range(args.rounds):
        for mode in MODES:
            out = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--calls", str(args.calls)],
                capture_output=True,
                text=True,
                check=True,
            )
            ns = float(out.stdout.strip().splitlines()[-1])
            results[mode] = min(ns, results.get(mode, ns))
    bare = results["bare"]
    print(f"{'mode':<16}{'ns/call':>10}{'added vs bare':>16}")
    for mode in MODES:
        print(f"{mode:<16}{results[mode]:>10.0f}{results[mode] - bare:>16.0f}")
    ratio = results["full"] / results["hand-written"]
    print(f"\nfull / hand-written = {ratio:.2f}x (target <= 1.0x)")
    print(f"unconfigured adds {(results['unconfigured'] - bare) / 1000:.2f} us (target <= 2 us)")


if __name__ == "__main__":
    main()
