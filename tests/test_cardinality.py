"""Metric labels: the cap of distinct values, and labels that name one thing refused into ``other``."""

from __future__ import annotations

import pytest

import mevobs
from mevobs import semconv
from mevobs._cardinality import CardinalityLimiter
from mevobs.guards._security import SecuritySettings
from mevobs.guards._start import security_monitor
from mevobs.testing import capture

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
URL = "https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161"
ADDRESS = "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"
UNBOUNDED = (URL, ADDRESS, KEY, "0x" + KEY, "wss://eth.example.org/ws", "node-7.rpc.example.com", "x" * 65)


def limiter(cap: int = 100) -> tuple[CardinalityLimiter, list[str]]:
    refused: list[str] = []
    return CardinalityLimiter(cap, on_refuse=refused.append), refused


class TestLimiter:
    @pytest.mark.parametrize("value", UNBOUNDED)
    def test_a_value_naming_one_thing_becomes_other_and_each_refusal_is_reported(self, value: str) -> None:
        lim, refused = limiter()
        assert [lim.limit("mev.exchange", value) for _ in range(3)] == [semconv.OTHER_VALUE] * 3
        assert refused == ["mev.exchange"] * 3  # the key, never the value

    @pytest.mark.parametrize("value", ["uniswap_v3", "curve", "arbitrum-one", "eth_call", "WETH/USDC 0.05%"])
    def test_a_category_passes(self, value: str) -> None:
        lim, refused = limiter()
        assert lim.limit("mev.exchange", value) == value
        assert refused == []

    def test_refused_values_do_not_take_a_place_under_the_cap(self) -> None:
        lim, refused = limiter(cap=2)
        for i in range(10):
            lim.limit("mev.exchange", f"{URL[:-2]}{i:02d}")
        assert lim.limit("mev.exchange", "curve") == "curve"
        assert lim.limit("mev.exchange", "balancer") == "balancer"
        assert lim.limit("mev.exchange", "sushiswap") == semconv.OTHER_VALUE
        assert len(refused) == 10

    def test_memory_of_refused_values_is_bounded_by_the_cap(self) -> None:
        lim, refused = limiter(cap=5)
        for i in range(1000):
            assert lim.limit("mev.pool", f"0x{i:040x}") == semconv.OTHER_VALUE
        assert len(refused) == 1000
        assert len(lim._refused["mev.pool"]) == 5

    def test_a_value_past_the_cap_is_other_without_being_counted_as_unbounded(self) -> None:
        lim, refused = limiter(cap=1)
        assert lim.limit("mev.chain", "ethereum") == "ethereum"
        assert lim.limit("mev.chain", URL) == semconv.OTHER_VALUE
        assert refused == []


class TestThroughTheRecorders:
    def test_set_attribute_with_a_url_relabels_to_other_and_counts(self) -> None:
        with capture() as tel:
            with mevobs.swap(exchange="uniswap_v3") as op:
                op.set_attribute(semconv.ATTR_EXCHANGE, URL)
            assert tel.histogram_count("mev.operation.duration", exchange="other") == 1
            assert tel.histogram_count("mev.operation.duration", exchange="uniswap_v3") == 0
            assert tel.counter_value("mev.telemetry.dropped", reason="unbounded_label") == 1
            span = tel.span("swap uniswap_v3")
            assert span.attributes is not None
            assert span.attributes[semconv.ATTR_EXCHANGE] == "https://mainnet.infura.io/v3/[REDACTED]"

    def test_a_pool_gauge_labelled_with_an_address_and_a_key(self) -> None:
        with capture() as tel:
            mevobs.record_pool_liquidity(ADDRESS, 1_000_000, exchange=KEY)
            assert tel.gauge_value("mev.pool.liquidity", pool="other", exchange="other") == 1_000_000
            assert tel.counter_value("mev.telemetry.dropped", reason="unbounded_label") == 2

    def test_a_decorator_label_that_is_a_url_never_reaches_a_metric_or_the_span_name(self) -> None:
        with capture() as tel:

            @mevobs.rpc(method="eth_call", provider=URL)
            def call() -> None:
                pass

            @mevobs.swap(exchange=URL)
            def swap() -> None:
                pass

            call()
            swap()
            assert tel.histogram_count("mev.operation.duration", operation="swap", exchange="other") == 1
            assert all("9aa3d95b" not in span.name for span in tel.spans)
            assert all(
                "9aa3d95b" not in str(point.attributes) for point in tel.points("mev.operation.duration")
            )


class TestInternalState:
    def test_state_keys_are_capped_apart_from_labels(self) -> None:
        """A value admitted as a detector's state key is still judged as a label."""
        lim, refused = limiter(cap=2)
        assert lim.bound("mev.rpc.provider", URL) == URL
        assert lim.bound("mev.rpc.provider", "a") == "a"
        assert lim.bound("mev.rpc.provider", "b") == semconv.OTHER_VALUE
        assert refused == []
        assert lim.limit("mev.rpc.provider", URL) == semconv.OTHER_VALUE
        assert refused == ["mev.rpc.provider"]

    def test_rpc_detector_tells_url_providers_apart_without_counting_refusals(self) -> None:
        monitor = security_monitor(SecuritySettings(rpc_window=10), {}, ())

        @mevobs.rpc(method="eth_call", provider=URL)
        def failing() -> None:
            raise ConnectionError("connection refused")

        @mevobs.rpc(method="eth_call", provider="https://rpc.ankr.com/eth/" + KEY)
        def healthy() -> None:
            pass

        with capture(hooks=[monitor]) as tel:
            for _ in range(10):
                healthy()
                with pytest.raises(ConnectionError):
                    failing()
            assert tel.counter_value("mev.security.events", kind="rpc_pattern") == 1
            assert tel.counter_value("mev.telemetry.dropped", reason="unbounded_label") == 0
