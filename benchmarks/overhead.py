"""What an instrumented call costs the whole process, side by side with its peers.

Run: python benchmarks/overhead.py [--calls N] [--rounds R]

Every mode runs in its own subprocess (OpenTelemetry's globals can be set once per
process), the modes are interleaved over R rounds so machine noise hits all of them
alike, and the table shows the median of the rounds (the modes without an export
pipeline, which take well under a second per round, time five blocks per round and
take their median). The figure is CPU time per call for the whole process
(``time.process_time()``: the calling thread and every worker thread), with the final
flush inside the timed region, so work moved to a worker thread is still counted.

Modes (a decorated ``swap`` that returns ``x + 1`` unless said otherwise):

- ``bare``: the undecorated function.
- ``unconfigured``: decorated, no ``configure()``, no application providers.
- ``after-shutdown``: decorated, after ``configure()`` and ``shutdown()``.
- ``prometheus-client``: prometheus_client ``Histogram.time()`` + ``Counter.inc()``, the peer floor.
- ``metrics-only``: ``configure(sample_ratio=0, log_level="WARNING")``, nothing exported
  (the slots are what a scrape or a push would read).
- ``full``: ``configure(sample_ratio=1, log_level="WARNING")``; every span is converted
  and OTLP-encoded by the worker and handed to an exporter that discards the bytes.
- ``hand-written``: the same span, duration histogram and log call written against the
  OpenTelemetry SDK: a BatchSpanProcessor to a discarding exporter, an in-memory metric
  reader, the stdlib logger at WARNING.
- ``defaults``: ``configure()`` defaults with OTLP gRPC to a real collector (Rotel, its
  blackhole exporter; its CPU is not counted), JSON logs at INFO to stderr redirected to
  a file, and a swap returning a transaction receipt (gas, status, hash are extracted).
- ``hand-written-defaults``: the equivalent against the SDK: span with the receipt's
  attributes, duration and gas histograms and a cost counter (OTLP gRPC to the same
  collector), stdlib logging with a JSON formatter to stderr redirected to a file.

The modes with an export pipeline (``full``, ``defaults`` and their hand-written
peers) are called in bursts with a 5 ms sleep between them, so their background
threads keep up: at the maximum call rate both mevobs and the SDK's
BatchSpanProcessor shed telemetry, and a figure for work that was dropped would
flatter whichever dropped more. The sleeps are not CPU time; the CPU a sleep
costs the pacing thread is counted alike on both sides. The ``lost`` column is
the telemetry each mode did not deliver in the timed region (mevobs's
``mev.telemetry.dropped`` tally; spans the SDK exporter never received). A
ratio whose modes lost anything is marked, not judged.

The latency section paces ``full`` and ``hand-written`` at 10 000 calls/s and prints the
p50, p99 and p99.9 of the time each call takes on the caller's thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = (
    "bare",
    "unconfigured",
    "after-shutdown",
    "prometheus-client",
    "metrics-only",
    "full",
    "hand-written",
    "defaults",
    "hand-written-defaults",
)
RECEIPT = {
    "transactionHash": "0x" + "ab" * 32,
    "blockNumber": 21_000_000,
    "status": 1,
    "to": "0x" + "77" * 20,
    "gasUsed": 120_000,
    "effectiveGasPrice": 18 * 10**9,
}


# ----------------------------------------------------------------- the modes


def _plain(x: int) -> int:
    return x + 1


def _receipt(x: int) -> dict[str, Any]:
    return RECEIPT


def _discard_row() -> None:
    """An exporter row whose span and log exporters encode for real and drop the bytes."""
    from mevobs import _exporters

    class Discard:
        def export_encoded(self, payload: bytes, count: int) -> bool:
            return True

        def shutdown(self) -> None:
            pass

    _exporters.EXPORTERS["bench-discard"] = _exporters.ExporterRow(
        "bench-discard",
        "benchmark: encode and drop",
        lambda s, signals: _exporters.SignalExporters(Discard(), None, Discard()),
    )


BURSTS = {"full": 100, "hand-written": 100, "defaults": 25, "hand-written-defaults": 25}
"""Calls between two 5 ms sleeps in the modes with an export pipeline."""
PAUSE = 0.005
BLOCKS = 5
"""Timed blocks per round in the modes without an export pipeline (their median)."""


def _mevobs_lost() -> int:
    from mevobs._state import STATE

    return sum(STATE.dropped_tally.values())


def _target(mode: str, collector: str | None) -> tuple[Any, Any]:
    """The function to call and the flush to time with it."""
    if mode == "bare":
        return _plain, lambda: None
    if mode == "prometheus-client":
        return _prometheus_client(), lambda: None
    if mode.startswith("hand-written"):
        return _hand_written(mode == "hand-written-defaults", collector)
    import mevobs

    if mode == "unconfigured":
        return mevobs.swap(exchange="uniswap_v2", chain="ethereum")(_plain), lambda: None
    if mode == "after-shutdown":
        mevobs.configure(exporter="none", log_destination="none").shutdown()
        return mevobs.swap(exchange="uniswap_v2", chain="ethereum")(_plain), lambda: None
    if mode == "metrics-only":
        tel = mevobs.configure(exporter="none", log_destination="none", log_level="WARNING", sample_ratio=0)
    elif mode == "full":
        _discard_row()
        tel = mevobs.configure(exporter="bench-discard", log_destination="none", log_level="WARNING")
    else:  # defaults
        tel = mevobs.configure(exporter="otlp", endpoint=f"http://{collector}", log_level="INFO")
        return mevobs.swap(exchange="uniswap_v2", chain="ethereum")(_receipt), tel.force_flush
    return mevobs.swap(exchange="uniswap_v2", chain="ethereum")(_plain), tel.force_flush


def _prometheus_client() -> Any:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry()
    hist = Histogram("swap_duration_seconds", "swap", ["exchange", "chain"], registry=registry)
    calls = Counter("swap_calls", "swap", ["exchange", "chain", "outcome"], registry=registry)
    timer = hist.labels("uniswap_v2", "ethereum")
    ok = calls.labels("uniswap_v2", "ethereum", "success")

    def swap(x: int) -> int:
        with timer.time():
            result = x + 1
        ok.inc()
        return result

    return swap


def _hand_written(defaults: bool, collector: str | None) -> tuple[Any, Any]:
    """What mevobs records for a swap, written directly against the OpenTelemetry SDK."""
    import logging

    from opentelemetry import context, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from mevobs.semconv import DURATION_BUCKETS, GAS_BUCKETS

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    class Counted(SpanExporter):
        """Counts the spans handed to the real exporter (what was not shed)."""

        def __init__(self, inner: SpanExporter) -> None:
            self.inner = inner

        def export(self, spans: Any) -> SpanExportResult:
            EXPORTED[0] += len(spans)
            return self.inner.export(spans)

        def shutdown(self) -> None:
            self.inner.shutdown()

    provider = TracerProvider()
    if defaults:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(Counted(OTLPSpanExporter(endpoint=collector, insecure=True)))
        )
        reader: Any = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=collector, insecure=True), export_interval_millis=10_000
        )
    else:
        provider.add_span_processor(BatchSpanProcessor(Counted(Discard())))
        reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    tracer = provider.get_tracer("handwritten")
    meter = meters.get_meter("handwritten")
    duration = meter.create_histogram(
        "mev.operation.duration", unit="s", explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS)
    )
    gas_used = meter.create_histogram(
        "mev.gas.used", unit="{gas}", explicit_bucket_boundaries_advisory=list(GAS_BUCKETS)
    )
    gas_cost = meter.create_counter("mev.gas.cost", unit="ETH")
    logger = logging.getLogger("handwritten")
    logger.propagate = False
    if defaults:

        class Json(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return json.dumps(
                    {
                        "timestamp": self.formatTime(record),
                        "level": record.levelname,
                        "logger": record.name,
                        "message": record.getMessage(),
                        "trace_id": getattr(record, "trace_id", None),
                        "span_id": getattr(record, "span_id", None),
                        "attributes": getattr(record, "mevobs", {}),
                    },
                    separators=(",", ":"),
                )

        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(Json())
        logger.setLevel(logging.INFO)
    else:
        handler = logging.NullHandler()
        logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    attrs = {"mev.operation": "swap", "mev.exchange": "uniswap_v2", "mev.chain": "ethereum"}
    func = _receipt if defaults else _plain

    def wrapper(x: int) -> Any:
        span = tracer.start_span("swap uniswap_v2", attributes=attrs)
        token = context.attach(trace.set_span_in_context(span))
        start = time.perf_counter_ns()
        outcome = "success"
        try:
            result = func(x)
        except BaseException:
            outcome = "failure"
            raise
        finally:
            elapsed = time.perf_counter_ns() - start
            context.detach(token)
        point = {**attrs, "mev.outcome": outcome}
        duration.record(elapsed / 1e9, point)
        span_attrs: dict[str, Any] = {"mev.outcome": outcome}
        if defaults:
            gas, price = result["gasUsed"], result["effectiveGasPrice"]
            cost = gas * price
            gas_used.record(gas, point)
            gas_cost.add(cost / 1e18, point)
            span_attrs.update(
                {
                    "mev.tx.hash": result["transactionHash"],
                    "mev.block.number": result["blockNumber"],
                    "mev.tx.status": result["status"],
                    "mev.tx.to": result["to"],
                    "mev.gas.used": gas,
                    "mev.gas.effective_price_wei": str(price),
                    "mev.gas.cost_wei": str(cost),
                    "mev.gas.cost_eth": cost / 1e18,
                }
            )
        span.set_attributes(span_attrs)
        span.end()
        ctx = span.get_span_context()
        logger.info(
            "swap uniswap_v2 %s in %.2f ms",
            outcome,
            elapsed / 1e6,
            extra={
                "mevobs": {**point, **span_attrs, "mev.duration_ms": elapsed / 1e6},
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
            },
        )
        return result

    def flush() -> None:
        provider.force_flush()
        meters.force_flush()
        handler.flush()

    return wrapper, flush


# ----------------------------------------------------------------- measuring


EXPORTED = [0]
"""Spans the hand-written modes' exporter received."""


def run_mode(mode: str, calls: int, collector: str | None) -> dict[str, float]:
    """CPU nanoseconds per call for the whole process, flush included, and the
    telemetry lost in the timed region."""
    target, flush = _target(mode, collector)
    burst = BURSTS.get(mode, 0)
    for i in range(2_000):
        target(i)
        if burst and i % burst == burst - 1:
            time.sleep(PAUSE)
    flush()
    mevobs_mode = mode in ("unconfigured", "after-shutdown", "metrics-only", "full", "defaults")
    lost_before = _mevobs_lost() if mevobs_mode else 0
    exported_before = EXPORTED[0]
    if burst:
        start = time.process_time_ns()
        sleep = time.sleep
        for i in range(calls):
            target(i)
            if i % burst == burst - 1:
                sleep(PAUSE)
        flush()
        ns = (time.process_time_ns() - start) / calls
    else:
        # Sub-microsecond modes: a moment of the shared machine's steal time is a large
        # part of one block, so each round is the median of several.
        blocks = []
        for _ in range(BLOCKS):
            start = time.process_time_ns()
            for i in range(calls):
                target(i)
            flush()
            blocks.append((time.process_time_ns() - start) / calls)
        ns = statistics.median(blocks)
    if mevobs_mode:
        lost = _mevobs_lost() - lost_before
    elif mode.startswith("hand-written"):
        lost = calls - (EXPORTED[0] - exported_before)
    else:
        lost = 0
    return {"ns": ns, "lost": lost}


def run_latency(mode: str, calls: int, rate: int) -> dict[str, float]:
    """Caller-thread time of each call, paced at ``rate`` calls per second."""
    target, flush = _target(mode, None)
    for i in range(5_000):
        target(i)
    flush()
    interval = 1e9 / rate
    samples = []
    perf = time.perf_counter_ns
    begin = perf()
    for i in range(calls):
        due = begin + i * interval
        while (now := perf()) < due:
            if due - now > 150_000:
                time.sleep((due - now - 100_000) / 1e9)
        t0 = perf()
        target(i)
        samples.append(perf() - t0)
    flush()
    samples.sort()
    return {
        q: samples[min(len(samples) - 1, int(len(samples) * float(q) / 100))] / 1000
        for q in ("50", "99", "99.9")
    }


def _rotel() -> tuple[subprocess.Popen[bytes], str] | None:
    try:
        import rotel
    except ImportError:
        return None
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = Path(rotel.__file__).parent / "rotel-agent"
    proc = subprocess.Popen(
        [
            str(binary),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{port}",
            "--otlp-http-endpoint",
            "127.0.0.1:0",
            "--exporter",
            "blackhole",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"127.0.0.1:{port}"
        time.sleep(0.05)
    proc.kill()
    return None


def _child(args: list[str], stderr_file: Any) -> str:
    out = subprocess.run(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=stderr_file, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported")
    parser.add_argument("--latency-calls", type=int, default=30_000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--latency", help=argparse.SUPPRESS)
    parser.add_argument("--collector", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.calls, args.collector)))
        return
    if args.latency:
        print(json.dumps(run_latency(args.latency, args.calls, 10_000)))
        return
    modes = [m for m in args.modes.split(",") if m]
    collector = _rotel() if any("defaults" in m for m in modes) else None
    results: dict[str, list[float]] = {m: [] for m in modes}
    lost: dict[str, int] = {m: 0 for m in modes}
    latency: dict[str, list[dict[str, float]]] = {"full": [], "hand-written": []}
    try:
        with tempfile.TemporaryFile("w") as sink:
            for _ in range(args.rounds):
                for mode in modes:
                    if "defaults" in mode and collector is None:
                        continue
                    extra = ["--collector", collector[1]] if collector and "defaults" in mode else []
                    line = _child(["--mode", mode, "--calls", str(args.calls), *extra], sink)
                    measured = json.loads(line)
                    results[mode].append(measured["ns"])
                    lost[mode] = max(lost[mode], int(measured["lost"]))
                for mode in latency:
                    line = _child(["--latency", mode, "--calls", str(args.latency_calls)], sink)
                    latency[mode].append(json.loads(line))
    finally:
        if collector is not None:
            collector[0].terminate()
            collector[0].wait(10)
    med = {m: statistics.median(v) for m, v in results.items() if v}
    _report(med, lost, latency, args)


def _report(
    med: dict[str, float], lost: dict[str, int], latency: dict[str, list[dict[str, float]]], args: Any
) -> None:
    bare = med.get("bare", 0.0)
    print(
        f"python benchmarks/overhead.py --calls {args.calls} --rounds {args.rounds}"
        "  (medians, CPU ns per call)"
    )
    print(f"{'mode':<24}{'ns/call':>10}{'added vs bare':>15}{'lost':>8}")
    for mode, ns in med.items():
        print(f"{mode:<24}{ns:>10.0f}{ns - bare:>15.0f}{lost.get(mode, 0):>8}")
    print()
    checks: list[tuple[str, float, str, float, bool]] = []
    if "unconfigured" in med:
        checks.append(("unconfigured adds", (med["unconfigured"] - bare) / 1000, "us", 0.7, False))
    if "after-shutdown" in med:
        checks.append(("after shutdown adds", (med["after-shutdown"] - bare) / 1000, "us", 0.7, False))
    for name, mode, peer, target in (
        ("metrics-only / prometheus-client", "metrics-only", "prometheus-client", 1.2),
        ("full / hand-written", "full", "hand-written", 0.35),
        ("defaults / hand-written-defaults", "defaults", "hand-written-defaults", 0.45),
    ):
        if mode in med and peer in med:
            shed = lost.get(mode, 0) > 0 or lost.get(peer, 0) > 0
            checks.append((name, med[mode] / med[peer], "x", target, shed))
    for mode, runs in latency.items():
        if runs:
            p999 = statistics.median(r["99.9"] for r in runs)
            p99 = statistics.median(r["99"] for r in runs)
            p50 = statistics.median(r["50"] for r in runs)
            print(
                f"latency {mode:<14} p50 {p50:7.1f} us   p99 {p99:7.1f} us   p99.9 {p999:7.1f} us"
                "  (10 000 calls/s paced)"
            )
            if mode == "full":
                checks.append(("p99.9 of a full call", p999, "us", 100.0, False))
    print()
    for name, value, unit, target, shed in checks:
        verdict = "telemetry lost: not comparable" if shed else "ok" if value <= target else "OVER"
        print(f"{name:<36}{value:8.2f} {unit:<3} target <= {target:g} {unit:<3} {verdict}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
