"""The encoded-payload adapters over the SDK's OTLP exporters, without a network.

Sending to real receivers is in ``tests/integration/test_otlp_encoded_export.py``;
here: which adapters get built, the capability check that refuses an exporter whose
hooks have changed, retries reaching the adapter, payloads sent unparsed, and failures returned as False.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.exporter.otlp.common.http import _OTLPHTTPClient
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.exporter import OTLPExporterMixin
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from mevobs import _otlp_export
from mevobs._otlp import OtlpEncoder, Scope, SpanRecord
from mevobs._otlp_export import (
    EncodedExporter,
    EncodedExportUnavailable,
    build_encoded_log_exporter,
    build_encoded_span_exporter,
)

GRPC = {"endpoint": "http://127.0.0.1:9", "insecure": True}
HTTP = {"endpoint": "http://127.0.0.1:9/v1/traces"}


def payload() -> bytes:
    record = SpanRecord(
        7, 8, 0, False, 1, "", "mev.swap", 3, 10, 20, None, {"mev.outcome": "success"}, (), 0, ""
    )
    return OtlpEncoder({"service.name": "t"}).encode_spans([(Scope("mevobs"), [record])]).payloads[0].data


@pytest.fixture
def fresh_classes() -> Iterator[None]:
    """The adapter classes are built once per process; these tests change what they are built from."""
    factories = (_otlp_export._grpc_span_class, _otlp_export._grpc_log_class, _otlp_export._http_span_class)
    for factory in factories:
        factory.cache_clear()
    yield
    for factory in factories:
        factory.cache_clear()


@pytest.mark.parametrize(
    ("build", "protocol", "kwargs", "sdk_class"),
    [
        (build_encoded_span_exporter, "grpc", GRPC, GrpcSpanExporter),
        (build_encoded_log_exporter, "grpc", GRPC, GrpcLogExporter),
        (build_encoded_span_exporter, "http/protobuf", HTTP, HttpSpanExporter),
        (build_encoded_log_exporter, "http/protobuf", HTTP, HttpLogExporter),
    ],
)
def test_each_protocol_and_signal_gets_an_adapter_that_is_the_sdk_exporter(
    build: Any, protocol: str, kwargs: dict[str, Any], sdk_class: type[Any]
) -> None:
    """So the SDK's configuration handling and plain export() come with it."""
    exporter = build(protocol, **kwargs)
    assert isinstance(exporter, sdk_class)
    assert isinstance(exporter, EncodedExporter)
    exporter.shutdown()


def test_another_protocol_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="http/json"):
        build_encoded_span_exporter("http/json", **HTTP)  # type: ignore[arg-type]


@pytest.mark.usefixtures("fresh_classes")
def test_a_grpc_exporter_whose_export_bypasses_translate_data_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dry run sees a request other than the payload, so the hook no longer works."""

    def export(self: Any, spans: Any) -> SpanExportResult:
        self._client.Export(request=ExportTraceServiceRequest(), metadata=(), timeout=1)
        return SpanExportResult.SUCCESS

    monkeypatch.setattr(GrpcSpanExporter, "export", export)
    with pytest.raises(EncodedExportUnavailable, match="_translate_data"):
        build_encoded_span_exporter("grpc", **GRPC)


@pytest.mark.usefixtures("fresh_classes")
def test_a_grpc_mixin_without_the_protected_hooks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(OTLPExporterMixin, "_count_data")
    with pytest.raises(EncodedExportUnavailable, match="_count_data"):
        build_encoded_span_exporter("grpc", **GRPC)


@pytest.mark.usefixtures("fresh_classes")
def test_an_http_exporter_whose_client_cannot_send_bytes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_OTLPHTTPClient, "export")
    with pytest.raises(EncodedExportUnavailable, match="export"):
        build_encoded_span_exporter("http/protobuf", **HTTP)


class _Retryable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.RESOURCE_EXHAUSTED

    def details(self) -> str:
        return "slow down"

    def trailing_metadata(self) -> Any:
        # retry at once: the SDK honours the receiver's RetryInfo delay
        delay = RetryInfo(retry_delay=Duration(nanos=1)).SerializeToString()
        return (("google.rpc.retryinfo-bin", delay),)


class _FlakyStub:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[Any] = []

    def Export(self, request: Any, metadata: Any = None, timeout: Any = None) -> None:
        self.requests.append(request)
        if len(self.requests) <= self.failures:
            raise _Retryable()


def test_grpc_retries_resend_the_payload_itself() -> None:
    """Each attempt of the SDK's retry loop sends the payload object, never a parsed copy."""
    exporter: Any = build_encoded_span_exporter("grpc", **GRPC)
    stub = exporter._client = _FlakyStub(failures=2)
    data = payload()
    assert exporter.export_encoded(data, 1) is True
    assert len(stub.requests) == 3
    assert stub.requests[0] is stub.requests[1] is stub.requests[2] is data
    exporter.shutdown()


class _Receiver(TraceServiceServicer):
    """A real gRPC trace service that keeps the raw bytes of each request."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def Export(self, request: Any, context: Any) -> ExportTraceServiceResponse:
        self.bodies.append(request.SerializeToString())
        return ExportTraceServiceResponse()


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, int]]:
    service = _Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, port
    server.stop(grace=None)


def test_grpc_sends_payloads_unparsed_and_sdk_spans_as_before(receiver: tuple[_Receiver, int]) -> None:
    """The adapter's stub sends a payload's bytes as they are, and the SDK's own export()
    of ReadableSpans still reaches the receiver through the same stub."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    service, port = receiver
    exporter: Any = build_encoded_span_exporter("grpc", endpoint=f"http://127.0.0.1:{port}", insecure=True)
    data = payload()
    assert exporter.export_encoded(data, 1) is True
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("sdk span").end()
    provider.shutdown()
    assert service.bodies[0] == data
    sdk_request = ExportTraceServiceRequest.FromString(service.bodies[1])
    assert [s.name for r in sdk_request.resource_spans for ss in r.scope_spans for s in ss.spans] == [
        "sdk span"
    ]


def test_an_http_client_that_raises_is_false_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter: Any = build_encoded_span_exporter("http/protobuf", **HTTP)

    def boom(data: bytes) -> Any:
        raise RuntimeError("transport exploded")

    monkeypatch.setattr(exporter._client, "export", boom)
    assert exporter.export_encoded(payload(), 1) is False
    exporter.shutdown()
