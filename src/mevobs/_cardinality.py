"""The cardinality cap: which values each metric attribute may take.

Metric attributes come from a fixed set (:data:`mevobs.semconv.METRIC_ATTRIBUTES`);
this module bounds the *values* each of them may take in one process, so a bot
that names an exchange after every pool cannot grow the metric series without
bound. Values past the cap become :data:`mevobs.semconv.OTHER_VALUE`, and so does
a value that names one thing rather than a category (a URL, an address, a key:
:func:`mevobs._scrub.looks_unbounded_label`), at once: such a value would take a
series of its own and, as a label, leave the process unscrubbed. Each refusal of
that kind is reported to ``on_refuse`` (the state counts it as dropped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from mevobs import semconv
from mevobs._scrub import looks_unbounded_label

DEFAULT_CARDINALITY_CAP = 100

RefuseHook = Callable[[str], None]
"""Called with the attribute key of each refused value (never the value: it may be a secret)."""


class CardinalityLimiter:
    """Caps the distinct values each metric attribute may take.

    The first ``cap`` distinct values of a key pass, unless they look unbounded;
    later new values become ``"other"`` (uncounted: the cap is the documented
    behaviour, and the value is not looked at). Thread-safe; the common case (a
    value already seen) takes no lock. Refused values are remembered (up to
    ``cap`` per key) so that a bot repeating one bad label pays the check once.
    """

    def __init__(self, cap: int = DEFAULT_CARDINALITY_CAP, on_refuse: RefuseHook | None = None) -> None:
        self.cap = cap
        self.on_refuse = on_refuse
        self._seen: dict[str, set[Any]] = {}
        self._refused: dict[str, set[str]] = {}
        self._bounded: dict[str, set[Any]] = {}
        self._lock = threading.Lock()

    def limit(self, key: str, value: Any) -> Any:
        """``value`` as a metric label: itself, or ``"other"`` past the cap or when it
        looks unbounded (reported to ``on_refuse``)."""
        seen = self._seen.get(key)
        if seen is not None and value in seen:
            return value
        refused = self._refused.get(key)
        if refused is not None and value in refused:
            self._refuse(key)
            return semconv.OTHER_VALUE
        if seen is not None and len(seen) >= self.cap:
            return semconv.OTHER_VALUE  # "other" either way: no need to look at the value
        if isinstance(value, str) and looks_unbounded_label(value):  # outside the lock: it scrubs
            with self._lock:
                refused = self._refused.setdefault(key, set())
                if len(refused) < self.cap:
                    refused.add(value)
            self._refuse(key)
            return semconv.OTHER_VALUE
        return self._admit(self._seen, key, value)

    def bound(self, key: str, value: Any) -> Any:
        """``value`` as a key of internal state that must stay bounded but never leaves
        as a label (a detector's baseline per RPC endpoint): the cap alone, kept apart
        from the labels so that a value admitted here is still judged as a label."""
        seen = self._bounded.get(key)
        if seen is not None and value in seen:
            return value
        return self._admit(self._bounded, key, value)

    def _admit(self, table: dict[str, set[Any]], key: str, value: Any) -> Any:
        with self._lock:
            seen = table.setdefault(key, set())
            if value in seen:
                return value
            if len(seen) >= self.cap:
                return semconv.OTHER_VALUE
            seen.add(value)
            return value

    def after_fork_in_child(self) -> None:
        """A fresh lock: another thread of the parent may have held this one at the fork."""
        self._lock = threading.Lock()

    def limit_all(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        return {key: self.limit(key, value) for key, value in attributes.items()}

    def _refuse(self, key: str) -> None:
        hook = self.on_refuse
        if hook is not None:
            hook(key)
