"""Global OpenTelemetry providers that ``configure()`` can re-point.

The OpenTelemetry API lets a process set its global providers once. Had
``configure()`` installed its SDK providers there, a second ``configure()``
would leave the globals naming the first, shut-down, pipeline: the spans of
other instrumentations would vanish and ``metrics.get_meter()`` would print the
SDK's "A shutdown MeterProvider can not provide a Meter". So ``configure()``
installs these switches once and points them at the pipeline that is running
(or at no-op providers after ``shutdown()``). Tracers, meters, loggers and
instruments handed out earlier follow the switch: instruments are re-created on
the new meter, observable ones with their callbacks.

Only the API is imported here, never the SDK.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, LoggerProvider, NoOpLoggerProvider
from opentelemetry.metrics import (
    Counter,
    Histogram,
    Meter,
    MeterProvider,
    NoOpMeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
    _Gauge,
)

__all__ = ["SwitchLoggerProvider", "SwitchMeterProvider", "SwitchTracerProvider"]


class _Switch:
    """A target and a generation that changes whenever the target does."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.generation = 0

    def switch(self, target: Any) -> None:
        self.target = target
        self.generation += 1

    def __getattr__(self, name: str) -> Any:
        # force_flush, add_span_processor, resource...: the provider that is running.
        target = self.__dict__.get("target")
        if name.startswith("__") or target is None:
            raise AttributeError(name)
        return getattr(target, name)


# ---------------------------------------------------------------------- tracing


class SwitchTracerProvider(_Switch, trace.TracerProvider):
    """The global tracer provider mevobs installs; :meth:`switch` re-points it."""

    def __init__(self) -> None:
        super().__init__(trace.NoOpTracerProvider())

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _SwitchTracer(self, args, kwargs)


class _SwitchTracer(trace.Tracer):
    def __init__(self, provider: SwitchTracerProvider, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._provider = provider
        self._args = args
        self._kwargs = kwargs
        self._generation = -1
        self._real: trace.Tracer = trace.NoOpTracer()

    def _tracer(self) -> trace.Tracer:
        provider = self._provider
        if self._generation != provider.generation:
            # A race here only resolves the same tracer twice.
            self._real = provider.target.get_tracer(*self._args, **self._kwargs)
            self._generation = provider.generation
        return self._real

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer().start_as_current_span(*args, **kwargs)


# ---------------------------------------------------------------------- metrics


class _SwitchInstrument:
    """An instrument re-created on every new meter; measurements go to the current one."""

    def __init__(self, create: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.name = name
        self._create = create
        self._args = args
        self._kwargs = kwargs
        self._real: Any = None

    def rebind(self, meter: Meter) -> None:
        self._real = getattr(meter, self._create)(self.name, *self._args, **self._kwargs)


class _SwitchCounter(_SwitchInstrument, Counter):
    def add(self, amount: float, *args: Any, **kwargs: Any) -> None:
        self._real.add(amount, *args, **kwargs)


class _SwitchUpDownCounter(_SwitchInstrument, UpDownCounter):
    def add(self, amount: float, *args: Any, **kwargs: Any) -> None:
        self._real.add(amount, *args, **kwargs)


class _SwitchHistogram(_SwitchInstrument, Histogram):
    def record(self, amount: float, *args: Any, **kwargs: Any) -> None:
        self._real.record(amount, *args, **kwargs)


class _SwitchGauge(_SwitchInstrument, _Gauge):
    def set(self, amount: float, *args: Any, **kwargs: Any) -> None:
        self._real.set(amount, *args, **kwargs)


class _SwitchObservableCounter(_SwitchInstrument, ObservableCounter):
    pass


class _SwitchObservableUpDownCounter(_SwitchInstrument, ObservableUpDownCounter):
    pass


class _SwitchObservableGauge(_SwitchInstrument, ObservableGauge):
    pass


class _SwitchMeter(Meter):
    def __init__(
        self, provider: SwitchMeterProvider, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        super().__init__(name)
        self._provider = provider
        self._args = args
        self._kwargs = kwargs
        self._instruments: dict[tuple[str, str], _SwitchInstrument] = {}
        self._real: Meter = provider.target.get_meter(name, *args, **kwargs)

    def rebind(self, target: MeterProvider) -> None:
        self._real = target.get_meter(self.name, *self._args, **self._kwargs)
        for instrument in self._instruments.values():
            instrument.rebind(self._real)

    def _make(
        self, kind: Callable[..., _SwitchInstrument], create: str, name: str, *args: Any, **kwargs: Any
    ) -> Any:
        with self._provider.lock:
            # One switch per (kind, name), as the SDK returns one instrument per identity;
            # the set stays as small as the code that creates instruments.
            key = (create, name)
            instrument = self._instruments.get(key)
            if instrument is None:
                instrument = kind(create, name, args, kwargs)
                instrument.rebind(self._real)
                self._instruments[key] = instrument
            return instrument

    def create_counter(self, name: str, *args: Any, **kwargs: Any) -> Counter:
        return self._make(_SwitchCounter, "create_counter", name, *args, **kwargs)  # type: ignore[no-any-return]

    def create_up_down_counter(self, name: str, *args: Any, **kwargs: Any) -> UpDownCounter:
        return self._make(_SwitchUpDownCounter, "create_up_down_counter", name, *args, **kwargs)  # type: ignore[no-any-return]

    def create_histogram(self, name: str, *args: Any, **kwargs: Any) -> Histogram:
        return self._make(_SwitchHistogram, "create_histogram", name, *args, **kwargs)  # type: ignore[no-any-return]

    def create_gauge(self, name: str, *args: Any, **kwargs: Any) -> _Gauge:
        return self._make(_SwitchGauge, "create_gauge", name, *args, **kwargs)  # type: ignore[no-any-return]

    def create_observable_counter(
        self, name: str, callbacks: Sequence[Any] | None = None, *args: Any, **kwargs: Any
    ) -> ObservableCounter:
        return self._make(  # type: ignore[no-any-return]
            _SwitchObservableCounter, "create_observable_counter", name, callbacks, *args, **kwargs
        )

    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[Any] | None = None, *args: Any, **kwargs: Any
    ) -> ObservableUpDownCounter:
        return self._make(  # type: ignore[no-any-return]
            _SwitchObservableUpDownCounter,
            "create_observable_up_down_counter",
            name,
            callbacks,
            *args,
            **kwargs,
        )

    def create_observable_gauge(
        self, name: str, callbacks: Sequence[Any] | None = None, *args: Any, **kwargs: Any
    ) -> ObservableGauge:
        return self._make(  # type: ignore[no-any-return]
            _SwitchObservableGauge, "create_observable_gauge", name, callbacks, *args, **kwargs
        )


class SwitchMeterProvider(_Switch, MeterProvider):
    """The global meter provider mevobs installs; :meth:`switch` re-points it."""

    def __init__(self) -> None:
        super().__init__(NoOpMeterProvider())
        self.lock = threading.RLock()
        self._meters: dict[tuple[Any, ...], _SwitchMeter] = {}

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> Meter:
        with self.lock:
            # One switch per meter identity, as the SDK keeps one meter per identity.
            key = (name, repr(args), repr(sorted(kwargs.items())))
            meter = self._meters.get(key)
            if meter is None:
                meter = self._meters[key] = _SwitchMeter(self, name, args, kwargs)
            return meter

    def switch(self, target: Any) -> None:
        with self.lock:
            super().switch(target)
            for meter in self._meters.values():
                meter.rebind(target)


# ------------------------------------------------------------------------- logs


class SwitchLoggerProvider(_Switch, LoggerProvider):
    """The global logger provider mevobs installs; :meth:`switch` re-points it."""

    def __init__(self) -> None:
        super().__init__(NoOpLoggerProvider())

    def get_logger(self, name: str, *args: Any, **kwargs: Any) -> Logger:
        return _SwitchLogger(self, name, args, kwargs)


class _SwitchLogger(Logger):
    def __init__(
        self, provider: SwitchLoggerProvider, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        super().__init__(name)
        self._provider = provider
        self._args = args
        self._kwargs = kwargs
        self._generation = -1
        self._real: Logger | None = None

    def _logger(self) -> Logger:
        provider = self._provider
        if self._real is None or self._generation != provider.generation:
            self._real = provider.target.get_logger(self._name, *self._args, **self._kwargs)
            self._generation = provider.generation
        return self._real

    def emit(self, *args: Any, **kwargs: Any) -> None:
        self._logger().emit(*args, **kwargs)

    def enabled(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._logger().enabled(*args, **kwargs))
