"""The cardinality cap: how many distinct values each metric attribute may take.

Metric attributes come from a fixed set (:data:`mevobs.semconv.METRIC_ATTRIBUTES`);
this module bounds the *values* each of them may take in one process, so a bot
that names an exchange after every pool cannot grow the metric series without
bound. Values past the cap become :data:`mevobs.semconv.OTHER_VALUE`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from mevobs import semconv

DEFAULT_CARDINALITY_CAP = 100


class CardinalityLimiter:
    """Caps the distinct values each metric attribute may take.

    The first ``cap`` distinct values of a key pass; later new values become
    ``"other"``. Thread-safe; the common case (a value already seen) takes no lock.
    """

    def __init__(self, cap: int = DEFAULT_CARDINALITY_CAP) -> None:
        self.cap = cap
        self._seen: dict[str, set[Any]] = {}
        self._lock = threading.Lock()

    def limit(self, key: str, value: Any) -> Any:
        seen = self._seen.get(key)
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault(key, set())
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
