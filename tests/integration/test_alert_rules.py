"""The generated rule and Alertmanager files pass the real tools, and every alert fires
on a synthetic series that breaks its threshold and stays silent on a healthy one
(``promtool test rules``), with the default settings and with the short windows an
end-to-end test uses."""

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

STEPS = 180  # samples of synthetic data, one per interval (a minute, or 15 s for FAST)
L = semconv.prometheus_label
OP, EX, CHAIN, OUTCOME = (
    L(a) for a in (semconv.ATTR_OPERATION, semconv.ATTR_EXCHANGE, semconv.ATTR_CHAIN, semconv.ATTR_OUTCOME)
)
SWAP = {OP: "swap", EX: "uniswap_v2", CHAIN: "ethereum"}
RPC = {OP: "rpc", CHAIN: "ethereum"}
COUNT = semconv.OPERATION_DURATION.prometheus_name + "_count"
# What OpenTelemetry's exporters add to every series; alerts about a process drop it.
SCOPE = {"otel_scope_name": "mevobs", "otel_scope_version": "0.1.0"}

Values = Callable[[int], float | str | None]  # step -> value, "stale", or None (no sample)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} (apt-get install prometheus prometheus-alertmanager)")
    assert path is not None
    return path


def _sel(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def values(name: str, labels: dict[str, str], at: Values) -> dict[str, str]:
    """A series whose sample at each step is ``at(step)`` (None: no sample)."""
    out = []
    for step in range(STEPS + 1):
        v = at(step)
        out.append("_" if v is None else v if isinstance(v, str) else f"{v:g}")
    return {"series": _sel(name, labels), "values": " ".join(out)}


def counter(name: str, labels: dict[str, str], per_step: Callable[[int], float]) -> dict[str, str]:
    """A counter growing by ``per_step(step)`` at each step."""
    totals = [0.0]
    for step in range(STEPS):
        totals.append(totals[-1] + per_step(step))
    return values(name, labels, lambda step: totals[step])


def gauge(name: str, labels: dict[str, str], value: float) -> dict[str, str]:
    return {"series": _sel(name, labels), "values": f"{value:g}x{STEPS}"}


def histogram(
    spec: semconv.MetricSpec,
    buckets: Sequence[float],
    labels: dict[str, str],
    observe: Callable[[int], float],
) -> list[dict[str, str]]:
    """Bucket series for 10 observations a step of value ``observe(step)``."""
    out = []
    for le in (*buckets, float("inf")):
        le_text = "+Inf" if le == float("inf") else repr(float(le))
        out.append(
            counter(
                spec.prometheus_name + "_bucket",
                {**labels, "le": le_text},
                lambda step, le=le: 10.0 if observe(step) <= le else 0.0,
            )
        )
    return out


def outcomes(labels: dict[str, str], **per_step: float) -> list[dict[str, str]]:
    return [counter(COUNT, {**labels, OUTCOME: o}, lambda _s, r=r: r) for o, r in per_step.items()]


@dataclass
class Case:
    alert: str
    series: list[dict[str, str]]
    eval_step: int
    fires: list[dict[str, str]]  # labels of each expected alert (severity added); [] = silent


def latency(slow_after: int | None, fast: float = 0.01, slow: float = 5.0) -> Callable[[int], float]:
    return lambda m: slow if slow_after is not None and m >= slow_after else fast


def heartbeat(labels: dict[str, str], start: int, stop: int | None, *, then: str = "stale") -> dict[str, str]:
    """``mev.heartbeat`` of a process alive from ``start`` to ``stop`` (seconds since it
    started, a sample a minute); after ``stop``: ``then`` once ("stale": a scrape target
    gone), or the last value repeated ("frozen": a collector re-exposing it)."""

    def at(step: int) -> float | str | None:
        if step < start:
            return None
        if stop is None or step <= stop:
            return 60.0 * (step - start) + 7
        if then == "frozen":
            return 60.0 * (stop - start) + 7
        return "stale" if step == stop + 1 else None

    return values(semconv.HEARTBEAT.prometheus_name, labels, at)


def up(labels: dict[str, str], down_after: int | None = None) -> dict[str, str]:
    return values("up", labels, lambda s: 0 if down_after is not None and s > down_after else 1)


DURATION = semconv.OPERATION_DURATION
SLIPPAGE = semconv.SLIPPAGE
DIRECTION = L(semconv.ATTR_SLIPPAGE_DIRECTION)
SEC = {L(semconv.ATTR_SECURITY_KIND): "abnormal_gas", EX: "uniswap_v2", CHAIN: "ethereum", OP: "swap"}
SEC_ALERT = {k: SEC[k] for k in (L(semconv.ATTR_SECURITY_KIND), EX, CHAIN)}
STRAT = {CHAIN: "ethereum", L(semconv.ATTR_STRATEGY): "cross_dex"}
POOL = {EX: "sushiswap", CHAIN: "ethereum", L(semconv.ATTR_POOL): "WETH/USDC"}
BOT = {"job": "bot", "instance": "a:9464"}
# A bot behind a collector: the scrape target is the collector, the service labels are the bot's.
COLLECTOR = {"job": "otelcol", "instance": "collector:8889"}
ARB = {**COLLECTOR, "service_name": "arb-1", "service_instance_id": "7f3c"}
ARB_ALERT = {"job": "otelcol", "service_name": "arb-1"}
BREAKER = {**BOT, L(semconv.ATTR_CIRCUIT): "arbitrage"}
TOKEN = L(semconv.ATTR_TOKEN)
WETH = {**BOT, TOKEN: "WETH"}
REASON = L(semconv.ATTR_DROP_REASON)
GIB = 1024**3
UP_EXCHANGE = semconv.EXCHANGE_UP.prometheus_name
MEMORY, LIMIT = semconv.PROCESS_MEMORY.prometheus_name, semconv.PROCESS_MEMORY_LIMIT.prometheus_name
EXPOSURE, EXPOSURE_LIMIT = semconv.EXPOSURE.prometheus_name, semconv.EXPOSURE_LIMIT.prometheus_name
CIRCUIT, DROPPED = semconv.CIRCUIT_STATE.prometheus_name, semconv.TELEMETRY_DROPPED.prometheus_name


def slippage(
    bp: Callable[[int], float], direction: str = "adverse", outcome: str = "success"
) -> list[dict[str, str]]:
    return histogram(SLIPPAGE, semconv.SLIPPAGE_BUCKETS, {**SWAP, OUTCOME: outcome, DIRECTION: direction}, bp)


def swap_latency(seconds: Callable[[int], float]) -> list[dict[str, str]]:
    return histogram(DURATION, semconv.DURATION_BUCKETS, {**SWAP, OUTCOME: "success"}, seconds)


def dropped(reason: str, per_step: Callable[[int], float]) -> dict[str, str]:
    return counter(DROPPED, {**BOT, **SCOPE, REASON: reason}, per_step)


def breaker(states: Callable[[int], float]) -> dict[str, str]:
    return values(CIRCUIT, {**BREAKER, **SCOPE}, states)


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
    # Latency: slow after two fast hours fires, and keeps firing while the slow stretch is
    # a minority of the baseline; always fast, or always equally slow, does not.
    Case(
        "MevLatencyDegraded",
        swap_latency(latency(120)),
        150,
        [SWAP],
    ),
    Case(
        "MevLatencyDegraded",
        swap_latency(latency(100)),
        170,
        [SWAP],
    ),
    Case(
        "MevLatencyDegraded",
        swap_latency(latency(None)),
        150,
        [],
    ),
    Case(
        "MevLatencyDegraded",
        swap_latency(latency(0, slow=4.0)),
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
    # Connectivity without a HealthServer: half the RPC calls of a chain, or 40 % of an
    # exchange's swaps, failing fires; reverts, rate limits and a few failures do not.
    Case("MevExchangeConnectivity", outcomes(RPC, success=5, failure=5), 30, [{CHAIN: "ethereum"}]),
    Case(
        "MevExchangeConnectivity",
        outcomes(SWAP, success=6, failure=4),
        30,
        [{EX: "uniswap_v2", CHAIN: "ethereum"}],
    ),
    Case(
        "MevExchangeConnectivity",
        outcomes(RPC, success=10, failure=0.5, rate_limited=2) + outcomes(SWAP, success=5, reverted=5),
        30,
        [],
    ),
    # A bot that stops calling altogether is bot down or trading halted, not connectivity.
    Case(
        "MevExchangeConnectivity",
        [counter(COUNT, {**RPC, OUTCOME: "success"}, lambda m: 10 if m < 20 else 0)],
        40,
        [],
    ),
    # With a HealthServer: its check decides where it reports, and both forms together
    # make one alert, not two.
    Case(
        "MevExchangeConnectivity",
        [gauge(UP_EXCHANGE, {EX: "uniswap_v3", CHAIN: "ethereum"}, 0)],
        20,
        [{EX: "uniswap_v3", CHAIN: "ethereum"}],
    ),
    Case(
        "MevExchangeConnectivity",
        [gauge(UP_EXCHANGE, {EX: "uniswap_v3", CHAIN: "ethereum"}, 1), *outcomes(RPC, success=10)],
        20,
        [],
    ),
    Case(
        "MevExchangeConnectivity",
        [gauge(UP_EXCHANGE, {**SWAP, **SCOPE}, 1), *outcomes(SWAP, success=6, failure=4)],
        30,
        [],
    ),
    Case(
        "MevExchangeConnectivity",
        [
            gauge(UP_EXCHANGE, {EX: "uniswap_v3", CHAIN: "ethereum"}, 0),
            *outcomes({**RPC, EX: "uniswap_v3"}, success=5, failure=5),
        ],
        30,
        [{EX: "uniswap_v3", CHAIN: "ethereum"}],
    ),
    # Bot down: a scraped target gone (one alert, by target), a bot behind a collector whose
    # heartbeat froze (by job and service); not a live bot, a restarted one, or a target
    # that never reported a heartbeat.
    Case("MevBotDown", [up(BOT, down_after=30), heartbeat({**BOT, **SCOPE}, 0, 30)], 40, [BOT]),
    Case(
        "MevBotDown",
        [up(COLLECTOR), heartbeat({**ARB, **SCOPE}, 0, 30, then="frozen")],
        34,
        [ARB_ALERT],
    ),
    Case("MevBotDown", [up(COLLECTOR), heartbeat({**ARB, **SCOPE}, 0, 30)], 90, [ARB_ALERT]),
    Case("MevBotDown", [up(BOT), heartbeat({**BOT, **SCOPE}, 0, None)], 60, []),
    Case(
        "MevBotDown",
        [
            up(COLLECTOR),
            heartbeat({**ARB, **SCOPE}, 0, 30),
            heartbeat({**ARB, **SCOPE, "service_instance_id": "9a01"}, 31, None),
        ],
        40,
        [],
    ),
    Case(
        "MevBotDown",
        [up(BOT), heartbeat({**BOT, **SCOPE}, 0, None), up({"job": "node", "instance": "n:9100"}, 10)],
        40,
        [],
    ),
    # Trading halted: a breaker open (or cycling open / half open) for 5 minutes fires;
    # one open for 3 minutes, or closed, does not.
    Case("MevTradingHalted", [breaker(lambda s: 2 if s >= 10 else 0)], 20, [BREAKER]),
    Case("MevTradingHalted", [breaker(lambda s: (2 if s % 2 else 1) if s >= 10 else 0)], 20, [BREAKER]),
    Case("MevTradingHalted", [breaker(lambda s: 2 if 10 <= s < 13 else 0)], 20, []),
    Case("MevTradingHalted", [breaker(lambda s: 2 if s >= 10 else 0)], 14, []),
    Case("MevTradingHalted", [breaker(lambda s: 0)], 20, []),
    # Telemetry lost: failed exports going on fire; fidelity reasons (truncated, series
    # cap) rising, or a single lost batch, do not.
    Case(
        "MevTelemetryLost",
        [dropped("export_failed", lambda s: 10 if s >= 10 else 0)],
        30,
        [{**BOT, REASON: "export_failed"}],
    ),
    Case(
        "MevTelemetryLost",
        [dropped("truncated", lambda s: 100), dropped("series_cap", lambda s: 100)],
        30,
        [],
    ),
    Case("MevTelemetryLost", [dropped("queue_full", lambda s: 5 if s == 20 else 0)], 25, []),
    # Slippage: 100 bp adverse fires; 5 bp adverse or 300 bp favourable do not, nor does a
    # reverted swap with nothing received (10 000 bp, from a library that still recorded it).
    Case(
        "MevHighSlippage",
        slippage(lambda m: 100),
        40,
        [SWAP],
    ),
    Case(
        "MevHighSlippage",
        slippage(lambda m: 5) + slippage(lambda m: 300, "favorable"),
        40,
        [],
    ),
    Case(
        "MevHighSlippage",
        slippage(lambda m: 5) + slippage(lambda m: 10_000, outcome="reverted"),
        40,
        [],
    ),
    # Liquidity: one alert per pool, however many bots report it.
    Case(
        "MevLowPoolLiquidity",
        [
            gauge(semconv.POOL_LIQUIDITY.prometheus_name, {**POOL, **BOT, **SCOPE}, 40_000),
            gauge(semconv.POOL_LIQUIDITY.prometheus_name, {**POOL, **SCOPE, "job": "bot2"}, 41_000),
        ],
        20,
        [POOL],
    ),
    Case("MevLowPoolLiquidity", [gauge(semconv.POOL_LIQUIDITY.prometheus_name, POOL, 5_000_000)], 20, []),
    Case("MevPriceDeviation", [gauge(semconv.PRICE_DEVIATION.prometheus_name, POOL, 450)], 20, [POOL]),
    Case("MevPriceDeviation", [gauge(semconv.PRICE_DEVIATION.prometheus_name, POOL, 20)], 20, []),
    Case("MevRpcRateLimited", outcomes(RPC, success=8, rate_limited=2), 30, [{CHAIN: "ethereum"}]),
    Case("MevRpcRateLimited", outcomes(RPC, success=10, rate_limited=0.2), 30, []),
    # Memory, against the limit the process reports: 7 of 8 GiB fires, 0.5 of 2 does not,
    # and without a limit series there is nothing to compare with.
    Case(
        "MevMemoryHigh",
        [gauge(MEMORY, {**BOT, **SCOPE}, 7 * GIB), gauge(LIMIT, {**BOT, **SCOPE}, 8 * GIB)],
        20,
        [BOT],
    ),
    Case(
        "MevMemoryHigh",
        [gauge(MEMORY, {**BOT, **SCOPE}, 0.5 * GIB), gauge(LIMIT, {**BOT, **SCOPE}, 2 * GIB)],
        20,
        [],
    ),
    Case("MevMemoryHigh", [gauge(MEMORY, {**BOT, **SCOPE}, 1.9 * GIB)], 20, []),
    # Exposure: each chain's holding (long or short) against the token's limit; a token
    # without a limit never fires.
    Case(
        "MevRiskExposure",
        [
            gauge(EXPOSURE, {**WETH, **SCOPE, CHAIN: "ethereum"}, 100),
            gauge(EXPOSURE, {**WETH, **SCOPE, CHAIN: "arbitrum"}, -160),
            gauge(EXPOSURE_LIMIT, {**WETH, **SCOPE}, 150),
        ],
        20,
        [{**WETH, CHAIN: "arbitrum"}],
    ),
    Case(
        "MevRiskExposure",
        [
            gauge(EXPOSURE, {**WETH, **SCOPE, CHAIN: "ethereum"}, 100),
            gauge(EXPOSURE, {**BOT, **SCOPE, TOKEN: "USDC", CHAIN: "ethereum"}, 1e6),
            gauge(EXPOSURE_LIMIT, {**WETH, **SCOPE}, 150),
        ],
        20,
        [],
    ),
]

# What an end-to-end test sets: short windows, no `for`, evaluation every 15 s. Every
# alert still fires within a minute or two of its condition starting.
FAST = AlertSettings(
    rate_window="1m",
    group_interval="15s",
    failure_for="0s",
    latency_baseline_window="10m",
    latency_for="0s",
    connectivity_for="0s",
    bot_down_window="1m",
    bot_down_lookback="1h",
    bot_down_for="0s",
    trading_halted_for="0s",
    telemetry_lost_for="0s",
    slippage_for="0s",
    memory_for="0s",
    exposure_for="0s",
)
# Steps of 15 s: each condition starts at step 80 (20 minutes in) and the alert must fire
# within 6 steps (90 s); the healthy half of each pair stays silent under the same settings.
ONSET = 80


def after(value: float, before: float = 0.0) -> Callable[[int], float]:
    return lambda s: value if s >= ONSET else before


FAST_CASES = [
    Case(
        "MevFailedTransactions",
        [*outcomes(SWAP, success=6), counter(COUNT, {**SWAP, OUTCOME: "reverted"}, after(4))],
        ONSET + 4,
        [SWAP],
    ),
    Case(
        "MevLatencyDegraded",
        swap_latency(latency(ONSET)),
        ONSET + 2,
        [SWAP],
    ),
    Case(
        "MevLatencyDegraded",
        swap_latency(latency(0, slow=4.0)),
        ONSET + 2,
        [],
    ),
    Case(
        "MevExchangeConnectivity",
        [*outcomes(SWAP, success=6), counter(COUNT, {**SWAP, OUTCOME: "failure"}, after(4))],
        ONSET + 4,
        [{EX: "uniswap_v2", CHAIN: "ethereum"}],
    ),
    Case("MevBotDown", [up(BOT, down_after=ONSET), heartbeat({**BOT, **SCOPE}, 0, ONSET)], ONSET + 2, [BOT]),
    Case(
        "MevBotDown",
        [up(COLLECTOR), heartbeat({**ARB, **SCOPE}, 0, ONSET, then="frozen")],
        ONSET + 5,
        [ARB_ALERT],
    ),
    Case("MevBotDown", [up(BOT), heartbeat({**BOT, **SCOPE}, ONSET, None)], ONSET + 1, []),
    Case("MevTradingHalted", [breaker(after(2))], ONSET + 1, [BREAKER]),
    Case(
        "MevTelemetryLost",
        [values(DROPPED, {**BOT, **SCOPE, REASON: "queue_full"}, lambda s: 3 if s >= ONSET else None)],
        ONSET + 1,
        [{**BOT, REASON: "queue_full"}],
    ),
    Case("MevTelemetryLost", [dropped("truncated", after(50))], ONSET + 2, []),
    Case(
        "MevHighSlippage",
        slippage(after(100, 5)),
        ONSET + 4,
        [SWAP],
    ),
    Case(
        "MevMemoryHigh",
        [values(MEMORY, {**BOT, **SCOPE}, after(1.9 * GIB, GIB)), gauge(LIMIT, {**BOT, **SCOPE}, 2 * GIB)],
        ONSET + 1,
        [BOT],
    ),
    Case(
        "MevRiskExposure",
        [
            values(EXPOSURE, {**WETH, **SCOPE, CHAIN: "ethereum"}, after(200, 100)),
            gauge(EXPOSURE_LIMIT, {**WETH, **SCOPE}, 150),
        ],
        ONSET + 1,
        [{**WETH, CHAIN: "ethereum"}],
    ),
]


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def _test_group(case: Case, settings: AlertSettings, interval: str = "1m") -> dict[str, Any]:
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
    seconds = {"1m": 60, "15s": 15}[interval]
    return {
        "name": f"{case.alert} {'fires' if case.fires else 'silent'} at step {case.eval_step}",
        "interval": interval,
        "input_series": case.series,
        "alert_rule_test": [
            {"eval_time": f"{case.eval_step * seconds}s", "alertname": case.alert, "exp_alerts": expected}
        ],
    }


def _promtool_test(
    tmp_path: Path, settings: AlertSettings, groups: list[dict[str, Any]], interval: str
) -> str:
    """Run ``promtool test rules`` on ``groups`` against the rules of ``settings``;
    its output, and whether it passed."""
    write_rules(tmp_path / "rules.yml", settings)
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": interval, "tests": groups}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=100_000))
    done = subprocess.run(
        [tool("promtool"), "test", "rules", "tests.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    return ("PASSED\n" if done.returncode == 0 else "FAILED\n") + done.stdout[-6000:] + done.stderr[-6000:]


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
    out = _promtool_test(tmp_path, AlertSettings(), [_test_group(c, AlertSettings()) for c in CASES], "1m")
    assert out.startswith("PASSED"), out


def test_short_windows_fire_within_two_minutes(tmp_path: Path) -> None:
    """With the windows an end-to-end test uses (rate_window 1m, no `for`, 15 s
    evaluations) the same expressions fire within 90 s of their condition starting,
    and the healthy cases stay silent."""
    groups = [_test_group(c, FAST, "15s") for c in FAST_CASES]
    assert all(c.eval_step - ONSET <= 6 for c in FAST_CASES if c.fires)
    out = _promtool_test(tmp_path, FAST, groups, "15s")
    assert out.startswith("PASSED"), out


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """The harness can fail: expecting a healthy case to fire makes promtool report it."""
    settings = AlertSettings()
    healthy = next(c for c in CASES if c.alert == "MevPriceDeviation" and not c.fires)
    wrong = Case(healthy.alert, healthy.series, healthy.eval_step, [POOL])
    out = _promtool_test(tmp_path, settings, [_test_group(wrong, settings)], "1m")
    assert out.startswith("FAILED") and "MevPriceDeviation" in out
