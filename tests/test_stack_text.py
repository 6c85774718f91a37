"""Stack traces at the export boundary: the stdlib's text, without its per-exception
``os.stat`` of every file and without ``ast.parse`` on the worker thread."""

from __future__ import annotations

import ast
import builtins
import linecache
import re
import sys
import traceback
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mevobs._records import exception_event, stack_text

_MARKERS = re.compile(r"\s*[\^~]+\s*")


def _stdlib(exc: BaseException) -> str:
    """``traceback.format_exception`` without the 3.11+ ``^^^`` marker lines."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "".join(line for line in text.splitlines(keepends=True) if not _MARKERS.fullmatch(line))


class PoolError(Exception):
    """A module-qualified exception type (``tests.test_stack_text.PoolError``)."""


def _raise_chain(kinds: list[str], notes: tuple[str, ...] = ()) -> BaseException:
    """An exception whose chain links are ``kinds``: raised ``from`` its cause, raised
    while handling its context, or raised ``from None``; the innermost one is a
    ``PoolError`` with ``notes`` (Python 3.11+) when there are any."""

    def level(i: int) -> None:
        if i == len(kinds):
            if notes:
                error = PoolError("")
                for note in notes:
                    error.add_note(note)  # type: ignore[attr-defined]  # 3.11+
                raise error
            raise KeyError(f"pool {i}")
        try:
            level(i + 1)
        except Exception as inner:
            if kinds[i] == "cause":
                raise ValueError(f"leg {i}") from inner
            if kinds[i] == "context":
                raise ValueError(f"leg {i}")  # noqa: B904 - the implicit context is the point
            raise ValueError(f"leg {i}") from None

    try:
        level(0)
    except Exception as exc:
        return exc
    raise AssertionError("unreachable")


# Notes without the marker characters, so a note line is never taken for a marker line.
_NOTE = st.text(st.characters(blacklist_characters="^~"), max_size=20)
_NOTES = st.lists(_NOTE, max_size=3).map(tuple) if sys.version_info >= (3, 11) else st.just(())


@given(st.lists(st.sampled_from(["cause", "context", "suppressed"]), max_size=6), _NOTES)
def test_same_text_as_the_stdlib_for_any_chain(kinds: list[str], notes: tuple[str, ...]) -> None:
    exc = _raise_chain(kinds, notes)
    assert stack_text(exc) == _stdlib(exc)


def test_source_lines_are_shown() -> None:
    exc = _raise_chain(["cause"])
    assert 'raise ValueError(f"leg {i}") from inner' in stack_text(exc)
    assert stack_text(exc).endswith("ValueError: leg 0\n")


def test_no_stat_and_no_ast_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Formatting never calls ``linecache.checkcache`` (an ``os.stat`` per file, each
    one releasing the GIL) nor ``ast.parse`` (unsafe beside another thread's parse on
    Python 3.11, CPython gh-106905)."""
    exc = _raise_chain(["cause", "context"])
    stack_text(exc)  # the files are read into the linecache once

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("called")

    monkeypatch.setattr(linecache, "checkcache", forbidden)
    monkeypatch.setattr(ast, "parse", forbidden)
    text = stack_text(exc)
    event = exception_event(exc, 1)
    assert "During handling of the above exception" in text
    assert event[2]["exception.stacktrace"].endswith("ValueError: leg 0\n")


def test_a_cycle_in_the_chain_ends() -> None:
    first, second = ValueError("a"), KeyError("b")
    first.__context__, second.__context__ = second, first
    assert stack_text(first) == _stdlib(first)
    assert stack_text(first).count("KeyError: 'b'") == 1


def test_a_broken_str_is_named_not_raised() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    try:
        raise Broken()
    except Broken as exc:
        assert "Broken: <exception str() failed>" in stack_text(exc)


def test_an_explicit_traceback_replaces_the_outermost_one() -> None:
    exc = _raise_chain([])
    other = _raise_chain(["suppressed"]).__traceback__
    assert stack_text(exc, other) != stack_text(exc)
    assert stack_text(exc, other).endswith("KeyError: 'pool 0'\n")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are new in Python 3.11")
def test_exception_groups_keep_the_stdlib_layout() -> None:
    group_type: Any = getattr(builtins, "ExceptionGroup")  # noqa: B009 - absent before 3.11
    try:
        raise group_type("legs", [ValueError("a"), KeyError("b")])
    except Exception as exc:
        assert stack_text(exc) == "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
