"""Run the demo: configure mevobs, drive the bot block by block, print the summary.

The number of blocks is fixed by ``--duration`` (one block per 0.25 s tick, paced
to the wall clock) or by ``--blocks`` (as fast as the machine goes: no pacing,
no simulated RPC latency), and all randomness comes from ``--seed``: the same
seed and options give the same counts and the same profit, whatever the
machine's speed. ``--blocks N`` runs exactly the blocks of ``--duration N/4``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import mevobs
from mevobs.demo._amm import Pool
from mevobs.demo._bot import ETH_USD, Bot, make_chains, tvl_usd
from mevobs.demo._chain import ROUTER, Node
from mevobs.demo._conditions import Conditions, ConfiguresTelemetry, Scenario
from mevobs.demo._summary import Tally, render

TICK_SECONDS = 0.25
#: The demo's limits, far above what it uses: they feed the limit panels and the
#: memory and exposure alerts (scenarios lower them).
MEMORY_LIMIT_BYTES = 1 << 30
EXPOSURE_LIMITS = {"WETH": 150.0}


@dataclass(frozen=True)
class DemoOptions:
    duration: float = 15.0
    #: Run this many blocks unpaced instead of ``duration`` seconds paced.
    blocks: int | None = None
    seed: int = 1
    exporter: str = "prometheus"
    fail_rate: float = 0.0
    metrics_port: int = 9464
    log_stdout: bool = False
    log_path: Path | None = None
    time_scale: float = 1.0  # scales simulated RPC latency (tests use less)
    health_port: int = 0  # 0: any free port (printed)
    audit_path: Path | None = None
    #: Edits the simulation's conditions before every block (None: a normal run).
    scenario: Scenario | None = None

    @property
    def paced(self) -> bool:
        return self.blocks is None

    @property
    def total_blocks(self) -> int:
        if self.blocks is not None:
            return max(1, self.blocks)
        return max(1, round(self.duration / TICK_SECONDS))


@dataclass
class DemoResult:
    blocks: int
    tally: Tally
    bot: Bot
    summary: str
    log_path: Path
    audit_path: Path


class _BlockFileHandler(logging.FileHandler):
    """A JSON log file written through, but flushed once a block rather than per record
    (the driver calls ``flush``): the same lines, without a system call each."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.stream is None:  # closed: a record after the run (as logging.FileHandler does)
                self.stream = self._open()
            self.stream.write(self.format(record) + self.terminator)
        except Exception:  # logging's contract: report, never raise into the caller
            self.handleError(record)


def _progress_every(options: DemoOptions, tty: bool) -> int:
    """Blocks between progress lines: a terminal line redraws each paced block; a log
    (CI) gets one every 20 blocks; an unpaced run about 1000 redraws or 100 lines."""
    total = options.total_blocks
    if options.paced:
        return 1 if tty else 20
    return max(1, total // 1000) if tty else max(20, total // 100)


def _progress(out: TextIO, done: int, total: int, every: int, tally: Tally, bot: Bot) -> None:
    """Redraw one status line on a terminal; elsewhere print one line now and then."""
    tty = out.isatty()
    if done % every and done != total:
        return
    line = (
        f"{chr(13) if tty else ''}block {done}/{total}  ops {tally.total()}  "
        f"arbs {tally.total(kind='arbitrage')}  net {mevobs.wei_to_eth(bot.net_profit_wei):+.5f} ETH  "
        f"rate-limited {tally.total(kind='rpc', outcome='rate_limited')}"
    )
    out.write(line if tty else line + "\n")
    out.flush()


def _hold_breaker(breaker: mevobs.CircuitBreaker | None, conditions: Conditions, held: bool) -> bool:
    """Open the breaker while the conditions hold it, close it when they let go; returns
    whether it is held now."""
    if breaker is None:
        return False
    if conditions.hold_breaker_open and not held:
        breaker.trip("held open by the scenario")
        return True
    if held and not conditions.hold_breaker_open:
        breaker.reset()
        return False
    return held


async def _drive(
    options: DemoOptions, bot: Bot, node: Node, tally: Tally, out: TextIO, log_file: logging.Handler
) -> int:
    """Run the blocks; returns how many ran (fewer if interrupted)."""
    chains = make_chains()
    node.chains = chains
    conditions = node.conditions = Conditions()
    mevobs.watch_event_loop()  # mev.eventloop.lag while the bot runs
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    total, every = options.total_blocks, _progress_every(options, out.isatty())
    held = False
    done = 0
    started = time.monotonic()
    for block in range(total):
        if stop.is_set():
            break
        if options.scenario is not None:
            options.scenario(block, conditions)
            held = _hold_breaker(bot.breaker, conditions, held)
        await bot.tick(chains, conditions)
        bot.journal_size()  # the bot reads its journal back: a query a block
        done = block + 1
        log_file.flush()
        _progress(out, done, total, every, tally, bot)
        if not options.paced:
            await asyncio.sleep(0)  # let the loop run signal handlers and the lag watcher
            continue
        # Pace blocks to wall-clock ticks; a slow tick just runs late, never changes what happens.
        delay = started + done * TICK_SECONDS * options.time_scale - time.monotonic()
        if delay > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    if out.isatty():
        out.write("\n")
    return done


def _breaker(node: Node) -> mevobs.CircuitBreaker:
    """Halts arbitrage on a revert streak, a high failure rate or a drawdown, and on an
    unexpected contract. Its clock is simulated chain time (12 s a block), so a seed
    still fixes every decision."""
    return mevobs.CircuitBreaker(
        "demo-arbitrage",
        max_failure_rate=0.7,
        window_seconds=600,
        min_calls=20,
        max_consecutive_failures=8,
        max_drawdown_eth=2,
        trip_on_security=("unexpected_contract",),
        cooldown_seconds=120,
        clock=lambda: node.chains["ethereum"].block_number * 12.0 if node.chains else 0.0,
    )


def _pool_check(pool: Pool, node: Node) -> Any:
    """The pool's exchange answers (the conditions may say it cannot be reached) and
    the pool holds liquidity."""
    return lambda: pool.exchange not in node.conditions.unreachable and tvl_usd(pool) > 0


def _register_checks(bot: Bot, breaker: mevobs.CircuitBreaker) -> list[str]:
    """Readiness: the breaker is not open, and each exchange's pools hold liquidity
    (these feed mev.exchange.up). They read state only: the seed's RNG is untouched."""
    names = ["circuit"]
    mevobs.register_health_check("circuit", lambda: breaker.state != "open", timeout=1)
    for key, pool in bot.pools.items():
        name = f"pool:{key}"
        mevobs.register_health_check(
            name, _pool_check(pool, bot.node), timeout=1, exchange=pool.exchange, chain=pool.chain
        )
        names.append(name)
    return names


def _environment_names_service(env: Mapping[str, str]) -> bool:
    """Whether the environment gives the service a name (then the demo's default yields)."""
    if env.get("OTEL_SERVICE_NAME") or env.get("MEVOBS_SERVICE_NAME"):
        return True
    pairs = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return any(item.partition("=")[0].strip() == "service.name" for item in pairs.split(","))


def _service_name(telemetry: mevobs.Telemetry) -> str:
    resource = getattr(telemetry.tracer_provider, "resource", None)
    name = resource.attributes.get("service.name") if resource is not None else None
    return str(name or telemetry.settings.service_name)


def run_demo(options: DemoOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> DemoResult:
    """Run the simulated bot with telemetry exported as the options say, and every
    runtime guard on: health endpoints, security detectors, the audit trail, system
    metrics and a circuit breaker on the arbitrage executor."""
    log_path = options.log_path or Path.cwd() / f"mevobs-demo-{options.seed}.jsonl"
    audit_path = options.audit_path or log_path.with_name(log_path.stem + ".audit.jsonl")
    settings: dict[str, Any] = {
        "log_destination": "stdout" if options.log_stdout else "none",
        "log_level": "INFO",
        "health_port": options.health_port,
        "health_interval_seconds": 2.0,
        "audit_path": str(audit_path),
        "system_metrics": True,
        "contract_allowlist": {"ethereum": [ROUTER], "arbitrum": [ROUTER]},
        "memory_limit_bytes": MEMORY_LIMIT_BYTES,
        "exposure_limits": EXPOSURE_LIMITS,
    }
    if importlib.util.find_spec("opentelemetry.instrumentation.sqlite3") is not None:
        settings["instrument"] = ["sqlite3"]  # the trade journal's queries (mev.db.duration)
    if not _environment_names_service(os.environ):
        settings["service_name"] = "mevobs-demo"  # a default: OTEL_SERVICE_NAME and the like win
    # The endpoint, protocol and headers are left to the OTEL_EXPORTER_OTLP_* variables.
    settings["exporter"] = options.exporter
    if options.exporter == "prometheus":
        settings["metrics_port"] = options.metrics_port
    if isinstance(options.scenario, ConfiguresTelemetry):
        settings.update(options.scenario.settings())
    # The bot and its readiness checks exist before configure() starts the health server.
    rng = random.Random(options.seed)
    node = Node(
        rng,
        chains={},
        time_scale=options.time_scale,
        paced=options.paced,
        fail_rate=options.fail_rate,
        rate_limit_p=0.03 + options.fail_rate * 0.1,
        timeout_p=0.01 + options.fail_rate * 0.05,
    )
    breaker = _breaker(node)
    bot = Bot(rng, node, breaker=breaker)
    checks = _register_checks(bot, breaker)
    try:
        telemetry = mevobs.configure(**settings)
    except BaseException:
        for name in checks:
            mevobs.unregister_health_check(name)
        raise
    bot.open_journal()  # after configure(): the sqlite3 instrumentation traces its queries
    logger = logging.getLogger("mevobs")
    file_handler = _BlockFileHandler(log_path, encoding="utf-8")
    file_handler.setFormatter(mevobs.JsonFormatter(_service_name(telemetry)))
    tally = Tally()
    logger.addHandler(file_handler)
    logger.addHandler(tally)
    pace = "" if options.paced else " (unpaced)"
    err.write(f"mevobs demo: seed {options.seed}, {options.total_blocks} blocks{pace}, ")
    err.write(f"exporter {options.exporter}")
    called = getattr(options.scenario, "name", None)
    err.write(f", scenario {called}\n" if isinstance(called, str) else "\n")
    if telemetry.metrics_url is not None:
        err.write(f"metrics: {telemetry.metrics_url}\n")
    err.write(f"logs: {log_path}\n")
    err.write(f"audit trail: {audit_path}\n")
    if telemetry.health is not None:
        err.write(f"health: {telemetry.health.url}/readyz\n")
    try:
        done = asyncio.run(_drive(options, bot, node, tally, err, file_handler))
    except KeyboardInterrupt:
        done = -1
    finally:
        # Operation logs are written by mevobs's worker: flush before the tally stops reading.
        telemetry.force_flush(5)
        logger.removeHandler(file_handler)
        logger.removeHandler(tally)
        file_handler.close()
        for name in checks:
            mevobs.unregister_health_check(name)
        if bot.journal is not None:
            bot.journal.close()
    summary = render(
        tally,
        gas_wei=bot.gas_spent_wei,
        net_wei=bot.net_profit_wei,
        eth_usd=ETH_USD,
        funnel=bot.funnel,
        guards={
            "circuit breaker": f"{breaker.state}, {breaker.stats.trips} trips, "
            f"{bot.refused} arbitrages refused",
            "security events": str(tally.security_events),
            "audit trail": str(audit_path),
        },
    )
    out.write(summary + "\n")
    out.flush()
    return DemoResult(done, tally, bot, summary, log_path, audit_path)
