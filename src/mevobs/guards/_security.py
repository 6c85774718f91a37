"""Security anomaly detection on every finished operation.

Detectors are small objects with one method (the :class:`~mevobs.Detector`
protocol), kept in a list: the built-in ones below and any a user passes to
``configure(detectors=[...])``. Each does O(1) work per operation (EWMA state,
counters, a short deque) and keeps its state in bounded maps keyed by capped
label values, so neither the call rate nor the number of distinct exchanges,
providers or chains can make it slow or large. :class:`SecurityMonitor` runs
them and emits what they find through :func:`emit_security_event`.
"""

from __future__ import annotations

import collections
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from mevobs import semconv
from mevobs._observations import emit_security_event
from mevobs._protocols import FACTS, Detector, Finding, FinishedOperation
from mevobs._state import STATE, on_fork_in_child

Clock = Callable[[], float]
K = TypeVar("K")
V = TypeVar("V")
_NOTHING: tuple[Finding, ...] = ()


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
    max_tracked_keys: int = Field(
        1024,
        ge=16,
        description="Most baselines each detector keeps (per exchange, chain or provider); "
        "the least recently used is forgotten first.",
    )


class BoundedMap(Generic[K, V]):
    """A map that forgets its least recently used entry past ``cap`` entries."""

    def __init__(self, cap: int, make: Callable[[], V]) -> None:
        self._cap = cap
        self._make = make
        self._items: collections.OrderedDict[K, V] = collections.OrderedDict()

    def get(self, key: K) -> V:
        items = self._items
        value = items.get(key)
        if value is None:
            value = items[key] = self._make()
            if len(items) > self._cap:
                items.popitem(last=False)
        else:
            items.move_to_end(key)
        return value

    def __len__(self) -> int:
        return len(self._items)


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
        if now - self.start >= self.bucket:
            # Close the current bucket, then any empty ones in between (bounded: after
            # many idle buckets the baseline has decayed to the empty rate anyway).
            skipped = int((now - self.start) // self.bucket)
            for index in range(min(skipped, 64)):
                self._close(self.current if index == 0 else 0)
            self.current = 0
            self.start += skipped * self.bucket
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


def _label(op: FinishedOperation, key: str) -> str:
    """A label of ``op`` through the cardinality cap: detector state stays bounded.

    The cap alone (``bound``): state is keyed per endpoint or exchange even where the
    value (an RPC URL) may not be a metric label, and a refusal is counted once, on
    the metric, not again here."""
    value = op.attribute(key)
    if not isinstance(value, str) or not value:
        return ""
    limiter = STATE.limiter
    if _LABELS[0] is not limiter:  # configure() or capture() replaced it: start again
        _LABELS[:] = [limiter, {}]
    known: dict[tuple[str, str], str] = _LABELS[1]
    label = known.get((key, value))
    if label is None:
        label = str(limiter.bound(key, value))
        if len(known) < _MAX_LABELS:  # what the cap admitted or refused stays so
            known[(key, value)] = label
    return label


_LABELS: list[Any] = [None, {}]
"""The limiter the labels below came from, and (key, value) -> label under it."""
_MAX_LABELS = 4096


# ------------------------------------------------------------------ detectors


class AbnormalGas:
    """Gas far from the robust baseline of its (operation, exchange, chain)."""

    kind = "abnormal_gas"
    wants = ("transaction",)

    def __init__(self, s: SecuritySettings) -> None:
        self.sensitivity = s.gas_sensitivity
        self._baselines: BoundedMap[tuple[str, str, str], RobustBaseline] = BoundedMap(
            s.max_tracked_keys, lambda: RobustBaseline(s.gas_sensitivity, s.gas_warmup, s.gas_alpha)
        )

    def __call__(self, op: FinishedOperation) -> Iterable[Finding]:
        gas = op.gas_used
        if gas is None or op.kind == semconv.OPERATION_RPC:
            return _NOTHING
        # L2 gas (L1 data included) is another scale: one baseline per chain too.
        baseline = self._baselines.get(
            (op.kind, _label(op, semconv.ATTR_EXCHANGE), _label(op, semconv.ATTR_CHAIN))
        )
        expected = baseline.mean
        z = baseline.observe(float(gas))
        if z is None or z < self.sensitivity:
            return _NOTHING
        return (
            Finding(
                f"gas used {gas} vs baseline {expected:.0f} (z {z:.1f})",
                details={
                    semconv.ATTR_GAS_USED: gas,
                    semconv.ATTR_SECURITY_BASELINE: round(expected),
                    semconv.ATTR_SECURITY_SCORE: round(z, 2),
                },
            ),
        )


class UnexpectedContract:
    """A transaction to a contract outside the chain's allowlist (critical)."""

    kind = "unexpected_contract"
    wants = ("transaction",)

    def __init__(self, allowlist: Mapping[str, Sequence[str]]) -> None:
        self.allowlist = {chain: frozenset(a.lower() for a in addrs) for chain, addrs in allowlist.items()}

    def __call__(self, op: FinishedOperation) -> Iterable[Finding]:
        to = op.attribute(semconv.ATTR_TX_TO)
        if to is None or not self.allowlist or op.kind == semconv.OPERATION_RPC:
            return _NOTHING
        chain = op.attribute(semconv.ATTR_CHAIN)
        allowed = self.allowlist.get(chain) if isinstance(chain, str) else None
        if allowed is None:
            allowed = self.allowlist.get("*")
        if allowed is None or str(to).lower() in allowed:
            return _NOTHING
        return (
            Finding(
                f"transaction to {to} outside the {chain or 'default'} allowlist",
                critical=True,
                details={semconv.ATTR_TX_TO: str(to)},
            ),
        )


class TxPattern:
    """A burst of transactions far above the chain's usual rate, or a streak of reverts."""

    kind = "tx_pattern"
    wants = ("transaction",)

    def __init__(self, s: SecuritySettings, clock: Clock = time.monotonic) -> None:
        self.s = s
        self._rates: BoundedMap[str, RateBaseline] = BoundedMap(
            s.max_tracked_keys,
            lambda: RateBaseline(
                s.tx_bucket_seconds, s.tx_rate_factor, s.tx_rate_min, s.tx_warmup_buckets, clock
            ),
        )
        self._reverts: BoundedMap[str, list[int]] = BoundedMap(s.max_tracked_keys, lambda: [0])

    def __call__(self, op: FinishedOperation) -> Iterable[Finding]:
        if op.attribute(semconv.ATTR_TX_HASH) is None or op.kind == semconv.OPERATION_RPC:
            return _NOTHING
        s = self.s
        chain = _label(op, semconv.ATTR_CHAIN)
        found: list[Finding] = []
        rate = self._rates.get(chain)
        burst = rate.observe()
        if burst is not None:
            found.append(
                Finding(
                    f"{burst:.0f} transactions in {s.tx_bucket_seconds:g} s vs baseline {rate.baseline:.1f}",
                    details={semconv.ATTR_SECURITY_SCORE: burst},
                )
            )
        streak = self._reverts.get(chain)
        if op.outcome == semconv.OUTCOME_REVERTED:
            streak[0] += 1
            if streak[0] == s.revert_streak:
                found.append(
                    Finding(
                        f"{streak[0]} reverted transactions in a row on {chain or 'the chain'}",
                        details={semconv.ATTR_SECURITY_SCORE: streak[0]},
                    )
                )
        else:
            streak[0] = 0
        return found


class RpcPattern:
    """A call to a method outside the allowed set (critical), or a burst of failed and
    rate-limited calls to one provider."""

    kind = "rpc_pattern"
    wants = ("rpc",)

    def __init__(self, s: SecuritySettings) -> None:
        self.s = s
        self.allowed = frozenset(s.allowed_rpc_methods) if s.allowed_rpc_methods is not None else None
        self._bursts: BoundedMap[str, ErrorBurst] = BoundedMap(
            s.max_tracked_keys, lambda: ErrorBurst(s.rpc_window, s.rpc_error_ratio)
        )

    def __call__(self, op: FinishedOperation) -> Iterable[Finding]:
        if op.kind != semconv.OPERATION_RPC:
            return _NOTHING
        found: list[Finding] = []
        method = str(op.attribute(semconv.ATTR_RPC_METHOD) or "")
        if self.allowed is not None and method not in self.allowed:
            found.append(
                Finding(
                    f"call to RPC method {method!r} outside the allowed set",
                    critical=True,
                    details={semconv.ATTR_RPC_METHOD: method},
                )
            )
        provider = op.attribute(semconv.ATTR_RPC_PROVIDER) or op.attribute(semconv.ATTR_SERVER_ADDRESS) or ""
        provider = str(STATE.limiter.bound(semconv.ATTR_RPC_PROVIDER, str(provider)))
        error = op.outcome in (semconv.OUTCOME_FAILURE, semconv.OUTCOME_RATE_LIMITED)
        share = self._bursts.get(provider).observe(error)
        if share is not None:
            found.append(
                Finding(
                    f"{share:.0%} of the last {self.s.rpc_window} calls to {provider or 'the provider'} "
                    "failed or were rate limited",
                    details={semconv.ATTR_RPC_PROVIDER: provider},
                )
            )
        return found


class ProfitDeviation:
    """Realised profit far from what the bot expected before executing."""

    kind = "profit_deviation"
    wants = ("profit",)

    def __init__(self, s: SecuritySettings) -> None:
        self.ratio = s.profit_deviation_ratio
        self.min_wei = s.profit_deviation_min_wei

    def __call__(self, op: FinishedOperation) -> Iterable[Finding]:
        expected, realised = op.expected_profit_wei, op.gross_profit_wei
        if expected is None or realised is None or op.kind == semconv.OPERATION_RPC:
            return _NOTHING
        gap = abs(realised - expected)
        if gap < self.min_wei or gap <= self.ratio * abs(expected):
            return _NOTHING
        ratio = gap / abs(expected) if expected else math.inf
        return (
            Finding(
                f"realised {realised} wei vs expected {expected} wei",
                details={
                    semconv.ATTR_PROFIT_EXPECTED_WEI: str(expected),
                    semconv.ATTR_PROFIT_GROSS_WEI: str(realised),
                    semconv.ATTR_SECURITY_SCORE: round(min(ratio, 1e9), 3),
                },
            ),
        )


def builtin_detectors(
    settings: SecuritySettings | None = None,
    contract_allowlist: Mapping[str, Sequence[str]] | None = None,
    *,
    clock: Clock = time.monotonic,
) -> list[Detector]:
    """The built-in detectors, configured by ``settings``."""
    s = settings or SecuritySettings()
    return [
        AbnormalGas(s),
        UnexpectedContract(contract_allowlist or {}),
        TxPattern(s, clock),
        RpcPattern(s),
        ProfitDeviation(s),
    ]


def _wants(detector: Detector) -> int:
    """The facts a detector declared it needs (``wants``); every operation if none."""
    wants = getattr(detector, "wants", None)
    if wants is None:
        return -1
    mask = 0
    for fact in wants:
        if fact not in FACTS:
            raise ValueError(f"detector {detector.kind!r} wants {fact!r}; known facts: {', '.join(FACTS)}")
        mask |= FACTS[fact]
    return mask


_MONITORS: weakref.WeakSet[SecurityMonitor] = weakref.WeakSet()


def _new_locks_in_child() -> None:
    for monitor in list(_MONITORS):
        monitor._lock = threading.Lock()  # another thread of the parent may have held it at the fork


on_fork_in_child(_new_locks_in_child)


class SecurityMonitor:
    """Runs a list of detectors on each finished operation (a ``STATE.hooks`` entry).

    A detector is called only with operations that carry a fact it declared in
    ``wants`` ("rpc", "transaction", "profit"), or with every operation when it
    declares nothing, so a plain swap costs the built-in detectors nothing.
    Operations finish on many threads: the detectors run one at a time under one
    lock, and what they found is emitted after it is released (emitting may trip a
    breaker, whose listeners may run operations of their own). A detector that
    raises is counted as dropped telemetry and the others still run.
    """

    def __init__(
        self,
        settings: SecuritySettings | None = None,
        contract_allowlist: Mapping[str, Sequence[str]] | None = None,
        *,
        detectors: Sequence[Detector] | None = None,
        extra: Sequence[Detector] = (),
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings or SecuritySettings()
        base = (
            list(detectors)
            if detectors is not None
            else builtin_detectors(self.settings, contract_allowlist, clock=clock)
        )
        self.detectors: list[Detector] = [*base, *extra]
        self._entries = [(detector, _wants(detector)) for detector in self.detectors]
        self._always = [detector for detector, wants in self._entries if wants == -1]
        # The facts this monitor needs at all: the core skips calling it for operations
        # that carry none of them (see _emission.run_hooks).
        self.fact_mask = -1 if self._always else 0
        for _, wants in self._entries:
            self.fact_mask |= wants
        self._lock = threading.Lock()
        _MONITORS.add(self)

    @property
    def kinds(self) -> frozenset[str]:
        """The security kinds the detectors report."""
        return frozenset(d.kind for d in self.detectors)

    def __call__(self, op: FinishedOperation) -> None:
        facts = op.facts
        if facts:
            chosen = [detector for detector, wants in self._entries if wants & facts]
        elif self._always:
            chosen = self._always
        else:
            return  # nothing any detector looks at: no lock, no work
        found: list[tuple[str, Finding]] = []
        with self._lock:
            for detector in chosen:
                try:
                    for finding in detector(op):
                        found.append((detector.kind, finding))
                except Exception as exc:
                    STATE.dropped("recorder_error", f"detector {detector.kind}: {type(exc).__name__}")
        for kind, finding in found:
            details = _with_tx(op, dict(finding.details))
            emit_security_event(kind, finding.message, finding.critical, _context(op), details, op)


def _context(op: FinishedOperation) -> dict[str, Any]:
    exchange = op.attribute(semconv.ATTR_EXCHANGE) if op.kind != semconv.OPERATION_RPC else None
    context: dict[str, Any] = {
        semconv.ATTR_OPERATION: op.kind,
        semconv.ATTR_EXCHANGE: exchange or None,
        semconv.ATTR_CHAIN: op.attribute(semconv.ATTR_CHAIN) or None,
    }
    return context


def _with_tx(op: FinishedOperation, details: dict[str, Any]) -> dict[str, Any]:
    tx = op.attribute(semconv.ATTR_TX_HASH)
    if tx is not None:
        details.setdefault(semconv.ATTR_TX_HASH, tx)
    return details
