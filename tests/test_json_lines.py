"""The JSON log line: its fast encoding writes what ``json.dumps`` of the documented layout writes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mevobs._logs import JsonFormatter, iso_utc


def _reference_stamp(created: float) -> str:
    stamp = dt.datetime.fromtimestamp(created, tz=dt.timezone.utc)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _reference_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_reference_value(v) for v in value]
    return str(value)


def _reference_line(record: logging.LogRecord) -> str:
    """The line as the formatter wrote it before it had a fast path (attributes clean)."""
    doc = {
        "timestamp": _reference_stamp(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "service.name": "svc",
        "attributes": {k: _reference_value(v) for k, v in record.mevobs.items()},
    }
    return json.dumps(doc, separators=(",", ":"))


_BOUNDARY_FRACTIONS = st.sampled_from([0.0, 5e-7, 0.4999995, 0.5, 0.9999994999, 0.9999995, 0.9999995001])


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=0, max_value=4e9, allow_nan=False),
        st.builds(lambda s, f: s + f, st.integers(10**9, 2 * 10**9), _BOUNDARY_FRACTIONS),
        st.builds(lambda us: us / 1e6, st.integers(10**15, 2 * 10**15)),
    )
)
def test_timestamp_matches_datetime_isoformat(created: float) -> None:
    """The cached-second timestamp rounds the microseconds as datetime does, carry included."""
    assert iso_utc(created) == _reference_stamp(created)


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),  # NaN and the infinities included: written as text
    st.text(max_size=20),  # non-ASCII, controls and line separators escaped as before
    st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),  # written as its str()
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), _VALUES, max_size=8), st.floats(1e9, 2e9))
def test_line_is_the_json_dumps_of_the_layout(attrs: dict[str, Any], created: float) -> None:
    """Whatever the attribute values, the line equals json.dumps of the documented layout."""
    record = logging.LogRecord("mevobs", logging.INFO, "/x.py", 1, "swap %s", ("ok",), None, "f")
    record.created = created
    record.mevobs = attrs
    record.mevobs_clean = True
    record.trace_id = "ab" * 16
    record.span_id = "cd" * 8
    assert JsonFormatter("svc").format(record) == _reference_line(record)
