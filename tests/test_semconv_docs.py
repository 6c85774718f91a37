"""The docs table and mevobs.semconv agree both ways; Prometheus names match the real exporter."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from mevobs import semconv

DOC = Path(__file__).resolve().parents[1] / "docs" / "semantic-conventions.md"


def _section(name: str) -> list[list[str]]:
    text = DOC.read_text()
    body = text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]
    rows = [line for line in body.strip().splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    documented = {_code(row[0])[0]: row for row in _section("metrics")}
    assert set(documented) == {spec.name for spec in semconv.METRICS}
    for spec in semconv.METRICS:
        row = documented[spec.name]
        assert row[1] == spec.instrument
        assert _code(row[2]) == [spec.unit]
        assert _code(row[3]) == list(spec.attributes)
        assert _code(row[5]) == [spec.prometheus_name]


def test_every_attribute_is_documented_and_every_documented_attribute_exists() -> None:
    documented = {_code(row[0])[0]: row[1] for row in _section("attributes")}
    constants = {v for k, v in vars(semconv).items() if k.startswith("ATTR_") and isinstance(v, str)}
    otel_rpc = {semconv.ATTR_RPC_SYSTEM_NAME, semconv.ATTR_OTEL_RPC_METHOD, semconv.ATTR_SERVER_ADDRESS}
    assert set(documented) == constants - otel_rpc
    for attr in semconv.METRIC_ATTRIBUTES:
        assert documented[attr].startswith("metrics")
    for attr in semconv.SPAN_ONLY_ATTRIBUTES:
        assert documented[attr] == "spans, logs only"


def test_duration_buckets_follow_the_contract() -> None:
    assert semconv.DURATION_BUCKETS[0] == 0.0005 and semconv.DURATION_BUCKETS[-1] == 30.0
    assert len(semconv.DURATION_BUCKETS) >= 14
    assert list(semconv.DURATION_BUCKETS) == sorted(semconv.DURATION_BUCKETS)


def test_prometheus_names_match_the_real_exporter() -> None:
    pytest.importorskip("opentelemetry.exporter.prometheus", reason="prometheus extra not installed")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import REGISTRY, generate_latest

    import mevobs
    from mevobs._state import STATE, Providers
    from mevobs.guards._process import configure_limits  # registers the process gauges

    configure_limits(2 * 1024**3, {"WETH": 150})
    reader = PrometheusMetricReader()  # registers itself with prometheus_client's REGISTRY
    meter_provider = MeterProvider(metric_readers=[reader])
    before = STATE.providers
    STATE.install(Providers(TracerProvider(), meter_provider, LoggerProvider()))
    try:
        with mevobs.arbitrage(strategy="s") as op:
            op.record_gas(gas_used=1, effective_gas_price_wei=1)
            op.record_profit(gross_wei=10**18, usd=3000)
            op.record_swap(amount_out=1, expected_amount_out=2)
            op.record_opportunity("detected")
        with mevobs.arbitrage(strategy="s") as op:
            op.record_profit(gross_wei=-(10**18), usd=-3000)
        mevobs.record_pool_liquidity("WETH/USDC", 1_000_000, exchange="uniswap_v3", chain="ethereum")
        mevobs.record_price_deviation("WETH/USDC", 12.5, exchange="uniswap_v3", chain="ethereum")
        mevobs.record_security_event("manual", "test", chain="ethereum")
        mevobs.record_exposure("WETH", 12, chain="ethereum")
        _breaker = mevobs.CircuitBreaker("semconv-test")  # held: breakers are weakly registered
        with mevobs.HealthServer(port=0, checks={}, interval=None) as server:
            mevobs.register_health_check("node", lambda: True, exchange="uniswap_v2", chain="ethereum")
            try:
                server.run_checks()
            finally:
                mevobs.unregister_health_check("node")

        async def lag() -> None:
            task = mevobs.watch_event_loop(0.001)
            await asyncio.sleep(0.01)
            task.cancel()

        asyncio.run(lag())
        STATE.dropped("invalid_value")
        for spec in semconv.METRICS:  # a metric added later, with no recording above yet
            if not spec.observable:
                STATE.instruments.record(spec, 1.0, {})
        exposed = {
            line.split("{")[0].split(" ")[0]
            for line in generate_latest(REGISTRY).decode().splitlines()
            if line.startswith("mev")
        }
    finally:
        STATE.install(before)
        configure_limits(None, {})
        meter_provider.shutdown()  # unregisters the collector
    for spec in semconv.METRICS:
        if spec.instrument == "histogram":
            assert f"{spec.prometheus_name}_bucket" in exposed
        else:
            assert spec.prometheus_name in exposed


def test_every_reason_the_code_counts_is_a_documented_drop_reason() -> None:
    """``STATE.dropped("reason")`` anywhere in mevobs uses a value of DROP_REASONS, and
    the docs table lists them all."""
    counted: set[str] = set()
    for path in Path(semconv.__file__).parent.rglob("*.py"):
        counted |= set(re.findall(r'dropped\(\s*"([a-z_]+)"', path.read_text()))
    assert {"invalid_value", "unbounded_label", "truncated"} <= counted  # the scan sees the calls
    assert counted <= set(semconv.DROP_REASONS)
    (row,) = [row for row in _section("attributes") if _code(row[0]) == [semconv.ATTR_DROP_REASON]]
    assert re.findall(r"`([a-z_]+)`", row[3].split("Values:")[1]) == list(semconv.DROP_REASONS)
