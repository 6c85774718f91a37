"""The demo: exact AMM math, a deterministic bot, its summary, its /metrics and its CLI."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import mevobs
from mevobs.demo import DemoOptions, run_demo


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


def _counts(summary: str) -> list[str]:
    """Summary lines without the wall-clock latency columns, the audit file's path, and
    the security-event count (the transaction-rate detector runs on wall-clock time)."""
    lines = []
    for line in summary.splitlines():
        if line.startswith(("audit trail", "security events")):
            continue
        parts = line.split()
        lines.append(
            " ".join(parts[:6]) if parts and parts[0] in ("arbitrage", "swap", "rpc", "liquidity") else line
        )
    return lines


def test_same_seed_same_counts_and_profit(tmp_path: Path) -> None:
    first, r1 = _run(7, log_path=tmp_path / "a.jsonl")
    second, r2 = _run(7, log_path=tmp_path / "b.jsonl")
    assert _counts(first) == _counts(second)
    assert r1.bot.net_profit_wei == r2.bot.net_profit_wei  # type: ignore[attr-defined]
    third, _ = _run(8, log_path=tmp_path / "c.jsonl")
    assert _counts(third) != _counts(first)


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
    from mevobs._audit import verify_chain
    from mevobs._audit_report import build_report

    summary, result = _run(3, fail_rate=0.5, log_path=tmp_path / "g.jsonl", duration=10)
    bot = result.bot  # type: ignore[attr-defined]
    assert bot.breaker is not None and bot.breaker.stats.trips > 0 and bot.refused > 0
    assert re.search(r"circuit breaker\s+\w+, [1-9]\d* trips, [1-9]\d* arbitrages refused", summary)
    audit = result.audit_path  # type: ignore[attr-defined]
    assert verify_chain([audit]).ok
    assert build_report([audit]).total.net_wei == bot.net_profit_wei
    assert "security events" in summary and f"audit trail         {audit}" in summary


def test_demo_serves_health_endpoints_while_it_runs(tmp_path: Path) -> None:
    """`mevobs health` against the running demo exits 0 (every pool has liquidity, the
    breaker is closed), and 1 once the demo has gone."""
    import time

    health_port, metrics_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mevobs", "demo", "--duration", "8", "--seed", "2",
         "--health-port", str(health_port), "--metrics-port", str(metrics_port)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{health_port}"
        deadline = time.monotonic() + 20
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
        proc.wait(60)
    gone = subprocess.run([sys.executable, "-m", "mevobs", "health", url], capture_output=True, text=True)
    assert gone.returncode == 1
