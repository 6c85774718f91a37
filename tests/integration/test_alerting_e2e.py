"""End to end: a real Prometheus loads the generated rules and scrapes the demo failing
60 % of its transactions; the failed-transactions alert fires, a real Alertmanager
receives it and routes it to the pager webhook; every dashboard query runs."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.alert_stack import Webhooks, wait_for
from tests.integration.conftest import (
    Alertmanager,
    Prometheus,
    alertmanager_binary,
    free_port,
    missing,
    prometheus_binary,
)

import mevobs
from mevobs.alerts import AlertSettings, build_dashboards, write_alertmanager, write_rules
from mevobs.alerts._dashboards import expressions
from mevobs.demo import DemoOptions, run_demo
from mevobs.demo._run import DemoResult

pytestmark = pytest.mark.integration


@pytest.fixture
def webhooks() -> Iterator[Webhooks]:
    hooks = Webhooks()
    yield hooks
    hooks.stop()


def _concrete(expr: str) -> str:
    """A dashboard query as Grafana would send it: variables replaced by what they stand for."""
    return (
        expr.replace("$__rate_interval", "20s")
        .replace("$__range", "1m")
        .replace('"$chain"', '".*"')
        .replace('"$exchange"', '".*"')
        .replace('"$job"', '".*"')
    )


# Panels that must show data once the demo ran (the rest may be legitimately empty,
# e.g. RPC errors in a run without any).
MAIN_PANELS = (
    "Throughput by operation and outcome",
    "Success rate by operation and exchange",
    "Latency p50 / p95 / p99 by exchange",
    "Gas spend rate",
    "Net profit rate by strategy",
    "Capture rate (included / detected)",
    "Opportunity funnel",
    "Operations by kind and outcome",
    "Latency quantiles by operation",
    "Pool liquidity",
    "Price deviation from reference",
    "Circuit breakers (0 closed, 1 half open, 2 open)",
    "Exchange connectivity checks",
    "Inventory (risk exposure)",
    "Inventory against its limit",
    "Notional volume by exchange (ETH/h)",
    "Notional volume by exchange (USD/h)",
    "Exchange utilisation: share of volume",
    "Exchange utilisation: share of calls",
    "RPC latency by method (p50, p99)",
    "Notional volume (ETH/h)",
    "Gas used per transaction (p50, p95)",
    "Slippage p95 by direction",
    "Uptime (heartbeat)",
    "Memory against its limit",
    "CPU (cores used)",
    "Network I/O (host)",
    "Garbage collections by generation",
    "Threads",
    "Event-loop lag p99",
    "Database query latency p95",
    "variable chain",
    "variable exchange",
    "variable job",
)


def test_failed_transactions_alert_reaches_alertmanager_and_dashboards_query(
    tmp_path: Path, webhooks: Webhooks
) -> None:
    if prometheus_binary() is None:
        missing("prometheus (apt-get install prometheus)")
    if alertmanager_binary() is None:
        missing("alertmanager (apt-get install prometheus-alertmanager)")
    settings = AlertSettings(
        rate_window="20s",
        group_interval="1s",
        failure_for="0s",
        group_wait="1s",
        alert_group_interval="1s",
        pager_webhook_url=f"http://127.0.0.1:{webhooks.port}/pager",  # type: ignore[arg-type]
        chat_webhook_url=f"http://127.0.0.1:{webhooks.port}/chat",  # type: ignore[arg-type]
    )
    rules = tmp_path / "rules.yml"
    write_rules(rules, settings)
    am_config = tmp_path / "alertmanager.yml"
    write_alertmanager(am_config, settings)
    demo_port = free_port()
    alertmanager = Alertmanager(tmp_path, am_config)
    prometheus = Prometheus(
        tmp_path, scrape_port=demo_port, rule_files=[rules], alertmanager_port=alertmanager.port
    )
    results: list[DemoResult] = []
    demo = threading.Thread(
        target=lambda: results.append(
            run_demo(
                DemoOptions(
                    duration=40,
                    seed=5,
                    exporter="prometheus",
                    metrics_port=demo_port,
                    fail_rate=0.6,
                    time_scale=0.2,
                    log_path=tmp_path / "demo.jsonl",
                ),
                out=io.StringIO(),
                err=io.StringIO(),
            )
        ),
        daemon=True,
    )
    demo.start()
    try:
        rules_loaded = prometheus.api("rules")["groups"]
        assert {g["name"] for g in rules_loaded} == {
            "mevobs.recording",
            "mevobs.alerts.critical",
            "mevobs.alerts.warning",
        }
        assert all(r["health"] != "err" for g in rules_loaded for r in g["rules"]), rules_loaded

        def firing_in_prometheus() -> list[dict[str, Any]]:
            return [
                a
                for a in prometheus.api("alerts")["alerts"]
                if a["labels"]["alertname"] == "MevFailedTransactions" and a["state"] == "firing"
            ]

        firing = wait_for("MevFailedTransactions to fire in Prometheus", firing_in_prometheus, 45)
        assert {a["labels"]["severity"] for a in firing} == {"critical"}
        assert all(a["annotations"]["runbook_url"].endswith("#failed-transactions") for a in firing)
        exchanges = {a["labels"].get("mev_exchange") for a in firing}
        assert exchanges & {"uniswap_v2", "sushiswap", "uniswap_v3", "curve", "camelot", ""}

        def in_alertmanager() -> list[dict[str, Any]]:
            return [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "MevFailedTransactions"]

        received = wait_for("Alertmanager to list MevFailedTransactions", in_alertmanager, 30)
        assert all(a["status"]["state"] in ("active", "suppressed") for a in received)
        assert {a["labels"]["severity"] for a in received} == {"critical"}
        # Routed by severity: the pager webhook gets it, the chat webhook never does.
        wait_for(
            "the pager webhook to be called",
            lambda: "MevFailedTransactions" in webhooks.alertnames("/pager"),
            30,
        )
        assert "MevFailedTransactions" not in webhooks.alertnames("/chat")

        # Every dashboard query is valid PromQL on this Prometheus; the main panels show data.
        wait_for("the rate window to fill", lambda: prometheus.query(_concrete(_first_latency_expr())), 30)
        empty, titles = [], set()
        for file, dashboard in build_dashboards(settings).items():
            for title, expr in expressions(dashboard):
                titles.add(title)
                concrete = _concrete(expr)
                if title.startswith("variable"):
                    match = re.fullmatch(r"label_values\((.*), (\w+)\)", concrete)
                    assert match, concrete
                    values = prometheus.api("series", **{"match[]": match.group(1)})
                    has_data = any(match.group(2) in s and s[match.group(2)] for s in values)
                else:
                    has_data = bool(prometheus.query(concrete))  # raises on a PromQL error
                if title in MAIN_PANELS and not has_data:
                    empty.append(f"{file}: {title}: {concrete}")
        assert not empty, "\n".join(empty)
        assert set(MAIN_PANELS) <= titles, set(MAIN_PANELS) - titles  # no panel checked by a stale title
    finally:
        demo.join(90)
        mevobs.shutdown()
        prometheus.stop()
        alertmanager.stop()
    assert results and results[0].tally.total() > 0


def _first_latency_expr() -> str:
    overview = build_dashboards()["mevobs-overview.json"]
    return next(e for t, e in expressions(overview) if t.startswith("Latency"))
