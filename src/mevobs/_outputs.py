"""Outputs of the fast pipeline: SDK span and log exporters, and JSON lines.

The worker converts records and hands them to an output; an output batches them
and returns send jobs for the sender thread. Outputs here serve exporters that
take SDK objects (console, in-memory, any ``SpanExporter`` a user passes); the
OTLP outputs in ``_otlp_output`` encode by hand instead. JSON lines go through a
writer thread with a bounded queue, so a stalled stderr or a slow disk makes
lines drop (counted), never a call wait.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from mevobs._records import (
    KIND_CLIENT,
    STATUS_ERROR,
    OperationLog,
    SpanFields,
    clean_attributes,
    clean_text,
    span_fields,
)
from mevobs._state import STATE

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
SEVERITY = {
    logging.DEBUG: SeverityNumber.DEBUG,
    logging.INFO: SeverityNumber.INFO,
    logging.WARNING: SeverityNumber.WARN,
    logging.ERROR: SeverityNumber.ERROR,
    logging.CRITICAL: SeverityNumber.FATAL,
}


def readable_span(fields: SpanFields, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    """An SDK span with exactly what the encoder would send for ``fields``."""
    parent = (
        SpanContext(fields.trace_id, fields.parent_span_id, fields.parent_remote, _SAMPLED)
        if fields.parent_span_id
        else None
    )
    status = (
        Status(StatusCode.ERROR, fields.status_message or None)
        if fields.status_code == STATUS_ERROR
        else Status(StatusCode.UNSET)
    )
    return ReadableSpan(
        name=fields.name,
        context=SpanContext(fields.trace_id, fields.span_id, False, _SAMPLED),
        parent=parent,
        resource=resource,
        attributes={**fields.static, **fields.attributes},
        events=[Event(name, attrs, timestamp=time_ns) for name, time_ns, attrs in fields.events],
        kind=SpanKind.CLIENT if fields.kind == KIND_CLIENT else SpanKind.INTERNAL,
        status=status,
        start_time=fields.start_ns,
        end_time=fields.end_ns,
        instrumentation_scope=scope,
    )


def scrubbed_span(span: ReadableSpan, resource: Resource | None = None) -> ReadableSpan:
    """A copy of an SDK span whose name, status message, attributes and event
    attributes passed the export boundary (``clean_text``, ``clean_attributes``):
    spans of other instrumentations (db.statement, a database error quoting the
    statement in the status) and every span of the API path. ``resource`` replaces
    the span's own (the fast pipeline's, which a forked child renews)."""
    status = span.status
    if status.description:
        status = Status(status.status_code, clean_text(status.description))
    return ReadableSpan(
        name=clean_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=resource if resource is not None else span.resource,
        attributes=clean_attributes(span.attributes or {}),
        events=[
            Event(e.name, clean_attributes(e.attributes or {}), timestamp=e.timestamp) for e in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ReadableSpanOutput:
    """Spans for an SDK ``SpanExporter`` (console, in-memory, a user's own)."""

    def __init__(self, exporter: SpanExporter, resource: Resource, scope: InstrumentationScope) -> None:
        self.exporter = exporter
        self.resource = resource
        self.scope = scope
        self._batch: list[ReadableSpan] = []

    def add(self, span: SpanFields) -> None:
        self._batch.append(readable_span(span, self.resource, self.scope))

    def add_operation(self, op: Any) -> None:
        self.add(span_fields(op))

    def add_foreign(self, span: Any) -> None:
        # One process, one resource: the SDK gives a forked child's tracer provider a
        # resource of its own making, not the child's (see _pipeline.child_resource).
        self._batch.append(scrubbed_span(span, self.resource))

    def pending(self) -> int:
        return len(self._batch)

    def take(self) -> Callable[[], bool] | None:
        if not self._batch:
            return None
        batch, self._batch = self._batch, []
        exporter = self.exporter
        return lambda: exporter.export(batch) == SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.exporter.shutdown()


class ReadableLogOutput:
    """Log records for an SDK ``LogRecordExporter`` (in-memory, console, a user's own)."""

    def __init__(self, exporter: LogRecordExporter, resource: Resource, scope: InstrumentationScope) -> None:
        self.exporter = exporter
        self.resource = resource
        self.scope = scope
        self._batch: list[ReadableLogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        from opentelemetry._logs import LogRecord

        from mevobs._logs import otel_fields

        fields = otel_fields(record)
        self._batch.append(
            ReadableLogRecord(
                LogRecord(
                    timestamp=fields.time_ns,
                    observed_timestamp=fields.time_ns,
                    trace_id=fields.trace_id,
                    span_id=fields.span_id,
                    trace_flags=_SAMPLED if fields.trace_id else None,
                    severity_text=record.levelname,
                    severity_number=SEVERITY.get(record.levelno, SeverityNumber.INFO),
                    body=fields.body,
                    attributes=fields.attributes,
                ),
                resource=self.resource,
                instrumentation_scope=self.scope,
            )
        )

    def pending(self) -> int:
        return len(self._batch)

    def take(self) -> Callable[[], bool] | None:
        if not self._batch:
            return None
        batch, self._batch = self._batch, []
        exporter = self.exporter
        return lambda: exporter.export(batch).name == "SUCCESS"

    def shutdown(self) -> None:
        self.exporter.shutdown()  # type: ignore[no-untyped-call]


class LineWriter:
    """Writes lines to a stream or file on a thread of its own, from a bounded queue.

    ``write`` never blocks: past ``max_lines`` waiting, a line is dropped and
    counted (``log_queue_full``). The target is a stream (``write``/``flush``) or a
    rotating log file (``write_lines``/``close``, see ``_logfile``).
    """

    def __init__(self, target: Any, max_lines: int = 8192) -> None:
        self._target = target
        self._lines: collections.deque[str] = collections.deque()
        self._max = max_lines
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        if len(self._lines) >= self._max:
            STATE.dropped("log_queue_full")
            return
        self._lines.append(line)
        # Event.set and Event.clear each take the event's lock: per line, that was a
        # fifth of formatting one. The writer clears ``_wake`` before it looks at the
        # queue, and an idle writer has ``_idle`` set, so a flag already in the wanted
        # state needs nothing.
        if self._idle.is_set():
            self._idle.clear()
        if self._thread is None:
            self._start()
        if not self._wake.is_set():
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mevobs-log-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        lines = self._lines
        target = self._target
        batch_sink = getattr(target, "write_lines", None)
        while True:
            if not lines:
                self._idle.set()
                if lines:  # a line came between the look and the flag: not idle after all
                    self._idle.clear()
                    continue
                if self._stop:
                    return
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            chunk: list[str] = []
            while lines and len(chunk) < 256:
                chunk.append(lines.popleft())
            try:
                if batch_sink is not None:
                    batch_sink(chunk)  # counts its own failures
                else:
                    target.write("\n".join(chunk) + "\n")
                    target.flush()
            except Exception:
                STATE.dropped("export_failed", "log writer", len(chunk))

    def flush(self, timeout: float) -> bool:
        self._wake.set()
        return self._idle.wait(timeout)

    def close(self, timeout: float = 1.0) -> None:
        """Write what is queued and close the target, within ``timeout``. A target that
        does not take the lines (a pipe nobody reads) is left to the daemon writer: a log
        file is closed only once its writer is idle, as the writer holds its lock."""
        deadline = time.monotonic() + timeout
        drained = self.flush(timeout)
        self._stop = True
        self._wake.set()
        close = getattr(self._target, "close", None)
        if drained and close is not None and getattr(self._target, "write_lines", None) is not None:
            close(max(0.0, deadline - time.monotonic()))  # a log file: let it finish compressing

    def after_fork_in_child(self) -> None:
        """A forked child: the parent's lines are the parent's, its writer thread is gone."""
        self._lines.clear()
        self._thread = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()


def log_target(settings: Any) -> Any:
    """Where formatted log lines go: stdout, stderr, or a rotating file (``log_path``)."""
    if settings.log_destination == "file":
        from mevobs._logfile import LogFile

        return LogFile(
            settings.log_path,
            max_bytes=settings.log_max_bytes,
            backups=settings.log_backups,
            max_age_days=settings.log_max_age_days,
            rotate_interval=settings.log_rotate_interval,
        )
    return sys.stdout if settings.log_destination == "stdout" else sys.stderr


class FormattedLogOutput:
    """Log records as formatted lines (JSON or text) through a :class:`LineWriter`."""

    def __init__(self, formatter: logging.Formatter, writer: LineWriter) -> None:
        from mevobs._logs import JsonFormatter

        self.formatter = formatter
        self.writer = writer
        # Only mevobs's own JSON formatter is known to write, for an operation's entry,
        # the line it writes for that entry's record; any other formatter gets the record.
        self._format_operation = formatter.format_operation if type(formatter) is JsonFormatter else None

    def emit(self, record: logging.LogRecord) -> None:
        self.writer.write(self.formatter.format(record))

    def emit_operation(self, entry: OperationLog) -> bool:
        """Write the line of an operation's log entry; False if it needs the stdlib record."""
        if self._format_operation is None:
            return False
        self.writer.write(self._format_operation(entry))
        return True

    def pending(self) -> int:
        return 0

    def take(self) -> Callable[[], bool] | None:
        return None

    def after_fork_in_child(self) -> None:
        self.writer.after_fork_in_child()

    def shutdown(self) -> None:
        self.writer.close()
