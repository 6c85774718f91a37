"""Encoded payloads through the SDK's own OTLP exporters, to real receivers on 127.0.0.1.

For each protocol the same spans and log records go out twice, once through the
plain SDK exporter and once as a hand-encoded payload through the mevobs adapter;
what the receiver gets must be the same request, with the same headers, and the
exporter configuration from the environment (headers, gzip) must apply to both.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace import set_span_in_context as in_span
from tests.integration.conftest import Rotel
from tests.integration.otlp_sink import Sink

from mevobs._otlp import LogRecordData, OtlpEncoder, Scope, SpanRecord, StaticAttributes
from mevobs._otlp_export import EncodedExporter, build_encoded_log_exporter, build_encoded_span_exporter
from mevobs._otlp_output import record_from_readable

pytestmark = pytest.mark.integration

RESOURCE: dict[str, Any] = {"service.name": "searcher", "deployment.environment": "test"}
SCHEMA = "https://opentelemetry.io/schemas/1.26.0"
T0 = 1_760_000_000_000_000_000
TRACE = 0x5B8EFFF798038103D269B633813FC60C
STATIC: dict[str, Any] = {"mev.operation": "swap", "mev.exchange": "uniswap_v3", "mev.chain": "ethereum"}
DYNAMIC: dict[str, Any] = {
    "mev.outcome": "reverted",
    "mev.block.number": 19_876_543,
    "mev.gas.cost_eth": 0.0035,
    "mev.route": ["WETH", "USDC"],
}


def sdk_spans() -> list[Any]:
    """A swap under an arbitrage and an RPC call under a remote parent, across two scopes."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource(RESOURCE, SCHEMA))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("mevobs", "0.1.0")
    root = tracer.start_span("mev.arbitrage", Context(), start_time=T0)
    child = tracer.start_span(
        "mev.swap", in_span(root), SpanKind.CLIENT, {**STATIC, **DYNAMIC}, start_time=T0 + 1
    )
    child.add_event("exception", {"exception.type": "RevertError", "exception.message": "SPL"}, T0 + 2)
    child.set_status(Status(StatusCode.ERROR, "execution reverted"))
    child.end(T0 + 3)
    root.end(T0 + 4)
    remote = NonRecordingSpan(SpanContext(TRACE, 0xFEED, True, TraceFlags(1)))
    rpc = provider.get_tracer("web3.instrumentation", "7.0").start_span(
        "eth_call", in_span(remote), SpanKind.CLIENT
    )
    rpc.end()
    provider.shutdown()
    return list(exporter.get_finished_spans())


def encoded_spans(spans: list[Any]) -> bytes:
    groups: dict[Scope, list[SpanRecord]] = {}
    for s in spans:
        scope, record = record_from_readable(s)
        groups.setdefault(scope, []).append(record)
    result = OtlpEncoder(RESOURCE, SCHEMA).encode_spans(groups.items())
    (payload,) = result.payloads
    return payload.data


LOG_CONTEXT = in_span(NonRecordingSpan(SpanContext(TRACE, 0xABC, False, TraceFlags(1))))


def sdk_logs() -> list[Any]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource(RESOURCE, SCHEMA))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("mevobs", "0.1.0")
    logger.emit(
        timestamp=T0,
        observed_timestamp=T0 + 1,
        context=LOG_CONTEXT,
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body="mev.swap reverted in 0.81 ms",
        attributes={**STATIC, **DYNAMIC},
    )
    logger.emit(
        observed_timestamp=T0 + 2,
        context=Context(),
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body="startup",
        event_name="mev.start",
    )
    provider.shutdown()
    return list(exporter.get_finished_logs())


def encoded_logs() -> bytes:
    static = StaticAttributes(STATIC)
    records = [
        LogRecordData(
            T0, T0 + 1, 17, "ERROR", "mev.swap reverted in 0.81 ms", static, DYNAMIC, TRACE, 0xABC, 1
        ),
        LogRecordData(0, T0 + 2, 9, "INFO", "startup", None, {}, event_name="mev.start"),
    ]
    (payload,) = OtlpEncoder(RESOURCE, SCHEMA).encode_logs([(Scope("mevobs", "0.1.0"), records)]).payloads
    return payload.data


class MetadataSink(Sink):
    """The OTLP gRPC sink, also keeping each call's metadata (the headers the exporter sent)."""

    def __init__(self) -> None:
        super().__init__()
        self.metadata: list[dict[str, str]] = []

    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            self.metadata.append(dict(context.invocation_metadata()))
        return super().Export(request, context)


@pytest.fixture
def grpc_sink() -> Iterator[MetadataSink]:
    sink = MetadataSink()
    sink.start()
    yield sink
    sink.stop()


class Captured(ThreadingHTTPServer):
    """An OTLP/HTTP receiver keeping each POST's path, headers and raw body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CaptureHandler)
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def body(self, i: int) -> bytes:
        _, headers, raw = self.posts[i]
        return gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw


class _CaptureHandler(BaseHTTPRequestHandler):
    server: Captured

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_sink() -> Iterator[Captured]:
    server = Captured()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


class TestGrpc:
    def test_spans_and_logs_arrive_as_the_sdk_exporter_sends_them(self, grpc_sink: MetadataSink) -> None:
        endpoint = f"http://127.0.0.1:{grpc_sink.port}"
        spans = sdk_spans()
        GrpcSpanExporter(endpoint=endpoint, insecure=True).export(spans)
        adapter: Any = build_encoded_span_exporter("grpc", endpoint=endpoint, insecure=True)
        assert adapter.export_encoded(encoded_spans(spans), len(spans))
        assert adapter.export(spans).name == "SUCCESS"  # plain SDK batches still go through
        GrpcLogExporter(endpoint=endpoint, insecure=True).export(sdk_logs())
        logs = build_encoded_log_exporter("grpc", endpoint=endpoint, insecure=True)
        assert logs.export_encoded(encoded_logs(), 2)

        sdk_request, adapter_request, plain_request = grpc_sink.traces
        assert adapter_request == sdk_request == plain_request
        assert grpc_sink.logs[1] == grpc_sink.logs[0]
        assert grpc_sink.metadata[1] == grpc_sink.metadata[0]  # user agent included
        adapter.shutdown()
        logs.shutdown()

    def test_environment_headers_apply_per_signal(
        self, grpc_sink: MetadataSink, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """OTEL_EXPORTER_OTLP_TRACES_HEADERS replaces the general headers for spans; logs get those."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=general,x-tenant=mev")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-api-key=traces-only")
        endpoint = f"http://127.0.0.1:{grpc_sink.port}"
        spans = build_encoded_span_exporter("grpc", endpoint=endpoint, insecure=True)
        logs = build_encoded_log_exporter("grpc", endpoint=endpoint, insecure=True)
        assert spans.export_encoded(encoded_spans(sdk_spans()), 3)
        assert logs.export_encoded(encoded_logs(), 2)
        span_meta, log_meta = grpc_sink.metadata
        assert (span_meta["x-api-key"], "x-tenant" in span_meta) == ("traces-only", False)
        assert (log_meta["x-api-key"], log_meta["x-tenant"]) == ("general", "mev")
        spans.shutdown()
        logs.shutdown()

    def test_gzip_from_the_environment_compresses_the_message(
        self, grpc_sink: MetadataSink, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Read off the wire: the gRPC message's compressed flag, between exporter and sink."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        tap = H2Tap(grpc_sink.port)
        try:
            adapter = build_encoded_span_exporter(
                "grpc", endpoint=f"http://127.0.0.1:{tap.port}", insecure=True
            )
            payload = encoded_spans(sdk_spans())
            assert adapter.export_encoded(payload, 3)
            adapter.shutdown()
        finally:
            tap.close()
        assert grpc_sink.traces[0].SerializeToString() == payload
        assert tap.compressed_flags == [1]

    def test_an_unreachable_receiver_is_false_after_the_timeout_not_an_exception(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        adapter = build_encoded_span_exporter(
            "grpc", endpoint=f"http://127.0.0.1:{port}", insecure=True, timeout=1
        )
        assert adapter.export_encoded(encoded_spans(sdk_spans()), 3) is False
        adapter.shutdown()


class TestHttp:
    def test_spans_and_logs_arrive_as_the_sdk_exporter_sends_them(self, http_sink: Captured) -> None:
        spans = sdk_spans()
        traces_url, logs_url = f"{http_sink.url}/v1/traces", f"{http_sink.url}/v1/logs"
        HttpSpanExporter(endpoint=traces_url).export(spans)
        adapter: Any = build_encoded_span_exporter("http/protobuf", endpoint=traces_url)
        assert adapter.export_encoded(encoded_spans(spans), len(spans))
        HttpLogExporter(endpoint=logs_url).export(sdk_logs())
        logs = build_encoded_log_exporter("http/protobuf", endpoint=logs_url)
        assert logs.export_encoded(encoded_logs(), 2)
        assert adapter.export(spans).name == "SUCCESS"  # plain SDK batches still go through

        paths = [path for path, _, _ in http_sink.posts]
        assert paths == ["/v1/traces", "/v1/traces", "/v1/logs", "/v1/logs", "/v1/traces"]
        traces = [ExportTraceServiceRequest.FromString(http_sink.body(i)) for i in (0, 1, 4)]
        assert traces[1] == traces[0] == traces[2]
        logs_sent = [ExportLogsServiceRequest.FromString(http_sink.body(i)) for i in (2, 3)]
        assert logs_sent[1] == logs_sent[0]
        headers = [h for _, h, _ in http_sink.posts]
        assert headers[1] == headers[0] == headers[4]
        assert headers[3] == headers[2]
        adapter.shutdown()
        logs.shutdown()

    def test_environment_headers_and_gzip_apply(
        self, http_sink: Captured, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=general,x-tenant=mev")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-api-key=logs-only")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", http_sink.url)
        spans = build_encoded_span_exporter("http/protobuf")
        logs = build_encoded_log_exporter("http/protobuf")
        span_payload, log_payload = encoded_spans(sdk_spans()), encoded_logs()
        assert spans.export_encoded(span_payload, 3)
        assert logs.export_encoded(log_payload, 2)
        (span_path, span_headers, _), (log_path, log_headers, _) = http_sink.posts
        assert (span_path, log_path) == ("/v1/traces", "/v1/logs")
        assert (span_headers["x-api-key"], span_headers["x-tenant"]) == ("general", "mev")
        assert (log_headers["x-api-key"], "x-tenant" in log_headers) == ("logs-only", False)
        assert span_headers["content-encoding"] == log_headers["content-encoding"] == "gzip"
        assert (http_sink.body(0), http_sink.body(1)) == (span_payload, log_payload)
        spans.shutdown()
        logs.shutdown()

    def test_max_request_size_refuses_the_payload_like_the_sdk(self, http_sink: Captured) -> None:
        url = f"{http_sink.url}/v1/traces"
        spans = sdk_spans()
        payload = encoded_spans(spans)
        limit = len(payload) - 1
        assert HttpSpanExporter(endpoint=url, max_request_size=limit).export(spans).name == "FAILURE"
        adapter = build_encoded_span_exporter("http/protobuf", endpoint=url, max_request_size=limit)
        assert adapter.export_encoded(payload, 3) is False
        assert http_sink.posts == []
        assert build_encoded_span_exporter(
            "http/protobuf", endpoint=url, max_request_size=len(payload)
        ).export_encoded(payload, 3)

    def test_a_refusing_receiver_or_a_shut_down_exporter_is_false_not_an_exception(
        self, http_sink: Captured
    ) -> None:
        http_sink.status = 400
        adapter = build_encoded_span_exporter("http/protobuf", endpoint=f"{http_sink.url}/v1/traces")
        assert adapter.export_encoded(encoded_spans(sdk_spans()), 3) is False
        http_sink.status = 200
        adapter.shutdown()
        assert adapter.export_encoded(encoded_spans(sdk_spans()), 3) is False
        assert len(http_sink.posts) == 1


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_encoded_spans_and_logs_through_a_rotel_collector(protocol: str, rotel: Rotel, sink: Sink) -> None:
    """The collector forwards exactly the spans and log records the SDK would have sent."""
    kwargs: dict[str, Any]
    if protocol == "grpc":
        kwargs = {"endpoint": f"http://127.0.0.1:{rotel.grpc_port}", "insecure": True}
        log_kwargs = kwargs
    else:
        kwargs = {"endpoint": f"http://127.0.0.1:{rotel.http_port}/v1/traces"}
        log_kwargs = {"endpoint": f"http://127.0.0.1:{rotel.http_port}/v1/logs"}
    spans = sdk_spans()
    exporters: list[EncodedExporter] = [
        build_encoded_span_exporter(protocol, **kwargs),  # type: ignore[arg-type]
        build_encoded_log_exporter(protocol, **log_kwargs),  # type: ignore[arg-type]
    ]
    assert exporters[0].export_encoded(encoded_spans(spans), len(spans))
    assert exporters[1].export_encoded(encoded_logs(), 2)
    assert sink.wait_for(lambda: len(list(sink.spans())) >= 3 and len(list(sink.log_records())) >= 2)
    for exporter in exporters:
        exporter.shutdown()

    expected = ExportTraceServiceRequest.FromString(encoded_spans(spans))
    by_name = {s.name: s for rs in expected.resource_spans for ss in rs.scope_spans for s in ss.spans}
    got = {s.name: s for s in sink.spans()}
    assert got == by_name
    expected_logs = (
        ExportLogsServiceRequest.FromString(encoded_logs()).resource_logs[0].scope_logs[0].log_records
    )
    assert sorted(sink.log_records(), key=lambda r: r.observed_time_unix_nano) == list(expected_logs)
    resource = sink.traces[0].resource_spans[0].resource
    assert {kv.key: kv.value.string_value for kv in resource.attributes}.items() >= RESOURCE.items()


class H2Tap:
    """A TCP relay in front of a gRPC server that reads the client's HTTP/2 DATA frames
    and keeps each gRPC message's compressed flag (1: compressed)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.compressed_flags: list[int] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            for args in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._relay, args=args, daemon=True)
                self._threads.append(thread)
                thread.start()

    def _relay(self, src: socket.socket, dst: socket.socket, inspect: bool) -> None:
        buffer = b""
        streams: dict[int, bytes] = {}
        preface = 24  # "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        while True:
            try:
                chunk = src.recv(65536)
                if not chunk:
                    break
                dst.sendall(chunk)
            except OSError:
                break
            if not inspect:
                continue
            buffer += chunk
            if preface:
                if len(buffer) < preface:
                    continue
                buffer, preface = buffer[preface:], 0
            while len(buffer) >= 9:
                length = int.from_bytes(buffer[:3], "big")
                if len(buffer) < 9 + length:
                    break
                kind, flags, stream = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
                if kind != 0:  # only DATA frames carry gRPC messages
                    continue
                if flags & 0x8:  # PADDED
                    payload = payload[1 : len(payload) - payload[0]]
                data = streams.get(stream, b"") + payload
                while len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[1:5], "big"):
                    self.compressed_flags.append(data[0])
                    data = data[5 + int.from_bytes(data[1:5], "big") :]
                streams[stream] = data
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked in accept() and recv()
            s.close()
        for thread in self._threads:
            thread.join(5)


def test_grpc_compression_is_read_correctly_off_the_wire(grpc_sink: MetadataSink) -> None:
    """The tap itself: without compression it reads flag 0, so its reading of 1 above means gzip."""
    tap = H2Tap(grpc_sink.port)
    try:
        adapter = build_encoded_span_exporter(
            "grpc",
            endpoint=f"http://127.0.0.1:{tap.port}",
            insecure=True,
            compression=grpc.Compression.NoCompression,
        )
        assert adapter.export_encoded(encoded_spans(sdk_spans()), 3)
        adapter.shutdown()
    finally:
        tap.close()
    assert tap.compressed_flags == [0]
