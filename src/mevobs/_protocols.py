"""What users and the runtime guards plug into mevobs, as ``typing.Protocol``s.

In the manner of structlog's ``typing`` module: an object that fits one of these
protocols is accepted without subclassing anything. The core (operations and
their emission) calls hooks and guards only through these types, so it never
imports the guards that implement them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

AttrValue = str | bool | int | float | list[str] | list[bool] | list[int] | list[float]
"""A span or log attribute value, as OpenTelemetry accepts it."""

FACT_RPC = 1
"""The operation is an RPC call."""
FACT_TRANSACTION = 2
"""The operation carries a transaction: gas, a transaction hash or a ``to`` address."""
FACT_PROFIT = 4
"""The operation carries an expected profit (``record_profit(expected_wei=...)``)."""
FACTS = {"rpc": FACT_RPC, "transaction": FACT_TRANSACTION, "profit": FACT_PROFIT}
"""Fact names a detector may list in ``wants``, and their bits."""


class FinishedOperation(Protocol):
    """A finished operation as hooks and detectors see it: its figures are settled
    (outcome, gas, net profit) and read-only, except for :meth:`add_event`."""

    @property
    def kind(self) -> str: ...

    @property
    def outcome(self) -> str | None: ...

    @property
    def error_type(self) -> str | None: ...

    @property
    def facts(self) -> int:
        """``FACT_*`` bits: what the operation carries that detectors look at."""

    @property
    def is_root(self) -> bool: ...

    @property
    def gas_used(self) -> int | None: ...

    @property
    def gas_cost_wei(self) -> int: ...

    @property
    def total_gas_cost_wei(self) -> int: ...

    @property
    def net_profit_wei(self) -> int | None: ...

    @property
    def gross_profit_wei(self) -> int | None: ...

    @property
    def expected_profit_wei(self) -> int | None: ...

    @property
    def attributes(self) -> dict[str, Any]: ...

    def attribute(self, key: str) -> Any: ...

    def add_event(self, name: str, attributes: Mapping[str, Any]) -> None:
        """Add an event to the operation's span (a detector's finding lands there)."""


class Hook(Protocol):
    """Called with every finished operation, on the thread that ran it, before its
    span is exported. Must be cheap and must not raise (a raise is counted as
    dropped telemetry). A hook may carry a ``fact_mask`` (``FACT_*`` bits): it is then
    called only with operations that carry one of those facts."""

    def __call__(self, op: FinishedOperation, /) -> None: ...


class ExposureHook(Protocol):
    """Called by :func:`mevobs.record_exposure` with the exact amount (the audit trail)."""

    def __call__(self, token: str, amount: Decimal, chain: str | None, /) -> None: ...


class Guard(Protocol):
    """Admits or refuses the calls of the wrappers it is attached to (``breaker=``).

    ``before_call`` raises to refuse a call (the wrapped function does not run);
    ``after_call`` sees the finished operation. :class:`mevobs.CircuitBreaker` is one.
    """

    def before_call(self) -> None: ...

    def after_call(self, op: FinishedOperation) -> None: ...


@dataclass(frozen=True)
class Finding:
    """What a detector reports: counted on ``mev.security.events`` under the detector's
    kind, added as an event to the operation's span and logged at WARNING
    (CRITICAL when ``critical``). ``details`` go on the event and the log only,
    scrubbed of secrets, never on the metric."""

    message: str
    critical: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)


class Detector(Protocol):
    """A security detector: one object with one method, run on every finished operation.

    ``kind`` is the ``mev.security.kind`` its findings are counted under (built-in
    kinds are in :data:`mevobs.semconv.SECURITY_KINDS`; a detector passed to
    ``configure(detectors=[...])`` adds its own). Detectors run one at a time under
    the monitor's lock, so their state needs no lock of its own; they must return
    quickly (no I/O) and bound the state they keep.

    A detector may also declare ``wants``, the facts it needs among ``"rpc"`` (an
    RPC call), ``"transaction"`` (gas, a transaction hash or ``to``) and ``"profit"``
    (an expected profit): it is then called only with operations that carry one.
    Without ``wants`` it sees every operation.
    """

    kind: str

    def __call__(self, op: FinishedOperation, /) -> Iterable[Finding]: ...


class SecurityListener(Protocol):
    """Told about every security event by kind (circuit breakers trip on some)."""

    def __call__(self, kind: str, /) -> None: ...
