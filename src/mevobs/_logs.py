"""Log records for finished operations, the JSON formatter and the OpenTelemetry logs bridge.

Every finished operation writes one record on the stdlib logger ``mevobs``.
The record carries the operation's attributes in ``record.mevobs`` and its
trace and span ids, so any handler can render or forward it.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, SeverityNumber
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from mevobs import semconv
from mevobs._records import (
    LOGGER_NAME,
    MAX_MESSAGE,
    MAX_STACKTRACE,
    OperationLog,
    capped,
    clean_attributes,
    stack_trace,
    truncate,
)
from mevobs._scrub import scrub_text
from mevobs._state import LOGGER, STATE

_SEVERITY = {
    logging.DEBUG: SeverityNumber.DEBUG,
    logging.INFO: SeverityNumber.INFO,
    logging.WARNING: SeverityNumber.WARN,
    logging.ERROR: SeverityNumber.ERROR,
    logging.CRITICAL: SeverityNumber.FATAL,
}


def emit_operation_log(
    logger: logging.Logger,
    level: int,
    name: str,
    outcome: str,
    duration_ns: int,
    attributes: dict[str, Any],
    ctx: SpanContext | None,
    exc: BaseException | None,
    where: tuple[str, int, str],
) -> None:
    """Write the one record a finished operation leaves in the logs.

    The record is built directly, pointing at the wrapped function (``where``:
    file, line, function, resolved at decoration), instead of going through
    ``Logger.log``, whose caller lookup would walk the stack to find mevobs's
    own frame.
    """
    ms = duration_ns / 1e6
    attributes[semconv.ATTR_DURATION_MS] = round(ms, 3)
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord(
        logger.name, level, where[0], where[1], "%s %s in %.2f ms", (name, outcome, ms), exc_info, where[2]
    )
    record.mevobs = attributes
    if ctx is not None:
        record.trace_id = format(ctx.trace_id, "032x")
        record.span_id = format(ctx.span_id, "016x")
        record.otel_span_context = ctx
    logger.handle(record)


def _span_ids(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """Trace/span ids of a record: the operation's, else the current span's."""
    trace_id = getattr(record, "trace_id", None)
    span_id = getattr(record, "span_id", None)
    if trace_id is None:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            trace_id = format(ctx.trace_id, "032x")
            span_id = format(ctx.span_id, "016x")
    return trace_id, span_id


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Value types the encoder writes exactly as :func:`_jsonable` would leave them (floats
but NaN and the infinities, which it refuses: see ``allow_nan`` below)."""

# json.dumps with separators builds a JSONEncoder, and its C encoder, on every call;
# this one is built once. No circular check: its input is flat (the ``_SCALARS`` test);
# allow_nan=False makes a NaN raise instead of printing ``NaN`` (see format).
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE: Any = (
    _c_make_encoder(None, None, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)
    if _c_make_encoder is not None
    else None
)

_UTC = _dt.timezone.utc
_last_second: tuple[float, str] = (math.nan, "")  # the second last formatted, and its text


def iso_utc(created: float) -> str:
    """``created`` as ISO-8601 UTC with microseconds and a ``Z``, exactly as
    ``datetime.fromtimestamp(created, tz=utc).isoformat(timespec="microseconds")``
    writes it (with ``+00:00`` as ``Z``): the microseconds are rounded half to even
    from the float as datetime does, and the date and time of the second come from
    datetime itself, once per second."""
    fraction, whole = math.modf(created)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1.0
    elif micros < 0:
        micros += 1_000_000
        whole -= 1.0
    global _last_second
    cached = _last_second  # one tuple, replaced whole: safe from any thread
    if cached[0] != whole:
        text = _dt.datetime.fromtimestamp(whole, tz=_UTC).isoformat(timespec="seconds")
        cached = _last_second = (whole, text.replace("+00:00", ""))
    return f"{cached[1]}.{micros:06d}Z"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _clean(record: logging.LogRecord, scrub: bool) -> tuple[str, dict[str, Any]]:
    """The record's message and attributes as they may leave the process.

    Records the fast path built are clean already (cleaned once at the export
    boundary); others are capped and scrubbed here.
    """
    message = record.getMessage()
    attrs: Mapping[str, Any] = getattr(record, "mevobs", None) or {}
    if getattr(record, "mevobs_clean", False) or not scrub:
        return message, dict(attrs)
    # ``mevobs_keep``: 64-hex digests the writer knows are public (tx hashes, audit heads).
    keep: frozenset[str] = getattr(record, "mevobs_keep", frozenset())
    message = scrub_text(capped(message, MAX_MESSAGE, "log message"), keep=keep, limit=MAX_MESSAGE + 64)
    return message, clean_attributes(attrs, keep)


def exception_text(record: logging.LogRecord, scrub: bool) -> str | None:
    """The record's exception and stack trace, capped (innermost frames kept), scrubbed.

    Uses ``record.exc_text`` when the boundary filter already made it (stdlib
    formatters read the same attribute, so every handler prints the scrubbed text).
    """
    if record.exc_text:
        return record.exc_text
    if not record.exc_info or record.exc_info[1] is None:
        return None
    _, exc, tb = record.exc_info
    text = stack_trace(exc, tb)
    return scrub_text(text, limit=MAX_STACKTRACE + 64) if scrub else text


class BoundaryFilter(logging.Filter):
    """The export boundary of every record on the ``mevobs`` logger, before any handler.

    A logger filter runs before the handlers (the application's own included), so a
    record's message, ``mevobs`` attributes and exception text reach every handler
    already capped and scrubbed. Records the fast path built on its worker carry
    cleaned attributes already (``mevobs_clean``); only their exception text is made
    here. Records of other threads (security events, breaker transitions) are cleaned
    on the thread that logs them: they are rare.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not STATE.scrub:
            return True
        if not getattr(record, "mevobs_clean", False):
            message, attrs = _clean(record, True)
            record.msg, record.args = message, None
            if getattr(record, "mevobs", None) is not None:
                record.mevobs = attrs
            record.mevobs_clean = True
        if record.exc_info and not record.exc_text:
            record.exc_text = exception_text(record, True)
        return True


BOUNDARY = BoundaryFilter()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ISO-8601 UTC timestamp, level, logger, message,
    trace_id, span_id, service.name and attributes (secrets scrubbed)."""

    def __init__(self, service_name: str = "unknown_service", *, scrub: bool = True) -> None:
        super().__init__()
        self.service_name = service_name
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = _span_ids(record)
        message, attrs = _clean(record, self.scrub)
        exception = exception_text(record, self.scrub)
        return self._line(
            record.created, record.levelname, record.name, message, trace_id, span_id, attrs, exception
        )

    def format_operation(self, entry: OperationLog) -> str:
        """The line :meth:`format` writes for ``operation_record(entry)``, without the
        record (an entry without an exception: its attributes are clean already)."""
        return self._line(
            entry.created,
            logging.getLevelName(entry.level),
            LOGGER_NAME,
            entry.message,
            format(entry.trace_id, "032x"),
            format(entry.span_id, "016x"),
            entry.attributes,
            None,
        )

    def _line(
        self,
        created: float,
        levelname: str,
        name: str,
        message: str,
        trace_id: str | None,
        span_id: str | None,
        attrs: Mapping[str, Any],
        exception: str | None,
    ) -> str:
        # Flat scalar attributes (every operation record) go to the encoder as they are;
        # anything else is made JSON-safe first, value by value.
        plain = _SCALARS.issuperset(map(type, attrs.values()))
        doc: dict[str, Any] = {
            "timestamp": iso_utc(created),
            "level": levelname,
            "logger": name,
            "message": message,
            "trace_id": trace_id,
            "span_id": span_id,
            "service.name": self.service_name,
            "attributes": attrs if plain else {k: _jsonable(v) for k, v in attrs.items()},
        }
        if exception is not None:
            doc["exception"] = exception
        if plain and _ENCODE is not None:
            try:
                return "".join(_ENCODE(doc, 0))
            except ValueError:  # a NaN or an infinity: written as text, by _jsonable
                doc["attributes"] = {k: _jsonable(v) for k, v in attrs.items()}
        return json.dumps(doc, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Human-readable line with the trace id and the key attributes."""

    def __init__(self, *, scrub: bool = True) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s %(message)s")
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id, _ = _span_ids(record)
        attrs: Mapping[str, Any] = getattr(record, "mevobs", None) or {}
        parts = [f"{k}={v}" for k, v in attrs.items()]
        if trace_id:
            parts.insert(0, f"trace_id={trace_id}")
        if parts:
            line = f"{line} [{' '.join(parts)}]"
        return scrub_text(truncate(line, MAX_MESSAGE), limit=MAX_MESSAGE + 64) if self.scrub else line


PRIMITIVES = frozenset({str, bool, int, float})
"""Attribute value types an OpenTelemetry log record carries as they are (others become text)."""


class LogFields(NamedTuple):
    """A stdlib record as an OpenTelemetry log record carries it."""

    time_ns: int
    trace_id: int
    span_id: int
    body: str
    attributes: dict[str, Any]


def otel_fields(record: logging.LogRecord, scrub: bool = True) -> LogFields:
    """What an OTLP log record of ``record`` holds: the operation's own trace and span
    ids (even after its span ended), the message, and primitive attributes."""
    ids = getattr(record, "mevobs_ids", None)
    if ids is None:
        ctx = getattr(record, "otel_span_context", None)
        if ctx is None:
            ctx = trace.get_current_span().get_span_context()
        ids = (ctx.trace_id, ctx.span_id) if ctx.is_valid else (0, 0)
    message, attrs = _clean(record, scrub)  # a dict of its own: used as it is when all primitive
    if PRIMITIVES.issuperset(map(type, attrs.values())):
        out = attrs
    else:
        out = {k: v if isinstance(v, (str, bool, int, float)) else str(v) for k, v in attrs.items()}
    if record.exc_info and record.exc_info[0] is not None:
        out["exception.type"] = record.exc_info[0].__name__
        out["exception.stacktrace"] = exception_text(record, scrub) or ""
    return LogFields(int(record.created * 1e9), ids[0], ids[1], message, out)


class OtelLogBridge(logging.Handler):
    """Forward stdlib records to an OpenTelemetry ``LoggerProvider`` (logs API only).

    The operation's own span context is attached, so an operation's log record
    carries the trace and span id of its span even after the span ended.
    """

    def __init__(self, provider: LoggerProvider, *, scrub: bool = True) -> None:
        super().__init__()
        self._provider = provider
        self._scrub = scrub

    def emit(self, record: logging.LogRecord) -> None:
        try:
            otel_logger = self._provider.get_logger(record.name)
            fields = otel_fields(record, self._scrub)
            ctx = None
            if fields.trace_id:
                span_ctx = SpanContext(fields.trace_id, fields.span_id, False, TraceFlags(TraceFlags.SAMPLED))
                ctx = trace.set_span_in_context(NonRecordingSpan(span_ctx))
            otel_logger.emit(
                timestamp=fields.time_ns,
                context=ctx,
                severity_number=_SEVERITY.get(record.levelno, SeverityNumber.INFO),
                severity_text=record.levelname,
                body=fields.body,
                attributes=fields.attributes,
            )
        except Exception as exc:
            STATE.dropped("export_failed", f"log bridge: {type(exc).__name__}")


LOGGER.addFilter(BOUNDARY)
