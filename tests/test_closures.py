"""Decorated functions keep their own signature: same results, same errors, same defaults.

The closure that replaces a plain function is compiled with that function's
parameters (``_closures.py``); these tests hold it to the bare function on every
lane: lean (unconfigured), fast (configure()) and the general path (a breaker).
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mevobs
from mevobs.testing import Captured, capture

LANES = ("lean", "fast", "general")


def _decorate(func: Callable[..., Any], lane: str) -> Callable[..., Any]:
    breaker = mevobs.CircuitBreaker(name="closures") if lane == "general" else None
    return mevobs.swap(exchange="uniswap_v2", breaker=breaker)(func)


def _outcome(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", func(*args, **kwargs)
    except TypeError as exc:
        return "TypeError", str(exc)


@pytest.fixture(params=LANES)
def lane(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "fast":
        with capture():
            yield request.param
    else:
        yield request.param


# A signature is (positional-only, positional-or-keyword, how many of those have
# defaults, *args, keyword-only with a default flag each, **kwargs).
NAMES = ("a", "b", "c", "spec", "func", "op", "result", "args", "kwargs", "self")
signatures = st.tuples(
    st.integers(0, 2),
    st.integers(0, 3),
    st.integers(0, 5),
    st.booleans(),
    st.lists(st.booleans(), max_size=2),
    st.booleans(),
)


def _make(shape: tuple[int, int, int, bool, list[bool], bool]) -> tuple[Callable[..., Any], list[str]]:
    n_posonly, n_pos, n_defaults, varargs, kwonly, varkw = shape
    names = iter(NAMES)
    positional = [next(names) for _ in range(n_posonly + n_pos)]
    n_defaults = min(n_defaults, len(positional))
    params = []
    for i, name in enumerate(positional):
        params.append(f"{name}=[{i}]" if i >= len(positional) - n_defaults else name)
        if i == n_posonly - 1:
            params.append("/")
    if varargs:
        params.append("*rest")
    elif kwonly:
        params.append("*")
    keyword_names = []
    for i, has_default in enumerate(kwonly):
        name = f"k{i}"
        keyword_names.append(name)
        params.append(f"{name}={{'k': {i}}}" if has_default else name)
    if varkw:
        params.append("**extra")
    source = f"def target({', '.join(params)}):\n    return dict(locals())\n"
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace["target"], positional + keyword_names


calls = st.tuples(
    st.integers(0, 6),
    st.lists(st.sampled_from((*NAMES, "k0", "k1", "zz", "rest", "extra")), max_size=4, unique=True),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=signatures, call=calls)
def test_any_signature_binds_like_the_bare_function(
    lane: str, shape: tuple[int, int, int, bool, list[bool], bool], call: tuple[int, list[str]]
) -> None:
    """For generated signatures (positional-only, defaults, *args, keyword-only, **kwargs,
    parameter names such as ``spec``, ``func`` or ``op`` that a wrapper's own locals
    could shadow) and generated calls, the decorated function returns what the bare one
    returns, default objects included, and raises the same TypeError message."""
    bare, _ = _make(shape)
    wrapped = _decorate(bare, lane)
    n_args, keywords = call
    args = tuple(range(100, 100 + n_args))
    kwargs = {name: f"kw-{name}" for name in keywords}
    got, want = _outcome(wrapped, args, kwargs), _outcome(bare, args, kwargs)
    assert got == want
    if want[0] == "ok":
        for key, value in want[1].items():  # the callee sees the very default objects
            assert got[1][key] is value or key in ("rest", "extra")  # packed anew per call


def test_signature_and_metadata_are_the_functions_own(lane: str) -> None:
    def quote(pool: str, amount: int = 10, /, *legs: str, slippage_bp: int = 50, **route: Any) -> int:
        """Quote a swap."""
        return amount + slippage_bp + len(legs) + len(route)

    wrapped = _decorate(quote, lane)
    assert inspect.signature(wrapped) == inspect.signature(quote)
    assert wrapped.__name__ == "quote" and wrapped.__doc__ == "Quote a swap."
    assert wrapped.__wrapped__ is quote  # type: ignore[attr-defined]
    assert wrapped("p", 1, "x", "y", slippage_bp=2, hop="z") == 1 + 2 + 2 + 1


def test_methods_classmethods_and_staticmethods_bind(lane: str) -> None:
    class Router:
        fee = 3

        def __init__(self) -> None:
            self.base = 100

        @_decorate_lane(lane)
        def swap(self, amount: int, *, op: str = "buy") -> tuple[int, str]:
            return self.base + amount, op

        @classmethod
        @_decorate_lane(lane)
        def quote(cls, amount: int) -> int:
            return cls.fee * amount

        @staticmethod
        @_decorate_lane(lane)
        def spread(a: int, b: int) -> int:
            return a - b

    router = Router()
    assert router.swap(5) == (105, "buy")
    assert router.swap(amount=5, op="sell") == (105, "sell")
    assert Router.quote(7) == 21 and router.quote(7) == 21
    assert Router.spread(9, 4) == 5
    with pytest.raises(TypeError) as error:
        router.swap(1, 2)  # type: ignore[misc]
    assert "takes 2 positional arguments but 3 were given" in str(error.value)


def _decorate_lane(lane: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return lambda func: _decorate(func, lane)


def test_async_functions_keep_their_signature(lane: str) -> None:
    async def fetch(block: int, *, retries: int = 2) -> tuple[int, int]:
        await asyncio.sleep(0)
        return block, retries

    wrapped = _decorate(fetch, lane)
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert asyncio.run(wrapped(7)) == (7, 2)
    assert asyncio.run(wrapped(block=8, retries=0)) == (8, 0)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'block'"):
        asyncio.run(wrapped())


def test_a_parameter_with_the_wrappers_prefix_keeps_the_generic_form(lane: str) -> None:
    def odd(_mv_state: int, _mv_func: int = 2) -> int:
        return _mv_state * _mv_func

    wrapped = _decorate(odd, lane)
    assert wrapped(3) == 6 and wrapped(_mv_state=3, _mv_func=5) == 15


def test_an_exception_through_the_wrapper_shows_its_source_line(lane: str) -> None:
    def broken(amount: int) -> int:
        raise ValueError(f"no route for {amount}")

    wrapped = _decorate(broken, lane)
    with pytest.raises(ValueError, match="no route for 3") as error:
        wrapped(3)
    text = "".join(traceback.format_exception(error.value))
    assert "_mv_result = _mv_func(amount)" in text or lane == "general"


def test_a_call_that_does_not_bind_records_no_operation() -> None:
    """The wrapper binds the arguments first: a TypeError for a bad call is the bare
    function's own, and no failed swap is recorded for a call that never ran."""

    @mevobs.swap(exchange="uniswap_v2")
    def swap(amount: int) -> int:
        return amount

    tel: Captured
    with capture() as tel:
        with pytest.raises(TypeError, match=r"swap\(\) missing 1 required positional argument: 'amount'"):
            swap()  # type: ignore[call-arg]
        assert swap(4) == 4
        assert [s.name for s in tel.spans] == ["swap uniswap_v2"]
