"""Operation wrappers: one object that is a decorator, a ``with`` block and an ``async with`` block.

What can be decided once is decided when the wrapper is made: the span name
and kind, the frozen span attributes, the metric attributes (through the
cardinality cap) and, at decoration, the call shape (sync, coroutine,
generator, async generator). Per call, only an ``Operation`` is created,
timed and finished.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import urlsplit

import wrapt
from opentelemetry.trace import SpanKind

from mevobs import semconv
from mevobs._closures import async_closure, sync_closure
from mevobs._context import CURRENT
from mevobs._extract import extract_result
from mevobs._operation import (
    Operation,
    Pending,
    current,
    new_operation,
)
from mevobs._protocols import FACT_RPC, FACT_TRANSACTION, Guard
from mevobs._recorders import _valid_attr_value
from mevobs._scrub import scrub_text, scrub_value
from mevobs._slots import OpBundle, SlotTable
from mevobs._state import STATE

P = ParamSpec("P")
R = TypeVar("R")

Extractor = Callable[[Operation, Any], None]
ErrorPredicate = Callable[[Any], Any]

# Keyword shorthands for span attributes; any other keyword is used as the key itself.
_SHORTHAND = {
    "pool": semconv.ATTR_POOL_ADDRESS,
    "token_in": semconv.ATTR_TOKEN_IN,
    "token_out": semconv.ATTR_TOKEN_OUT,
    "to": semconv.ATTR_TX_TO,
}
# Return types with nothing to extract; skipped unless a custom extractor or predicate wants them.
_PLAIN_RESULTS_DEFAULT = frozenset({type(None), bool, int, float, str, bytes})
_OPPORTUNITY_KEYS = (semconv.ATTR_OPERATION, semconv.ATTR_EXCHANGE, semconv.ATTR_CHAIN, semconv.ATTR_STRATEGY)


class OperationSpec:
    """Everything about an operation that does not change from call to call."""

    __slots__ = (
        "_base",
        "_cache",
        "_fast",
        "_generation",
        "_opportunity",
        "_plain",
        "_slow_ns",
        "_static_metric",
        "breaker",
        "export_cache",
        "extract",
        "facts",
        "inspects_results",
        "is_rpc",
        "kind",
        "plain_results",
        "record_error_if",
        "span_attrs",
        "span_kind",
        "span_name",
        "where",
    )

    def __init__(
        self,
        kind: str,
        metric_attrs: dict[str, str],
        span_attrs: dict[str, Any],
        *,
        extract: Extractor | bool | None,
        record_error_if: ErrorPredicate | None,
        breaker: Guard | None = None,
    ) -> None:
        self.kind = kind
        self.is_rpc = kind == semconv.OPERATION_RPC
        label = None
        for key in (semconv.ATTR_EXCHANGE, semconv.ATTR_STRATEGY, semconv.ATTR_RPC_METHOD):
            if metric_attrs.get(key):
                # Through the cardinality cap, like the metric label: a bot naming an
                # exchange after every pool cannot grow the set of span names either.
                label = STATE.limiter.limit(key, metric_attrs[key])
                break
        # The name and the static attributes leave as they stand on every span: the
        # labels in them are cleaned here, once, like every other static attribute (on
        # metrics, the limiter refuses a label that looks like a URL or a key).
        self.span_name = scrub_text(f"{kind} {label}" if label else kind)
        self.span_kind = SpanKind[semconv.SPAN_KIND_RPC] if self.is_rpc else SpanKind.INTERNAL
        self._static_metric = {semconv.ATTR_OPERATION: kind, **metric_attrs}
        self.span_attrs = {**span_attrs, **{k: scrub_value(k, v) for k, v in self._static_metric.items()}}
        # What every call of this spec carries (see Operation.facts).
        self.facts = (FACT_RPC if self.is_rpc else 0) | (
            FACT_TRANSACTION if semconv.ATTR_TX_TO in self.span_attrs else 0
        )
        self.extract = extract
        self.record_error_if = record_error_if
        # Results are looked at only when something can use them.
        self.inspects_results = extract is not False or record_error_if is not None
        custom = callable(extract) or record_error_if is not None
        self.plain_results = frozenset() if custom else _PLAIN_RESULTS_DEFAULT
        self.breaker = breaker
        # Where log records point: the decorated function once known, else mevobs.
        self.where: tuple[str, int, str] = (__file__, 0, kind)
        self._generation = -1
        self._base: dict[str, Any] = {}
        self._opportunity: dict[str, Any] = {}
        self._cache: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._fast: dict[tuple[str, str | None], OpBundle] = {}
        # The fast lane's plain success (see _fastcall.finish): its slots and slow threshold.
        self._plain: OpBundle | None = None
        self._slow_ns = 0
        # What an exporter derives once from the static attributes (an encoding of them).
        self.export_cache: Any = None

    def at(self, where: tuple[str, int, str]) -> OperationSpec:
        """A copy whose log records point at ``where`` (file, line, function name)."""
        located = copy.copy(self)
        located._cache = {}
        located._fast = {}
        located._plain = None
        located.where = where
        return located

    def _refresh(self) -> None:
        # The limiter is replaced by configure()/capture(): pass the static labels through it again.
        self._base = STATE.limiter.limit_all(self._static_metric)
        self._opportunity = {k: v for k, v in self._base.items() if k in _OPPORTUNITY_KEYS}
        self._cache = {}
        self._fast = {}
        self._plain = None
        self._generation = STATE.generation

    def metric_attrs(
        self, outcome: str, error_type: str | None, extra: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The metric attributes of one finished call (cached per outcome and error type)."""
        if self._generation != STATE.generation:
            self._refresh()
        if extra is None:
            key = (outcome, error_type)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        attrs = {**self._base, **(extra or {}), semconv.ATTR_OUTCOME: outcome}
        if error_type is not None:
            attrs[semconv.ATTR_ERROR_TYPE] = STATE.limiter.limit(semconv.ATTR_ERROR_TYPE, error_type)
        if extra is None:
            self._cache[(outcome, error_type)] = attrs
        return attrs

    def fast_bundle(
        self, table: SlotTable, attrs: dict[str, Any], cacheable: bool, outcome: str, error_type: str | None
    ) -> OpBundle:
        """The metric slots of a call that ended with ``outcome`` (resolved once)."""
        if not cacheable:
            return OpBundle(table, attrs)
        key = (outcome, error_type)
        bundle = self._fast.get(key)
        if bundle is None:
            bundle = self._fast[key] = OpBundle(table, attrs)
        return bundle

    def opportunity_attrs(self) -> dict[str, Any]:
        if self._generation != STATE.generation:
            self._refresh()
        return self._opportunity

    def after_result(self, op: Operation, result: Any) -> None:
        """Extract recordable fields from a returned value; never raises."""
        try:
            extract = self.extract
            if extract is None or extract is True:
                extract_result(op, result)
            elif callable(extract):
                extract(op, result)
            predicate = self.record_error_if
            if predicate is not None:
                verdict = predicate(result)
                if verdict:
                    op._mark_result_failed(verdict if isinstance(verdict, str) else "result_error")
        except Exception as exc:
            STATE.dropped("recorder_error", f"extract: {type(exc).__name__}")


def _begin(spec: OperationSpec) -> Operation:
    breaker = spec.breaker
    if breaker is not None:
        breaker.before_call()
    op = new_operation(spec, current())
    op._start()
    return op


class OperationWrapper:
    """A decorator, context manager and async context manager for one kind of operation.

    The same object may be used concurrently: each call or ``with`` block gets
    a fresh :class:`Operation`.
    """

    __slots__ = ("_spec",)

    def __init__(self, spec: OperationSpec) -> None:
        self._spec = spec

    # ------------------------------------------------------------ decorator

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        target = getattr(func, "__func__", func)  # classmethod / staticmethod objects
        code = getattr(target, "__code__", None)
        if code is not None:
            # One wrapper may decorate several functions: each gets its own spec
            # so that its log records point at its own code.
            located = self._spec.at((code.co_filename, code.co_firstlineno, code.co_name))
            return OperationWrapper(located)._decorate(func, target)
        return self._decorate(func, target)

    def _decorate(self, func: Callable[P, R], target: Any) -> Callable[P, R]:
        if inspect.isasyncgenfunction(target):
            wrapper: Callable[..., Any] = self._async_gen_call
        elif inspect.isgeneratorfunction(target):
            wrapper = self._gen_call
        elif inspect.iscoroutinefunction(target):
            wrapper = self._async_call
            if inspect.isfunction(func):
                return cast("Callable[P, R]", async_closure(self._spec, func, self._async_call))
        else:
            wrapper = self._sync_call
            if inspect.isfunction(func):
                return cast("Callable[P, R]", sync_closure(self._spec, func, self._sync_call))
        # wrapt binds classmethod/staticmethod objects and other descriptors
        # correctly; a plain function (instance methods included, since functions
        # are descriptors themselves) gets a closure, which costs ~0.1 us per call
        # against ~0.7 us for wrapt's proxy (measured with benchmarks/overhead.py).
        return cast("Callable[P, R]", wrapt.FunctionWrapper(func, wrapper))

    def _sync_call(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        spec = self._spec
        op = _begin(spec)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            op._finish(exc)
            raise
        if spec.inspects_results and type(result) not in spec.plain_results:
            spec.after_result(op, result)
        op._finish()
        return result

    async def _async_call(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        spec = self._spec
        op = _begin(spec)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            op._finish(exc)
            raise
        if spec.inspects_results and type(result) not in spec.plain_results:
            spec.after_result(op, result)
        op._finish()
        return result

    def _gen_call(
        self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Generator[Any, Any, Any]:
        gen = wrapped(*args, **kwargs)
        return _traced_generator(self._spec, gen)

    def _async_gen_call(
        self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> AsyncGenerator[Any, Any]:
        agen = wrapped(*args, **kwargs)
        return _traced_async_generator(self._spec, agen)

    # ------------------------------------------------------- context manager

    def __enter__(self) -> Operation:
        return _begin(self._spec)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        op = CURRENT.get()
        if type(op) is Pending:  # a lean call is still running: this exit has no enter
            op = None
        if op is None or op._spec is not self._spec:
            STATE.dropped("recorder_error", f"{self._spec.span_name}: exit without matching enter")
            return
        op._finish(exc)

    async def __aenter__(self) -> Operation:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<mevobs operation {self._spec.span_name!r}>"


def _traced_generator(spec: OperationSpec, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Drive ``gen`` so that its span is current only while its own code runs.

    The operation starts at the first ``next()`` and ends when the generator
    returns, raises, or is closed (closing early counts as ``cancelled``).
    """
    op = _begin(spec)
    op._deactivate()
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        op._activate()
        try:
            if to_throw is not None:
                exc, to_throw = to_throw, None
                item = gen.throw(exc)
            else:
                item = gen.send(to_send)
        except StopIteration as stop:
            op._finish()
            return stop.value
        except BaseException as exc:
            op._finish(exc)
            raise
        op._deactivate()
        try:
            to_send = yield item
        except GeneratorExit as exc:
            op._activate()
            try:
                gen.close()
            finally:
                op._finish(exc)
            raise
        except BaseException as exc:
            to_throw = exc


async def _traced_async_generator(
    spec: OperationSpec, agen: AsyncGenerator[Any, Any]
) -> AsyncGenerator[Any, Any]:
    """The async counterpart of :func:`_traced_generator`."""
    op = _begin(spec)
    op._deactivate()
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        op._activate()
        try:
            if to_throw is not None:
                exc, to_throw = to_throw, None
                item = await agen.athrow(exc)
            else:
                item = await agen.asend(to_send)
        except StopAsyncIteration:
            op._finish()
            return
        except BaseException as exc:
            op._finish(exc)
            raise
        op._deactivate()
        try:
            to_send = yield item
        except GeneratorExit as exc:
            op._activate()
            try:
                await agen.aclose()
            finally:
                op._finish(exc)
            raise
        except BaseException as exc:
            to_throw = exc


# --------------------------------------------------------------------------
# Building specs from user arguments
# --------------------------------------------------------------------------


def _label(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"mevobs: {name} must be a non-empty string, got {value!r}")
    return value


def _provider_attrs(provider: Any) -> dict[str, Any]:
    if provider is None:
        return {}
    text = str(provider)
    attrs: dict[str, Any] = {semconv.ATTR_RPC_PROVIDER: scrub_text(text)}
    if "://" in text:
        host = urlsplit(text).hostname
        if host:
            attrs[semconv.ATTR_SERVER_ADDRESS] = host
    return attrs


_LABEL_OPTIONS = (
    (semconv.ATTR_EXCHANGE, "exchange"),
    (semconv.ATTR_CHAIN, "chain"),
    (semconv.ATTR_STRATEGY, "strategy"),
    (semconv.ATTR_LIQUIDITY_ACTION, "action"),
    (semconv.ATTR_RPC_METHOD, "method"),
)
# Options that are not span attributes: the labels above and how the wrapper behaves.
_BEHAVIOUR = frozenset({"extract", "record_error_if", "breaker", "attributes"})
_NOT_ATTRIBUTES = frozenset({name for _, name in _LABEL_OPTIONS} | {"provider"} | _BEHAVIOUR)


def build_wrapper(
    kind: str, options: dict[str, Any], accepted: frozenset[str] | None = None
) -> OperationWrapper:
    """Resolve names and attributes once and return the wrapper object.

    ``options`` are the wrappers' keyword options (see ``_factories``): the bounded
    labels, ``provider``, ``extract``, ``record_error_if``, ``breaker``, an
    ``attributes`` mapping, and any other keyword, which becomes a span attribute.
    ``accepted`` names the labels (and ``provider``) this kind takes; any other is a
    span attribute under its own name (None: every label, as ``mevobs.operation``).
    """
    kind = _label("kind", kind) or ""
    plain: dict[str, Any] = {}  # labels this kind does not take: span attributes by their own name
    if accepted is not None:
        others = _NOT_ATTRIBUTES - _BEHAVIOUR - accepted
        plain = {k: v for k, v in options.items() if k in others}
        options = {k: v for k, v in options.items() if k not in others}
    metric: dict[str, str] = {}
    for key, name in _LABEL_OPTIONS:
        label = _label(name, options.get(name))
        if label is not None:
            metric[key] = label
    method = options.get("method")
    span: dict[str, Any] = {}
    if kind == semconv.OPERATION_RPC:
        span[semconv.ATTR_RPC_SYSTEM_NAME] = "jsonrpc"
        if method is not None:
            span[semconv.ATTR_OTEL_RPC_METHOD] = scrub_value(semconv.ATTR_OTEL_RPC_METHOD, method)
    span.update(_provider_attrs(options.get("provider")))
    extra = {**plain, **{k: v for k, v in options.items() if k not in _NOT_ATTRIBUTES}}
    for key, value in {**extra, **(options.get("attributes") or {})}.items():
        full = _SHORTHAND.get(key, key)
        if not _valid_attr_value(value):
            STATE.dropped("invalid_attribute", f"{full}={type(value).__name__}")
            continue
        if full in semconv.METRIC_ATTRIBUTES and isinstance(value, str):
            metric[full] = value
        else:
            span[scrub_text(full)] = scrub_value(full, value)
    spec = OperationSpec(
        kind,
        metric,
        span,
        extract=options.get("extract"),
        record_error_if=options.get("record_error_if"),
        breaker=options.get("breaker"),
    )
    return OperationWrapper(spec)
