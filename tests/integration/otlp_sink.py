"""An OTLP gRPC receiver the integration tests run: the end of the pipeline they read.

mevobs -> Rotel collector -> this sink. It keeps every request it receives so a
test can assert on the exact protobuf the collector forwarded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Sink(
    trace_service_pb2_grpc.TraceServiceServicer,
    metrics_service_pb2_grpc.MetricsServiceServicer,
    logs_service_pb2_grpc.LogsServiceServicer,
):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.traces: list[Any] = []
        self.metrics: list[Any] = []
        self.logs: list[Any] = []
        self.server: grpc.Server | None = None
        self.port = 0
        self.span_total = 0  # spans received, counted on arrival: cheap to poll under load

    # -- the three OTLP services
    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.traces.append(request)
                self.span_total += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
                return trace_service_pb2.ExportTraceServiceResponse()
            if isinstance(request, metrics_service_pb2.ExportMetricsServiceRequest):
                self.metrics.append(request)
                return metrics_service_pb2.ExportMetricsServiceResponse()
            self.logs.append(request)
            return logs_service_pb2.ExportLogsServiceResponse()

    def start(self) -> int:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self.port

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None)

    # -- reading what arrived
    def spans(self) -> Iterator[Any]:
        with self.lock:
            requests = list(self.traces)
        for req in requests:
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    yield from ss.spans

    def metric_points(self) -> Iterator[tuple[Any, Any]]:
        """(metric, data point) pairs of every metric received."""
        with self.lock:
            requests = list(self.metrics)
        for req in requests:
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        for point in getattr(metric, kind).data_points:
                            yield metric, point

    def log_records(self) -> Iterator[Any]:
        with self.lock:
            requests = list(self.logs)
        for req in requests:
            for rl in req.resource_logs:
                for sl in rl.scope_logs:
                    yield from sl.log_records

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.1)
        return condition()


def attrs(kvs: Any) -> dict[str, Any]:
    """OTLP KeyValue list to a plain dict."""
    out: dict[str, Any] = {}
    for kv in kvs:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None
    return out
