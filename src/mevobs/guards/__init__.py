"""The runtime guards: circuit breaker, health endpoints, security detectors, audit
trail and runtime metrics.

They sit above the core: they see finished operations through the protocols in
``mevobs._protocols`` and register themselves with the global state (hooks,
observable gauges, security listeners); the core never imports this package.
``configure()`` starts the ones its settings ask for.
"""

from typing import TYPE_CHECKING, Any

from mevobs.guards._audit import AuditLog, VerifyResult, verify_audit
from mevobs.guards._audit_report import AuditReport, audit_report
from mevobs.guards._breaker import BreakerStats, CircuitBreaker, CircuitOpenError, Transition
from mevobs.guards._health import HealthServer, register_health_check, unregister_health_check
from mevobs.guards._runtime import watch_event_loop

if TYPE_CHECKING:
    from mevobs.guards._security import (
        AbnormalGas,
        ProfitDeviation,
        RpcPattern,
        SecurityMonitor,
        SecuritySettings,
        TxPattern,
        UnexpectedContract,
        builtin_detectors,
    )

# The security detectors load on first use: their settings are a pydantic model,
# and importing one guard must not import pydantic (PEP 562).
_SECURITY = frozenset(
    {
        "AbnormalGas",
        "ProfitDeviation",
        "RpcPattern",
        "SecurityMonitor",
        "SecuritySettings",
        "TxPattern",
        "UnexpectedContract",
        "builtin_detectors",
    }
)


if not TYPE_CHECKING:  # type checkers see the imports above; a typo stays an error

    def __getattr__(name: str) -> Any:
        if name not in _SECURITY:
            raise AttributeError(f"module 'mevobs.guards' has no attribute {name!r}")
        from mevobs.guards import _security

        value = getattr(_security, name)
        globals()[name] = value
        return value


__all__ = [
    "AbnormalGas",
    "AuditLog",
    "AuditReport",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitOpenError",
    "HealthServer",
    "ProfitDeviation",
    "RpcPattern",
    "SecurityMonitor",
    "SecuritySettings",
    "Transition",
    "TxPattern",
    "UnexpectedContract",
    "VerifyResult",
    "audit_report",
    "builtin_detectors",
    "register_health_check",
    "unregister_health_check",
    "verify_audit",
    "watch_event_loop",
]
