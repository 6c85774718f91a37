"""System metrics, event-loop lag and contrib instrumentations, switched on by name."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from mevobs import semconv
from mevobs.testing import capture


def test_system_metrics_include_memory_cpu_and_event_loop_lag() -> None:
    """Inside a running loop, capture(system_metrics=True) reports process memory and CPU
    (OpenTelemetry's names) and mev.eventloop.lag, which sees a 500 ms blocking call."""

    async def main() -> set[str]:
        with capture(system_metrics=True) as captured:
            await asyncio.sleep(0.6)
            time.sleep(0.5)  # block the loop longer than the 0.25 s watch interval
            await asyncio.sleep(0.6)
            names = captured.metric_names()
            lag_points = captured.points(semconv.EVENT_LOOP_LAG.name)
        assert lag_points and max(p.max for p in lag_points) >= 0.2
        return names

    names = asyncio.run(main())
    assert {"process.memory.usage", "process.cpu.utilization", "process.thread.count"} <= names
    assert "process.open_file_descriptor.count" in names
    assert semconv.EVENT_LOOP_LAG.name in names


def test_sqlite3_instrumentation_shows_queries_as_spans() -> None:
    with capture(instrument=["sqlite3"]) as captured:
        conn = sqlite3.connect(":memory:")
        cursor = conn.cursor()  # the DB-API instrumentation traces cursor.execute
        cursor.execute("CREATE TABLE fills (tx TEXT, amount INTEGER)")
        cursor.execute("INSERT INTO fills VALUES ('0xab', 5)")
        conn.close()
        names = [s.name for s in captured.spans]
    assert any("CREATE" in n for n in names) and any("INSERT" in n for n in names), names


def test_an_unknown_instrumentation_is_a_warning_not_an_error() -> None:
    with capture(instrument=["no-such-library"]) as captured:
        pass
    assert any("no-such-library" in e.message and e.level == "WARNING" for e in captured.logs)


def test_a_missing_instrumentation_is_named_with_the_installed_family() -> None:
    """The suggested install keeps one OpenTelemetry family: the contrib release of the
    semantic-conventions version the SDK pinned, never an unpinned (newest) one."""
    import importlib.metadata

    family = importlib.metadata.version("opentelemetry-semantic-conventions")
    with capture(instrument=["no-such-library"]) as captured:
        pass
    (message,) = [e.message for e in captured.logs if "no-such-library" in e.message]
    assert f'pip install "opentelemetry-instrumentation-no-such-library=={family}"' in message
