"""Automatic recording from what a decorated function returns.

A pydantic model, dataclass, mapping or web3 receipt (``AttributeDict``) with
recognisable fields is read once, after the call, and fed to the recorders.
Both snake_case and the camelCase of JSON-RPC receipts are understood.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mevobs._operation import Operation

_MISSING = object()

# (recorder keyword, accepted field names in order of preference)
_TX_FIELDS = (
    ("tx_hash", ("transaction_hash", "transactionHash", "tx_hash")),
    ("block_number", ("block_number", "blockNumber")),
    ("status", ("status",)),
    ("to", ("to",)),
)
_GAS_FIELDS = (
    ("gas_used", ("gas_used", "gasUsed")),
    ("effective_gas_price_wei", ("effective_gas_price_wei", "effective_gas_price", "effectiveGasPrice")),
    ("l1_fee_wei", ("l1_fee_wei", "l1Fee", "l1_fee")),
    ("gas_used_for_l1", ("gas_used_for_l1", "gasUsedForL1")),
    ("coinbase_transfer_wei", ("coinbase_transfer_wei", "coinbaseTransfer")),
)
_SWAP_FIELDS = (
    ("token_in", ("token_in",)),
    ("token_out", ("token_out",)),
    ("amount_in", ("amount_in",)),
    ("amount_out", ("amount_out",)),
    ("expected_amount_out", ("expected_amount_out",)),
    ("notional_eth", ("notional_eth",)),
    ("notional_usd", ("notional_usd",)),
)
_LIQUIDITY_FIELDS = (
    ("pool", ("pool",)),
    ("amount0", ("amount0",)),
    ("amount1", ("amount1",)),
    ("liquidity", ("liquidity",)),
)
_PROFIT_FIELDS = (
    ("gross_wei", ("profit_wei", "gross_profit_wei")),
    ("usd", ("profit_usd",)),
    ("expected_wei", ("expected_profit_wei",)),
)


def _getter(result: Any) -> Callable[[str], Any]:
    if isinstance(result, Mapping):
        return lambda name: result.get(name, _MISSING)
    # Pydantic models, dataclasses and plain objects: read attributes.
    return lambda name: getattr(result, name, _MISSING)


def _pick(get: Callable[[str], Any], fields: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for keyword, names in fields:
        for name in names:
            value = get(name)
            if value is not _MISSING and value is not None:
                found[keyword] = value
                break
    return found


def _names(fields: tuple[tuple[str, tuple[str, ...]], ...]) -> frozenset[str]:
    return frozenset(name for _, names in fields for name in names)


_TX_NAMES = _names(_TX_FIELDS)
_GAS_NAMES = _names(_GAS_FIELDS)
_SWAP_NAMES = _names(_SWAP_FIELDS)
_LIQUIDITY_NAMES = _names(_LIQUIDITY_FIELDS)
_PROFIT_NAMES = _names(_PROFIT_FIELDS)
_ALL_NAMES = _TX_NAMES | _GAS_NAMES | _SWAP_NAMES | _LIQUIDITY_NAMES | _PROFIT_NAMES
_SMALL_DICT = 64
"""A plain dict up to this many keys is matched against the field names in one set
operation (it iterates the dict's keys, so larger ones take the per-name lookups)."""


def extract_result(op: Operation, result: Any) -> None:
    """Record the recognisable fields of ``result`` on ``op``."""
    if result is None or isinstance(result, (str, bytes, int, float, bool, list, tuple)):
        return
    if type(result) is dict and len(result) <= _SMALL_DICT:
        # A receipt or a result dict: the groups with none of their names are skipped,
        # and dict.get serves as the getter (a missing field and None are alike to _pick).
        present: frozenset[str] = _ALL_NAMES.intersection(result)
        get: Callable[[str], Any] = result.get
    else:
        present = _ALL_NAMES
        get = _getter(result)
    if not present.isdisjoint(_TX_NAMES):
        tx = _pick(get, _TX_FIELDS)
        if tx:
            op.record_tx(**tx)
    if not present.isdisjoint(_GAS_NAMES):
        gas = _pick(get, _GAS_FIELDS)
        if "gas_used" in gas and "effective_gas_price_wei" in gas:
            op.record_gas(**gas)
    if not present.isdisjoint(_SWAP_NAMES):
        swap = _pick(get, _SWAP_FIELDS)
        if swap:
            op.record_swap(**swap)
    if not present.isdisjoint(_LIQUIDITY_NAMES):
        liquidity = _pick(get, _LIQUIDITY_FIELDS)
        if liquidity:
            op.record_liquidity(**liquidity)
    if not present.isdisjoint(_PROFIT_NAMES):
        profit = _pick(get, _PROFIT_FIELDS)
        if profit:
            op.record_profit(**profit)
