"""The per-call code of a decorated function, generated once per signature.

A decorated plain function (sync or ``async def``) is replaced by a closure that
does only timing and a compact record on the caller's thread. Two things about
it are decided here, at decoration:

* **Its signature is the function's own.** A ``(*args, **kwargs)`` wrapper packs
  a tuple and a dict on every call and unpacks them again, about a tenth of an
  unconfigured call. The closure is compiled from a template with the function's
  parameters (defaults are the function's own objects, so the callee sees exactly
  what it would have seen), and forwards them by position and keyword. A call
  with arguments that do not bind raises the same ``TypeError``, from the wrapper,
  before any operation starts. Functions whose parameter names could clash with
  the template's (the ``_mv_`` prefix) keep the generic signature.
* **Its lane is read from one attribute per call** (``State.lane``): lean when
  nothing can receive telemetry (a :class:`~mevobs._operation.Pending`
  placeholder, no operation unless someone asks for it), fast when
  ``configure()`` owns the pipeline, and the general path otherwise (the SDK
  behind the OpenTelemetry API, a circuit breaker).

The generated source is registered in :mod:`linecache`, so tracebacks through
the wrapper show its lines like any other frame.
"""

from __future__ import annotations

import functools
import inspect
import linecache
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mevobs import _fastcall
from mevobs._context import CURRENT
from mevobs._operation import HEADROOM_EVERY, Operation, Pending, ensure_headroom, materialize
from mevobs._state import LEAN, LEAN_OWN, LOGGER, STATE, _otel_metrics, _otel_trace

if TYPE_CHECKING:
    from mevobs._wrap import OperationSpec

_PREFIX = "_mv_"

# What every closure reads that is the same for all of them: module globals of the
# generated code (one dict lookup, specialised by the interpreter like any global).
_GLOBALS: dict[str, Any] = {
    "_mv_wraps": functools.wraps,
    "_mv_state": STATE,
    "_mv_new": object.__new__,
    "_mv_op_type": Operation,
    "_mv_pending_type": Pending,
    "_mv_get": CURRENT.get,
    "_mv_set": CURRENT.set,
    "_mv_reset": CURRENT.reset,
    "_mv_perf": time.perf_counter_ns,
    "_mv_fast_start": _fastcall.start,
    "_mv_fast_finish": _fastcall.finish,
    "_mv_trace": _otel_trace,
    "_mv_metrics": _otel_metrics,
    "_mv_lean": LEAN,
    "_mv_lean_own": LEAN_OWN,
    "_mv_hooks": STATE.hooks,  # the list object itself: configure() and capture() fill it in place
    "_mv_log_cache": LOGGER._cache,  # type: ignore[attr-defined]  # the stdlib clears it in place
    "_mv_log_enabled": LOGGER.isEnabledFor,
    "_mv_headroom_every": HEADROOM_EVERY,
    "_mv_headroom": ensure_headroom,
    "_mv_materialize": materialize,
    "__name__": __name__,
}

# A fast-lane operation and its parent, as both templates make it.
_NEW_OPERATION = """\
            _mv_op = _mv_new(_mv_op_type)
            _mv_op._spec = _mv_spec
            _mv_parent = _mv_get()
            if _mv_parent is None:
                _mv_op._parent = None
                _mv_op._depth = 0
            else:
                if type(_mv_parent) is _mv_pending_type:  # configure() ran inside a lean call
                    _mv_parent = _mv_materialize(_mv_parent)
                _mv_op._parent = _mv_parent
                _mv_depth = _mv_op._depth = _mv_parent._depth + 1
                if not _mv_depth & _mv_headroom_every:
                    _mv_headroom(_mv_depth, 1)"""

# A returned value is read for receipts unless its type is plain; the last type found
# plain is passed over with one identity test instead of hashing it into the set.
_INSPECT = """\
            if _mv_inspects and type(_mv_result) is not _mv_seen:
                if type(_mv_result) in _mv_plain:
                    _mv_seen = type(_mv_result)
                else:
                    _mv_spec.after_result(@OP@, _mv_result)"""

_SYNC = """
def _mv_make(_mv_spec, _mv_func, _mv_call, _mv_defaults):
    {unpack}
    _mv_inspects, _mv_plain = _mv_spec.inspects_results, _mv_spec.plain_results
    _mv_seen = None  # the last result type found plain (see _INSPECT)

    @_mv_wraps(_mv_func)
    def _mv_sync({params}):
        nonlocal _mv_seen
        _mv_lane = _mv_state.lane
        if _mv_lane is _mv_lean_own or (
            _mv_lane is _mv_lean
            and _mv_trace._TRACER_PROVIDER is None
            and _mv_metrics._METER_PROVIDER is None
        ):
            # A placeholder, not an operation: materialize() makes the handle when
            # something asks for it (see Pending: [spec, parent, depth, operation]).
            _mv_parent = _mv_get()
            if _mv_parent is None:
                _mv_token = _mv_set(_mv_pending := [_mv_spec, None, 0, None])
            else:
                _mv_depth = (
                    _mv_parent[2] if type(_mv_parent) is _mv_pending_type else _mv_parent._depth
                ) + 1
                _mv_pending = [_mv_spec, _mv_parent, _mv_depth, None]
                if not _mv_depth & _mv_headroom_every:
                    _mv_headroom(_mv_depth, 1)  # one frame per level: this one
                _mv_token = _mv_set(_mv_pending)
            _mv_start = _mv_perf()
            try:
                _mv_result = _mv_func({forward})
            except BaseException as _mv_exc:
                _mv_reset(_mv_token)
                _mv_materialize(_mv_pending)._end_lean(_mv_start, _mv_exc)
                raise
            _mv_reset(_mv_token)
@INSPECT(_mv_materialize(_mv_pending))@
            # Nobody took the handle, no hook, no INFO log (the logger's own cache,
            # else its method): a plain success, nothing to finish.
            try:  # a subscript costs less than .get(); the stdlib empties the cache in place
                _mv_info = _mv_log_cache[20]
            except KeyError:
                _mv_info = _mv_log_enabled(20)
            if _mv_info or _mv_hooks:
                _mv_materialize(_mv_pending)._end_lean(_mv_start, None)
            else:
                if _mv_pending[3] is not None:
                    _mv_pending[3]._end_lean(_mv_start, None)
            return _mv_result
        if _mv_lane is not None and _mv_lane is not _mv_lean:
@NEW_OPERATION@
            _mv_fast_start(_mv_op, _mv_lane)
            try:
                _mv_result = _mv_func({forward})
            except BaseException as _mv_exc:
                _mv_fast_finish(_mv_op, _mv_lane, _mv_exc)
                raise
@INSPECT(_mv_op)@
            _mv_fast_finish(_mv_op, _mv_lane, None)
            return _mv_result
        return _mv_call(_mv_func, None, {args}, {kwargs})

    return _mv_sync
"""

_ASYNC = """
def _mv_make(_mv_spec, _mv_func, _mv_call, _mv_defaults):
    {unpack}
    _mv_inspects, _mv_plain = _mv_spec.inspects_results, _mv_spec.plain_results
    _mv_seen = None

    @_mv_wraps(_mv_func)
    async def _mv_async({params}):
        nonlocal _mv_seen
        _mv_sink = _mv_state.fast
        if _mv_sink is not None:
@NEW_OPERATION@
            _mv_fast_start(_mv_op, _mv_sink)
            try:
                _mv_result = await _mv_func({forward})
            except BaseException as _mv_exc:
                _mv_fast_finish(_mv_op, _mv_sink, _mv_exc)
                raise
@INSPECT(_mv_op)@
            _mv_fast_finish(_mv_op, _mv_sink, None)
            return _mv_result
        return await _mv_call(_mv_func, None, {args}, {kwargs})

    return _mv_async
"""

Fn = Callable[..., Any]

_TEMPLATES = {
    kind: re.sub(
        r"@INSPECT\((.+)\)@",
        lambda m: _INSPECT.replace("@OP@", m.group(1)),
        text.replace("@NEW_OPERATION@", _NEW_OPERATION),
    )
    for kind, text in (("sync", _SYNC), ("async", _ASYNC))
}
_GENERIC = {
    "params": "*_mv_args, **_mv_kwargs",
    "forward": "*_mv_args, **_mv_kwargs",
    "args": "_mv_args",
    "kwargs": "_mv_kwargs",
}
_FACTORIES: dict[tuple[str, str, str], Callable[..., Any]] = {}
_FACTORIES_MAX = 1024  # distinct signatures compiled and kept; beyond, each is compiled anew


def sync_closure(
    spec: OperationSpec, func: Callable[..., Any], call: Callable[..., Any]
) -> Callable[..., Any]:
    """The closure that replaces the plain function ``func``; ``call`` is the general
    path (``call(func, None, args, kwargs)``), also taken by every call of a spec with a
    circuit breaker (the guard runs there)."""
    if spec.breaker is not None:

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return call(func, None, args, kwargs)

        return guarded
    return _build("sync", spec, func, call)


def async_closure(
    spec: OperationSpec, func: Callable[..., Any], call: Callable[..., Any]
) -> Callable[..., Any]:
    """The closure that replaces the coroutine function ``func`` (the awaited call is timed)."""
    if spec.breaker is not None:

        @functools.wraps(func)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            return await call(func, None, args, kwargs)

        return guarded
    return _build("async", spec, func, call)


def _build(
    kind: str, spec: OperationSpec, func: Callable[..., Any], call: Callable[..., Any]
) -> Callable[..., Any]:
    shape = signature_shape(func)
    parts, defaults = (_GENERIC, ()) if shape is None else shape
    key = (kind, parts["params"], parts["forward"])
    factory = _FACTORIES.get(key)
    if factory is None:
        keep = len(_FACTORIES) < _FACTORIES_MAX
        factory = _compile(_TEMPLATES[kind], parts, len(defaults), len(_FACTORIES) if keep else None)
        if keep:
            _FACTORIES[key] = factory
    return factory(spec, func, call, defaults)  # type: ignore[no-any-return]


def _compile(template: str, parts: dict[str, str], n_defaults: int, number: int | None) -> Callable[..., Any]:
    names = [f"_mv_d{i}" for i in range(n_defaults)]
    unpack = f"{', '.join(names)}, = _mv_defaults" if names else "pass"
    source = template.format(unpack=unpack, **parts)
    filename = f"<mevobs wrapper {number if number is not None else 'uncached'}>"
    namespace = dict(_GLOBALS)
    exec(compile(source, filename, "exec"), namespace)
    if number is not None:  # kept: its lines show in tracebacks (bounded with the cache)
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    return namespace["_mv_make"]  # type: ignore[no-any-return]


def signature_shape(func: Callable[..., Any]) -> tuple[dict[str, str], tuple[Any, ...]] | None:
    """The parameter list, the forwarding call and the general path's ``args`` and
    ``kwargs`` expressions for a closure with ``func``'s own signature, read from its
    code object (not ``inspect.signature``: that follows ``__wrapped__`` and
    ``__signature__``, which may describe another function), with the default objects
    it references. None when the generic ``(*args, **kwargs)`` form must be used."""
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    names = code.co_varnames
    n_pos, n_posonly, n_kwonly = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    positional = list(names[:n_pos])
    kwonly = list(names[n_pos : n_pos + n_kwonly])
    index = n_pos + n_kwonly
    varargs = varkw = None
    if code.co_flags & inspect.CO_VARARGS:
        varargs, index = names[index], index + 1
    if code.co_flags & inspect.CO_VARKEYWORDS:
        varkw = names[index]
    every = [*positional, *kwonly, *(n for n in (varargs, varkw) if n is not None)]
    if any(not n.isidentifier() or n.startswith(_PREFIX) for n in every):
        return None
    defaults: list[Any] = []
    own_defaults = getattr(func, "__defaults__", None) or ()
    own_kwdefaults = getattr(func, "__kwdefaults__", None) or {}
    first_default = n_pos - len(own_defaults)
    params: list[str] = []
    for i, name in enumerate(positional):
        if i >= first_default:
            params.append(f"{name}=_mv_d{len(defaults)}")
            defaults.append(own_defaults[i - first_default])
        else:
            params.append(name)
        if i == n_posonly - 1:
            params.append("/")
    if varargs is not None:
        params.append(f"*{varargs}")
    elif kwonly:
        params.append("*")
    for name in kwonly:
        if name in own_kwdefaults:
            params.append(f"{name}=_mv_d{len(defaults)}")
            defaults.append(own_kwdefaults[name])
        else:
            params.append(name)
    if varkw is not None:
        params.append(f"**{varkw}")
    spread = [*positional, *([f"*{varargs}"] if varargs is not None else [])]
    by_name = [f"{name}={name}" for name in kwonly] + ([f"**{varkw}"] if varkw is not None else [])
    keywords = [f"{name!r}: {name}" for name in kwonly] + ([f"**{varkw}"] if varkw is not None else [])
    parts = {
        "params": ", ".join(params),
        "forward": ", ".join(spread + by_name),
        "args": f"({', '.join(spread)},)" if spread else "()",
        "kwargs": "{" + ", ".join(keywords) + "}",
    }
    return parts, tuple(defaults)
