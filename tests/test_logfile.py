"""The rotating JSON-lines log file: size and time rotation, gzip, retention, threads, I/O errors."""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

import mevobs
from mevobs import _logfile
from mevobs._logfile import LogFile, LogFileHandler, next_boundary, parse_interval, rotated_files


class Clock:
    """A settable wall clock for rotation and retention."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _utc(text: str) -> float:
    return _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.timezone.utc).timestamp()


def _read_all(path: Path) -> list[str]:
    """Every line of a log and its rotated files, oldest first (each gzip must be valid)."""
    lines: list[str] = []
    for rotated in rotated_files(path):
        assert rotated.compressed, rotated.path
        with gzip.open(rotated.path, "rt", encoding="utf-8") as f:
            lines += f.read().splitlines()
    if path.exists():
        lines += path.read_text(encoding="utf-8").splitlines()
    return lines


def _log_from_threads(sink: LogFile | logging.Logger, threads: int, per_thread: int) -> None:
    pad = "x" * 60

    def work(t: int) -> None:
        for i in range(per_thread):
            line = json.dumps({"t": t, "i": i, "pad": pad})
            if isinstance(sink, LogFile):
                sink.write_line(line)
            else:
                sink.info(line)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


@pytest.fixture
def quiet_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("test_logfile.threads")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


class TestRotationBySize:
    def test_four_threads_retention_5_keep_a_gapless_tail_of_each_thread(self, tmp_path: Path) -> None:
        """200 000 records, 1 MB files, 5 backups, 4 threads: at most 5 gzip files and the
        current one remain; every line is a whole record and each thread's records there
        are a contiguous run ending at its last record, with no duplicate."""
        path = tmp_path / "bot.jsonl"
        log = LogFile(path, max_bytes=1024 * 1024, backups=5, rotate_interval=None)
        _log_from_threads(log, threads=4, per_thread=50_000)
        assert log.close(timeout=30)
        assert log.lines_dropped == 0 and log.rotations >= 10
        rotated = rotated_files(path)
        assert 1 <= len(rotated) <= 5 and all(r.compressed for r in rotated)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [path.name, *(r.path.name for r in rotated)]
        )
        for r in rotated:
            assert r.path.stat().st_size < 1024 * 1024
        seen: dict[int, list[int]] = {t: [] for t in range(4)}
        for line in _read_all(path):
            record = json.loads(line)  # a split record would not parse
            seen[record["t"]].append(record["i"])
        for ids in seen.values():
            assert ids == list(range(ids[0], 50_000)), "gap, duplicate or disorder in a thread's tail"

    def test_large_retention_loses_nothing(self, tmp_path: Path) -> None:
        """With retention above the number of rotations every one of 200 000 records from
        4 threads is in the files exactly once, each thread's in order."""
        path = tmp_path / "bot.jsonl"
        log = LogFile(path, max_bytes=1024 * 1024, backups=1000, rotate_interval=None, compress_level=1)
        _log_from_threads(log, threads=4, per_thread=50_000)
        assert log.close(timeout=30)
        seen: dict[int, list[int]] = {t: [] for t in range(4)}
        for line in _read_all(path):
            record = json.loads(line)
            seen[record["t"]].append(record["i"])
        assert all(ids == list(range(50_000)) for ids in seen.values())

    def test_the_logging_handler_from_threads_loses_nothing_across_rotations(
        self, tmp_path: Path, quiet_logger: logging.Logger
    ) -> None:
        path = tmp_path / "bot.jsonl"
        handler = LogFileHandler(LogFile(path, max_bytes=64 * 1024, backups=1000, rotate_interval=None))
        quiet_logger.addHandler(handler)
        _log_from_threads(quiet_logger, threads=4, per_thread=5_000)
        handler.close()
        assert handler.file.close(timeout=30)
        seen: dict[int, list[int]] = {t: [] for t in range(4)}
        for line in _read_all(path):
            record = json.loads(line)
            seen[record["t"]].append(record["i"])
        assert all(ids == list(range(5_000)) for ids in seen.values())
        assert len(rotated_files(path)) >= 20

    def test_a_line_larger_than_the_limit_is_written_whole_in_a_file_of_its_own(self, tmp_path: Path) -> None:
        path = tmp_path / "bot.jsonl"
        with LogFile(path, max_bytes=100, backups=10, rotate_interval=None) as log:
            log.write_line('{"n":1}')
            log.write_line(json.dumps({"n": 2, "big": "y" * 500}))
            log.write_line('{"n":3}')
        assert [json.loads(x)["n"] for x in _read_all(path)] == [1, 2, 3]
        assert len(rotated_files(path)) == 2

    def test_inner_newlines_are_escaped_so_a_record_stays_one_line(self, tmp_path: Path) -> None:
        path = tmp_path / "bot.jsonl"
        with LogFile(path, rotate_interval=None) as log:
            log.write_line("first\nsecond")
            log.write_line("third\n")
        assert path.read_text() == "first\\nsecond\nthird\n"

    def test_write_lines_splits_a_batch_at_the_size_limit_between_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "bot.jsonl"
        with LogFile(path, max_bytes=64, backups=10, rotate_interval=None) as log:
            assert log.write_lines(json.dumps({"n": n}) for n in range(30)) == 30
        assert [json.loads(x)["n"] for x in _read_all(path)] == list(range(30))
        assert all(f.path.stat().st_size > 0 for f in rotated_files(path))

    def test_rotated_names_sort_chronologically_as_text(self, tmp_path: Path) -> None:
        path = tmp_path / "bot.jsonl"
        with LogFile(path, max_bytes=10, backups=50, rotate_interval=None) as log:
            for n in range(12):
                log.write_line(f'{{"n":{n}}}')
        names = [f.path.name for f in rotated_files(path)]
        assert names == sorted(names) and len(names) == 11
        assert [json.loads(x)["n"] for x in _read_all(path)] == list(range(12))


class TestRotationByTime:
    def test_rotates_at_utc_hour_boundaries_and_names_files_by_their_first_record(
        self, tmp_path: Path
    ) -> None:
        clock = Clock(_utc("2026-11-26T05:59:58"))
        path = tmp_path / "bot.jsonl"
        with LogFile(path, rotate_interval="1h", backups=10, clock=clock) as log:
            log.write_line('{"n":1}')
            clock.now = _utc("2026-11-26T06:00:00")
            log.write_line('{"n":2}')
            clock.now = _utc("2026-11-26T06:59:59")
            log.write_line('{"n":3}')
            clock.now = _utc("2026-11-26T09:30:00")  # idle hours leave no empty files
            log.write_line('{"n":4}')
        names = [f.path.name for f in rotated_files(path)]
        assert names == ["bot.jsonl.2026-11-26T05-59-58.001.gz", "bot.jsonl.2026-11-26T06-00-00.001.gz"]
        assert [json.loads(x)["n"] for x in _read_all(path)] == [1, 2, 3, 4]
        assert path.read_text() == '{"n":4}\n'

    def test_a_restart_continues_the_file_and_rotates_it_when_its_period_is_over(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "bot.jsonl"
        path.write_text('{"timestamp":"2026-11-25T23:10:00.000000Z","n":0}\n')
        clock = Clock(_utc("2026-11-26T00:00:05"))
        with LogFile(path, rotate_interval="1d", clock=clock) as log:
            log.write_line('{"n":1}')
        assert [f.path.name for f in rotated_files(path)] == ["bot.jsonl.2026-11-25T23-10-00.001.gz"]
        assert path.read_text() == '{"n":1}\n'

    def test_interval_parsing_and_alignment(self) -> None:
        assert parse_interval("1h") == 3600 and parse_interval("1d") == 86400 and parse_interval(90) == 90
        assert parse_interval("none") is None and parse_interval(None) is None and parse_interval(0) is None
        for bad in ("3x", "-1h", "0.5", "h"):
            with pytest.raises(ValueError):
                parse_interval(bad)
        assert next_boundary(_utc("2026-11-26T06:23:00"), 3600) == _utc("2026-11-26T07:00:00")
        assert next_boundary(_utc("2026-11-26T06:23:00"), 86400) == _utc("2026-11-27T00:00:00")


class TestRetentionByAge:
    def test_rotated_files_older_than_max_age_are_deleted_the_current_file_never(
        self, tmp_path: Path
    ) -> None:
        clock = Clock(_utc("2026-11-20T12:00:00"))
        path = tmp_path / "bot.jsonl"
        log = LogFile(path, rotate_interval="1d", backups=100, max_age_days=2, clock=clock)
        for day in range(20, 27):  # one file a day; each rotated at the next midnight
            clock.now = _utc(f"2026-11-{day}T12:00:00")
            log.write_line(f'{{"day":{day}}}')
        assert log.close(timeout=10)
        # Now 26 Nov 12:00: files whose last line went in before 24 Nov 12:00 are gone.
        kept = [json.loads(x)["day"] for x in _read_all(path)]
        assert kept == [24, 25, 26]

    def test_zero_max_age_keeps_everything_that_the_count_allows(self, tmp_path: Path) -> None:
        clock = Clock(_utc("2026-01-01T12:00:00"))
        path = tmp_path / "bot.jsonl"
        log = LogFile(path, rotate_interval="1d", backups=3, max_age_days=0, clock=clock)
        for day in range(1, 11):
            clock.now = _utc(f"2026-01-{day:02d}T12:00:00")
            log.write_line(f'{{"day":{day}}}')
        clock.now += 1000 * 86400
        assert log.close(timeout=10)
        assert [json.loads(x)["day"] for x in _read_all(path)] == [7, 8, 9, 10]


class TestRestart:
    def test_leftover_uncompressed_files_are_compressed_and_stale_temporaries_removed(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "bot.jsonl"
        left = tmp_path / "bot.jsonl.2026-11-26T06-00-00.001"
        left.write_text('{"n":1}\n')
        stale = tmp_path / "bot.jsonl.2026-11-26T06-00-00.001.gz.1.2.tmp"
        stale.write_bytes(b"\x1f\x8b partial")
        os.utime(stale, (time.time() - 3600, time.time() - 3600))
        log = LogFile(path, rotate_interval=None)
        assert log.close(timeout=10)
        assert not left.exists() and not stale.exists()
        assert _read_all(path) == ['{"n":1}']


class TestIOErrors:
    def test_a_path_under_a_regular_file_never_raises_counts_and_reports_once(self, tmp_path: Path) -> None:
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("")
        reports: list[str] = []
        drops: list[int] = []
        log = LogFile(blocker / "bot.jsonl", report=reports.append, on_drop=drops.append)
        for _ in range(5):
            assert log.write_line('{"n":1}') is False
        assert log.write_lines(['{"n":2}', '{"n":3}']) == 0
        log.close()
        assert log.lines_dropped == 7 and sum(drops) == 7
        assert len(reports) == 1 and "bot.jsonl" in reports[0]

    def test_directory_removed_mid_run_drops_then_recovers(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The log directory is removed and a file put in its place: lines are dropped and
        counted, nothing raises; once the directory can be made again, logging resumes."""
        monkeypatch.setattr(_logfile, "_CHECK_SECONDS", 0.0)
        monkeypatch.setattr(_logfile, "_RETRY_SECONDS", 0.0)
        logs = tmp_path / "logs"
        reports: list[str] = []
        log = LogFile(logs / "bot.jsonl", rotate_interval=None, report=reports.append, on_drop=lambda n: None)
        assert log.write_line('{"n":1}')
        shutil.rmtree(logs)
        logs.write_text("in the way")
        assert log.write_line('{"n":2}') is False
        assert log.write_line('{"n":3}') is False
        logs.unlink()
        assert log.write_line('{"n":4}')
        log.close()
        assert log.lines_dropped == 2 and len(reports) == 1
        assert (logs / "bot.jsonl").read_text() == '{"n":4}\n'

    def test_a_short_write_is_cut_back_so_no_partial_line_remains(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "bot.jsonl"
        log = LogFile(path, rotate_interval=None, report=lambda m: None, on_drop=lambda n: None)
        log.write_line('{"n":1}')
        monkeypatch.setattr(_logfile, "_os_write", lambda fd, data: os.write(fd, data[:3]))
        assert log.write_line('{"n":2}') is False
        monkeypatch.setattr(_logfile, "_os_write", os.write)
        monkeypatch.setattr(_logfile, "_RETRY_SECONDS", 0.0)
        assert log.write_line('{"n":3}')
        log.close()
        assert path.read_text() == '{"n":1}\n{"n":3}\n'

    def test_a_failing_rotation_keeps_writing_to_the_current_file_and_retries(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Renaming fails (the file itself is still writable): no line is lost, the file
        grows past the limit, the failure is reported once, and rotation resumes later."""
        path = tmp_path / "bot.jsonl"
        reports: list[str] = []
        log = LogFile(path, max_bytes=20, rotate_interval=None, report=reports.append, on_drop=lambda n: None)

        def refuse(src: object, dst: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(_logfile, "_RETRY_SECONDS", 0.0)  # retry on the next line
        monkeypatch.setattr(_logfile, "_os_rename", refuse)
        for n in range(5):
            assert log.write_line(f'{{"n":{n}}}')
        assert len(path.read_text().splitlines()) == 5 and not rotated_files(path)
        monkeypatch.setattr(_logfile, "_os_rename", os.rename)
        assert log.write_line('{"n":5}')
        log.close(timeout=10)
        assert log.lines_dropped == 0 and len(reports) == 1 and "Permission denied" in reports[0]
        assert [json.loads(x)["n"] for x in _read_all(path)] == list(range(6))
        assert path.read_text() == '{"n":5}\n'

    def test_writing_after_close_is_counted_not_raised(self, tmp_path: Path) -> None:
        reports: list[str] = []
        log = LogFile(tmp_path / "bot.jsonl", report=reports.append, on_drop=lambda n: None)
        log.close()
        assert log.write_line("late") is False and log.lines_dropped == 1 and not reports

    def test_handler_counts_a_record_its_formatter_cannot_render(
        self, tmp_path: Path, quiet_logger: logging.Logger
    ) -> None:
        class Broken(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                raise RuntimeError("no")

        handler = LogFileHandler(LogFile(tmp_path / "bot.jsonl", on_drop=lambda n: None))
        handler.setFormatter(Broken())
        quiet_logger.addHandler(handler)
        quiet_logger.info("x")
        handler.close()
        assert handler.file.lines_dropped == 1


class TestConfigure:
    def test_configure_file_destination_writes_json_lines_and_closes_on_shutdown(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "logs" / "bot.jsonl"

        @mevobs.swap(exchange="uniswap_v3", chain="ethereum")
        def swap() -> int:
            return 1

        telemetry = mevobs.configure(exporter="none", log_destination="file", log_path=str(path))
        swap()
        telemetry.shutdown()
        (record,) = [json.loads(x) for x in path.read_text().splitlines()]
        assert record["attributes"]["mev.operation"] == "swap" and len(record["trace_id"]) == 32
        swap()  # after shutdown nothing more reaches the file
        assert len(path.read_text().splitlines()) == 1

    def test_settings_from_the_environment(self, tmp_path: Path) -> None:
        env = {
            "MEVOBS_LOG_DESTINATION": "file",
            "MEVOBS_LOG_PATH": str(tmp_path / "bot.jsonl"),
            "MEVOBS_LOG_MAX_BYTES": "1048576",
            "MEVOBS_LOG_BACKUPS": "3",
            "MEVOBS_LOG_MAX_AGE_DAYS": "0",
            "MEVOBS_LOG_ROTATE_INTERVAL": "1h",
        }
        s = mevobs.Settings.load(env)
        assert (s.log_max_bytes, s.log_backups, s.log_max_age_days, s.log_rotate_interval) == (
            1048576,
            3,
            0,
            3600,
        )
        assert mevobs.Settings.load({"MEVOBS_LOG_ROTATE_INTERVAL": "none"}).log_rotate_interval is None
        defaults = mevobs.Settings.load({})
        assert (defaults.log_max_bytes, defaults.log_backups, defaults.log_max_age_days) == (
            100 * 2**20,
            10,
            14,
        )
        assert defaults.log_rotate_interval == 86400

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"log_destination": "file"}, "log_path"),
            ({"log_destination": "file", "log_path": "x", "log_format": "text"}, "log_destination"),
            ({"log_rotate_interval": "often"}, "log_rotate_interval"),
            ({"log_max_bytes": 10}, "log_max_bytes"),
            ({"log_backups": -1}, "log_backups"),
        ],
    )
    def test_invalid_file_settings_name_the_field(self, kwargs: dict[str, object], field: str) -> None:
        with pytest.raises(pydantic.ValidationError) as err:
            mevobs.Settings.load({}, **kwargs)
        assert err.value.errors()[0]["loc"] == (field,)
