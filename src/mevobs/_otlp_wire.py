"""Protobuf wire primitives and attribute encoding for the hand-written OTLP encoder.

Why by hand: building OTLP messages through the generated protobuf classes costs
tens of microseconds per span, and the export worker has a budget of a few. Every
function here emits the bytes protobuf itself would (fields in field-number order,
the same presence rules), so a payload parses to the message the SDK's encoder
builds for the same data.

Attribute values follow the SDK 1.45 rules end to end: first what
``BoundedAttributes`` keeps (``_clean_attribute_value``: unknown types become
``str(value)`` when the type defines ``__str__``/``__repr__``, else an empty
value; empty keys inside maps are left out), then what ``_encode_value`` writes.
Where the SDK's encoder would fail on one attribute (an int outside int64, a
lone surrogate in a string or key) it logs and leaves that attribute out; so do
we, and count it instead of logging.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

AttrValue: TypeAlias = (
    str | bool | int | float | bytes | Sequence["AttrValue"] | Mapping[str, "AttrValue"] | None
)
"""What an attribute value may be: the SDK's ``AnyValue`` (1.45 accepts it on spans too)."""

_B1 = tuple(bytes((i,)) for i in range(128))
_U64 = 1 << 64
_I64_END = 1 << 63
_I64_MIN = -(1 << 63)
# Deeper nesting than this is dropped rather than recursed into: bounded time, no RecursionError.
_MAX_DEPTH = 32

pack_d = struct.Struct("<d").pack
pack_q = struct.Struct("<Q").pack
pack_i = struct.Struct("<I").pack


class InvalidValue(ValueError):
    """A value the SDK's encoder would refuse (and so leave its attribute out)."""


def varint(n: int) -> bytes:
    """Base-128 varint of ``0 <= n < 2**64``; the short cases are unrolled because they are most values.

    A negative ``n`` raises ``ValueError`` (from ``bytes``) rather than encode garbage."""
    if 0 <= n < 0x80:
        return _B1[n]
    if n < 0x4000:
        return bytes((n & 0x7F | 0x80, n >> 7))
    if n < 0x200000:
        return bytes((n & 0x7F | 0x80, n >> 7 & 0x7F | 0x80, n >> 14))
    if n < 0x10000000:
        return bytes((n & 0x7F | 0x80, n >> 7 & 0x7F | 0x80, n >> 14 & 0x7F | 0x80, n >> 21))
    if n >= _U64:
        raise ValueError("varint wider than 64 bits")
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def int64(v: int) -> bytes:
    """Varint of an int64 field: negative values as 64-bit two's complement (ten bytes), like protobuf."""
    if 0 <= v < _I64_END:
        return varint(v)
    if _I64_MIN <= v < 0:
        return varint(v + _U64)
    raise InvalidValue("int outside int64")


def ld(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: tag, length, body."""
    return tag + varint(len(body)) + body


def lossy_utf8(s: str) -> bytes:
    """UTF-8 of ``s`` with lone surrogates replaced by U+FFFD.

    For names, messages and bodies, where the SDK's encoder would raise and fail the
    whole batch. Surrogate pairs (as ``surrogateescape`` or JSON decoding can leave
    them) are rejoined into the character they stand for.
    """
    return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def text_field(tag: bytes, s: str) -> bytes:
    """A string field, left out when empty (proto3); lone surrogates replaced."""
    if not s:
        return b""
    try:
        return ld(tag, s.encode())
    except UnicodeEncodeError:
        return ld(tag, lossy_utf8(s))


def repaired(v: object) -> object:
    """``v`` with lone surrogates in its strings replaced, for a log body."""
    if isinstance(v, str):
        return lossy_utf8(v).decode()
    if isinstance(v, (bytes, bool, int, float)) or v is None:
        return v
    if isinstance(v, Mapping):
        return {repaired(k): repaired(e) for k, e in v.items()}
    if isinstance(v, Sequence):
        return [repaired(e) for e in v]
    return v


def _has_own_str(v: object) -> bool:
    # The SDK's test for "calling str() gives something readable" (attributes._is_non_custom_str).
    return type(v).__str__ is not object.__str__ or type(v).__repr__ is not object.__repr__


def any_value(v: object, depth: int = 0) -> bytes:
    """The body of an ``AnyValue`` message for ``v``, as the SDK would clean and encode it.

    Raises :class:`InvalidValue` or ``UnicodeEncodeError`` where the SDK's encoder
    fails, which makes the caller leave the whole attribute out.
    """
    if v is None:
        return b""
    if isinstance(v, bool):
        return b"\x10\x01" if v else b"\x10\x00"
    if isinstance(v, str):
        return ld(b"\x0a", v.encode())
    if isinstance(v, int):
        return b"\x18" + int64(v)
    if isinstance(v, float):
        return b"\x21" + pack_d(v)
    if isinstance(v, bytes):
        return ld(b"\x3a", v)
    if depth >= _MAX_DEPTH:
        raise InvalidValue("nested too deep")
    if isinstance(v, Sequence):
        return ld(b"\x2a", b"".join([ld(b"\x0a", any_value(e, depth + 1)) for e in v]))
    if isinstance(v, Mapping):
        fields = []
        for k, e in v.items():
            if not k:
                continue
            if not isinstance(k, str):
                if not _has_own_str(k):
                    continue
                k = str(k)
            fields.append(ld(b"\x0a", key_value(k, e, depth + 1)))
        return ld(b"\x32", b"".join(fields))
    if _has_own_str(v):
        return ld(b"\x0a", str(v).encode())
    return b""


def key_value(key: str, v: object, depth: int = 0) -> bytes:
    """The body of a ``KeyValue`` message; the value is always present, as the SDK sets it."""
    kb = key.encode()
    return (ld(b"\x0a", kb) if kb else b"") + ld(b"\x12", any_value(v, depth))


def encode_attributes(attrs: object, tag: bytes) -> tuple[list[bytes], int, int]:
    """Encode an attribute map carefully, one attribute at a time: ``(fields, bad_keys, bad_values)``.

    ``bad_keys`` counts attributes left out for an empty or non-string key (the SDK's
    ``BoundedAttributes`` drops those and counts them in ``dropped_attributes_count``);
    ``bad_values`` counts those left out because their value or key cannot be encoded
    (the SDK's encoder logs and skips them without counting). Never raises.
    """
    fields: list[bytes] = []
    bad_keys = bad_values = 0
    try:
        items = list(attrs.items())  # type: ignore[attr-defined]
    except Exception:
        return fields, 0, 1
    for k, v in items:
        if not k or not isinstance(k, str):
            bad_keys += 1
            continue
        try:
            fields.append(ld(tag, key_value(k, v)))
        except Exception:
            bad_values += 1
    return fields, bad_keys, bad_values


class Counts:
    """What an encoder left out or repaired, for the caller's drop counters."""

    __slots__ = ("dropped_values", "replaced_strings")

    def __init__(self) -> None:
        self.dropped_values = 0
        self.replaced_strings = 0


# Slots of a key's prefix cache (a list: indexing it is cheaper than a dict lookup).
# Slots 0-127: string values by byte length; then ints by varint length, and the rest.
_INT = 128  # + varint length (1-10)
_DOUBLE = 139
_TRUE = 140
_FALSE = 141
_KEY = 142  # the KeyValue.key field
_LONG = 143  # dict: string values of 128 bytes or more, by length
_SLOTS = 144
# Long strings (stack traces, messages) get their prefix cached for this many lengths per
# key: a failure site repeats its length; past that they are computed each time.
_MAX_LONG = 64
# Keys whose prefixes are cached; past this the cache starts over (bounded memory for any key set).
_MAX_KEYS = 512


class AttrCodec:
    """Encodes attribute maps as repeated ``KeyValue`` fields of one container field.

    The fast path handles exact ``str``/``int``/``float``/``bool`` values by joining a
    cached prefix (field tag, lengths, key, value tag) with the value's bytes; any other
    value goes through :func:`any_value`. If anything in a map fails, the map is
    encoded again carefully, attribute by attribute, and what was left out is counted.
    One codec per container field (span, event, log, link attributes); not thread-safe.
    """

    __slots__ = ("_cache", "_counts", "_tag")

    def __init__(self, field_number: int, counts: Counts) -> None:
        self._tag = varint(field_number << 3 | 2)
        self._cache: dict[str, list[Any]] = {}
        self._counts = counts

    def encode(self, attrs: Mapping[str, AttrValue], out: list[bytes]) -> int:
        """Append one field per attribute to ``out``; return how many were dropped for a bad key."""
        mark = len(out)
        cache = self._cache
        ap = out.append
        try:
            items: Iterable[tuple[str, Any]] = attrs.items()
            for k, v in items:
                ent = cache.get(k)
                if ent is None:
                    ent = self._entry(k)
                t = type(v)
                if t is str:
                    vb = v.encode()
                    n = len(vb)
                    p = ent[n] if n < 0x80 else ent[_LONG].get(n)
                    if p is None:
                        p = self._str_prefix(ent, n)
                    ap(p)
                    ap(vb)
                elif t is int:
                    # varint inlined for the common sizes: a call costs as much as the arithmetic
                    if 0 <= v < 0x80:
                        vv = _B1[v]
                    elif 0 < v < 0x4000:
                        vv = bytes((v & 0x7F | 0x80, v >> 7))
                    elif 0 < v < 0x200000:
                        vv = bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14))
                    elif 0 < v < 0x10000000:
                        vv = bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14 & 0x7F | 0x80, v >> 21))
                    else:
                        vv = int64(v)
                    slot = _INT + len(vv)
                    p = ent[slot]
                    if p is None:
                        p = self._prefix(ent, slot, b"\x18", len(vv))
                    ap(p)
                    ap(vv)
                elif t is float:
                    p = ent[_DOUBLE]
                    if p is None:
                        p = self._prefix(ent, _DOUBLE, b"\x21", 8)
                    ap(p)
                    ap(pack_d(v))
                elif t is bool:
                    slot = _TRUE if v else _FALSE
                    p = ent[slot]
                    if p is None:
                        p = self._prefix(ent, slot, b"\x10\x01" if v else b"\x10\x00", 0)
                    ap(p)
                else:
                    ap(ld(self._tag, ent[_KEY] + ld(b"\x12", any_value(v))))
            return 0
        except Exception:
            # Something unusual (a bad key, an int outside int64, a lone surrogate):
            # start the map again, attribute by attribute, and count what is left out.
            del out[mark:]
        fields, bad_keys, bad_values = encode_attributes(attrs, self._tag)
        out.extend(fields)
        self._counts.dropped_values += bad_values
        return bad_keys

    def _entry(self, key: str) -> list[Any]:
        if not key or not isinstance(key, str):
            raise InvalidValue("bad key")
        if len(self._cache) >= _MAX_KEYS:
            self._cache.clear()
        ent: list[Any] = [None] * _SLOTS
        ent[_KEY] = ld(b"\x0a", key.encode())
        ent[_LONG] = {}
        self._cache[key] = ent
        return ent

    def _str_prefix(self, ent: list[Any], n: int) -> bytes:
        if n < 0x80:
            return self._prefix(ent, n, b"\x0a" + varint(n), n)
        p = self._prefix(ent, None, b"\x0a" + varint(n), n)
        if len(ent[_LONG]) < _MAX_LONG:
            ent[_LONG][n] = p
        return p

    def _prefix(self, ent: list[Any], slot: int | None, head: bytes, tail_len: int) -> bytes:
        """Everything of one attribute field before its value's variable bytes (``tail_len`` of them)."""
        any_len = len(head) + tail_len
        kv = ent[_KEY] + b"\x12" + varint(any_len) + head
        p: bytes = self._tag + varint(len(kv) + tail_len) + kv
        if slot is not None:
            ent[slot] = p
        return p
