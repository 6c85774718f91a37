"""Context through a real Rotel collector: mevobs's operations and the application's
own spans form one trace, on the fast path and on the API path.

Inside a decorated swap, a span the application starts with its own OpenTelemetry
tracer and the span of a urllib request (the contrib instrumentation switched on
with ``configure(instrument=["urllib"])``, to a local HTTP server) are children of
the swap's span; an application span active when the swap is called is its parent.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import trace
from tests.integration.conftest import Rotel
from tests.integration.otlp_sink import Sink, attrs

import mevobs

pytestmark = pytest.mark.integration


class _Quote(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"amount_out": "1000"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def quote_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quote)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/quote"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.parametrize("pipeline", ["fast", "api"])
def test_application_spans_nest_around_and_inside_a_swap(
    pipeline: str, rotel: Rotel, sink: Sink, quote_server: str
) -> None:
    telemetry = mevobs.configure(
        service_name="context-bot",
        exporter="otlp",
        endpoint=f"http://127.0.0.1:{rotel.grpc_port}",
        pipeline=pipeline,
        instrument=["urllib"],
        log_destination="none",
        export_timeout_seconds=10.0,
    )
    assert telemetry.pipeline == pipeline
    tracer = trace.get_tracer("context-bot.strategy")  # the global provider configure() installed

    @mevobs.swap(exchange="uniswap_v3", chain="ethereum")
    def swap() -> bytes:
        with tracer.start_as_current_span("price check"):
            pass
        with urllib.request.urlopen(quote_server, timeout=5) as response:
            return bytes(response.read())

    with tracer.start_as_current_span("strategy tick") as tick:
        assert swap() == b'{"amount_out": "1000"}'
    # The swap outside any application span: the root of its own trace.
    swap()
    assert telemetry.force_flush(10)

    assert sink.wait_for(lambda: sum(1 for s in sink.spans() if s.name == "swap uniswap_v3") == 2)
    assert sink.wait_for(lambda: sum(1 for s in sink.spans() if s.name == "price check") == 2)
    assert sink.wait_for(lambda: sum(1 for s in sink.spans() if s.name == "GET") == 2)
    spans = list(sink.spans())
    tick_ctx = tick.get_span_context()
    (root,) = [s for s in spans if s.name == "strategy tick"]
    assert int.from_bytes(root.trace_id, "big") == tick_ctx.trace_id
    assert int.from_bytes(root.span_id, "big") == tick_ctx.span_id

    swaps = {bytes(s.trace_id): s for s in spans if s.name == "swap uniswap_v3"}
    assert len(swaps) == 2, "two swaps, two traces"
    inner = swaps[bytes(root.trace_id)]
    assert inner.parent_span_id == root.span_id, "the active application span is the swap's parent"
    (outer,) = [s for t, s in swaps.items() if t != bytes(root.trace_id)]
    assert outer.parent_span_id == b"", "without an application span the swap is a root"

    for swap_span in (inner, outer):
        children = [s for s in spans if s.parent_span_id == swap_span.span_id]
        assert sorted(s.name for s in children) == ["GET", "price check"]
        for child in children:
            assert child.trace_id == swap_span.trace_id
        (request,) = [s for s in children if s.name == "GET"]
        assert request.kind == 3  # SPAN_KIND_CLIENT: the urllib instrumentation's span
        url = attrs(request.attributes).get("url.full") or attrs(request.attributes).get("http.url")
        assert url == quote_server
    telemetry.shutdown()
