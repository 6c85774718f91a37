"""The seam for failure scenarios: what may differ from a normal block, and who decides.

The driver owns one :class:`Conditions` and hands it to a :class:`Scenario` before
every block; the node, the bot, the health checks and the driver read it while the
block runs. Its defaults are the normal world, and a neutral value draws nothing from
the seed's random stream, so a run without a scenario is exactly the run it always was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: Key of the ``rpc_*`` maps that applies to every exchange without its own entry.
ANY = "*"


@dataclass
class Conditions:
    """How the simulated world departs from normal for the coming block (mutable: a
    scenario edits it in place, and what it sets stays until it changes it)."""

    #: RPC latency multiplier by exchange (calls made for that exchange's swaps and
    #: liquidity; "" for calls tied to no exchange; ``ANY`` for all). Paced runs only:
    #: ``--blocks`` runs do not sleep.
    rpc_latency_factor: dict[str, float] = field(default_factory=dict)
    #: Extra probability, by exchange (same keys), that an RPC call fails with HTTP 503.
    rpc_failure_rate: dict[str, float] = field(default_factory=dict)
    #: Probability that an RPC call is answered with HTTP 429 (None: the demo's own,
    #: which ``--fail-rate`` raises). Replaces a threshold, not a draw.
    rate_limit_rate: float | None = None
    #: Share of transactions that revert (None: ``--fail-rate``). Replaces a threshold.
    revert_rate: float | None = None
    #: Multiplier of the priority fee the bot pays on Ethereum (a gas war).
    priority_fee_factor: float = 1.0
    #: The next this-many transactions go to a contract outside the allowlist (a
    #: compromised router address); the node counts them down as it sends them.
    misdirected_txs: int = 0
    #: Share (0..1) of a pool's liquidity that other LPs withdraw at the start of the
    #: block, by pool key (``make_pools()`` names).
    liquidity_drain: dict[str, float] = field(default_factory=dict)
    #: Other LPs withdraw whatever a pool holds above this value (USD) at the start of
    #: every block, by pool key: what the bot adds does not stay.
    liquidity_cap_usd: dict[str, float] = field(default_factory=dict)
    #: Roughly how far (basis points, signed, for token0's price) another trader pushes
    #: a pool's price at the start of the block, by pool key.
    price_push_bp: dict[str, float] = field(default_factory=dict)
    #: Outside (CEX-DEX) arbitrageurs bring every pool's price back within this many
    #: basis points of its reference after the other traders moved it (None: nobody does).
    reference_band_bp: float | None = None
    #: Where those outside traders hold a pool's price, in basis points off the bot's
    #: reference, by pool key (a depeg, a manipulated market): the band is centred
    #: there (a width of 0 without ``reference_band_bp``).
    reference_offset_bp: dict[str, float] = field(default_factory=dict)
    #: What a sandwich attacker takes from each successful swap's output, in basis
    #: points, by exchange (``ANY`` for all).
    sandwich_bp: dict[str, float] = field(default_factory=dict)
    #: Exchanges whose health check fails (their API cannot be reached).
    unreachable: set[str] = field(default_factory=set)
    #: Keep the arbitrage circuit breaker open (it closes again when this goes False).
    hold_breaker_open: bool = False
    #: Bytes the bot retains for good each block (a simulated leak).
    retain_bytes: int = 0

    def lookup(self, table: dict[str, float], exchange: str, neutral: float) -> float:
        """The entry for ``exchange``, else the ``ANY`` entry, else ``neutral``."""
        if not table:
            return neutral
        return table.get(exchange, table.get(ANY, neutral))


class Scenario(Protocol):
    """Called before every block with its index (0-based) and the conditions to edit."""

    def __call__(self, block: int, conditions: Conditions) -> None: ...


@runtime_checkable
class ConfiguresTelemetry(Protocol):
    """A scenario that also changes how mevobs is configured (a memory limit, exposure
    limits, where spans go): ``settings()`` is called once, before ``configure()``,
    and its keyword arguments win over the demo's."""

    def settings(self) -> Mapping[str, Any]: ...
