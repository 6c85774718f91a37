"""A real alerting stack for the alert tests: one Prometheus loading the generated
rules, one Alertmanager with the generated routing (both conftest's servers), the
webhook receiver Alertmanager calls, and one ``mevobs demo`` process per scenario,
all on 127.0.0.1.

Every demo is its own scrape job, and a scrape relabel writes the job into the
``mev_chain`` label of its ``mev_*`` series (``healthy/ethereum``). Alerts summed
over the fleet (failures, slippage, liquidity...) keep ``mev_chain``, the others
keep ``job``, so every alert says which demo raised it, and one demo's critical
alert cannot inhibit another demo's warning. The rules and the Alertmanager file
are exactly what ``mevobs rules`` and ``mevobs alertmanager`` write for the
settings given: short windows, never another expression.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from tests.integration.conftest import Alertmanager, Prometheus, _stop, free_port

import mevobs
from mevobs.alerts import AlertSettings, write_alertmanager, write_rules

T = TypeVar("T")
SRC = str(Path(mevobs.__file__).parents[1])  # this checkout's mevobs, for the subprocesses
#: How often Prometheus scrapes each demo. Not 1 s: a demo's /metrics is about 450 KB and
#: takes 60 ms of CPU to render, so a dozen demos scraped every second kept two cores busy,
#: and scrapes timing out at 1 s made healthy demos look down (scrape_timeout <= interval).
SCRAPE_SECONDS = 2


@dataclass(frozen=True)
class Received:
    """One alert as a webhook received it."""

    at: float  # time.monotonic()
    path: str  # /pager or /chat
    status: str  # firing or resolved
    labels: dict[str, str]


class Webhooks:
    """Receives Alertmanager's webhook notifications and keeps every alert in them."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                now = time.monotonic()
                with hooks._lock:
                    for alert in body["alerts"]:
                        hooks.received.append(Received(now, self.path, alert["status"], alert["labels"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def alertnames(self, path: str) -> set[str]:
        """The names of the alerts that reached ``path`` (firing or resolved)."""
        return {r.labels["alertname"] for r in self.alerts() if r.path == path}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def quiet_ports(n: int) -> list[int]:
    """``n`` distinct free ports below the kernel's ephemeral range: no server binding
    port 0 and no outgoing connection takes one between now and its demo's start (with
    a dozen processes starting at once, a port from ``free_port()`` once was)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    if low < 12_000:
        return [free_port() for _ in range(n)]  # no room below: the ephemeral way
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < n:
        port = rng.randrange(low - 10_000, low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def owner(labels: dict[str, str]) -> str:
    """The demo (scrape job) an alert is about: its job, else the job in its chain."""
    return labels.get("job") or labels.get("mev_chain", "").partition("/")[0]


@dataclass
class Demo:
    """One ``mevobs demo`` process, scraped as job ``name`` on ``port``."""

    name: str
    args: list[str]
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # time.monotonic() of the last start
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = self.workdir / "demo.out"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mevobs", "demo", "--metrics-port", str(self.port), *self.args],
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": SRC},
            )
        self.started = time.monotonic()

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(30)

    def serves_metrics(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                return r.status == 200 and b"mev_heartbeat_seconds" in r.read()
        except (OSError, urllib.error.URLError):
            return False


class Stack:
    """Prometheus, Alertmanager, the webhook receiver and the demos (not yet started)."""

    def __init__(self, workdir: Path, settings: AlertSettings, demos: dict[str, list[str]]) -> None:
        self.webhooks = Webhooks()
        hook = f"http://127.0.0.1:{self.webhooks.port}"
        self.settings = settings.model_copy(
            update={"pager_webhook_url": f"{hook}/pager", "chat_webhook_url": f"{hook}/chat"}
        )
        ports = quiet_ports(len(demos))
        self.demos = {
            name: Demo(name, args, port, workdir / name)
            for (name, args), port in zip(demos.items(), ports, strict=True)
        }
        rules, am_config = workdir / "rules.yml", workdir / "alertmanager.yml"
        write_rules(rules, self.settings)
        write_alertmanager(am_config, self.settings)
        self.started = time.monotonic()
        self.alertmanager = Alertmanager(workdir, am_config)
        try:
            self.prometheus = Prometheus(
                workdir,
                scrape_configs=[_scrape(demo) for demo in self.demos.values()],
                scrape_interval=f"{SCRAPE_SECONDS}s",
                rule_files=[rules],
                alertmanager_port=self.alertmanager.port,
            )
        except BaseException:
            self.alertmanager.stop()
            self.webhooks.stop()
            raise

    # -- Prometheus
    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.prometheus.query(expr)

    def alert_history(self, name: str) -> list[dict[str, Any]]:
        """Every ALERTS series (pending or firing) about demo ``name`` since the stack
        started, with its samples: what the rules said, before any inhibition."""
        lasting = f"{int(time.monotonic() - self.started) + 60}s"
        by_job = self.query(f'ALERTS{{job="{name}"}}[{lasting}]')
        by_chain = self.query(f'ALERTS{{job="", mev_chain=~"{name}/.*"}}[{lasting}]')
        return by_job + by_chain

    def scraped(self, name: str) -> bool:
        """Whether Prometheus has seen the heartbeat of demo ``name``."""
        return bool(self.query(f'mev_heartbeat_seconds{{job="{name}"}}'))

    # -- the webhooks
    def received(self, name: str, alertname: str, status: str = "firing") -> list[Received]:
        return [
            r
            for r in self.webhooks.alerts()
            if owner(r.labels) == name and r.labels["alertname"] == alertname and r.status == status
        ]

    # -- life cycle
    def start_demos(self, names: Iterable[str]) -> None:
        self.started = time.monotonic()
        for name in names:
            self.demos[name].start()

    def stop(self) -> None:
        running = [d.proc for d in self.demos.values() if d.proc is not None and d.proc.poll() is None]
        for proc in running:
            proc.terminate()  # all at once: each takes a few seconds to flush and exit
        for proc in running:
            _stop(proc)
        self.prometheus.stop()
        self.alertmanager.stop()
        self.webhooks.stop()


def _scrape(demo: Demo) -> dict[str, Any]:
    return {
        "job_name": demo.name,
        "static_configs": [{"targets": [f"127.0.0.1:{demo.port}"]}],
        "metric_relabel_configs": [
            {
                "source_labels": ["__name__", "mev_chain"],
                "regex": "mev_.*;(.*)",
                "target_label": "mev_chain",
                "replacement": f"{demo.name}/$1",
            }
        ],
    }


def wait_for(what: str, check: Callable[[], T], timeout: float, every: float = 0.5) -> T:
    """``check()``'s first truthy result, polling; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
