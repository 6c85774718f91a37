"""A recursive decorated function keeps at least 90 % of its bare recursion depth, on every
lane, and a runaway recursion still ends in RecursionError (never a C stack overflow)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mevobs

reached = 0


def _depth(f: Callable[[int], Any]) -> int:
    global reached
    reached = 0
    with pytest.raises(RecursionError):
        f(0)
    return reached


def bare(k: int) -> Any:
    global reached
    reached = k
    return bare(k + 1)


@mevobs.swap
def wrapped(k: int) -> Any:
    global reached
    reached = k
    return wrapped(k + 1)


@pytest.fixture
def limit() -> Iterator[int]:
    """The recursion limit, restored afterwards; the failure log of each of the ~1 000
    levels the RecursionError unwinds through is switched off (it is not under test)."""
    original = sys.getrecursionlimit()
    logger = logging.getLogger("mevobs")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield original
    logger.setLevel(level)
    sys.setrecursionlimit(original)


@pytest.mark.parametrize("lane", ["lean", "fast", "api"])
def test_a_recursive_decorated_function_keeps_its_bare_depth(lane: str, limit: int) -> None:
    base = _depth(bare)
    telemetry = None
    if lane != "lean":
        telemetry = mevobs.configure(
            exporter="none", log_destination="none", log_level="CRITICAL", pipeline=lane
        )
    try:
        depth = _depth(wrapped)
    finally:
        if telemetry is not None:
            telemetry.shutdown()
    assert depth >= 0.9 * base, f"{lane}: {depth} levels against {base} bare"
    # Raised for mevobs's own frames only: at most one limit's worth of them per frame.
    assert sys.getrecursionlimit() <= 3 * limit


def test_the_users_own_limit_is_the_base(limit: int) -> None:
    """A limit the program sets is respected: the depth follows it, not an older one."""
    sys.setrecursionlimit(600)
    base = _depth(bare)
    assert _depth(wrapped) >= 0.9 * base
    assert base < 600
