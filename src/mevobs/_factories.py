"""The public operation wrappers: ``swap``, ``liquidity``, ``arbitrage``, ``rpc``, ``operation``.

Each works as ``@mevobs.swap``, ``@mevobs.swap(exchange=...)``,
``with mevobs.swap(...) as op`` and ``async with mevobs.swap(...) as op``.

A wrapper is an :class:`OperationFactory`: one class whose two overloads keep the
decorated function's signature for type checkers, parameterised by the keyword
options of its kind. Each kind's options are written once, as the signature of a
small function below (the labels it adds to :class:`CommonOptions`); type checkers
read them from it, and at run time they say which labels the kind takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypedDict, TypeVar, overload

from mevobs import semconv
from mevobs._protocols import AttrValue, Guard
from mevobs._wrap import ErrorPredicate, Extractor, OperationWrapper, build_wrapper

if TYPE_CHECKING:  # typing.Unpack is 3.11+; only type checkers need it here
    from typing_extensions import Unpack

P = ParamSpec("P")
R = TypeVar("R")
Options = ParamSpec("Options")


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


class OperationFactory(Generic[Options]):
    """The wrapper of one operation kind: ``@f``, ``@f(**options)``, ``with f(**options)``."""

    def __init__(
        self,
        kind: str,
        options: Callable[Options, None],
        *,
        defaults: Mapping[str, Any] | None = None,
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.kind = kind
        self._defaults = dict(defaults or {})
        self._check = check
        params = inspect.signature(options).parameters
        # The labels (and provider) this kind takes: its own keyword options, and chain.
        self._accepted = frozenset(n for n, p in params.items() if p.kind is p.KEYWORD_ONLY) | {"chain"}
        self.__doc__ = options.__doc__
        self.__name__ = self.__qualname__ = options.__name__.lstrip("_")
        self.__module__ = "mevobs"

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R]: ...
    @overload
    def __call__(
        self, func: None = None, /, *args: Options.args, **kwargs: Options.kwargs
    ) -> OperationWrapper: ...
    def __call__(self, func: Any = None, /, *args: Any, **kwargs: Any) -> Any:
        options = {
            **self._defaults,
            **{k: v for k, v in kwargs.items() if v is not None or k not in self._defaults},
        }
        if self._check is not None:
            self._check(options)
        wrapper = build_wrapper(self.kind, options, self._accepted)
        return wrapper(func) if func is not None else wrapper

    def __repr__(self) -> str:
        return f"<mevobs wrapper factory {self.kind!r}>"


def operation(kind: str, **options: Any) -> OperationWrapper:
    """A generic operation of ``kind`` (e.g. ``"bundle"``, ``"quote"``).

    Takes the :class:`CommonOptions` and the labels of every kind: ``exchange``,
    ``chain``, ``strategy``, ``action`` and ``method`` become bounded metric
    attributes, ``provider`` is scrubbed as for ``rpc``; any other keyword goes on
    the span and log only.
    """
    return build_wrapper(kind, options)


def _swap(
    *, exchange: str | None = None, strategy: str | None = None, **common: Unpack[CommonOptions]
) -> None:
    """A token swap on ``exchange`` (``uniswap_v2``, ``uniswap_v3``, ``curve``...)."""


def _liquidity(
    *,
    exchange: str | None = None,
    action: Literal["add", "remove"] | None = None,
    **common: Unpack[CommonOptions],
) -> None:
    """Adding or removing liquidity on ``exchange``; ``action`` is ``"add"`` or ``"remove"``."""


def _arbitrage(
    *, strategy: str | None = None, exchange: str | None = None, **common: Unpack[CommonOptions]
) -> None:
    """An arbitrage execution; nested swaps carry the gas, this records the profit."""


def _rpc(*, method: str | None = None, provider: Any = None, **common: Unpack[CommonOptions]) -> None:
    """A JSON-RPC or HTTP API call: a CLIENT span; HTTP 429 and provider limits give
    outcome ``rate_limited``. Call parameters are never recorded.

    ``provider`` may be a name or an endpoint URL; only its host reaches
    ``server.address`` and any key in it is scrubbed. Results are not extracted
    unless ``extract`` says so (a receipt's gas would otherwise count twice).
    """


def _valid_action(options: dict[str, Any]) -> None:
    action = options.get("action")
    if action is not None and action not in ("add", "remove"):
        raise ValueError(f"mevobs.liquidity: action must be 'add' or 'remove', got {action!r}")


swap = OperationFactory(semconv.OPERATION_SWAP, _swap)
liquidity = OperationFactory(semconv.OPERATION_LIQUIDITY, _liquidity, check=_valid_action)
arbitrage = OperationFactory(semconv.OPERATION_ARBITRAGE, _arbitrage)
rpc = OperationFactory(semconv.OPERATION_RPC, _rpc, defaults={"extract": False})
