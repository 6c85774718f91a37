"""Health endpoints: ``/healthz`` (liveness) and ``/readyz`` (every check passes).

Checks are sync or async callables; each runs with a timeout on the server's
own event loop thread (sync ones in a small thread pool), so a hanging check
fails the readiness probe instead of hanging it. Checks tied to an exchange
feed the ``mev.exchange.up`` gauge.

HTTP is served apart from the checks (see ``_health_http``), so ``/healthz``
never waits on a check. ``/readyz`` probes share runs of the checks, and start
at most a few per second, so a probe storm cannot hammer the exchanges the
checks call.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import hmac
import inspect
import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mevobs import semconv
from mevobs._scrub import scrub_text
from mevobs._state import LOGGER, STATE, on_fork_in_child
from mevobs.guards._health_http import HttpFront, Run, default_max_connections, listen

CheckFn = Callable[[], Any]


@dataclass
class HealthCheck:
    """One registered check and what it last reported."""

    name: str
    fn: CheckFn
    timeout: float = 2.0
    exchange: str | None = None
    chain: str | None = None
    last_error: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    error: str | None
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": "pass" if self.ok else "fail",
            "latency_ms": round(self.latency_ms, 3),
            "error": self.error,
            "last_error": self.last_error,
        }


_REGISTRY: dict[str, HealthCheck] = {}
_REGISTRY_LOCK = threading.Lock()


def _new_registry_lock() -> None:
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.Lock()  # another thread of the parent may have held it at the fork


on_fork_in_child(_new_registry_lock)


def register_health_check(
    name: str,
    fn: CheckFn,
    *,
    timeout: float = 2.0,
    exchange: str | None = None,
    chain: str | None = None,
) -> HealthCheck:
    """Register a readiness check for every :class:`HealthServer` of this process.

    ``fn`` takes no arguments, sync or ``async``; it passes unless it raises, times
    out or returns ``False``. With ``exchange``/``chain`` its result also sets the
    ``mev.exchange.up`` gauge (an RPC ``eth_blockNumber`` ping, for instance).
    Registering a name again replaces the check.
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    check = HealthCheck(name, fn, timeout, exchange, chain)
    with _REGISTRY_LOCK:
        _REGISTRY[name] = check
    return check


def unregister_health_check(name: str) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HealthServer:
    """Serves ``GET /healthz`` and ``GET /readyz`` as JSON on ``host:port``.

    ``/healthz`` answers 200 while the process runs. ``/readyz`` runs every check
    (the process-wide ones and ``checks``) and answers 200 when all pass, else 503,
    with each check's status, latency and last error. Bound to loopback by
    default; with ``token`` every request needs ``Authorization: Bearer <token>``.
    ``port=0`` picks a free port (see :attr:`port`). ``interval`` re-runs the
    checks in the background so ``mev.exchange.up`` stays fresh between probes;
    ``workers`` threads run sync checks.

    Serving is bounded whatever clients do: a connection that has not sent a
    whole request ``idle_timeout`` seconds after it opened or after its last
    answer is closed; at most ``max_connections`` are open (default 1024, and at
    most a quarter of the open-files limit), the least recently active idle one
    closed to admit another; ``backlog`` is the listen queue (the kernel caps it
    at ``net.core.somaxconn``). HTTP/1.1 keep-alive is honoured. Probes that
    arrive while the checks run share that run, and probes start at most
    ``max_check_runs_per_second`` runs in any second; past that they get the
    latest result, never more than a second old.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        checks: dict[str, CheckFn] | None = None,
        token: str | None = None,
        interval: float | None = 15.0,
        workers: int = 4,
        idle_timeout: float = 5.0,
        backlog: int = 1024,
        max_connections: int | None = None,
        max_check_runs_per_second: int = 5,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if backlog < 1 or (max_connections is not None and max_connections < 1):
            raise ValueError("backlog and max_connections must be at least 1")
        if max_check_runs_per_second < 1:
            raise ValueError("max_check_runs_per_second must be at least 1")
        self._own = {name: HealthCheck(name, fn) for name, fn in (checks or {}).items()}
        self._token = token
        listener = listen(host, port, backlog)  # a busy port raises before any thread starts
        if not _is_loopback(host) and token is None:
            LOGGER.warning("HealthServer on %s without a token: anyone who can reach it can read it", host)
        self.host = host
        self.port = int(listener.getsockname()[1])
        self._stop = threading.Event()
        # Shared runs: the one in flight, the latest result with its start time,
        # and when probes last started runs (the rate limit).
        self._run_lock = threading.Lock()
        self._running: Run | None = None
        self._latest: tuple[float, list[CheckResult]] | None = None
        self._probe_starts: collections.deque[float] = collections.deque(maxlen=max_check_runs_per_second)
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="mevobs-health")
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="mevobs-health-loop", daemon=True
        )
        self._loop_thread.start()
        try:
            self._front = HttpFront(
                listener,
                authorised=self._authorised,
                readiness=self._probe_run,
                idle_timeout=idle_timeout,
                max_connections=max_connections or default_max_connections(),
            )
        except BaseException:  # out of descriptors, say: leave no socket or thread behind
            listener.close()
            self._loop.call_soon_threadsafe(self._stop_loop)
            self._pool.shutdown(wait=False)
            raise
        self._refresher: threading.Thread | None = None
        if interval:
            self._refresher = threading.Thread(
                target=self._refresh, args=(interval,), name="mevobs-health-refresh", daemon=True
            )
            self._refresher.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Client connections open right now."""
        return self._front.open_connections

    def checks(self) -> list[HealthCheck]:
        with _REGISTRY_LOCK:
            merged = {**_REGISTRY, **self._own}
        return list(merged.values())

    def run_checks(self) -> list[CheckResult]:
        """Run every check now (each within its timeout) and return the results.

        A run already in flight (for a probe or the background refresh) is
        joined rather than doubled.
        """
        checks = self.checks()
        if not checks:
            return []
        return self._shared_run(checks, probe=False).result(_deadline(checks))

    def close(self) -> None:
        """Stop serving and drop every connection; never waits for a hung check."""
        self._stop.set()
        self._front.stop()
        if self._refresher is not None:
            self._refresher.join(5)
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop_loop)
            self._loop_thread.join(5)
            if not self._loop.is_running():
                self._loop.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _stop_loop(self) -> None:
        """On the loop: cancel what still runs (hung async checks), then stop."""
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.call_soon(self._loop.stop)

    def __enter__(self) -> HealthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- private

    async def _run_one(self, check: HealthCheck) -> CheckResult:
        start = time.perf_counter()
        error = None
        try:
            if inspect.iscoroutinefunction(check.fn):
                outcome = await asyncio.wait_for(check.fn(), check.timeout)
            else:
                call = self._loop.run_in_executor(self._pool, check.fn)
                outcome = await asyncio.wait_for(call, check.timeout)
                if inspect.isawaitable(outcome):
                    outcome = await asyncio.wait_for(outcome, check.timeout)
            if outcome is False:
                error = "check returned False"
        except asyncio.TimeoutError:
            error = f"timed out after {check.timeout:g} s"
        except Exception as exc:
            error = scrub_text(f"{type(exc).__name__}: {exc}")[:300]
        latency = (time.perf_counter() - start) * 1000
        if error is not None:
            check.last_error = error
        if check.exchange or check.chain:
            self._publish(check, error is None)
        return CheckResult(check.name, error is None, latency, error, check.last_error)

    async def _run_all(self, checks: list[HealthCheck]) -> list[CheckResult]:
        return list(await asyncio.gather(*(self._run_one(c) for c in checks)))

    def _shared_run(self, checks: list[HealthCheck], *, probe: bool) -> Run:
        """The run in flight, else (for a probe over the rate) the latest result,
        else a new run: never two runs at once, whoever asks."""
        with self._run_lock:
            running = self._running
            if running is not None and not running.done():
                return running
            now = time.monotonic()
            starts, latest = self._probe_starts, self._latest
            over_rate = probe and len(starts) == starts.maxlen and now - starts[0] < 1.0
            if over_rate and latest is not None and now - latest[0] < 1.0:
                cached: Run = concurrent.futures.Future()
                cached.set_result(latest[1])
                return cached
            if probe:
                starts.append(now)
            running = asyncio.run_coroutine_threadsafe(self._run_all(checks), self._loop)
            self._running = running
        running.add_done_callback(functools.partial(self._remember, now))
        return running

    def _probe_run(self) -> tuple[Run | None, float]:
        """What a ``/readyz`` probe waits on, and for how long at most."""
        checks = self.checks()
        return (self._shared_run(checks, probe=True), _deadline(checks)) if checks else (None, 0.0)

    def _remember(self, started: float, run: Run) -> None:
        if run.cancelled() or run.exception() is not None:
            return
        with self._run_lock:
            if self._latest is None or self._latest[0] <= started:
                self._latest = (started, run.result())

    @staticmethod
    def _publish(check: HealthCheck, up: bool) -> None:
        try:
            if STATE.live or STATE.check_live():
                labels = {
                    k: STATE.limiter.limit(k, v)
                    for k, v in ((semconv.ATTR_EXCHANGE, check.exchange), (semconv.ATTR_CHAIN, check.chain))
                    if v
                }
                STATE.instruments.gauge(semconv.EXCHANGE_UP).set(1 if up else 0, labels)
        except Exception as exc:
            STATE.dropped("recorder_error", f"exchange.up: {type(exc).__name__}")

    def _refresh(self, interval: float) -> None:
        """Run the checks now and every ``interval`` seconds (the gauge is there from the start)."""
        while not self._stop.is_set():
            try:
                self.run_checks()
            except Exception as exc:  # a hung loop: the next probe reports it
                LOGGER.debug("health refresh failed: %s", type(exc).__name__)
            self._stop.wait(interval)

    def _authorised(self, header: str | None) -> bool:
        if self._token is None:
            return True
        expected = f"Bearer {self._token}"
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())


def _deadline(checks: list[HealthCheck]) -> float:
    """How long a run of ``checks`` may take before the loop counts as hung."""
    return max(c.timeout for c in checks) + 1.0
