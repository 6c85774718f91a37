"""What configure() switches on besides export: security detectors, the audit trail,
the health server, system metrics and contrib instrumentations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mevobs._audit import AuditLog
from mevobs._health import HealthServer
from mevobs._runtime import Closer, start_instrumentations, start_system_metrics, watch_if_running
from mevobs._security import SecurityMonitor
from mevobs._settings import Settings
from mevobs._state import STATE, Providers


@dataclass
class Guards:
    closers: list[Closer] = field(default_factory=list)
    health: HealthServer | None = None
    audit: AuditLog | None = None
    security: SecurityMonitor | None = None


def start_guards(settings: Settings, providers: Providers) -> Guards:
    """Start every runtime guard the settings ask for; returns how to stop them."""
    guards = Guards()
    if settings.security.enabled:
        guards.security = SecurityMonitor(settings.security, settings.contract_allowlist)
        STATE.hooks.append(guards.security)
    if settings.audit_path:
        audit = AuditLog.from_settings(settings)
        STATE.hooks.append(audit.record_operation)
        STATE.exposure_hooks.append(audit.record_exposure)
        guards.audit = audit
        guards.closers.append(audit.close)
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
    if settings.health_port is not None:
        guards.health = HealthServer(
            settings.health_host,
            settings.health_port,
            token=settings.health_token,
            interval=settings.health_interval_seconds,
        )
        guards.closers.append(guards.health.close)
    return guards
