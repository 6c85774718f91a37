"""Audit trail: hash chain across rotation, tamper detection (edit, delete, reorder),
crash mid-write, and the profit report's totals."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import mevobs
from mevobs.guards._audit import rotated_files, verify_audit
from mevobs.guards._audit_report import audit_report

N = 10_000


def write_log(path: Path, n: int = N, *, rotate_bytes: int = 64 * 1024 * 1024) -> list[dict[str, object]]:
    rng = random.Random(3)
    records = []
    with mevobs.AuditLog(path, rotate_bytes=rotate_bytes) as log:
        for i in range(n):
            reverted = rng.random() < 0.1
            gas = rng.randint(10**14, 10**16)
            gross = 0 if reverted else rng.randint(-(10**16), 10**17)
            records.append(
                log.write(
                    "operation",
                    {
                        "operation": "arbitrage",
                        "exchange": rng.choice(["uniswap_v2", "curve", "camelot"]),
                        "chain": rng.choice(["ethereum", "arbitrum"]),
                        "tx_hash": f"0x{i:064x}",
                        "outcome": "reverted" if reverted else "success",
                        "gas_cost_wei": str(gas),
                        "gross_profit_wei": str(gross),
                        "net_profit_wei": str(gross - gas),
                    },
                )
            )
    return records


def verify_cli(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mevobs", "audit", "verify", *map(str, paths)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def log_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    write_log(path)
    return path.read_text().splitlines(keepends=True)


def test_intact_log_verifies(tmp_path: Path, log_lines: list[str]) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(log_lines))
    done = verify_cli(path)
    assert done.returncode == 0, done.stdout
    assert f"OK: {N} records, chain intact" in done.stdout


@pytest.mark.parametrize("index", [0, 4321, N - 1])
def test_editing_one_line_is_detected(tmp_path: Path, log_lines: list[str], index: int) -> None:
    """Changing one amount anywhere breaks that record's hash."""
    lines = list(log_lines)
    record = json.loads(lines[index])
    record["net_profit_wei"] = str(int(record["net_profit_wei"]) + 1)
    lines[index] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(lines))
    done = verify_cli(path)
    assert done.returncode == 1
    assert f"audit.jsonl:{index + 1} (seq {index + 1}): record altered" in done.stdout


def test_editing_and_rehashing_one_line_is_detected(tmp_path: Path, log_lines: list[str]) -> None:
    """A forger who recomputes the record's own hash still breaks the next link."""
    from mevobs.guards._audit import _digest

    lines = list(log_lines)
    record = json.loads(lines[100])
    record["gas_cost_wei"] = "1"
    record.pop("hash")
    record["hash"] = _digest(record)
    lines[100] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(lines))
    done = verify_cli(path)
    assert done.returncode == 1 and "audit.jsonl:102 (seq 102): chain link altered" in done.stdout


def test_deleting_one_line_is_detected(tmp_path: Path, log_lines: list[str]) -> None:
    lines = list(log_lines)
    del lines[5000]
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(lines))
    done = verify_cli(path)
    assert done.returncode == 1
    assert "audit.jsonl:5001 (seq 5002): record(s) 5001 removed before it" in done.stdout


def test_reordering_two_lines_is_detected(tmp_path: Path, log_lines: list[str]) -> None:
    lines = list(log_lines)
    lines[7000], lines[7001] = lines[7001], lines[7000]
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(lines))
    done = verify_cli(path)
    assert done.returncode == 1
    assert "audit.jsonl:7001 (seq 7002): records reordered (expected seq 7001)" in done.stdout


def test_crash_mid_write_is_reported_and_loses_no_earlier_record(
    tmp_path: Path, log_lines: list[str]
) -> None:
    """A torn last line is reported as a partial record; every earlier record verifies,
    and reopening the log drops the torn bytes and continues the chain."""
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(log_lines) + log_lines[-1][:57])
    done = verify_cli(path)
    assert done.returncode == 0
    assert f"OK: {N} records" in done.stdout and "partial record (crash mid-write)" in done.stdout
    with mevobs.AuditLog(path) as log:
        record = log.write("operation", {"operation": "swap", "outcome": "success"})
    assert record["seq"] == N + 1
    again = verify_audit([path])
    assert again.ok and again.records == N + 1 and not again.truncated


def test_rotation_keeps_the_chain_across_files(tmp_path: Path) -> None:
    """Rotated files verify as one chain in any order given; removing a middle file is
    detected."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 2000, rotate_bytes=64 * 1024)
    files = [*rotated_files(path), path]
    assert len(files) > 3
    result = verify_audit(list(reversed(files)))
    assert result.ok and result.records == 2000, result.message
    broken = verify_audit([files[0], *files[2:]])
    assert not broken.ok and "removed" in broken.message


def test_report_totals_equal_the_sums_of_the_records(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 3000)
    report = audit_report([path], by="exchange")
    assert report.total.operations == 3000 == sum(r.operations for r in report.rows)
    assert report.total.gas_wei == sum(int(str(r["gas_cost_wei"])) for r in records)
    assert report.total.net_wei == sum(int(str(r["net_profit_wei"])) for r in records)
    assert report.total.gross_wei == sum(int(str(r["gross_profit_wei"])) for r in records)
    assert report.total.reverted == sum(r["outcome"] == "reverted" for r in records)
    assert {r.group for r in report.rows} == {"uniswap_v2", "curve", "camelot"}
    for fmt in ("table", "csv", "json"):
        done = subprocess.run(
            [sys.executable, "-m", "mevobs", "audit", "report", str(path), "--by", "chain", "--format", fmt],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    net_eth = Decimal(body["total"]["net_profit_eth"])
    assert net_eth * 10**18 == report.total.net_wei  # exact, no float rounding
    assert {row["group"] for row in body["rows"]} == {"ethereum", "arbitrum"}


def test_configure_audits_operations_and_exposure(tmp_path: Path) -> None:
    """With audit_path, a swap carrying a transaction and an exposure update each write a
    chained record; operations without a transaction, gas or profit write nothing."""
    path = tmp_path / "audit.jsonl"
    telemetry = mevobs.configure(exporter="none", audit_path=str(path), log_destination="none")
    try:
        with mevobs.swap(exchange="uniswap_v2", chain="ethereum") as op:
            op.record_tx(tx_hash="0x" + "ab" * 32, block_number=19_000_000, status=1)
            op.record_gas(gas_used=120_000, effective_gas_price_wei=30 * 10**9)
            op.record_swap(token_in="WETH", token_out="USDC", amount_in=10**18, amount_out=3_000 * 10**6)
        with mevobs.rpc(method="eth_blockNumber"):
            pass
        mevobs.record_exposure("WETH", Decimal("12.5"), chain="ethereum")
    finally:
        telemetry.shutdown()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["kind"] for r in records] == ["operation", "exposure"]
    swap = records[0]
    assert swap["tx_hash"] == "0x" + "ab" * 32 and swap["block"] == 19_000_000
    assert swap["gas_cost_wei"] == str(120_000 * 30 * 10**9) and swap["amount_in"] == str(10**18)
    assert swap["outcome"] == "success" and swap["exchange"] == "uniswap_v2"
    assert records[1]["amount"] == "12.5" and records[1]["prev"] == swap["hash"]
    assert verify_audit([path]).ok
    text = subprocess.run(
        [sys.executable, "-m", "mevobs", "audit", "report", str(path)], capture_output=True, text=True
    ).stdout
    assert "WETH@ethereum: 12.5" in text
