"""A rotating JSON-lines log file: rotation by size and by time, gzip, retention.

Why not ``logging.handlers``: its handlers rotate by size or by time but not
both, compress (through ``rotator``) on the thread that logs, rename every
backup on each rotation (``.1`` becomes ``.2``...) so a reader sees files change
names under it, and report I/O errors with a traceback on stderr.

Here a rotated file gets a name it keeps: ``<path>.<first record, UTC>.<n>``
then ``.gz`` once compressed, e.g. ``bot.jsonl.2026-11-26T06-00-00.001.gz``;
sorting by (time, n) is chronological. Each line is one ``os.write`` of the
whole line, rotation happens between lines, and a short write is cut back, so
a record is in one file, whole, or nowhere. Compression and retention run on
a maintenance thread; the writing thread only renames and reopens.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mevobs._state import STATE

MiB = 1024 * 1024
STAMP_FORMAT = "%Y-%m-%dT%H-%M-%S"
ROTATED_NAME = re.compile(
    r"^(?P<base>.+)\.(?P<stamp>\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d)\.(?P<seq>\d+)(?P<gz>\.gz)?$"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RETRY_SECONDS = 1.0  # after an I/O error, lines are dropped (cheaply) this long before a reopen
_CHECK_SECONDS = 1.0  # how often the writer checks that its path still names its open file
_STALE_TMP_SECONDS = 600.0
_CHUNK = MiB
# Module names, so a test can stand in a short write or a failing rename.
_os_write = os.write
_os_rename = os.rename
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def parse_interval(value: str | float | None) -> float | None:
    """Seconds of a rotation interval: ``"30m"``, ``"1h"``, ``"1d"``, ``"1w"``, a number of
    seconds, or ``None``/``"none"``/``""``/0 for no time rotation. Raises ValueError."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value == 0:
            return None
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none", "off", "0"):
            return None
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", text)
        if not match:
            raise ValueError(f"not an interval: {value!r} (use e.g. 30m, 1h, 1d or seconds)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"not an interval: {value!r}")
    if not (1.0 <= seconds < math.inf):
        raise ValueError(f"a rotation interval must be at least 1 second, got {value!r}")
    return seconds


def next_boundary(now: float, interval: float) -> float:
    """The first multiple of ``interval`` seconds since the Unix epoch after ``now``: UTC
    hours for ``1h``, UTC midnights for ``1d``."""
    return (math.floor(now / interval) + 1) * interval


@dataclass(frozen=True, order=True)
class RotatedFile:
    """One rotated file of a log; instances sort chronologically."""

    stamp: str
    seq: int
    path: Path = field(compare=False)
    compressed: bool = field(compare=False)


def rotated_files(path: str | Path) -> list[RotatedFile]:
    """The rotated files of the log at ``path`` (compressed or not yet), oldest first."""
    base = Path(path)
    try:
        names = os.listdir(base.parent)
    except OSError:
        return []
    found = []
    for name in names:
        match = ROTATED_NAME.match(name)
        if match and match.group("base") == base.name:
            found.append(
                RotatedFile(
                    match.group("stamp"), int(match.group("seq")), base.parent / name, bool(match.group("gz"))
                )
            )
    return sorted(found)


def _first_record_time(path: Path) -> float | None:
    """The ``timestamp`` of the first line of a JSON-lines file, if it has one."""
    try:
        with path.open("rb") as f:
            first = f.readline(64 * 1024)
        stamp = json.loads(first)["timestamp"]
        return _parse_iso(stamp)
    except Exception:
        return None


def _parse_iso(text: str) -> float:
    import datetime as _dt

    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = _dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()


def _encode(line: str) -> bytes:
    """One line as bytes ending in a newline; inner newlines escaped so a record stays one line."""
    if line.find("\n", 0, len(line) - 1) >= 0:
        line = line[:-1].replace("\n", "\\n") + line[-1]
    if not line.endswith("\n"):
        line += "\n"
    return line.encode("utf-8", "backslashreplace")


def _count_drops(count: int) -> None:
    # No detail text: with one, STATE.dropped logs at DEBUG, which could come back here.
    STATE.dropped("export_failed", count=count)


def _report_stderr(message: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(message + "\n")


class LogFile:
    """An append-only line file that rotates, compresses and prunes itself.

    ``write_line(str)`` appends one line (a trailing newline is added; newlines
    inside it become the two characters ``\\n`` so a line stays one record).
    Before a line that would take the file past ``max_bytes``, or the first
    line after a ``rotate_interval`` boundary (UTC, aligned), the file is
    renamed to ``<path>.<time of its first line>.<n>``; the maintenance thread
    gzips it, keeps the newest ``backups`` rotated files and deletes those
    whose last line is older than ``max_age_days`` (0 keeps them). Safe from
    any number of threads; never raises: a failing line is counted through
    ``on_drop`` and the first failure is reported once through ``report``.
    One writer per path: two processes appending to one file are not supported.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 100 * MiB,
        backups: int = 10,
        max_age_days: float = 14.0,
        rotate_interval: str | float | None = "1d",
        compress_level: int = 6,
        clock: Callable[[], float] = time.time,
        on_drop: Callable[[int], None] = _count_drops,
        report: Callable[[str], None] = _report_stderr,
    ) -> None:
        if max_bytes < 1 or backups < 0 or max_age_days < 0 or not 0 <= compress_level <= 9:
            raise ValueError("max_bytes >= 1, backups >= 0, max_age_days >= 0, 0 <= compress_level <= 9")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.max_age_days = max_age_days
        self.rotate_interval = parse_interval(rotate_interval)
        self.compress_level = compress_level
        #: Lines that could not be written (I/O error, closed file, encoding failure).
        self.lines_dropped = 0
        #: How many times the file was rotated by this instance.
        self.rotations = 0
        self._clock = clock
        self._on_drop = on_drop
        self._report = report
        self._reported = False
        self._lock = threading.Lock()
        self._fd = -1
        self._identity: tuple[int, int] = (0, 0)
        self._size = 0
        self._first_at: float | None = None
        self._last_at = 0.0
        self._next_rollover = math.inf
        self._retry_at = 0.0
        self._check_at = 0.0
        self._last_rotated: tuple[str, int] = ("", 0)
        # A rotation that failed while the file itself stayed writable: lines keep going
        # to the current file (past max_bytes) until this monotonic time, then it is retried.
        self._rotate_after = 0.0
        self._deferred: OSError | None = None
        self._closed = False
        self._maintenance = _Maintenance(self)
        with self._lock:
            error = self._open()
        if error is not None:
            self._failed(error)
        self._maintenance.kick()  # compress what an earlier run left, apply retention

    # ------------------------------------------------------------------ writing

    def write_line(self, line: str) -> bool:
        """Append one line; False (and counted) if it could not be written."""
        try:
            data = _encode(line)
        except Exception:  # a str subclass with a broken method
            self.drop(1)
            return False
        with self._lock:
            error = self._write_locked([data])
        if error is not None:
            self._failed(error, 1)
            return False
        if self._deferred is not None:
            self._report_deferred()
        return True

    def write_lines(self, lines: Iterable[str]) -> int:
        """Append several lines with as few system calls as rotation allows (for a
        worker that batches); returns how many were written."""
        encoded = []
        for line in lines:
            try:
                encoded.append(_encode(line))
            except Exception:
                self.drop(1)
        if not encoded:
            return 0
        with self._lock:
            error = self._write_locked(encoded)
        if error is not None:
            self._failed(error, len(encoded))
            return 0
        if self._deferred is not None:
            self._report_deferred()
        return len(encoded)

    def drop(self, count: int) -> None:
        """Count ``count`` lines lost before they reached the file."""
        with self._lock:
            self.lines_dropped += count
        with contextlib.suppress(Exception):
            self._on_drop(count)

    def flush(self) -> None:
        """Nothing is buffered: every line is written with its own (or its batch's) system call."""

    def close(self, timeout: float = 2.0) -> bool:
        """Close the file and wait at most ``timeout`` seconds for pending compression;
        True if it finished (what is left is compressed by the next instance on this path)."""
        with self._lock:
            self._closed = True
            self._close_fd()
        return self._maintenance.stop(timeout)

    def __enter__(self) -> LogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- private

    def _write_locked(self, chunks: list[bytes]) -> OSError | None:
        """Write ``chunks`` (whole lines) under the lock; the error that lost them, if any."""
        now = self._clock()
        if self._fd < 0 or self._closed or now >= self._next_rollover or time.monotonic() >= self._check_at:
            error = self._prepare(now)
            if error is not None:
                return error
        if len(chunks) == 1:
            data = chunks[0]
            if self._size and self._size + len(data) > self.max_bytes and self._may_rotate():
                error = self._rotate(now)
                if error is not None:
                    return error
            return self._append(data, now)
        pending: list[bytes] = []
        pending_size = 0
        for data in chunks:
            size = self._size + pending_size
            if size and size + len(data) > self.max_bytes and self._may_rotate():
                if pending:
                    error = self._append(b"".join(pending), now)
                    if error is not None:
                        return error
                    pending, pending_size = [], 0
                error = self._rotate(now)
                if error is not None:
                    return error
            pending.append(data)
            pending_size += len(data)
        return self._append(b"".join(pending), now)

    def _prepare(self, now: float) -> OSError | None:
        """The uncommon steps before a write: reopen after an error, the once-a-second
        identity check, the time rotation."""
        if self._closed:
            return OSError("log file is closed")
        if self._fd < 0:
            if time.monotonic() < self._retry_at:
                return OSError("log file unavailable")
            error = self._open()
            if error is not None:
                return error
        mono = time.monotonic()
        if mono >= self._check_at:
            self._check_at = mono + _CHECK_SECONDS
            error = self._check_identity()
            if error is not None:
                return error
        if now >= self._next_rollover:
            if not self._size:
                self._next_rollover = math.inf  # set again by the first line of this file
            elif self._may_rotate():
                return self._rotate(now)
        return None

    def _may_rotate(self) -> bool:
        return not self._rotate_after or time.monotonic() >= self._rotate_after

    def _append(self, data: bytes, now: float) -> OSError | None:
        try:
            written = _os_write(self._fd, data)
            if written != len(data):
                # Cut the torn tail so the file ends on a whole line.
                os.ftruncate(self._fd, self._size)
                return OSError(f"short write ({written} of {len(data)} bytes)")
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            # Reopen after a pause: the file may have gone, the disk may get space back.
            self._close_fd()
            self._retry_at = time.monotonic() + _RETRY_SECONDS
            return exc
        if not self._size:
            self._first_at = now
            if self.rotate_interval:
                self._next_rollover = next_boundary(now, self.rotate_interval)
        self._size += written
        self._last_at = now
        return None

    def _open(self) -> OSError | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Non-blocking open: a FIFO with no reader would hold configure() forever; it
            # fails now (ENXIO) and is retried. Writes block again, on the writer thread.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_CLOEXEC | _O_NONBLOCK, 0o644)
            try:
                if _O_NONBLOCK:
                    os.set_blocking(fd, True)
                st = os.fstat(fd)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            self._retry_at = time.monotonic() + _RETRY_SECONDS
            return exc
        self._fd = fd
        self._identity = (st.st_dev, st.st_ino)
        self._size = st.st_size
        self._first_at = None
        self._last_at = st.st_mtime
        self._next_rollover = math.inf
        if self._size:
            # Continuing a file an earlier run (or the current one, before an error) wrote.
            self._first_at = _first_record_time(self.path) or st.st_mtime
            if self.rotate_interval:
                self._next_rollover = next_boundary(self._first_at, self.rotate_interval)
        self._check_at = time.monotonic() + _CHECK_SECONDS
        return None

    def _close_fd(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def _check_identity(self) -> OSError | None:
        """Reopen when the path no longer names the open file (deleted, moved by an
        external rotator) and pick up an outside truncation."""
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                self._size = os.fstat(self._fd).st_size
                return None
        except OSError:
            pass
        self._close_fd()
        return self._open()

    def _rotate(self, now: float) -> OSError | None:
        stamp = time.strftime(
            STAMP_FORMAT, time.gmtime(self._first_at if self._first_at is not None else now)
        )
        seq = self._next_seq(stamp)
        # Three digits: names also sort chronologically as plain text (ls), up to 999 a second.
        target = self.path.with_name(f"{self.path.name}.{stamp}.{seq:03d}")
        self._close_fd()
        try:
            _os_rename(self.path, target)
        except OSError as exc:
            # Keep writing to the current file rather than lose lines; retry the rotation later.
            self._rotate_after = time.monotonic() + _RETRY_SECONDS
            self._deferred = exc
            return self._open()
        self._rotate_after = 0.0
        with contextlib.suppress(OSError):
            # Retention measures age from the file's last line, also when a clock is injected.
            os.utime(target, (self._last_at, self._last_at))
        self._last_rotated = (stamp, seq)
        self.rotations += 1
        self._maintenance.kick()
        return self._open()

    def _next_seq(self, stamp: str) -> int:
        last = self._last_rotated[1] if self._last_rotated[0] == stamp else 0
        same = [f.seq for f in rotated_files(self.path) if f.stamp == stamp]
        return max([last, *same]) + 1

    def _report_deferred(self) -> None:
        error, self._deferred = self._deferred, None
        if error is not None:
            self._failed(error)

    def _failed(self, error: OSError, lost: int = 0) -> None:
        """Count the lost lines and report the first failure; runs outside the lock."""
        if lost:
            self.drop(lost)
        if not self._reported and not self._closed:
            self._reported = True
            self._report(
                f"mevobs: log file {self.path}: {error.strerror or error}; "
                "log lines are dropped and counted (mev.telemetry.dropped) until it is writable"
            )


class _Maintenance:
    """The thread that gzips rotated files and applies retention, so that the
    writing thread never compresses or deletes."""

    def __init__(self, owner: LogFile) -> None:
        self._owner = owner
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def kick(self) -> None:
        self._wake.set()
        with self._start_lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="mevobs-logfile", daemon=True)
                self._thread.start()

    def stop(self, timeout: float) -> bool:
        with self._start_lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with contextlib.suppress(Exception):  # run_once guards each step; this is the backstop
                self.run_once()
            if self._stopping and not self._wake.is_set():
                return

    def run_once(self) -> None:
        """Delete what retention no longer keeps, then compress the rest, oldest first."""
        owner = self._owner
        files = rotated_files(owner.path)
        keep = files[len(files) - owner.backups :] if owner.backups else []
        if owner.max_age_days:
            horizon = owner._clock() - owner.max_age_days * 86400
            keep = [f for f in keep if _mtime(f.path) >= horizon]
        kept = {f.path for f in keep}
        for f in files:
            if f.path not in kept:
                with contextlib.suppress(OSError):
                    f.path.unlink()
        for f in keep:
            if not f.compressed:
                self._compress(f.path)
        self._remove_stale_tmp()

    def _compress(self, source: Path) -> None:
        target = source.with_name(source.name + ".gz")
        tmp = source.with_name(f"{source.name}.gz.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            mtime = _mtime(source)
            level = self._owner.compress_level
            with (
                source.open("rb") as src,
                open(tmp, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0) as gz,
            ):
                while chunk := src.read(_CHUNK):
                    gz.write(chunk)
            os.utime(tmp, (mtime, mtime))
            os.replace(tmp, target)
            source.unlink()
        except OSError:
            # Left uncompressed: readers take both forms; a later pass retries.
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _remove_stale_tmp(self) -> None:
        owner = self._owner
        prefix = owner.path.name + "."
        with contextlib.suppress(OSError):
            for name in os.listdir(owner.path.parent):
                if name.startswith(prefix) and name.endswith(".tmp"):
                    path = owner.path.parent / name
                    if time.time() - _mtime(path) > _STALE_TMP_SECONDS:
                        with contextlib.suppress(OSError):
                            path.unlink()


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return math.inf  # gone already: nothing for retention to do


class LogFileHandler(logging.Handler):
    """A ``logging.Handler`` over a :class:`LogFile`: each record becomes one line
    through the handler's formatter (``JsonFormatter`` in ``configure()``).

    Also a plain sink: ``write_line(str)`` appends a line formatted elsewhere.
    Closing the handler closes the file, waiting at most ``close_timeout`` seconds
    for a compression in progress (``Telemetry.shutdown()`` must stay bounded).
    """

    def __init__(self, file: LogFile, *, level: int = logging.NOTSET, close_timeout: float = 1.0) -> None:
        super().__init__(level)
        self.file = file
        self.close_timeout = close_timeout

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.file.drop(1)
            return
        self.file.write_line(line)

    def write_line(self, line: str) -> bool:
        """Append one pre-formatted line (see :meth:`LogFile.write_line`)."""
        return self.file.write_line(line)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close(self.close_timeout)
        super().close()
