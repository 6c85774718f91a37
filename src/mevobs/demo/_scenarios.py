"""Named failure scenarios for ``mevobs demo --scenario NAME``: one per alert, and a healthy one.

Each scenario is a small object the driver calls before every block (the
:class:`~mevobs.demo.Scenario` protocol). It starts from a calm, healthy market
(:func:`calm`) and breaks one thing, so the alert it is for fires and little
else does; ``healthy`` breaks nothing, and no alert fires. What a scenario
does depends only on the block number, so a seed still fixes every count and
every wei of an unpaced run (``--blocks``); latency exists only in paced runs.
Scenarios that need a different ``configure()`` (a memory limit, exposure
limits, where spans go) say so in ``settings()``.

The alert a scenario is for is named by :attr:`Named.alert`; the docs tables
and the end-to-end alert tests are built from this registry.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mevobs.demo._conditions import Conditions

#: Blocks a scenario waits before breaking things (5 s paced): the bot has started
#: and Prometheus has scraped it at least once.
WARMUP = 20

#: How to see the bot-down alert, which no scenario can fire from inside the bot.
BOT_DOWN_HOWTO = "stop `mevobs demo` (`kill -9`) while Prometheus keeps scraping its port"


def calm(c: Conditions) -> None:
    """A healthy market: outside arbitrageurs keep every pool within 100 bp of its
    reference (as CEX-DEX arbitrage does), and the RPC provider rate-limits one call
    in 200. The plain demo (no scenario) is rougher: prices wander several hundred
    basis points and 3 % of RPC calls are rate limited, which short alert windows
    notice."""
    c.reference_band_bp = 100.0
    c.rate_limit_rate = 0.005
    c.priority_fee_factor = 0.1


@dataclass(frozen=True)
class Named:
    """A scenario with a name, the alert it is for, and a docstring whose first line
    says what it drives. Subclasses override :meth:`fault`."""

    name: ClassVar[str]
    alert: ClassVar[str | None] = None

    def __call__(self, block: int, conditions: Conditions) -> None:
        calm(conditions)
        self.fault(block, conditions)

    def fault(self, block: int, c: Conditions) -> None:
        """What breaks at ``block`` (nothing here)."""

    @classmethod
    def summary(cls) -> str:
        """The first line of the docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0]


@dataclass(frozen=True)
class Healthy(Named):
    """A calm market and a reliable provider: no alert fires.

    Run it as long as the longest alert window to see every rule stay silent."""

    name: ClassVar[str] = "healthy"


@dataclass(frozen=True)
class FailedTransactions(Named):
    """Half of the bot's transactions revert (a competitor wins the race).

    Arbitrage and swap calls fail or revert far above 20 %: ``MevFailedTransactions``.
    Reverted swaps fill nothing, so they record no slippage."""

    name: ClassVar[str] = "failed-transactions"
    alert: ClassVar[str | None] = "MevFailedTransactions"
    revert_rate: float = 0.5

    def fault(self, block: int, c: Conditions) -> None:
        c.revert_rate = self.revert_rate if block >= WARMUP else None


@dataclass(frozen=True)
class SecurityIncident(Named):
    """One transaction goes to a contract outside the allowlist (a compromised router).

    The unexpected-contract detector records a security event:
    ``MevSecurityIncident``. The circuit breaker trips on it and closes again after
    its cooldown (2.5 s), too soon for the trading-halted alert."""

    name: ClassVar[str] = "security-incident"
    alert: ClassVar[str | None] = "MevSecurityIncident"

    def fault(self, block: int, c: Conditions) -> None:
        if block == WARMUP * 2:
            c.misdirected_txs = 1


@dataclass(frozen=True)
class LatencyDegraded(Named):
    """After 40 s of normal operation, every RPC call made for one exchange is 40 times slower.

    Its swaps' p99 latency rises above the floor and above twice its earlier p99:
    ``MevLatencyDegraded`` (an exchange slow from the start has no faster past and
    does not fire). Paced runs only: ``--blocks`` does not sleep."""

    name: ClassVar[str] = "latency-degraded"
    alert: ClassVar[str | None] = "MevLatencyDegraded"
    exchange: str = "uniswap_v2"
    factor: float = 40.0
    start_block: int = 160

    def fault(self, block: int, c: Conditions) -> None:
        c.rpc_latency_factor = {self.exchange: self.factor} if block >= self.start_block else {}


@dataclass(frozen=True)
class ProfitabilityDrop(Named):
    """A gas war: the bot pays 100 times its usual priority fee on Ethereum.

    Its Ethereum arbitrages cost more gas than they earn and net profit turns
    negative: ``MevProfitabilityDrop`` (Arbitrum's strategies, which pay no
    priority fee, stay profitable)."""

    name: ClassVar[str] = "profitability-drop"
    alert: ClassVar[str | None] = "MevProfitabilityDrop"
    factor: float = 100.0

    def fault(self, block: int, c: Conditions) -> None:
        c.priority_fee_factor = self.factor if block >= WARMUP else 1.0


@dataclass(frozen=True)
class ExchangeDown(Named):
    """Curve cannot be reached: its health check fails and every RPC call made for it fails.

    ``mev.exchange.up`` drops to 0 for curve: ``MevExchangeConnectivity`` (its swaps
    fail too, so the failed-transactions alert joins in)."""

    name: ClassVar[str] = "exchange-down"
    alert: ClassVar[str | None] = "MevExchangeConnectivity"
    exchange: str = "curve"

    def fault(self, block: int, c: Conditions) -> None:
        down = block >= WARMUP
        c.unreachable = {self.exchange} if down else set()
        c.rpc_failure_rate = {self.exchange: 1.0} if down else {}


@dataclass(frozen=True)
class TradingHalted(Named):
    """The circuit breaker opens for 6 s and closes, then opens at 25 s and stays open.

    The short halt is under any sensible threshold and fires nothing; the long one
    fires ``MevTradingHalted`` once it lasts ``trading_halted_for``."""

    name: ClassVar[str] = "trading-halted"
    alert: ClassVar[str | None] = "MevTradingHalted"
    blip: tuple[int, int] = (WARMUP, WARMUP + 24)
    hold_from: int = 100

    def fault(self, block: int, c: Conditions) -> None:
        c.hold_breaker_open = self.blip[0] <= block < self.blip[1] or block >= self.hold_from


@dataclass(frozen=True)
class TelemetryLost(Named):
    """Spans go over OTLP to a port where nothing listens; metrics stay on Prometheus.

    Every span export fails and is counted as dropped (``export_failed``):
    ``MevTelemetryLost``."""

    name: ClassVar[str] = "telemetry-lost"
    alert: ClassVar[str | None] = "MevTelemetryLost"

    def settings(self) -> Mapping[str, Any]:
        return {"traces_exporter": "otlp", "endpoint": f"http://127.0.0.1:{_closed_port()}"}


@dataclass(frozen=True)
class HighSlippage(Named):
    """A sandwich attacker takes 1 % of every successful swap on one exchange.

    Those swaps fill about 100 bp below their quote: ``MevHighSlippage``. The
    arbitrages through that exchange earn less than expected, which the
    profit-deviation detector and the profitability alert may notice as well."""

    name: ClassVar[str] = "high-slippage"
    alert: ClassVar[str | None] = "MevHighSlippage"
    exchange: str = "uniswap_v2"
    bp: float = 100.0

    def fault(self, block: int, c: Conditions) -> None:
        c.sandwich_bp = {self.exchange: self.bp} if block >= WARMUP else {}


@dataclass(frozen=True)
class LowLiquidity(Named):
    """Liquidity providers leave the Curve pool: it keeps 60 000 USD, whatever the bot adds.

    The pool's liquidity is below 100 000 USD but not 0 (so the exchange stays
    up): ``MevLowPoolLiquidity``."""

    name: ClassVar[str] = "low-liquidity"
    alert: ClassVar[str | None] = "MevLowPoolLiquidity"
    pool: str = "curve"
    usd: float = 60_000.0

    def fault(self, block: int, c: Conditions) -> None:
        c.liquidity_cap_usd = {self.pool: self.usd} if block >= WARMUP else {}


@dataclass(frozen=True)
class PriceDeviation(Named):
    """Outside traders hold the SushiSwap pool's price 5 % above the reference (a manipulated market).

    Its price deviation stays near 500 bp: ``MevPriceDeviation``. The bot
    arbitrages it against the other pools every block and profits."""

    name: ClassVar[str] = "price-deviation"
    alert: ClassVar[str | None] = "MevPriceDeviation"
    pool: str = "sushiswap"
    bp: float = 500.0

    def fault(self, block: int, c: Conditions) -> None:
        c.reference_offset_bp = {self.pool: self.bp} if block >= WARMUP else {}


@dataclass(frozen=True)
class RateLimited(Named):
    """The RPC provider answers 15 % of calls with HTTP 429.

    ``MevRpcRateLimited``; the bot's retries absorb most of them, so trading goes on."""

    name: ClassVar[str] = "rate-limited"
    alert: ClassVar[str | None] = "MevRpcRateLimited"
    rate: float = 0.15

    def fault(self, block: int, c: Conditions) -> None:
        if block >= WARMUP:
            c.rate_limit_rate = self.rate


@dataclass(frozen=True)
class MemoryHigh(Named):
    """A leak: the bot keeps 256 KiB a block (40 MiB in all), under a limit 32 MiB above its start.

    Resident memory passes 85 % of the limit in about 10 s: ``MevMemoryHigh``. The
    limit is ``configure(memory_limit_bytes=...)`` (a cgroup's limit, where the
    process has one, takes precedence and this scenario fires nothing)."""

    name: ClassVar[str] = "memory-high"
    alert: ClassVar[str | None] = "MevMemoryHigh"
    leak_bytes: int = 256 * 1024
    leak_blocks: int = 160
    headroom_bytes: int = 32 * 1024 * 1024

    def fault(self, block: int, c: Conditions) -> None:
        c.retain_bytes = self.leak_bytes if block < self.leak_blocks else 0

    def settings(self) -> Mapping[str, Any]:
        from mevobs.guards._process import resident_bytes

        return {"memory_limit_bytes": (resident_bytes() or 0) + self.headroom_bytes}


@dataclass(frozen=True)
class RiskExposure(Named):
    """The risk limit on WETH is cut to 90 while the bot holds about 100 on each chain.

    The inventory is above its limit: ``MevRiskExposure``."""

    name: ClassVar[str] = "risk-exposure"
    alert: ClassVar[str | None] = "MevRiskExposure"
    limit: float = 90.0

    def settings(self) -> Mapping[str, Any]:
        return {"exposure_limits": {"WETH": self.limit}}


def _closed_port() -> int:
    """A loopback port nothing listens on (the OS just handed it out and took it back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SCENARIOS: dict[str, Named] = {
    s.name: s
    for s in (
        Healthy(),
        FailedTransactions(),
        SecurityIncident(),
        LatencyDegraded(),
        ProfitabilityDrop(),
        ExchangeDown(),
        TradingHalted(),
        TelemetryLost(),
        HighSlippage(),
        LowLiquidity(),
        PriceDeviation(),
        RateLimited(),
        MemoryHigh(),
        RiskExposure(),
    )
}
"""Every named scenario, by name, in the order the docs list them."""


def scenario(name: str) -> Named:
    """The scenario called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; one of: {', '.join(SCENARIOS)}") from None


def how_to_fire(alert: str) -> str | None:
    """The command (or action) that makes ``alert`` fire from the demo, if any."""
    names = [s.name for s in SCENARIOS.values() if s.alert == alert]
    if names:
        return " or ".join(f"`mevobs demo --scenario {n}`" for n in names)
    return BOT_DOWN_HOWTO if alert == "MevBotDown" else None


def listing() -> str:
    """One line per scenario: its name, the alert it is for and what it drives."""
    rows = [f"{s.name:<20} {s.alert or '(none)':<24} {s.summary()}" for s in SCENARIOS.values()]
    return "\n".join([f"{'scenario':<20} {'alert':<24} what it drives", *rows])
