"""From a finished fast-path operation to what leaves the process: span fields and a log record.

This is the export boundary: on the fast path it runs on the worker thread, never
on the caller's, and every attribute a mevobs span, span event or log record
carries passes through :func:`clean_attributes` here (keys and values scrubbed,
lengths capped, each cut counted as ``truncated``). Static attributes and the span
name of an operation were cleaned once when its wrapper was built; only what a call
recorded is cleaned per record. The API path, spans of other instrumentations and
the ``mevobs`` logger's boundary filter use the same functions.
"""

from __future__ import annotations

import builtins
import itertools
import linecache
import logging
import traceback
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from mevobs import semconv
from mevobs._scrub import REDACTED, scrub_text, scrub_value_checked
from mevobs._scrub_keys import KEY_CACHE, KEY_SECRET, key_class
from mevobs._state import STATE

if TYPE_CHECKING:
    from mevobs._operation import Operation

# OTLP span kinds and status codes (the proto's numbers).
KIND_INTERNAL, KIND_CLIENT = 1, 3
STATUS_UNSET, STATUS_ERROR = 0, 2

MAX_MESSAGE = 8_192
"""Longest exception message exported (characters); longer ones are truncated."""
MAX_STACKTRACE = 16_384
"""Longest stack trace exported (characters): the innermost frames are kept."""
MAX_VALUE = 4_096
"""Longest attribute value exported (characters)."""
MAX_KEY = 256
"""Longest attribute key exported (characters)."""
LOGGER_NAME = semconv.INSTRUMENTATION_SCOPE

ERROR_OUTCOMES = {  # the outcomes whose span status is ERROR (and its message)
    semconv.OUTCOME_FAILURE: None,
    semconv.OUTCOME_REVERTED: None,
    semconv.OUTCOME_RATE_LIMITED: "rate_limited",
}


class SpanFields(NamedTuple):
    """One span, ready for an encoder or for an SDK ``ReadableSpan``."""

    name: str
    kind: int
    trace_id: int
    span_id: int
    parent_span_id: int
    parent_remote: bool
    start_ns: int
    end_ns: int
    static: Mapping[str, Any]
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]]
    status_code: int
    status_message: str
    spec: Any


def truncate(text: str, limit: int, *, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    if keep_end:
        return f"[{cut} chars truncated]…" + text[-limit:]
    return text[:limit] + f"…[{cut} chars truncated]"


def capped(text: str, limit: int, what: str, *, keep_end: bool = False) -> str:
    """:func:`truncate`, counting a cut as ``truncated`` on ``mev.telemetry.dropped``."""
    if len(text) <= limit:
        return text
    STATE.dropped("truncated", what)
    return truncate(text, limit, keep_end=keep_end)


def clean_value(key: str, value: Any, keep: frozenset[str]) -> Any:
    """One attribute value as it may leave the process: capped at :data:`MAX_VALUE`
    before any pattern runs, then scrubbed (lists element by element)."""
    cleaned, truncated = scrub_value_checked(key, value, keep=keep, limit=MAX_VALUE)
    if truncated:
        STATE.dropped("truncated", key)
    return cleaned


_CLEAN_KEYS: dict[str, str] = {}
_CLEAN_KEYS_SIZE = 4096


def clean_key(key: str) -> str:
    """An attribute key as it may leave the process.

    Keys are names from code, so a memo serves nearly every call; but a bot may
    build one from data (``set_attribute(url, ...)``), so a new key is capped and
    scrubbed like text. The memo holds short keys only and is emptied when full:
    bounded, whatever keys come.
    """
    cleaned = _CLEAN_KEYS.get(key)
    if cleaned is not None:
        return cleaned
    if len(key) > MAX_KEY:
        STATE.dropped("truncated", "attribute key")
        return scrub_text(truncate(key, MAX_KEY), limit=MAX_KEY + 64)
    cleaned = scrub_text(key, limit=MAX_KEY)
    if len(_CLEAN_KEYS) >= _CLEAN_KEYS_SIZE:
        _CLEAN_KEYS.clear()
    _CLEAN_KEYS[key] = cleaned
    return cleaned


def clean_attributes(attrs: Mapping[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The one scrubbing function of the export boundary: keys and values, every path."""
    if not STATE.scrub:
        return {k: truncate(v, MAX_VALUE) if isinstance(v, str) else v for k, v in attrs.items()}
    out: dict[str, Any] = {}
    keys, classes = _CLEAN_KEYS, KEY_CACHE
    for k, v in attrs.items():
        key = keys.get(k)
        if key is None:
            key = clean_key(k)
        t = type(v)
        if t is int or t is float or t is bool or v is None:
            # What clean_value does with a number, without its three calls: only a
            # secret key can change it (gas, block numbers, amounts: most attributes).
            cls = classes.get(k)
            if cls is None:
                cls = key_class(k)
            out[key] = REDACTED if cls == KEY_SECRET else v
        else:
            out[key] = clean_value(k, v, keep)
    return out


def recorded_attributes(op: Operation) -> dict[str, Any]:
    """What ``op`` recorded, cleaned (:func:`clean_attributes`) once per operation: its
    log record and its span both carry it, and a finished operation's attributes no
    longer change (its recorders refuse). The result is shared: copy before changing it."""
    if not op._attrs:
        return {}
    cleaned: dict[str, Any] | None = op._cleaned
    if cleaned is None:
        cleaned = op._cleaned = clean_attributes(op._attrs, op._known_hashes())
    return cleaned


def clean_text(text: str, keep: frozenset[str] = frozenset()) -> str:
    """A span name or status message as it may leave the process (capped at
    :data:`MAX_MESSAGE`, scrubbed): other instrumentations put error text there."""
    text = capped(text, MAX_MESSAGE, "span name or status")
    if not STATE.scrub:
        return text
    return scrub_text(text, keep=keep, limit=MAX_MESSAGE + 64)


def stack_trace(exc: BaseException, tb: TracebackType | None = None) -> str:
    """The traceback of ``exc`` and of its chain (causes, contexts, groups), capped at
    :data:`MAX_STACKTRACE` with the innermost frames kept (:func:`stack_text`).

    Each message in the chain is cut to :data:`MAX_MESSAGE` before the text is
    formatted: formatting a 3 MB message copies it several times, and cutting the
    result afterwards would keep only the end of the message, not a single frame.
    """
    try:
        text = stack_text(exc, tb)
    except Exception:  # a broken exception must not stop the export
        text = f"{type(exc).__qualname__}: <traceback unavailable>"
    return capped(text, MAX_STACKTRACE, "exception.stacktrace", keep_end=True)


def _cap_messages(formatted: traceback.TracebackException) -> None:
    # ``_str`` (the message) and ``__notes__`` are what TracebackException.format()
    # prints for each exception, in every version from 3.10 on; absent, nothing is cut.
    pending, seen = [formatted], set()
    while pending:
        te = pending.pop()
        if id(te) in seen:
            continue
        seen.add(id(te))
        message = getattr(te, "_str", None)
        if isinstance(message, str) and len(message) > MAX_MESSAGE:
            te._str = truncate(message, MAX_MESSAGE)  # type: ignore[attr-defined]
        notes = getattr(te, "__notes__", None)
        if isinstance(notes, list):
            short = [truncate(n, MAX_MESSAGE) if isinstance(n, str) else n for n in notes[:16]]
            te.__notes__ = short  # type: ignore[attr-defined]
        pending += [t for t in (te.__cause__, te.__context__) if t is not None]
        pending += getattr(te, "exceptions", None) or []


STACK_FRAMES = 64
"""Frames written per exception of a stack trace (the outermost, as ``traceback`` does)."""
_CHAIN = 16  # exceptions of a __cause__/__context__ chain (and notes) written, at most
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
_GROUP: Any = getattr(builtins, "BaseExceptionGroup", None)  # Python 3.11+


def stack_text(exc: BaseException, tb: TracebackType | None = None) -> str:
    """``exc`` with its stack trace and chained causes, in the layout of
    ``traceback.format_exception`` but without two things it does per exception:
    ``linecache.checkcache`` (an ``os.stat`` of every file in the stack, each one
    releasing the GIL, so a worker formatting failures loses its turn to busy callers
    once per file) and, on Python 3.11, the ``^^^`` marker lines, computed with
    ``ast.parse``, which is not safe while another thread parses (CPython gh-106905:
    the host's own ``ast.parse`` fails with SystemError). Source lines come from the
    linecache (a file is read once). ``tb`` overrides the outermost exception's
    traceback (a log record's ``exc_info``). Exception groups keep the stdlib's layout.
    """
    if _GROUP is not None and isinstance(exc, _GROUP):
        formatted = traceback.TracebackException(type(exc), exc, tb or exc.__traceback__, limit=STACK_FRAMES)
        _cap_messages(formatted)
        return "".join(formatted.format())
    chain: list[tuple[BaseException, TracebackType | None]] = [(exc, tb or exc.__traceback__)]
    relations: list[str] = []  # relations[i]: how chain[i] follows from chain[i + 1]
    seen = {id(exc)}
    current = exc
    while len(chain) < _CHAIN:
        if current.__cause__ is not None:
            following, relation = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            following, relation = current.__context__, _CONTEXT
        else:
            break
        if id(following) in seen:
            break
        seen.add(id(following))
        chain.append((following, following.__traceback__))
        relations.append(relation)
        current = following
    parts: list[str] = []
    for index in range(len(chain) - 1, -1, -1):
        error, trace = chain[index]
        if trace is not None:
            parts.append("Traceback (most recent call last):\n")
            for frame, lineno in itertools.islice(traceback.walk_tb(trace), STACK_FRAMES):
                code = frame.f_code
                parts.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}\n')
                line = linecache.getline(code.co_filename, lineno or 0, frame.f_globals).strip()
                if line:
                    parts.append(f"    {line}\n")
        parts.extend(_exception_only(error))
        if index:
            parts.append(relations[index - 1])
    return "".join(parts)


def _exception_only(error: BaseException) -> list[str]:
    """The last line(s) of a trace, as ``traceback.format_exception_only`` writes them;
    that function walks the whole chain again (file stats included) for one line."""
    if isinstance(error, SyntaxError):  # its own layout, with the offending line; rare
        return [truncate(line, MAX_MESSAGE) for line in traceback.format_exception_only(type(error), error)]
    kind = type(error)
    name, module = kind.__qualname__, kind.__module__
    if module not in ("__main__", "builtins"):
        name = f"{module if isinstance(module, str) else '<unknown>'}.{name}"
    text = truncate(_safe_str(error, "exception"), MAX_MESSAGE)
    lines = [f"{name}: {text}\n" if text else f"{name}\n"]
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, Sequence) and not isinstance(notes, (str, bytes)):
        for note in itertools.islice(notes, _CHAIN):
            lines += [f"{line}\n" for line in truncate(_safe_str(note, "note"), MAX_MESSAGE).split("\n")]
    elif notes is not None:
        try:
            lines.append(truncate(repr(notes), MAX_MESSAGE))
        except Exception:
            lines.append("<__notes__ repr() failed>")
    return lines


def _safe_str(value: object, what: str) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{what} str() failed>"


def exception_event(
    exc: BaseException, time_ns: int, keep: frozenset[str] = frozenset()
) -> tuple[str, int, dict[str, Any]]:
    """The OpenTelemetry ``exception`` event: type, message and stack trace, capped
    before scrubbing (a 3 MB revert string costs the same as a short one)."""
    try:
        message = capped(str(exc), MAX_MESSAGE, "exception.message")
    except Exception:  # a broken __str__ must not stop the export
        message = f"<unprintable {type(exc).__name__}>"
    stack = stack_trace(exc)
    if STATE.scrub:
        # Both are capped above; the scrubber's own cap must not cut them again.
        message = scrub_text(message, keep=keep, limit=MAX_MESSAGE + 64)
        stack = scrub_text(stack, keep=keep, limit=MAX_STACKTRACE + 64)
    return (
        "exception",
        time_ns,
        {
            "exception.type": type(exc).__qualname__,
            "exception.message": message,
            "exception.stacktrace": stack,
        },
    )


def span_fields(op: Operation) -> SpanFields:
    """The span of a finished fast-path operation."""
    spec = op._spec
    assert spec is not None
    end_ns = op._wall_ns + op._duration_ns
    keep = op._known_hashes()
    attrs = dict(recorded_attributes(op))
    outcome = op._outcome or semconv.OUTCOME_SUCCESS
    attrs[semconv.ATTR_OUTCOME] = outcome
    error_type = op._error_type
    if error_type is not None:
        # Usually a class name, but a record_error_if verdict is the bot's own text.
        error_type = attrs[semconv.ATTR_ERROR_TYPE] = clean_text(error_type, keep)
    events: list[tuple[str, int, dict[str, Any]]] = []
    for name, time_ns, event_attrs in op._events or ():
        events.append((name, time_ns, clean_attributes(event_attrs, keep)))
    if op._exc is not None:
        events.append(exception_event(op._exc, end_ns, keep))
    status, message = STATUS_UNSET, ""
    if outcome in ERROR_OUTCOMES:
        status, message = STATUS_ERROR, ERROR_OUTCOMES[outcome] or error_type or ""
    return SpanFields(
        spec.span_name,
        KIND_CLIENT if spec.is_rpc else KIND_INTERNAL,
        op._trace_id,
        op._span_id,
        op._parent_span_id,
        op._parent_remote,
        op._wall_ns,
        end_ns,
        spec.span_attrs,
        attrs,
        events,
        status,
        message,
        spec,
    )


class OperationLog(NamedTuple):
    """The one log record a finished operation leaves, before any stdlib record is made.

    Outputs that can render it directly (JSON lines, OTLP) do so when nothing else
    would see the stdlib record (see ``FastPipeline``); otherwise
    :func:`operation_record` makes that record from it, field for field.
    """

    level: int
    args: tuple[str, str, float]
    message: str
    created: float
    attributes: dict[str, Any]
    dynamic: dict[str, Any]
    trace_id: int
    span_id: int
    spec: Any
    exc: BaseException | None


OPERATION_FORMAT = "%s %s in %.2f ms"


def operation_log(op: Operation, level: int) -> OperationLog:
    """The log record of a finished operation (built on the worker). Its attributes are
    the static ones, then what this call recorded, its labels and its duration;
    ``dynamic`` holds the same without the static ones."""
    spec = op._spec
    assert spec is not None
    outcome = op._outcome or semconv.OUTCOME_SUCCESS
    ms = op._duration_ns / 1e6
    # Static attributes were cleaned when the wrapper was built, labels are bounded:
    # only what this call recorded is cleaned, and the formatters need not re-scrub.
    dynamic = {**recorded_attributes(op), **(op._metric_attrs or {})}
    dynamic[semconv.ATTR_DURATION_MS] = round(ms, 3)
    args = (spec.span_name, outcome, ms)
    return OperationLog(
        level,
        args,
        OPERATION_FORMAT % args,
        (op._wall_ns + op._duration_ns) / 1e9,
        {**spec.span_attrs, **dynamic},  # the same keys, order and values as merging all four
        dynamic,
        op._trace_id,
        op._span_id,
        spec,
        op._exc if outcome == semconv.OUTCOME_FAILURE else None,
    )


def operation_record(entry: OperationLog) -> logging.LogRecord:
    """The stdlib record of an operation's log entry, for the ``mevobs`` logger's handlers."""
    exc = entry.exc
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    where = entry.spec.where
    record = logging.LogRecord(
        LOGGER_NAME, entry.level, where[0], where[1], OPERATION_FORMAT, entry.args, exc_info, where[2]
    )
    record.created = entry.created
    record.msecs = (record.created - int(record.created)) * 1000
    record.mevobs = entry.attributes
    record.trace_id = format(entry.trace_id, "032x")
    record.span_id = format(entry.span_id, "016x")
    record.mevobs_ids = (entry.trace_id, entry.span_id)
    record.mevobs_clean = True
    return record


def log_record(op: Operation, level: int) -> logging.LogRecord:
    """The one stdlib log record a finished operation leaves (built on the worker)."""
    return operation_record(operation_log(op, level))
