"""mevobs: OpenTelemetry instrumentation for MEV and DeFi trading bots.

Wrap a bot's swap, liquidity, arbitrage and RPC calls with the decorators or
context managers below; call :func:`configure` once to export. Without
``configure()`` (or providers the application installs itself) the wrappers
record nothing and change nothing.
"""

from typing import TYPE_CHECKING, Any

from mevobs._version import __version__

if TYPE_CHECKING:
    from mevobs import semconv
    from mevobs._factories import arbitrage, liquidity, operation, rpc, swap
    from mevobs._logs import JsonFormatter, TextFormatter
    from mevobs._money import wei_to_eth
    from mevobs._observations import (
        record_exposure,
        record_pool_liquidity,
        record_price_deviation,
        record_security_event,
    )
    from mevobs._operation import Operation, current_operation
    from mevobs._protocols import Detector, Finding, FinishedOperation, Guard, Hook
    from mevobs._results import ArbitrageResult, LiquidityResult, SwapResult
    from mevobs._settings import Settings
    from mevobs._setup import Telemetry, configure, shutdown
    from mevobs._state import dropped_counts
    from mevobs._wrap import OperationWrapper
    from mevobs.guards._audit import AuditLog, VerifyResult
    from mevobs.guards._audit import verify_audit as verify_audit
    from mevobs.guards._audit_report import AuditReport as AuditReport
    from mevobs.guards._audit_report import audit_report as audit_report
    from mevobs.guards._breaker import BreakerStats, CircuitBreaker, CircuitOpenError, Transition
    from mevobs.guards._health import HealthServer, register_health_check, unregister_health_check
    from mevobs.guards._runtime import watch_event_loop
    from mevobs.guards._security import SecuritySettings

# Every public name loads with its module on first use (PEP 562), so that importing
# mevobs (or its pytest plugin, a submodule) costs nearly nothing: the decorators
# bring the core and the OpenTelemetry API, configure() pydantic and then the SDK
# (docs/performance.md, "Import time"). The imports above are what type checkers see.
_LAZY: dict[str, tuple[str, str | None]] = {
    "semconv": ("mevobs.semconv", None),
    "arbitrage": ("mevobs._factories", "arbitrage"),
    "liquidity": ("mevobs._factories", "liquidity"),
    "operation": ("mevobs._factories", "operation"),
    "rpc": ("mevobs._factories", "rpc"),
    "swap": ("mevobs._factories", "swap"),
    "JsonFormatter": ("mevobs._logs", "JsonFormatter"),
    "TextFormatter": ("mevobs._logs", "TextFormatter"),
    "wei_to_eth": ("mevobs._money", "wei_to_eth"),
    "record_exposure": ("mevobs._observations", "record_exposure"),
    "record_pool_liquidity": ("mevobs._observations", "record_pool_liquidity"),
    "record_price_deviation": ("mevobs._observations", "record_price_deviation"),
    "record_security_event": ("mevobs._observations", "record_security_event"),
    "Operation": ("mevobs._operation", "Operation"),
    "current_operation": ("mevobs._operation", "current_operation"),
    "Detector": ("mevobs._protocols", "Detector"),
    "Finding": ("mevobs._protocols", "Finding"),
    "FinishedOperation": ("mevobs._protocols", "FinishedOperation"),
    "Guard": ("mevobs._protocols", "Guard"),
    "Hook": ("mevobs._protocols", "Hook"),
    "Telemetry": ("mevobs._setup", "Telemetry"),
    "configure": ("mevobs._setup", "configure"),
    "shutdown": ("mevobs._setup", "shutdown"),
    "dropped_counts": ("mevobs._state", "dropped_counts"),
    "OperationWrapper": ("mevobs._wrap", "OperationWrapper"),
    "ArbitrageResult": ("mevobs._results", "ArbitrageResult"),
    "LiquidityResult": ("mevobs._results", "LiquidityResult"),
    "SwapResult": ("mevobs._results", "SwapResult"),
    "Settings": ("mevobs._settings", "Settings"),
    "SecuritySettings": ("mevobs.guards._security", "SecuritySettings"),
    "AuditLog": ("mevobs.guards._audit", "AuditLog"),
    "VerifyResult": ("mevobs.guards._audit", "VerifyResult"),
    "verify_audit": ("mevobs.guards._audit", "verify_audit"),
    "AuditReport": ("mevobs.guards._audit_report", "AuditReport"),
    "audit_report": ("mevobs.guards._audit_report", "audit_report"),
    "BreakerStats": ("mevobs.guards._breaker", "BreakerStats"),
    "CircuitBreaker": ("mevobs.guards._breaker", "CircuitBreaker"),
    "CircuitOpenError": ("mevobs.guards._breaker", "CircuitOpenError"),
    "Transition": ("mevobs.guards._breaker", "Transition"),
    "HealthServer": ("mevobs.guards._health", "HealthServer"),
    "register_health_check": ("mevobs.guards._health", "register_health_check"),
    "unregister_health_check": ("mevobs.guards._health", "unregister_health_check"),
    "watch_event_loop": ("mevobs.guards._runtime", "watch_event_loop"),
}


if not TYPE_CHECKING:  # type checkers see the imports above; a typo stays an error

    def __getattr__(name: str) -> Any:
        target = _LAZY.get(name)
        if target is None:
            raise AttributeError(f"module 'mevobs' has no attribute {name!r}")
        import importlib

        module = importlib.import_module(target[0])
        value = module if target[1] is None else getattr(module, target[1])
        globals()[name] = value  # once loaded, an ordinary attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})


__all__ = [
    "ArbitrageResult",
    "AuditLog",
    "AuditReport",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitOpenError",
    "Detector",
    "Finding",
    "FinishedOperation",
    "Guard",
    "HealthServer",
    "Hook",
    "JsonFormatter",
    "LiquidityResult",
    "Operation",
    "OperationWrapper",
    "SecuritySettings",
    "Settings",
    "SwapResult",
    "Telemetry",
    "TextFormatter",
    "Transition",
    "VerifyResult",
    "__version__",
    "arbitrage",
    "audit_report",
    "configure",
    "current_operation",
    "dropped_counts",
    "liquidity",
    "operation",
    "record_exposure",
    "record_pool_liquidity",
    "record_price_deviation",
    "record_security_event",
    "register_health_check",
    "rpc",
    "semconv",
    "shutdown",
    "swap",
    "unregister_health_check",
    "verify_audit",
    "watch_event_loop",
    "wei_to_eth",
]
