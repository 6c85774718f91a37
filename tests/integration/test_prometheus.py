"""A real Prometheus server scrapes the demo's /metrics; its HTTP API shows the contract's series."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import Prometheus, free_port, missing, prometheus_binary

import mevobs
from mevobs.demo import DemoOptions, run_demo

pytestmark = pytest.mark.integration


@pytest.fixture
def demo_port() -> int:
    return free_port()


@pytest.fixture
def prometheus(demo_port: int, tmp_path: Path) -> Iterator[Prometheus]:
    if prometheus_binary() is None:
        missing("prometheus (apt-get install prometheus)")
    server = Prometheus(tmp_path, scrape_port=demo_port)
    yield server
    server.stop()


def test_prometheus_scrapes_the_demo(prometheus: Prometheus, demo_port: int, tmp_path: Path) -> None:
    result = run_demo(
        DemoOptions(
            duration=4,
            seed=11,
            exporter="prometheus",
            metrics_port=demo_port,
            fail_rate=0.4,
            time_scale=0.2,
            log_path=tmp_path / "demo.jsonl",
        ),
        out=io.StringIO(),
        err=io.StringIO(),
    )
    try:
        printed_total = result.tally.total()
        deadline = time.monotonic() + 30
        scraped = None
        while time.monotonic() < deadline:
            scraped = prometheus.value("sum(mev_operation_duration_seconds_count)")
            if scraped == printed_total:
                break
            time.sleep(0.5)
        assert scraped == printed_total

        # Per kind and exchange/strategy/method, the scraped counts equal the printed ones.
        for (kind, label), by_outcome in result.tally.outcomes.items():
            for outcome, count in by_outcome.items():
                key = {
                    "swap": "mev_exchange",
                    "liquidity": "mev_exchange",
                    "arbitrage": "mev_strategy",
                    "rpc": "mev_rpc_method",
                }[kind]
                expr = (
                    f'sum(mev_operation_duration_seconds_count{{mev_operation="{kind}",{key}="{label}",'
                    f'mev_outcome="{outcome}"}})'
                )
                assert prometheus.value(expr) == count, expr

        series = prometheus.query(
            "count by (mev_exchange, mev_outcome) (mev_operation_duration_seconds_bucket)"
        )
        pairs = {(s["metric"].get("mev_exchange", ""), s["metric"]["mev_outcome"]) for s in series}
        assert ("uniswap_v2", "success") in pairs
        assert any(outcome == "reverted" for _, outcome in pairs)
        for name in ("mev_gas_used_bucket", "mev_gas_cost_ETH_total", "mev_opportunities_total"):
            assert prometheus.query(name), name
        assert prometheus.query("mev_profit_ETH_total") or prometheus.query("mev_loss_ETH_total")
        included = prometheus.value('sum(mev_opportunities_total{mev_opportunity_stage="included"})') or 0
        assert included == result.bot.funnel.get("included", 0)
    finally:
        mevobs.shutdown()
