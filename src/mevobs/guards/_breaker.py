"""The circuit breaker: halt a guarded operation when it fails too often, loses too
much, or a security incident says so; the automated rollback trigger."""

from __future__ import annotations

import collections
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from mevobs import semconv
from mevobs._instruments import register_observer
from mevobs._protocols import FinishedOperation
from mevobs._state import LOGGER, STATE, on_fork_in_child, register_security_listener

BreakerState = Literal["closed", "open", "half_open"]
CLOSED: BreakerState = "closed"
OPEN: BreakerState = "open"
HALF_OPEN: BreakerState = "half_open"
#: Value of the ``mev.circuit.state`` gauge for each state.
STATE_VALUES: dict[str, int] = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

Listener = Callable[["Transition"], None]

_DEFAULT_FAILURES = (semconv.OUTCOME_FAILURE, semconv.OUTCOME_REVERTED, semconv.OUTCOME_RATE_LIMITED)
_NEUTRAL = frozenset({semconv.OUTCOME_CANCELLED, semconv.OUTCOME_SKIPPED})

# Every live breaker, so security events can trip the ones that asked for it.
_BREAKERS: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
_BREAKERS_LOCK = threading.Lock()


def _new_locks_in_child() -> None:
    """Fresh locks: other threads of the parent may have held them at the fork (the
    child keeps each breaker's state: it traded on the same view until then)."""
    global _BREAKERS_LOCK
    _BREAKERS_LOCK = threading.Lock()
    for breaker in list(_BREAKERS):
        breaker._lock = threading.Lock()


on_fork_in_child(_new_locks_in_child)


class CircuitOpenError(RuntimeError):
    """Raised instead of running a guarded call while its breaker is open."""

    def __init__(self, breaker: str, reason: str) -> None:
        super().__init__(f"circuit {breaker!r} is open: {reason}")
        self.breaker = breaker
        self.reason = reason


@dataclass(frozen=True)
class Transition:
    """One change of state, as passed to ``on_change`` listeners."""

    breaker: str
    old: BreakerState
    new: BreakerState
    reason: str


@dataclass(frozen=True)
class BreakerStats:
    """Counts since the breaker was created: calls let through, refused, failed, trips."""

    admitted: int
    rejected: int
    failures: int
    trips: int


class CircuitBreaker:
    """Opens after too many failures (rate over a window, or a streak), a drawdown, or
    a security event of a listed kind; refuses calls while open; after
    ``cooldown_seconds`` lets one trial call through (``half_open``) and closes
    if it succeeds.

    Trips by :meth:`trip` or by a security event are *held*: they stay open until
    :meth:`reset`, because a human should look first. Attach it to any wrapper
    (``mevobs.arbitrage(..., breaker=b)``). Thread- and asyncio-safe: the lock is
    never held across an await or a listener call.
    """

    def __init__(
        self,
        name: str,
        *,
        max_failure_rate: float = 0.5,
        window_seconds: float = 60.0,
        min_calls: int = 20,
        max_consecutive_failures: int = 5,
        max_drawdown_eth: float | Decimal | None = None,
        trip_on_security: Iterable[str] = (),
        cooldown_seconds: float = 30.0,
        failure_outcomes: Iterable[str] = _DEFAULT_FAILURES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError("max_failure_rate must be between 0 and 1")
        if window_seconds <= 0 or cooldown_seconds < 0 or min_calls < 1 or max_consecutive_failures < 1:
            raise ValueError(
                "window_seconds > 0, cooldown_seconds >= 0, min_calls >= 1, max_consecutive_failures >= 1"
            )
        self.name = name
        self.max_failure_rate = max_failure_rate
        self.window_seconds = window_seconds
        self.min_calls = min_calls
        self.max_consecutive_failures = max_consecutive_failures
        self.max_drawdown_wei = (
            None if max_drawdown_eth is None else int(Decimal(str(max_drawdown_eth)) * 10**18)
        )
        self.trip_on_security = frozenset(trip_on_security)
        self.cooldown_seconds = cooldown_seconds
        self.failure_outcomes = frozenset(failure_outcomes)
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = CLOSED
        self._reason = ""
        self._held = False
        self._opened_at = 0.0
        self._trial_running = False
        self._window: collections.deque[tuple[float, bool]] = collections.deque()
        self._window_failures = 0
        self._streak = 0
        self._pnl_wei = 0
        self._peak_wei = 0
        self._listeners: list[Listener] = []
        self._admitted = self._rejected = self._failures = self._trips = 0
        with _BREAKERS_LOCK:
            _BREAKERS.add(self)

    # ---------------------------------------------------------------- public

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open`` (an open breaker past its cooldown reads
        ``half_open`` only once a call tries it)."""
        return self._state

    @property
    def reason(self) -> str:
        """Why the breaker last opened (empty while it never did)."""
        return self._reason

    @property
    def stats(self) -> BreakerStats:
        with self._lock:
            return BreakerStats(self._admitted, self._rejected, self._failures, self._trips)

    def on_change(self, callback: Listener) -> Listener:
        """Call ``callback(transition)`` after every change of state (halt, alert, roll
        back). Returns the callback, so it also works as a decorator."""
        with self._lock:
            self._listeners.append(callback)
        return callback

    def trip(self, reason: str) -> None:
        """Open now and stay open until :meth:`reset`."""
        self._change(OPEN, reason, held=True)

    def reset(self) -> None:
        """Close and forget the failure history."""
        self._change(CLOSED, "reset", held=False)

    def before_call(self) -> None:
        """Admit a call or raise :class:`CircuitOpenError`; called by the wrappers."""
        transition = None
        with self._lock:
            if self._state == OPEN:
                if self._held or self._clock() - self._opened_at < self.cooldown_seconds:
                    self._rejected += 1
                    raise CircuitOpenError(self.name, self._reason)
                transition = self._set(HALF_OPEN, "cooldown elapsed: one trial call")
                self._trial_running = True
            elif self._state == HALF_OPEN:
                if self._trial_running:
                    self._rejected += 1
                    raise CircuitOpenError(self.name, "half open: a trial call is running")
                self._trial_running = True
            self._admitted += 1
        if transition is not None:
            self._announce(transition)

    def after_call(self, op: FinishedOperation) -> None:
        """Account for a finished guarded call; called by the wrappers."""
        outcome = op.outcome or semconv.OUTCOME_SUCCESS
        failed = outcome in self.failure_outcomes
        transition = None
        with self._lock:
            if failed:
                self._failures += 1
            if op.net_profit_wei is not None:
                self._pnl_wei += op.net_profit_wei
                self._peak_wei = max(self._peak_wei, self._pnl_wei)
            if self._state == HALF_OPEN:
                self._trial_running = False
                if failed:
                    transition = self._open_locked(f"trial call {outcome}", held=False)
                elif outcome not in _NEUTRAL:
                    self._forget()
                    transition = self._set(CLOSED, "trial call succeeded")
            elif self._state == CLOSED and outcome not in _NEUTRAL:
                transition = self._judge(failed)
        if transition is not None:
            self._announce(transition)

    def security_event(self, kind: str) -> None:
        """Trip (held) when ``kind`` is one this breaker was told to trip on."""
        if kind in self.trip_on_security and self._state != OPEN:
            self._change(OPEN, f"security incident: {kind}", held=True)

    # --------------------------------------------------------------- private

    def _judge(self, failed: bool) -> Transition | None:
        now = self._clock()
        window = self._window
        window.append((now, failed))
        self._window_failures += failed
        while window and now - window[0][0] > self.window_seconds:
            _, old = window.popleft()
            self._window_failures -= old
        self._streak = self._streak + 1 if failed else 0
        if self._streak >= self.max_consecutive_failures:
            return self._open_locked(f"{self._streak} consecutive failures", held=False)
        calls = len(window)
        if calls >= self.min_calls and self._window_failures / calls > self.max_failure_rate:
            rate = self._window_failures / calls
            return self._open_locked(
                f"failure rate {rate:.0%} over {calls} calls in {self.window_seconds:g} s", held=False
            )
        if self.max_drawdown_wei is not None and self._peak_wei - self._pnl_wei > self.max_drawdown_wei:
            drawdown = Decimal(self._peak_wei - self._pnl_wei) / 10**18
            return self._open_locked(f"drawdown {drawdown} ETH from peak", held=False)
        return None

    def _forget(self) -> None:
        self._window.clear()
        self._window_failures = 0
        self._streak = 0
        self._pnl_wei = self._peak_wei = 0

    def _open_locked(self, reason: str, *, held: bool) -> Transition | None:
        self._held = held
        self._opened_at = self._clock()
        self._trial_running = False
        self._reason = reason
        self._trips += 1
        return self._set(OPEN, reason)

    def _change(self, new: BreakerState, reason: str, *, held: bool) -> None:
        with self._lock:
            if new == OPEN:
                transition = self._open_locked(reason, held=held)
            else:
                self._held = False
                self._trial_running = False
                self._forget()
                transition = self._set(new, reason)
        if transition is not None:
            self._announce(transition)

    def _set(self, new: BreakerState, reason: str) -> Transition | None:
        old = self._state
        self._state = new
        return Transition(self.name, old, new, reason) if old != new else None

    def _announce(self, transition: Transition) -> None:
        """CRITICAL log and listeners; outside the lock, never raising. (The
        ``mev.circuit.state`` gauge is observed at collection, see :func:`observe`.)"""
        LOGGER.critical(
            "circuit %s: %s -> %s (%s)",
            self.name,
            transition.old,
            transition.new,
            transition.reason,
            extra={
                "mevobs": {
                    semconv.ATTR_CIRCUIT: self.name,
                    semconv.ATTR_CIRCUIT_FROM: transition.old,
                    semconv.ATTR_CIRCUIT_TO: transition.new,
                    semconv.ATTR_CIRCUIT_REASON: transition.reason,
                }
            },
        )
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(transition)
            except Exception as exc:
                LOGGER.error("circuit %s: listener %r raised %s", self.name, listener, type(exc).__name__)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state!r})"


def observe_circuits() -> Iterable[tuple[float, Mapping[str, Any]]]:
    """The ``mev.circuit.state`` points: one per live breaker, read at collection."""
    with _BREAKERS_LOCK:
        breakers = list(_BREAKERS)
    return [
        (STATE_VALUES[b.state], {semconv.ATTR_CIRCUIT: STATE.limiter.limit(semconv.ATTR_CIRCUIT, b.name)})
        for b in breakers
    ]


def notify_security_event(kind: str) -> None:
    """Tell every breaker about a security event (those listening for ``kind`` trip)."""
    with _BREAKERS_LOCK:
        breakers = list(_BREAKERS)
    for breaker in breakers:
        breaker.security_event(kind)  # never raises: listeners are guarded inside


# Registration instead of upward imports: the core knows neither breakers nor this gauge.
register_observer(semconv.CIRCUIT_STATE, observe_circuits)
register_security_listener(notify_security_event)
