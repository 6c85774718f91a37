"""Pydantic result models a bot's exchange helpers may return.

A decorated function that returns one of these has its transaction, gas,
amounts and profit recorded automatically (see ``_extract.py``). Amounts are
exact ints in base units (wei for ETH).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class _TxResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    tx_hash: str | None = Field(default=None, description="Transaction hash, 0x-hex.")
    block_number: int | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=0, le=1, description="Receipt status: 1 ok, 0 reverted.")
    to: str | None = Field(default=None, description="Router or contract the transaction called.")
    gas_used: int | None = Field(default=None, ge=0)
    effective_gas_price_wei: int | None = Field(default=None, ge=0)
    l1_fee_wei: int = Field(default=0, ge=0, description="Separately billed L1 data fee (OP-stack).")
    gas_used_for_l1: int | None = Field(default=None, ge=0, description="Arbitrum: L1 part of gas_used.")
    coinbase_transfer_wei: int = Field(default=0, ge=0, description="Direct payment to the builder.")


class SwapResult(_TxResult):
    """What a swap helper returns: tokens, exact amounts and the receipt figures."""

    token_in: str | None = None
    token_out: str | None = None
    amount_in: int | None = Field(default=None, ge=0)
    amount_out: int | None = Field(default=None, ge=0)
    expected_amount_out: int | None = Field(default=None, ge=0)
    notional_eth: Decimal | None = Field(default=None, ge=0, description="What the swap was worth, ETH.")
    notional_usd: Decimal | None = Field(default=None, ge=0, description="What the swap was worth, USD.")


class LiquidityResult(_TxResult):
    """What an add- or remove-liquidity helper returns."""

    pool: str | None = None
    amount0: int | None = Field(default=None, ge=0)
    amount1: int | None = Field(default=None, ge=0)
    liquidity: int | None = Field(default=None, ge=0)


class ArbitrageResult(_TxResult):
    """What an arbitrage executor returns: gross profit before gas, in wei."""

    profit_wei: int | None = Field(default=None, description="Gross profit before gas, wei; may be negative.")
    profit_usd: float | None = None
    expected_profit_wei: int | None = None
