"""Exact money arithmetic: wei and token amounts as int, Decimal where a ratio is needed.

Nothing here knows about telemetry. Coercion functions return ``None`` for a
value they refuse (the caller counts it as dropped); they never raise.
Floats appear only at the metric boundary (:func:`wei_to_eth`).
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from typing import Any

WEI_PER_ETH = 10**18
WEI_PER_GWEI = 10**9

# A bound far above any real balance (the total supply of any token is far below
# 2**256) that keeps float conversion and string formatting cheap and finite.
MAX_AMOUNT = 2**256
_MAX_DECIMAL = Decimal(MAX_AMOUNT)
# Every size is checked before a conversion, never after: int(Decimal("1e999999"))
# or int() of a million digits takes seconds (quadratic), and Decimal arithmetic on
# an exponent past the context's range raises. 2**256 is 78 decimal digits.
_MAX_ADJUSTED = 77
"""Largest decimal exponent (``Decimal.adjusted()``) of an amount below 2**256."""
_MAX_TEXT = 80
"""Longest amount text: 78 digits or "0x" and 64 hex digits, a sign, some slack."""
_MAX_BYTES = 64
"""Longest bytes amount (32 significant bytes, zero-padded to a 64-byte word)."""


def to_int(value: Any, *, allow_negative: bool = False) -> int | None:
    """Coerce a receipt or amount field to an exact int, or ``None`` if it is not one.

    Accepts int (not bool), integral Decimal or float, decimal strings and
    ``0x`` hex strings (raw JSON-RPC receipts), and bytes-like ``HexBytes``.
    Refuses None, NaN, infinities, fractions, negatives (unless allowed) and
    magnitudes of 2**256 or more, in time that does not depend on the value:
    sizes are checked before any conversion.
    """
    if type(value) is int:  # the common case (a decoded receipt): no conversion to do
        if 0 <= value < MAX_AMOUNT or (allow_negative and -MAX_AMOUNT < value < 0):
            return value
        return None
    result: int | None
    try:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int):
            if value.bit_length() > 256:
                return None
            result = int(value)
        elif isinstance(value, Decimal):
            if not value.is_finite() or value.adjusted() > _MAX_ADJUSTED:
                return None
            integral = value.to_integral_value()  # few digits now: int() of it is cheap
            if value != integral:
                return None
            result = int(integral)
        elif isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                return None
            result = int(value)
        elif isinstance(value, str):
            if len(value) > 4 * _MAX_TEXT:  # before strip() and replace() copy it
                return None
            text = value.strip().replace("_", "")
            if len(text) > _MAX_TEXT:
                return None
            result = int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
        elif isinstance(value, (bytes, bytearray)):
            if len(value) > _MAX_BYTES:
                return None
            result = int.from_bytes(value, "big") if value else None
        else:
            return None
    except (ValueError, TypeError, ArithmeticError):  # OverflowError, decimal.InvalidOperation
        return None
    if result is None or abs(result) >= MAX_AMOUNT:
        return None
    if result < 0 and not allow_negative:
        return None
    return result


def to_decimal(value: Any) -> Decimal | None:
    """Coerce a human amount (ETH, USD) to a finite Decimal, or ``None``.

    Floats go through ``str`` so that ``0.1`` means one tenth, not its binary
    neighbour. Like :func:`to_int`, sizes are checked before any conversion, and
    the magnitude check uses no context (nothing to overflow).
    """
    try:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, int):
            if value.bit_length() > 256:
                return None
            result = Decimal(value)
        elif isinstance(value, float):
            result = Decimal(str(value))
        elif isinstance(value, str):
            if len(value) > 4 * _MAX_TEXT:
                return None
            result = Decimal(value.strip())
        else:
            return None
        if not result.is_finite() or result.adjusted() > _MAX_ADJUSTED or result.copy_abs() >= _MAX_DECIMAL:
            return None
    except (ValueError, TypeError, ArithmeticError):
        return None
    return result


def eth_to_wei(eth: Decimal) -> int:
    """Convert an amount in ETH to wei, rounding toward zero below 1 wei."""
    with localcontext() as ctx:
        ctx.prec = 100
        return int(eth * WEI_PER_ETH)


def wei_to_eth(wei: int) -> float:
    """The float ETH value of a wei amount: only for metrics and readable attributes."""
    # Divide in integers first so values far above 2**53 wei keep their leading digits.
    whole, rest = divmod(abs(wei), WEI_PER_ETH)
    value = float(whole) + rest / WEI_PER_ETH
    return -value if wei < 0 else value


def wei_to_eth_decimal(wei: int) -> Decimal:
    """The exact ETH value of a wei amount (for reports: no float rounding)."""
    whole, rest = divmod(abs(wei), WEI_PER_ETH)
    text = f"{whole}.{rest:018d}".rstrip("0").rstrip(".")
    return Decimal(f"-{text}" if wei < 0 else text)


def gas_cost_wei(
    gas_used: int, effective_gas_price_wei: int, l1_fee_wei: int = 0, coinbase_transfer_wei: int = 0
) -> int:
    """Total native-token cost of a transaction, exact in wei.

    ``gas_used * effective_gas_price`` covers execution and, on Arbitrum, the L1
    data gas already folded into ``gas_used``; ``l1_fee_wei`` is the separately
    billed L1 data fee of OP-stack chains; ``coinbase_transfer_wei`` is a direct
    payment to the block builder.
    """
    return gas_used * effective_gas_price_wei + l1_fee_wei + coinbase_transfer_wei


def slippage_bp(expected: int, actual: int) -> Decimal | None:
    """Realised slippage in basis points: (expected - actual) / expected x 10 000.

    Positive is adverse (received less than quoted), negative favourable.
    ``None`` when there is no meaningful quote (zero or negative expected).
    """
    if expected <= 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 50
        return (Decimal(expected - actual) * 10_000) / Decimal(expected)
