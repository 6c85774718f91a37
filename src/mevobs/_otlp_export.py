"""Send pre-encoded OTLP payloads through the SDK's own OTLP exporters.

The export worker encodes spans and logs by hand (``mevobs._otlp``); sending must
still honour everything users configure on the SDK's exporters: endpoint, headers,
TLS certificates, compression, timeout and retries, from arguments or the
``OTEL_EXPORTER_OTLP_*`` variables. So each adapter here is a subclass of the SDK
exporter that changes only where the request comes from, and keeps ``export()``
for ordinary ``ReadableSpan``/``ReadableLogRecord`` batches.

- gRPC: the SDK's retry loop asks ``_translate_data`` for the request on each
  attempt; the adapter answers with the payload itself, and its stub (made on the
  SDK's own channel, remade whenever the SDK reconnects) sends bytes as they are,
  so a payload is never parsed into protobuf objects and serialized again (about
  2 us per span of GIL time on the sender). The rest of ``export()`` runs as is.
- HTTP: ``export()`` encodes inline and then calls its client with bytes; the
  adapter repeats the steps after encoding (shutdown check, exporter metrics, the
  ``max_request_size`` refusal, the client's send with compression and retries)
  with the payload as the bytes.

Both lean on protected members of opentelemetry-exporter-otlp-proto-* 1.45. A build
function checks them first (for gRPC by a dry run through ``export()`` with the
network and metrics swapped out) and raises :class:`EncodedExportUnavailable` if
they are missing, so the caller can fall back to the plain exporters.

The SDK is imported when an adapter is first built, never when this module is imported.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Iterator
from typing import Any, Literal, Protocol, runtime_checkable

from mevobs._otlp_wire import ld

__all__ = [
    "EncodedExportUnavailable",
    "EncodedExporter",
    "OtlpProtocol",
    "build_encoded_log_exporter",
    "build_encoded_span_exporter",
]

_logger = logging.getLogger(__name__)

OtlpProtocol = Literal["grpc", "http/protobuf"]
"""The ``OTEL_EXPORTER_OTLP_PROTOCOL`` values with an adapter (the SDK has no http/json exporter)."""


@runtime_checkable
class EncodedExporter(Protocol):
    """Sends complete serialized export requests; what the export worker talks to."""

    def export_encoded(self, payload: bytes, count: int) -> bool:
        """Send one ``ExportTraceServiceRequest``/``ExportLogsServiceRequest`` holding ``count``
        records; True once the receiver accepted it. Never raises."""
        ...

    def shutdown(self) -> None:
        """Close the connection; later sends return False."""
        ...


class EncodedExportUnavailable(RuntimeError):
    """The installed OTLP exporter lacks what the adapter relies on: send SDK records with ``export()``."""


# The dry run's payload: one resource with one attribute (mevobs.probe=true). Field 1 is
# resource_spans and resource_logs alike, and in each the resource.
_PROBE_ATTRIBUTE = ld(b"\x0a", b"mevobs.probe") + ld(b"\x12", b"\x10\x01")  # KeyValue
_PROBE = ld(b"\x0a", ld(b"\x0a", ld(b"\x0a", _PROBE_ATTRIBUTE)))


class _Encoded:
    """A payload travelling through the SDK's gRPC ``_export`` in place of a list of records."""

    __slots__ = ("count", "data")

    def __init__(self, data: bytes, count: int) -> None:
        self.data = data
        self.count = count


def _as_bytes(request: Any) -> bytes:
    """The raw stub's serializer: a payload as it is, an SDK-built request serialized."""
    return request if type(request) is bytes else request.SerializeToString()


class _RawStub:
    """The service stub on the exporter's channel, taking serialized requests."""

    def __init__(self, channel: Any, method: str, response_class: Any) -> None:
        self.Export = channel.unary_unary(
            method, request_serializer=_as_bytes, response_deserializer=response_class.FromString
        )


def build_encoded_span_exporter(protocol: OtlpProtocol, **sdk_kwargs: Any) -> EncodedExporter:
    """An OTLP span exporter for ``protocol`` that also sends encoded payloads.

    ``sdk_kwargs`` go to the SDK exporter's constructor unchanged (endpoint, headers,
    timeout, compression, ...); whatever they leave out comes from the environment as
    usual. Raises ``ValueError`` for another protocol, :class:`EncodedExportUnavailable`
    when the installed exporter cannot be adapted, and whatever the SDK's constructor
    raises for a bad configuration.
    """
    return _build("traces", protocol, sdk_kwargs)


def build_encoded_log_exporter(protocol: OtlpProtocol, **sdk_kwargs: Any) -> EncodedExporter:
    """The log-record counterpart of :func:`build_encoded_span_exporter`."""
    return _build("logs", protocol, sdk_kwargs)


def _build(signal: str, protocol: str, sdk_kwargs: dict[str, Any]) -> EncodedExporter:
    variant = _VARIANTS.get((signal, protocol))
    if variant is None:
        raise ValueError(f"no encoded OTLP exporter for protocol {protocol!r}; use 'grpc' or 'http/protobuf'")
    try:
        cls = variant()
    except (ImportError, AttributeError) as error:
        raise EncodedExportUnavailable(
            f"OTLP {protocol} exporter for {signal} not available: {error}"
        ) from error
    exporter: EncodedExporter = cls(**sdk_kwargs)
    try:
        exporter._check()  # type: ignore[attr-defined]
    except EncodedExportUnavailable:
        with contextlib.suppress(Exception):
            exporter.shutdown()  # its channel or session is open already
        raise
    return exporter


# -- gRPC


class _NoMetrics:
    """Stands in for the exporter's own metrics during the dry run, so that it records nothing."""

    class _Result:
        error: object = None
        error_attrs: object = None

    @contextlib.contextmanager
    def export_operation(self, num_items: int) -> Iterator[_Result]:
        yield self._Result()


class _ProbeStub:
    """Stands in for the gRPC stub during the dry run and keeps the request it is given."""

    def __init__(self) -> None:
        self.request: Any = None

    def Export(self, request: Any, metadata: Any = None, timeout: Any = None) -> None:
        self.request = request


def _grpc_mixin(method: str, response_class: Any, success: Any) -> type[Any]:
    """What the gRPC span and log adapters share: ``method`` is the service's Export path."""
    from opentelemetry.exporter.otlp.proto.grpc.exporter import OTLPExporterMixin

    for name in ("_export", "_translate_data", "_count_data", "_initialize_channel_and_stub"):
        if not callable(getattr(OTLPExporterMixin, name, None)):
            raise AttributeError(f"OTLPExporterMixin.{name}")

    class GrpcEncoded:
        def _initialize_channel_and_stub(self) -> None:
            super()._initialize_channel_and_stub()  # type: ignore[misc]
            me: Any = self
            me._client = _RawStub(me._channel, method, response_class)

        def _translate_data(self, data: Any) -> Any:
            if isinstance(data, _Encoded):
                return data.data
            return super()._translate_data(data)  # type: ignore[misc]

        def _count_data(self, data: Any) -> int:
            if isinstance(data, _Encoded):
                return data.count
            return super()._count_data(data)  # type: ignore[misc, no-any-return]

        def export_encoded(self, payload: bytes, count: int) -> bool:
            try:
                me: Any = self
                return me.export(_Encoded(payload, count)) is success
            except Exception as error:
                _logger.warning("OTLP gRPC export of an encoded batch failed: %r", error)
                return False

        def _check(self) -> None:
            """Send a probe payload through ``export()`` to a stand-in stub; it must arrive unchanged."""
            me: Any = self
            if not hasattr(me, "_client") or not hasattr(me, "_metrics") or not hasattr(me, "_channel"):
                raise EncodedExportUnavailable("the gRPC exporter has no _client/_metrics/_channel")
            if not isinstance(me._client, _RawStub):
                raise EncodedExportUnavailable("the gRPC exporter did not make its stub in the usual hook")
            data = _PROBE
            stub, client, metrics = _ProbeStub(), me._client, me._metrics
            me._client, me._metrics = stub, _NoMetrics()
            try:
                result = me.export(_Encoded(data, 0))
            except Exception as error:
                raise EncodedExportUnavailable(f"gRPC dry run failed: {error!r}") from error
            finally:
                me._client, me._metrics = client, metrics
            if result is not success or stub.request is not data:
                raise EncodedExportUnavailable("the gRPC exporter's export() does not use _translate_data")

    return GrpcEncoded


@functools.cache
def _grpc_span_class() -> type[Any]:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
    from opentelemetry.sdk.trace.export import SpanExportResult

    mixin = _grpc_mixin(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        ExportTraceServiceResponse,
        SpanExportResult.SUCCESS,
    )
    return type("GrpcEncodedSpanExporter", (mixin, OTLPSpanExporter), {"__module__": __name__})


@functools.cache
def _grpc_log_class() -> type[Any]:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    mixin = _grpc_mixin(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        ExportLogsServiceResponse,
        LogRecordExportResult.SUCCESS,
    )
    return type("GrpcEncodedLogExporter", (mixin, OTLPLogExporter), {"__module__": __name__})


# -- HTTP


def _http_mixin(kind: str) -> type[Any]:
    """What the HTTP span and log adapters share: ``export()`` after its encoding step."""
    from opentelemetry.exporter.otlp.proto.http._common import (
        RequestPayloadTooLargeError,
        _is_request_too_large,
    )
    from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

    class HttpEncoded:
        def export_encoded(self, payload: bytes, count: int) -> bool:
            me: Any = self
            try:
                if me._shutdown:
                    _logger.warning("Exporter already shutdown, ignoring batch")
                    return False
                with me._metrics.export_operation(count) as result:
                    if _is_request_too_large(payload, me._max_request_size):
                        _logger.warning(
                            "Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                            kind,
                            len(payload),
                            me._max_request_size,
                        )
                        result.error = RequestPayloadTooLargeError(
                            f"Serialized {kind} request size {len(payload)} bytes exceeds "
                            f"max_request_size {me._max_request_size} bytes."
                        )
                        return False
                    sent = me._client.export(payload)
                    if not sent.success:
                        result.error = sent.error
                        result.error_attrs = (
                            {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                            if sent.status_code is not None
                            else None
                        )
                        return False
                return True
            except Exception as error:
                _logger.warning("OTLP HTTP export of an encoded %s batch failed: %r", kind, error)
                return False

        def _check(self) -> None:
            me: Any = self
            missing = [
                n for n in ("_shutdown", "_metrics", "_max_request_size", "_client") if not hasattr(me, n)
            ]
            if missing:
                raise EncodedExportUnavailable(f"the HTTP exporter lacks {', '.join(missing)}")
            send = getattr(me._client, "export", None)
            if not callable(send) or len(inspect.signature(send).parameters) != 1:
                raise EncodedExportUnavailable("the HTTP exporter's client has no export(data)")
            if not callable(getattr(me._metrics, "export_operation", None)):
                raise EncodedExportUnavailable("the HTTP exporter's metrics have no export_operation")

    return HttpEncoded


@functools.cache
def _http_span_class() -> type[Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return type("HttpEncodedSpanExporter", (_http_mixin("span"), OTLPSpanExporter), {"__module__": __name__})


@functools.cache
def _http_log_class() -> type[Any]:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return type("HttpEncodedLogExporter", (_http_mixin("logs"), OTLPLogExporter), {"__module__": __name__})


_VARIANTS = {
    ("traces", "grpc"): _grpc_span_class,
    ("logs", "grpc"): _grpc_log_class,
    ("traces", "http/protobuf"): _http_span_class,
    ("logs", "http/protobuf"): _http_log_class,
}
