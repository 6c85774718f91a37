"""Exemplars end to end: a real Prometheus with exemplar storage scrapes the process,
whose traces go to a real Rotel collector.

``configure(exporter="otlp", metrics_exporter="prometheus", metrics_port=0)``: spans
and logs over OTLP, metrics pulled. ``/api/v1/query_exemplars`` returns exemplars for
``mev_operation_duration_seconds_bucket`` (and ``mev_gas_used_bucket``), and each one
names a trace the collector received, with the span id of the operation that made
the recording. The endpoint serves the exemplars in OpenMetrics only, when asked.
"""

from __future__ import annotations

import contextlib
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tests.integration.conftest import Prometheus, Rotel, missing, prometheus_binary
from tests.integration.otlp_sink import Sink, attrs

import mevobs
from mevobs import semconv

pytestmark = pytest.mark.integration

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
EXEMPLAR = re.compile(r" # \{(?P<labels>[^}]*)\} (?P<value>\S+)(?: (?P<ts>\S+))?$")
DELAYS = (0.0, 0.002, 0.004, 0.008, 0.02, 0.04)  # spread over the duration buckets


@pytest.fixture
def telemetry(rotel: Rotel) -> Iterator[mevobs.Telemetry]:
    telemetry = mevobs.configure(
        service_name="exemplar-bot",
        exporter="otlp",
        endpoint=f"http://127.0.0.1:{rotel.grpc_port}",
        metrics_exporter="prometheus",
        metrics_port=0,
        sample_ratio=1.0,
        log_destination="none",
        export_timeout_seconds=10.0,
    )
    yield telemetry
    telemetry.shutdown()


@pytest.fixture
def prometheus(telemetry: mevobs.Telemetry, tmp_path: Path) -> Iterator[Prometheus]:
    if prometheus_binary() is None:
        missing("prometheus (apt-get install prometheus)")
    assert telemetry.metrics_port is not None
    server = Prometheus(tmp_path, scrape_port=telemetry.metrics_port, features=("exemplar-storage",))
    yield server
    server.stop()


def _workload() -> int:
    """Swaps of several durations, some failing, some carrying gas; returns the call count."""

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap(i: int) -> mevobs.SwapResult:
        time.sleep(DELAYS[i % len(DELAYS)])
        if i % 7 == 3:
            raise RuntimeError("pool drained")
        return mevobs.SwapResult(gas_used=100_000 + 1_000 * i, effective_gas_price_wei=10**9, status=1)

    calls = 60
    for i in range(calls):
        with contextlib.suppress(RuntimeError):
            swap(i)
    return calls


def _get(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


def _exemplars(prometheus: Prometheus, metric: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    now = time.time()
    found = prometheus.api("query_exemplars", query=metric, start=str(now - 600), end=str(now + 60))
    return [(series["seriesLabels"], exemplar) for series in found for exemplar in series["exemplars"]]


def test_the_endpoint_serves_exemplars_in_openmetrics_only(telemetry: mevobs.Telemetry) -> None:
    """Asked for OpenMetrics, ``_bucket`` lines carry ``# {trace_id,span_id}`` exemplars
    and the body parses as OpenMetrics; the plain text format has none and parses."""
    _workload()
    assert telemetry.force_flush(10)
    url = telemetry.metrics_url
    assert url is not None

    content_type, body = _get(url, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    with_exemplar = [line for line in body.splitlines() if EXEMPLAR.search(line)]
    assert any(line.startswith("mev_operation_duration_seconds_bucket{") for line in with_exemplar)
    assert any(line.startswith("mev_gas_used_bucket{") for line in with_exemplar)
    for line in with_exemplar:
        assert "_bucket{" in line.split(" ", 1)[0], line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', EXEMPLAR.search(line)["labels"]))  # type: ignore[index]
        assert set(labels) == {"trace_id", "span_id"}
        assert re.fullmatch(r"[0-9a-f]{32}", labels["trace_id"]), line
        assert re.fullmatch(r"[0-9a-f]{16}", labels["span_id"]), line
    families = {f.name: f for f in parse_openmetrics(body)}
    parsed = [s for s in families["mev_operation_duration_seconds"].samples if s.exemplar is not None]
    assert parsed and all(s.name.endswith("_bucket") for s in parsed)
    # Every series has its exemplars, whatever labels the other series of the family add
    # (the failures' error_type is rendered as error_type="" on the successes).
    assert {s.labels["mev_outcome"] for s in parsed} == {"success", "failure"}

    for accept in (None, "text/plain"):
        content_type, text = _get(url, accept)
        assert content_type.startswith("text/plain")
        assert "trace_id" not in text
        assert "mev_operation_duration_seconds" in {f.name for f in parse_text(text)}


def test_prometheus_exemplars_name_spans_the_collector_received(
    telemetry: mevobs.Telemetry, prometheus: Prometheus, sink: Sink
) -> None:
    calls = _workload()
    assert telemetry.force_flush(10)
    assert sink.wait_for(lambda: sum(1 for s in sink.spans() if s.name == "swap uniswap_v2") == calls)
    spans = {(bytes(s.trace_id).hex(), bytes(s.span_id).hex()): s for s in sink.spans()}

    deadline = time.monotonic() + 30
    while True:
        duration = _exemplars(prometheus, "mev_operation_duration_seconds_bucket")
        gas = _exemplars(prometheus, "mev_gas_used_bucket")
        # One exemplar per bucket that holds a recording: both outcomes, several buckets.
        buckets = {(labels["mev_outcome"], labels["le"]) for labels, _ in duration}
        if (len(buckets) >= len(DELAYS) and gas) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {outcome for outcome, _ in buckets} == {"success", "failure"}
    assert len(buckets) >= len(DELAYS)
    assert gas

    for labels, exemplar in duration:
        ids = (exemplar["labels"]["trace_id"], exemplar["labels"]["span_id"])
        span = spans.get(ids)
        assert span is not None, f"exemplar {ids} names no span the collector received"
        assert span.name == f"{labels['mev_operation']} {labels['mev_exchange']}"
        assert attrs(span.attributes)[semconv.ATTR_OUTCOME] == labels["mev_outcome"]
        # The recording is the operation's own duration, in the bucket it is shown on.
        seconds = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
        assert float(exemplar["value"]) == pytest.approx(seconds, abs=1e-6)
        assert float(exemplar["value"]) <= float(labels["le"])
    for _, exemplar in gas:
        span = spans[(exemplar["labels"]["trace_id"], exemplar["labels"]["span_id"])]
        assert attrs(span.attributes)[semconv.ATTR_GAS_USED] == int(float(exemplar["value"]))
