"""End to end, per alert: ``mevobs demo --scenario X`` makes its alert fire in a real
Prometheus loading the generated rules, and a real Alertmanager routes it to the webhook
of its severity (pager for critical, chat for warning) with the right labels; the
healthy scenario fires nothing; killing a demo fires the bot-down alert; a demo at
``--fail-rate 1`` fires failed transactions but never high slippage; a demo stopped
while Prometheus scrapes it starts again on the same port at once.

Every demo runs at the same time against one Prometheus and one Alertmanager
(``alert_stack.py``), each in its own scrape job: the whole module takes about as
long as its slowest alert. Windows and ``for`` durations are short; every
expression is the one ``mevobs rules`` writes.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.alert_stack import SCRAPE_SECONDS, Received, Stack, owner, wait_for
from tests.integration.conftest import alertmanager_binary, missing, prometheus_binary

from mevobs.alerts import AlertSettings, alert_rules
from mevobs.demo import SCENARIOS

pytestmark = pytest.mark.integration

SETTINGS = AlertSettings(
    group_interval="1s",
    rate_window="30s",
    failure_for="0s",
    security_for="0s",
    latency_for="0s",
    # A bucket bound: a busy machine stalls a healthy call for a second now and then, and
    # one such outlier in the (1, 2.5] bucket interpolates to a p99 anywhere up to 2.5 s.
    # The slowed exchange's swaps take about 1.5 s, 5 s at p99.
    latency_p99_seconds=2.5,
    latency_baseline_window="1m",
    profit_window="2m",  # a minute of a slowed-down demo may hold a single stale, losing trade
    profit_for="0s",
    connectivity_for="0s",
    bot_down_window="15s",
    bot_down_for="20s",  # a few scrapes timing out on a busy machine are not a dead bot
    # Above the trading-halted scenario's 6 s blip as Prometheus sees it (one scrape
    # interval longer), with room for a demo running late.
    trading_halted_for="15s",
    telemetry_lost_for="0s",
    slippage_for="0s",
    liquidity_for="0s",
    price_deviation_for="0s",
    rate_limited_for="0s",
    memory_for="0s",
    exposure_for="0s",
    group_wait="1s",
    alert_group_interval="1s",
    repeat_interval="1h",
)
#: How long the healthy demo runs before it is judged: past every window above (the
#: longest: profit_window, and the latency baseline's rate_window + latency_baseline_window).
HEALTHY_SECONDS = 125
#: From a demo's start to its alert at the webhook, at most (start-up included); the
#: slowest alert (latency, trading halted) takes about a minute on two cores.
ALERT_TIMEOUT = 240
#: From an action (a kill, a restart) to what it must cause, at most.
WAIT = 120
DURATION = ["--duration", "900"]  # longer than the module; the fixture stops them

#: What the alert of each scenario must carry (chain without the job prefix).
LABELS: dict[str, dict[str, set[str]]] = {
    "failed-transactions": {"mev_operation": {"arbitrage", "swap"}},
    "security-incident": {"mev_security_kind": {"unexpected_contract"}},
    "latency-degraded": {"mev_operation": {"swap"}, "mev_exchange": {"uniswap_v2"}},
    "profitability-drop": {"mev_chain": {"ethereum"}},
    "exchange-down": {"mev_exchange": {"curve"}, "mev_chain": {"ethereum"}},
    "trading-halted": {"mev_circuit_name": {"demo-arbitrage"}},
    "telemetry-lost": {"reason": {"export_failed"}},
    "high-slippage": {"mev_operation": {"swap"}, "mev_exchange": {"uniswap_v2"}},
    "low-liquidity": {"mev_exchange": {"curve"}, "mev_pool": {"USDC/USDT"}},
    "price-deviation": {"mev_exchange": {"sushiswap"}},
    "rate-limited": {"mev_chain": {"ethereum", "arbitrum"}},
    "memory-high": {"job": {"memory-high"}},
    "risk-exposure": {"mev_token": {"WETH"}},
}
FIRING = [name for name, s in SCENARIOS.items() if s.alert is not None]
#: The severity each generated alert carries, and the webhook Alertmanager routes it to.
SEVERITY = {rule.name: str(rule.severity) for rule in alert_rules(SETTINGS)}
WEBHOOK = {"critical": "/pager", "warning": "/chat"}
#: Measured for the report: (demo, alert) -> seconds from the demo's start to the webhook.
TIMES: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if prometheus_binary() is None:
        missing("prometheus (apt-get install prometheus)")
    if alertmanager_binary() is None:
        missing("alertmanager (apt-get install prometheus-alertmanager)")
    demos = {name: ["--scenario", name, *DURATION] for name in SCENARIOS}
    demos["bot-down"] = ["--scenario", "healthy", *DURATION]
    demos["fail-rate-1"] = ["--fail-rate", "1", *DURATION]
    demos["restart"] = ["--scenario", "healthy", *DURATION]
    running = Stack(tmp_path_factory.mktemp("alerts"), SETTINGS, demos)
    running.start_demos(demos)
    yield running
    fired = {name: _fired(running, name) for name in demos}
    running.stop()
    for (demo, alert), seconds in sorted(TIMES.items(), key=lambda kv: kv[1]):
        print(f"{demo:<26} {alert:<24} {seconds:6.1f} s to the webhook")
    for name, alerts in fired.items():
        print(f"{name:<26} fired: {'; '.join(sorted(alerts)) or '-'}")


def _plain(labels: dict[str, str]) -> dict[str, str]:
    """The labels with the demo's name taken off ``mev_chain`` (see alert_stack)."""
    chain = labels.get("mev_chain")
    return {**labels, "mev_chain": chain.partition("/")[2]} if chain else labels


def _carries(received: Received, want: dict[str, set[str]]) -> bool:
    """Whether the alert has, for every label of ``want``, one of its allowed values."""
    labels = _plain(received.labels)
    return all(labels.get(label) in allowed for label, allowed in want.items())


def _arrived(stack: Stack, demo: str, alert: str, want: dict[str, set[str]] | None = None) -> list[Received]:
    """Every ``alert`` from ``demo`` that reached a webhook, once one of them carries the
    labels ``want``: an alert of the same name about something else (the RPC calls of a
    slowed exchange, say) may arrive first."""

    def arrived() -> list[Received]:
        got = stack.received(demo, alert)
        return got if any(_carries(r, want or {}) for r in got) else []

    got = wait_for(f"{alert} {want or ''} from {demo} at a webhook", arrived, ALERT_TIMEOUT)
    TIMES[(demo, alert)] = min(r.at for r in got if _carries(r, want or {})) - stack.demos[demo].started
    return got


@pytest.mark.parametrize("name", FIRING)
def test_the_scenario_fires_its_alert_at_the_webhook_of_its_severity(stack: Stack, name: str) -> None:
    """The scenario's alert reaches the pager (critical) or chat (warning) webhook with
    the labels that say what broke; it never reaches the other one."""
    alert = SCENARIOS[name].alert
    assert alert is not None
    got = _arrived(stack, name, alert, LABELS[name])
    assert {r.labels["severity"] for r in got} == {SEVERITY[alert]}
    assert {r.path for r in got} == {WEBHOOK[SEVERITY[alert]]}


def test_latency_degraded_names_the_slowed_exchange_only(stack: Stack) -> None:
    """Only the exchange made slow is degraded; the other exchanges' swaps, as fast as
    before, stay silent (operations tied to no exchange, an arbitrage through it or the
    RPC calls made for it, may fire too)."""
    _arrived(stack, "latency-degraded", "MevLatencyDegraded", LABELS["latency-degraded"])
    history = stack.alert_history("latency-degraded")
    exchanges = {s["metric"].get("mev_exchange", "") for s in history if _is(s, "MevLatencyDegraded")}
    assert "uniswap_v2" in exchanges and exchanges <= {"uniswap_v2", ""}, exchanges


def test_a_short_halt_does_not_fire_trading_halted_and_a_long_one_does(stack: Stack) -> None:
    """The trading-halted scenario opens its breaker for 6 s first: Prometheus sees that
    halt, and the alert fires only trading_halted_for after the halt that lasts."""
    _arrived(stack, "trading-halted", "MevTradingHalted")
    window = f"{int(time.monotonic() - stack.started) + 60}s"
    states = stack.query(f'mev_circuit_state{{job="trading-halted"}}[{window}]')
    assert len(states) == 1
    opened = _rises(states[0]["values"])
    assert len(opened) >= 2, states  # the blip and the lasting halt, both scraped
    firing = [s for s in stack.alert_history("trading-halted") if _is(s, "MevTradingHalted", "firing")]
    first_firing = min(float(t) for s in firing for t, _ in s["values"])
    halted_for = float(SETTINGS.trading_halted_for.rstrip("s"))
    assert first_firing >= opened[-1] + halted_for - 1  # trading_halted_for after the last opening


def test_killing_the_demo_fires_bot_down_and_a_restart_on_its_port_resolves_it(stack: Stack) -> None:
    """kill -9 while Prometheus scrapes it: MevBotDown reaches the pager. Started again at
    once on the same port (its old connections still in TIME_WAIT), the demo runs, is
    scraped, and the alert resolves."""
    demo = stack.demos["bot-down"]
    wait_for("the bot-down demo to be scraped", lambda: stack.scraped("bot-down"), WAIT)
    demo.kill(signal.SIGKILL)
    killed = time.monotonic()
    got = wait_for("MevBotDown at the pager", lambda: stack.received("bot-down", "MevBotDown"), WAIT)
    TIMES[("bot-down (after kill -9)", "MevBotDown")] = min(r.at for r in got) - killed
    assert {r.labels["severity"] for r in got} == {SEVERITY["MevBotDown"]}
    assert {r.path for r in got} == {WEBHOOK[SEVERITY["MevBotDown"]]}
    assert {r.labels["instance"] for r in got} == {f"127.0.0.1:{demo.port}"}
    demo.start()
    wait_for("the restarted demo to serve /metrics", demo.serves_metrics, WAIT)
    assert demo.proc is not None and demo.proc.poll() is None
    wait_for("MevBotDown to resolve", lambda: stack.received("bot-down", "MevBotDown", "resolved"), WAIT)


def test_a_demo_stopped_while_scraped_starts_again_on_its_port_at_once(stack: Stack) -> None:
    """Stopped with Ctrl-C while Prometheus scrapes it, the demo leaves its connections in
    TIME_WAIT on its port; started again at once on that port, it does not call the port
    busy: it serves /metrics and Prometheus scrapes it again."""
    demo = stack.demos["restart"]
    wait_for("the demo to be scraped", lambda: stack.scraped("restart"), WAIT)
    assert demo.kill(signal.SIGINT) == 0
    assert _time_wait(demo.port), "no connection in TIME_WAIT: the test would prove nothing"
    demo.start()
    wait_for("the restarted demo to serve /metrics", demo.serves_metrics, WAIT)
    assert demo.proc is not None and demo.proc.poll() is None, demo.log.read_text()[-2000:]
    restarted = time.time()
    wait_for(
        "Prometheus to scrape the restarted demo",
        lambda: any(float(s["value"][0]) > restarted for s in stack.query('up{job="restart"} == 1')),
        WAIT,
    )


def test_fail_rate_1_fires_failed_transactions_and_never_high_slippage(stack: Stack) -> None:
    """Every transaction reverts: the failed-transactions alert fires, and a full rate
    window later the slippage alert has never even been pending (a reverted swap filled
    nothing and records no slippage)."""
    got = _arrived(stack, "fail-rate-1", "MevFailedTransactions")
    assert {r.path for r in got} == {WEBHOOK[SEVERITY["MevFailedTransactions"]]}
    # A whole rate_window of reverted swaps after the alert (and a scrape more).
    window = float(SETTINGS.rate_window.rstrip("s")) + SCRAPE_SECONDS
    time.sleep(max(0.0, min(r.at for r in got) + window - time.monotonic()))
    reverted = 'job="fail-rate-1", mev_operation="swap", mev_outcome="reverted"'
    swaps = stack.query(f"sum(mev_operation_duration_seconds_count{{{reverted}}})")
    assert swaps and float(swaps[0]["value"][1]) > 0
    assert not stack.query('mev_slippage_count{job="fail-rate-1"}')  # no series at all, of any outcome
    slippage = [s for s in stack.alert_history("fail-rate-1") if _is(s, "MevHighSlippage")]
    assert not slippage, slippage
    assert not stack.received("fail-rate-1", "MevHighSlippage")


def test_healthy_fires_nothing(stack: Stack) -> None:
    """Run past every alert's window, the healthy demo has fired no alert and no webhook
    heard of it. (Last in the module: the other tests run while it waits. An alert with a
    ``for`` may have been pending: a scrape timing out on a busy machine is what ``for``
    is there to absorb.)"""
    demo = stack.demos["healthy"]
    scrapes = HEALTHY_SECONDS // SCRAPE_SECONDS
    scraped_for = f'count_over_time(mev_heartbeat_seconds{{job="healthy"}}[10m]) >= {scrapes}'
    wait_for(f"{HEALTHY_SECONDS} s of healthy scrapes", lambda: stack.query(scraped_for), 300, every=2)
    assert demo.proc is not None and demo.proc.poll() is None, "the healthy demo stopped"
    fired = [s["metric"] for s in stack.alert_history("healthy") if s["metric"]["alertstate"] == "firing"]
    assert not fired, fired
    received = stack.webhooks.alerts()
    assert not [r.labels for r in received if owner(r.labels) == "healthy"]
    assert not [r.labels for r in received if owner(r.labels) not in stack.demos]  # none unattributed


def test_the_demo_docs_show_the_settings_this_test_uses() -> None:
    """docs/demo.md tells readers to generate rules with these settings to see each alert
    within a minute or two: they are the ones this module proves it with."""
    text = (Path(__file__).parents[2] / "docs" / "demo.md").read_text()
    block = text.split("# alerts-demo.yaml", 1)[1].split("```", 1)[0].split("\n", 1)[1]
    documented = AlertSettings(**yaml.safe_load(block))
    ignored = {"security_for", "repeat_interval"}  # their defaults in the docs, spelled out here
    assert documented.model_dump(exclude=ignored) == SETTINGS.model_dump(exclude=ignored)


def _is(series: dict[str, Any], alert: str, state: str | None = None) -> bool:
    labels = series["metric"]
    return bool(labels["alertname"] == alert and (state is None or labels["alertstate"] == state))


def _fired(stack: Stack, name: str) -> set[str]:
    """The alerts demo ``name`` fired, with what they are about (for the report)."""
    shown = ("mev_operation", "mev_exchange", "mev_chain", "mev_strategy", "mev_security_kind", "reason")
    return {
        s["metric"]["alertname"] + str({k: v for k, v in _plain(s["metric"]).items() if k in shown and v})
        for s in stack.alert_history(name)
        if s["metric"]["alertstate"] == "firing"
    }


def _rises(values: list[list[Any]]) -> list[float]:
    """Times at which a circuit state went from closed (0) to not closed."""
    rises, before = [], 0.0
    for t, v in values:
        if float(v) > 0 and before == 0:
            rises.append(float(t))
        before = float(v)
    return rises


def _time_wait(port: int) -> bool:
    """Whether a TCP connection from 127.0.0.1:``port`` is in TIME_WAIT (Linux)."""
    wanted = f"0100007F:{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(line.split()[1] == wanted and line.split()[3] == "06" for line in lines):
            return True
    return False
