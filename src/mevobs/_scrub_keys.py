"""Which names denote secrets: attribute keys, and the names in ``name=value`` text.

Kept apart from the text patterns in ``_scrub`` because it is a naming policy
(which words mean a credential, which mean an asset or a public hash) that
users read and argue with, not a matter of parsing.

The rule, on a key split into lower-case words at ``.``, ``_``, ``-``, spaces
and camelCase (``X-Api-Key`` -> x, api, key):

* A word that only ever means a secret makes the key secret: ``password``,
  ``secret``, ``mnemonic``, ``seed``, ``passphrase``, ``authorization``,
  ``auth``, ``bearer``, ``cookie``, ``credentials``, ``jwt``... so do the same
  words run together (``apikey``, ``privatekey``, ``accesstoken``).
* ``key`` (or ``keys``) is secret after a word that makes it key material
  (``api``, ``private``, ``signing``, ``secret``, ``access``, ``wallet``,
  ``client``, ``account``...), or alone; ``cache_key``, ``pool_key``,
  ``public_key`` are not.
* ``token`` as the *last* word names a credential (``token``,
  ``wallet.token``, ``access_token``, ``X-Auth-Token``) unless the word before
  it names a side of a trade (``sell_token``, ``buy_token``, ``base_token``,
  ``fee_token``...). ``token`` followed by more words names an asset
  (``token_in``, ``token0``, ``token_address``), and mevobs's own ``mev.token``
  and ``mev.token.*`` are token symbols, never secret.
* ``signer_id``, ``wallet_id``, ``account`` are not secret names (an id says
  which signer, not how to sign), but a key mentioning signer, wallet, key,
  private, seed or secret loses the exemption below, so a 64-hex value under
  ``signer_id`` is redacted as a possible private key.

Keys whose 64-hex values are public (hashes, ids, topics, roots, and addresses,
since ``mev.pool.address`` may hold a 32-byte pool id: ``mev.tx.hash``,
``balancer.pool_id``) are classified separately, so a transaction hash is kept
under its own key and redacted anywhere else.
"""

from __future__ import annotations

import re

from mevobs.semconv import ATTR_TOKEN

KEY_PLAIN = 0
KEY_SECRET = 1
KEY_PUBLIC_HEX = 2

_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "secrets", "mnemonic", "mnemonics",
        "seed", "seedphrase", "authorization", "authorisation", "auth", "bearer", "cookie",
        "cookies", "credential", "credentials", "creds", "jwt", "xprv", "wif", "otp", "totp",
    }
)  # fmt: skip
# The same words run together in one part, as in "apikey" or "x_privatekey".
_SECRET_INFIXES = (
    "password", "passwd", "passphrase", "secret", "mnemonic", "seedphrase", "privatekey",
    "privkey", "apikey", "signingkey", "secretkey", "accesskey", "accesstoken", "authtoken",
    "refreshtoken", "apitoken", "sessiontoken", "authheader", "authoriz", "authoris",
    "bearer", "cookie", "credential",
)  # fmt: skip
_KEY_QUALIFIERS = frozenset(
    {
        "api", "private", "priv", "signing", "signer", "secret", "access", "encryption", "master",
        "client", "auth", "session", "wallet", "account", "app", "license", "hmac", "ssh", "pgp",
        "gpg", "rpc", "sk", "shared", "storage", "subscription", "service", "admin", "bot",
        "consumer", "deploy", "deployer", "hot", "eth", "user", "root", "node", "provider",
    }
)  # fmt: skip
_TRADE_SIDES = frozenset(
    {
        "sell", "buy", "base", "quote", "fee", "input", "output", "in", "out", "from", "to", "src",
        "dst", "source", "dest", "destination", "reward", "rewards", "stake", "staked", "staking",
        "collateral", "debt", "borrow", "lend", "native", "wrapped", "gas", "lp", "pool", "pair",
        "underlying", "target", "intermediate", "bridge", "payment", "settlement", "profit",
        "exposure", "mev", "erc20", "erc721", "erc1155", "nft", "governance", "stable",
        "bought", "sold", "received", "sent", "deposit", "withdraw", "withdrawal", "position",
    }
)  # fmt: skip
_KEY_MATERIAL = frozenset(
    {"signer", "signing", "wallet", "key", "keys", "priv", "private", "privkey", "seed", "secret", "mnemonic"}
)
# Bare names that mean a secret in "name=value" or a quoted JSON key, but are
# ordinary words after a colon in prose ("unexpected token: '}'", "missing key: x").
_AMBIGUOUS_IN_TEXT = frozenset({"key", "token", "auth", "seed"})
_TOKEN_NAMESPACE = ATTR_TOKEN.split(".")


def key_parts(key: str) -> list[str]:
    """A key split into lower-case words (``X-Api-Key`` -> ``["x", "api", "key"]``)."""
    return [p.lower() for p in _PARTS.findall(key)]


def _classify(key: str) -> int:
    parts = key_parts(key)
    if not parts:
        return KEY_PLAIN
    joined = "".join(parts)
    if any(p in _SECRET_WORDS for p in parts) or any(s in joined for s in _SECRET_INFIXES):
        return KEY_SECRET
    for i, part in enumerate(parts):
        if part in ("key", "keys") and (len(parts) == 1 or (i > 0 and parts[i - 1] in _KEY_QUALIFIERS)):
            return KEY_SECRET
    if (
        parts[-1] == "token"
        and parts[: len(_TOKEN_NAMESPACE)] != _TOKEN_NAMESPACE
        and (len(parts) == 1 or parts[-2] not in _TRADE_SIDES)
    ):
        return KEY_SECRET
    if any(p in _KEY_MATERIAL for p in parts):
        return KEY_PLAIN
    if (
        "hash" in joined
        or "topic" in joined
        or "root" in parts
        or parts[-1] in ("id", "ids", "address", "addr")
    ):
        return KEY_PUBLIC_HEX
    return KEY_PLAIN


KEY_CACHE: dict[str, int] = {}
"""Memo of :func:`key_class` (read directly by ``scrub_value``; written only here)."""
_CACHE_SIZE = 4096


def key_class(key: str) -> int:
    """``KEY_SECRET``, ``KEY_PUBLIC_HEX`` or ``KEY_PLAIN`` for an attribute key.

    Attribute keys come from code, so a bounded memo of pure results serves
    nearly every call (a dict lookup is half the cost of ``lru_cache`` here);
    once full, or for unusually long keys, keys are classified each time.
    """
    cls = KEY_CACHE.get(key)
    if cls is None:
        cls = _classify(key)
        if len(KEY_CACHE) < _CACHE_SIZE and len(key) <= 128:
            KEY_CACHE[key] = cls
    return cls


def is_secret_key(key: str) -> bool:
    """Whether an attribute key names a secret (its value is always redacted)."""
    return key_class(key) == KEY_SECRET


def pair_is_secret(name: str, strong: bool) -> bool:
    """Whether ``name`` before a ``:`` or ``=`` in free text announces a secret value.

    ``strong`` is true for ``=`` and for a quoted name (a JSON or dict key), where
    even a bare ``key`` or ``token`` names the value that follows.
    """
    if name.lower() in _AMBIGUOUS_IN_TEXT:
        return strong
    return key_class(name) == KEY_SECRET
