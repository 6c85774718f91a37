"""mevobs: OpenTelemetry instrumentation for MEV and DeFi trading bots.

Wrap a bot's swap, liquidity, arbitrage and RPC calls with the decorators or
context managers below; call :func:`configure` once to export. Without
``configure()`` (or providers the application installs itself) the wrappers
record nothing and change nothing.
"""

from mevobs import semconv
from mevobs._audit import AuditLog, VerifyResult
from mevobs._audit import verify_chain as verify_audit
from mevobs._audit_report import Report as AuditReport
from mevobs._audit_report import build_report as audit_report
from mevobs._breaker import BreakerStats, CircuitBreaker, CircuitOpenError, Transition
from mevobs._factories import arbitrage, liquidity, operation, rpc, swap
from mevobs._health import HealthServer, register_health_check, unregister_health_check
from mevobs._logs import JsonFormatter, TextFormatter
from mevobs._money import wei_to_eth
from mevobs._observe import (
    record_exposure,
    record_pool_liquidity,
    record_price_deviation,
    record_security_event,
)
from mevobs._operation import Operation, current_operation
from mevobs._results import ArbitrageResult, LiquidityResult, SwapResult
from mevobs._runtime import watch_event_loop
from mevobs._security import SecuritySettings
from mevobs._settings import Settings
from mevobs._setup import Telemetry, configure, shutdown
from mevobs._state import dropped_counts
from mevobs._version import __version__
from mevobs._wrap import OperationWrapper

__all__ = [
    "ArbitrageResult",
    "AuditLog",
    "AuditReport",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitOpenError",
    "HealthServer",
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
