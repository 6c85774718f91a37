"""Gauges of the bot process itself, read at every collection: a heartbeat, its memory and
its memory limit, and the configured risk limits.

They are what the operational alerts compare against, on every export path
(Prometheus or OTLP, with or without ``system_metrics``): the bot-down alert needs
a series that vanishes when the process does (``mev.heartbeat``), the memory alert
needs the usage and the limit side by side (the tightest of ``memory_limit_bytes``,
the cgroup's limit and the host's RAM, so every bot reports one), the exposure alert needs each token's
limit beside its exposure. They register themselves with the instruments (this
module is imported with the guards; the core never imports it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from mevobs import semconv
from mevobs._instruments import register_observer
from mevobs._state import STATE

_STARTED = time.time()
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# Above this a cgroup "limit" means no limit (v1 reports ~2**63 for unlimited).
_UNLIMITED = 1 << 60


class ProcessLimits:
    """What ``configure()`` was told about limits (reset when it shuts down)."""

    memory_limit_bytes: int | None = None
    exposure_limits: Mapping[str, Decimal] = {}


LIMITS = ProcessLimits()


def configure_limits(memory_limit_bytes: int | None, exposure_limits: Mapping[str, Any]) -> None:
    LIMITS.memory_limit_bytes = memory_limit_bytes
    LIMITS.exposure_limits = {token: Decimal(str(limit)) for token, limit in exposure_limits.items()}


def resident_bytes() -> int | None:
    """Resident memory of this process (Linux ``/proc``), None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def cgroup_memory_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """This process's cgroup memory limit (v2, then v1), None when there is none."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates: list[Path] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "":  # cgroup v2
            candidates += [root / rel / "memory.max", root / "memory.max"]
        elif "memory" in controllers.split(","):
            candidates += [
                root / "memory" / rel / "memory.limit_in_bytes",
                root / "memory" / "memory.limit_in_bytes",
            ]
    for candidate in candidates:
        try:
            text = candidate.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < _UNLIMITED:
            return int(text)
        if text == "max":
            return None
    return None


def host_memory() -> int | None:
    """The host's physical memory (the limit of a process in no memory cgroup)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * _PAGE
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit() -> int | None:
    """The limit the process reaches first: the smallest of the configured
    ``memory_limit_bytes``, its cgroup's limit and the host's RAM (a configured value
    above the cgroup's would promise memory the OOM killer takes away earlier)."""
    known = [
        limit
        for limit in (LIMITS.memory_limit_bytes, cgroup_memory_limit(), host_memory())
        if limit is not None and limit > 0
    ]
    return min(known) if known else None


def _heartbeat() -> Iterable[tuple[float, Mapping[str, Any]]]:
    return [(time.time() - _STARTED, {})]


def _memory() -> Iterable[tuple[float, Mapping[str, Any]]]:
    rss = resident_bytes()
    return [] if rss is None else [(float(rss), {})]


def _memory_limit() -> Iterable[tuple[float, Mapping[str, Any]]]:
    limit = memory_limit()
    return [] if limit is None else [(float(limit), {})]


def _exposure_limits() -> Iterable[tuple[float, Mapping[str, Any]]]:
    return [
        (float(limit), {semconv.ATTR_TOKEN: STATE.limiter.limit(semconv.ATTR_TOKEN, token)})
        for token, limit in LIMITS.exposure_limits.items()
    ]


register_observer(semconv.HEARTBEAT, _heartbeat)
register_observer(semconv.PROCESS_MEMORY, _memory)
register_observer(semconv.PROCESS_MEMORY_LIMIT, _memory_limit)
register_observer(semconv.EXPOSURE_LIMIT, _exposure_limits)
