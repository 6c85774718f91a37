"""The hand OTLP encoder against the SDK's: the same spans and log records, the same messages.

Each test builds data twice, through the real SDK (``TracerProvider`` with fixed ids
and timestamps, ``LoggerProvider``) encoded by ``opentelemetry-exporter-otlp-proto-common``,
and as mevobs records encoded by ``mevobs._otlp``; both are parsed with the official
``opentelemetry.proto`` classes and compared as messages. The hand encoder also writes
fields in protobuf's canonical order, so the serialized bytes are compared as well.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from mevobs._otlp import (
    EncodeResult,
    EventRecord,
    LinkRecord,
    LogRecordData,
    OtlpEncoder,
    Scope,
    SpanRecord,
    StaticAttributes,
)
from mevobs._otlp_output import record_from_readable

RESOURCE: dict[str, Any] = {"service.name": "searcher", "deployment.environment": "test", "host.cpu.count": 4}
SCHEMA = "https://opentelemetry.io/schemas/1.26.0"
TRACE = 0x5B8EFFF798038103D269B633813FC60C
T0 = 1_760_000_000_000_000_000
STATIC: dict[str, Any] = {"mev.operation": "swap", "mev.exchange": "uniswap_v3", "mev.chain": "ethereum"}
EVERY_TYPE: dict[str, Any] = {
    "str": "WETH",
    "str.empty": "",
    "str.unicode": "Ünïcødé ✓ 漢字 🦄",
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.small": 7,
    "int.negative": -1,
    "int.negative.big": -(10**15),
    "int.max": 2**63 - 1,
    "int.min": -(2**63),
    "int.too.big": 2**63,  # outside int64: the SDK's encoder leaves it out
    "int.too.small": -(2**63) - 1,
    "float": 0.003573,
    "float.negative": -12.5,
    "float.zero": 0.0,
    "float.inf": math.inf,
    "bytes": b"\x00\xffabc",
    "bytes.empty": b"",
    "none": None,
    "array.str": ["WETH", "", "USDC"],
    "array.bool": [True, False],
    "array.int": [1, -2, 2**40],
    "array.float": (1.5, -0.25),
    "array.empty": [],
    "array.with.none": ["a", None],
    "array.nested": [[1, 2], ["x"]],
    "array.mixed": [1, "a", 2.5, False],
    "array.too.big.int": [1, 2**64],
    "map": {"pool": "0xabc", "fee": 500, "nested": {"deep": [1]}},
}


class FixedIds(IdGenerator):
    """Span ids 1, 2, 3, ... in creation order; trace ids from ``TRACE`` upwards."""

    def __init__(self) -> None:
        self.span_ids = itertools.count(1)
        self.trace_ids = itertools.count(TRACE)

    def generate_span_id(self) -> int:
        return next(self.span_ids)

    def generate_trace_id(self) -> int:
        return next(self.trace_ids)


def sdk_spans(
    build: Callable[[TracerProvider], None],
    resource: Resource,
    limits: SpanLimits | None = None,
) -> list[Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, id_generator=FixedIds(), span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def check_spans(
    build: Callable[[TracerProvider], None],
    groups: list[tuple[Scope, list[SpanRecord]]],
    resource: Mapping[str, Any] = RESOURCE,
    schema_url: str = "",
    limits: SpanLimits | None = None,
) -> EncodeResult:
    """Encode the SDK's spans and ``groups`` and assert they are the same request."""
    expected = encode_spans(sdk_spans(build, Resource(resource, schema_url), limits))
    result = OtlpEncoder(resource, schema_url).encode_spans(groups)
    assert [p.record_count for p in result.payloads] == [sum(len(r) for _, r in groups)]
    data = result.payloads[0].data
    got = ExportTraceServiceRequest.FromString(data)
    assert got == expected, f"SDK:\n{expected}\nhand:\n{got}"
    assert data == expected.SerializeToString()
    return result


def span(
    span_id: int,
    name: str = "mev.swap",
    *,
    trace_id: int = TRACE,
    parent: int = 0,
    remote: bool = False,
    trace_state: str = "",
    kind: int = 1,
    start: int = T0,
    end: int = T0 + 812_345,
    static: StaticAttributes | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: list[Any] | None = None,
    status: tuple[int, str] = (0, ""),
    **rest: Any,
) -> SpanRecord:
    return SpanRecord(
        trace_id,
        span_id,
        parent,
        remote,
        1,
        trace_state,
        name,
        kind,
        start,
        end,
        static,
        attributes or {},
        events or [],
        status[0],
        status[1],
        **rest,
    )


ROOT = Context()


class TestSpans:
    def test_root_and_child_with_static_and_dynamic_attributes_events_and_status(self) -> None:
        """A swap under an arbitrage: static then dynamic attributes, an exception event, error status."""
        static = StaticAttributes(STATIC)
        dynamic = {"mev.outcome": "reverted", "mev.gas.used": 152_331, "mev.gas.cost_eth": 0.0035}
        exc = {
            "exception.type": "RevertError",
            "exception.message": "SPL",
            "exception.stacktrace": "x\n" * 300,
        }

        def build(provider: TracerProvider) -> None:
            tracer = provider.get_tracer("mevobs", "0.1.0")
            root = tracer.start_span(
                "mev.arbitrage", ROOT, attributes={"mev.operation": "arbitrage"}, start_time=T0
            )
            child = tracer.start_span(
                "mev.swap", set_span_in_context(root), SpanKind.CLIENT, STATIC, start_time=T0 + 10
            )
            child.set_attributes(dynamic)
            child.add_event("exception", exc, T0 + 15)
            child.set_status(Status(StatusCode.ERROR, "execution reverted"))
            child.end(T0 + 20)
            root.end(T0 + 30)

        scope = Scope("mevobs", "0.1.0")
        child = span(
            2,
            parent=1,
            kind=3,
            start=T0 + 10,
            end=T0 + 20,
            static=static,
            attributes=dynamic,
            events=[("exception", T0 + 15, exc)],
            status=(2, "execution reverted"),
        )
        root = span(1, "mev.arbitrage", end=T0 + 30, attributes={"mev.operation": "arbitrage"})
        check_spans(build, [(scope, [child, root])])

    def test_remote_parent_sets_the_is_remote_flag_and_trace_state_is_carried(self) -> None:
        """A span continuing a remote trace: flags 0x300, parent id, the W3C trace_state string."""
        state = TraceState([("vendor", "abc"), ("mev", "1")])
        parent = NonRecordingSpan(SpanContext(TRACE + 7, 0xFEED, True, TraceFlags(1), state))

        def build(provider: TracerProvider) -> None:
            ctx = set_span_in_context(parent)
            provider.get_tracer("mevobs").start_span("mev.rpc", ctx, SpanKind.SERVER, start_time=T0).end(
                T0 + 5
            )

        record = span(
            1,
            "mev.rpc",
            trace_id=TRACE + 7,
            parent=0xFEED,
            remote=True,
            trace_state="vendor=abc,mev=1",
            kind=2,
            end=T0 + 5,
        )
        check_spans(build, [(Scope("mevobs"), [record])])

    def test_local_parent_keeps_only_the_has_is_remote_flag(self) -> None:
        """A local parent (not remote) writes parent_span_id and flags 0x100."""
        parent = NonRecordingSpan(SpanContext(TRACE, 0xBEEF, False, TraceFlags(1)))

        def build(provider: TracerProvider) -> None:
            provider.get_tracer("mevobs").start_span("x", set_span_in_context(parent), start_time=T0).end(
                T0 + 1
            )

        check_spans(build, [(Scope("mevobs"), [span(1, "x", parent=0xBEEF, end=T0 + 1)])])

    @pytest.mark.parametrize("kind", list(SpanKind))
    def test_each_span_kind(self, kind: SpanKind) -> None:
        def build(provider: TracerProvider) -> None:
            provider.get_tracer("mevobs").start_span("k", ROOT, kind, start_time=T0).end(T0 + 1)

        check_spans(build, [(Scope("mevobs"), [span(1, "k", kind=kind.value + 1, end=T0 + 1)])])

    @pytest.mark.parametrize(
        ("status", "code", "message"),
        [
            (None, 0, ""),
            (Status(StatusCode.OK), 1, ""),
            (Status(StatusCode.ERROR, "boom: ✗"), 2, "boom: ✗"),
            (Status(StatusCode.ERROR), 2, ""),
        ],
    )
    def test_each_status(self, status: Status | None, code: int, message: str) -> None:
        def build(provider: TracerProvider) -> None:
            s = provider.get_tracer("mevobs").start_span("s", ROOT, start_time=T0)
            if status is not None:
                s.set_status(status)
            s.end(T0 + 1)

        check_spans(build, [(Scope("mevobs"), [span(1, "s", end=T0 + 1, status=(code, message))])])

    def test_a_status_message_without_error_is_not_written(self) -> None:
        """As the API's Status drops a description unless the code is ERROR."""
        result = OtlpEncoder({}).encode_spans([(Scope("m"), [span(1, status=(1, "fine"))])])
        got = ExportTraceServiceRequest.FromString(result.payloads[0].data)
        status = got.resource_spans[0].scope_spans[0].spans[0].status
        assert (status.code, status.message) == (1, "")

    def test_every_attribute_value_type(self) -> None:
        """Strings (empty, non-ASCII), bools, ints (negative, int64 bounds, out of range), floats,
        bytes, None, arrays of each kind, nested arrays and maps, on span and event attributes."""

        def build(provider: TracerProvider) -> None:
            s = provider.get_tracer("mevobs").start_span("types", ROOT, attributes=EVERY_TYPE, start_time=T0)
            s.add_event("e", EVERY_TYPE, T0 + 1)
            s.end(T0 + 2)

        record = span(1, "types", end=T0 + 2, attributes=EVERY_TYPE, events=[("e", T0 + 1, EVERY_TYPE)])
        result = check_spans(build, [(Scope("mevobs"), [record])])
        assert result.dropped_values == 6  # three out-of-range values, on the span and on its event

    def test_nan_is_encoded_like_the_sdk(self) -> None:
        """NaN never equals itself in a parsed message, so the bytes are compared."""

        def build(provider: TracerProvider) -> None:
            provider.get_tracer("m").start_span("n", ROOT, attributes={"x": math.nan}, start_time=T0).end(
                T0 + 1
            )

        expected = encode_spans(sdk_spans(build, Resource(RESOURCE))).SerializeToString()
        result = OtlpEncoder(RESOURCE).encode_spans(
            [(Scope("m"), [span(1, "n", end=T0 + 1, attributes={"x": math.nan})])]
        )
        assert result.payloads[0].data == expected

    def test_several_events_with_and_without_attributes(self) -> None:
        def build(provider: TracerProvider) -> None:
            s = provider.get_tracer("mevobs").start_span("ev", ROOT, start_time=T0)
            s.add_event("quote", {"mev.amount.out": "4512330000", "mev.slippage.bp": 3.5}, T0 + 1)
            s.add_event("", None, T0 + 2)
            s.add_event("submitted", {"mev.tx.hash": "0x" + "ab" * 32}, T0 + 3)
            s.end(T0 + 4)

        events = [
            EventRecord("quote", T0 + 1, {"mev.amount.out": "4512330000", "mev.slippage.bp": 3.5}),
            ("", T0 + 2, {}),
            ("submitted", T0 + 3, {"mev.tx.hash": "0x" + "ab" * 32}),
        ]
        check_spans(build, [(Scope("mevobs"), [span(1, "ev", end=T0 + 4, events=events)])])

    def test_several_scopes_and_a_resource_schema_url(self) -> None:
        """Spans of three instrumentation scopes (name, version, schema_url, attributes) in one request."""
        scopes = [
            ("mevobs", "0.1.0", "https://mevobs/schema/1", {"mev.scope": "core"}),
            ("opentelemetry.instrumentation.sqlite3", "0.66b1", "", None),
            ("", "", "", None),
        ]

        def build(provider: TracerProvider) -> None:
            for i, (name, version, schema, attrs) in enumerate(scopes):
                tracer = provider.get_tracer(name, version, schema, attrs)
                tracer.start_span(f"s{i}", ROOT, start_time=T0 + i).end(T0 + 10 + i)

        groups = [
            (
                Scope(name, version, schema, attrs),
                [span(i + 1, f"s{i}", trace_id=TRACE + i, start=T0 + i, end=T0 + 10 + i)],
            )
            for i, (name, version, schema, attrs) in enumerate(scopes)
        ]
        check_spans(build, groups, schema_url=SCHEMA)

    def test_dropped_counts_and_links(self) -> None:
        """Limits make the SDK drop attributes, events and links; the counts and the links carry over."""
        limits = SpanLimits(
            max_span_attributes=2, max_events=1, max_links=1, max_event_attributes=1, max_link_attributes=1
        )
        remote = SpanContext(TRACE + 9, 0xC0FFEE, True, TraceFlags(1))
        local = SpanContext(TRACE + 8, 0xD00D, False, TraceFlags(0))

        def build(provider: TracerProvider) -> None:
            links = [Link(local), Link(remote, {"a": 1, "b": 2})]  # the SDK keeps the last link
            s = provider.get_tracer("m").start_span(
                "lim", ROOT, attributes={"a": 1, "b": 2, "c": 3}, links=links, start_time=T0
            )
            s.add_event("e1", {"x": 1, "y": 2}, T0 + 1)
            s.add_event("e2", None, T0 + 2)
            s.end(T0 + 3)

        record = span(
            1,
            "lim",
            end=T0 + 3,
            attributes={"b": 2, "c": 3},
            dropped_attributes_count=1,
            events=[EventRecord("e2", T0 + 2, {})],
            dropped_events_count=1,
            links=[LinkRecord(TRACE + 9, 0xC0FFEE, True, {"b": 2}, 1)],
            dropped_links_count=1,
        )
        check_spans(build, [(Scope("m"), [record])], limits=limits)

    def test_a_dynamic_attribute_repeating_a_static_key_wins_and_moves_to_the_end(self) -> None:
        """As set_attribute on an SDK span re-inserts an existing key."""
        static = StaticAttributes(STATIC)
        dynamic = {"mev.outcome": "success", "mev.exchange": "sushiswap"}

        def build(provider: TracerProvider) -> None:
            s = provider.get_tracer("m").start_span("dup", ROOT, attributes=STATIC, start_time=T0)
            s.set_attributes(dynamic)
            s.end(T0 + 1)

        check_spans(build, [(Scope("m"), [span(1, "dup", end=T0 + 1, static=static, attributes=dynamic)])])

    def test_an_empty_key_is_dropped_and_counted_like_the_sdk(self) -> None:
        def build(provider: TracerProvider) -> None:
            s = provider.get_tracer("m").start_span("k", ROOT, attributes={"": 1, "ok": 2}, start_time=T0)
            s.end(T0 + 1)

        check_spans(build, [(Scope("m"), [span(1, "k", end=T0 + 1, attributes={"": 1, "ok": 2})])])

    def test_records_converted_from_sdk_spans_encode_like_the_sdk(self) -> None:
        """record_from_readable keeps everything the SDK's encoder reads, across scopes."""
        parent = NonRecordingSpan(SpanContext(TRACE, 0xFEED, True, TraceFlags(1), TraceState([("k", "v")])))

        def build(provider: TracerProvider) -> None:
            a = provider.get_tracer("a", "1", "https://a", {"x": 1})
            b = provider.get_tracer("b")
            s = a.start_span(
                "one",
                set_span_in_context(parent),
                SpanKind.PRODUCER,
                EVERY_TYPE,
                links=[Link(SpanContext(TRACE + 1, 5, False), {"l": "x"})],
                start_time=T0,
            )
            s.add_event("e", {"k": [1, 2]}, T0 + 1)
            s.set_status(Status(StatusCode.ERROR, "bad"))
            s.end(T0 + 2)
            b.start_span("two", ROOT, SpanKind.CONSUMER, start_time=T0).end(T0 + 3)
            a.start_span("three", ROOT, start_time=T0).end(T0 + 4)

        spans = sdk_spans(build, Resource(RESOURCE, SCHEMA))
        groups: dict[Scope, list[SpanRecord]] = {}
        for s in spans:
            scope, record = record_from_readable(s)
            groups.setdefault(scope, []).append(record)
        expected = encode_spans(spans)
        data = OtlpEncoder(RESOURCE, SCHEMA).encode_spans(groups.items()).payloads[0].data
        assert ExportTraceServiceRequest.FromString(data) == expected
        assert data == expected.SerializeToString()


class TestStrings:
    def test_a_lone_surrogate_in_a_value_or_key_drops_that_attribute_like_the_sdk(self) -> None:
        attrs = {"ok": "fine", "bad.value": "a\ud800b", "bad\udfffkey": 1, "array": ["x", "\ud83d"]}

        def build(provider: TracerProvider) -> None:
            provider.get_tracer("m").start_span("s", ROOT, attributes=attrs, start_time=T0).end(T0 + 1)

        result = check_spans(build, [(Scope("m"), [span(1, "s", end=T0 + 1, attributes=attrs)])])
        assert result.dropped_values == 3

    def test_a_lone_surrogate_in_a_span_name_is_replaced_where_the_sdk_fails_the_batch(self) -> None:
        def build(provider: TracerProvider) -> None:
            provider.get_tracer("m").start_span("bad\ud800name", ROOT, start_time=T0).end(T0 + 1)

        with pytest.raises(UnicodeEncodeError):
            encode_spans(sdk_spans(build, Resource(RESOURCE)))
        record = span(1, "bad\ud800name", end=T0 + 1, status=(2, "\udc00"), events=[("e\udfff", T0, {})])
        result = OtlpEncoder(RESOURCE).encode_spans([(Scope("m\ud800"), [record])])
        got = ExportTraceServiceRequest.FromString(result.payloads[0].data).resource_spans[0].scope_spans[0]
        assert got.scope.name == "m\ufffd"
        assert got.spans[0].name == "bad\ufffdname"
        assert got.spans[0].status.message == "\ufffd"
        assert got.spans[0].events[0].name == "e\ufffd"
        assert result.replaced_strings == 3  # the scope's name is repaired once, when the Scope is built

    def test_a_surrogate_pair_left_in_a_name_becomes_the_character_it_stands_for(self) -> None:
        result = OtlpEncoder({}).encode_spans([(Scope("m"), [span(1, "unicorn \ud83e\udd84")])])
        got = ExportTraceServiceRequest.FromString(result.payloads[0].data)
        assert got.resource_spans[0].scope_spans[0].spans[0].name == "unicorn 🦄"


def sdk_logs(emit: Callable[[LoggerProvider], None], resource: Resource) -> ExportLogsServiceRequest:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    emit(provider)
    provider.shutdown()
    return encode_logs(exporter.get_finished_logs())


class TestLogs:
    def check(
        self,
        emit: Callable[[LoggerProvider], None],
        groups: list[tuple[Scope, list[LogRecordData]]],
        schema_url: str = "",
    ) -> EncodeResult:
        expected = sdk_logs(emit, Resource(RESOURCE, schema_url))
        result = OtlpEncoder(RESOURCE, schema_url).encode_logs(groups)
        data = result.payloads[0].data
        got = ExportLogsServiceRequest.FromString(data)
        assert got == expected, f"SDK:\n{expected}\nhand:\n{got}"
        assert data == expected.SerializeToString()
        return result

    def test_records_with_and_without_trace_context_and_each_severity(self) -> None:
        in_span = set_span_in_context(NonRecordingSpan(SpanContext(TRACE, 0xABC, False, TraceFlags(1))))
        unsampled = set_span_in_context(NonRecordingSpan(SpanContext(TRACE + 1, 0xDEF, False, TraceFlags(0))))
        static = StaticAttributes(STATIC)
        dynamic = {"mev.outcome": "success", "mev.gas.used": 152_331, "mev.duration_ms": 0.812}
        severities = list(SeverityNumber)[1:]

        def emit(provider: LoggerProvider) -> None:
            logger = provider.get_logger("mevobs", "0.1.0", "https://mevobs/schema/1", {"k": "v"})
            for i, sev in enumerate(severities):
                ctx = (in_span, unsampled, ROOT)[i % 3]
                logger.emit(
                    timestamp=T0 + i,
                    observed_timestamp=T0 + 100 + i,
                    context=ctx,
                    severity_number=sev,
                    severity_text=sev.name,
                    body=f"mev.swap success {i} ✓",
                    attributes={**STATIC, **dynamic},
                )

        ids = ((TRACE, 0xABC, 1), (TRACE + 1, 0xDEF, 0), (0, 0, 0))
        records = [
            LogRecordData(
                T0 + i,
                T0 + 100 + i,
                sev.value,
                sev.name,
                f"mev.swap success {i} ✓",
                static,
                dynamic,
                *ids[i % 3],
            )
            for i, sev in enumerate(severities)
        ]
        assert len(severities) == 24
        self.check(emit, [(Scope("mevobs", "0.1.0", "https://mevobs/schema/1", {"k": "v"}), records)], SCHEMA)

    def test_event_name_bodies_of_every_type_and_unset_fields(self) -> None:
        bodies: list[Any] = [None, "", {"a": [1, {"b": b"\x01"}]}, [1, "x", None], 42, -7, 2.5, True, b"raw"]

        def emit(provider: LoggerProvider) -> None:
            logger = provider.get_logger("m")
            for i, body in enumerate(bodies):
                logger.emit(
                    observed_timestamp=T0 + i,
                    context=ROOT,
                    body=body,
                    event_name="mev.ev" if i % 2 else None,
                    attributes=EVERY_TYPE if i == 0 else None,
                )

        records = [
            LogRecordData(
                0,
                T0 + i,
                0,
                "",
                body,
                None,
                EVERY_TYPE if i == 0 else {},
                event_name="mev.ev" if i % 2 else "",
            )
            for i, body in enumerate(bodies)
        ]
        self.check(emit, [(Scope("m"), records)])

    def test_a_body_the_sdk_cannot_encode_is_kept_as_far_as_possible(self) -> None:
        """The SDK fails the whole batch on these; mevobs repairs or empties the body and counts it."""
        records = [
            LogRecordData(T0, T0, 9, "INFO", "bad \ud800 text", None, {}),
            LogRecordData(T0, T0, 9, "INFO", ["ok", "bad \udfff"], None, {}),
            LogRecordData(T0, T0, 9, "INFO", 2**64, None, {}),
            LogRecordData(T0, T0, 9, "INFO", ["bad \udfff", 2**64], None, {}),
        ]
        result = OtlpEncoder({}).encode_logs([(Scope("m"), records)])
        got = ExportLogsServiceRequest.FromString(result.payloads[0].data).resource_logs[0].scope_logs[0]
        assert got.log_records[0].body.string_value == "bad \ufffd text"
        assert [v.string_value for v in got.log_records[1].body.array_value.values] == ["ok", "bad \ufffd"]
        assert not got.log_records[2].body.HasField("int_value")
        assert got.log_records[3].body.WhichOneof("value") is None
        assert (result.replaced_strings, result.dropped_values) == (3, 2)


class TestBadInput:
    def test_a_cyclic_or_too_deep_value_is_dropped_not_recursed_forever(self) -> None:
        cyclic: list[Any] = []
        cyclic.append(cyclic)
        deep: Any = "leaf"
        for _ in range(100):
            deep = [deep]
        record = span(1, attributes={"cyclic": cyclic, "deep": deep, "ok": 1})
        result = OtlpEncoder({}).encode_spans([(Scope("m"), [record])])
        got = ExportTraceServiceRequest.FromString(result.payloads[0].data).resource_spans[0].scope_spans[0]
        assert [kv.key for kv in got.spans[0].attributes] == ["ok"]
        assert result.dropped_values == 2

    def test_attributes_that_are_not_a_mapping_are_dropped_and_counted(self) -> None:
        record = span(1, attributes=[("a", 1)])  # type: ignore[arg-type]
        result = OtlpEncoder({}).encode_spans([(Scope("m"), [record])])
        assert (result.payloads[0].record_count, result.dropped_values, result.failed) == (1, 1, 0)

    def test_a_value_of_another_type_is_sent_as_its_str_like_the_sdk(self) -> None:
        """The SDK keeps str(value) for a type with its own __str__/__repr__, an empty value otherwise."""
        from decimal import Decimal

        class Opaque:
            pass

        attrs = {"decimal": Decimal("1.50"), "opaque": Opaque(), "in.array": [Decimal("2")]}

        def build(provider: TracerProvider) -> None:
            provider.get_tracer("m").start_span("s", ROOT, attributes=attrs, start_time=T0).end(T0 + 1)

        check_spans(build, [(Scope("m"), [span(1, "s", end=T0 + 1, attributes=attrs)])])


class TestBatches:
    def test_payloads_are_split_under_max_bytes_and_keep_every_record_in_order(self) -> None:
        spans = [span(i + 1, f"s{i}", attributes={"pad": "x" * (i * 37 % 500)}) for i in range(200)]
        scopes = [Scope("a"), Scope("b", "2")]
        groups = [(scopes[0], spans[:120]), (scopes[1], spans[120:])]
        result = OtlpEncoder(RESOURCE, SCHEMA, max_bytes=8_000).encode_spans(groups)
        assert len(result.payloads) > 5
        names: list[tuple[str, str]] = []
        for payload in result.payloads:
            assert len(payload.data) <= 8_000
            request = ExportTraceServiceRequest.FromString(payload.data)
            (rs,) = request.resource_spans
            assert rs.schema_url == SCHEMA
            n = 0
            for ss in rs.scope_spans:
                names += [(ss.scope.name, s.name) for s in ss.spans]
                n += len(ss.spans)
            assert n == payload.record_count
        assert names == [("a", f"s{i}") for i in range(120)] + [("b", f"s{i}") for i in range(120, 200)]
        assert (result.oversized, result.failed) == (0, 0)

    def test_a_span_larger_than_max_bytes_alone_is_left_out_and_counted(self) -> None:
        spans = [span(1, "small"), span(2, "huge", attributes={"pad": "x" * 5_000}), span(3, "small")]
        result = OtlpEncoder({}, max_bytes=2_000).encode_spans([(Scope("m"), spans)])
        assert result.oversized == 1
        assert [p.record_count for p in result.payloads] == [2]  # the huge one does not cut the batch in two

    def test_a_record_that_cannot_be_encoded_is_counted_not_raised(self) -> None:
        spans = [
            span(1, "ok"),
            span(2, "bad", trace_id=1 << 130),
            span(3, "bad", kind=-1),
            span(4, "bad", kind=200),
            span(5, "bad", dropped_attributes_count=-1),
            span(6, "bad", start=-1),
            span(7, "ok"),
        ]
        result = OtlpEncoder({}).encode_spans([(Scope("m"), spans)])
        assert result.failed == 5
        assert result.payloads[0].record_count == 2

    @settings(max_examples=60, deadline=None)
    @given(
        sizes=st.lists(st.integers(0, 3_000), min_size=1, max_size=40),
        limit=st.integers(300, 20_000),
    )
    def test_splitting_never_exceeds_the_limit_nor_loses_a_record_that_fits(
        self, sizes: list[int], limit: int
    ) -> None:
        spans = [span(i + 1, "s", attributes={"pad": "x" * n}) for i, n in enumerate(sizes)]
        result = OtlpEncoder(RESOURCE, max_bytes=limit).encode_spans([(Scope("m"), spans)])
        sent = []
        for payload in result.payloads:
            assert len(payload.data) <= limit
            request = ExportTraceServiceRequest.FromString(payload.data)
            sent += [int.from_bytes(s.span_id, "big") for s in request.resource_spans[0].scope_spans[0].spans]
        alone = {
            i + 1: len(OtlpEncoder(RESOURCE).encode_spans([(Scope("m"), [s])]).payloads[0].data)
            for i, s in enumerate(spans)
        }
        assert sent == [i for i in alone if alone[i] <= limit]
        assert result.oversized == len(spans) - len(sent)


# -- random attribute maps, SDK against hand encoding

_text = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=12)
_scalars = st.one_of(
    _text,
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
    st.none(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=6,
)
_maps = st.dictionaries(_text, _values, max_size=8)


@pytest.fixture
def quiet_sdk_logging() -> Iterator[None]:
    """The SDK's encoder logs a traceback for every attribute it leaves out; random maps have many."""
    log = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")
    level = log.level
    log.setLevel(logging.CRITICAL)
    yield
    log.setLevel(level)


@pytest.mark.usefixtures("quiet_sdk_logging")
class TestRandomAttributes:
    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(static=_maps, dynamic=_maps, event=_maps)
    def test_span_attributes(
        self, static: dict[str, Any], dynamic: dict[str, Any], event: dict[str, Any]
    ) -> None:
        """Any attribute maps (surrogates, out-of-range ints, nesting) encode as the SDK encodes them."""

        def build(provider: TracerProvider) -> None:
            s = provider.get_tracer("m").start_span("r", ROOT, attributes=static, start_time=T0)
            s.set_attributes(dynamic)
            s.add_event("e", event, T0 + 1)
            s.end(T0 + 2)

        sdk = sdk_spans(build, Resource(RESOURCE))[0]
        record = span(
            1,
            "r",
            end=T0 + 2,
            static=StaticAttributes(static),
            attributes=dynamic,
            events=[("e", T0 + 1, event)],
            dropped_attributes_count=0,
        )
        expected = encode_spans([sdk])
        result = OtlpEncoder(RESOURCE).encode_spans([(Scope("m"), [record])])
        got = ExportTraceServiceRequest.FromString(result.payloads[0].data)
        assert got == expected
        assert result.payloads[0].data == expected.SerializeToString()

    @pytest.mark.filterwarnings("ignore::opentelemetry.sdk._logs.LogRecordDroppedAttributesWarning")
    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(attributes=_maps)
    def test_log_attributes(self, attributes: dict[str, Any]) -> None:
        def emit(provider: LoggerProvider) -> None:
            provider.get_logger("m").emit(
                timestamp=T0, observed_timestamp=T0, context=ROOT, body="b", attributes=attributes
            )

        expected = sdk_logs(emit, Resource(RESOURCE))
        result = OtlpEncoder(RESOURCE).encode_logs(
            [(Scope("m"), [LogRecordData(T0, T0, 0, "", "b", None, attributes)])]
        )
        assert ExportLogsServiceRequest.FromString(result.payloads[0].data) == expected
        assert result.payloads[0].data == expected.SerializeToString()
