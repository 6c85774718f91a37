"""Pool liquidity, price deviation and security events: recorded outside operations."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mevobs
from mevobs import semconv
from mevobs.testing import Captured, capture


def test_pool_liquidity_sets_a_gauge_per_pool(mevobs_telemetry: Captured) -> None:
    """The last reported value wins, per (exchange, chain, pool) series."""
    mevobs.record_pool_liquidity("WETH/USDC", 2_000_000, exchange="uniswap_v3", chain="ethereum")
    mevobs.record_pool_liquidity("WETH/USDC", 1_500_000, exchange="uniswap_v3", chain="ethereum")
    mevobs.record_pool_liquidity("WETH/DAI", 40_000, exchange="sushiswap", chain="ethereum")
    name = semconv.POOL_LIQUIDITY.name
    assert mevobs_telemetry.gauge_value(name, pool="WETH/USDC") == 1_500_000
    assert mevobs_telemetry.gauge_value(name, pool="WETH/DAI", exchange="sushiswap") == 40_000
    assert mevobs_telemetry.metric_attribute_keys([name]) == set(semconv.POOL_LIQUIDITY.attributes)


def test_price_deviation_records_the_magnitude(mevobs_telemetry: Captured) -> None:
    """A pool priced below the reference reports the same deviation as one above it."""
    mevobs.record_price_deviation("WETH/USDC", -125.5, exchange="curve", chain="arbitrum")
    assert mevobs_telemetry.gauge_value(semconv.PRICE_DEVIATION.name, exchange="curve") == 125.5


def test_security_event_counts_logs_and_marks_the_current_span(mevobs_telemetry: Captured) -> None:
    """Inside an operation the event lands on its span; the log is CRITICAL when asked,
    details stay off the metric and secrets in them are scrubbed."""
    with mevobs.swap(exchange="uniswap_v2", chain="ethereum"):
        mevobs.record_security_event(
            "unexpected_contract",
            "tx to unknown router",
            critical=True,
            exchange="uniswap_v2",
            chain="ethereum",
            **{"mev.tx.to": "0x" + "ab" * 20, "private_key": "0x" + "11" * 32},
        )
    name = semconv.SECURITY_EVENTS.name
    assert mevobs_telemetry.counter_value(name, kind="unexpected_contract", chain="ethereum") == 1
    assert mevobs_telemetry.metric_attribute_keys([name]) == {
        semconv.ATTR_SECURITY_KIND,
        semconv.ATTR_EXCHANGE,
        semconv.ATTR_CHAIN,
    }
    events = mevobs_telemetry.span("swap uniswap_v2").events
    assert [e.name for e in events] == ["mev.security"]
    assert events[0].attributes is not None
    assert events[0].attributes["mev.tx.to"] == "0x" + "ab" * 20
    assert "11" * 32 not in str(dict(events[0].attributes))
    (entry,) = [e for e in mevobs_telemetry.logs if e.message.startswith("security:")]
    assert entry.level == "CRITICAL"
    assert entry.attributes[semconv.ATTR_SECURITY_KIND] == "unexpected_contract"
    assert "11" * 32 not in str(entry.attributes)


def test_unknown_security_kind_is_dropped_not_raised(mevobs_telemetry: Captured) -> None:
    """A kind outside the fixed set would be an unbounded label: it is counted as dropped."""
    before = mevobs.dropped_counts().get("invalid_attribute", 0)
    mevobs.record_security_event("made_up", "x")
    assert mevobs_telemetry.counter_value(semconv.SECURITY_EVENTS.name) == 0
    assert mevobs.dropped_counts()["invalid_attribute"] == before + 1


@given(
    value=st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**300), max_value=2**300),
        st.text(max_size=5),
        st.booleans(),
    ),
    pool=st.one_of(st.none(), st.text(max_size=5), st.integers()),
)
def test_observations_never_raise(value: object, pool: object) -> None:
    """Any value or pool name is accepted without raising; only sane ones reach the gauge."""
    with capture() as captured:
        mevobs.record_pool_liquidity(pool, value, exchange="x")  # type: ignore[arg-type]
        mevobs.record_price_deviation(pool, value, exchange="x")  # type: ignore[arg-type]
        got = captured.points(semconv.POOL_LIQUIDITY.name)
    sane = (
        isinstance(pool, str)
        and bool(pool)
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value >= 0
        and math.isfinite(float(value))
        and value < 2**1000
    )
    assert len(got) == (1 if sane else 0)


@pytest.mark.parametrize("critical,level", [(False, "WARNING"), (True, "CRITICAL")])
def test_security_event_without_telemetry_still_logs(critical: bool, level: str) -> None:
    """Unconfigured, a security event is still a log record: the bot sees it."""
    import logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("mevobs")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        mevobs.record_security_event("manual", "checked by hand", critical=critical)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert [r.levelname for r in records] == [level]
