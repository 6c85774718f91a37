"""The pytest plugin mevobs installs (entry point ``pytest11``): the ``mevobs_telemetry`` fixture.

It imports nothing of the OpenTelemetry SDK until a test uses the fixture, so
having mevobs installed does not slow down every pytest run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def mevobs_telemetry() -> Iterator[Any]:
    """A :class:`mevobs.testing.Captured` recording everything mevobs emits during the test."""
    from mevobs.testing import capture

    with capture() as captured:
        yield captured
