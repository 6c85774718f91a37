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


# (recorder method, its fields, their names), in the order the recorders run.
_GROUPS = (
    ("record_tx", _TX_FIELDS, _TX_NAMES),
    ("record_gas", _GAS_FIELDS, _GAS_NAMES),
    ("record_swap", _SWAP_FIELDS, _SWAP_NAMES),
    ("record_liquidity", _LIQUIDITY_FIELDS, _LIQUIDITY_NAMES),
    ("record_profit", _PROFIT_FIELDS, _PROFIT_NAMES),
)
Plan = tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]
_PLANS: dict[frozenset[str], Plan] = {}
_MAX_PLANS = 256
"""Result shapes (sets of recognised names) whose reading plan is kept; past it, one
shape's plan is made again on each call."""


def _plan(present: frozenset[str]) -> Plan:
    """For one result shape: each recorder with the names it reads, per keyword in
    order of preference, keeping only the names the shape has."""
    plan = _PLANS.get(present)
    if plan is not None:
        return plan
    groups = []
    for method, fields, names in _GROUPS:
        if present.isdisjoint(names):
            continue
        pairs = tuple(
            (keyword, tuple(n for n in options if n in present))
            for keyword, options in fields
            if not present.isdisjoint(options)
        )
        groups.append((method, pairs))
    plan = tuple(groups)
    if len(_PLANS) < _MAX_PLANS:
        _PLANS[present] = plan
    return plan


def extract_result(op: Operation, result: Any) -> None:
    """Record the recognisable fields of ``result`` on ``op``."""
    if result is None or isinstance(result, (str, bytes, int, float, bool, list, tuple)):
        return
    if type(result) is dict and len(result) <= _SMALL_DICT:
        # A receipt or a result dict: read only the names it has, by a plan made once
        # per shape (a bot's receipts share one). A None value counts as missing.
        for method, pairs in _plan(_ALL_NAMES.intersection(result)):
            found: dict[str, Any] = {}
            for keyword, names in pairs:
                for name in names:
                    value = result[name]
                    if value is not None:
                        found[keyword] = value
                        break
            _record(op, method, found)
        return
    get = _getter(result)
    for method, fields, _ in _GROUPS:
        _record(op, method, _pick(get, fields))


def _record(op: Operation, method: str, found: dict[str, Any]) -> None:
    if method == "record_gas":
        if "gas_used" in found and "effective_gas_price_wei" in found:
            op.record_gas(**found)
    elif found:
        getattr(op, method)(**found)
