"""The public operation wrappers: ``swap``, ``liquidity``, ``arbitrage``, ``rpc``, ``operation``.

Each works as ``@mevobs.swap``, ``@mevobs.swap(exchange=...)``,
``with mevobs.swap(...) as op`` and ``async with mevobs.swap(...) as op``.
Their keyword options are typed once, as ``TypedDict``s: the options every
wrapper shares, and the bounded labels each kind adds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypedDict, TypeVar, overload

from mevobs import semconv
from mevobs._protocols import AttrValue, Guard
from mevobs._wrap import ErrorPredicate, Extractor, OperationWrapper, build_wrapper

if TYPE_CHECKING:  # typing.Unpack is 3.11+; only type checkers need it here
    from typing_extensions import Unpack

P = ParamSpec("P")
R = TypeVar("R")


class CommonOptions(TypedDict, total=False):
    """Options every wrapper takes.

    ``chain`` is a bounded metric label. ``extract`` replaces (or with ``False``
    disables) automatic recording from the return value; ``record_error_if(result)``
    returning a truthy value (a string is used as ``error.type``) marks the call
    failed; ``breaker`` admits or refuses each call (a :class:`mevobs.CircuitBreaker`).
    ``attributes`` are extra span and log attributes (never on metrics); ``pool``,
    ``token_in``, ``token_out`` and ``to`` are shorthands for the ``mev.*`` ones.
    Other keywords are accepted at run time as span attributes too.
    """

    chain: str | None
    extract: Extractor | bool | None
    record_error_if: ErrorPredicate | None
    breaker: Guard | None
    attributes: Mapping[str, AttrValue]
    pool: str
    token_in: str
    token_out: str
    to: str


class SwapOptions(CommonOptions, total=False):
    exchange: str | None
    strategy: str | None


class LiquidityOptions(CommonOptions, total=False):
    exchange: str | None
    action: Literal["add", "remove"] | None


class ArbitrageOptions(CommonOptions, total=False):
    strategy: str | None
    exchange: str | None


class RpcOptions(CommonOptions, total=False):
    method: str | None
    provider: Any


def operation(kind: str, **options: Any) -> OperationWrapper:
    """A generic operation of ``kind`` (e.g. ``"bundle"``, ``"quote"``).

    Takes the :class:`CommonOptions` and the labels of every kind: ``exchange``,
    ``chain``, ``strategy``, ``action`` and ``method`` become bounded metric
    attributes, ``provider`` is scrubbed as for ``rpc``; any other keyword goes on
    the span and log only.
    """
    return build_wrapper(kind, options)


def _wrap_or_return(kind: str, func: Callable[P, R] | None, options: Mapping[str, Any]) -> Any:
    wrapper = build_wrapper(kind, dict(options))
    return wrapper(func) if func is not None else wrapper


@overload
def swap(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def swap(func: None = None, /, **options: Unpack[SwapOptions]) -> OperationWrapper: ...
def swap(func: Callable[P, R] | None = None, /, **options: Unpack[SwapOptions]) -> Any:
    """A token swap on ``exchange`` (``uniswap_v2``, ``uniswap_v3``, ``curve``...)."""
    return _wrap_or_return(semconv.OPERATION_SWAP, func, options)


@overload
def liquidity(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def liquidity(func: None = None, /, **options: Unpack[LiquidityOptions]) -> OperationWrapper: ...
def liquidity(func: Callable[P, R] | None = None, /, **options: Unpack[LiquidityOptions]) -> Any:
    """Adding or removing liquidity on ``exchange``; ``action`` is ``"add"`` or ``"remove"``."""
    action = options.get("action")
    if action is not None and action not in ("add", "remove"):
        raise ValueError(f"mevobs.liquidity: action must be 'add' or 'remove', got {action!r}")
    return _wrap_or_return(semconv.OPERATION_LIQUIDITY, func, options)


@overload
def arbitrage(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def arbitrage(func: None = None, /, **options: Unpack[ArbitrageOptions]) -> OperationWrapper: ...
def arbitrage(func: Callable[P, R] | None = None, /, **options: Unpack[ArbitrageOptions]) -> Any:
    """An arbitrage execution; nested swaps carry the gas, this records the profit."""
    return _wrap_or_return(semconv.OPERATION_ARBITRAGE, func, options)


@overload
def rpc(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def rpc(func: None = None, /, **options: Unpack[RpcOptions]) -> OperationWrapper: ...
def rpc(func: Callable[P, R] | None = None, /, **options: Unpack[RpcOptions]) -> Any:
    """A JSON-RPC or HTTP API call: a CLIENT span; HTTP 429 and provider limits give
    outcome ``rate_limited``. Call parameters are never recorded.

    ``provider`` may be a name or an endpoint URL; only its host reaches
    ``server.address`` and any key in it is scrubbed. Results are not extracted
    unless ``extract`` says so (a receipt's gas would otherwise count twice).
    """
    merged: dict[str, Any] = {"extract": False, **options}
    if merged["extract"] is None:
        merged["extract"] = False
    return _wrap_or_return(semconv.OPERATION_RPC, func, merged)
