"""The shortcut for the commonest span writes exactly what the general encoder writes.

The export worker encodes a span that carries nothing but its timing and outcome
(``EncodedSpanOutput.add_operation`` -> ``OtlpEncoder.plain_span``) without building
the two intermediate tuples. The general encoder (``OtlpEncoder._span``) is the one
``tests/test_otlp_encoding.py`` holds against the SDK's, field by field; these tests
hold the shortcut byte for byte against it, for any ids, times, parents and static
attributes, and for real operations of every shape that takes or avoids it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from tests.operation_shapes import shapes

import mevobs
from mevobs import _fastpath, semconv
from mevobs._otlp import OtlpEncoder, SpanRecord, StaticAttributes
from mevobs._otlp_output import EncodedSpanOutput
from mevobs._otlp_wire import encode_attributes, ld
from mevobs._records import span_fields

ids64 = st.integers(1, (1 << 64) - 1)
times = st.integers(0, (1 << 63) - 1)
labels = st.text(min_size=1, max_size=20).filter(lambda s: s.isprintable())
statics = st.dictionaries(
    labels.filter(lambda k: k != semconv.ATTR_OUTCOME),
    st.one_of(labels, st.integers(-(1 << 63), (1 << 63) - 1), st.booleans()),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    trace_id=st.integers(1, (1 << 128) - 1),
    span_id=ids64,
    parent=st.one_of(st.just(0), ids64),
    remote=st.booleans(),
    kind=st.sampled_from([1, 3]),
    start=times,
    duration=st.integers(0, 1 << 40),
    name=st.text(st.characters(blacklist_categories=("Cs",)), max_size=200),
    static=statics,
    outcome=st.sampled_from([semconv.OUTCOME_SUCCESS, "skipped", "cancelled"]),
)
def test_plain_span_is_byte_for_byte_the_general_encoding(
    trace_id: int,
    span_id: int,
    parent: int,
    remote: bool,
    kind: int,
    start: int,
    duration: int,
    name: str,
    static: dict[str, Any],
    outcome: str,
) -> None:
    encoder = OtlpEncoder({"service.name": "plain"})
    attrs = StaticAttributes(static)
    outcome_field = b"".join(_outcome_fields(outcome))
    name_field = ld(b"\x2a", name.encode()) if name else b""
    shortcut = encoder.plain_span(
        trace_id, span_id, parent, remote, name_field, kind, start, start + duration, attrs, outcome_field
    )
    general = encoder._span(
        SpanRecord(
            trace_id,
            span_id,
            parent,
            remote,
            1,
            "",
            name,
            kind,
            start,
            start + duration,
            attrs,
            {semconv.ATTR_OUTCOME: outcome},
            [],
            0,
            "",
        )
    )
    assert shortcut == general


def _outcome_fields(outcome: str) -> list[bytes]:
    fields, bad_keys, bad_values = encode_attributes({semconv.ATTR_OUTCOME: outcome}, b"\x4a")
    assert not bad_keys and not bad_values
    return fields


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
def operations() -> Iterator[list[Any]]:
    """Finished fast-path operations, as the worker receives them (the worker is bypassed)."""
    caught: list[Any] = []
    telemetry = mevobs.configure(exporter="none", log_destination="none", sample_ratio=1.0)
    pipeline = next(p for p in _fastpath._PIPELINES if not p._stop)
    # Kept traces are handed over here: take them instead of queueing them for the worker.
    pipeline.submit_trace = lambda ops, important: caught.extend(ops)  # type: ignore[method-assign]
    try:
        yield caught
    finally:
        del pipeline.submit_trace
        telemetry.shutdown()


@pytest.mark.parametrize("shape", ["plain", "rpc", "failed", "attributes", "nested", "skipped"])
def test_add_operation_exports_what_add_of_span_fields_exports(operations: list[Any], shape: str) -> None:
    """Whether an operation takes the shortcut or not, the request sent is the same bytes."""
    for _ in range(3):  # the second call onwards hits the per-spec and per-outcome caches
        shapes()[shape]()
    assert operations
    resource = Resource.create({"service.name": "plain"})
    shortcut, general = Payloads(), Payloads()
    fast = EncodedSpanOutput(shortcut, resource, "mevobs", "1")  # type: ignore[arg-type]
    slow = EncodedSpanOutput(general, resource, "mevobs", "1")  # type: ignore[arg-type]
    for op in operations:
        fast.add_operation(op)
        slow.add(span_fields(op))
    for output in (fast, slow):
        send = output.take()
        assert send is not None and send()
    assert shortcut.sent == general.sent
    request = ExportTraceServiceRequest.FromString(b"".join(shortcut.sent))
    spans = [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    assert len(spans) == len(operations)
    assert all(any(kv.key == semconv.ATTR_OUTCOME for kv in span.attributes) for span in spans), (
        "every span carries its outcome"
    )
