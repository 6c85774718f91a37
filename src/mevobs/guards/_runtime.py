"""System and dependency metrics: OpenTelemetry's system-metrics instrumentation, the
contrib instrumentations a bot names, and the one thing they lack, event-loop lag."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import time
from collections.abc import Callable, Iterable
from typing import Any

from mevobs import semconv
from mevobs._state import LOGGER, STATE

Closer = Callable[[], Any]

#: What system_metrics=True asks OpenTelemetry's instrumentation for: process memory,
#: CPU, threads, file descriptors, context switches, GC and the host's network I/O.
SYSTEM_METRICS_CONFIG: dict[str, list[str] | None] = {
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
    "process.context_switches": ["involuntary", "voluntary"],
    "cpython.gc.collections": None,
    "system.network.io": ["transmit", "receive"],
    "system.cpu.utilization": ["idle", "user", "system", "iowait"],
    "system.memory.usage": ["used", "free", "cached"],
}


def start_system_metrics(meter_provider: Any) -> Closer | None:
    """Instrument the process with OpenTelemetry's system metrics; None when the
    ``system`` extra is not installed (logged once, never raised)."""
    try:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    except ImportError:
        LOGGER.warning("system_metrics=True needs: pip install 'mevobs[system]'")
        return None
    instrumentor = SystemMetricsInstrumentor(config=SYSTEM_METRICS_CONFIG)
    instrumentor.instrument(meter_provider=meter_provider)
    stop: Closer = instrumentor.uninstrument
    return stop


def restart_system_metrics(meter_provider: Any) -> None:
    """In a forked child: the instruments of the parent live in the parent's meter
    provider and read the parent's process; record the child's own into ``meter_provider``."""
    try:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    except ImportError:
        return
    instrumentor = SystemMetricsInstrumentor(config=SYSTEM_METRICS_CONFIG)  # one instance: re-reads the pid
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(meter_provider=meter_provider)


def start_instrumentations(names: Iterable[str], tracer_provider: Any, meter_provider: Any) -> list[Closer]:
    """Switch on the named OpenTelemetry contrib instrumentations (entry points of group
    ``opentelemetry_instrumentor``: ``sqlite3``, ``asyncpg``, ``aiohttp-client``,
    ``requests``...). A missing one is a logged warning, not an error."""
    available = {ep.name: ep for ep in importlib.metadata.entry_points(group="opentelemetry_instrumentor")}
    closers: list[Closer] = []
    for name in names:
        entry = available.get(name)
        if entry is None:
            LOGGER.warning("instrument=%r: not installed (%s)", name, install_line(name))
            continue
        try:
            instrumentor = entry.load()()
            if instrumentor.is_instrumented_by_opentelemetry:
                continue
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            closers.append(instrumentor.uninstrument)
        except Exception as exc:
            LOGGER.warning("instrument=%r failed: %s: %s", name, type(exc).__name__, exc)
    return closers


def install_line(name: str) -> str:
    """The pip line for contrib instrumentation ``name`` of the installed OpenTelemetry family.

    Contrib releases pin ``opentelemetry-semantic-conventions`` exactly, as the SDK does: the
    one of the same version keeps the API and the SDK where they are (an unpinned install
    may move ``opentelemetry-api`` away from the SDK's).
    """
    package = f"opentelemetry-instrumentation-{name}"
    try:
        version = importlib.metadata.version("opentelemetry-semantic-conventions")
    except importlib.metadata.PackageNotFoundError:
        return f"pip install {package}"
    return f'pip install "{package}=={version}"'


async def _watch(interval: float, generation: int | None) -> None:
    if generation is None:  # started by configure(): its generation begins once it returns
        generation = STATE.generation
    while STATE.generation == generation:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        lag = time.perf_counter() - start - interval
        STATE.instruments.histogram(semconv.EVENT_LOOP_LAG).record(max(lag, 0.0))


def watch_event_loop(interval: float = 0.25) -> asyncio.Task[None]:
    """Measure the running event loop's lag every ``interval`` seconds into the
    ``mev.eventloop.lag`` histogram, until telemetry is reconfigured or shut down.

    Call it from inside the loop (``configure(system_metrics=True)`` does it when
    called from a coroutine). Lag is how late a timer fires: a callback that blocks
    the loop for 200 ms shows as about 0.2 s.
    """
    return _start_watch(interval, STATE.generation)


def _start_watch(interval: float, generation: int | None) -> asyncio.Task[None]:
    loop = asyncio.get_running_loop()
    task = loop.create_task(_watch(interval, generation), name="mevobs-eventloop-lag")
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "exception never retrieved"
    return task


def watch_if_running() -> Closer | None:
    """Start the lag watcher when configure() runs inside an event loop."""
    with contextlib.suppress(RuntimeError):
        task = _start_watch(0.25, None)
        loop = task.get_loop()
        return lambda: loop.is_closed() or loop.call_soon_threadsafe(task.cancel)
    return None
