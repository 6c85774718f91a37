"""Observations outside any operation: pool liquidity, price deviation, security events.

These are facts a bot learns while watching the market or itself, not timed
calls, so they are plain functions. Like every recorder they accept bad values
without raising: a bad value is counted under ``mev.telemetry.dropped``.
"""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from typing import Any

from opentelemetry import trace

from mevobs import semconv
from mevobs._operation import current
from mevobs._protocols import FinishedOperation
from mevobs._state import LOGGER, STATE, notify_security_listeners

_SECURITY_KINDS = frozenset(semconv.SECURITY_KINDS)
_POOL_REQUIRED = (semconv.ATTR_EXCHANGE, semconv.ATTR_POOL)


def _number(field: str, value: Any, *, allow_negative: bool) -> float | None:
    """A finite float from an int, float or Decimal, else ``None`` (counted as dropped)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        STATE.dropped("invalid_value", f"{field}={type(value).__name__}")
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        STATE.dropped("invalid_value", f"{field} out of range")
        return None
    if not math.isfinite(number) or (number < 0 and not allow_negative):
        STATE.dropped("invalid_value", f"{field}={value!r}")
        return None
    return number


def _labels(labels: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, str] | None:
    """Bounded metric attributes: non-empty strings through the cardinality cap.

    ``None`` leaves an optional label out; a required one must be given.
    """
    out: dict[str, str] = {}
    for key, value in labels.items():
        if value is None and key not in required:
            continue
        if not isinstance(value, str) or not value:
            STATE.dropped("invalid_attribute", f"{key}={type(value).__name__}")
            return None
        out[key] = STATE.limiter.limit(key, value)
    return out


def _set_pool_gauge(
    spec: semconv.MetricSpec, field: str, raw: Any, pool: Any, exchange: Any, chain: Any, *, signed: bool
) -> None:
    """Set the per-pool gauge ``spec`` to ``|raw|`` (``signed``: a negative input is
    valid, only its magnitude is kept); never raises."""
    try:
        if not (STATE.live or STATE.check_live()):
            return
        value = _number(field, raw, allow_negative=signed)
        labels = _labels(
            {semconv.ATTR_EXCHANGE: exchange, semconv.ATTR_CHAIN: chain, semconv.ATTR_POOL: pool},
            _POOL_REQUIRED,
        )
        if value is not None and labels is not None:
            STATE.instruments.gauge(spec).set(abs(value), labels)
    except Exception as exc:  # a broken meter must not reach the bot
        STATE.dropped("recorder_error", f"{spec.name}: {type(exc).__name__}")


def record_pool_liquidity(pool: str, usd: Any, *, exchange: str, chain: str | None = None) -> None:
    """Report a watched pool's liquidity (TVL) in USD: the ``mev.pool.liquidity`` gauge.

    Feeds the low-liquidity warning alert. ``pool`` is a name from a bounded set
    (the pools the bot trades), never a per-trade value.
    """
    _set_pool_gauge(semconv.POOL_LIQUIDITY, "usd", usd, pool, exchange, chain, signed=False)


def record_price_deviation(pool: str, bp: Any, *, exchange: str, chain: str | None = None) -> None:
    """Report how far a pool's price is from the bot's reference price, in basis points
    (magnitude): the ``mev.price.deviation`` gauge, which feeds the price-deviation alert."""
    _set_pool_gauge(semconv.PRICE_DEVIATION, "bp", bp, pool, exchange, chain, signed=True)


def record_exposure(token: str, amount: Any, *, chain: str | None = None) -> None:
    """Record the bot's current inventory of ``token`` in whole tokens (a Decimal or int
    keeps it exact for the audit trail): the ``mev.exposure`` gauge, the risk exposure
    of the compliance report. Negative amounts (short positions, loans) are allowed."""
    try:
        exact = amount if isinstance(amount, Decimal) else None
        value = _number("amount", amount, allow_negative=True)
        labels = _labels({semconv.ATTR_TOKEN: token, semconv.ATTR_CHAIN: chain}, (semconv.ATTR_TOKEN,))
        if value is None or labels is None:
            return
        if STATE.live or STATE.check_live():
            STATE.instruments.gauge(semconv.EXPOSURE).set(value, labels)
        for hook in STATE.exposure_hooks:
            hook(token, exact if exact is not None else Decimal(str(amount)), chain)
    except Exception as exc:
        STATE.dropped("recorder_error", f"record_exposure: {type(exc).__name__}")


def record_security_event(
    kind: str,
    message: str,
    *,
    critical: bool = False,
    operation: str | None = None,
    exchange: str | None = None,
    chain: str | None = None,
    **details: Any,
) -> None:
    """Record a security anomaly: the ``mev.security.events`` counter, an event on the
    current span and a log record at WARNING (CRITICAL when ``critical``); circuit
    breakers with ``kind`` in ``trip_on_security`` trip.

    ``kind`` is one of :data:`mevobs.semconv.SECURITY_KINDS` (``manual`` for a bot's
    own checks). ``details`` (addresses, amounts) go on the span event and the log,
    never on the metric; secrets among them are scrubbed.
    """
    context = {semconv.ATTR_OPERATION: operation, semconv.ATTR_EXCHANGE: exchange, semconv.ATTR_CHAIN: chain}
    op = current()
    emit_security_event(kind, message, critical, context, details, op, stacklevel=3)


def emit_security_event(
    kind: str,
    message: str,
    critical: bool,
    context: dict[str, Any],
    details: dict[str, Any],
    op: FinishedOperation | None,
    *,
    stacklevel: int = 2,
) -> None:
    """What :func:`record_security_event` does, with the event on ``op`` (detectors
    pass the operation they judged) or else on the current span; never raises."""
    try:
        if kind not in _SECURITY_KINDS and kind not in STATE.extra_security_kinds:
            STATE.dropped("invalid_attribute", f"{semconv.ATTR_SECURITY_KIND}={kind!r}")
            return
        attrs: dict[str, Any] = {semconv.ATTR_SECURITY_KIND: kind}
        attrs.update({k: v for k, v in context.items() if isinstance(v, str) and v})
        # Scrubbed at the export boundary, like every attribute (a str() of an object too).
        for key, value in details.items():
            if isinstance(value, (str, bool, int, float)):
                attrs[key] = value
            elif value is not None:
                attrs[key] = str(value)
        if STATE.live or STATE.check_live():
            labels = _labels({semconv.ATTR_SECURITY_KIND: kind, **context})
            if labels is not None:
                STATE.instruments.counter(semconv.SECURITY_EVENTS).add(1, labels)
            if op is not None:
                op.add_event(semconv.EVENT_SECURITY, attrs)
            else:
                span = trace.get_current_span()
                if span.is_recording():
                    span.add_event(semconv.EVENT_SECURITY, attrs)
        notify_security_listeners(kind)
        level = logging.CRITICAL if critical else logging.WARNING
        if LOGGER.isEnabledFor(level):
            LOGGER.log(
                level, "security: %s: %s", kind, message, extra={"mevobs": attrs}, stacklevel=stacklevel
            )
    except Exception as exc:
        STATE.dropped("recorder_error", f"security event: {type(exc).__name__}")


_DB_OPERATIONS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "create",
        "drop",
        "alter",
        "begin",
        "commit",
        "rollback",
        "pragma",
        "with",
        "replace",
        "upsert",
        "merge",
        "truncate",
        "explain",
        "vacuum",
        "call",
    }
)


def record_db_span(span: Any) -> None:
    """``mev.db.duration`` from a database span of a contrib instrumentation (sqlite3,
    asyncpg...): its system and operation (a fixed set, else ``other``), never its
    statement. Called by the pipelines' span processors; never raises."""
    try:
        attrs = span.attributes or {}
        system = attrs.get(semconv.ATTR_DB_SYSTEM) or attrs.get("db.system.name")
        if not isinstance(system, str) or span.end_time is None or span.start_time is None:
            return
        word = str(span.name).split(" ", 1)[0].lower()
        labels = {
            semconv.ATTR_DB_SYSTEM: STATE.limiter.limit(semconv.ATTR_DB_SYSTEM, system),
            semconv.ATTR_DB_OPERATION: word if word in _DB_OPERATIONS else semconv.OTHER_VALUE,
        }
        STATE.instruments.histogram(semconv.DB_DURATION).record(
            (span.end_time - span.start_time) / 1e9, labels
        )
    except Exception as exc:
        STATE.dropped("recorder_error", f"db span: {type(exc).__name__}")
