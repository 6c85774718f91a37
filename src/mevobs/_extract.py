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


def extract_result(op: Operation, result: Any) -> None:
    """Record the recognisable fields of ``result`` on ``op``."""
    if result is None or isinstance(result, (str, bytes, int, float, bool, list, tuple)):
        return
    get = _getter(result)
    tx = _pick(get, _TX_FIELDS)
    if tx:
        op.record_tx(**tx)
    gas = _pick(get, _GAS_FIELDS)
    if "gas_used" in gas and "effective_gas_price_wei" in gas:
        op.record_gas(**gas)
    swap = _pick(get, _SWAP_FIELDS)
    if swap:
        op.record_swap(**swap)
    liquidity = _pick(get, _LIQUIDITY_FIELDS)
    if liquidity:
        op.record_liquidity(**liquidity)
    profit = _pick(get, _PROFIT_FIELDS)
    if profit:
        op.record_profit(**profit)
