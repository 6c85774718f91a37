"""The demo: a deterministic bot, paced or unpaced, its summary, its /metrics and its CLI
(the AMM math is in test_demo_amm.py)."""

from __future__ import annotations

import io
import logging
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mevobs
from mevobs import semconv
from mevobs.demo import DemoOptions, run_demo
from mevobs.demo._bot import CYCLES, MAX_IN, MIN_IN, Bot, deviation_bp, make_chains, tvl_usd
from mevobs.demo._conditions import Conditions
from mevobs.demo._summary import COLUMNS, Latencies, Tally


def _run(seed: int, fail_rate: float = 0.0, **kw: object) -> tuple[str, object]:
    out, err = io.StringIO(), io.StringIO()
    result = run_demo(
        DemoOptions(
            **{
                "duration": 3,
                "seed": seed,
                "exporter": "none",
                "fail_rate": fail_rate,
                "time_scale": 0.02,
                **kw,
            }
        ),  # type: ignore[arg-type]
        out=out,
        err=err,
    )
    mevobs.shutdown()
    return out.getvalue(), result


ROW_KINDS = ("arbitrage", "swap", "rpc", "liquidity", "total")


def _counts(summary: str) -> list[str]:
    """Summary lines without what legitimately varies between runs of one seed: the
    wall-clock latency columns, the audit file's path, and the security-event count
    (the transaction-rate detector runs on wall-clock time)."""
    lines = []
    for line in summary.splitlines():
        if line.startswith(("audit trail", "security events")):
            continue
        parts = line.split()
        lines.append(" ".join(parts[:-3]) if parts and parts[0] in ROW_KINDS else line)
    return lines


def test_same_seed_same_counts_and_profit(tmp_path: Path) -> None:
    first, r1 = _run(7, log_path=tmp_path / "a.jsonl")
    second, r2 = _run(7, log_path=tmp_path / "b.jsonl")
    assert _counts(first) == _counts(second)
    assert r1.bot.net_profit_wei == r2.bot.net_profit_wei  # type: ignore[attr-defined]
    third, _ = _run(8, log_path=tmp_path / "c.jsonl")
    assert _counts(third) != _counts(first)


def test_blocks_runs_unpaced_and_exactly_the_blocks_of_the_same_duration(tmp_path: Path) -> None:
    """--blocks N is deterministic, and gives the counts and profit of --duration N/4 (it
    skips the sleeps, not the random draws); it does not wait for the wall clock."""
    paced, r1 = _run(5, fail_rate=0.5, duration=10, time_scale=0.2, log_path=tmp_path / "a.jsonl")
    started = time.monotonic()
    # At this time scale, pacing would take 1000 s and the RPC latency minutes more.
    fast, r2 = _run(5, fail_rate=0.5, blocks=40, time_scale=100, log_path=tmp_path / "b.jsonl")
    assert time.monotonic() - started < 60
    again, r3 = _run(5, fail_rate=0.5, blocks=40, log_path=tmp_path / "c.jsonl")
    assert r1.blocks == r2.blocks == r3.blocks == 40  # type: ignore[attr-defined]
    assert _counts(paced) == _counts(fast) == _counts(again)
    profits = {r.bot.net_profit_wei for r in (r1, r2, r3)}  # type: ignore[attr-defined]
    assert len(profits) == 1


def _table(summary: str) -> tuple[list[str], list[list[int]], list[int]]:
    """(outcome headers, per-row [count, outcomes...], the total row) from the summary."""
    lines = summary.splitlines()
    header = lines[0].split()
    outcome_headers = header[header.index("count") + 1 : header.index("p50")]
    rows = []
    for line in lines[1:]:
        parts = line.split()
        if not parts or parts[0] not in ROW_KINDS:
            break
        rows.append([int(x) for x in parts[2 : 3 + len(outcome_headers)]])
    return outcome_headers, rows[:-1], rows[-1]


def test_summary_columns_add_up_to_the_count_and_the_total(tmp_path: Path) -> None:
    """Every operation is in exactly one outcome column: each row's columns sum to its
    count, each column sums to the total row, and the total is every operation logged."""
    summary, result = _run(3, fail_rate=0.5, blocks=300, log_path=tmp_path / "t.jsonl")
    headers, rows, total = _table(summary)
    assert headers == [header for outcome, header in COLUMNS if outcome != "other"]
    assert rows and all(row[0] == sum(row[1:]) for row in rows)
    assert [sum(column) for column in zip(*rows, strict=True)] == total
    for header in ("reverted", "rate-ltd", "skipped", "failed"):  # this run has some of each
        assert total[1 + headers.index(header)] > 0, header
    logged = [line for line in (tmp_path / "t.jsonl").read_text().splitlines() if '"mev.outcome"' in line]
    assert total[0] == result.tally.total() == len(logged)  # type: ignore[attr-defined]
    assert f"operations          {total[0]}" in summary


def _record(outcome: str, kind: str = "rpc", ms: float = 1.0) -> logging.LogRecord:
    record = logging.LogRecord("mevobs", logging.INFO, __file__, 0, "op", None, None)
    record.mevobs = {  # type: ignore[attr-defined]
        semconv.ATTR_OPERATION: kind,
        semconv.ATTR_RPC_METHOD: "eth_call",
        semconv.ATTR_OUTCOME: outcome,
        "mev.duration_ms": ms,
    }
    return record


def test_an_outcome_the_summary_does_not_know_still_counts_once_under_other() -> None:
    from mevobs.demo._summary import render

    tally = Tally()
    for outcome in ("success", "rate_limited", "skipped", "cancelled", "weird"):
        tally.handle(_record(outcome))
    summary = render(tally, gas_wei=0, net_wei=0, eth_usd=3000, funnel={})
    headers, rows, total = _table(summary)
    assert headers[-1] == "other" and rows == [[5, 1, 0, 0, 1, 1, 1, 1]] and total == rows[0]


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300), st.sampled_from([50, 95, 99]))
def test_latency_percentiles_are_within_one_percent_of_the_exact_ones(values: list[float], q: int) -> None:
    latencies = Latencies()
    for value in values:
        latencies.add(value)
    exact = sorted(values)[max(1, math.ceil(q / 100 * len(values))) - 1]
    got = latencies.percentile(q)
    assert got == pytest.approx(exact, rel=0.0101, abs=0.001)  # bucket width 1 %, floor 1 us


def _reference_best(bot: Bot, legs: object) -> tuple[int, int] | None:
    """The scanner's former search: 100 ternary-search steps over the whole input range."""
    lo, hi = MIN_IN, MAX_IN
    for _ in range(100):
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        if bot.quote_cycle(legs, m1) - m1 < bot.quote_cycle(legs, m2) - m2:  # type: ignore[arg-type]
            lo = m1
        else:
            hi = m2
    out = bot.quote_cycle(legs, lo)  # type: ignore[arg-type]
    return (lo, out) if out > lo else None


def test_the_scanner_finds_what_an_exhaustive_search_finds(tmp_path: Path) -> None:
    """On markets moved at random, the fast search reports exactly the cycles that pay
    and, at its 2**-10 input resolution, at least 99.99 % of the best profit."""
    for seed in range(4):
        bot = Bot(random.Random(seed), node=None)  # type: ignore[arg-type]
        for _ in range(15):
            bot.noise()
            for name, legs in CYCLES.items():
                reference = _reference_best(bot, legs)
                fast = bot.best_input(legs, bot.hints.get(name, MIN_IN))
                assert (fast is None) == (reference is None), name
                if fast is not None and reference is not None:
                    bot.hints[name] = fast[0]
                    assert fast[1] - fast[0] >= (reference[1] - reference[0]) * 0.9999


def test_over_a_long_run_fees_and_prices_stay_near_their_usual_levels() -> None:
    """The base fee, pushed by the bot's own gas every block, wanders around its usual
    level instead of climbing for good (it reached 9000 gwei from 12 in 11 000 blocks);
    prices moved by other traders alone stay near the reference (a random walk left
    the V3 pool's range within minutes)."""
    rng = random.Random(1)
    chain = make_chains()["ethereum"]
    fees = []
    for _ in range(20_000):
        chain.gas_in_block = 1_000_000
        chain.next_block(rng)
        fees.append(chain.base_fee_wei)
    assert chain.usual_fee_wei / 3 < min(fees) and max(fees) < chain.usual_fee_wei * 3
    bot = Bot(random.Random(2), node=None)  # type: ignore[arg-type]
    worst = 0.0
    for _ in range(5_000):
        bot.noise()
        worst = max(worst, *(abs(deviation_bp(pool)) for pool in bot.pools.values()))
    assert worst < 2_000  # 20 %; the V3 range is +-21 %
    v3 = bot.pools["uniswap_v3"]
    assert v3.sqrt_lower_x96 < v3.sqrt_price_x96 < v3.sqrt_upper_x96


def test_scenario_conditions_reach_the_simulation(tmp_path: Path) -> None:
    """The seam for scenarios: a scenario that changes nothing leaves the run as it was;
    the conditions drain pools, push prices, fail an exchange's RPC calls, hold the
    breaker open and retain memory."""
    plain, _ = _run(2, blocks=30, log_path=tmp_path / "a.jsonl")
    idle, _ = _run(2, blocks=30, log_path=tmp_path / "b.jsonl", scenario=lambda block, c: None)
    assert _counts(plain) == _counts(idle)

    def scenario(block: int, c: Conditions) -> None:
        c.liquidity_drain = {"sushiswap": 1.0}
        c.price_push_bp = {"camelot": -500.0}
        c.rpc_failure_rate = {"curve": 1.0}
        c.hold_breaker_open = block < 20
        c.retain_bytes = 1000

    _, result = _run(2, blocks=30, log_path=tmp_path / "c.jsonl", scenario=scenario)
    bot = result.bot  # type: ignore[attr-defined]
    assert tvl_usd(bot.pools["sushiswap"]) == 0
    assert sum(map(len, bot.ballast)) == 30 * 1000
    assert bot.refused > 0 and bot.breaker.state != "open"  # held for 20 blocks, then let go
    pushed = Bot(random.Random(0), node=None)  # type: ignore[arg-type]
    pushed.apply(Conditions(price_push_bp={"uniswap_v2": -100.0, "sushiswap": 50.0}))
    assert -105 < deviation_bp(pushed.pools["uniswap_v2"]) < -95
    assert 45 < deviation_bp(pushed.pools["sushiswap"]) < 55
    outcomes = result.tally.outcomes  # type: ignore[attr-defined]
    on_curve = [outcomes.get((kind, "curve"), {}) for kind in ("swap", "liquidity")]
    assert sum(sum(by.values()) for by in on_curve) > 0  # curve was traded or provided to...
    assert not any(by.get("success") for by in on_curve)  # ...and every call for it failed


def test_summary_shows_rates_profit_and_capture(tmp_path: Path) -> None:
    summary, result = _run(3, fail_rate=0.5, log_path=tmp_path / "d.jsonl")
    for label in (
        "success rate",
        "failure rate",
        "revert rate",
        "gas spent",
        "net profit",
        "capture rate",
        "rate-limited RPC",
    ):
        assert label in summary
    revert = float(re.search(r"revert rate\s+([\d.]+)%", summary).group(1))  # type: ignore[union-attr]
    assert revert > 0
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    # One record per operation; security detector and circuit records come on top.
    operations = [line for line in lines if '"mev.outcome"' in line]
    assert len(operations) == result.tally.total()  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_endpoint_counts_equal_the_printed_counts(tmp_path: Path) -> None:
    port = _free_port()
    out = io.StringIO()
    result = run_demo(
        DemoOptions(
            duration=2,
            seed=5,
            exporter="prometheus",
            metrics_port=port,
            fail_rate=0.5,
            time_scale=0.02,
            log_path=tmp_path / "m.jsonl",
        ),
        out=out,
        err=io.StringIO(),
    )
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        mevobs.shutdown()
    counts = [
        float(v) for v in re.findall(r"^mev_operation_duration_seconds_count\{[^}]*\} (\S+)$", body, re.M)
    ]
    assert sum(counts) == result.tally.total()
    assert 'mev_outcome="reverted"' in body
    assert "mev_gas_cost_ETH_total" in body and "mev_opportunities_total" in body


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--exporter", "zipkin"], "invalid choice"),
        (["demo", "--duration", "-5"], "positive number"),
        (["demo", "--fail-rate", "2"], "between 0 and 1"),
        (["demo", "--blocks", "5", "--duration", "3"], "not allowed with argument"),
        (["demo", "--blocks", "0"], "whole number of blocks"),
    ],
)
def test_bad_cli_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "mevobs", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "mevobs", "demo", "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"mevobs: error: port {port} on 127.0.0.1 is busy; pass --metrics-port"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_a_port_whose_connections_linger_in_time_wait_is_free_for_a_restart() -> None:
    """The port a demo just served from (its closed connections in TIME_WAIT for a
    minute) passes the busy-port check, and the metrics server binds it at once."""
    from prometheus_client import CollectorRegistry, start_http_server

    from mevobs.cli import _port_free

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # the server closes first, as a stopping demo does: TIME_WAIT is on its side
        assert client.recv(1) == b""
        client.close()
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    assert any(line.split()[1] == wanted and line.split()[3] == "06" for line in lines)
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the probe used to do: "busy" for a minute
    assert _port_free(port)
    server, thread = start_http_server(port, addr="127.0.0.1", registry=CollectorRegistry())
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_ctrl_c_stops_cleanly_with_summary_and_exit_0(tmp_path: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "mevobs", "demo", "--duration", "60", "--exporter", "none"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "capture rate" in out and "Traceback" not in err
    assert (tmp_path / "mevobs-demo-1.jsonl").stat().st_size > 0


def test_demo_switches_the_runtime_guards_on(tmp_path: Path) -> None:
    """The demo runs with a circuit breaker (it trips under a 50 % revert rate and refuses
    arbitrages), the audit trail (intact, its net profit equal to the printed one) and
    the detectors; its summary reports them."""
    from mevobs.guards._audit import verify_audit
    from mevobs.guards._audit_report import audit_report

    summary, result = _run(3, fail_rate=0.5, log_path=tmp_path / "g.jsonl", duration=10)
    bot = result.bot  # type: ignore[attr-defined]
    assert bot.breaker is not None and bot.breaker.stats.trips > 0 and bot.refused > 0
    assert re.search(r"circuit breaker\s+\w+, [1-9]\d* trips, [1-9]\d* arbitrages refused", summary)
    audit = result.audit_path  # type: ignore[attr-defined]
    assert verify_audit([audit]).ok
    assert audit_report([audit]).total.net_wei == bot.net_profit_wei
    assert "security events" in summary and f"audit trail         {audit}" in summary


def test_demo_serves_health_endpoints_while_it_runs(tmp_path: Path) -> None:
    """`mevobs health` against the running demo exits 0 (every pool has liquidity, the
    breaker is closed), and 1 once the demo has gone."""
    import time

    health_port, metrics_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mevobs", "demo", "--duration", "120", "--seed", "2",
         "--health-port", str(health_port), "--metrics-port", str(metrics_port)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{health_port}"
        deadline = time.monotonic() + 90  # a loaded machine starts the demo slowly
        while True:
            done = subprocess.run(
                [sys.executable, "-m", "mevobs", "health", url], capture_output=True, text=True, timeout=30
            )
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert done.returncode == 0, done.stdout
        assert "checks pass" in done.stdout
    finally:
        proc.send_signal(signal.SIGINT)  # stops at the next block, like Ctrl-C
        proc.wait(60)
    gone = subprocess.run([sys.executable, "-m", "mevobs", "health", url], capture_output=True, text=True)
    assert gone.returncode == 1


def test_a_long_unpaced_run_exits_0_and_prints_its_summary(tmp_path: Path) -> None:
    """`mevobs demo --blocks N` at a 50 % failure rate runs to the end. CI runs 1000 blocks;
    MEVOBS_DEMO_BLOCKS=200000 runs the operators' acceptance length."""
    blocks = int(os.environ.get("MEVOBS_DEMO_BLOCKS", "1000"))
    proc = subprocess.run(
        [sys.executable, "-m", "mevobs", "demo", "--blocks", str(blocks), "--seed", "1",
         "--fail-rate", "0.5", "--exporter", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=max(300, blocks // 50),
        env={**os.environ, "PYTHONPATH": str(Path(mevobs.__file__).parents[1])},  # this mevobs
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"block {blocks}/{blocks}" in proc.stderr
    _, _, total = _table(proc.stdout)
    assert total[0] > blocks and "capture rate" in proc.stdout
