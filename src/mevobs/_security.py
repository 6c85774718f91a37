"""Security anomaly detectors that run on every finished operation.

Each detector is a small object with O(1) work per observation (EWMA state,
counters, a short deque), so the pipeline stays cheap enough for every call.
The :class:`SecurityMonitor` feeds them from operations and emits
``mev.security.events`` through :func:`emit_security_event`.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mevobs import semconv
from mevobs._observe import emit_security_event

if TYPE_CHECKING:
    from mevobs._operation import Operation

Clock = Callable[[], float]
_RPC, _CHAIN, _EXCHANGE = semconv.OPERATION_RPC, semconv.ATTR_CHAIN, semconv.ATTR_EXCHANGE
_TX_TO, _TX_HASH = semconv.ATTR_TX_TO, semconv.ATTR_TX_HASH


class SecuritySettings(BaseModel):
    """Sensitivity of the detectors (the ``security`` field of :class:`mevobs.Settings`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the detectors on every operation.")
    gas_sensitivity: float = Field(6.0, gt=0, description="abnormal_gas: robust z-score that fires.")
    gas_warmup: int = Field(
        30, ge=5, description="abnormal_gas: samples per (operation, exchange) before judging."
    )
    gas_alpha: float = Field(0.05, gt=0, lt=1, description="abnormal_gas: EWMA weight of a new sample.")
    tx_bucket_seconds: float = Field(10.0, gt=0, description="tx_pattern: length of a rate bucket.")
    tx_rate_factor: float = Field(
        4.0, gt=1, description="tx_pattern: bucket count above factor x baseline fires."
    )
    tx_rate_min: int = Field(20, ge=1, description="tx_pattern: ...and above this many transactions.")
    tx_warmup_buckets: int = Field(6, ge=1, description="tx_pattern: buckets before the rate is judged.")
    revert_streak: int = Field(5, ge=2, description="tx_pattern: consecutive reverts on a chain that fire.")
    rpc_window: int = Field(50, ge=5, description="rpc_pattern: last calls per provider considered.")
    rpc_error_ratio: float = Field(
        0.5, gt=0, le=1, description="rpc_pattern: error share in the window that fires."
    )
    allowed_rpc_methods: list[str] | None = Field(
        None, description="rpc_pattern: methods the bot may call; others fire (None: any)."
    )
    profit_deviation_ratio: float = Field(
        0.5, gt=0, description="profit_deviation: |realised - expected| / |expected| that fires."
    )
    profit_deviation_min_wei: int = Field(
        10**15, ge=0, description="profit_deviation: ...and at least this many wei apart."
    )


class RobustBaseline:
    """EWMA of a value and of its absolute deviation; anomalies do not move it.

    ``observe(x)`` returns the robust z-score of ``x`` (None during warm-up). The
    deviation has a floor (1 % of the mean), so a constant series does not make
    every small change infinitely surprising.
    """

    __slots__ = ("_warm", "alpha", "count", "mad", "mean", "threshold", "warmup")

    def __init__(self, threshold: float, warmup: int, alpha: float) -> None:
        self.threshold = threshold
        self.warmup = warmup
        self.alpha = alpha
        self.count = 0
        self.mean = 0.0
        self.mad = 0.0
        self._warm: list[float] = []

    def observe(self, x: float) -> float | None:
        self.count += 1
        if self.count <= self.warmup:
            self._warm.append(x)
            if self.count == self.warmup:
                ordered = sorted(self._warm)
                self.mean = ordered[len(ordered) // 2]
                self.mad = sorted(abs(v - self.mean) for v in ordered)[len(ordered) // 2] or 0.0
                self._warm = []
            return None
        # 1.2533 = sqrt(pi/2): mean absolute deviation to standard deviation (normal data).
        scale = max(1.2533 * self.mad, 0.01 * abs(self.mean), 1e-12)
        z = abs(x - self.mean) / scale
        if z < self.threshold:  # only normal samples teach the baseline
            self.mean += self.alpha * (x - self.mean)
            self.mad += self.alpha * (abs(x - self.mean) - self.mad)
        return z


class RateBaseline:
    """Counts events in fixed buckets and fires when the current bucket runs far above
    the EWMA of past buckets; fires at most once per bucket."""

    def __init__(self, bucket: float, factor: float, minimum: int, warmup: int, clock: Clock) -> None:
        self.bucket, self.factor, self.minimum, self.warmup = bucket, factor, minimum, warmup
        self.clock = clock
        self.start = clock()
        self.current = 0
        self.closed = 0
        self.baseline = 0.0
        self.fired = False

    def observe(self) -> float | None:
        """Count one event; the count of the current bucket when that is anomalous."""
        now = self.clock()
        while now - self.start >= self.bucket:
            self._close(self.current)
            self.current = 0
            self.start += self.bucket
        self.current += 1
        if self.closed < self.warmup or self.fired:
            return None
        if self.current > max(self.factor * self.baseline, self.minimum):
            self.fired = True
            return float(self.current)
        return None

    def _close(self, count: int) -> None:
        self.closed += 1
        self.fired = False
        anomalous = self.closed > self.warmup and count > max(self.factor * self.baseline, self.minimum)
        if self.closed <= self.warmup:
            self.baseline += (count - self.baseline) / self.closed
        elif not anomalous:
            self.baseline += 0.2 * (count - self.baseline)


class ErrorBurst:
    """Share of errors in the last ``window`` calls; fires once when it reaches
    ``ratio`` (over a full window), re-arms when it falls below half of it."""

    def __init__(self, window: int, ratio: float) -> None:
        self.recent: collections.deque[bool] = collections.deque(maxlen=window)
        self.errors = 0
        self.ratio = ratio
        self.armed = True

    def observe(self, error: bool) -> float | None:
        if len(self.recent) == self.recent.maxlen:
            self.errors -= self.recent[0]
        self.recent.append(error)
        self.errors += error
        if len(self.recent) < (self.recent.maxlen or 0):
            return None
        share = self.errors / len(self.recent)
        if self.armed and share >= self.ratio:
            self.armed = False
            return share
        if not self.armed and share < self.ratio / 2:
            self.armed = True
        return None


class SecurityMonitor:
    """Runs every detector on each finished operation (a ``STATE.hooks`` entry)."""

    def __init__(
        self,
        settings: SecuritySettings | None = None,
        contract_allowlist: Mapping[str, Sequence[str]] | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = s = settings or SecuritySettings()
        self.allowlist = {
            chain: frozenset(a.lower() for a in addresses)
            for chain, addresses in (contract_allowlist or {}).items()
        }
        self.allowed_methods = frozenset(s.allowed_rpc_methods) if s.allowed_rpc_methods is not None else None
        self.clock = clock
        self._gas: dict[tuple[str, str, str], RobustBaseline] = {}
        self._tx_rate: dict[str, RateBaseline] = {}
        self._reverts: dict[str, int] = {}
        self._rpc: dict[str, ErrorBurst] = {}
        self._enabled = s.enabled
        self._lock = threading.Lock()
        self._found: list[tuple[str, str, bool, dict[str, Any], dict[str, Any], Any]] = []

    def __call__(self, op: Operation) -> None:
        if not self._enabled:
            return
        # Operations finish on many threads: the detectors' state changes under one lock,
        # and what they found is emitted after it is released (emitting may trip a
        # breaker, whose listeners may run operations of their own).
        if op.kind == _RPC:
            with self._lock:
                self._rpc_pattern(op)
                found = self._take()
        else:
            # Private reads on purpose: this runs after every operation (the hot path).
            gas, expected, gross = op._gas_used, op._expected_profit_wei, op._gross_wei
            to, tx = op.attribute(_TX_TO), op._attrs.get(_TX_HASH)
            if gas is None and to is None and tx is None and (expected is None or gross is None):
                return  # nothing any detector looks at: no lock, no work
            with self._lock:
                self._detect(op, gas, to, tx, expected, gross)
                found = self._take()
        for event in found:
            emit_security_event(*event)

    def _take(self) -> list[tuple[str, str, bool, dict[str, Any], dict[str, Any], Any]]:
        found = self._found
        if found:
            self._found = []
        return found

    def _detect(
        self, op: Operation, gas: int | None, to: Any, tx: Any, expected: int | None, gross: int | None
    ) -> None:
        kind = op.kind
        chain = str(op.attribute(_CHAIN) or "")
        exchange = str(op.attribute(_EXCHANGE) or "")
        if gas is not None:
            self._abnormal_gas(op, kind, exchange, chain, gas)
        if to is not None:
            self._unexpected_contract(op, chain, exchange, str(to))
        if tx is not None:
            self._tx_pattern(op, chain, exchange)
        if expected is not None and gross is not None:
            self._profit_deviation(op, chain, exchange, expected, gross)

    # -------------------------------------------------------------- detectors

    def _emit(
        self,
        op: Operation,
        kind: str,
        message: str,
        critical: bool,
        chain: str,
        exchange: str,
        **details: Any,
    ) -> None:
        context = {
            semconv.ATTR_OPERATION: op.kind,
            semconv.ATTR_EXCHANGE: exchange or None,
            semconv.ATTR_CHAIN: chain or None,
        }
        tx = op.attribute(semconv.ATTR_TX_HASH)
        if tx is not None:
            details[semconv.ATTR_TX_HASH] = tx
        self._found.append((kind, message, critical, context, details, op.span))

    def _abnormal_gas(self, op: Operation, kind: str, exchange: str, chain: str, gas: int) -> None:
        s = self.settings
        key = (kind, exchange, chain)  # L2 gas (L1 data included) is another scale
        baseline = self._gas.get(key)
        if baseline is None:
            baseline = self._gas[key] = RobustBaseline(s.gas_sensitivity, s.gas_warmup, s.gas_alpha)
        expected = baseline.mean
        z = baseline.observe(float(gas))
        if z is not None and z >= s.gas_sensitivity:
            self._emit(
                op,
                "abnormal_gas",
                f"gas used {gas} vs baseline {expected:.0f} (z {z:.1f})",
                False,
                chain,
                exchange,
                **{
                    semconv.ATTR_GAS_USED: gas,
                    "mev.security.baseline": round(expected),
                    "mev.security.score": round(z, 2),
                },
            )

    def _unexpected_contract(self, op: Operation, chain: str, exchange: str, to: str) -> None:
        allowed = self.allowlist.get(chain, self.allowlist.get("*"))
        if allowed is not None and to.lower() not in allowed:
            self._emit(
                op,
                "unexpected_contract",
                f"transaction to {to} outside the {chain or 'default'} allowlist",
                True,
                chain,
                exchange,
                **{semconv.ATTR_TX_TO: to},
            )

    def _tx_pattern(self, op: Operation, chain: str, exchange: str) -> None:
        s = self.settings
        rate = self._tx_rate.get(chain)
        if rate is None:
            rate = self._tx_rate[chain] = RateBaseline(
                s.tx_bucket_seconds, s.tx_rate_factor, s.tx_rate_min, s.tx_warmup_buckets, self.clock
            )
        burst = rate.observe()
        if burst is not None:
            self._emit(
                op,
                "tx_pattern",
                f"{burst:.0f} transactions in {s.tx_bucket_seconds:g} s vs baseline {rate.baseline:.1f}",
                False,
                chain,
                exchange,
                **{"mev.security.score": burst},
            )
        if op.outcome == semconv.OUTCOME_REVERTED:
            streak = self._reverts[chain] = self._reverts.get(chain, 0) + 1
            if streak == s.revert_streak:
                self._emit(
                    op,
                    "tx_pattern",
                    f"{streak} reverted transactions in a row on {chain or 'the chain'}",
                    False,
                    chain,
                    exchange,
                    **{"mev.security.score": streak},
                )
        else:
            self._reverts[chain] = 0

    def _rpc_pattern(self, op: Operation) -> None:
        attr = op.attribute
        s = self.settings
        method = str(attr(semconv.ATTR_RPC_METHOD) or "")
        chain = str(attr(semconv.ATTR_CHAIN) or "")
        if self.allowed_methods is not None and method not in self.allowed_methods:
            self._emit(
                op,
                "rpc_pattern",
                f"call to RPC method {method!r} outside the allowed set",
                True,
                chain,
                "",
                **{semconv.ATTR_RPC_METHOD: method},
            )
        provider = str(attr(semconv.ATTR_RPC_PROVIDER) or attr(semconv.ATTR_SERVER_ADDRESS) or "")
        burst = self._rpc.get(provider)
        if burst is None:
            burst = self._rpc[provider] = ErrorBurst(s.rpc_window, s.rpc_error_ratio)
        error = op.outcome in (semconv.OUTCOME_FAILURE, semconv.OUTCOME_RATE_LIMITED)
        share = burst.observe(error)
        if share is not None:
            self._emit(
                op,
                "rpc_pattern",
                f"{share:.0%} of the last {s.rpc_window} calls to {provider or 'the provider'} "
                "failed or were rate limited",
                False,
                chain,
                "",
                **{semconv.ATTR_RPC_PROVIDER: provider},
            )

    def _profit_deviation(
        self, op: Operation, chain: str, exchange: str, expected: int, realised: int
    ) -> None:
        s = self.settings
        gap = abs(realised - expected)
        if gap >= s.profit_deviation_min_wei and gap > s.profit_deviation_ratio * abs(expected):
            ratio = gap / abs(expected) if expected else math.inf
            self._emit(
                op,
                "profit_deviation",
                f"realised {realised} wei vs expected {expected} wei",
                False,
                chain,
                exchange,
                **{
                    semconv.ATTR_PROFIT_EXPECTED_WEI: str(expected),
                    semconv.ATTR_PROFIT_GROSS_WEI: str(realised),
                    "mev.security.score": round(min(ratio, 1e9), 3),
                },
            )
