"""The generated rule and Alertmanager files pass the real tools, and every alert fires
on a synthetic series that breaks its threshold and stays silent on a healthy one
(``promtool test rules``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.conftest import missing

from mevobs import semconv
from mevobs.alerts import AlertSettings, alert_rules, write_alertmanager, write_rules

pytestmark = pytest.mark.integration

STEPS = 180  # minutes of synthetic data, one sample a minute
L = semconv.prometheus_label
OP, EX, CHAIN, OUTCOME = (
    L(a) for a in (semconv.ATTR_OPERATION, semconv.ATTR_EXCHANGE, semconv.ATTR_CHAIN, semconv.ATTR_OUTCOME)
)
SWAP = {OP: "swap", EX: "uniswap_v2", CHAIN: "ethereum"}
RPC = {OP: "rpc", CHAIN: "ethereum"}
COUNT = semconv.OPERATION_DURATION.prometheus_name + "_count"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} (apt-get install prometheus prometheus-alertmanager)")
    assert path is not None
    return path


def _sel(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def counter(name: str, labels: dict[str, str], per_minute: Callable[[int], float]) -> dict[str, str]:
    """A counter growing by ``per_minute(minute)`` each minute."""
    total, values = 0.0, []
    for minute in range(STEPS + 1):
        values.append(f"{total:g}")
        total += per_minute(minute)
    return {"series": _sel(name, labels), "values": " ".join(values)}


def gauge(name: str, labels: dict[str, str], value: float) -> dict[str, str]:
    return {"series": _sel(name, labels), "values": f"{value:g}x{STEPS}"}


def histogram(
    spec: semconv.MetricSpec,
    buckets: Sequence[float],
    labels: dict[str, str],
    observe: Callable[[int], float],
) -> list[dict[str, str]]:
    """Bucket series for 10 observations a minute of value ``observe(minute)``."""
    out = []
    for le in (*buckets, float("inf")):
        le_text = "+Inf" if le == float("inf") else repr(float(le))
        out.append(
            counter(
                spec.prometheus_name + "_bucket",
                {**labels, "le": le_text},
                lambda minute, le=le: 10.0 if observe(minute) <= le else 0.0,
            )
        )
    return out


def outcomes(labels: dict[str, str], **per_minute: float) -> list[dict[str, str]]:
    return [counter(COUNT, {**labels, OUTCOME: o}, lambda _m, r=r: r) for o, r in per_minute.items()]


@dataclass
class Case:
    alert: str
    series: list[dict[str, str]]
    eval_minute: int
    fires: list[dict[str, str]]  # labels of each expected alert (severity added); [] = silent


def latency(slow_after: int | None, fast: float = 0.01, slow: float = 5.0) -> Callable[[int], float]:
    return lambda m: slow if slow_after is not None and m >= slow_after else fast


DURATION = semconv.OPERATION_DURATION
SLIPPAGE = semconv.SLIPPAGE
DIRECTION = L(semconv.ATTR_SLIPPAGE_DIRECTION)
SEC = {L(semconv.ATTR_SECURITY_KIND): "abnormal_gas", EX: "uniswap_v2", CHAIN: "ethereum", OP: "swap"}
SEC_ALERT = {k: SEC[k] for k in (L(semconv.ATTR_SECURITY_KIND), EX, CHAIN)}
STRAT = {CHAIN: "ethereum", L(semconv.ATTR_STRATEGY): "cross_dex"}
POOL = {EX: "sushiswap", CHAIN: "ethereum", L(semconv.ATTR_POOL): "WETH/USDC"}
BOT = {"job": "bot", "instance": "a:9464"}
GIB = 1024**3

CASES = [
    # Failed transactions: 40 % reverted fires; 5 % does not, nor do failing RPC calls.
    Case("MevFailedTransactions", outcomes(SWAP, success=6, reverted=4), 30, [SWAP]),
    Case(
        "MevFailedTransactions",
        outcomes({**SWAP, OP: "arbitrage"}, success=3, failure=2),
        30,
        [{**SWAP, OP: "arbitrage"}],
    ),
    Case(
        "MevFailedTransactions",
        outcomes(SWAP, success=19, reverted=1, skipped=30) + outcomes(RPC, success=5, failure=5),
        30,
        [],
    ),
    # Security: a new event series, or a growing one, fires at once; a flat old one is silent.
    Case(
        "MevSecurityIncident",
        [{"series": _sel(semconv.SECURITY_EVENTS.prometheus_name, SEC), "values": "_x20 1x40"}],
        22,
        [SEC_ALERT],
    ),
    Case(
        "MevSecurityIncident",
        [counter(semconv.SECURITY_EVENTS.prometheus_name, SEC, lambda m: 1 if m == 40 else 0)],
        42,
        [SEC_ALERT],
    ),
    Case("MevSecurityIncident", [gauge(semconv.SECURITY_EVENTS.prometheus_name, SEC, 3)], 60, []),
    # Latency: slow after two fast hours fires; always fast, or always equally slow, does not.
    Case(
        "MevLatencyDegraded",
        histogram(DURATION, semconv.DURATION_BUCKETS, {**SWAP, OUTCOME: "success"}, latency(120)),
        150,
        [SWAP],
    ),
    Case(
        "MevLatencyDegraded",
        histogram(DURATION, semconv.DURATION_BUCKETS, {**SWAP, OUTCOME: "success"}, latency(None)),
        150,
        [],
    ),
    Case(
        "MevLatencyDegraded",
        histogram(DURATION, semconv.DURATION_BUCKETS, {**SWAP, OUTCOME: "success"}, latency(0, slow=4.0)),
        150,
        [],
    ),
    # Profitability: losing 0.008 ETH a minute net fires; earning does not.
    Case(
        "MevProfitabilityDrop",
        [
            counter(semconv.PROFIT.prometheus_name, STRAT, lambda m: 0.002),
            counter(semconv.LOSS.prometheus_name, STRAT, lambda m: 0.01),
        ],
        90,
        [STRAT],
    ),
    Case("MevProfitabilityDrop", [counter(semconv.LOSS.prometheus_name, STRAT, lambda m: 0.01)], 90, [STRAT]),
    Case(
        "MevProfitabilityDrop",
        [
            counter(semconv.PROFIT.prometheus_name, STRAT, lambda m: 0.01),
            counter(semconv.LOSS.prometheus_name, STRAT, lambda m: 0.002),
        ],
        90,
        [],
    ),
    # Connectivity: half the RPC calls failing fires, and so do successes stopping;
    # a few failures and rate limits do not.
    Case("MevExchangeConnectivity", outcomes(RPC, success=5, failure=5), 30, [{CHAIN: "ethereum"}]),
    Case(
        "MevExchangeConnectivity",
        [counter(COUNT, {**RPC, OUTCOME: "success"}, lambda m: 10 if m < 20 else 0)],
        40,
        [{CHAIN: "ethereum"}],
    ),
    Case("MevExchangeConnectivity", outcomes(RPC, success=10, failure=0.5, rate_limited=2), 30, []),
    Case(
        "MevExchangeConnectivity",
        [gauge(semconv.EXCHANGE_UP.prometheus_name, {EX: "uniswap_v3", CHAIN: "ethereum"}, 0)],
        20,
        [{EX: "uniswap_v3", CHAIN: "ethereum"}],
    ),
    Case(
        "MevExchangeConnectivity",
        [
            gauge(semconv.EXCHANGE_UP.prometheus_name, {EX: "uniswap_v3", CHAIN: "ethereum"}, 1),
            *outcomes(RPC, success=10),
        ],
        20,
        [],
    ),
    # Slippage: 100 bp adverse fires; 5 bp adverse or 300 bp favourable do not.
    Case(
        "MevHighSlippage",
        histogram(SLIPPAGE, semconv.SLIPPAGE_BUCKETS, {**SWAP, DIRECTION: "adverse"}, lambda m: 100),
        40,
        [SWAP],
    ),
    Case(
        "MevHighSlippage",
        histogram(SLIPPAGE, semconv.SLIPPAGE_BUCKETS, {**SWAP, DIRECTION: "adverse"}, lambda m: 5)
        + histogram(SLIPPAGE, semconv.SLIPPAGE_BUCKETS, {**SWAP, DIRECTION: "favorable"}, lambda m: 300),
        40,
        [],
    ),
    Case("MevLowPoolLiquidity", [gauge(semconv.POOL_LIQUIDITY.prometheus_name, POOL, 40_000)], 20, [POOL]),
    Case("MevLowPoolLiquidity", [gauge(semconv.POOL_LIQUIDITY.prometheus_name, POOL, 5_000_000)], 20, []),
    Case("MevPriceDeviation", [gauge(semconv.PRICE_DEVIATION.prometheus_name, POOL, 450)], 20, [POOL]),
    Case("MevPriceDeviation", [gauge(semconv.PRICE_DEVIATION.prometheus_name, POOL, 20)], 20, []),
    Case("MevRpcRateLimited", outcomes(RPC, success=8, rate_limited=2), 30, [{CHAIN: "ethereum"}]),
    Case("MevRpcRateLimited", outcomes(RPC, success=10, rate_limited=0.2), 30, []),
    # Memory: either exporter's resident-memory name; 1.9 GiB of 2 GiB fires, 0.5 GiB does not.
    Case("MevMemoryHigh", [gauge(semconv.PROCESS_MEMORY_PROMETHEUS[0], BOT, 1.9 * GIB)], 20, [BOT]),
    Case("MevMemoryHigh", [gauge(semconv.PROCESS_MEMORY_PROMETHEUS[1], BOT, 1.9 * GIB)], 20, [BOT]),
    Case("MevMemoryHigh", [gauge(semconv.PROCESS_MEMORY_PROMETHEUS[0], BOT, 0.5 * GIB)], 20, []),
]


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def _test_group(case: Case, settings: AlertSettings) -> dict[str, Any]:
    rule = next(r for r in alert_rules(settings) if r.name == case.alert)
    expected = []
    for labels in case.fires:
        expected.append(
            {
                "exp_labels": {**labels, "severity": rule.severity},
                "exp_annotations": {
                    "summary": _render(rule.summary, labels),
                    "description": _render(rule.description, labels),
                    "runbook_url": f"{settings.runbook_url}#{rule.runbook}",
                },
            }
        )
    return {
        "name": f"{case.alert} {'fires' if case.fires else 'silent'}",
        "interval": "1m",
        "input_series": case.series,
        "alert_rule_test": [
            {"eval_time": f"{case.eval_minute}m", "alertname": case.alert, "exp_alerts": expected}
        ],
    }


def test_promtool_accepts_the_generated_rules(tmp_path: Path) -> None:
    """`promtool check rules` parses every recording and alerting rule."""
    promtool = tool("promtool")
    rules = tmp_path / "rules.yml"
    write_rules(rules)
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    groups = yaml.safe_load(rules.read_text())["groups"]
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in done.stdout
    assert sum(len(g["rules"]) for g in groups[1:]) == len(alert_rules(AlertSettings()))


def test_amtool_accepts_the_generated_alertmanager_config(tmp_path: Path) -> None:
    """`amtool check-config` accepts the routes, receivers and inhibition."""
    amtool = tool("amtool")
    config = tmp_path / "alertmanager.yml"
    write_alertmanager(config)
    done = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 inhibit rules" in done.stdout and "2 receivers" in done.stdout


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    """The cases below cover every generated alert both ways."""
    names = {r.name for r in alert_rules(AlertSettings())}
    assert {c.alert for c in CASES if c.fires} == names
    assert {c.alert for c in CASES if not c.fires} == names


def test_every_alert_fires_on_a_breaking_series_and_not_on_a_healthy_one(tmp_path: Path) -> None:
    """`promtool test rules` over the default rule file: each case's alerts, exactly."""
    promtool = tool("promtool")
    settings = AlertSettings()
    write_rules(tmp_path / "rules.yml", settings)
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [_test_group(case, settings) for case in CASES],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=100_000))
    done = subprocess.run(
        [promtool, "test", "rules", "tests.yml"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """The harness can fail: expecting a healthy case to fire makes promtool report it."""
    promtool = tool("promtool")
    settings = AlertSettings()
    write_rules(tmp_path / "rules.yml", settings)
    healthy = next(c for c in CASES if c.alert == "MevPriceDeviation" and not c.fires)
    wrong = Case(healthy.alert, healthy.series, healthy.eval_minute, [POOL])
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [_test_group(wrong, settings)],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=100_000))
    done = subprocess.run(
        [promtool, "test", "rules", "tests.yml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode != 0
    assert "MevPriceDeviation" in done.stdout + done.stderr
