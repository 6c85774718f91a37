"""No state grows without bound: 50 000 distinct exchange, provider and chain names.

A bot that names an exchange after every pool, or an RPC provider after every
endpoint, must not make mevobs grow: labels are capped (``other`` past the cap),
the security detectors keep bounded maps, metric series stop at their cap, and
span names come from the capped labels. The workload runs once through the fast
pipeline, built-in detectors on, and the tests read what it measured: resident
memory (``/proc/self/statm``, after a collection) and the distinct span names
exported.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import mevobs
from mevobs import semconv
from mevobs.guards._security import SecuritySettings
from mevobs.guards._start import security_monitor
from mevobs.testing import Captured, capture

NAMES = 50_000
CAP = 100
GWEI = 10**9
STATM = Path("/proc/self/statm")

pytestmark = pytest.mark.skipif(not STATM.exists(), reason="reads resident memory from /proc/self/statm")


def rss_bytes() -> int:
    gc.collect()
    return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RateLimited(Exception):
    status_code = 429


def one_bot_round(i: int) -> None:
    """A swap, an RPC call (every tenth rate limited), an arbitrage built per call and a
    pool gauge, each naming an exchange, a provider, a chain and a strategy never seen."""
    exchange, chain, provider = f"dex{i}", f"chain{i}", f"provider{i}"
    with mevobs.swap(exchange=exchange, chain=chain) as op:
        op.record_gas(gas_used=100_000 + i % 50, effective_gas_price_wei=GWEI)
        op.record_swap(token_in="WETH", token_out="USDC", amount_in=10**18, amount_out=3 * 10**9)
    with contextlib.suppress(RateLimited), mevobs.rpc(method="eth_call", provider=provider, chain=chain):
        if i % 10 == 0:
            raise RateLimited("429 Too Many Requests")

    @mevobs.arbitrage(strategy=f"strategy{i}", exchange=exchange, chain=chain)
    def arbitrage() -> None:
        mevobs.current_operation().record_profit(gross_wei=10**15)

    arbitrage()
    mevobs.record_pool_liquidity(f"pool{i}", 1_000_000, exchange=exchange, chain=chain)


@dataclass
class Measured:
    rss_growth: int = 0
    seconds: float = 0.0
    span_names: set[str] = field(default_factory=set)
    spans: int = 0


NAMES_KEPT = 1_000
"""Distinct span names the test itself keeps (past this many the cap has failed
anyway): its own memory must not be what it measures."""


def _drain(tel: Captured, measured: Measured) -> None:
    tel.flush()
    spans = tel.spans
    measured.spans += len(spans)
    for span in spans:
        if len(measured.span_names) < NAMES_KEPT:
            measured.span_names.add(span.name)
    tel.clear()  # the test kit's own buffers are not mevobs's state


@pytest.fixture(scope="module")
def measured() -> Iterator[Measured]:
    detectors = security_monitor(SecuritySettings(), {}, ())
    assert detectors is not None
    logger = logging.getLogger(semconv.INSTRUMENTATION_SCOPE)
    # pytest keeps every record that reaches the root logger for its report: 150 000
    # of them would be pytest's memory, not mevobs's.
    logger.propagate = False
    try:
        with capture(cardinality_cap=CAP, hooks=[detectors]) as tel:
            yield _run(tel)
    finally:
        logger.propagate = True


def _run(tel: Captured) -> Measured:
    warm = Measured()
    for i in range(2_000):  # code paths, caches and the test kit's buffers reach their size
        one_bot_round(i % 5)
        if i % 100 == 99:
            _drain(tel, warm)
    result = Measured()
    before = rss_bytes()
    start = time.perf_counter()
    for i in range(NAMES):
        one_bot_round(1_000 + i)
        if i % 100 == 99:
            _drain(tel, result)
    _drain(tel, result)
    result.seconds = time.perf_counter() - start
    result.rss_growth = rss_bytes() - before
    return result


def test_resident_memory_grows_less_than_20_mb(measured: Measured) -> None:
    assert measured.spans == 3 * NAMES  # every operation was exported: nothing was shed to stay small
    assert measured.rss_growth < 20 * 2**20, f"grew {measured.rss_growth / 2**20:.1f} MB"


def test_distinct_span_names_stay_under_the_label_cap(measured: Measured) -> None:
    """Span names are built from the capped labels: at most the cap of distinct
    values (and ``other``) per kind."""
    kinds = {name.split(" ", 1)[0] for name in measured.span_names}
    assert kinds == {semconv.OPERATION_SWAP, semconv.OPERATION_RPC, semconv.OPERATION_ARBITRAGE}
    assert len(measured.span_names) <= len(kinds) * (CAP + 1), f"{len(measured.span_names)} span names"
