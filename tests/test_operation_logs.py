"""An operation's log entry, written without its stdlib record, is what the record would give.

When nothing but the pipeline's own handler would see the record of a finished
operation, the worker hands the entry (``_records.OperationLog``) straight to the
log outputs: the JSON formatter writes its line and the OTLP output its log record
from it. These tests hold that shortcut to the record path, byte for byte, for
operations of every shape and any attribute values, and check that a handler of
the application's own still receives the stdlib record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk.resources import Resource
from tests.operation_shapes import shapes

import mevobs
from mevobs import _fastpath
from mevobs._logs import JsonFormatter
from mevobs._otlp_output import EncodedLogOutput
from mevobs._records import OperationLog, operation_log, operation_record
from mevobs._state import LOGGER


class Payloads:
    """An encoded exporter that keeps what it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def export_encoded(self, payload: bytes, count: int) -> bool:
        self.sent.append(payload)
        return True

    def shutdown(self) -> None:
        pass


@pytest.fixture
def entries() -> Iterator[list[tuple[Any, int]]]:
    """Finished operations and their log levels, as the worker receives them (bypassed)."""
    caught: list[tuple[Any, int]] = []
    telemetry = mevobs.configure(exporter="none", log_destination="none", log_level="INFO")
    pipeline = next(p for p in _fastpath._PIPELINES if not p._stop)
    pipeline.submit_log = lambda op, level: caught.append((op, level))  # type: ignore[method-assign]
    try:
        yield caught
    finally:
        del pipeline.submit_log
        telemetry.shutdown()


def _otlp(entries: list[OperationLog], direct: bool) -> tuple[bytes, int]:
    """The OTLP logs request for ``entries``, and how many took the shortcut."""
    sink = Payloads()
    output = EncodedLogOutput(sink, Resource.create({"service.name": "logs"}), "mevobs", "1", scrub=True)  # type: ignore[arg-type]
    shortcut = 0
    for entry in entries:
        if direct and output.emit_operation(entry):
            shortcut += 1
        else:
            output.emit(operation_record(entry))
    send = output.take()
    assert send is not None and send()
    return b"".join(sink.sent), shortcut


def _same_both_ways(caught: list[tuple[Any, int]]) -> int:
    entries = [operation_log(op, level) for op, level in caught]
    assert entries
    formatter = JsonFormatter("svc")
    for entry in entries:
        assert entry.exc is None or entry.exc.__traceback__ is not None
        record = operation_record(entry)
        LOGGER.filter(record)  # the boundary filter, as LOGGER.handle would run it
        if entry.exc is None:
            assert formatter.format_operation(entry) == formatter.format(record)
    plain = [e for e in entries if e.exc is None]
    if not plain:  # a failure's record carries its exception: it never takes the shortcut
        return 0
    direct, shortcut = _otlp(plain, True)
    general, _ = _otlp(plain, False)
    assert direct == general
    request = ExportLogsServiceRequest.FromString(direct)
    records = [r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert [r.body.string_value for r in records] == [e.message for e in plain]
    return shortcut


@pytest.mark.parametrize("shape", ["plain", "rpc", "failed", "attributes", "nested", "skipped"])
def test_entry_renders_as_its_record_does(entries: list[tuple[Any, int]], shape: str) -> None:
    """JSON line and OTLP log record of an entry are the bytes its stdlib record gives."""
    for _ in range(3):  # the second call onwards hits the per-spec caches
        shapes()[shape]()
    shortcut = _same_both_ways(entries)
    if shape in ("plain", "rpc", "skipped"):
        assert shortcut == 3, "the commonest records take the shortcut"


attr_values = st.one_of(
    st.text(max_size=80),
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(0, 9), max_size=3),
)
attr_keys = st.sampled_from(["bot.route", "bot.size", "mev.chain", "mev.exchange", "bot.note", "api_key"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=st.dictionaries(attr_keys, attr_values, max_size=5))
def test_entry_renders_as_its_record_does_for_any_attributes(
    entries: list[tuple[Any, int]], attrs: dict[str, Any]
) -> None:
    """Whatever an operation recorded (secrets, NaN, lists, static keys again), both
    paths write the same bytes."""
    entries.clear()

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap() -> None:
        op = mevobs.current_operation()
        assert op is not None
        for key, value in attrs.items():
            op.set_attribute(key, value)

    swap()
    _same_both_ways(entries)


def test_an_application_handler_still_gets_the_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With a handler of the application's own on the ``mevobs`` logger or above it,
    the worker makes the stdlib record and every handler receives it; without one it
    does not, and the log file holds the same lines either way."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # pytest's own capture handlers
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    path = tmp_path / "ops.log"
    telemetry = mevobs.configure(
        exporter="none", log_destination="file", log_path=str(path), log_level="INFO"
    )
    pipeline = next(p for p in _fastpath._PIPELINES if not p._stop)
    made: list[OperationLog] = []
    monkeypatch.setattr(
        _fastpath, "operation_record", lambda entry: made.append(entry) or operation_record(entry)
    )

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap() -> None:
        op = mevobs.current_operation()
        assert op is not None
        op.set_attribute("bot.route", "weth-usdc")

    try:
        assert pipeline._only_handler(logging.INFO)
        swap()
        assert telemetry.force_flush()
        assert not made, "nobody else would see it: no stdlib record is made"
        for logger in (LOGGER, logging.getLogger()):
            handler = Keep()
            logger.addHandler(handler)
            try:
                assert not pipeline._only_handler(logging.INFO)
                swap()
                assert telemetry.force_flush()
            finally:
                logger.removeHandler(handler)
        assert pipeline._only_handler(logging.INFO)
    finally:
        telemetry.shutdown()
    assert len(seen) == len(made) == 2
    for record in seen:
        assert record.getMessage().startswith("swap uniswap_v2 success in ")
        assert record.mevobs["bot.route"] == "weth-usdc"  # type: ignore[attr-defined]
        assert len(record.trace_id) == 32  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 3
    shapes = [(sorted(d), list(d["attributes"]), d["message"].split(" in ")[0]) for d in lines]
    assert shapes[0] == shapes[1] == shapes[2], "the shortcut's line has the record's layout"
