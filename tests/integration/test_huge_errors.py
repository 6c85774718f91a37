"""A 40 KB revert string and a 3 MB exception message, through a real collector.

The failing call must re-raise about as fast as the same function undecorated
(the message is read on the worker, capped before anything else touches it), the
exported span must hold a truncated, scrubbed message and a stack trace that
still has its frames, and the spans exported with it must arrive.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.conftest import Rotel
from tests.integration.otlp_sink import Sink, attrs

import mevobs
from mevobs import semconv
from mevobs._records import MAX_MESSAGE, MAX_STACKTRACE

pytestmark = pytest.mark.integration

PK = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
REVERT = "execution reverted: 0x" + "08c379a0" * 5000  # 40 KB
# 3 MB, a key where the exported part is, and a word the RPC classifier's rate-limit
# pattern used to scan to the end of the text from (quadratic), never matching.
HUGE = f"signer 0x{PK} failed: " + ("exceeded " + "y" * 91) * 30_000 + f" last key 0x{PK}"
MARKER = 64  # "…[N chars truncated]" and the scrubber's own marker
RUNS = 15


def raise_it(message: str) -> None:
    raise ValueError(message)


def median_seconds(fn: Callable[[str], None], message: str) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        with contextlib.suppress(ValueError):
            fn(message)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def event(span: Any) -> dict[str, Any]:
    (exception,) = [e for e in span.events if e.name == "exception"]
    return attrs(exception.attributes)


@pytest.mark.parametrize(("name", "message"), [("revert-40KB", REVERT), ("message-3MB", HUGE)])
def test_a_huge_error_reraises_fast_and_exports_truncated_and_scrubbed(
    rotel: Rotel, sink: Sink, name: str, message: str
) -> None:
    mevobs.configure(
        service_name="huge-errors",
        exporter="otlp",
        endpoint=f"http://127.0.0.1:{rotel.grpc_port}",
        log_destination="none",
        export_timeout_seconds=5,
    )
    decorated = mevobs.rpc(method="eth_sendRawTransaction", provider="http://127.0.0.1:8545")(raise_it)

    @mevobs.swap(exchange="uniswap_v3", chain="ethereum")
    def neighbour(i: int) -> int:
        return i

    for i in range(20):
        neighbour(i)  # the same batch as the failures
    bare = median_seconds(raise_it, message)
    wrapped = median_seconds(decorated, message)
    for i in range(20, 40):
        neighbour(i)
    mevobs.shutdown(timeout_seconds=10)

    assert wrapped - bare < 0.010, f"{name}: re-raised {1e3 * (wrapped - bare):.2f} ms after the bare call"
    assert sink.wait_for(lambda: sum(s.name == "rpc eth_sendRawTransaction" for s in sink.spans()) == RUNS)
    assert sink.wait_for(lambda: sum(s.name == "swap uniswap_v3" for s in sink.spans()) == 40)
    for span in (s for s in sink.spans() if s.name == "rpc eth_sendRawTransaction"):
        assert attrs(span.attributes)[semconv.ATTR_ERROR_TYPE] == (
            "execution_reverted" if message is REVERT else "ValueError"
        )
        exc = event(span)
        text, stack = exc["exception.message"], exc["exception.stacktrace"]
        assert len(text) <= MAX_MESSAGE + MARKER and "truncated]" in text
        assert len(stack) <= MAX_STACKTRACE + MARKER
        assert PK not in text and PK not in stack
        assert text.startswith(message[:7])  # the start of the message is what is kept
        assert (message is REVERT) or "[REDACTED]" in text
        assert "in raise_it\n    raise ValueError(message)" in stack  # the frames survive the cut
