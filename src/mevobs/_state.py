"""The one place that owns mevobs's global state.

It holds the tracer, the instruments and the logger provider that operations
record into, the cardinality limiter, and the dropped-telemetry tally.
``configure()`` and ``testing.capture()`` swap these; nothing else writes them.

Without either, the tracer and meter come from the OpenTelemetry API globals,
which are proxies until the application installs providers: decorators applied
at import time therefore pick up providers installed later.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import LoggerProvider, get_logger_provider
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider

from mevobs import semconv
from mevobs._cardinality import DEFAULT_CARDINALITY_CAP, CardinalityLimiter
from mevobs._instruments import Instruments
from mevobs._instruments import after_fork_in_child as _instruments_after_fork
from mevobs._protocols import ExposureHook, Hook, SecurityListener
from mevobs._version import __version__

LOGGER = logging.getLogger(semconv.INSTRUMENTATION_SCOPE)
# A library must not print through logging's last-resort handler when the
# application configured nothing.
LOGGER.addHandler(logging.NullHandler())


@dataclass
class Providers:
    """A set of providers mevobs records into instead of the OpenTelemetry globals."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider


class State:
    """What configure() and capture() set; read by every operation."""

    def __init__(self) -> None:
        self.generation = 0
        self.providers: Providers | None = None
        self.tracer: Tracer = trace.NoOpTracer()
        self.instruments = Instruments(metrics.NoOpMeter(semconv.INSTRUMENTATION_SCOPE))
        self.limiter = CardinalityLimiter(on_refuse=self._refused_label)
        # Whether anything can receive telemetry: configure()/capture() ran, or the
        # application installed global providers. Once true it stays true (the
        # OpenTelemetry globals cannot be unset); while false, operations skip
        # span and metric work entirely.
        # Whether the OpenTelemetry globals are providers a configure() installed: once
        # it has shut down they receive nothing, and operations cost what unconfigured
        # ones cost instead of recording into dead providers.
        self.own_globals = False
        self.live = self._globals_set()
        self.scrub = True
        self.dropped_tally: dict[str, int] = {}
        self._tally_lock = threading.Lock()
        # The fast pipeline when configure() owns export (a _fastcall.FastSink), else None.
        self.fast: Any = None
        self.lane: Any = None
        self._set_lane()
        # What configure()/capture() plug in; run on every finished operation.
        self.hooks: list[Hook] = []
        # Called by record_exposure with the exact amount (the audit trail).
        self.exposure_hooks: list[ExposureHook] = []
        # Security event kinds beyond the built-in ones (kinds of user detectors).
        self.extra_security_kinds: frozenset[str] = frozenset()

    def _set_lane(self) -> None:
        """Which lane the wrappers take, read once per call (one attribute).

        The fast pipeline itself when configure() owns export; :data:`LEAN_OWN` after
        mevobs's own providers shut down; :data:`LEAN` while nothing is installed (the
        wrappers then also check that no application installed providers since);
        None for the general path (the application's providers, the API path).
        """
        if self.fast is not None:
            self.lane = self.fast
        elif self.live or not _FAST_GLOBALS_CHECK:
            self.lane = None
        else:
            self.lane = LEAN_OWN if self.own_globals else LEAN

    def clear_plugins(self) -> None:
        """Forget what a configure() plugged in: hooks, exposure hooks, detector kinds."""
        self.hooks.clear()
        self.exposure_hooks.clear()
        self.extra_security_kinds = frozenset()
        self.generation += 1  # specs cache whether a hook wants them (see _emission)

    def install(
        self,
        providers: Providers | None,
        *,
        cap: int = DEFAULT_CARDINALITY_CAP,
        instruments: Any = None,
        fast: Any = None,
    ) -> None:
        """Record into ``providers`` from now on (``None``: the OpenTelemetry globals).

        ``fast`` is the fast pipeline that records mevobs's own telemetry (with its
        slot ``instruments``); without it operations take the API path.
        """
        if providers is None and not self._globals_set():
            # Nothing can receive telemetry yet. No proxies: a proxy instrument turns
            # into a real one when a global provider appears, which would register
            # every instrument twice there; check_live() re-installs instead.
            self.tracer = trace.NoOpTracer()
            meter: Meter = metrics.NoOpMeter(semconv.INSTRUMENTATION_SCOPE)
        elif providers is None:
            self.tracer = trace.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__)
            meter = metrics.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__)
        else:
            self.tracer = providers.tracer_provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__)
            meter = providers.meter_provider.get_meter(semconv.INSTRUMENTATION_SCOPE, __version__)
        self.providers = providers
        self.live = providers is not None or self._globals_set()
        self.instruments = instruments if instruments is not None else Instruments(meter)
        self.fast = fast
        self._set_lane()
        self.limiter = CardinalityLimiter(cap, on_refuse=self._refused_label)
        self.generation += 1

    def _globals_set(self) -> bool:
        if self.own_globals:
            return False  # mevobs's own (shut down) providers: nothing receives telemetry
        if _FAST_GLOBALS_CHECK:
            # The public getters read os.environ on every call (about 1.5 us); the
            # module globals they guard answer the same question in nanoseconds.
            return _otel_trace._TRACER_PROVIDER is not None or _otel_metrics._METER_PROVIDER is not None
        return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider) or (
            metrics.get_meter_provider() is not _PROXY_METER_PROVIDER
        )

    def check_live(self) -> bool:
        """Re-check the OpenTelemetry globals (called only while nothing is live)."""
        if self._globals_set():
            # Re-resolve from the now real providers: no proxy layer on every call.
            self.install(None, cap=self.limiter.cap)
        return self.live

    @property
    def logger_provider(self) -> LoggerProvider:
        if self.providers is not None:
            return self.providers.logger_provider
        return get_logger_provider()

    def _refused_label(self, key: str) -> None:
        # Registered with the limiter (a lower layer): a metric label that looked like a
        # URL, an address or a key became "other".
        self.dropped("unbounded_label", key)

    def dropped(self, reason: str, detail: str = "", count: int = 1) -> None:
        """Count telemetry mevobs refused or lost; never raises."""
        try:
            with self._tally_lock:
                self.dropped_tally[reason] = self.dropped_tally.get(reason, 0) + count
            self.instruments.counter(semconv.TELEMETRY_DROPPED).add(count, {semconv.ATTR_DROP_REASON: reason})
            if detail and LOGGER.isEnabledFor(logging.DEBUG):
                LOGGER.debug("mevobs dropped telemetry (%s): %s", reason, detail)
        except Exception:  # pragma: no cover - a broken exporter must not reach the host
            pass


LEAN: Any = object()
"""Lane marker: nothing can receive telemetry yet (see ``State.lane``)."""
LEAN_OWN: Any = object()
"""Lane marker: mevobs's own global providers were shut down; nothing receives telemetry."""

_otel_trace: Any = trace
_otel_metrics: Any = importlib.import_module("opentelemetry.metrics._internal")
# Use the module globals only where they exist and no provider is loaded from the environment.
_FAST_GLOBALS_CHECK = (
    hasattr(_otel_trace, "_TRACER_PROVIDER")
    and hasattr(_otel_metrics, "_METER_PROVIDER")
    and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ
    and "OTEL_PYTHON_METER_PROVIDER" not in os.environ
)

# What metrics.get_meter_provider() returns while no application set one.
_PROXY_METER_PROVIDER = metrics.get_meter_provider()
if type(_PROXY_METER_PROVIDER).__name__ != "_ProxyMeterProvider":  # set before mevobs was imported
    _PROXY_METER_PROVIDER = None  # type: ignore[assignment]

STATE = State()


_SECURITY_LISTENERS: list[SecurityListener] = []
_LISTENERS_LOCK = threading.Lock()


def register_security_listener(listener: SecurityListener) -> None:
    """Tell ``listener`` the kind of every security event (circuit breakers register here)."""
    with _LISTENERS_LOCK:
        _SECURITY_LISTENERS.append(listener)


def notify_security_listeners(kind: str) -> None:
    """Pass a security event's kind to every registered listener; never raises."""
    with _LISTENERS_LOCK:
        listeners = list(_SECURITY_LISTENERS)
    for listener in listeners:
        try:
            listener(kind)
        except Exception as exc:
            STATE.dropped("recorder_error", f"security listener: {type(exc).__name__}")


def dropped_counts() -> dict[str, int]:
    """How much telemetry this process refused or lost, by reason, since start."""
    with STATE._tally_lock:
        return dict(STATE.dropped_tally)


# ------------------------------------------------------------------------ fork

_FORK_HOOKS: list[Callable[[], None]] = []


def _sleep_zero() -> None:
    time.sleep(0)


yield_gil: Callable[[], None] = getattr(os, "sched_yield", None) or _sleep_zero
"""Let a thread waiting for the GIL take it (the export threads call this between chunks).
``os.sched_yield`` releases the GIL for about half a microsecond; ``time.sleep(0)``, the
fallback where it does not exist, enters a timed sleep: 26 us of CPU and 85 us of wall time
per call on Linux, which at a chunk of 16 records cost the worker more than its work.
"""


def on_fork_in_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in every forked child, right after ``fork()``, in registration order.

    Modules that hold locks, threads or per-process data register here (the pipeline
    registers its reset), so one handler knows the order and the state is reset first.
    """
    _FORK_HOOKS.append(hook)


def _after_fork_in_child() -> None:
    """A forked child holds copies of locks other threads of the parent may have held
    at the fork, and the parent's tallies: give it fresh ones, then run the hooks."""
    global _LISTENERS_LOCK
    STATE._tally_lock = threading.Lock()
    STATE.dropped_tally = {}  # this process's own losses (its metrics start empty too)
    STATE.limiter.after_fork_in_child()
    _instruments_after_fork()
    _LISTENERS_LOCK = threading.Lock()
    for hook in list(_FORK_HOOKS):
        try:
            hook()
        except Exception as exc:  # a failed reset must not break the child's own code
            STATE.dropped("recorder_error", f"after fork: {type(exc).__name__}: {exc}")
    # Specs re-resolve their cached attributes and metric slots (the child's own).
    STATE.generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
