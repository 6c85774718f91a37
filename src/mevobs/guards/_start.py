"""What configure() switches on besides export: security detectors, the audit trail,
the health server, system metrics and contrib instrumentations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mevobs._protocols import Detector
from mevobs._state import STATE, Providers
from mevobs.guards._audit import AuditLog
from mevobs.guards._health import HealthServer
from mevobs.guards._runtime import Closer, start_instrumentations, start_system_metrics, watch_if_running
from mevobs.guards._security import SecurityMonitor, SecuritySettings


@dataclass
class Guards:
    closers: list[Closer] = field(default_factory=list)
    health: HealthServer | None = None
    audit: AuditLog | None = None


def start_security(
    settings: SecuritySettings, allowlist: dict[str, list[str]], detectors: Sequence[Detector]
) -> None:
    """Install the security monitor: the built-in detectors (when enabled) and the user's."""
    if not settings.enabled and not detectors:
        return
    builtin: list[Detector] | None = None if settings.enabled else []
    monitor = SecurityMonitor(settings, allowlist, detectors=builtin, extra=detectors)
    STATE.extra_security_kinds = frozenset(d.kind for d in detectors)
    STATE.hooks.append(monitor)


def start_guards(settings: Any, providers: Providers, detectors: Sequence[Detector] = ()) -> Guards:
    """Start every runtime guard the settings ask for; returns how to stop them."""
    guards = Guards()
    start_security(settings.security, settings.contract_allowlist, detectors)
    if settings.audit_path:
        audit = AuditLog(
            settings.audit_path,
            rotate_bytes=settings.audit_rotate_bytes,
            fsync=settings.audit_fsync,
            service_name=settings.service_name,
        )
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
