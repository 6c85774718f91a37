"""An OTLP gRPC receiver in a process of its own that counts the spans it receives.

The throughput tests measure how many calls a second one process can instrument;
a receiver decoding tens of thousands of spans a second in that same process would
take its share of the GIL from the pipeline under test, which no deployment has (the
collector and whatever is behind it run elsewhere). Run as a script: it prints its
port, then answers each ``counts`` line on stdin with a JSON line
``{"spans": {name: count}, "requests": n}``.
"""

from __future__ import annotations

import collections
import json
import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Counter(
    trace_service_pb2_grpc.TraceServiceServicer,
    metrics_service_pb2_grpc.MetricsServiceServicer,
    logs_service_pb2_grpc.LogsServiceServicer,
):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: collections.Counter[str] = collections.Counter()
        self.requests = 0

    def Export(self, request: Any, context: Any) -> Any:
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            names = collections.Counter(
                span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans
            )
            with self.lock:
                self.spans.update(names)
                self.requests += 1
            return trace_service_pb2.ExportTraceServiceResponse()
        if isinstance(request, metrics_service_pb2.ExportMetricsServiceRequest):
            return metrics_service_pb2.ExportMetricsServiceResponse()
        return logs_service_pb2.ExportLogsServiceResponse()


def main() -> None:
    counter = Counter()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counter, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(counter, server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(counter, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    for line in sys.stdin:
        if line.strip() == "counts":
            with counter.lock:
                answer = {"spans": dict(counter.spans), "requests": counter.requests}
            print(json.dumps(answer), flush=True)
    server.stop(grace=None)


if __name__ == "__main__":
    main()
