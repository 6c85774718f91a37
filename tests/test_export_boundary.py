"""The export boundary cleans what the end-to-end secrets test found leaving raw
(attribute keys, error types from ``record_error_if``, span names and status
messages of other instrumentations, static labels given to a wrapper), and a
huge error costs what a short one does."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

import mevobs
from mevobs import _records, semconv
from mevobs._rpc_errors import MAX_CLASSIFIED, classify_rpc_error
from mevobs.testing import capture

PK = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
URL = "https://eth-mainnet.g.alchemy.com/v2/Xq3bT9kLm2Vw8RzP4nYc6HdJ0sGfA1uE"
SECRETS = (PK, URL.rsplit("/", 1)[1])


def clean(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("pipeline", ["fast", "api"])
class TestBoundary:
    def test_an_attribute_key_built_from_data_is_scrubbed(self, pipeline: str) -> None:
        with capture(pipeline=pipeline) as tel:
            with mevobs.swap(exchange="curve") as op:
                op.set_attribute(f"fallback {URL}", 1)
            (span,) = tel.spans
            assert f"fallback {URL.rsplit('/', 1)[0]}/[REDACTED]" in (span.attributes or {})
            assert all(clean(key) for log in tel.logs for key in log.attributes)

    def test_a_verdict_of_record_error_if_is_scrubbed_on_the_span_and_other_on_metrics(
        self, pipeline: str
    ) -> None:
        @mevobs.rpc(method="eth_call", record_error_if=lambda result: result["error"])
        def call() -> dict[str, Any]:
            return {"error": f"signer 0x{PK} rejected"}

        with capture(pipeline=pipeline) as tel:
            call()
            (span,) = tel.spans
            assert (span.attributes or {})[semconv.ATTR_ERROR_TYPE] == "signer [REDACTED] rejected"
            assert span.status.description == "signer [REDACTED] rejected"
            assert tel.histogram_count("mev.operation.duration", error_type="other") == 1
            assert all(clean(str(log.attributes)) for log in tel.logs)

    def test_a_database_error_quoting_the_statement_is_scrubbed_in_the_status(self, pipeline: str) -> None:
        with capture(pipeline=pipeline, instrument=["sqlite3"]) as tel:
            cursor = sqlite3.connect(":memory:").cursor()
            with pytest.raises(sqlite3.OperationalError):
                cursor.execute(f"SELECT 0x{PK} AS signer")
            (span,) = [s for s in tel.spans if s.name == "SELECT"]
            assert span.status.description is not None and "hex literal too big" in span.status.description
            assert clean(span.status.description)
            assert clean(str(span.attributes)) and clean(str([e.attributes for e in span.events]))

    def test_a_wrapper_label_holding_a_secret_is_scrubbed_in_the_name_and_attributes(
        self, pipeline: str
    ) -> None:
        with capture(pipeline=pipeline) as tel:
            with mevobs.rpc(method=f"eth_call via {URL}", chain=f"0x{PK}"):
                pass
            (span,) = tel.spans
            assert clean(span.name) and clean(str(span.attributes))
            assert all(clean(log.message) and clean(str(log.attributes)) for log in tel.logs)


def test_the_memo_of_cleaned_keys_is_bounded() -> None:
    for i in range(3 * _records._CLEAN_KEYS_SIZE):
        _records.clean_key(f"key.{i}")
    assert len(_records._CLEAN_KEYS) <= _records._CLEAN_KEYS_SIZE


def test_a_huge_key_is_capped_counted_and_not_remembered() -> None:
    with capture() as tel:
        cleaned = _records.clean_key("k" * 1_000_000)
        assert len(cleaned) < _records.MAX_KEY + 64
        assert "k" * 1_000_000 not in _records._CLEAN_KEYS
        assert tel.counter_value("mev.telemetry.dropped", reason="truncated") == 1


class TestHugeErrors:
    def test_the_rpc_classifier_reads_only_the_head_of_a_message(self) -> None:
        """It runs on the caller's thread: "exceeded " 30 000 times used to cost
        30 000 scans of 3 MB."""
        assert classify_rpc_error(ValueError("x" * MAX_CLASSIFIED + " rate limit")) == "ValueError"
        assert classify_rpc_error(ValueError("rate limit " + "x" * 3_000_000)) == "rate_limited"
        adversarial = ValueError("exceeded " * 350_000)
        start = time.process_time()
        assert classify_rpc_error(adversarial) == "ValueError"
        assert time.process_time() - start < 0.005

    def test_a_broken_str_classifies_by_type(self) -> None:
        class Broken(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no")

        assert classify_rpc_error(Broken()) == "Broken"
        _, _, event = _records.exception_event(Broken(), 0)
        assert event["exception.message"] == "<unprintable Broken>"

    def test_each_message_of_a_chain_is_cut_before_formatting_and_the_frames_stay(self) -> None:
        def inner() -> None:
            raise KeyError("k" * 3_000_000)

        def outer() -> None:
            try:
                inner()
            except KeyError as exc:
                raise RuntimeError("r" * 3_000_000) from exc

        with pytest.raises(RuntimeError) as caught:
            outer()
        with capture() as tel:
            stack = _records.stack_trace(caught.value)
            assert tel.counter_value("mev.telemetry.dropped", reason="truncated") == 1
        assert len(stack) <= _records.MAX_STACKTRACE + 64
        assert "in outer\n" in stack and "RuntimeError: rrrr" in stack
        assert "k" * (_records.MAX_MESSAGE + 1) not in stack

    def test_a_huge_message_costs_the_worker_what_a_short_one_does(self) -> None:
        short, huge = ValueError("x" * 8_000), ValueError("x" * 3_000_000)
        for exc in (short, huge):
            _records.exception_event(exc, 0)  # warm up
        start = time.process_time()
        _records.exception_event(short, 0)
        t_short = time.process_time() - start
        start = time.process_time()
        _records.exception_event(huge, 0)
        t_huge = time.process_time() - start
        assert t_huge < 3 * t_short + 0.002
