"""Telemetry crosses the wire: mevobs -> a real Rotel collector (OTLP gRPC and HTTP) -> a sink."""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings

import pytest
from tests.integration.conftest import Rotel
from tests.integration.otlp_sink import Sink, attrs

import mevobs
from mevobs import semconv

pytestmark = pytest.mark.integration
GWEI = 10**9
TX = "0x" + "5e" * 32


def workload(exchange: str = "uniswap_v2") -> None:
    """An arbitrage with two gas-carrying swaps and a rate-limited RPC call."""

    class RateLimited(Exception):
        status_code = 429

    @mevobs.rpc(method="eth_call", provider="http://127.0.0.1:8545")
    async def call() -> None:
        raise RateLimited("429 Too Many Requests")

    @mevobs.swap(exchange=exchange, chain="ethereum")
    async def leg(i: int) -> mevobs.SwapResult:
        await asyncio.sleep(0.01)
        return mevobs.SwapResult(
            tx_hash=TX,
            block_number=21_000_000 + i,
            status=1,
            gas_used=120_000,
            effective_gas_price_wei=20 * GWEI,
            amount_in=10**18,
            amount_out=10**18 + i,
        )

    @mevobs.arbitrage(strategy="cross_dex", chain="ethereum")
    async def arb() -> None:
        mevobs.current_operation().record_opportunity("detected")
        await leg(1)
        await leg(2)
        with contextlib.suppress(RateLimited):
            await call()
        mevobs.current_operation().record_profit(gross_wei=10**16)

    asyncio.run(arb())


def _configure(exporter: str, endpoint: str) -> mevobs.Telemetry:
    return mevobs.configure(
        service_name="integration-bot",
        exporter=exporter,
        endpoint=endpoint,  # type: ignore[arg-type]
        export_interval_seconds=0.5,
        export_timeout_seconds=2,
        log_destination="none",
    )


def _assert_contract(sink: Sink) -> None:
    assert sink.wait_for(lambda: any(s.name == "arbitrage cross_dex" for s in sink.spans()))
    assert sink.wait_for(
        lambda: any(m.name == semconv.OPERATION_DURATION.name for m, _ in sink.metric_points())
    )
    assert sink.wait_for(lambda: len(list(sink.log_records())) >= 4)
    spans = {s.name: s for s in sink.spans()}
    arb, swap, rpc = spans["arbitrage cross_dex"], spans["swap uniswap_v2"], spans["rpc eth_call"]
    assert swap.parent_span_id == arb.span_id and swap.trace_id == arb.trace_id
    assert attrs(swap.attributes)[semconv.ATTR_TX_HASH] == TX
    assert attrs(arb.attributes)[semconv.ATTR_PROFIT_NET_WEI] == str(10**16 - 2 * 120_000 * 20 * GWEI)
    assert attrs(rpc.attributes)[semconv.ATTR_OUTCOME] == "rate_limited"
    assert rpc.kind == 3  # SPAN_KIND_CLIENT

    points = list(sink.metric_points())
    by_name: dict[str, list[object]] = {}
    for metric, point in points:
        by_name.setdefault(metric.name, []).append((metric, point))
    for spec in (
        semconv.OPERATION_DURATION,
        semconv.GAS_USED,
        semconv.GAS_COST,
        semconv.PROFIT,
        semconv.OPPORTUNITIES,
    ):
        assert spec.name in by_name, spec.name
        metric, _ = by_name[spec.name][-1]  # type: ignore[misc]
        assert metric.unit == spec.unit
    duration = [p for m, p in points if m.name == semconv.OPERATION_DURATION.name]
    labels = [attrs(p.attributes) for p in duration]
    assert {
        "mev.operation": "swap",
        "mev.exchange": "uniswap_v2",
        "mev.chain": "ethereum",
        "mev.outcome": "success",
    } in labels
    assert any(
        lab.get("mev.outcome") == "rate_limited" and lab.get("error.type") == "rate_limited" for lab in labels
    )
    assert len(duration[0].explicit_bounds) >= 14
    # Span-only attributes never reach a metric.
    for _, point in points:
        assert not set(attrs(point.attributes)) & set(semconv.SPAN_ONLY_ATTRIBUTES)

    logs = list(sink.log_records())
    by_span = {bytes(r.span_id): r for r in logs if r.span_id}
    for span in (arb, swap, rpc):
        record = by_span[bytes(span.span_id)]
        assert bytes(record.trace_id) == bytes(span.trace_id)
    assert attrs(by_span[bytes(swap.span_id)].attributes)[semconv.ATTR_TX_HASH] == TX
    assert by_span[bytes(rpc.span_id)].severity_text == "WARNING"


def test_otlp_grpc_through_rotel(rotel: Rotel, sink: Sink) -> None:
    telemetry = _configure("otlp", f"http://127.0.0.1:{rotel.grpc_port}")
    workload()
    telemetry.force_flush(5)
    _assert_contract(sink)


def test_otlp_http_through_rotel(rotel: Rotel, sink: Sink) -> None:
    telemetry = _configure("otlp-http", f"http://127.0.0.1:{rotel.http_port}")
    workload()
    telemetry.force_flush(5)
    _assert_contract(sink)


def test_collector_restart_mid_run(rotel: Rotel, sink: Sink) -> None:
    """The collector goes away and comes back: the workload never raises, later telemetry arrives."""
    telemetry = _configure("otlp", f"http://127.0.0.1:{rotel.grpc_port}")
    workload("before_restart")
    telemetry.force_flush(5)
    assert sink.wait_for(lambda: any(s.name == "swap before_restart" for s in sink.spans()))
    rotel.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(20):
            workload("while_down")  # must not raise or block
        telemetry.force_flush(2)
        rotel.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workload("after_restart")
            telemetry.force_flush(3)
            if sink.wait_for(lambda: any(s.name == "swap after_restart" for s in sink.spans()), timeout=1):
                break
    assert any(s.name == "swap after_restart" for s in sink.spans())
    assert sink.wait_for(
        lambda: any(
            attrs(p.attributes).get("mev.exchange") == "after_restart"
            for m, p in sink.metric_points()
            if m.name == semconv.OPERATION_DURATION.name
        )
    )


def test_demo_exports_otlp_when_the_endpoint_is_set(
    rotel: Rotel, sink: Sink, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """`mevobs demo` with OTEL_EXPORTER_OTLP_ENDPOINT set sends OTLP to the collector."""
    import subprocess
    import sys

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{rotel.grpc_port}")
    proc = subprocess.run(
        [sys.executable, "-m", "mevobs", "demo", "--duration", "2", "--seed", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "exporter otlp" in proc.stderr
    assert sink.wait_for(lambda: any(s.name.startswith("arbitrage ") for s in sink.spans()))
    assert sink.wait_for(lambda: any(m.name == "mev.opportunities" for m, _ in sink.metric_points()))
    assert sink.wait_for(lambda: any(True for _ in sink.log_records()))
