"""The public operation wrappers: ``swap``, ``liquidity``, ``arbitrage``, ``rpc``, ``operation``.

Each works as ``@mevobs.swap``, ``@mevobs.swap(exchange=...)``,
``with mevobs.swap(...) as op`` and ``async with mevobs.swap(...) as op``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar, overload

from mevobs import semconv
from mevobs._breaker import CircuitBreaker
from mevobs._wrap import ErrorPredicate, Extractor, OperationWrapper, build_wrapper

P = ParamSpec("P")
R = TypeVar("R")


def operation(
    kind: str,
    *,
    exchange: str | None = None,
    chain: str | None = None,
    strategy: str | None = None,
    action: str | None = None,
    method: str | None = None,
    provider: Any = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> OperationWrapper:
    """A generic operation of ``kind`` (e.g. ``"bundle"``, ``"quote"``).

    ``exchange``, ``chain``, ``strategy``, ``action`` and ``method`` become
    bounded metric attributes; other keyword ``attributes`` go on the span and
    log only. ``extract`` replaces (or with ``False`` disables) automatic
    recording from the return value; ``record_error_if(result)`` returning a
    truthy value (a string is used as ``error.type``) marks the call failed.
    """
    return build_wrapper(
        kind,
        exchange=exchange,
        chain=chain,
        strategy=strategy,
        action=action,
        method=method,
        provider=provider,
        extract=extract,
        record_error_if=record_error_if,
        breaker=breaker,
        attributes=attributes,
    )


@overload
def swap(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def swap(
    func: None = None,
    /,
    *,
    exchange: str | None = None,
    chain: str | None = None,
    strategy: str | None = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> OperationWrapper: ...
def swap(
    func: Callable[P, R] | None = None,
    /,
    *,
    exchange: str | None = None,
    chain: str | None = None,
    strategy: str | None = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> Callable[P, R] | OperationWrapper:
    """A token swap on ``exchange`` (``uniswap_v2``, ``uniswap_v3``, ``curve``...)."""
    wrapper = operation(
        semconv.OPERATION_SWAP,
        exchange=exchange,
        chain=chain,
        strategy=strategy,
        extract=extract,
        record_error_if=record_error_if,
        breaker=breaker,
        **attributes,
    )
    return wrapper(func) if func is not None else wrapper


@overload
def liquidity(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def liquidity(
    func: None = None,
    /,
    *,
    exchange: str | None = None,
    action: Literal["add", "remove"] | None = None,
    chain: str | None = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> OperationWrapper: ...
def liquidity(
    func: Callable[P, R] | None = None,
    /,
    *,
    exchange: str | None = None,
    action: Literal["add", "remove"] | None = None,
    chain: str | None = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> Callable[P, R] | OperationWrapper:
    """Adding or removing liquidity on ``exchange``; ``action`` is ``"add"`` or ``"remove"``."""
    if action is not None and action not in ("add", "remove"):
        raise ValueError(f"mevobs.liquidity: action must be 'add' or 'remove', got {action!r}")
    wrapper = operation(
        semconv.OPERATION_LIQUIDITY,
        exchange=exchange,
        chain=chain,
        action=action,
        extract=extract,
        record_error_if=record_error_if,
        breaker=breaker,
        **attributes,
    )
    return wrapper(func) if func is not None else wrapper


@overload
def arbitrage(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def arbitrage(
    func: None = None,
    /,
    *,
    strategy: str | None = None,
    chain: str | None = None,
    exchange: str | None = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> OperationWrapper: ...
def arbitrage(
    func: Callable[P, R] | None = None,
    /,
    *,
    strategy: str | None = None,
    chain: str | None = None,
    exchange: str | None = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> Callable[P, R] | OperationWrapper:
    """An arbitrage execution; nested swaps carry the gas, this records the profit."""
    wrapper = operation(
        semconv.OPERATION_ARBITRAGE,
        strategy=strategy,
        chain=chain,
        exchange=exchange,
        extract=extract,
        record_error_if=record_error_if,
        breaker=breaker,
        **attributes,
    )
    return wrapper(func) if func is not None else wrapper


@overload
def rpc(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def rpc(
    func: None = None,
    /,
    *,
    method: str | None = None,
    provider: Any = None,
    chain: str | None = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> OperationWrapper: ...
def rpc(
    func: Callable[P, R] | None = None,
    /,
    *,
    method: str | None = None,
    provider: Any = None,
    chain: str | None = None,
    extract: Extractor | bool | None = None,
    record_error_if: ErrorPredicate | None = None,
    breaker: CircuitBreaker | None = None,
    **attributes: Any,
) -> Callable[P, R] | OperationWrapper:
    """A JSON-RPC or HTTP API call: a CLIENT span; HTTP 429 and provider limits give
    outcome ``rate_limited``. Call parameters are never recorded.

    ``provider`` may be a name or an endpoint URL; only its host reaches
    ``server.address`` and any key in it is scrubbed.
    """
    wrapper = operation(
        semconv.OPERATION_RPC,
        method=method,
        provider=provider,
        chain=chain,
        extract=False if extract is None else extract,
        record_error_if=record_error_if,
        breaker=breaker,
        **attributes,
    )
    return wrapper(func) if func is not None else wrapper
