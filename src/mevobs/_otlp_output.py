"""OTLP outputs of the fast pipeline: spans and log records encoded by hand.

The worker hands converted records to these outputs; when a batch is cut they
encode it with :class:`~mevobs._otlp.OtlpEncoder` (on the worker, never on a
caller's thread) and return a send job for the sender thread, which passes the
payloads through the SDK's own OTLP exporters (``_otlp_export``) so endpoint,
headers, TLS, compression, timeout and retries still follow the SDK's settings.
An operation's static attributes are encoded once and cached on its spec.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.resources import Resource

from mevobs import semconv
from mevobs._logs import PRIMITIVES, otel_fields
from mevobs._otlp import (
    EventRecord,
    LinkRecord,
    LogRecordData,
    OtlpEncoder,
    Payload,
    Scope,
    SpanRecord,
    StaticAttributes,
)
from mevobs._otlp_export import EncodedExporter
from mevobs._otlp_wire import encode_attributes, ld
from mevobs._outputs import SEVERITY
from mevobs._records import (
    ERROR_OUTCOMES,
    KIND_CLIENT,
    KIND_INTERNAL,
    OperationLog,
    SpanFields,
    clean_attributes,
    clean_text,
    span_fields,
)
from mevobs._state import STATE, yield_gil


def _count_losses(result: Any) -> None:
    if result.oversized:
        STATE.dropped("export_failed", "record over the request size limit", result.oversized)
    if result.failed:
        STATE.dropped("export_failed", "record could not be encoded", result.failed)


ENCODE_CHUNK = 64
"""Records encoded between two yields of the GIL (a caller waits for one chunk at most)."""


def _encode_in_chunks(
    encode: Callable[[Any], Any], scope_groups: list[tuple[Scope, list[Any]]], limit: int
) -> list[Any]:
    """Encode group by group, ``ENCODE_CHUNK`` records at a time, yielding the GIL between
    chunks; the chunks' requests are concatenated back (a protobuf message concatenated
    with another merges their repeated fields) up to ``limit`` bytes per request."""
    payloads: list[Any] = []
    for scope, records in scope_groups:
        for start in range(0, len(records), ENCODE_CHUNK):
            result = encode([(scope, records[start : start + ENCODE_CHUNK])])
            _count_losses(result)
            payloads.extend(result.payloads)
            yield_gil()
    merged: list[Any] = []
    data: list[bytes] = []
    size = count = 0
    for payload in payloads:
        if data and size + len(payload.data) > limit:
            merged.append(Payload(b"".join(data), count))
            data, size, count = [], 0, 0
        data.append(payload.data)
        size += len(payload.data)
        count += payload.record_count
    if data:
        merged.append(Payload(b"".join(data), count))
    return merged


def _send_all(exporter: EncodedExporter, payloads: list[Any]) -> Callable[[], bool]:
    def send() -> bool:
        for payload in payloads:
            if not exporter.export_encoded(payload.data, payload.record_count):
                STATE.dropped("export_failed", type(exporter).__name__, payload.record_count)
        return True  # losses are counted per payload above

    return send


class EncodedSpanOutput:
    """Spans encoded as OTLP ``ExportTraceServiceRequest`` payloads."""

    def __init__(
        self, exporter: EncodedExporter, resource: Resource, scope_name: str, scope_version: str
    ) -> None:
        self.exporter = exporter
        self.encoder = OtlpEncoder(dict(resource.attributes), resource.schema_url or "")
        self.scope = Scope(scope_name, scope_version)
        self._records: list[SpanRecord] = []
        self._foreign: dict[Scope, list[SpanRecord]] = {}
        self._count = 0
        # Per operation spec: (its StaticAttributes, its encoded name); per outcome: the
        # encoded outcome attribute. Only what encodes cleanly is kept (see add_operation).
        self._plain_specs: dict[Any, tuple[StaticAttributes, bytes] | None] = {}
        self._outcomes: dict[str, bytes] = {}

    def add_operation(self, op: Any) -> None:
        """A finished operation of the fast path. The common span (nothing recorded but
        its timing and outcome, status unset) is encoded right here, skipping two
        intermediate tuples; anything else takes :func:`span_fields` and :meth:`add`."""
        outcome = op._outcome or semconv.OUTCOME_SUCCESS
        if (
            op._attrs
            or op._events
            or op._exc is not None
            or op._error_type is not None
            or outcome in ERROR_OUTCOMES
        ):
            self.add(span_fields(op))
            return
        spec = op._spec
        plain = self._plain_specs[spec] if spec in self._plain_specs else self._plain_spec(spec)
        field = self._outcomes.get(outcome)
        if field is None:
            field = self._outcome_field(outcome)
        if plain is None or not field:
            self.add(span_fields(op))
            return
        static, name_field = plain
        self._records.append(
            self.encoder.plain_span(  # type: ignore[arg-type]  # a bytes record: see OtlpEncoder._encode
                op._trace_id,
                op._span_id,
                op._parent_span_id,
                op._parent_remote,
                name_field,
                KIND_CLIENT if spec.is_rpc else KIND_INTERNAL,
                op._wall_ns,
                op._wall_ns + op._duration_ns,
                static,
                field,
            )
        )
        self._count += 1

    def _plain_spec(self, spec: Any) -> tuple[StaticAttributes, bytes] | None:
        """The spec's static attributes and name field, or None when they need the careful
        path (a key or value dropped, a name that is not valid UTF-8: counted there)."""
        static = spec.export_cache
        if type(static) is not StaticAttributes:
            static = spec.export_cache = StaticAttributes(spec.span_attrs)
        plain: tuple[StaticAttributes, bytes] | None = None
        keys = static._keys
        if not static._bad_keys and not static._dropped_values and semconv.ATTR_OUTCOME not in keys:
            try:
                name = spec.span_name.encode()
            except UnicodeEncodeError:
                name = None
            if name is not None:
                plain = (static, ld(b"\x2a", name) if name else b"")
        if len(self._plain_specs) >= 4096:  # specs made on the fly: never hold them all
            self._plain_specs.clear()
        self._plain_specs[spec] = plain
        return plain

    def _outcome_field(self, outcome: str) -> bytes:
        fields, bad_keys, bad_values = encode_attributes({semconv.ATTR_OUTCOME: outcome}, b"\x4a")
        field = b"" if bad_keys or bad_values else b"".join(fields)
        if len(self._outcomes) < 64:  # outcomes are a fixed set; a stray one is not kept
            self._outcomes[outcome] = field
        return field

    def add(self, span: SpanFields) -> None:
        spec = span.spec
        static = spec.export_cache
        if type(static) is not StaticAttributes:
            static = spec.export_cache = StaticAttributes(span.static)
        self._records.append(
            SpanRecord(
                span.trace_id,
                span.span_id,
                span.parent_span_id,
                span.parent_remote,
                1,
                "",
                span.name,
                span.kind,
                span.start_ns,
                span.end_ns,
                static,
                span.attributes,
                span.events,
                span.status_code,
                span.status_message,
            )
        )
        self._count += 1

    def add_foreign(self, span: Any) -> None:
        scope, record = record_from_readable(span)
        # Another instrumentation's attributes (db.statement...) pass the same boundary.
        record = record._replace(
            name=clean_text(record.name),
            status_message=clean_text(record.status_message),
            attributes=clean_attributes(record.attributes),
            events=[EventRecord(e[0], e[1], clean_attributes(e[2]), *e[3:]) for e in record.events],
        )
        self._foreign.setdefault(scope, []).append(record)
        self._count += 1

    def pending(self) -> int:
        return self._count

    def take(self) -> Callable[[], bool] | None:
        if not self._count:
            return None
        groups: list[tuple[Scope, list[SpanRecord]]] = [(self.scope, self._records), *self._foreign.items()]
        self._records, self._foreign, self._count = [], {}, 0
        payloads = _encode_in_chunks(self.encoder.encode_spans, groups, self.encoder.max_bytes)
        return _send_all(self.exporter, payloads)

    def shutdown(self) -> None:
        self.exporter.shutdown()


class EncodedLogOutput:
    """Log records encoded as OTLP ``ExportLogsServiceRequest`` payloads."""

    def __init__(
        self,
        exporter: EncodedExporter,
        resource: Resource,
        scope_name: str,
        scope_version: str,
        *,
        scrub: bool,
    ) -> None:
        self.exporter = exporter
        self.encoder = OtlpEncoder(dict(resource.attributes), resource.schema_url or "")
        self.scope = Scope(scope_name, scope_version)
        self.scrub = scrub
        self._records: list[LogRecordData] = []
        # Per operation spec: its StaticAttributes when their cached log encoding is what
        # otel_fields() would send for them (nothing dropped, every value primitive).
        self._static: dict[Any, StaticAttributes | None] = {}
        self._severities: dict[int, tuple[int, str]] = {}

    def emit_operation(self, entry: OperationLog) -> bool:
        """An operation's log entry as the record :meth:`emit` makes of
        ``operation_record(entry)``, with its static attributes from their cached
        encoding; False (nothing added) when it needs the stdlib record."""
        spec = entry.spec
        static = self._static[spec] if spec in self._static else self._static_of(spec)
        dynamic = entry.dynamic
        if static is not None and dynamic.keys().isdisjoint(static._keys):
            attrs = dynamic  # written after the static ones: the order of entry.attributes
        else:
            static, attrs = None, entry.attributes
        if not PRIMITIVES.issuperset(map(type, attrs.values())):
            return False  # otel_fields() turns these into text
        severity = self._severities.get(entry.level)
        if severity is None:
            severity = self._severity_of(entry.level)
        time_ns = int(entry.created * 1e9)
        trace_id = entry.trace_id
        self._records.append(
            LogRecordData(
                time_ns,
                time_ns,
                severity[0],
                severity[1],
                entry.message,
                static,
                attrs,
                trace_id,
                entry.span_id,
                1 if trace_id else 0,
            )
        )
        return True

    def _static_of(self, spec: Any) -> StaticAttributes | None:
        static = spec.export_cache
        if type(static) is not StaticAttributes:
            static = spec.export_cache = StaticAttributes(spec.span_attrs)
        usable = (
            not static._bad_keys
            and not static._dropped_values
            and PRIMITIVES.issuperset(map(type, static.attributes.values()))
        )
        if len(self._static) >= 4096:  # specs made on the fly: never hold them all
            self._static.clear()
        self._static[spec] = static if usable else None
        return self._static[spec]

    def _severity_of(self, level: int) -> tuple[int, str]:
        severity = (
            int(SEVERITY.get(level, SEVERITY[logging.INFO]).value),
            logging.getLevelName(level),
        )
        if len(self._severities) < 64:
            self._severities[level] = severity
        return severity

    def emit(self, record: logging.LogRecord) -> None:
        fields = otel_fields(record, self.scrub)
        self._records.append(
            LogRecordData(
                fields.time_ns,
                fields.time_ns,
                int(SEVERITY.get(record.levelno, SEVERITY[logging.INFO]).value),
                record.levelname,
                fields.body,
                None,
                fields.attributes,
                fields.trace_id,
                fields.span_id,
                1 if fields.trace_id else 0,
            )
        )

    def pending(self) -> int:
        return len(self._records)

    def take(self) -> Callable[[], bool] | None:
        if not self._records:
            return None
        records, self._records = self._records, []
        payloads = _encode_in_chunks(
            self.encoder.encode_logs, [(self.scope, records)], self.encoder.max_bytes
        )
        return _send_all(self.exporter, payloads)

    def shutdown(self) -> None:
        self.exporter.shutdown()


_scopes: dict[Any, Scope] = {}


def record_from_readable(span: Any) -> tuple[Scope, SpanRecord]:
    """Convert a finished SDK span (from another instrumentation) into a record and its scope.

    The span's resource is not carried: the encoder's resource applies, as mevobs
    runs one tracer provider. Slower than building records directly; fine for the
    occasional foreign span.
    """
    sdk_scope = span.instrumentation_scope
    scope = _scopes.get(sdk_scope)
    if scope is None:
        if len(_scopes) >= 256:
            _scopes.clear()
        if sdk_scope is None:
            scope = Scope("")
        else:
            scope = Scope(
                sdk_scope.name, sdk_scope.version or "", sdk_scope.schema_url or "", sdk_scope.attributes
            )
        _scopes[sdk_scope] = scope
    ctx = span.get_span_context()
    if ctx is None:
        raise ValueError("span has no span context")
    parent = span.parent
    status = span.status
    trace_state = ",".join(f"{k}={v}" for k, v in ctx.trace_state.items()) if ctx.trace_state else ""
    record = SpanRecord(
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        parent_span_id=parent.span_id if parent is not None else 0,
        parent_is_remote=bool(parent is not None and parent.is_remote),
        trace_flags=int(ctx.trace_flags),
        trace_state=trace_state,
        name=span.name,
        kind=span.kind.value + 1,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        static=None,
        attributes=span.attributes or {},
        events=[
            EventRecord(e.name, e.timestamp, e.attributes or {}, e.dropped_attributes) for e in span.events
        ],
        status_code=status.status_code.value,
        status_message=status.description or "",
        dropped_attributes_count=span.dropped_attributes,
        dropped_events_count=span.dropped_events,
        links=[
            LinkRecord(
                link.context.trace_id,
                link.context.span_id,
                link.context.is_remote,
                link.attributes or {},
                link.dropped_attributes,
            )
            for link in span.links
        ],
        dropped_links_count=span.dropped_links,
    )
    return scope, record
