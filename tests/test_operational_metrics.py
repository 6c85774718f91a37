"""The metrics operators alert and plot on: volume, database query durations, the heartbeat,
memory against its limit, and exposure against its limit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import mevobs
from mevobs import semconv
from mevobs.guards._process import cgroup_memory_limit, host_memory, resident_bytes
from mevobs.testing import capture


def test_volume_counts_successful_swaps_only() -> None:
    """A swap's notional volume reaches mev.volume (ETH) and mev.volume.usd; a reverted
    swap traded nothing and adds none."""
    with capture() as tel:
        with mevobs.swap(exchange="uniswap_v2", chain="ethereum") as op:
            op.record_swap(amount_in=10**18, amount_out=3000, notional_eth="1.5", notional_usd=4500)
        with mevobs.swap(exchange="uniswap_v2", chain="ethereum") as op:
            op.record_tx(tx_hash="0x" + "01" * 32, status=0)
            op.record_swap(amount_in=10**18, amount_out=0, notional_eth=2, notional_usd=6000)
        assert tel.counter_value("mev.volume", exchange="uniswap_v2") == pytest.approx(1.5)
        assert tel.counter_value("mev.volume.usd", exchange="uniswap_v2", outcome="success") == 4500
        assert tel.counter_value("mev.volume.usd", outcome="reverted") == 0


def test_a_negative_or_bad_notional_is_refused_and_counted() -> None:
    with capture() as tel:
        before = mevobs.dropped_counts().get("invalid_value", 0)
        with mevobs.swap(exchange="curve") as op:
            op.record_swap(notional_eth=-1, notional_usd="lots")
        assert mevobs.dropped_counts().get("invalid_value", 0) == before + 2
        assert tel.counter_value("mev.volume") == 0


@pytest.mark.parametrize("pipeline", ["fast", "api"])
def test_database_queries_are_timed_by_system_and_operation(pipeline: str) -> None:
    """With the sqlite3 instrumentation, each query adds to mev.db.duration under its system
    and operation (never its statement)."""
    with capture(instrument=["sqlite3"], pipeline=pipeline) as tel:
        conn = sqlite3.connect(":memory:")
        cursor = conn.cursor()
        cursor.execute("create table fills (tx text)")
        for i in range(3):
            cursor.execute("insert into fills values (?)", (str(i),))
        cursor.execute("select * from fills")
        assert tel.histogram_count("mev.db.duration", **{"db.operation.name": "insert"}) == 3
        assert (
            tel.histogram_count("mev.db.duration", **{"db.system": "sqlite", "db.operation.name": "select"})
            == 1
        )
        assert tel.histogram_count("mev.db.duration") == 5
        assert tel.metric_attribute_keys(["mev.db.duration"]) == {
            semconv.ATTR_DB_SYSTEM,
            semconv.ATTR_DB_OPERATION,
        }


def test_heartbeat_and_memory_are_reported_with_the_limit() -> None:
    """mev.heartbeat grows while the process lives; memory usage is the resident set; a
    configured limit below the cgroup's and the host's is the one reported."""
    with capture(memory_limit_bytes=64 * 1024**2) as tel:
        first = tel.gauge_value("mev.heartbeat")
        assert first is not None and first >= 0
        usage = tel.gauge_value("mev.process.memory.usage")
        assert usage is not None and usage > 10 * 1024**2
        assert tel.gauge_value("mev.process.memory.limit") == 64 * 1024**2
        assert (tel.gauge_value("mev.heartbeat") or 0) >= first


def test_memory_limit_is_the_tightest_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a setting the cgroup's limit is reported, without a cgroup the host's RAM,
    and a setting above the cgroup's does not hide the limit the OOM killer applies."""
    from mevobs.guards import _process

    host = host_memory()
    assert host is not None and host > 0
    monkeypatch.setattr(_process, "cgroup_memory_limit", lambda: None)
    with capture() as tel:
        assert tel.gauge_value("mev.process.memory.limit") == host  # a bot in no container
    monkeypatch.setattr(_process, "cgroup_memory_limit", lambda: 512 * 1024**2)
    with capture() as tel:
        assert tel.gauge_value("mev.process.memory.limit") == 512 * 1024**2
    with capture(memory_limit_bytes=1024**3) as tel:
        assert tel.gauge_value("mev.process.memory.limit") == 512 * 1024**2
    with capture(memory_limit_bytes=256 * 1024**2) as tel:
        assert tel.gauge_value("mev.process.memory.limit") == 256 * 1024**2


def test_exposure_limits_are_reported_per_token() -> None:
    with capture(exposure_limits={"WETH": 150, "USDC": 500_000}) as tel:
        mevobs.record_exposure("WETH", 120, chain="ethereum")
        assert tel.gauge_value("mev.exposure.limit", token="WETH") == 150
        assert tel.gauge_value("mev.exposure.limit", token="USDC") == 500_000
        assert tel.gauge_value("mev.exposure", token="WETH") == 120
    with capture() as tel:
        assert tel.gauge_value("mev.exposure.limit", token="WETH") is None  # reset with the configuration


def test_cgroup_limits_are_read_from_v2_and_v1_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cgroup reader finds a v2 memory.max or a v1 memory.limit_in_bytes, and treats
    'max' and v1's huge 'unlimited' value as no limit."""
    proc = tmp_path / "cgroup"
    real_read = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if str(self) == "/proc/self/cgroup":
            return proc.read_text()
        return real_read(self)

    monkeypatch.setattr(Path, "read_text", read_text)
    proc.write_text("0::/bot.slice\n")
    (tmp_path / "bot.slice").mkdir()
    (tmp_path / "bot.slice" / "memory.max").write_text("1073741824\n")
    assert cgroup_memory_limit(tmp_path) == 1024**3
    (tmp_path / "bot.slice" / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(tmp_path) is None
    proc.write_text("4:memory:/bot\n")
    (tmp_path / "memory" / "bot").mkdir(parents=True)
    (tmp_path / "memory" / "bot" / "memory.limit_in_bytes").write_text(str(512 * 1024**2))
    assert cgroup_memory_limit(tmp_path) == 512 * 1024**2
    (tmp_path / "memory" / "bot" / "memory.limit_in_bytes").write_text(str(2**63 - 4096))
    assert cgroup_memory_limit(tmp_path) is None
    assert resident_bytes() is None or resident_bytes() > 0  # type: ignore[operator]
