"""RPC classification and span conventions; secrets never reach spans or logs."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

import mevobs
from mevobs._rpc_errors import classify_rpc_error
from mevobs._scrub import REDACTED, scrub_text, scrub_value
from mevobs.testing import Captured


class HTTPError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (HTTPError(429), "rate_limited"),
        (ValueError({"code": -32005, "message": "limit exceeded"}), "rate_limited"),
        (RuntimeError("Your app has exceeded its compute units per second capacity"), "rate_limited"),
        (ValueError({"code": -32000, "message": "nonce too low"}), "nonce_too_low"),
        (ValueError("replacement transaction underpriced"), "replacement_underpriced"),
        (ValueError("already known"), "already_known"),
        (ValueError("insufficient funds for gas * price + value"), "insufficient_funds"),
        (RuntimeError("execution reverted: UniswapV2: K"), "execution_reverted"),
        (asyncio.TimeoutError(), "timeout"),
        (ConnectionRefusedError(), "connection"),
        (KeyError("x"), "KeyError"),
    ],
)
def test_rpc_errors_are_classified_into_bounded_types(exc: BaseException, expected: str) -> None:
    assert classify_rpc_error(exc) == expected


def test_rate_limited_rpc_call(mevobs_telemetry: Captured) -> None:
    @mevobs.rpc(method="eth_call", provider="https://eth-mainnet.g.alchemy.com/v2/AbCdEf0123456789xyzKEY")
    async def call() -> None:
        raise HTTPError(429)

    with pytest.raises(HTTPError):
        asyncio.run(call())
    span = mevobs_telemetry.span("rpc eth_call")
    assert span.kind.name == "CLIENT"
    attrs = dict(span.attributes or {})
    assert attrs["rpc.system.name"] == "jsonrpc" and attrs["rpc.method"] == "eth_call"
    assert attrs["server.address"] == "eth-mainnet.g.alchemy.com"
    assert "AbCdEf0123456789xyzKEY" not in json.dumps(attrs)
    assert attrs["mev.outcome"] == "rate_limited" and attrs["error.type"] == "rate_limited"
    assert mevobs_telemetry.histogram_count("mev.operation.duration", outcome="rate_limited") == 1
    assert mevobs_telemetry.logs[-1].levelno == logging.WARNING


def test_rpc_parameters_are_never_recorded(mevobs_telemetry: Captured) -> None:
    raw_tx = "0x02f8b1" + "ff" * 100

    @mevobs.rpc(method="eth_sendRawTransaction")
    def send(raw: str) -> str:
        return "0x" + "aa" * 32

    send(raw_tx)
    dumped = json.dumps([dict(s.attributes or {}) for s in mevobs_telemetry.spans])
    dumped += json.dumps([dict(e.attributes) for e in mevobs_telemetry.logs])
    assert "ff" * 100 not in dumped


class TestScrubbing:
    def test_secret_keys_are_redacted(self) -> None:
        assert scrub_value("private_key", "0x" + "1" * 64) == REDACTED
        assert scrub_value("mev.api_key", "abc") == REDACTED
        assert scrub_value("Authorization", "Bearer xyz") == REDACTED

    def test_tx_hashes_are_kept_but_bare_keys_are_not(self) -> None:
        tx = "0x" + "ab" * 32
        assert scrub_value("mev.tx.hash", tx) == tx
        assert scrub_value("balancer.pool_id", tx) == tx
        assert scrub_value("mev.note", tx) == REDACTED

    @pytest.mark.parametrize(
        "text",
        [
            "https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161",
            "https://user:hunter2@node.example.com:8545",
            "https://rpc.example.com/?apikey=SECRETSECRET",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
            "private_key=0x" + "4c" * 32,
            "abandon ability able about above absent absorb abstract absurd abuse access accident",
        ],
    )
    def test_secrets_in_text_are_scrubbed(self, text: str) -> None:
        out = scrub_text(text)
        for secret in (
            "9aa3d95b3bc440fa88ea12eaa4456161",
            "hunter2",
            "SECRETSECRET",
            "eyJhbGci",
            "4c" * 32,
            "absurd",
        ):
            assert secret not in out

    def test_exception_messages_are_scrubbed_on_spans_and_logs(self, mevobs_telemetry: Captured) -> None:
        url = "https://arb-mainnet.g.alchemy.com/v2/Zx81kLmQ0pRsTuVw2yZa"

        @mevobs.rpc(method="eth_blockNumber")
        def call() -> None:
            raise ConnectionError(f"cannot reach {url}")

        with pytest.raises(ConnectionError, match="Zx81kLmQ0pRsTuVw2yZa"):
            call()  # the caller still sees the original exception
        event = mevobs_telemetry.span("rpc eth_blockNumber").events[0]
        assert "Zx81kLmQ0pRsTuVw2yZa" not in json.dumps(dict(event.attributes or {}))
        otel_log = mevobs_telemetry.otel_logs[-1].log_record
        assert "Zx81kLmQ0pRsTuVw2yZa" not in json.dumps(dict(otel_log.attributes or {}))

    def test_json_formatter_scrubs(self) -> None:
        record = logging.LogRecord("mevobs", logging.INFO, __file__, 1, "key=%s", ("x",), None)
        record.mevobs = {"private_key": "0x" + "9" * 64, "rpc": "https://x.io/v3/abcdef0123456789abcd"}
        line = mevobs.JsonFormatter("svc").format(record)
        assert "9" * 64 not in line and "abcdef0123456789abcd" not in line


class TestCardinality:
    def test_values_beyond_the_cap_collapse_to_other(self) -> None:
        from mevobs.testing import capture

        with capture(cardinality_cap=3) as tel:
            for i in range(6):
                with mevobs.swap(exchange=f"dex{i}"):
                    pass
        assert tel.histogram_count("mev.operation.duration", exchange="other") == 3
        assert tel.histogram_count("mev.operation.duration", exchange="dex0") == 1

    def test_span_only_attributes_never_reach_metrics(self, mevobs_telemetry: Captured) -> None:
        from mevobs import semconv

        with mevobs.arbitrage(strategy="s", pool="0xpool") as op:
            op.record_tx(tx_hash="0x" + "12" * 32, block_number=1, status=1, to="0xrouter")
            op.record_gas(gas_used=1, effective_gas_price_wei=1)
            op.record_swap(token_in="A", token_out="B", amount_in=1, amount_out=1, expected_amount_out=2)
            op.record_profit(gross_wei=5)
            op.record_opportunity("detected")
        keys = mevobs_telemetry.metric_attribute_keys()
        assert keys
        assert not keys & set(semconv.SPAN_ONLY_ATTRIBUTES)
        allowed = {
            *semconv.METRIC_ATTRIBUTES,
            semconv.ATTR_SLIPPAGE_DIRECTION,
            semconv.ATTR_OPPORTUNITY_STAGE,
            semconv.ATTR_CIRCUIT,  # mev.circuit.state of breakers other tests left alive
        }
        assert keys <= allowed


def test_rate_limit_message_beats_the_connection_error_class() -> None:
    assert classify_rpc_error(ConnectionError("429 Too Many Requests")) == "rate_limited"
