"""OTLP encoding of compact span and log records, by hand, for the export worker.

The caller's thread records an operation as a :class:`SpanRecord` (a plain tuple);
a worker turns batches of them into serialized ``ExportTraceServiceRequest`` /
``ExportLogsServiceRequest`` payloads with :class:`OtlpEncoder` and hands the bytes
to the SDK's exporters (see ``_otlp_export``). Encoding through the protobuf
classes costs ~50 µs per span; this costs a few, because everything fixed (the
resource, the scope, an operation's static attributes, attribute keys, span
names) is encoded once and reused by concatenation.

What is written matches ``opentelemetry-exporter-otlp-proto-common`` 1.45.1 field
by field (``tests/test_otlp_encoding.py`` holds the two side by side), including:
``Span.flags`` carries only the has-is-remote / is-remote bits (the SDK does not
put the W3C trace flags there, so ``SpanRecord.trace_flags`` is not written);
``status`` is always present; links carry no trace_state; the resource carries
no dropped count; a log record's body is always present and its trace/span ids
only when non-zero. Deliberate differences, where the SDK would fail a whole
batch: a lone surrogate in a name, trace_state, status message, event name,
severity text, body or scope field becomes U+FFFD (counted in
``replaced_strings``); a record that cannot be encoded at all (e.g. a trace id
wider than 128 bits) is left out and counted in ``failed``. A status message is
written only with the ERROR code, as the API's ``Status`` keeps it.

Stdlib only; not thread-safe (one encoder per worker thread).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from mevobs._otlp_wire import (
    AttrCodec,
    AttrValue,
    Counts,
    any_value,
    encode_attributes,
    ld,
    lossy_utf8,
    pack_i,
    pack_q,
    repaired,
    text_field,
    varint,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "AttrValue",
    "EncodeResult",
    "EventRecord",
    "LinkRecord",
    "LogRecordData",
    "OtlpEncoder",
    "Payload",
    "Scope",
    "SpanRecord",
    "StaticAttributes",
]

DEFAULT_MAX_BYTES = 4 * 1024 * 1024 - 64 * 1024
"""gRPC receivers refuse messages over 4 MiB by default; 64 KiB are left for framing and headers."""

_M64 = (1 << 64) - 1
_IDS = struct.Struct(">BBQQBBQ").pack  # trace_id (1), span_id (2)
_IDS_PARENT = struct.Struct(">BBQQBBQBBQ").pack  # ... and parent_span_id (4)
_PARENT = struct.Struct(">BBQ").pack
_KIND_TIMES = struct.Struct("<BBBQBQ").pack  # kind (6), start (7), end (8)
# Span.flags (16): "has is_remote", plus "is_remote" when the parent is remote
_FLAGS = (b"\x85\x01" + pack_i(0x100), b"\x85\x01" + pack_i(0x300))
# status (15) and flags (16) when there is no status message, by status_code * 2 + parent_is_remote
_TAILS = tuple(
    ld(b"\x7a", b"\x18" + varint(code) if code else b"") + _FLAGS[remote]
    for code in (0, 1, 2)
    for remote in (0, 1)
)
_TRACE_ID = struct.Struct(">BBQQ").pack
_TIME_SEVERITY = struct.Struct("<BQBB").pack  # LogRecord time (1), severity_number (2)
_FLAGS_IDS = struct.Struct(">BIBBQQBBQ").pack  # LogRecord flags (8), trace_id (9), span_id (10)
_NAME_CACHE_SIZE = 4096


class StaticAttributes:
    """Attributes encoded once (an operation's kind, exchange, chain, ...) and reused on every record.

    Written before a record's dynamic attributes. If a record's dynamic attributes
    repeat one of these keys, the dynamic value wins and is written in its dynamic
    position, as setting an attribute again on an SDK span moves it to the end.
    """

    __slots__ = ("_bad_keys", "_dropped_values", "_keys", "_log", "_span", "attributes")

    def __init__(self, attributes: Mapping[str, AttrValue]) -> None:
        self.attributes: Mapping[str, AttrValue] = dict(attributes)
        self._keys = frozenset(self.attributes)
        span, self._bad_keys, self._dropped_values = encode_attributes(self.attributes, b"\x4a")
        self._span = b"".join(span)
        self._log = b"".join(encode_attributes(self.attributes, b"\x32")[0])

    def __repr__(self) -> str:
        return f"StaticAttributes({self.attributes!r})"

    def _merged(self, dynamic: Mapping[str, AttrValue]) -> dict[str, AttrValue]:
        # bad keys are left out here: they are counted once, in _bad_keys, as the SDK counts them
        merged = {k: v for k, v in self.attributes.items() if k and isinstance(k, str) and k not in dynamic}
        merged.update(dynamic)
        return merged


class Scope:
    """An instrumentation scope, encoded once; hashable, so records can be grouped by it."""

    __slots__ = ("_field", "_hash", "_key", "_schema", "attributes", "name", "schema_url", "version")

    def __init__(
        self,
        name: str,
        version: str = "",
        schema_url: str = "",
        attributes: Mapping[str, AttrValue] | None = None,
    ) -> None:
        self.name = name
        self.version = version or ""
        self.schema_url = schema_url or ""
        self.attributes: Mapping[str, AttrValue] = dict(attributes or {})
        body = text_field(b"\x0a", self.name) + text_field(b"\x12", self.version)
        body += b"".join(encode_attributes(self.attributes, b"\x1a")[0])
        self._field = ld(b"\x0a", body)  # ScopeSpans/ScopeLogs.scope (1): always present
        self._schema = text_field(b"\x1a", self.schema_url)  # ScopeSpans/ScopeLogs.schema_url (3)
        self._key = (self._field, self._schema)
        self._hash = hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scope) and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Scope({self.name!r}, {self.version!r}, {self.schema_url!r}, {self.attributes!r})"


class EventRecord(NamedTuple):
    """A span event; a plain ``(name, time_ns, attributes)`` tuple is accepted too."""

    name: str
    time_ns: int
    attributes: Mapping[str, AttrValue]
    dropped_attributes_count: int = 0


class LinkRecord(NamedTuple):
    """A span link, as the SDK writes it (no trace_state; flags from ``is_remote``)."""

    trace_id: int
    span_id: int
    is_remote: bool
    attributes: Mapping[str, AttrValue]
    dropped_attributes_count: int = 0


class SpanRecord(NamedTuple):
    """One finished span. ``kind`` and ``status_code`` take the OTLP enum values.

    A NamedTuple because the caller's thread builds one per operation (a tuple is the
    cheapest object to build) and the encoder unpacks it in one step.
    ``parent_span_id`` 0 means a root span; ``trace_flags`` is carried but not
    written (see the module docstring).
    """

    trace_id: int
    span_id: int
    parent_span_id: int
    parent_is_remote: bool
    trace_flags: int
    trace_state: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    static: StaticAttributes | None
    attributes: Mapping[str, AttrValue]
    events: Sequence[EventRecord | tuple[str, int, Mapping[str, AttrValue]]]
    status_code: int
    status_message: str
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    links: Sequence[LinkRecord] = ()
    dropped_links_count: int = 0


class LogRecordData(NamedTuple):
    """One log record. ``trace_id``/``span_id`` 0 mean "not in a span"; ``time_ns`` 0 means unset."""

    time_ns: int
    observed_ns: int
    severity_number: int
    severity_text: str
    body: AttrValue
    static: StaticAttributes | None
    attributes: Mapping[str, AttrValue]
    trace_id: int = 0
    span_id: int = 0
    trace_flags: int = 0
    event_name: str = ""
    dropped_attributes_count: int = 0


class Payload(NamedTuple):
    """One complete serialized export request and how many spans or log records it holds."""

    data: bytes
    record_count: int


class EncodeResult(NamedTuple):
    """Payloads, each at most ``max_bytes``, and what could not be sent.

    ``oversized``: records larger than ``max_bytes`` on their own, left out.
    ``failed``: records that could not be encoded at all, left out.
    ``dropped_values``: attributes left out because their value cannot be encoded
    (an int outside int64, a lone surrogate), as the SDK's encoder leaves them out.
    ``replaced_strings``: names, messages and bodies whose lone surrogates became U+FFFD.
    """

    payloads: list[Payload]
    oversized: int
    failed: int
    dropped_values: int
    replaced_strings: int


class _ScopeBatch:
    """The records of one scope in the payload being built: field headers and bodies."""

    __slots__ = ("fields", "fixed", "scope")

    def __init__(self, scope: Scope, fixed: int) -> None:
        self.scope = scope
        self.fields: list[bytes] = []
        self.fixed = fixed  # the scope's own fields

    @property
    def length(self) -> int:
        """Length of the ScopeX message."""
        return self.fixed + sum(map(len, self.fields))


def _vsize(n: int) -> int:
    return 1 if n < 0x80 else (n.bit_length() + 6) // 7


def _size(current: list[_ScopeBatch], batch: _ScopeBatch | None, grow: int, body: int) -> int:
    """Exact serialized size of the payload being built once ``grow`` more bytes join ``batch``
    (the last scope in ``current``), or a new scope when ``batch`` is None."""
    lengths = [b.length for b in current]
    if batch is None:
        lengths.append(grow)
    else:
        lengths[-1] += grow
    inner = body + grow + sum(1 + _vsize(n) for n in lengths)
    return 1 + _vsize(inner) + inner


class OtlpEncoder:
    """Turns span and log records into serialized OTLP export requests for one resource."""

    def __init__(
        self,
        resource_attributes: Mapping[str, AttrValue],
        resource_schema_url: str = "",
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.max_bytes = max_bytes
        self._counts = Counts()
        res = b"".join(encode_attributes(resource_attributes, b"\x0a")[0])
        self._resource = ld(b"\x0a", res)  # ResourceSpans/ResourceLogs.resource (1): always present
        self._resource_schema = text_field(b"\x1a", resource_schema_url or "")
        self._span_attrs = AttrCodec(9, self._counts)
        self._event_attrs = AttrCodec(3, self._counts)
        self._link_attrs = AttrCodec(4, self._counts)
        self._log_attrs = AttrCodec(6, self._counts)
        self._names: dict[str, bytes] = {}
        self._event_names: dict[str, bytes] = {}
        self._log_strings: dict[str, bytes] = {}

    def encode_spans(self, groups: Iterable[tuple[Scope, Iterable[SpanRecord]]]) -> EncodeResult:
        """Encode spans grouped by scope (e.g. ``dict.items()``) into as few payloads as fit."""
        return self._encode(groups, self._span)

    def encode_logs(self, groups: Iterable[tuple[Scope, Iterable[LogRecordData]]]) -> EncodeResult:
        """Encode log records grouped by scope into as few payloads as fit."""
        return self._encode(groups, self._log)

    # -- batching: ExportXServiceRequest { ResourceX (1) { resource (1), ScopeX (2)*, schema_url (3) } }

    def _encode(
        self, groups: Iterable[tuple[Scope, Iterable[Any]]], one: Callable[[Any], bytes]
    ) -> EncodeResult:
        counts = self._counts
        counts.dropped_values = counts.replaced_strings = 0
        payloads: list[Payload] = []
        oversized = failed = 0
        limit = self.max_bytes
        base = len(self._resource) + len(self._resource_schema)
        current: list[_ScopeBatch] = []
        body = base  # the ResourceX message without its ScopeX field headers
        count = 0
        # Headers (the request's, each scope's) take at most 6 bytes: below this size the
        # payload surely fits, and only above it is the exact size worth working out.
        sure = limit - 12
        for scope, records in groups:
            fixed = len(scope._field) + len(scope._schema)
            batch: _ScopeBatch | None = None
            for record in records:
                try:
                    # a record already encoded by plain_span() is its own body
                    encoded = record if record.__class__ is bytes else one(record)
                except Exception:
                    failed += 1
                    continue
                # the record's field header in ScopeX (spans / log_records, 2); varint inlined
                n = len(encoded)
                if n < 0x4000:
                    head = bytes((0x12, n)) if n < 0x80 else bytes((0x12, n & 0x7F | 0x80, n >> 7))
                else:
                    head = b"\x12" + varint(n)
                size = len(head) + n
                grow = size if batch is not None else size + fixed
                if body + grow > sure and _size(current, batch, grow, body) > limit:
                    if _size([], None, size + fixed, base) > limit:
                        oversized += 1
                        continue
                    if count:
                        payloads.append(self._payload(current, body, count))
                    current, body, count, batch = [], base, 0, None
                    grow = size + fixed
                    sure = limit - 12
                if batch is None:
                    batch = _ScopeBatch(scope, fixed)
                    current.append(batch)
                    add = batch.fields.append
                    sure = limit - 6 * (len(current) + 2)
                add(head)
                add(encoded)
                body += grow
                count += 1
        if count:
            payloads.append(self._payload(current, body, count))
        return EncodeResult(payloads, oversized, failed, counts.dropped_values, counts.replaced_strings)

    def _payload(self, scopes: list[_ScopeBatch], body: int, count: int) -> Payload:
        parts: list[bytes] = [b"", self._resource]
        for batch in scopes:
            head = b"\x12" + varint(batch.length)
            body += len(head)
            parts.append(head)
            parts.append(batch.scope._field)
            parts.extend(batch.fields)
            parts.append(batch.scope._schema)
        parts.append(self._resource_schema)
        parts[0] = b"\x0a" + varint(body)
        return Payload(b"".join(parts), count)

    # -- one span: the body of a Span message

    def plain_span(
        self,
        trace_id: int,
        span_id: int,
        parent_span_id: int,
        parent_remote: bool,
        name_field: bytes,
        kind: int,
        start_ns: int,
        end_ns: int,
        static: StaticAttributes,
        attrs_field: bytes,
    ) -> bytes:
        """The body of the commonest span, exactly as :meth:`_span` writes it: no trace
        state, pre-encoded name and attributes (static ones with nothing dropped, then
        ``attrs_field``), no events or links, status unset. A bytes record in a batch is
        taken as it is, so an operation can skip the :class:`SpanRecord` step."""
        if parent_span_id:
            ids = _IDS_PARENT(
                0x0A, 16, trace_id >> 64, trace_id & _M64, 0x12, 8, span_id, 0x22, 8, parent_span_id
            )
        else:
            ids = _IDS(0x0A, 16, trace_id >> 64, trace_id & _M64, 0x12, 8, span_id)
        return b"".join(
            (
                ids,
                name_field,
                _KIND_TIMES(0x30, kind, 0x39, start_ns, 0x41, end_ns),
                static._span,
                attrs_field,
                _TAILS[1 if parent_remote else 0],
            )
        )

    def _span(self, r: SpanRecord) -> bytes:
        (
            tid, sid, pid, remote, _flags, tstate, name, kind, start, end, static, attrs, events,
            code, message, dropped, dropped_events, links, dropped_links,
        ) = r  # fmt: skip
        parts: list[bytes] = []
        ap = parts.append
        if tstate:
            ap(_IDS(0x0A, 16, tid >> 64, tid & _M64, 0x12, 8, sid))
            ap(self._string(b"\x1a", tstate))
            if pid:
                ap(_PARENT(0x22, 8, pid))
        elif pid:
            ap(_IDS_PARENT(0x0A, 16, tid >> 64, tid & _M64, 0x12, 8, sid, 0x22, 8, pid))
        else:
            ap(_IDS(0x0A, 16, tid >> 64, tid & _M64, 0x12, 8, sid))
        nf = self._names.get(name)
        if nf is None:
            nf = self._cached(self._names, b"\x2a", name)
        ap(nf)
        if not 0 <= kind < 0x80:  # one varint byte, as packed here; OTLP kinds are 0-5
            raise ValueError("span kind")
        ap(_KIND_TIMES(0x30, kind, 0x39, start, 0x41, end))
        if static is not None:
            dropped += static._bad_keys
            if attrs and not attrs.keys().isdisjoint(static._keys):
                attrs = static._merged(attrs)
            else:
                ap(static._span)
                self._counts.dropped_values += static._dropped_values
        if attrs:
            dropped += self._span_attrs.encode(attrs, parts)
        if dropped:
            ap(b"\x50" + varint(dropped))
        for event in events:
            body = self._event(event)
            ap(b"\x5a" + varint(len(body)))  # Span.events (11)
            ap(body)
        if dropped_events:
            ap(b"\x60" + varint(dropped_events))
        for link in links:
            ap(ld(b"\x6a", self._link(link)))  # Span.links (13)
        if dropped_links:
            ap(b"\x70" + varint(dropped_links))
        if code == 2 and message:
            ap(ld(b"\x7a", self._string(b"\x12", message) + b"\x18\x02") + _FLAGS[remote])
        elif 0 <= code <= 2:
            ap(_TAILS[code * 2 + remote])
        else:
            ap(ld(b"\x7a", b"\x18" + varint(code)) + _FLAGS[remote])
        return b"".join(parts)

    def _event(self, e: EventRecord | tuple[str, int, Mapping[str, AttrValue]]) -> bytes:
        name, time_ns, attrs = e[0], e[1], e[2]
        parts = [b"\x09" + pack_q(time_ns)] if time_ns else []
        nf = self._event_names.get(name)
        if nf is None:
            nf = self._cached(self._event_names, b"\x12", name)
        parts.append(nf)
        dropped = self._event_attrs.encode(attrs, parts) if attrs else 0
        dropped += e[3] if len(e) > 3 else 0
        if dropped:
            parts.append(b"\x20" + varint(dropped))
        return b"".join(parts)

    def _link(self, link: LinkRecord) -> bytes:
        tid, sid, remote, attrs, dropped = link
        parts = [_IDS(0x0A, 16, tid >> 64, tid & _M64, 0x12, 8, sid)]
        if attrs:
            dropped += self._link_attrs.encode(attrs, parts)
        if dropped:
            parts.append(b"\x28" + varint(dropped))
        parts.append(b"\x35" + pack_i(0x300 if remote else 0x100))
        return b"".join(parts)

    # -- one log record: the body of a LogRecord message

    def _log(self, r: LogRecordData) -> bytes:
        time_ns, observed, severity, severity_text, body, static, attrs, tid, sid, tflags, event, dropped = r
        # Fixed-size neighbours are packed together: one call instead of one per field.
        if time_ns and 0 < severity < 0x80:
            parts = [_TIME_SEVERITY(0x09, time_ns, 0x10, severity)]
        else:
            parts = [b"\x09" + pack_q(time_ns)] if time_ns else []
            if severity:
                parts.append(b"\x10" + varint(severity))
        ap = parts.append
        if severity_text:
            ap(
                self._log_strings.get(severity_text)
                or self._cached(self._log_strings, b"\x1a", severity_text)
            )
        if type(body) is str:
            try:
                vb = body.encode()
            except UnicodeEncodeError:
                vb = lossy_utf8(body)
                self._counts.replaced_strings += 1
            n = len(vb)
            if n < 0x7E:
                ap(bytes((0x2A, n + 2, 0x0A, n)))
            else:
                head = b"\x0a" + varint(n)
                ap(b"\x2a" + varint(len(head) + n) + head)
            ap(vb)
        else:
            ap(ld(b"\x2a", self._body(body)))
        if static is not None:
            dropped += static._bad_keys
            if attrs and not attrs.keys().isdisjoint(static._keys):
                attrs = static._merged(attrs)
            else:
                ap(static._log)
                self._counts.dropped_values += static._dropped_values
        if attrs:
            dropped += self._log_attrs.encode(attrs, parts)
        if dropped:
            ap(b"\x38" + varint(dropped))
        if tid and sid and 0 < tflags < 0x100:
            # fixed32 flags little-endian inside a big-endian struct: the byte goes first
            ap(_FLAGS_IDS(0x45, tflags << 24, 0x4A, 16, tid >> 64, tid & _M64, 0x52, 8, sid))
        else:
            if tflags:
                ap(b"\x45" + pack_i(tflags))
            if tid:
                ap(_TRACE_ID(0x4A, 16, tid >> 64, tid & _M64))
            if sid:
                ap(_PARENT(0x52, 8, sid))
        if observed:
            ap(b"\x59" + pack_q(observed))
        if event:
            ap(self._string(b"\x62", event))
        return b"".join(parts)

    def _body(self, body: AttrValue) -> bytes:
        """The body's AnyValue; where the SDK would fail the batch, repaired text or an empty value."""
        try:
            return any_value(body)
        except UnicodeEncodeError:
            self._counts.replaced_strings += 1
            with contextlib.suppress(Exception):
                return any_value(repaired(body))
        except Exception:
            pass
        self._counts.dropped_values += 1
        return b""

    # -- strings

    def _string(self, tag: bytes, s: str) -> bytes:
        try:
            return ld(tag, s.encode())
        except UnicodeEncodeError:
            self._counts.replaced_strings += 1
            return ld(tag, lossy_utf8(s))

    def _cached(self, cache: dict[str, bytes], tag: bytes, s: str) -> bytes:
        """A string field, remembered (names repeat); a repaired one is not, so that each use counts."""
        try:
            field = ld(tag, s.encode()) if s else b""
        except UnicodeEncodeError:
            self._counts.replaced_strings += 1
            return ld(tag, lossy_utf8(s))
        if len(cache) >= _NAME_CACHE_SIZE:
            cache.clear()
        cache[s] = field
        return field
