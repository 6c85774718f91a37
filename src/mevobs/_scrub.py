"""Secret scrubbing for attribute values, exception messages and log text.

Private keys, mnemonics, API keys inside RPC URLs and auth headers never leave
the process: this module is applied to every span attribute, exception event
and log line mevobs writes. Secrets are found by their shape (a 64-hex token,
a run of BIP-39 words, a JWT, a provider key in a URL, a known token prefix, a
long random-looking token) as well as by the name they are given (``password=``,
``"apiKey": "..."``, ``Authorization: ...``); the naming policy is in
``_scrub_keys``.

It runs on the caller's thread, so its cost must not depend on what a node or
an attacker puts in an error message: text longer than a limit is cut before
any pattern runs, and every pattern is linear (see "Why the patterns are
linear" below). Pure functions over the standard library; the only state is
two caches of pure results (the word list and the classification of keys).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from importlib import resources
from typing import Any

from mevobs._scrub_keys import (
    KEY_CACHE,
    KEY_PUBLIC_HEX,
    KEY_SECRET,
    is_secret_key,
    key_class,
    pair_is_secret,
)

REDACTED = "[REDACTED]"
DEFAULT_LIMIT = 8192
"""Characters of one text or value that are scrubbed and kept; the rest is cut first."""

_NO_KEEP: frozenset[str] = frozenset()


def _ci(*words: str) -> str:
    """Case-insensitive alternation as character classes: ``(?i:...)`` branches
    fold case char by char and cost several times more in ``re``."""
    return (
        "(?:"
        + "|".join("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in w) for w in words)
        + ")"
    )


# --------------------------------------------------------------------------
# Why the patterns are linear
#
# Python's ``re`` backtracks, so a pattern is safe only when no start position
# can cost more than a bounded amount of work, or when the work is consumed by
# the match. Every pattern below is one of:
#   * anchored to the start of a run by a negative lookbehind on the run's own
#     class, so only run starts are tried and each run is scanned a bounded
#     number of times;
#   * made of bounded repetitions ({m,n}) from its start;
#   * a literal anchor followed by a greedy class run that cannot fail
#     (nothing after it, or an optional closing quote), so a started match
#     always succeeds and consumes what it scanned.
# Repetitions nest only where the inner class excludes the separator that
# ends it, so each input has one parse. tests/test_scrub.py times adversarial
# inputs of each shape; docs/security.md has the cost per byte.
# --------------------------------------------------------------------------

# Between mnemonic words: spaces, list punctuation, numbering, and the escaped
# newline or tab of a repr ("phrase:\\nword\\nword" once the text went through repr(),
# more backslashes for a repr inside a repr).
_SEP = r"(?:[\s,;:|'\"().\-0-9]|\\{1,8}[nrt])"
_MNEMONIC_RUN = re.compile(
    r"(?:(?<![A-Za-z0-9\\])|(?<=\\[nrt]))"  # a run starts at a word, also right after "\n"
    rf"[A-Za-z]{{3,8}}(?:{_SEP}{{1,8}}[A-Za-z]{{3,8}}(?![A-Za-z0-9])){{11,}}"
)
_WORD = re.compile(r"(?<!\\)[A-Za-z]+")  # the "n" of an escaped newline starts no word
# Reversed text: separators then a word, read backwards from a cut (the lazy word
# stops before the "n" of a reversed "\n").
_REV_WORD = re.compile(
    r"(?:[\s,;:|'\"().\-0-9]|[nrt]\\{1,8}){0,8}([A-Za-z]{3,8}?)(?:(?![A-Za-z0-9])|(?=[nrt]\\))"
)

# A URL or a path, from its first "/" ("//" for a URL with authority) to the
# end of the token; the scheme or host before it holds no secret.
_URL = re.compile(r"/[^\s'\"<>()\[\]{}|\\^`,]*")
# A whole path segment long enough to be a key.
_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_\-]{16,}(?=/|\Z)")
_TOKEN_FULL = re.compile(r"[A-Za-z0-9_\-]+")
# "user:password@host" without a scheme (log lines, DSN fragments); the password
# stops at ":" so that each character is scanned by one attempt at most.
_BARE_USERINFO = re.compile(
    r"(?<![A-Za-z0-9._~%+\-])[A-Za-z0-9._~%+\-]{0,64}:(?P<pw>[^\s@/:'\"<>()\[\]{},;]{1,128})@(?=[A-Za-z0-9\[])"
)
_HEX_FULL = re.compile(r"(?:0[xX])?[0-9a-fA-F]+")
_QUERY_SPLIT = re.compile(r"([&;])")
_URL_SECRET_PARAMS = frozenset(
    {
        "key", "sig", "signature", "code", "pass", "x-amz-signature", "x-amz-credential",
        "x-amz-security-token", "x-goog-signature", "x-goog-credential",
    }
)  # fmt: skip

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s]*")
_JWT = re.compile(r"eyJ(?<![A-Za-z0-9_\-]eyJ)[A-Za-z0-9_\-]{3,}(?:\.[A-Za-z0-9_\-]*){1,4}")
# Tokens whose issuer gave them a recognisable prefix.
_PREFIXED = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"|gh[pousr]_[A-Za-z0-9]{30,255}"
    r"|github_pat_[A-Za-z0-9_]{20,255}"
    r"|glpat-[A-Za-z0-9_\-]{20,255}"
    r"|xox[abposer]-[A-Za-z0-9\-]{8,255}"
    r"|xapp-[A-Za-z0-9\-]{8,255}"
    r"|AIza[A-Za-z0-9_\-]{30,40}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,255}"
    r"|sk-[A-Za-z0-9_\-]{20,255}"
    r"|npm_[A-Za-z0-9]{30,255}"
    r"|hf_[A-Za-z0-9]{30,255}"
    r"|(?:bot)?[0-9]{6,12}:AA[A-Za-z0-9_\-]{30,40}"  # Telegram bot token, also in /bot<token>/ URLs
    r"|[xt]prv[1-9A-HJ-NP-Za-km-z]{100,112}"  # BIP-32 extended private key
    r")"
)
# A name followed by ":", "=", "=>" or "->". Two bounded lookaheads keep the
# per-name cost small: the separator must follow the name, and a word that can
# mean a secret must start within its first 40 characters; ``pair_is_secret``
# then decides.
_STEMS = (
    "pass", "pwd", "priv", "secret", "seed", "mnemonic", "auth", "bearer", "cookie", "cred", "jwt", "key",
    "token", "prv", "wif", "otp",
)  # fmt: skip
_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.\-])"
    r"(?=[A-Za-z0-9_.\-]{1,64}(?:\\{0,8}[\"']{1,8})?[ \t]{0,4}(?::|=|->))"
    r"(?=[A-Za-z0-9_.\-]{0,40}?(?=["
    + "".join(sorted({c for w in _STEMS for c in (w[0], w[0].upper())}))
    + r"])"
    + _ci(*_STEMS)
    + r")"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-]{0,63})"
    r"(?P<quote>\\{0,8}[\"']{1,8})?"
    r"(?P<sep>[ \t]{0,4}(?::|=>?|->)[ \t]{0,4})"
    r"(?!\[REDACTED\])"  # already redacted by the URL pass
)
# "private key: ...": a qualifier word before a bare name.
_QUALIFIER = re.compile(
    _ci("private", "api", "secret", "access", "auth", "signing", "seed", "recovery") + r"[ ]\Z"
)
# The value after a secret name: a quoted string (to its closing quote or the end
# of the line), or an optional auth scheme and one token.
_VALUE = re.compile(
    # SQL doubles the quotes of a quoted string inside a literal or an identifier, again
    # for each level of nesting (not an empty string followed by more text: '' then ,).
    r"\\{0,8}\"{2,8}(?=[^\"\s,;)}\]])[^\"\r\n]*\"{0,8}"
    r"|'{2,8}(?=[^'\s,;)}\]])[^'\r\n]*'{0,8}"
    # A quoted string, its quotes escaped once or more (JSON in a repr, in a repr...).
    r"|\\{0,8}\"(?:[^\"\\\r\n]|\\.)*\"?"
    r"|\\{0,8}'(?:[^'\\\r\n]|\\.)*'?"
    r"|(?:"
    + _ci("bearer", "basic", "digest", "token", "bot")
    + r"[ \t]{1,4})?(?:[^\s'\",;&#()\[\]{}<>]|\[REDACTED\])*"
)
_REST_OF_LINE = re.compile(r"[^\r\n]*")
_AUTH_SCHEME = re.compile(
    r"(?<![A-Za-z0-9])(?P<scheme>"
    + _ci("bearer", "basic", "digest")
    + r"[ \t]{1,4})(?P<token>[A-Za-z0-9._~+/=\-]{6,})"
)
_HEX64 = re.compile(r"(?<![0-9A-Fa-f])(?:0[xX])?[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{24,}={0,2}")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_HEXISH_FULL = re.compile(r"(?:0[xX])?[0-9a-fA-F_\-/]+")

# What ends a token when text is cut (what a key, a URL or a JWT never contains).
_TAIL_TOKEN = re.compile(r"[^\s'\"()\[\]{}<>,;]*")
_BREAKS = frozenset("'\"()[]{}<>,;")


@functools.cache
def bip39_words() -> frozenset[str]:
    """The 2048 English BIP-39 words, loaded once on first use.

    ``_bip39_english.txt`` is the BIP-39 English list (bitcoin/bips,
    bip-0039/english.txt), taken unchanged from the ``mnemonic`` package 0.21 on
    PyPI (Trezor, MIT licence).
    """
    text = resources.files("mevobs").joinpath("_bip39_english.txt").read_text(encoding="ascii")
    return frozenset(text.split())


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def scrub_text(text: str, *, keep: Collection[str] = _NO_KEEP, limit: int = DEFAULT_LIMIT) -> str:
    """Remove secrets embedded in free text (exception messages, URLs, log lines).

    ``keep`` lists 64-hex values the caller knows are public (the operation's own
    transaction and block hashes); any other 64-hex token is redacted, since a
    private key and a hash look alike. Text longer than ``limit`` characters is
    cut first and ends with ``…[truncated N chars]``.
    """
    return _scrub(text, keep, False, limit)[0]


def scrub_text_checked(
    text: str, *, keep: Collection[str] = _NO_KEEP, limit: int = DEFAULT_LIMIT
) -> tuple[str, bool]:
    """:func:`scrub_text`, also saying whether the text was truncated (so it can be counted)."""
    return _scrub(text, keep, False, limit)


def scrub_value(key: str, value: Any, *, keep: Collection[str] = _NO_KEEP, limit: int = DEFAULT_LIMIT) -> Any:
    """Scrub one attribute value given its key.

    A secret key (:func:`is_secret_key`) redacts the whole value. Strings are
    scrubbed as text, except that 64-hex values under hash or id keys
    (``mev.tx.hash``, ``balancer.pool_id``) are kept; lists and tuples are
    scrubbed element by element and keep their kind; numbers, bools and None
    pass through unchanged; any other object (a dict, bytes, a URL object)
    becomes its scrubbed ``str()``, since that is what a log line would print.
    """
    cls = KEY_CACHE.get(key)  # key_class() without the call, on the path every attribute takes
    if cls is None:
        cls = key_class(key)
    if cls == KEY_SECRET:
        return REDACTED
    if isinstance(value, str):
        return _scrub(value, keep, cls == KEY_PUBLIC_HEX, limit)[0]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub_value_checked(key, value, keep=keep, limit=limit)[0]


def scrub_value_checked(
    key: str, value: Any, *, keep: Collection[str] = _NO_KEEP, limit: int = DEFAULT_LIMIT
) -> tuple[Any, bool]:
    """:func:`scrub_value`, also saying whether anything in the value was truncated."""
    cls = key_class(key)
    if cls == KEY_SECRET:
        return REDACTED, False
    hex_ok = cls == KEY_PUBLIC_HEX
    if isinstance(value, str):
        return _scrub(value, keep, hex_ok, limit)
    if isinstance(value, (list, tuple)):
        return _scrub_sequence(value, keep, hex_ok, limit)
    if value is None or isinstance(value, (bool, int, float)):
        return value, False
    return _scrub(_text_of(value), keep, hex_ok, limit)


def looks_unbounded_label(value: str) -> bool:
    """Whether a value must not become a metric attribute value.

    True for URLs and paths, ``0x`` addresses and hashes, long hex (UUIDs,
    trace ids), long digit strings (timestamps, block numbers), host names,
    values over 64 characters and anything the scrubber would change: such a
    value names one thing (a transaction, a key, an endpoint) rather than one
    of a few categories.
    """
    if len(value) > 64 or "://" in value or "@" in value:
        return True
    if _UNBOUNDED_LABEL.search(value) is not None:
        return True
    return _scrub(value, _NO_KEEP, False, DEFAULT_LIMIT)[0] != value


_UNBOUNDED_LABEL = re.compile(
    r"0[xX][0-9a-fA-F]{8}"  # an address, a hash, a selector
    r"|(?<![A-Za-z0-9])(?=[0-9a-fA-F\-]{0,40}[0-9])[0-9a-fA-F\-]{16}"  # long hex, UUIDs
    r"|[0-9]{10}"  # timestamps, amounts, block numbers
    r"|(?<![A-Za-z0-9.\-])(?:[A-Za-z0-9\-]{1,63}\.){1,8}(?:com|io|org|net|xyz|pro|dev|app|cloud)(?![A-Za-z0-9])"
)


# --------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------


def _scrub(text: str, keep: Collection[str], hex_ok: bool, limit: int) -> tuple[str, bool]:
    n = len(text)
    # Short names, symbols and amounts cannot hold anything a pattern here finds
    # (the shortest are "a:b", "x=y", "//u@h" and 13-character prefixed tokens).
    if n < 13 and n <= limit and ":" not in text and "=" not in text and "@" not in text:
        return text, False
    if n <= limit:
        if text.isdigit():
            return text, False
        if text.startswith(("0x", "0X")) and _HEX_FULL.fullmatch(text):
            # One hex number: only a 32-byte one can be a key; addresses are public.
            kept = len(text) != 66 or hex_ok or _kept(text, keep)
            return (text if kept else REDACTED), False
        # Only a value that is one hex number is a hash or an id: "<hash> (key <64 hex>)" is not.
        return _apply(text, keep, hex_ok and _HEX_FULL.fullmatch(text) is not None), False
    head = _cut(text, max(limit, 0))
    return _apply(head, keep, False) + f"…[truncated {n - len(head)} chars]", True


def _apply(text: str, keep: Collection[str], hex_ok: bool) -> str:
    # Each pass is skipped when the text cannot hold what it looks for; a short
    # value usually runs one regex (the prefixed tokens).
    n = len(text)
    if n >= 47:  # twelve 3-letter words and their separators
        text = _MNEMONIC_RUN.sub(_mnemonic_repl, text)
    if "/" in text and (n >= 17 or "@" in text):  # a 16-character key segment, or userinfo
        text = _URL.sub(lambda m: _url_repl(m.group(0), keep, hex_ok), text)
    if "@" in text and ":" in text:
        text = _BARE_USERINFO.sub(lambda m: m.group(0)[: m.start("pw") - m.start()] + REDACTED + "@", text)
    if "-----BEGIN" in text:
        text = _PEM.sub(lambda m: m.group(0)[: m.group(0).index("-----", 5) + 5] + REDACTED + "\n", text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if n >= 13 and _PREFIXED.search(text) is not None:  # search alone is half the cost of sub
        text = _PREFIXED.sub(REDACTED, text)
    named = "=" in text or ":" in text or ">" in text
    if named or " " in text or "\t" in text:
        lower = text.lower()
        if named and any(w in lower for w in _STEMS):
            text = _scrub_pairs(text)
        if "bearer" in lower or "basic" in lower or "digest" in lower:
            text = _AUTH_SCHEME.sub(_auth_repl, text)
    if n >= 64 and not hex_ok:
        text = _HEX64.sub(lambda m: m.group(0) if _kept(m.group(0), keep) else REDACTED, text)
    if n >= 24:
        text = _LONG_TOKEN.sub(lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), text)
    return text


def _kept(hex_token: str, keep: Collection[str]) -> bool:
    """Whether a 64-hex token is one the caller listed as public (any case, 0x or not)."""
    if not keep:
        return False
    norm = (hex_token[2:] if hex_token[:2] in ("0x", "0X") else hex_token).lower()
    return any((k[2:] if k[:2] in ("0x", "0X") else k).lower() == norm for k in keep)


def _in_token(c: str) -> bool:
    return not c.isspace() and c not in _BREAKS


def _cut(text: str, limit: int) -> str:
    """The first ``limit`` characters, minus anything the cut may have split.

    A token cut in two (a key, a URL, a JWT) loses the shape its pattern needs,
    and a mnemonic cut after a few words is shorter than any run the word rule
    looks for: the partial token is dropped and a run of list words that
    reaches the cut is redacted, whatever its length.
    """
    head = text[:limit]
    if head and _in_token(text[limit]) and _in_token(head[-1]):
        head = head[: len(head) - _TAIL_TOKEN.match(head[::-1]).end()]  # type: ignore[union-attr]
    rev = head[::-1]
    words = bip39_words()
    pos = 0
    while (m := _REV_WORD.match(rev, pos)) is not None and m.group(1)[::-1].lower() in words:
        pos = m.end()
    if pos:
        return head[: len(head) - pos] + REDACTED
    return head


def _mnemonic_repl(m: re.Match[str]) -> str:
    """Redact each run of 12 or more list words inside a run of word-shaped tokens."""
    words = bip39_words()
    run = m.group(0)
    out: list[str] = []
    last = first = end = count = 0
    for w in _WORD.finditer(run):
        if w.group(0).lower() in words:
            if count == 0:
                first = w.start()
            count += 1
            end = w.end()
            continue
        if count >= 12:
            out += (run[last:first], REDACTED)
            last = end
        count = 0
    if count >= 12:
        out += (run[last:first], REDACTED)
        last = end
    if not out:
        return run
    out.append(run[last:])
    return "".join(out)


def _url_repl(body: str, keep: Collection[str], hex_ok: bool) -> str:
    """A URL from its first "/": userinfo, key-like path segments and secret parameters go."""
    if len(body) < 16 and "@" not in body:
        return body  # no segment long enough to be a key, no userinfo
    if not body.startswith("//"):
        return _scrub_url_rest(body, keep, hex_ok)
    authority = body[2:]
    prefix = "//"
    at = authority.find("@")
    if at >= 0:
        delim = _first_delim(authority)
        if delim < 0 or at < delim:
            # Userinfo runs to the last "@": a password may itself hold "@", "/" or "#".
            prefix += REDACTED + "@"
            authority = authority[authority.rfind("@") + 1 :]
    delim = _first_delim(authority)
    if delim < 0:
        return prefix + authority
    return prefix + authority[:delim] + _scrub_url_rest(authority[delim:], keep, hex_ok)


def _first_delim(body: str) -> int:
    found = [i for i in (body.find("/"), body.find("?"), body.find("#")) if i >= 0]
    return min(found) if found else -1


def _scrub_url_rest(rest: str, keep: Collection[str], hex_ok: bool) -> str:
    """Path, query and fragment: key-like segments and secret parameters go."""
    path, query, fragment = rest, None, None
    hash_at = path.find("#")
    if hash_at >= 0:
        path, fragment = path[:hash_at], path[hash_at + 1 :]
    q_at = path.find("?")
    if q_at >= 0:
        path, query = path[:q_at], path[q_at + 1 :]
    if len(path) >= 17:
        # Provider keys: Infura /v3/<key>, Alchemy /v2/<key>, QuickNode and Ankr /<token>.
        path = _SEGMENT.sub(lambda m: REDACTED if _key_like(m.group(0), keep, hex_ok) else m.group(0), path)
    if query is not None:
        path += "?" + _scrub_query(query, keep, hex_ok)
    if fragment is not None:
        path += "#" + (_scrub_query(fragment, keep, hex_ok) if "=" in fragment else fragment)
    return path


def _scrub_query(query: str, keep: Collection[str], hex_ok: bool) -> str:
    params = _QUERY_SPLIT.split(query)
    for i in range(0, len(params), 2):
        name, eq, value = params[i].partition("=")
        if (
            eq
            and value
            and (
                name.lower() in _URL_SECRET_PARAMS
                or is_secret_key(name)
                or _key_like(value, keep, hex_ok or key_class(name) == KEY_PUBLIC_HEX)
            )
        ):
            params[i] = name + "=" + REDACTED
    return "".join(params)


def _key_like(seg: str, keep: Collection[str], hex_ok: bool) -> bool:
    """Whether a URL segment or parameter value looks like a provider key."""
    n = len(seg)
    if n < 16 or _TOKEN_FULL.fullmatch(seg) is None:
        return False
    if _HEX_FULL.fullmatch(seg):
        prefixed = seg[:2] in ("0x", "0X")
        digits = n - 2 if prefixed else n
        if prefixed and digits == 40:
            return False  # an address is public
        return not (digits == 64 and (hex_ok or _kept(seg, keep)))  # Infura, Ankr, QuickNode keys are hex
    has_digit = any(c.isdigit() for c in seg)
    has_alpha = any(c.isalpha() for c in seg)
    return (has_digit and has_alpha) or (seg != seg.lower() and seg != seg.upper())


def _scrub_pairs(text: str) -> str:
    """``name: value``, ``name=value`` and quoted keys with a secret name: the value goes."""
    out: list[str] = []
    last = 0
    for m in _PAIR.finditer(text):
        if m.start() < last:
            continue  # inside a value already redacted
        name = m.group("name")
        qualifier = _QUALIFIER.search(text, max(0, m.start() - 10), m.start())
        if qualifier is not None:
            name = qualifier.group(0) + name
        if not pair_is_secret(name, "=" in m.group("sep") or m.group("quote") is not None):
            continue
        pos = m.end()
        lower = name.lower()
        if text[pos : pos + 1] not in ("'", '"', "\\") and (
            "authori" in lower
            or "cookie" in lower
            or (":" in m.group("sep") and ("pass" in lower or "secret" in lower or "phrase" in lower))
        ):
            # Header values and "password: correct horse battery staple" hold spaces.
            end = _REST_OF_LINE.match(text, pos).end()  # type: ignore[union-attr]
        else:
            end = _VALUE.match(text, pos).end()  # type: ignore[union-attr]
        if end == pos:
            continue
        out += (text[last:pos], _redact_value(text[pos:end]))
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _redact_value(value: str) -> str:
    """Keep the quotes around a redacted value, so JSON and reprs stay readable."""
    for q in ('\\"', '"', "'"):
        if value.startswith(q):
            closed = len(value) >= 2 * len(q) and value.endswith(q)
            return q + REDACTED + (q if closed else "")
    return REDACTED


def _auth_repl(m: re.Match[str]) -> str:
    token = m.group("token")
    if m.group("scheme")[:5].lower() == "basic" and token.isalpha() and token.islower():
        return m.group(0)  # "basic authentication": an English word, not credentials
    return m.group("scheme") + REDACTED


def _looks_random(token: str) -> bool:
    """Whether a long token looks generated (an API key, a base64 secret) rather than a name.

    Hex-only tokens and path segments are left to the 64-hex rule (shorter hex
    is addresses, trace ids and hashes). Split into words at case and digit changes, a random base62 token
    falls apart into pieces of about two characters, names into words of four
    or more (``CPyArg_ParseStackAndKeywords``, ``x86_64-linux-gnu``). Measured on
    the identifiers and paths of a Python install against random tokens, an
    average of at most 3.0 misses under 1 % of random mixed-case tokens of 24
    or more characters; a one-case token (base36) must also have four or more
    digit runs, which misses about one in six of them.
    """
    core = token.rstrip("=")
    if "/" in core:  # a path: its hex segments (addresses, kept hashes) say nothing about the rest
        core = "/".join(p for p in core.split("/") if not _HEXISH_FULL.fullmatch(p))
    if len(core) < 24 or _HEXISH_FULL.fullmatch(core):
        return False
    has_lower = core != core.upper()
    has_upper = core != core.lower()
    words = _WORDS.findall(core)
    digit_runs = sum(1 for w in words if w[0].isdigit())
    if has_lower + has_upper + (digit_runs > 0) < 2 or sum(map(len, words)) > 3 * len(words):
        return False
    return (has_lower and has_upper) or digit_runs >= 4


def _text_of(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not raise into the caller
        return REDACTED


def _scrub_sequence(
    value: list[Any] | tuple[Any, ...], keep: Collection[str], hex_ok: bool, limit: int
) -> tuple[Any, bool]:
    items: list[Any] = []
    truncated = False
    for item in value:
        if item is None or isinstance(item, (bool, int, float)):
            items.append(item)
        else:
            text, cut = _scrub(item if isinstance(item, str) else _text_of(item), keep, hex_ok, limit)
            items.append(text)
            truncated = truncated or cut
    _redact_word_elements(items)
    return (tuple(items) if isinstance(value, tuple) else items), truncated


def _redact_word_elements(items: list[Any]) -> None:
    """A mnemonic stored one word per element: 12 or more list words in a row go."""
    if len(items) < 12:
        return
    words = bip39_words()
    start = count = 0
    for i, item in enumerate([*items, None]):
        if isinstance(item, str) and item.strip().lower() in words:
            if count == 0:
                start = i
            count += 1
            continue
        if count >= 12:
            items[start:i] = [REDACTED] * (i - start)
        count = 0


__all__ = [
    "DEFAULT_LIMIT",
    "REDACTED",
    "bip39_words",
    "is_secret_key",
    "looks_unbounded_label",
    "scrub_text",
    "scrub_text_checked",
    "scrub_value",
    "scrub_value_checked",
]
