"""Secret scrubbing for attribute values, exception messages and log text.

Private keys, mnemonics, API keys inside RPC URLs and auth headers never leave
the process: this module is applied to every span attribute, exception event
and log line mevobs writes.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

# Attribute keys whose values are secret whatever they look like.
_SECRET_KEY = re.compile(
    r"(priv(ate)?[_.\-]?key|mnemonic|seed[_.\-]?phrase|secret|passw(or)?d|api[_.\-]?key|"
    r"authori[sz]ation|auth[_.\-]?header|bearer|cookie|access[_.\-]?token|signing[_.\-]?key)",
    re.IGNORECASE,
)
# Keys whose 32-byte hex values are public identifiers (hashes, pool ids, topics).
_PUBLIC_HEX_KEY = re.compile(r"(hash|(^|[._])id$|topic|root)", re.IGNORECASE)

_HEX32 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
# user:password@ in a URL.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s]+@")
# Path segments that look like provider keys: /v2/<key>, /v3/<key>, or any long token.
_URL_KEY_SEGMENT = re.compile(
    r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s?#]+(?:/[^\s/?#]*)*?/)"
    r"(?P<key>(?=[A-Za-z0-9_\-]*[0-9])(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{16,})"
)
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;](?:api[_\-]?key|apikey|key|token|access[_\-]?token|auth|secret)=)[^&#\s]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<scheme>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<name>\b(?:priv(?:ate)?[_ \-]?key|secret|api[_\-]?key|password|mnemonic)\b\s*[:=]\s*)"
    r"(?P<q>['\"]?)[^\s'\",}]+",
    re.IGNORECASE,
)
_HEX32_NEAR_KEY = re.compile(
    r"(?P<name>(?:priv(?:ate)?|secret|signing|key)\W{0,20}?)(?:0x)?[0-9a-fA-F]{64}\b", re.IGNORECASE
)
_MNEMONIC = re.compile(r"^\s*([a-z]{3,8}\s+){11}([a-z]{3,8}\s+){0,12}[a-z]{3,8}\s*$")


def scrub_text(text: str) -> str:
    """Remove secrets embedded in free text (exception messages, URLs, log lines)."""
    if not text:
        return text
    if _MNEMONIC.match(text):
        return REDACTED
    out = _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", text)
    out = _URL_KEY_SEGMENT.sub(lambda m: m.group("prefix") + REDACTED, out)
    out = _QUERY_SECRET.sub(lambda m: m.group("name") + REDACTED, out)
    out = _BEARER.sub(lambda m: m.group("scheme") + REDACTED, out)
    out = _KEY_VALUE.sub(lambda m: m.group("name") + m.group("q") + REDACTED, out)
    return _HEX32_NEAR_KEY.sub(lambda m: m.group("name") + REDACTED, out)


def is_secret_key(key: str) -> bool:
    """Whether an attribute key names a secret (its value is always redacted)."""
    return _SECRET_KEY.search(key) is not None


def scrub_value(key: str, value: Any) -> Any:
    """Scrub one attribute value given its key; non-strings pass through unchanged."""
    if is_secret_key(key):
        return REDACTED
    if isinstance(value, str):
        if _HEX32.match(value) and not _PUBLIC_HEX_KEY.search(key):
            # A bare 32-byte hex string under a key that is not a hash or an id
            # is treated as a private key: a false positive only hides a value.
            return REDACTED
        return scrub_text(value)
    return value
