"""CPU cost of encoding a mevobs span / log record to OTLP: the hand encoder against the SDK's.

Run: PYTHONPATH=src python benchmarks/encode.py [--batch 512] [--rounds 40]

Each case encodes a batch of identical-shape records (3 static + 12 dynamic
attributes, values varying per record) into complete export requests, many
rounds, and prints the median and best CPU time (``time.thread_time_ns``) per
record. "SDK" is ``encode_spans``/``encode_logs`` plus ``SerializeToString`` on
the equivalent ``ReadableSpan``/``ReadableLogRecord`` objects (what the SDK's
exporters spend before sending). "FromString" is what the gRPC adapter adds per record
(``ExportTraceServiceRequest.FromString`` of the payload, once per payload), and
"+ SerializeToString" adds the serialization grpc does when sending it, which the
SDK's own exporter pays too.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from mevobs._otlp import LogRecordData, OtlpEncoder, Scope, SpanRecord, StaticAttributes

STATIC = {"mev.operation": "swap", "mev.exchange": "uniswap_v3", "mev.chain": "ethereum"}
RESOURCE = {"service.name": "searcher", "service.version": "1.4.2", "deployment.environment": "prod"}
STACK = "".join(
    f'  File "/srv/bot/strategies/arb_{i}.py", line {100 + i}, in step_{i}\n'
    "    result = self.route(pool, amount)\n"
    for i in range(12)
)


def dynamic(i: int) -> dict[str, Any]:
    return {
        "mev.outcome": "success",
        "mev.tx.hash": f"0x{i:064x}",
        "mev.block.number": 19_876_543 + i // 10,
        "mev.gas.used": 152_331 + i,
        "mev.gas.effective_price_wei": str(23_456_789_012 + i),
        "mev.gas.cost_wei": str((152_331 + i) * (23_456_789_012 + i)),
        "mev.gas.cost_eth": (152_331 + i) * (23_456_789_012 + i) / 1e18,
        "mev.amount.in": str(1_500_000_000_000_000_000 + i),
        "mev.amount.out": str(4_512_330_000 + i),
        "mev.token.in": "WETH",
        "mev.token.out": "USDC",
        "mev.slippage.bp": 12.5 + i % 7,
    }


def exception_event(t: int, i: int) -> tuple[str, int, dict[str, Any]]:
    message = f"execution reverted: amountOut {4_512_330_000 + i * 7919} below minimum"
    return (
        "exception",
        t,
        {
            "exception.type": "RevertError",
            "exception.message": message,
            "exception.stacktrace": "Traceback (most recent call last):\n"
            + STACK
            + f"RevertError: {message}\n",
        },
    )


def span_records(n: int, with_event: bool) -> list[SpanRecord]:
    static = StaticAttributes(STATIC)
    base = 1_760_000_000_000_000_000
    out = []
    for i in range(n):
        start = base + i * 1_000_000
        out.append(
            SpanRecord(
                0x5B8EFFF798038103D269B633813FC60C + i, 0xEEE19B7EC3C1B174 + i, 0x1234 + i, False, 1, "",
                "mev.swap", 3, start, start + 812_345, static, dynamic(i),
                [exception_event(start + 800_000, i)] if with_event else (),
                2 if with_event else 1, "execution reverted" if with_event else "",
            )
        )  # fmt: skip
    return out


def log_records(n: int) -> list[LogRecordData]:
    static = StaticAttributes(STATIC)
    base = 1_760_000_000_000_000_000
    return [
        LogRecordData(
            base + i, base + i + 5_000, 9, "INFO", "mev.swap success in 0.81 ms", static, dynamic(i),
            0x5B8EFFF798038103D269B633813FC60C + i, 0xEEE19B7EC3C1B174 + i, 1,
        )
        for i in range(n)
    ]  # fmt: skip


def sdk_spans(records: list[SpanRecord]) -> list[Any]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import (
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        Status,
        StatusCode,
        TraceFlags,
        set_span_in_context,
    )

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("mevobs", "0.1.0")
    for r in records:
        parent = NonRecordingSpan(SpanContext(r.trace_id, r.parent_span_id, False, TraceFlags(1)))
        span = tracer.start_span(
            r.name,
            set_span_in_context(parent),
            SpanKind.CLIENT,
            {**STATIC, **r.attributes},
            start_time=r.start_ns,
        )
        for name, t, attrs in r.events:  # type: ignore[misc]
            span.add_event(name, attrs, t)
        if r.status_code == 2:
            span.set_status(Status(StatusCode.ERROR, r.status_message))
        span.end(r.end_ns)
    return list(exporter.get_finished_spans())


def sdk_logs(records: list[LogRecordData]) -> list[Any]:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    resource = Resource(RESOURCE)
    scope = InstrumentationScope("mevobs", "0.1.0")
    out = []
    for r in records:
        ctx = set_span_in_context(NonRecordingSpan(SpanContext(r.trace_id, r.span_id, False, TraceFlags(1))))
        record = LogRecord(
            timestamp=r.time_ns, observed_timestamp=r.observed_ns, context=ctx,
            severity_number=SeverityNumber(r.severity_number), severity_text=r.severity_text, body=r.body,
            attributes={**STATIC, **r.attributes},
        )  # fmt: skip
        out.append(ReadableLogRecord(record, resource, scope))
    return out


def per_record(fn: Callable[[], object], n: int, rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        t0 = time.thread_time_ns()
        fn()
        samples.append((time.thread_time_ns() - t0) / n)
    return statistics.median(samples), min(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    n, rounds = args.batch, args.rounds

    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    parse = ExportTraceServiceRequest.FromString
    encoder = OtlpEncoder(RESOURCE)
    scope = Scope("mevobs", "0.1.0")
    rows = []
    for label, with_event in (("span", False), ("span + exception event", True)):
        records = span_records(n, with_event)
        result = encoder.encode_spans([(scope, records)])
        assert len(result.payloads) == 1 and result.payloads[0].record_count == n
        payload = result.payloads[0].data
        rows.append(
            (f"{label}: hand", per_record(lambda r=records: encoder.encode_spans([(scope, r)]), n, rounds))
        )
        spans = sdk_spans(records)
        rows.append(
            (
                f"{label}: SDK",
                per_record(lambda s=spans: encode_spans(s).SerializeToString(), n, max(4, rounds // 4)),
            )
        )
        rows.append((f"{label}: FromString", per_record(lambda p=payload: parse(p), n, rounds)))
        rows.append(
            (
                f"{label}: FromString + SerializeToString",
                per_record(lambda p=payload: parse(p).SerializeToString(), n, rounds),
            )
        )
        rows.append((f"{label}: bytes per span", (len(payload) / n, len(payload) / n)))
    logs = log_records(n)
    rows.append(("log record: hand", per_record(lambda: encoder.encode_logs([(scope, logs)]), n, rounds)))
    readable = sdk_logs(logs)
    rows.append(
        (
            "log record: SDK",
            per_record(lambda: encode_logs(readable).SerializeToString(), n, max(4, rounds // 4)),
        )
    )

    print(f"batch of {n}, CPU ns per record (median / best of {rounds} rounds)")
    for label, (median, best) in rows:
        print(f"  {label:<50} {median:>9.0f} {best:>9.0f}")


if __name__ == "__main__":
    main()
