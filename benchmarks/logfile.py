"""Per-line cost of the rotating log file, next to the stdlib's file handlers.

Run: python benchmarks/logfile.py [--lines N] [--rounds R]

Times are per line, the median of the rounds: wall time on the writing thread,
and CPU time of the whole process (so the maintenance thread's gzip counts)
with the final close, which waits for compression, inside the timed region.

- ``write_line``: ``LogFile.write_line`` of a pre-formatted 340-byte line (what
  a worker thread hands it); ``+rotation`` rotates every 1 MB, so every ~3 000
  lines it renames, reopens and gzips a file.
- ``handler``: a log record through ``logging`` and ``JsonFormatter`` to
  ``LogFileHandler``, against the same record to the stdlib's ``FileHandler``
  and ``RotatingFileHandler`` (no compression) with the same formatter.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mevobs._logfile import LogFile, LogFileHandler
from mevobs._logs import JsonFormatter

LINE = (
    '{"timestamp":"2026-11-26T06:00:00.123456Z","level":"INFO","logger":"mevobs",'
    '"message":"swap uniswap_v3 success in 1.23 ms","trace_id":"0123456789abcdef0123456789abcdef",'
    '"span_id":"0123456789abcdef","service.name":"bot","attributes":{"mev.operation":"swap",'
    '"mev.exchange":"uniswap_v3","mev.chain":"ethereum","mev.outcome":"success","mev.duration_ms":1.23}}'
)


def _record() -> logging.LogRecord:
    record = logging.LogRecord(
        "mevobs", logging.INFO, "bot.py", 1, "%s %s in %.2f ms", ("swap", "ok", 1.23), None
    )
    record.mevobs = {
        "mev.operation": "swap",
        "mev.exchange": "uniswap_v3",
        "mev.chain": "ethereum",
        "mev.outcome": "success",
        "mev.duration_ms": 1.23,
    }
    record.trace_id = "0123456789abcdef0123456789abcdef"
    record.span_id = "0123456789abcdef"
    return record


def _time(
    setup: Callable[[Path], tuple[Callable[[], None], Callable[[], None]]], lines: int
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        one, close = setup(Path(directory))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(lines):
            one()
        wall = time.perf_counter() - wall0
        close()
        cpu = time.process_time() - cpu0
    return wall / lines * 1e6, cpu / lines * 1e6


def _write_line(max_bytes: int) -> Callable[[Path], tuple[Callable[[], None], Callable[[], None]]]:
    def setup(d: Path) -> tuple[Callable[[], None], Callable[[], None]]:
        log = LogFile(d / "bot.jsonl", max_bytes=max_bytes, backups=5, rotate_interval=None)
        return (lambda: log.write_line(LINE)), (lambda: log.close(timeout=60) and None)

    return setup


def _handler(kind: str) -> Callable[[Path], tuple[Callable[[], None], Callable[[], None]]]:
    def setup(d: Path) -> tuple[Callable[[], None], Callable[[], None]]:
        handler: logging.Handler
        if kind == "mevobs":
            handler = LogFileHandler(LogFile(d / "bot.jsonl", backups=5), close_timeout=60)
        elif kind == "stdlib-rotating":
            handler = logging.handlers.RotatingFileHandler(d / "bot.jsonl", maxBytes=100 << 20, backupCount=5)
        else:
            handler = logging.FileHandler(d / "bot.jsonl")
        handler.setFormatter(JsonFormatter("bot"))
        record = _record()
        return (lambda: handler.handle(record)), handler.close

    return setup


CASES = {
    "write_line": _write_line(100 << 20),
    "write_line+rotation(1MB,gzip)": _write_line(1 << 20),
    "handler: mevobs LogFileHandler": _handler("mevobs"),
    "handler: stdlib FileHandler": _handler("stdlib"),
    "handler: stdlib RotatingFileHandler": _handler("stdlib-rotating"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'case':38} {'wall us/line':>13} {'cpu us/line':>12}")
    for name, setup in CASES.items():
        runs = [_time(setup, args.lines) for _ in range(args.rounds)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{name:38} {wall:13.2f} {cpu:12.2f}")


if __name__ == "__main__":
    main()
