"""mevobs: OpenTelemetry instrumentation for MEV and DeFi trading bots.

Wrap a bot's swap, liquidity, arbitrage and RPC calls with the decorators or
context managers below; call :func:`configure` once to export. Without
``configure()`` (or providers the application installs itself) the wrappers
record nothing and change nothing.
"""

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
from mevobs._version import __version__
from mevobs._wrap import OperationWrapper
from mevobs.guards._audit import AuditLog, VerifyResult
from mevobs.guards._audit import verify_chain as verify_audit
from mevobs.guards._audit_report import Report as AuditReport
from mevobs.guards._audit_report import build_report as audit_report
from mevobs.guards._breaker import BreakerStats, CircuitBreaker, CircuitOpenError, Transition
from mevobs.guards._health import HealthServer, register_health_check, unregister_health_check
from mevobs.guards._runtime import watch_event_loop
from mevobs.guards._security import SecuritySettings

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
