"""Shared fixtures: every test starts and ends with mevobs unconfigured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import mevobs


@pytest.fixture(autouse=True)
def _no_leftover_configuration() -> Iterator[None]:
    yield
    mevobs.shutdown(timeout_seconds=5)
