"""The current operation of this thread or task: one ContextVar, shared by every layer.

Kept apart so the fast path (``_fastcall``) and the operation handle
(``_operation``) can both set it without importing each other.
"""

from __future__ import annotations

import contextvars
from typing import Any

CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("mevobs_current_operation", default=None)
"""The running :class:`~mevobs.Operation` (None outside any)."""
