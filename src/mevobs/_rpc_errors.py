"""Classification of failed RPC calls into a bounded ``error.type``.

Web3 libraries raise many exception classes whose messages carry the useful
part; providers signal rate limits as HTTP 429, JSON-RPC -32005 or prose.
The classifier maps them to :data:`mevobs.semconv.RPC_ERROR_TYPES` and falls
back to the exception class name.
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

_RATE_LIMIT_CODES = frozenset({429, -32005, -32029})
# Every repetition is bounded: these run on the caller's thread, and "exceeded .*quota"
# costs a scan to the end of the text for each "exceeded " in it.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "rate_limited",
        re.compile(
            r"(too many requests|rate.?limit|exceeded .{0,64}?(quota|limit|capacity)|"
            r"compute units? per second|\b429\b|request limit|throttl)",
            re.IGNORECASE,
        ),
    ),
    ("nonce_too_low", re.compile(r"nonce too low|nonce has already been used", re.IGNORECASE)),
    (
        "replacement_underpriced",
        re.compile(r"replacement (transaction )?underpriced", re.IGNORECASE),
    ),
    ("already_known", re.compile(r"already known|known transaction", re.IGNORECASE)),
    ("insufficient_funds", re.compile(r"insufficient funds", re.IGNORECASE)),
    ("execution_reverted", re.compile(r"execution reverted|\brevert", re.IGNORECASE)),
    ("timeout", re.compile(r"timed? ?out|deadline exceeded", re.IGNORECASE)),
    (
        "connection",
        re.compile(r"connection (refused|reset|error|aborted)|cannot connect|unreachable", re.IGNORECASE),
    ),
)


def _codes(exc: BaseException) -> list[int]:
    """HTTP status and JSON-RPC codes an exception carries, wherever libraries put them."""
    found: list[int] = []
    for attr in ("status", "status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            found.append(value)
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    if isinstance(status, int):
        found.append(status)
    for arg in exc.args:
        if isinstance(arg, dict):
            code: Any = arg.get("code")
            if isinstance(code, int):
                found.append(code)
            err = arg.get("error")
            if isinstance(err, dict) and isinstance(err.get("code"), int):
                found.append(err["code"])
    return found


MAX_CLASSIFIED = 4096
"""Characters of an error message the classifier reads: it runs on the caller's
thread, and what says "rate limit" or "nonce too low" comes first, not after a
40 KB revert payload."""


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ classifies by type alone
        return ""
    return text[:MAX_CLASSIFIED]


def classify_rpc_error(exc: BaseException) -> str:
    """Return the bounded ``error.type`` for a failed RPC call.

    Rate limiting is checked first, by code and then by message, because
    providers often signal it through generic HTTP or connection errors. Only
    the first :data:`MAX_CLASSIFIED` characters of the message are read.
    """
    if any(code in _RATE_LIMIT_CODES for code in _codes(exc)):
        return "rate_limited"
    text = f"{type(exc).__name__}: {_message(exc)}"
    rate_name, rate_pattern = _PATTERNS[0]
    if rate_pattern.search(text):
        return rate_name
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "connection"
    for name, pattern in _PATTERNS[1:]:
        if pattern.search(text):
            return name
    return type(exc).__name__
