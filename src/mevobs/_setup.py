"""``configure()``: the only place outside the test kit that imports the OpenTelemetry SDK.

It starts the runtime guards that can fail (ports, files), builds the pipeline
:class:`Settings` ask for (``_pipeline``), attaches the guards that need its
providers, and only when every part is up installs it: handlers, state, global
providers. A failure on the way stops what was started, restarts the previous
configuration if there was one, and raises: the process is as it was. Global
providers are switches (``_globals``) installed once and re-pointed by each
configure() and shutdown(). Shutting down is bounded by a deadline whatever the
collector does, and a process that exits without ``shutdown()`` flushes within
the export timeout.

Importing this module imports neither the SDK nor pydantic: both come with the
first configure().
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry import _logs as otel_logs
from opentelemetry import metrics, trace

from mevobs._protocols import Detector
from mevobs._state import LOGGER, STATE, Providers, on_fork_in_child

if TYPE_CHECKING:
    from mevobs._globals import SwitchLoggerProvider, SwitchMeterProvider, SwitchTracerProvider
    from mevobs._settings import Settings
    from mevobs.guards._audit import AuditLog
    from mevobs.guards._health import HealthServer

_LOCK = threading.RLock()
_ACTIVE: Telemetry | None = None


class Telemetry:
    """What one ``configure()`` call built and started.

    Usable as a context manager: leaving the block shuts it down.
    """

    def __init__(
        self,
        settings: Settings,
        providers: Providers | None,
        handlers: list[logging.Handler],
        closers: list[Callable[[], Any]],
        previous_level: int,
        fast: Any = None,
        guard_closers: list[Callable[[], Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.providers = providers
        self._handlers = handlers
        self._closers = closers
        self._guard_closers = guard_closers or []
        self._previous_level = previous_level
        self._fast = fast
        self._closed = False
        #: The HealthServer started by ``health_port``, else None.
        self.health: HealthServer | None = None
        #: The AuditLog started by ``audit_path``, else None.
        self.audit: AuditLog | None = None
        #: The port the Prometheus endpoint is bound to (``metrics_port=0`` picks one), else None.
        self.metrics_port: int | None = None
        # What configure() was asked for: restarted if a later configure() fails.
        self._request: _Request | None = None

    @property
    def pipeline(self) -> str:
        """``fast`` (mevobs records and exports its own telemetry), ``api`` or ``disabled``."""
        if self.providers is None:
            return "disabled"
        return "fast" if self._fast is not None else "api"

    @property
    def metrics_url(self) -> str | None:
        """The Prometheus endpoint's URL, when the exporter is ``prometheus``."""
        if self.metrics_port is None:
            return None
        return f"http://{self.settings.metrics_host}:{self.metrics_port}/metrics"

    @property
    def health_port(self) -> int | None:
        """The port the health server is bound to (``health_port=0`` picks one), else None."""
        return self.health.port if self.health is not None else None

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
        deadline = time.monotonic() + budget
        ok = True
        if self._fast is not None:
            ok = self._fast.flush(budget)
        remaining = max(0.0, deadline - time.monotonic())
        calls = [
            lambda: self.tracer_provider.force_flush(int(remaining * 1000)),
            lambda: self.logger_provider.force_flush(int(remaining * 1000)),
        ]
        if self.metrics_port is None:
            # Prometheus is pulled: a flush would make its reader queue a collection
            # that the next scrape reports again, duplicating every series.
            calls.append(lambda: self.meter_provider.force_flush(int(remaining * 1000)))
        ok = _run_bounded(calls, remaining) and ok
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
            if _ACTIVE is self:
                _ACTIVE = None
                STATE.install(None)
                STATE.clear_plugins()
                _point_globals(None)
        deadline = time.monotonic() + timeout_seconds
        # Guards first, while the log handlers still export what they write on closing
        # (the audit trail's final checkpoint), then the pipeline, then the providers.
        ok = _run_bounded(self._guard_closers, timeout_seconds / 2)
        if self._fast is not None:
            ok = self._fast.shutdown(max(0.0, deadline - time.monotonic())) and ok
        ok = _run_bounded(self._closers, max(0.0, deadline - time.monotonic())) and ok
        with _LOCK:
            for handler in self._handlers:
                LOGGER.removeHandler(handler)
            if _ACTIVE is None:
                LOGGER.setLevel(self._previous_level)
        return ok

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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
        except Exception:
            STATE.dropped("export_failed", "shutdown")

    return run


def shutdown(timeout_seconds: float = 5.0) -> bool:
    """Shut down what ``configure()`` set up (no-op when nothing is configured)."""
    telemetry = _ACTIVE
    return telemetry.shutdown(timeout_seconds) if telemetry is not None else True


_EXITING: list[bool] = []  # non-empty once the process flushes on its way out


def _at_exit() -> None:
    """A bot that exits without shutdown() still flushes, within the export timeout."""
    telemetry = _ACTIVE
    if telemetry is not None:
        _EXITING.append(True)
        telemetry.shutdown(telemetry.settings.export_timeout_seconds)


atexit.register(_at_exit)


def _new_locks_in_child() -> None:
    global _LOCK
    _LOCK = threading.RLock()  # another thread of the parent may have held it at the fork
    if _SWITCHES:
        _SWITCHES[0].meter.lock = threading.RLock()


on_fork_in_child(_new_locks_in_child)


def _after_fork_in_child(telemetry: Telemetry) -> None:
    """A forked child of a configured process: its pipeline has renewed itself (empty
    slots, its own worker and exporters, a new meter provider); point the global meter
    provider at the child's, measure the child's own process, and flush when a
    multiprocessing worker exits (it ends with ``os._exit``: no atexit)."""
    if _ACTIVE is not telemetry or telemetry.providers is None:
        return
    _point_globals(telemetry.providers)
    if telemetry.settings.system_metrics:
        from mevobs.guards._runtime import restart_system_metrics

        restart_system_metrics(telemetry.providers.meter_provider)
    worker_util = sys.modules.get("multiprocessing.util")
    if worker_util is not None:
        # Runs after multiprocessing clears the parent's finalizers in the new process.
        worker_util.register_after_fork(telemetry, _flush_when_worker_exits)


def _flush_when_worker_exits(telemetry: Telemetry) -> None:
    """In a multiprocessing worker: flush when it returns (its finalizers run, atexit does
    not) and when it is terminated (``Pool.terminate()``, leaving a ``with Pool()``
    block: SIGTERM), unless the application handles SIGTERM itself."""
    import multiprocessing.util
    import signal

    multiprocessing.util.Finalize(None, _at_exit, exitpriority=10)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _flush_then_terminate)


def _flush_then_terminate(signum: int, frame: Any) -> None:
    """Flush within the export timeout, then end of the signal as the worker would have.

    ``Pool.terminate()`` sends the signal right after telling idle workers to stop: one
    already flushing on its way out (its finalizer, on this same thread) finishes that
    within the export timeout and exits by itself.
    """
    import os
    import signal

    if _EXITING:
        return
    signal.signal(signum, signal.SIG_DFL)
    try:
        _at_exit()
    finally:
        os.kill(os.getpid(), signum)


class _Request(NamedTuple):
    settings: Settings
    detectors: Sequence[Detector]
    span_processors: Sequence[Any]
    views: Sequence[Any]
    sampler: Any


def configure(
    settings: Settings | None = None,
    /,
    *,
    detectors: Sequence[Detector] = (),
    span_processors: Sequence[Any] = (),
    views: Sequence[Any] = (),
    sampler: Any = None,
    **kwargs: Any,
) -> Telemetry:
    """Set up export of mevobs telemetry and return the running :class:`Telemetry`.

    Keyword arguments are :class:`Settings` fields; values missing here come
    from ``MEVOBS_*``, then ``OTEL_*`` environment variables. A second call
    shuts the first pipeline down first, so exporters are never duplicated.
    Global OpenTelemetry providers are installed only where the application
    has not set its own (or with ``install_global=True``). ``detectors`` are
    security detectors of the application's own (see :class:`mevobs.Detector`),
    run after the built-in ones; their kinds are counted on ``mev.security.events``.
    ``span_processors``, ``views`` and ``sampler`` (SDK objects) are added to the
    providers mevobs builds and select the API path (see docs/performance.md).

    All or nothing: if any part fails to start (a busy port, an unreadable audit
    key), what was started is stopped, the previous configuration (if any) is
    started again, nothing else global is changed, and the error is raised.
    Invalid keyword arguments raise ``pydantic.ValidationError``, an invalid
    ``MEVOBS_*`` variable ``mevobs._settings.SettingsError`` (both ``ValueError``).
    """
    global _ACTIVE
    if settings is None:
        from mevobs._settings import Settings

        settings = Settings.load(**kwargs)
    request = _Request(settings, tuple(detectors), tuple(span_processors), tuple(views), sampler)
    with _LOCK:
        previous = _ACTIVE
        if previous is not None:
            # Before building: system metrics and contrib instrumentations are process
            # singletons, and the ports may be the same.
            previous.shutdown(settings.export_timeout_seconds)
        try:
            telemetry = _start(request)
        except BaseException:
            if previous is not None and previous._request is not None:
                _restart(previous._request)
            raise
        _ACTIVE = telemetry
        return telemetry


def _restart(request: _Request) -> None:
    """Start the configuration a failed configure() replaced, as it was."""
    global _ACTIVE
    try:
        _ACTIVE = _start(request)
    except Exception as exc:
        LOGGER.warning(
            "mevobs.configure() failed, and the previous configuration could not restart: %s: %s",
            type(exc).__name__,
            exc,
        )


def _start(request: _Request) -> Telemetry:
    """Start everything ``request`` asks for and install it; on failure stop it all and raise."""
    resolved = request.settings
    previous_level = LOGGER.level
    if not resolved.enabled:
        telemetry = Telemetry(resolved, None, [], [], previous_level)
        telemetry._request = request
        return telemetry

    from mevobs import _pipeline  # the SDK is imported from here on
    from mevobs._otel_env import flush_warnings
    from mevobs.guards._start import attach_guards, start_guards

    # When the application set providers of its own, mevobs keeps to the API path.
    app_owned = not (resolved.install_global or STATE.own_globals or _globals_unset())
    extras = _pipeline.Extras(request.span_processors, request.views, request.sampler, app_owned=app_owned)
    guards = start_guards(resolved, request.detectors)  # ports and files first: nothing else to undo
    try:
        built = _pipeline.build(resolved, extras)
    except BaseException:
        guards.stop()
        raise
    try:
        attach_guards(guards, resolved, built.providers)
    except BaseException:
        built.close()
        raise
    # Everything is up: from here on nothing can fail, and the process changes.
    LOGGER.setLevel(resolved.log_level)
    for handler in built.handlers:
        LOGGER.addHandler(handler)
    _install_globals(resolved, built.providers)
    STATE.install(
        built.providers, cap=resolved.cardinality_cap, instruments=built.instruments, fast=built.fast
    )
    STATE.scrub = resolved.scrub_secrets
    STATE.hooks.extend(guards.hooks)
    STATE.exposure_hooks.extend(guards.exposure_hooks)
    STATE.extra_security_kinds = guards.security_kinds
    STATE.generation += 1  # specs cache whether a hook wants them (see _emission)
    telemetry = Telemetry(
        resolved,
        built.providers,
        built.handlers,
        built.closers,
        previous_level,
        built.fast,
        guard_closers=guards.closers,
    )
    telemetry.health, telemetry.audit = guards.health, guards.audit
    telemetry.metrics_port = built.metrics_port
    telemetry._request = request
    if built.fast is not None:
        # After the pipeline's own renewal (its first hook): the child's providers are in place.
        built.fast.fork_hooks.append(lambda: _after_fork_in_child(telemetry))
    flush_warnings()  # what the environment got wrong, now that a handler can show it
    return telemetry


def _globals_unset() -> bool:
    return (
        isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        and type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
    )


class _Switches(NamedTuple):
    """The global providers mevobs installed, once per process (see ``_globals``)."""

    tracer: SwitchTracerProvider
    meter: SwitchMeterProvider
    logger: SwitchLoggerProvider


_SWITCHES: list[_Switches] = []  # empty until the first configure() installs them


def _point_globals(providers: Providers | None) -> None:
    """Point mevobs's global switches at ``providers`` (None: no-op providers)."""
    if not _SWITCHES:
        return
    switches = _SWITCHES[0]
    if providers is None:
        switches.tracer.switch(trace.NoOpTracerProvider())
        switches.meter.switch(metrics.NoOpMeterProvider())
        switches.logger.switch(otel_logs.NoOpLoggerProvider())
    else:
        switches.tracer.switch(providers.tracer_provider)
        switches.meter.switch(providers.meter_provider)
        switches.logger.switch(providers.logger_provider)


def _install_globals(settings: Settings, providers: Providers) -> None:
    if STATE.own_globals:
        pass  # a reconfigure: the switches are in place, re-pointed below
    elif settings.install_global or _globals_unset():
        from mevobs._globals import SwitchLoggerProvider, SwitchMeterProvider, SwitchTracerProvider

        switches = _Switches(SwitchTracerProvider(), SwitchMeterProvider(), SwitchLoggerProvider())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trace.set_tracer_provider(switches.tracer)
            metrics.set_meter_provider(switches.meter)
            otel_logs.set_logger_provider(switches.logger)
        _SWITCHES[:] = [switches]
        STATE.own_globals = True
    else:
        warnings.warn(
            "mevobs.configure(): the application already set global OpenTelemetry "
            "providers; mevobs exports its own telemetry through its own pipeline and "
            "leaves them in place (pass install_global=True to replace them).",
            RuntimeWarning,
            stacklevel=4,
        )
    _point_globals(providers)


__all__ = ["Telemetry", "configure", "shutdown"]
