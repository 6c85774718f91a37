"""The seam for failure scenarios: what may differ from a normal block, and who decides.

The driver owns one :class:`Conditions` and hands it to a :class:`Scenario` before
every block; the node, the bot and the driver read it while the block runs. Its
defaults are the normal world, and a neutral value draws nothing from the seed's
random stream, so a run without a scenario is exactly the run it always was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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
    #: Share (0..1) of a pool's liquidity that other LPs withdraw at the start of the
    #: block, by pool key (``make_pools()`` names).
    liquidity_drain: dict[str, float] = field(default_factory=dict)
    #: Roughly how far (basis points, signed, for token0's price) another trader pushes
    #: a pool's price at the start of the block, by pool key.
    price_push_bp: dict[str, float] = field(default_factory=dict)
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
