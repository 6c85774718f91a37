"""OTLP receivers for tests that check what leaves the process: gRPC and HTTP/protobuf.

Both keep every request with its headers (gRPC metadata), so a test can check
the resource, the signals, the protocol and the headers that arrived. The HTTP
receiver can answer slowly, to check that an export timeout is honoured.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from tests.integration.otlp_sink import Sink, attrs

SIGNAL_OF = {
    "ExportTraceServiceRequest": "traces",
    "ExportMetricsServiceRequest": "metrics",
    "ExportLogsServiceRequest": "logs",
}


class Received:
    """What one receiver got: (signal, request, headers) in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, Any, dict[str, str]]] = []

    def add(self, request: Any, headers: dict[str, str]) -> None:
        with self.lock:
            self.requests.append((SIGNAL_OF[type(request).__name__], request, headers))

    def of(self, signal: str) -> list[tuple[Any, dict[str, str]]]:
        with self.lock:
            return [(req, hdr) for sig, req, hdr in self.requests if sig == signal]

    def span_names(self) -> set[str]:
        return {
            s.name
            for req, _ in self.of("traces")
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        }

    def metric_names(self) -> set[str]:
        return {
            m.name
            for req, _ in self.of("metrics")
            for rm in req.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }

    def log_bodies(self) -> list[str]:
        return [
            r.body.string_value
            for req, _ in self.of("logs")
            for rl in req.resource_logs
            for sl in rl.scope_logs
            for r in sl.log_records
        ]

    def resources(self) -> Iterator[dict[str, Any]]:
        for signal in ("traces", "metrics", "logs"):
            for req, _ in self.of(signal):
                groups = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}
                for group in getattr(req, groups[signal]):
                    yield attrs(group.resource.attributes)

    def headers(self, signal: str) -> list[dict[str, str]]:
        return [hdr for _, hdr in self.of(signal)]

    def signals(self) -> set[str]:
        with self.lock:
            return {sig for sig, _, _ in self.requests}

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()


class GrpcCapture(Sink):
    """The integration tests' gRPC sink, keeping each request's metadata too."""

    def __init__(self) -> None:
        super().__init__()
        self.received = Received()

    def Export(self, request: Any, context: Any) -> Any:
        self.received.add(request, {k: v for k, v in context.invocation_metadata() if isinstance(v, str)})
        return super().Export(request, context)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


_PATHS = {
    "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}


class HttpCapture:
    """An OTLP/HTTP protobuf receiver on 127.0.0.1; ``delay`` seconds before each answer."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received = Received()
        self.delay = delay
        self.content_types: list[str] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                kinds = _PATHS.get(self.path)
                if capture.delay:
                    time.sleep(capture.delay)
                if kinds is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                capture.content_types.append(self.headers.get("Content-Type", ""))
                capture.received.add(
                    kinds[0].FromString(body), {k.lower(): v for k, v in self.headers.items()}
                )
                answer = kinds[1]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="http-capture", daemon=True
        )

    def start(self) -> int:
        self.thread.start()
        return self.port

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
