"""HealthServer over real HTTP: liveness, readiness flipping with a check, timeouts,
the exchange gauge, bearer tokens, and `mevobs health` exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import mevobs
from mevobs import semconv
from mevobs.testing import Captured


def get(url: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def healthy() -> Iterator[dict[str, bool]]:
    state = {"ok": True}
    yield state


def health_cli(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mevobs", "health", url, *extra], capture_output=True, text=True, timeout=30
    )


def test_readiness_flips_with_a_check_and_the_cli_agrees(healthy: dict[str, bool]) -> None:
    """/healthz stays 200; /readyz is 200 while every check passes and 503 (naming the
    failing check and its error) while one fails; `mevobs health` exits 0 / 1 to match."""

    def node() -> bool:
        if not healthy["ok"]:
            raise ConnectionError("eth_blockNumber: connection refused")
        return True

    async def exporter() -> None:
        await asyncio.sleep(0)

    with mevobs.HealthServer(port=0, checks={"node": node, "exporter": exporter}, interval=None) as server:
        assert get(server.url + "/healthz") == (200, {"status": "ok"})
        code, body = get(server.url + "/readyz")
        assert code == 200 and body["status"] == "ok"
        assert {c["name"]: c["status"] for c in body["checks"]} == {"node": "pass", "exporter": "pass"}
        assert all(c["latency_ms"] >= 0 for c in body["checks"])
        assert health_cli(server.url).returncode == 0

        healthy["ok"] = False
        code, body = get(server.url + "/readyz")
        assert code == 503 and body["status"] == "fail"
        failing = {c["name"]: c for c in body["checks"] if c["status"] == "fail"}
        assert list(failing) == ["node"]
        assert "connection refused" in failing["node"]["error"]
        assert get(server.url + "/healthz")[0] == 200  # alive, just not ready
        done = health_cli(server.url)
        assert done.returncode == 1
        assert "node: ConnectionError: eth_blockNumber: connection refused" in done.stdout

        healthy["ok"] = True
        code, body = get(server.url + "/readyz")
        assert code == 200
        node_check = next(c for c in body["checks"] if c["name"] == "node")
        assert node_check["error"] is None and "connection refused" in node_check["last_error"]
        assert health_cli(server.url + "/readyz").returncode == 0


def test_a_hanging_check_times_out_and_fails() -> None:
    """A sync check that never returns and an async one that never finishes both fail
    after their timeout; the probe answers in time."""
    release = threading.Event()

    def stuck() -> None:
        release.wait(30)

    async def stuck_async() -> None:
        await asyncio.sleep(30)

    mevobs.register_health_check("stuck", stuck, timeout=0.3)
    mevobs.register_health_check("stuck_async", stuck_async, timeout=0.3)
    try:
        with mevobs.HealthServer(port=0, interval=None) as server:
            start = time.monotonic()
            code, body = get(server.url + "/readyz")
            assert time.monotonic() - start < 5
            assert code == 503
            errors = {c["name"]: c["error"] for c in body["checks"]}
            assert errors == {"stuck": "timed out after 0.3 s", "stuck_async": "timed out after 0.3 s"}
    finally:
        release.set()
        mevobs.unregister_health_check("stuck")
        mevobs.unregister_health_check("stuck_async")


def test_check_returning_false_fails_and_secrets_in_errors_are_scrubbed() -> None:
    def rpc() -> None:
        raise ConnectionError("https://eth-mainnet.example.com/v2/SuperSecretApiKey123456789 refused")

    with mevobs.HealthServer(port=0, checks={"false": lambda: False, "rpc": rpc}, interval=None) as server:
        _, body = get(server.url + "/readyz")
    errors = {c["name"]: c["error"] for c in body["checks"]}
    assert errors["false"] == "check returned False"
    assert "SuperSecretApiKey123456789" not in errors["rpc"]


def test_bearer_token_is_required_when_set() -> None:
    with mevobs.HealthServer(port=0, token="s3cret", interval=None) as server:
        assert get(server.url + "/healthz")[0] == 401
        assert get(server.url + "/healthz", token="wrong")[0] == 401
        assert get(server.url + "/readyz", token="s3cret")[0] == 200
        assert health_cli(server.url).returncode == 1
        assert health_cli(server.url, "--token", "s3cret").returncode == 0


def test_exchange_checks_feed_the_up_gauge(mevobs_telemetry: Captured, healthy: dict[str, bool]) -> None:
    """A check registered for an exchange sets mev.exchange.up to 1, then 0 when it fails;
    the background refresh keeps it current without probes."""
    mevobs.register_health_check(
        "uniswap", lambda: healthy["ok"], exchange="uniswap_v3", chain="ethereum", timeout=1
    )
    try:
        with mevobs.HealthServer(port=0, interval=0.05):
            name = semconv.EXCHANGE_UP.name
            deadline = time.monotonic() + 5
            while (
                mevobs_telemetry.gauge_value(name, exchange="uniswap_v3") != 1 and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            assert mevobs_telemetry.gauge_value(name, exchange="uniswap_v3", chain="ethereum") == 1
            healthy["ok"] = False
            while (
                mevobs_telemetry.gauge_value(name, exchange="uniswap_v3") != 0 and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            assert mevobs_telemetry.gauge_value(name, exchange="uniswap_v3") == 0
    finally:
        mevobs.unregister_health_check("uniswap")


def test_cli_reports_an_unreachable_server() -> None:
    done = health_cli("http://127.0.0.1:9")
    assert done.returncode == 1 and "unreachable" in done.stdout


def test_configure_starts_and_stops_the_server() -> None:
    telemetry = mevobs.configure(exporter="none", health_port=0, log_destination="none")
    try:
        assert telemetry.health is not None
        assert get(telemetry.health.url + "/healthz")[0] == 200
        url = telemetry.health.url
    finally:
        telemetry.shutdown()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/healthz", timeout=2)
