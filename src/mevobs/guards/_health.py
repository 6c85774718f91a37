"""Health endpoints: ``/healthz`` (liveness) and ``/readyz`` (every check passes).

Checks are sync or async callables; each runs with a timeout on the server's
own event loop thread (sync ones in a small thread pool), so a hanging check
fails the readiness probe instead of hanging it. Checks tied to an exchange
feed the ``mev.exchange.up`` gauge.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import inspect
import ipaddress
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mevobs import semconv
from mevobs._scrub import scrub_text
from mevobs._state import LOGGER, STATE

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
    checks in the background so ``mev.exchange.up`` stays fresh between probes.
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
    ) -> None:
        self._own = {name: HealthCheck(name, fn) for name, fn in (checks or {}).items()}
        self._token = token
        if not _is_loopback(host) and token is None:
            LOGGER.warning("HealthServer on %s without a token: anyone who can reach it can read it", host)
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="mevobs-health")
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="mevobs-health-loop", daemon=True
        )
        self._loop_thread.start()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._serve = threading.Thread(target=self._httpd.serve_forever, name="mevobs-health", daemon=True)
        self._serve.start()
        self._refresher: threading.Thread | None = None
        if interval:
            self._refresher = threading.Thread(
                target=self._refresh, args=(interval,), name="mevobs-health-refresh", daemon=True
            )
            self._refresher.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def checks(self) -> list[HealthCheck]:
        with _REGISTRY_LOCK:
            merged = {**_REGISTRY, **self._own}
        return list(merged.values())

    def run_checks(self) -> list[CheckResult]:
        """Run every check now (each within its timeout) and return the results."""
        checks = self.checks()
        if not checks:
            return []
        deadline = max(c.timeout for c in checks) + 1.0
        future = asyncio.run_coroutine_threadsafe(self._run_all(checks), self._loop)
        return future.result(deadline)

    def close(self) -> None:
        """Stop serving; never waits for a hung check."""
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not server._authorised(self.headers.get("Authorization")):
                    self._send(401, {"status": "unauthorized"})
                    return
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/healthz":
                    self._send(200, {"status": "ok"})
                elif path == "/readyz":
                    try:
                        results = server.run_checks()
                    except Exception as exc:
                        self._send(503, {"status": "fail", "error": type(exc).__name__, "checks": []})
                        return
                    ok = all(r.ok for r in results)
                    body = {"status": "ok" if ok else "fail", "checks": [r.as_json() for r in results]}
                    self._send(200 if ok else 503, body)
                else:
                    self._send(404, {"status": "not found", "endpoints": ["/healthz", "/readyz"]})

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # probes every few seconds: not worth a log line
                pass

        return Handler
