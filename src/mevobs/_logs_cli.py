"""``mevobs logs PATH...``: search mevobs JSON-lines logs, rotated and gzip-compressed ones too.

Why a command of its own: the files a bot leaves (``bot.jsonl`` plus
``bot.jsonl.<time>.<n>.gz``) are awkward for grep/zcat in order, and the
questions an operator asks are about fields (a trace id, an outcome, a time
window), not text. Files are streamed a line at a time (a line longer than
``MAX_LINE`` is skipped), so memory does not grow with their size; lines are
pre-filtered on their raw bytes before any JSON parsing where a filter allows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gzip
import heapq
import itertools
import json
import os
import re
import stat
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mevobs import semconv
from mevobs._logfile import ROTATED_NAME, STAMP_FORMAT

COMMAND = "logs"
MAX_LINE = 4 * 1024 * 1024
MAX_MERGE = 256  # sequences merged at once: one open file each
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50, "FATAL": 50}
_LOG_SUFFIXES = (".jsonl", ".ndjson", ".json", ".log")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# A rotated file's name carries its first record's second; records of concurrent threads can
# reach the file a little out of order, so time-based skipping of whole files keeps a margin.
_SKIP_MARGIN = 2.0
_COLUMNS = (
    ("time", 24),
    ("level", 8),
    ("operation", 11),
    ("exchange", 14),
    ("chain", 10),
    ("outcome", 12),
    ("duration_ms", 11),
    ("trace_id", 32),
)


class UsageError(Exception):
    """Bad arguments or an unreadable path: one line on stderr, exit 2."""


_now = time.time  # a module name, so a test can fix "now" for relative times


def parse_time(text: str, now: float | None = None) -> float:
    """Seconds since the epoch of ``text``: ISO-8601 (naive means UTC, ``Z`` allowed, a
    date alone is its midnight) or a duration before now such as ``15m``, ``2h``, ``3d``."""
    raw = text.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", raw.lower())
    if match:
        return (_now() if now is None else now) - float(match.group(1)) * _UNITS[match.group(2)]
    return _iso_seconds(raw)


def _iso_seconds(text: str) -> float:
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = _dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()


def _time_arg(text: str) -> float:
    try:
        return parse_time(text)
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO-8601 like 2026-11-26T06:00:00Z, or 15m, 2h, 3d ago)"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _level_arg(text: str) -> int:
    level = LEVELS.get(text.strip().upper())
    if level is None:
        raise argparse.ArgumentTypeError(f"not a level: {text!r} (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return level


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``mevobs logs``."""
    p = sub.add_parser(
        COMMAND,
        help="search mevobs JSON log files (rotated and .gz too), oldest first",
        description="Search mevobs JSON-lines logs. A file PATH also covers its rotated files "
        "(PATH.<time>.<n>[.gz]); a directory covers the log files under it. Exit 0 when "
        "something matched, 1 when nothing did, 2 on bad arguments or unreadable paths.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="log file or directory")
    p.add_argument("--trace-id", help="records of this trace")
    p.add_argument("--level", type=_level_arg, help="minimum level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    for name, attr in (("outcome", semconv.ATTR_OUTCOME), ("operation", semconv.ATTR_OPERATION)):
        p.add_argument(f"--{name}", action="append", help=f"{attr} equals this (repeat for any of several)")
    for name, attr in (("exchange", semconv.ATTR_EXCHANGE), ("chain", semconv.ATTR_CHAIN)):
        p.add_argument(f"--{name}", action="append", help=f"{attr} equals this (repeat for any of several)")
    p.add_argument("--since", type=_time_arg, help="from this time: ISO-8601, or 15m, 2h, 3d ago")
    p.add_argument("--until", type=_time_arg, help="up to this time (same forms as --since)")
    p.add_argument("--grep", metavar="TEXT", help="the message contains TEXT (case-sensitive)")
    p.add_argument("--format", choices=("json", "table"), default="json", help="output (default json lines)")
    p.add_argument("--limit", type=_positive_int, help="stop after N matching records")


@dataclass
class Query:
    """What a record must satisfy; every filter given must hold."""

    trace_id: str | None = None
    min_level: int | None = None
    outcomes: frozenset[str] = frozenset()
    operations: frozenset[str] = frozenset()
    exchanges: frozenset[str] = frozenset()
    chains: frozenset[str] = frozenset()
    since: float | None = None
    until: float | None = None
    grep: str | None = None
    needles: tuple[tuple[bytes, ...], ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        if self.trace_id is not None:
            self.trace_id = self.trace_id.strip().lower()
        # Raw-byte pre-filter: a matching line contains one text of every group. A group
        # is used only when JSON writes all its texts unchanged (printable ASCII, no quote
        # or backslash), so the pre-filter never rejects a line that would match.
        groups: list[set[str]] = [
            set(s) for s in (self.outcomes, self.operations, self.exchanges, self.chains)
        ]
        if self.trace_id:
            groups.append({self.trace_id, self.trace_id.upper()})
        if self.grep:
            groups.append({self.grep})
        self.needles = tuple(
            tuple(t.encode() for t in sorted(g)) for g in groups if g and all(_json_verbatim(t) for t in g)
        )

    def may_match(self, line: bytes) -> bool:
        """False when the raw line cannot match (no parsing needed)."""
        if not all(any(n in line for n in group) for group in self.needles):
            return False
        if self.min_level is not None and line.startswith(b'{"timestamp":"'):
            # JsonFormatter's layout: the record's own level follows the timestamp.
            at = line.find(b'","level":"', 14, 64)
            if at >= 0:
                end = line.find(b'"', at + 11)
                name = line[at + 11 : end].decode("ascii", "replace").upper()
                return LEVELS.get(name, -1) >= self.min_level
        return True

    def matches(self, doc: dict[str, Any], stamp: float | None) -> bool:
        if self.trace_id is not None and str(doc.get("trace_id") or "").lower() != self.trace_id:
            return False
        if self.min_level is not None and LEVELS.get(str(doc.get("level", "")).upper(), -1) < self.min_level:
            return False
        if self.since is not None and (stamp is None or stamp < self.since):
            return False
        if self.until is not None and (stamp is None or stamp > self.until):
            return False
        if self.grep is not None and self.grep not in str(doc.get("message", "")):
            return False
        attrs = doc.get("attributes")
        attrs = attrs if isinstance(attrs, dict) else {}
        for wanted, key in (
            (self.outcomes, semconv.ATTR_OUTCOME),
            (self.operations, semconv.ATTR_OPERATION),
            (self.exchanges, semconv.ATTR_EXCHANGE),
            (self.chains, semconv.ATTR_CHAIN),
        ):
            if wanted and attrs.get(key) not in wanted:
                return False
        return True


def _json_verbatim(text: str) -> bool:
    return all(" " <= c <= "~" and c not in '"\\' for c in text)


@dataclass
class Tally:
    """What could not be read, reported once at the end."""

    corrupt: int = 0
    first_corrupt: str = ""
    broken_files: int = 0
    first_broken: str = ""

    def bad_line(self, where: str) -> None:
        self.corrupt += 1
        self.first_corrupt = self.first_corrupt or where

    def bad_file(self, where: str) -> None:
        self.broken_files += 1
        self.first_broken = self.first_broken or where


# ------------------------------------------------------------------ finding files


def _is_log_name(name: str) -> bool:
    if name.endswith(".tmp"):
        return False
    stem = name[:-3] if name.endswith(".gz") else name
    return bool(ROTATED_NAME.match(name)) or stem.endswith(_LOG_SUFFIXES)


def _stamp_seconds(stamp: str) -> float:
    return _dt.datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=_dt.timezone.utc).timestamp()


@dataclass(frozen=True)
class LogSequence:
    """The files of one log, oldest first, with the first-record second of rotated ones."""

    files: tuple[tuple[Path, float | None], ...]


def discover(paths: Sequence[str]) -> list[LogSequence]:
    """Group the files under ``paths`` into log sequences (a base file and its rotated
    files); raises UsageError for a missing or unreadable path."""
    found: dict[Path, None] = {}
    for text in paths:
        path = Path(text)
        if path.is_dir():
            for root, dirs, names in os.walk(path, onerror=_walk_error):
                dirs.sort()
                for name in sorted(names):
                    if _is_log_name(name):
                        found.setdefault(_checked(Path(root) / name), None)
        elif path.exists():
            found.setdefault(_checked(path), None)
            if not ROTATED_NAME.match(path.name):
                siblings = [p for p in _rotated_siblings(path) if p.name != path.name]
                for sibling in siblings:
                    found.setdefault(_checked(sibling), None)
        else:
            raise UsageError(f"no such file or directory: {text}")
    groups: dict[tuple[Path, str], list[tuple[tuple[int, str, int], Path, float | None]]] = {}
    for path in found:
        match = ROTATED_NAME.match(path.name)
        if match:
            key = (path.parent, match.group("base"))
            order = (0, match.group("stamp"), int(match.group("seq")))
            groups.setdefault(key, []).append((order, path, _stamp_seconds(match.group("stamp"))))
        else:
            groups.setdefault((path.parent, path.name), []).append(((1, "", 0), path, None))
    return [LogSequence(tuple((p, s) for _, p, s in sorted(groups[key]))) for key in sorted(groups)]


def _rotated_siblings(path: Path) -> list[Path]:
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [
        path.parent / n
        for n in names
        if (m := ROTATED_NAME.match(n)) and m.group("base") == path.name and not n.endswith(".tmp")
    ]


def _walk_error(exc: OSError) -> None:
    raise UsageError(f"cannot read {exc.filename}: {exc.strerror}")


def _checked(path: Path) -> Path:
    """The path, resolved, once it opens as a regular file (a FIFO would block the search)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UsageError(f"cannot read {path}: not a regular file")
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return path.resolve()


# ------------------------------------------------------------------ reading


@contextlib.contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes, through gzip when it starts with the gzip magic (whatever its name)."""
    with path.open("rb") as raw:
        if raw.read(2) == b"\x1f\x8b":
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz  # type: ignore[misc]
        else:
            raw.seek(0)
            yield raw


def _lines(path: Path, tally: Tally) -> Iterator[tuple[bytes, int]]:
    """The lines of a plain or gzip file with their numbers; a damaged file ends early
    (noted in the tally) and an over-long line is skipped."""
    number = 0
    try:
        with _open(path) as f:
            while line := f.readline(MAX_LINE):
                number += 1
                if len(line) == MAX_LINE and not line.endswith(b"\n"):
                    while (rest := f.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                        pass
                    tally.bad_line(f"{path}:{number}")
                    continue
                yield line, number
    except (OSError, EOFError, zlib.error) as exc:
        tally.bad_file(f"{path}: {getattr(exc, 'strerror', None) or exc or type(exc).__name__}")


Item = tuple[float, int, bytes, dict[str, Any]]


def _records(seq: LogSequence, query: Query, tally: Tally, order: itertools.count[int]) -> Iterator[Item]:
    """Matching records of one sequence in file order, keyed by time for the merge."""
    files = seq.files
    last = -float("inf")
    prefilter = bool(query.needles) or query.min_level is not None
    for i, (path, _) in enumerate(files):
        following = files[i + 1][1] if i + 1 < len(files) else None
        if query.since is not None and following is not None and following + _SKIP_MARGIN < query.since:
            continue  # every record here is older than the next file's first one
        start = files[i][1]
        if query.until is not None and start is not None and start - _SKIP_MARGIN > query.until:
            return  # this file and the later ones begin after the window
        for line, number in _lines(path, tally):
            if not line.strip():
                continue
            if prefilter and not query.may_match(line):
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                tally.bad_line(f"{path}:{number}")
                continue
            if not isinstance(doc, dict):
                tally.bad_line(f"{path}:{number}")
                continue
            stamp = _record_time(doc)
            if query.matches(doc, stamp):
                last = stamp if stamp is not None else last
                yield (last, next(order), line, doc)


def _record_time(doc: dict[str, Any]) -> float | None:
    value = doc.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        return _iso_seconds(value)
    except (ValueError, OverflowError):
        return None


def search(sequences: list[LogSequence], query: Query, tally: Tally) -> Iterator[Item]:
    """Matching records of all sequences, merged by time (each sequence is in write order)."""
    order = itertools.count()
    for start in range(0, len(sequences), MAX_MERGE):
        batch = sequences[start : start + MAX_MERGE]
        yield from heapq.merge(*(_records(s, query, tally, order) for s in batch))


# ------------------------------------------------------------------ output


def _cell(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "~"


def _row(doc: dict[str, Any]) -> str:
    attrs = doc.get("attributes")
    attrs = attrs if isinstance(attrs, dict) else {}
    stamp = str(doc.get("timestamp") or "")
    if len(stamp) > 24 and stamp.endswith("Z"):
        stamp = stamp[:23] + "Z"  # milliseconds are enough to read
    values = [
        stamp,
        doc.get("level"),
        attrs.get(semconv.ATTR_OPERATION),
        attrs.get(semconv.ATTR_EXCHANGE),
        attrs.get(semconv.ATTR_CHAIN),
        attrs.get(semconv.ATTR_OUTCOME),
        attrs.get(semconv.ATTR_DURATION_MS),
        doc.get("trace_id"),
    ]
    cells = []
    for (name, width), value in zip(_COLUMNS, values, strict=True):
        cell = _cell(value, width)
        cells.append(cell.rjust(width) if name == "duration_ms" else cell.ljust(width))
    return " ".join([*cells, _cell(doc.get("message"), 10_000)]).rstrip()


def _header() -> str:
    cells = [name.rjust(w) if name == "duration_ms" else name.ljust(w) for name, w in _COLUMNS]
    return " ".join([*cells, "message"])


def run(args: argparse.Namespace) -> int:
    """Run ``mevobs logs``; returns the exit code (stderr gets one line per problem)."""
    try:
        sequences = discover(args.paths)
    except UsageError as exc:
        sys.stderr.write(f"mevobs logs: error: {exc}\n")
        return 2
    if args.since is not None and args.until is not None and args.since > args.until:
        sys.stderr.write("mevobs logs: error: --since is after --until\n")
        return 2
    query = Query(
        trace_id=args.trace_id,
        min_level=args.level,
        outcomes=frozenset(args.outcome or ()),
        operations=frozenset(args.operation or ()),
        exchanges=frozenset(args.exchange or ()),
        chains=frozenset(args.chain or ()),
        since=args.since,
        until=args.until,
        grep=args.grep,
    )
    tally = Tally()
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    matched = 0
    try:
        if args.format == "table":
            sys.stdout.write(_header() + "\n")
        for _, _, line, doc in search(sequences, query, tally):
            if args.format == "table":
                sys.stdout.write(_row(doc) + "\n")
            elif out is not None:
                out.write(line if line.endswith(b"\n") else line + b"\n")
            else:
                sys.stdout.write(line.decode("utf-8", "replace").rstrip("\n") + "\n")
            matched += 1
            if args.limit is not None and matched >= args.limit:
                break
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (head, less) left: stop quietly, and keep Python's exit-time flush quiet too.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if tally.corrupt:
        sys.stderr.write(
            f"mevobs logs: skipped {tally.corrupt} unreadable line(s), first at {tally.first_corrupt}\n"
        )
    if tally.broken_files:
        sys.stderr.write(
            f"mevobs logs: {tally.broken_files} file(s) could not be read to the end, "
            f"first {tally.first_broken}\n"
        )
    return 0 if matched else 1
