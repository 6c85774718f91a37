"""The demo's named scenarios (``mevobs demo --scenario NAME``): each is reproducible by
seed, drives the condition its docstring names, and is for a real alert; the conditions
they add reach the simulation without touching a plain run. The alerts firing end to
end is tests/integration/test_alert_scenarios.py."""

from __future__ import annotations

import io
import json
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mevobs
from mevobs import semconv
from mevobs.alerts import AlertSettings, alert_rules
from mevobs.demo import SCENARIOS, Conditions, DemoOptions, DemoResult, run_demo, scenario
from mevobs.demo._bot import E18, Bot, deviation_bp, make_pools, move_price, tvl_usd
from mevobs.demo._chain import STRANGER
from mevobs.demo._run import _pool_check
from mevobs.demo._scenarios import how_to_fire, listing

ALERTS = {rule.name for rule in alert_rules(AlertSettings())}


def _run(name: str, blocks: int, tmp_path: Path, seed: int = 4, *, settings: bool = False) -> DemoResult:
    """An unpaced run of the scenario; without ``settings`` its configure() changes are
    left out (spans to a closed port would slow the shutdown down for nothing)."""
    named = SCENARIOS[name]
    result = run_demo(
        DemoOptions(
            blocks=blocks,
            seed=seed,
            exporter="none",
            log_path=tmp_path / f"{name}-{seed}-{random.random()}.jsonl",
            scenario=named if settings else lambda block, c: named(block, c),
        ),
        out=io.StringIO(),
        err=io.StringIO(),
    )
    mevobs.shutdown()
    return result


def _records(result: DemoResult) -> list[dict[str, Any]]:
    lines = result.log_path.read_text().splitlines()
    return [json.loads(line).get("attributes", {}) for line in lines]


def _counts(result: DemoResult) -> tuple[Any, ...]:
    outcomes = {key: dict(by) for key, by in result.tally.outcomes.items()}
    return outcomes, result.bot.net_profit_wei, result.bot.funnel, result.blocks


class TestRegistry:
    def test_every_scenario_names_a_real_alert_and_says_what_it_drives(self) -> None:
        for name, named in SCENARIOS.items():
            assert named.name == name
            assert named.alert is None or named.alert in ALERTS, named.alert
            assert named.summary() and named.summary() in listing()
        assert [s.name for s in SCENARIOS.values() if s.alert is None] == ["healthy"]

    def test_every_alert_can_be_seen_firing_from_the_demo(self) -> None:
        """One scenario per alert, except bot down: stopping the demo is its scenario."""
        assert {s.alert for s in SCENARIOS.values()} - {None} == ALERTS - {"MevBotDown"}
        for alert in ALERTS:
            assert how_to_fire(alert), alert
        assert "kill" in str(how_to_fire("MevBotDown"))

    def test_an_unknown_name_says_which_exist(self) -> None:
        with pytest.raises(KeyError, match="healthy, failed-transactions"):
            scenario("nope")

    def test_the_cli_lists_the_scenarios_and_refuses_an_unknown_one(self) -> None:
        listed = subprocess.run(
            [sys.executable, "-m", "mevobs", "demo", "--scenario", "list"], capture_output=True, text=True
        )
        assert listed.returncode == 0
        for named in SCENARIOS.values():
            assert named.name in listed.stdout and (named.alert or "(none)") in listed.stdout
        bad = subprocess.run(
            [sys.executable, "-m", "mevobs", "demo", "--scenario", "nope"], capture_output=True, text=True
        )
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1
        assert "unknown scenario 'nope'" in bad.stderr and "--scenario list" in bad.stderr


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_scenario_is_reproducible_by_seed(tmp_path: Path, name: str) -> None:
    """The same seed gives the same counts, funnel and profit to the wei, unpaced; the
    scenario changes the run (except where its fault is latency, memory or configuration)."""
    first, again = _run(name, 120, tmp_path), _run(name, 120, tmp_path)
    assert _counts(first) == _counts(again)
    if name not in ("healthy", "latency-degraded", "telemetry-lost", "memory-high", "risk-exposure"):
        healthy = _run("healthy", 120, tmp_path)
        assert _counts(first) != _counts(healthy)


class TestWhatEachScenarioDrives:
    def test_healthy_keeps_prices_near_the_reference_and_rate_limits_rare(self, tmp_path: Path) -> None:
        result = _run("healthy", 200, tmp_path)
        records = _records(result)
        rpc = [r for r in records if r.get(semconv.ATTR_OPERATION) == "rpc"]
        limited = [r for r in rpc if r[semconv.ATTR_OUTCOME] == semconv.OUTCOME_RATE_LIMITED]
        assert len(limited) < 0.02 * len(rpc)
        assert not [r for r in records if semconv.ATTR_SECURITY_KIND in r]
        assert result.bot.breaker is not None and result.bot.breaker.stats.trips == 0

    def test_failed_transactions_reverts_a_large_share_of_trades(self, tmp_path: Path) -> None:
        outcomes = _run("failed-transactions", 200, tmp_path).tally.outcomes
        swaps = [by for (kind, _), by in outcomes.items() if kind == "swap"]
        reverted = sum(by.get(semconv.OUTCOME_REVERTED, 0) for by in swaps)
        assert reverted > 0.2 * sum(sum(by.values()) for by in swaps)

    def test_security_incident_sends_one_transaction_to_a_stranger_and_holds_the_breaker(
        self, tmp_path: Path
    ) -> None:
        result = _run("security-incident", 120, tmp_path)
        records = _records(result)
        strays = [r for r in records if r.get(semconv.ATTR_TX_TO) == STRANGER and semconv.ATTR_OUTCOME in r]
        kinds = [r[semconv.ATTR_SECURITY_KIND] for r in records if semconv.ATTR_SECURITY_KIND in r]
        assert len(strays) == 1 and kinds.count("unexpected_contract") == 1
        assert result.bot.breaker is not None and result.bot.breaker.state == "open"

    def test_latency_degraded_slows_one_exchange_after_its_start_block(self) -> None:
        named = SCENARIOS["latency-degraded"]
        before, after = Conditions(), Conditions()
        named(159, before)
        named(160, after)
        assert before.rpc_latency_factor == {}
        assert after.rpc_latency_factor == {"uniswap_v2": 40.0}
        assert after.lookup(after.rpc_latency_factor, "sushiswap", 1.0) == 1.0

    def test_profitability_drop_loses_money_on_ethereum_only(self, tmp_path: Path) -> None:
        inventory = _run("profitability-drop", 200, tmp_path).bot.inventory_wei
        assert inventory["ethereum"] < 100 * E18 < inventory["arbitrum"]

    def test_exchange_down_fails_the_exchange_check_and_its_calls(self, tmp_path: Path) -> None:
        result = _run("exchange-down", 200, tmp_path)
        bot = result.bot
        assert not _pool_check(bot.pools["curve"], bot.node)()
        assert _pool_check(bot.pools["sushiswap"], bot.node)()
        records = _records(result)
        late = [r for r in records[len(records) // 2 :] if r.get(semconv.ATTR_EXCHANGE) == "curve"]
        assert late and all(r[semconv.ATTR_OUTCOME] == semconv.OUTCOME_FAILURE for r in late)

    def test_trading_halted_blips_then_holds_the_breaker_open(self, tmp_path: Path) -> None:
        result = _run("trading-halted", 140, tmp_path)
        breaker = result.bot.breaker
        assert breaker is not None and breaker.state == "open" and breaker.stats.trips == 2
        assert result.bot.refused > 0

    def test_telemetry_lost_sends_spans_where_nothing_listens(self) -> None:
        named = SCENARIOS["telemetry-lost"]
        assert hasattr(named, "settings")
        given_ = named.settings()
        assert given_["traces_exporter"] == "otlp"
        port = int(given_["endpoint"].rsplit(":", 1)[1])
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))

    def test_high_slippage_fills_one_exchange_about_100_bp_short(self, tmp_path: Path) -> None:
        records = _records(_run("high-slippage", 200, tmp_path))
        swaps = [
            r for r in records if r.get(semconv.ATTR_OPERATION) == "swap" and semconv.ATTR_SLIPPAGE_BP in r
        ]
        hit = [r[semconv.ATTR_SLIPPAGE_BP] for r in swaps if r[semconv.ATTR_EXCHANGE] == "uniswap_v2"]
        spared = {r[semconv.ATTR_SLIPPAGE_BP] for r in swaps if r[semconv.ATTR_EXCHANGE] != "uniswap_v2"}
        assert spared == {0.0}  # a quote is what the swap pays, elsewhere
        assert hit and {round(bp) for bp in hit} == {0, 100}  # before the warm-up ends, and after
        assert sum(1 for bp in hit if bp > 99) > len(hit) / 2

    def test_low_liquidity_keeps_the_pool_small_but_not_empty(self, tmp_path: Path) -> None:
        pool = _run("low-liquidity", 200, tmp_path).bot.pools["curve"]
        assert 0 < tvl_usd(pool) < 100_000

    def test_rate_limited_rate_limits_about_15_percent_of_rpc_calls(self, tmp_path: Path) -> None:
        tally = _run("rate-limited", 200, tmp_path).tally
        share = tally.total(kind="rpc", outcome=semconv.OUTCOME_RATE_LIMITED) / tally.total(kind="rpc")
        assert 0.10 < share < 0.20

    def test_memory_high_leaks_a_bounded_amount_under_a_limit_just_above_resident_memory(
        self, tmp_path: Path
    ) -> None:
        from mevobs.guards._process import resident_bytes

        named = SCENARIOS["memory-high"]
        limit = named.settings()["memory_limit_bytes"]  # type: ignore[attr-defined]
        assert 0 < limit - (resident_bytes() or 0) <= 40 * 1024 * 1024
        ballast = _run("memory-high", 200, tmp_path).bot.ballast
        assert sum(map(len, ballast)) == 160 * 256 * 1024  # then it stops growing

    def test_risk_exposure_sets_a_limit_below_the_inventory(self) -> None:
        limits = SCENARIOS["risk-exposure"].settings()["exposure_limits"]  # type: ignore[attr-defined]
        assert limits["WETH"] < 100  # each chain starts with 100 WETH

    def test_scenario_settings_reach_configure(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """What a scenario's settings() returns is what configure() gets, over the demo's own."""
        seen: dict[str, Any] = {}
        original = mevobs.configure

        def spy(**kwargs: Any) -> Any:
            seen.update(kwargs)
            return original(**kwargs)

        monkeypatch.setattr(mevobs, "configure", spy)
        _run("risk-exposure", 2, tmp_path, settings=True)
        assert seen["exposure_limits"] == {"WETH": 90.0}
        assert seen["memory_limit_bytes"] == 1 << 30  # the demo's own, untouched


class TestOutsideArbitrage:
    @settings(max_examples=40, deadline=None)
    @given(
        key=st.sampled_from(sorted(make_pools())),
        noise_seed=st.integers(0, 2**32),
        target=st.floats(-600, 600),
    )
    def test_move_price_lands_on_the_target_for_every_pool_kind(
        self, key: str, noise_seed: int, target: float
    ) -> None:
        bot = Bot(random.Random(noise_seed), node=None)  # type: ignore[arg-type]
        for _ in range(5):
            bot.noise()
        pool = bot.pools[key]
        move_price(pool, target)
        assert deviation_bp(pool) == pytest.approx(target, abs=1.0)

    def test_the_band_holds_every_pool_and_an_offset_moves_its_centre(self) -> None:
        bot = Bot(random.Random(3), node=None)  # type: ignore[arg-type]
        band = Conditions(reference_band_bp=100.0, reference_offset_bp={"sushiswap": 500.0})
        for _ in range(50):
            bot.noise()
            bot.outside_arbitrage(band)
            devs = {key: deviation_bp(pool) for key, pool in bot.pools.items()}
            assert 399 <= devs.pop("sushiswap") <= 601
            assert all(abs(dev) <= 101 for dev in devs.values()), devs

    def test_the_liquidity_cap_withdraws_what_is_above_it(self) -> None:
        bot = Bot(random.Random(0), node=None)  # type: ignore[arg-type]
        bot.apply(Conditions(liquidity_cap_usd={"curve": 60_000.0}))
        assert tvl_usd(bot.pools["curve"]) == pytest.approx(60_000, rel=1e-3)
        bot.pools["curve"].add_liquidity(10_000 * 10**6, 10_000 * 10**6)
        bot.apply(Conditions(liquidity_cap_usd={"curve": 60_000.0}))
        assert tvl_usd(bot.pools["curve"]) == pytest.approx(60_000, rel=1e-3)


def test_neutral_conditions_leave_a_plain_run_as_it_was(tmp_path: Path) -> None:
    """Every field at its default draws nothing and changes nothing: a scenario that sets
    them all to their defaults gives the plain run, to the wei."""

    def neutral(block: int, c: Conditions) -> None:
        for name, default in vars(Conditions()).items():
            setattr(c, name, default)

    def run(scenario: Any) -> DemoResult:
        result = run_demo(
            DemoOptions(blocks=150, seed=9, fail_rate=0.3, exporter="none", scenario=scenario,
                        log_path=tmp_path / f"n{random.random()}.jsonl"),
            out=io.StringIO(), err=io.StringIO(),
        )  # fmt: skip
        mevobs.shutdown()
        return result

    assert _counts(run(None)) == _counts(run(neutral))
