"""Security detectors, driven through real operations: each fires on its anomaly within
the documented number of samples and fires on at most 1 % of 10 000 normal samples."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

import mevobs
from mevobs import semconv
from mevobs.guards._security import SecurityMonitor
from mevobs.testing import Captured, capture

N = 10_000
ROUTER = "0x" + "77" * 20
ALLOW = {"ethereum": [ROUTER]}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def monitored(clock: Clock) -> Iterator[tuple[Captured, SecurityMonitor]]:
    monitor = SecurityMonitor(
        mevobs.SecuritySettings(allowed_rpc_methods=["eth_call", "eth_blockNumber"]), ALLOW, clock=clock
    )
    with capture(hooks=[monitor]) as captured:
        yield captured, monitor


def events(captured: Captured, kind: str) -> int:
    return int(captured.counter_value(semconv.SECURITY_EVENTS.name, kind=kind))


def swap(
    *,
    gas: int = 150_000,
    to: str = ROUTER,
    status: int = 1,
    expected: int | None = None,
    gross: int | None = None,
    i: int = 0,
) -> None:
    with mevobs.swap(exchange="uniswap_v2", chain="ethereum") as op:
        op.record_tx(tx_hash=f"0x{i:064x}", status=status, to=to)
        op.record_gas(gas_used=gas, effective_gas_price_wei=10**9)
        if expected is not None:
            op.record_profit(expected_wei=expected)
        if gross is not None:
            op.record_profit(gross_wei=gross)


def rpc(method: str = "eth_call", fail: bool = False, provider: str = "https://node.example") -> None:
    try:
        with mevobs.rpc(method=method, provider=provider, chain="ethereum"):
            if fail:
                raise ConnectionError("refused")
    except ConnectionError:
        assert fail


def false_positive_rate(captured: Captured, kind: str, run: Callable[[int], None]) -> float:
    captured.clear()
    before = events(captured, kind)
    for i in range(N):
        run(i)
    return (events(captured, kind) - before) / N


class TestAbnormalGas:
    def test_fires_on_the_first_abnormal_sample_after_warm_up(
        self, monitored: tuple[Captured, SecurityMonitor]
    ) -> None:
        captured, _ = monitored
        rng = random.Random(1)
        for i in range(200):
            swap(gas=int(rng.gauss(150_000, 8_000)), i=i)
        assert events(captured, "abnormal_gas") == 0
        swap(gas=600_000, i=999)
        assert events(captured, "abnormal_gas") == 1
        event = captured.span("swap uniswap_v2").events[0]
        assert event.name == "mev.security" and event.attributes is not None
        assert event.attributes[semconv.ATTR_GAS_USED] == 600_000

    def test_normal_gas_fires_under_one_percent(self, monitored: tuple[Captured, SecurityMonitor]) -> None:
        captured, _ = monitored
        rng = random.Random(2)
        # Right-skewed like real gas: a normal core plus an exponential tail (storage
        # slots touched, ticks crossed).
        rate = false_positive_rate(
            captured,
            "abnormal_gas",
            lambda i: swap(gas=int(rng.gauss(150_000, 8_000) + rng.expovariate(1 / 6_000)), i=i),
        )
        assert rate <= 0.01


class TestUnexpectedContract:
    def test_fires_at_once_on_a_contract_outside_the_allowlist(
        self, monitored: tuple[Captured, SecurityMonitor]
    ) -> None:
        captured, _ = monitored
        swap(to=ROUTER.upper().replace("0X", "0x"))  # addresses compare case-insensitively
        assert events(captured, "unexpected_contract") == 0
        swap(to="0x" + "66" * 20)
        assert events(captured, "unexpected_contract") == 1
        (entry,) = [e for e in captured.logs if e.message.startswith("security: unexpected_contract")]
        assert entry.level == "CRITICAL"

    def test_allowed_contracts_never_fire(self, monitored: tuple[Captured, SecurityMonitor]) -> None:
        captured, _ = monitored
        assert false_positive_rate(captured, "unexpected_contract", lambda i: swap(i=i)) == 0


class TestTxPattern:
    def test_a_burst_fires_within_the_bucket(
        self, clock: Clock, monitored: tuple[Captured, SecurityMonitor]
    ) -> None:
        """Baseline 20 tx per 10 s bucket; a burst fires once the bucket passes
        tx_rate_factor x baseline (80), at the 81st transaction."""
        captured, _ = monitored
        for i in range(200):  # 10 buckets of 20
            clock.now = i * 0.5
            swap(i=i)
        clock.now = 100.0
        fired_at = None
        for k in range(200):
            swap(i=1000 + k)
            if fired_at is None and events(captured, "tx_pattern"):
                fired_at = k + 1
        assert fired_at == 81
        assert events(captured, "tx_pattern") == 1  # once per bucket

    def test_a_revert_streak_fires_at_the_fifth(self, monitored: tuple[Captured, SecurityMonitor]) -> None:
        captured, _ = monitored
        for i in range(4):
            swap(status=0, i=i)
        assert events(captured, "tx_pattern") == 0
        swap(status=0, i=5)
        assert events(captured, "tx_pattern") == 1

    def test_normal_traffic_fires_under_one_percent(
        self, clock: Clock, monitored: tuple[Captured, SecurityMonitor]
    ) -> None:
        captured, _ = monitored
        rng = random.Random(4)

        def run(i: int) -> None:
            clock.now += rng.expovariate(2.0)  # Poisson, 2 tx/s
            swap(status=0 if rng.random() < 0.1 else 1, i=i)

        assert false_positive_rate(captured, "tx_pattern", run) <= 0.01


class TestRpcPattern:
    def test_an_error_burst_fires_once_half_the_window_fails(
        self, monitored: tuple[Captured, SecurityMonitor]
    ) -> None:
        captured, _ = monitored
        for _ in range(50):
            rpc()
        failures_until_fired = None
        for k in range(1, 31):
            rpc(fail=True)
            if events(captured, "rpc_pattern"):
                failures_until_fired = k
                break
        assert failures_until_fired == 25  # 25 of the last 50 calls failed
        for _ in range(10):
            rpc(fail=True)
        assert events(captured, "rpc_pattern") == 1  # not again until it recovers

    def test_a_method_outside_the_allowed_set_fires_at_once(
        self, monitored: tuple[Captured, SecurityMonitor]
    ) -> None:
        captured, _ = monitored
        rpc("eth_blockNumber")
        assert events(captured, "rpc_pattern") == 0
        rpc("eth_sendRawTransaction")
        assert events(captured, "rpc_pattern") == 1

    def test_normal_errors_fire_under_one_percent(self, monitored: tuple[Captured, SecurityMonitor]) -> None:
        captured, _ = monitored
        rng = random.Random(5)
        assert false_positive_rate(captured, "rpc_pattern", lambda i: rpc(fail=rng.random() < 0.05)) <= 0.01


class TestProfitDeviation:
    def test_fires_at_once_when_realised_profit_is_far_from_expected(
        self, monitored: tuple[Captured, SecurityMonitor]
    ) -> None:
        captured, _ = monitored
        swap(expected=10**17, gross=9 * 10**16)
        assert events(captured, "profit_deviation") == 0
        swap(expected=10**17, gross=2 * 10**16)
        assert events(captured, "profit_deviation") == 1

    def test_normal_execution_noise_fires_under_one_percent(
        self, monitored: tuple[Captured, SecurityMonitor]
    ) -> None:
        captured, _ = monitored
        rng = random.Random(6)

        def run(i: int) -> None:
            expected = rng.randint(10**16, 10**18)
            swap(expected=expected, gross=int(expected * rng.gauss(1.0, 0.1)), i=i)

        assert false_positive_rate(captured, "profit_deviation", run) <= 0.01


def test_a_security_detector_trips_a_listening_breaker(clock: Clock) -> None:
    """The rollback path end to end: an unexpected contract trips the breaker guarding
    the arbitrage, which then refuses to run."""
    breaker = mevobs.CircuitBreaker("arb", trip_on_security=["unexpected_contract"])
    monitor = SecurityMonitor(None, ALLOW, clock=clock)
    with capture(hooks=[monitor]):

        @mevobs.arbitrage(strategy="s", breaker=breaker)
        def arb(to: str) -> None:
            swap(to=to)

        arb(ROUTER)
        arb("0x" + "13" * 20)
        assert breaker.state == "open"
        with pytest.raises(mevobs.CircuitOpenError, match="security incident: unexpected_contract"):
            arb(ROUTER)


def test_detectors_are_safe_across_threads(clock: Clock) -> None:
    """8 threads finishing operations through one monitor: no detector error is counted,
    and a shared anomaly is still seen exactly once per injected sample."""
    import threading

    monitor = SecurityMonitor(None, ALLOW, clock=clock)
    before = mevobs.dropped_counts().get("recorder_error", 0)
    with capture(hooks=[monitor]) as captured:

        def work(seed: int) -> None:
            rng = random.Random(seed)
            for i in range(300):
                swap(gas=int(rng.gauss(150_000, 5_000)), i=seed * 1000 + i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        swap(gas=900_000, i=99_999)
        assert events(captured, "abnormal_gas") == 1
    assert mevobs.dropped_counts().get("recorder_error", 0) == before


class SandwichedPool:
    """A detector a bot writes itself: a swap on a pool the bot was told is being
    sandwiched fires. It fits ``mevobs.Detector`` without subclassing anything."""

    kind = "sandwiched_pool"

    def __init__(self, pools: set[str]) -> None:
        self.pools = pools
        self.seen = 0

    def __call__(self, op: mevobs.FinishedOperation) -> list[mevobs.Finding]:
        self.seen += 1
        pool = op.attribute(semconv.ATTR_POOL_ADDRESS)
        if op.kind != semconv.OPERATION_SWAP or pool not in self.pools:
            return []
        return [mevobs.Finding(f"swap on watched pool {pool}", details={"mev.pool.address": pool})]


def test_a_user_detector_passed_to_configure_is_counted_under_its_own_kind() -> None:
    """A detector defined outside the package, given to configure(), fires on a real
    operation; mev.security.events counts it under its own kind, as Prometheus scrapes it."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    detector = SandwichedPool({"0xpool"})
    with mevobs.configure(
        exporter="prometheus", metrics_port=port, log_destination="none", detectors=[detector]
    ):

        @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
        def swap(pool: str) -> None:
            mevobs.current_operation().record_liquidity(pool=pool)

        swap("0xother")
        swap("0xpool")
        swap("0xpool")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert detector.seen == 3
    lines = [line for line in body.splitlines() if line.startswith("mev_security_events_total{")]
    ours = [line for line in lines if 'mev_security_kind="sandwiched_pool"' in line]
    assert len(ours) == 1, lines
    assert 'mev_operation="swap"' in ours[0] and 'mev_exchange="uniswap_v2"' in ours[0]
    assert ours[0].rsplit(" ", 1)[1] == "2.0"


def test_an_unregistered_kind_is_refused_not_counted(mevobs_telemetry: Captured) -> None:
    """record_security_event with a kind no detector registered is dropped and counted."""
    mevobs.record_security_event("sandwiched_pool", "not registered")
    assert events(mevobs_telemetry, "sandwiched_pool") == 0
    assert mevobs.dropped_counts().get("invalid_attribute", 0) >= 1
