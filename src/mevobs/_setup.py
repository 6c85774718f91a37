"""``configure()``: the only place outside the test kit that imports the OpenTelemetry SDK.

It builds tracer, meter and logger providers from :class:`Settings`, with
bounded queues and export timeouts so that a slow or absent collector never
blocks the bot, and counts what the pipelines drop.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from opentelemetry import _logs as otel_logs
from opentelemetry import metrics, trace

from mevobs import semconv
from mevobs._audit import AuditLog
from mevobs._guards import start_guards
from mevobs._health import HealthServer
from mevobs._logs import JsonFormatter, OtelLogBridge, TextFormatter
from mevobs._settings import Settings
from mevobs._state import LOGGER, STATE, Providers
from mevobs._version import __version__

_LOCK = threading.RLock()
_ACTIVE: Telemetry | None = None
# OpenTelemetry lets the global providers be set once per process; remember whether mevobs did it.
_OWNS_GLOBALS = False


class Telemetry:
    """The providers and handlers one ``configure()`` call built.

    Usable as a context manager: leaving the block shuts it down.
    """

    def __init__(
        self,
        settings: Settings,
        providers: Providers | None,
        handlers: list[logging.Handler],
        closers: list[Callable[[], Any]],
        previous_level: int,
    ) -> None:
        self.settings = settings
        self.providers = providers
        self._handlers = handlers
        self._closers = closers
        self._previous_level = previous_level
        self._closed = False
        #: The HealthServer started by ``health_port``, else None.
        self.health: HealthServer | None = None
        #: The AuditLog started by ``audit_path``, else None.
        self.audit: AuditLog | None = None

    @property
    def tracer_provider(self) -> Any:
        return self.providers.tracer_provider if self.providers else trace.NoOpTracerProvider()

    @property
    def meter_provider(self) -> Any:
        return self.providers.meter_provider if self.providers else metrics.NoOpMeterProvider()

    @property
    def logger_provider(self) -> Any:
        return self.providers.logger_provider if self.providers else otel_logs.NoOpLoggerProvider()

    def force_flush(self, timeout_seconds: float | None = None) -> bool:
        """Export everything buffered; returns False if the deadline passed first."""
        if self.providers is None or self._closed:
            return True
        budget = timeout_seconds if timeout_seconds is not None else self.settings.export_timeout_seconds
        calls = [
            lambda: self.tracer_provider.force_flush(int(budget * 1000)),
            lambda: self.logger_provider.force_flush(int(budget * 1000)),
        ]
        if self.settings.exporter != "prometheus":
            # Prometheus is pulled: a flush would make its reader queue a collection
            # that the next scrape reports again, duplicating every series.
            calls.append(lambda: self.meter_provider.force_flush(int(budget * 1000)))
        ok = _run_bounded(calls, budget)
        for handler in self._handlers:
            handler.flush()
        return ok

    def shutdown(self, timeout_seconds: float = 5.0) -> bool:
        """Flush and stop every exporter, within ``timeout_seconds`` whatever the collector does."""
        global _ACTIVE
        with _LOCK:
            if self._closed:
                return True
            self._closed = True
            for handler in self._handlers:
                LOGGER.removeHandler(handler)
                handler.flush()
                handler.close()  # a log file's handler closes its file; stream handlers keep their stream
            LOGGER.setLevel(self._previous_level)
            if _ACTIVE is self:
                _ACTIVE = None
                STATE.install(None)
                STATE.hooks.clear()
                STATE.exposure_hooks.clear()
            calls: list[Callable[[], Any]] = list(self._closers)
            if self.providers is not None:
                providers = self.providers
                calls += [
                    providers.tracer_provider.shutdown,  # type: ignore[attr-defined]
                    providers.meter_provider.shutdown,  # type: ignore[attr-defined]
                    providers.logger_provider.shutdown,  # type: ignore[attr-defined]
                ]
        return _run_bounded(calls, timeout_seconds)

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _run_bounded(calls: list[Callable[[], Any]], timeout_seconds: float) -> bool:
    """Run calls concurrently in daemon threads and wait at most ``timeout_seconds``."""
    threads = [threading.Thread(target=_quiet(call), name="mevobs-shutdown", daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def _quiet(call: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            call()
        except Exception:
            STATE.dropped("export_failed", "shutdown")

    return run


def active() -> Telemetry | None:
    """The Telemetry of the last ``configure()`` still running, if any."""
    return _ACTIVE


def shutdown(timeout_seconds: float = 5.0) -> bool:
    """Shut down what ``configure()`` set up (no-op when nothing is configured)."""
    telemetry = _ACTIVE
    return telemetry.shutdown(timeout_seconds) if telemetry is not None else True


def configure(settings: Settings | None = None, /, **kwargs: Any) -> Telemetry:
    """Set up export of mevobs telemetry and return the running :class:`Telemetry`.

    Keyword arguments are :class:`Settings` fields; values missing here come
    from ``MEVOBS_*``, then ``OTEL_*`` environment variables. A second call
    shuts the first pipeline down first, so exporters are never duplicated.
    Global OpenTelemetry providers are installed only where the application
    has not set its own (or with ``install_global=True``).
    """
    global _ACTIVE
    resolved = settings if settings is not None else Settings.load(**kwargs)
    with _LOCK:
        if _ACTIVE is not None:
            _ACTIVE.shutdown(resolved.export_timeout_seconds)
        previous_level = LOGGER.level
        if not resolved.enabled:
            from opentelemetry._logs import NoOpLoggerProvider

            providers = Providers(
                trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), NoOpLoggerProvider()
            )
            STATE.install(providers, cap=resolved.cardinality_cap)
            telemetry = Telemetry(resolved, None, [], [], previous_level)
            _ACTIVE = telemetry
            return telemetry

        from mevobs import _pipeline  # the SDK is imported from here on

        built = _pipeline.build(resolved)
        handlers = _log_handlers(resolved, built.providers, built.bridge_logs)
        LOGGER.setLevel(resolved.log_level)
        for handler in handlers:
            LOGGER.addHandler(handler)
        global _OWNS_GLOBALS
        if resolved.install_global or _globals_unset():
            _install_globals(built.providers)
            _OWNS_GLOBALS = True
        elif _OWNS_GLOBALS:
            # A reconfigure: the globals still name the first pipeline and cannot be replaced.
            LOGGER.debug("mevobs.configure(): global providers were set by an earlier configure()")
        else:
            warnings.warn(
                "mevobs.configure(): the application already set global OpenTelemetry "
                "providers; mevobs exports its own telemetry through its own pipeline and "
                "leaves them in place (pass install_global=True to replace them).",
                RuntimeWarning,
                stacklevel=2,
            )
        STATE.install(built.providers, cap=resolved.cardinality_cap)
        STATE.scrub = resolved.scrub_secrets
        guards = start_guards(resolved, built.providers)
        # Guards stop with the exporters, inside the same shutdown deadline.
        closers = [*guards.closers, *built.closers]
        telemetry = Telemetry(resolved, built.providers, handlers, closers, previous_level)
        telemetry.health, telemetry.audit = guards.health, guards.audit
        _ACTIVE = telemetry
        return telemetry


def _log_handlers(settings: Settings, providers: Providers, bridge: bool) -> list[logging.Handler]:
    handlers: list[logging.Handler] = []
    if settings.log_destination != "none":
        stream = sys.stdout if settings.log_destination == "stdout" else sys.stderr
        handler: logging.Handler
        if settings.log_destination == "file":
            handler = _file_handler(settings)
        else:
            handler = logging.StreamHandler(stream)
        if settings.log_format == "json":
            handler.setFormatter(JsonFormatter(settings.service_name, scrub=settings.scrub_secrets))
        else:
            handler.setFormatter(TextFormatter(scrub=settings.scrub_secrets))
        handlers.append(handler)
    if bridge:
        handlers.append(OtelLogBridge(providers.logger_provider, scrub=settings.scrub_secrets))
    return handlers


def _file_handler(settings: Settings) -> logging.Handler:
    from mevobs._logfile import LogFile, LogFileHandler

    assert settings.log_path is not None  # Settings requires it for "file"
    return LogFileHandler(
        LogFile(
            settings.log_path,
            max_bytes=settings.log_max_bytes,
            backups=settings.log_backups,
            max_age_days=settings.log_max_age_days,
            rotate_interval=settings.log_rotate_interval,
        )
    )


def _globals_unset() -> bool:
    return (
        isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        and type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
    )


def _install_globals(providers: Providers) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace.set_tracer_provider(providers.tracer_provider)
        metrics.set_meter_provider(providers.meter_provider)
        otel_logs.set_logger_provider(providers.logger_provider)


__all__ = ["Telemetry", "__version__", "active", "configure", "semconv", "shutdown"]
