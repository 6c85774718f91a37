"""What configure() switches on besides export: security detectors, the audit trail,
the health server, system metrics and contrib instrumentations.

:func:`start_guards` starts them and returns what configure() must install
(hooks, exposure hooks, detector kinds) without installing anything itself: if
one guard fails to start (a busy health port), the ones already started are
stopped and the error is raised, so configure() stays all or nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mevobs._protocols import Detector, ExposureHook, Hook
from mevobs._state import Providers
from mevobs.guards._audit import AuditLog
from mevobs.guards._health import HealthServer
from mevobs.guards._process import configure_limits
from mevobs.guards._runtime import Closer, start_instrumentations, start_system_metrics, watch_if_running
from mevobs.guards._security import SecurityMonitor, SecuritySettings


@dataclass
class Guards:
    closers: list[Closer] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    exposure_hooks: list[ExposureHook] = field(default_factory=list)
    security_kinds: frozenset[str] = frozenset()
    health: HealthServer | None = None
    audit: AuditLog | None = None

    def stop(self) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()


def security_monitor(
    settings: SecuritySettings, allowlist: dict[str, list[str]], detectors: Sequence[Detector]
) -> SecurityMonitor | None:
    """The monitor of the built-in detectors (when enabled) and the user's, if any."""
    if not settings.enabled and not detectors:
        return None
    builtin: list[Detector] | None = None if settings.enabled else []
    return SecurityMonitor(settings, allowlist, detectors=builtin, extra=detectors)


def start_guards(settings: Any, detectors: Sequence[Detector] = ()) -> Guards:
    """Start the guards that need no provider (security monitor, audit trail, health
    server); returns what to install and how to stop them."""
    guards = Guards()
    try:
        _start(guards, settings, detectors)
    except BaseException:
        guards.stop()
        raise
    return guards


def attach_guards(guards: Guards, settings: Any, providers: Providers) -> None:
    """Switch on what records into ``providers``: system metrics and contrib
    instrumentations. On failure every guard of ``guards`` is stopped."""
    try:
        _attach(guards, settings, providers)
    except BaseException:
        guards.stop()
        raise


def _start(guards: Guards, settings: Any, detectors: Sequence[Detector]) -> None:
    monitor = security_monitor(settings.security, settings.contract_allowlist, detectors)
    if monitor is not None:
        guards.hooks.append(monitor)
        guards.security_kinds = frozenset(d.kind for d in detectors)
    if settings.audit_path:
        audit = AuditLog.from_settings(settings)
        guards.closers.append(audit.close)
        guards.hooks.append(audit.record_operation)
        guards.exposure_hooks.append(audit.record_exposure)
        guards.audit = audit
    if settings.health_port is not None:
        guards.health = HealthServer(
            settings.health_host,
            settings.health_port,
            token=settings.health_token,
            interval=settings.health_interval_seconds,
        )
        guards.closers.append(guards.health.close)


def _attach(guards: Guards, settings: Any, providers: Providers) -> None:
    configure_limits(settings.memory_limit_bytes, settings.exposure_limits)
    guards.closers.append(lambda: configure_limits(None, {}))
    if settings.system_metrics:
        stop = start_system_metrics(providers.meter_provider)
        if stop is not None:
            guards.closers.append(stop)
        stop_watch = watch_if_running()
        if stop_watch is not None:
            guards.closers.append(stop_watch)
    if settings.instrument:
        tracer_provider: Any = providers.tracer_provider
        guards.closers += start_instrumentations(
            settings.instrument, tracer_provider, providers.meter_provider
        )
