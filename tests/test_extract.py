"""Results returned by decorated functions are recorded automatically."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import mevobs
from mevobs import _extract
from mevobs.testing import Captured


class AttributeDict(Mapping[str, Any]):
    """Shape of web3.py's receipt type: a read-only mapping."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class HexBytes(bytes):
    def to_0x_hex(self) -> str:
        return "0x" + self.hex()


def test_web3_receipt_fields(mevobs_telemetry: Captured) -> None:
    receipt = AttributeDict(
        {
            "transactionHash": HexBytes(b"\x01" * 32),
            "blockNumber": 19_000_001,
            "status": 0,
            "gasUsed": 180_000,
            "effectiveGasPrice": 25 * 10**9,
            "gasUsedForL1": 40_000,
            "to": "0xRouter",
        }
    )

    @mevobs.swap(exchange="uniswap_v2")
    def send() -> AttributeDict:
        return receipt

    assert send() is receipt
    attrs = dict(mevobs_telemetry.span("swap uniswap_v2").attributes or {})
    assert attrs["mev.tx.hash"] == "0x" + "01" * 32
    assert attrs["mev.block.number"] == 19_000_001
    assert attrs["mev.outcome"] == "reverted"
    assert attrs["mev.gas.cost_wei"] == str(180_000 * 25 * 10**9)
    assert attrs["mev.gas.used_for_l1"] == 40_000


def test_pydantic_result_models(mevobs_telemetry: Captured) -> None:
    @mevobs.swap(exchange="curve")
    def leg() -> mevobs.SwapResult:
        return mevobs.SwapResult(
            tx_hash="0x" + "22" * 32,
            status=1,
            gas_used=100_000,
            effective_gas_price_wei=10**9,
            token_in="USDC",
            token_out="USDT",
            amount_in=10**9,
            amount_out=999_000_000,
            expected_amount_out=1_000_000_000,
        )

    @mevobs.arbitrage(strategy="stable")
    def arb() -> mevobs.ArbitrageResult:
        leg()
        return mevobs.ArbitrageResult(profit_wei=10**15)

    arb()
    assert mevobs_telemetry.histogram_sum("mev.slippage", direction="adverse") == 10.0
    attrs = dict(mevobs_telemetry.span("arbitrage stable").attributes or {})
    assert attrs["mev.profit.net_wei"] == str(10**15 - 10**14)


def test_dataclass_and_liquidity_result(mevobs_telemetry: Captured) -> None:
    @dataclass
    class Minted:
        pool: str
        amount0: int
        amount1: int
        liquidity: int

    @mevobs.liquidity(exchange="uniswap_v3", action="add")
    def add() -> Minted:
        return Minted("0xpool", 5, 6, 7)

    add()
    attrs = dict(mevobs_telemetry.span("liquidity uniswap_v3").attributes or {})
    assert (attrs["mev.pool.address"], attrs["mev.liquidity.units"]) == ("0xpool", "7")


def test_extract_override_and_disable(mevobs_telemetry: Captured) -> None:
    def custom(op: mevobs.Operation, result: tuple[int, int]) -> None:
        op.record_gas(gas_used=result[0], effective_gas_price_wei=result[1])

    @mevobs.swap(exchange="a", extract=custom)
    def tuple_result() -> tuple[int, int]:
        return (21_000, 10**9)

    @mevobs.swap(exchange="b", extract=False)
    def ignored() -> dict[str, int]:
        return {"gasUsed": 1, "effectiveGasPrice": 1}

    tuple_result()
    ignored()
    assert mevobs_telemetry.histogram_sum("mev.gas.used", exchange="a") == 21_000
    assert mevobs_telemetry.histogram_count("mev.gas.used", exchange="b") == 0


def test_a_broken_extractor_never_breaks_the_call(mevobs_telemetry: Captured) -> None:
    def broken(op: mevobs.Operation, result: Any) -> None:
        raise RuntimeError("bug in extractor")

    @mevobs.swap(exchange="a", extract=broken)
    def call() -> int:
        return 5

    assert call() == 5
    assert mevobs_telemetry.counter_value("mev.telemetry.dropped", reason="recorder_error") == 1


def test_opportunity_funnel(mevobs_telemetry: Captured) -> None:
    with mevobs.arbitrage(strategy="tri", chain="ethereum") as op:
        for stage in ("detected", "simulated", "submitted", "included", "profitable"):
            op.record_opportunity(stage)
    assert mevobs_telemetry.counter_value("mev.opportunities", stage="included", strategy="tri") == 1


class _RecordingOp:
    """Stands in for an operation: notes which recorder got which fields, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda **fields: self.calls.append((name, fields))


_FIELD_NAMES = sorted(
    name for group in (_extract._TX_FIELDS, _extract._GAS_FIELDS, _extract._SWAP_FIELDS,
                       _extract._LIQUIDITY_FIELDS, _extract._PROFIT_FIELDS)
    for _, names in group for name in names
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(_FIELD_NAMES), st.text(max_size=6)),
        st.one_of(st.none(), st.integers(0, 10**20), st.text(max_size=4)),
        max_size=80,  # past the small-dict shortcut too
    )
)
def test_a_plain_dict_records_what_the_same_mapping_records(data: dict[str, Any]) -> None:
    """The plain-dict shortcut calls the same recorders with the same fields as any mapping."""
    from_dict, from_mapping = _RecordingOp(), _RecordingOp()
    _extract.extract_result(from_dict, dict(data))  # type: ignore[arg-type]
    _extract.extract_result(from_mapping, AttributeDict(dict(data)))  # type: ignore[arg-type]
    assert from_dict.calls == from_mapping.calls
