"""The test kit is strict and deterministic, and its pytest plugin is cheap to have installed.

A typo in a metric name or a filter key raises with the closest valid name instead of
matching nothing; spans are found by attributes, kind and outcome; ``export()`` gives
the same plain dicts on every run; loading the plugin imports no SDK.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from typing import Any

import pytest

import mevobs
from mevobs.testing import Captured, capture


def _workload(delay: float) -> None:
    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap() -> int:
        time.sleep(delay)
        mevobs.current_operation().record_gas(gas_used=21_000, effective_gas_price_wei=10**9)
        return 1

    swap()
    with contextlib.suppress(TimeoutError), mevobs.rpc(method="eth_call", provider="https://rpc.example"):
        time.sleep(delay)
        raise TimeoutError("slow node")


class TestStrictLookups:
    @pytest.mark.parametrize(
        ("lookup", "message"),
        [
            (
                lambda t: t.counter_value("mev.gas.costs"),
                "no metric named 'mev.gas.costs'; did you mean 'mev.gas.cost'?",
            ),
            (
                lambda t: t.histogram_count("mev.operation.durations"),
                "did you mean 'mev.operation.duration'?",
            ),
            (
                lambda t: t.counter_value("mev.gas.cost", exchnge="x"),
                "has no attribute 'exchnge'; did you mean 'exchange'?",
            ),
            (
                lambda t: t.counter_value("mev.gas.cost", attributes={"mev.exchnge": "x"}),
                "did you mean 'mev.exchange'?",
            ),
            (lambda t: t.span("swap uniswap_v3"), "did you mean 'swap uniswap_v2'?"),
            (lambda t: t.find_spans(exchnge="x"), "unknown span filter 'exchnge'; did you mean 'exchange'?"),
            (lambda t: t.find_spans(kind="clent"), "unknown span kind 'clent'; did you mean 'CLIENT'?"),
        ],
    )
    def test_a_typo_raises_with_the_closest_name(
        self, lookup: Any, message: str, mevobs_telemetry: Captured
    ) -> None:
        _workload(0)
        with pytest.raises(LookupError) as info:
            lookup(mevobs_telemetry)
        assert message in str(info.value)

    def test_a_known_metric_without_data_is_zero(self, mevobs_telemetry: Captured) -> None:
        assert mevobs_telemetry.counter_value("mev.gas.cost", exchange="nowhere") == 0


class TestFindSpans:
    def test_by_attributes_kind_and_outcome(self, mevobs_telemetry: Captured) -> None:
        _workload(0)
        failed = mevobs_telemetry.find_spans(outcome="failure")
        assert [s.name for s in failed] == ["rpc eth_call"]
        assert [s.name for s in mevobs_telemetry.find_spans(kind="client")] == ["rpc eth_call"]
        assert [s.name for s in mevobs_telemetry.find_spans(exchange="uniswap_v2", outcome="success")] == [
            "swap uniswap_v2"
        ]
        assert mevobs_telemetry.find_spans(attributes={"mev.chain": "ethereum"}, kind="CLIENT") == []
        assert mevobs_telemetry.find_spans("swap uniswap_v2", error_type="timeout") == []
        assert [s.name for s in mevobs_telemetry.find_spans(error_type="timeout", method="eth_call")] == [
            "rpc eth_call"
        ]


class TestExport:
    def _export(self, delay: float) -> dict[str, Any]:
        with capture() as telemetry:
            _workload(delay)
            return telemetry.export()

    def test_the_same_code_gives_the_same_dicts(self) -> None:
        """Different ids, times and durations (a fast and a slow run), the same export."""
        fast, slow = self._export(0.0), self._export(0.03)
        assert fast == slow
        assert json.loads(json.dumps(fast)) == fast  # plain data
        assert [s["span_id"] for s in fast["spans"]] == ["span-1", "span-2"]
        assert {s["trace_id"] for s in fast["spans"]} == {"trace-1", "trace-2"}
        assert [log["body"] for log in fast["logs"]] == [
            "swap uniswap_v2 success in 0 ms",
            "rpc eth_call failure in 0 ms",
        ]
        assert fast["logs"][1]["attributes"]["exception.stacktrace"] == "TimeoutError: slow node"
        durations = next(m for m in fast["metrics"] if m["name"] == "mev.operation.duration")
        assert {p["count"] for p in durations["points"]} == {1}
        assert {p["sum"] for p in durations["points"]} == {0.0}
        gas = next(m for m in fast["metrics"] if m["name"] == "mev.gas.used")
        assert gas["points"][0]["sum"] == 21_000


def test_the_plugin_imports_no_sdk_until_its_fixture_is_used() -> None:
    code = (
        "import sys, mevobs._pytest_plugin\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'pydantic', 'yaml')))\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
