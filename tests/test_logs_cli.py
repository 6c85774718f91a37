"""`mevobs logs`: search across rotated and gzip-compressed files, filters, output, exit codes."""

from __future__ import annotations

import datetime as _dt
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mevobs import _logs_cli
from mevobs._logfile import LogFile, rotated_files
from mevobs.cli import main

T0 = _dt.datetime(2026, 11, 26, 6, 0, tzinfo=_dt.timezone.utc).timestamp()
TRACE = "ab" * 16
OPS = ("swap", "arbitrage", "rpc")
EXCHANGES = ("uniswap_v3", "curve", "sushiswap")
CHAINS = ("ethereum", "arbitrum")
OUTCOMES = ("success", "success", "reverted", "failure")
LEVEL_OF = {"success": "INFO", "reverted": "WARNING", "failure": "ERROR"}


def _stamp(t: float) -> str:
    moment = _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _utc(text: str) -> float:
    return _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.timezone.utc).timestamp()


def _t(record: dict[str, Any]) -> float:
    return _dt.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()


def _record(n: int, t: float, bot: str) -> dict[str, Any]:
    outcome = OUTCOMES[n % 4]
    op = OPS[n % 3]
    return {
        "timestamp": _stamp(t),
        "level": LEVEL_OF[outcome],
        "logger": "mevobs",
        "message": f"{op} {bot} {outcome} n={n}",
        "trace_id": TRACE if n % 97 == 5 else f"{n:032x}",
        "span_id": f"{n:016x}",
        "service.name": bot,
        "attributes": {
            "mev.operation": op,
            "mev.exchange": EXCHANGES[n % 3 if n % 2 else (n // 2) % 3],
            "mev.chain": CHAINS[n % 2],
            "mev.outcome": outcome,
            "mev.duration_ms": round(1 + n / 7, 3),
            "n": n,
        },
    }


@dataclass
class Fleet:
    """Two bots' logs in one directory: 300 records each, one a second (bot-b half a second
    later), rotated by size every few KB and by hour, compressed."""

    root: Path
    records: list[dict[str, Any]]


def _write_bot(root: Path, bot: str, offset: float) -> list[dict[str, Any]]:
    now = [T0]
    log = LogFile(
        root / f"{bot}.jsonl", max_bytes=8 * 1024, backups=1000, rotate_interval="1h", clock=lambda: now[0]
    )
    records = []
    for n in range(300):
        now[0] = T0 + n * 30 + offset  # 2.5 hours: size and hour rotations
        record = _record(n, now[0], bot)
        log.write_line(json.dumps(record, separators=(",", ":")))
        records.append(record)
    assert log.close(timeout=30)
    assert len(rotated_files(root / f"{bot}.jsonl")) >= 5
    return records


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    root = tmp_path_factory.mktemp("fleet")
    records = _write_bot(root, "bot-a", 0.0) + _write_bot(root, "bot-b", 0.5)
    records.sort(key=lambda r: r["timestamp"])
    return Fleet(root, records)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(["logs", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _ns(out: str) -> list[tuple[str, int]]:
    docs = [json.loads(line) for line in out.splitlines()]
    return [(d["service.name"], d["attributes"]["n"]) for d in docs]


def _expected(fleet: Fleet, keep: Any) -> list[tuple[str, int]]:
    return [(r["service.name"], r["attributes"]["n"]) for r in fleet.records if keep(r)]


class TestSearch:
    def test_trace_id_finds_its_records_across_rotated_compressed_and_current_files(
        self, fleet: Fleet, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run([str(fleet.root), "--trace-id", TRACE.upper()], capsys)
        assert code == 0 and err == ""
        found = _ns(out)
        assert found == _expected(fleet, lambda r: r["trace_id"] == TRACE)
        assert {n for _, n in found} == {5, 102, 199, 296}  # first, middle and current files

    def test_everything_comes_out_once_in_chronological_order_across_both_bots(
        self, fleet: Fleet, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = run([str(fleet.root)], capsys)
        assert code == 0
        assert _ns(out) == _expected(fleet, lambda r: True)

    def test_a_file_path_covers_its_rotated_files_only(
        self, fleet: Fleet, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = run([str(fleet.root / "bot-b.jsonl")], capsys)
        assert code == 0
        assert _ns(out) == _expected(fleet, lambda r: r["service.name"] == "bot-b")

    @pytest.mark.parametrize(
        ("args", "keep"),
        [
            (["--level", "warning"], lambda r: r["level"] in ("WARNING", "ERROR")),
            (["--level", "ERROR"], lambda r: r["level"] == "ERROR"),
            (["--outcome", "reverted"], lambda r: r["attributes"]["mev.outcome"] == "reverted"),
            (
                ["--outcome", "reverted", "--outcome", "failure"],
                lambda r: r["attributes"]["mev.outcome"] in ("reverted", "failure"),
            ),
            (["--operation", "arbitrage"], lambda r: r["attributes"]["mev.operation"] == "arbitrage"),
            (["--exchange", "curve"], lambda r: r["attributes"]["mev.exchange"] == "curve"),
            (["--chain", "arbitrum"], lambda r: r["attributes"]["mev.chain"] == "arbitrum"),
            (["--grep", "n=12"], lambda r: "n=12" in r["message"]),
            (
                ["--since", "2026-11-26T07:00:00Z", "--until", "2026-11-26T07:20:00"],
                lambda r: _utc("2026-11-26T07:00:00") <= _t(r) <= _utc("2026-11-26T07:20:00"),
            ),
            (["--since", "2026-11-26T08:15:00+00:00"], lambda r: _t(r) >= _utc("2026-11-26T08:15:00")),
            (["--until", "2026-11-26T06:05:00Z"], lambda r: _t(r) <= _utc("2026-11-26T06:05:00")),
            (
                ["--chain", "ethereum", "--operation", "swap", "--level", "WARNING"],
                lambda r: (
                    r["attributes"]["mev.chain"] == "ethereum"
                    and r["attributes"]["mev.operation"] == "swap"
                    and r["level"] != "INFO"
                ),
            ),
        ],
    )
    def test_each_filter_selects_exactly_the_matching_records(
        self, fleet: Fleet, capsys: pytest.CaptureFixture[str], args: list[str], keep: Any
    ) -> None:
        expected = _expected(fleet, keep)
        assert expected and len(expected) < len(fleet.records)
        code, out, _ = run([str(fleet.root), *args], capsys)
        assert code == 0
        assert _ns(out) == expected

    def test_relative_since_counts_back_from_now(
        self, fleet: Fleet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_logs_cli, "_now", lambda: T0 + 299 * 30 + 1)
        code, out, _ = run([str(fleet.root), "--since", "15m"], capsys)
        assert code == 0
        now = T0 + 299 * 30 + 1
        assert _ns(out) == _expected(fleet, lambda r: _t(r) >= now - 900)
        code, out, _ = run([str(fleet.root), "--since", "2h", "--until", "1h"], capsys)
        assert _ns(out) == _expected(
            fleet,
            lambda r: now - 7200 <= _t(r) <= now - 3600,
        )

    def test_level_filter_reads_other_json_layouts_too(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The raw-byte shortcut for mevobs's own layout never hides a record written by
        another JSON logger (key order, spacing, lower-case level)."""
        lines = [
            json.dumps({"level": "error", "timestamp": _stamp(T0), "message": "a"}),
            json.dumps({"timestamp": _stamp(T0 + 1), "level": "info", "message": "b"}),
            json.dumps({"timestamp": _stamp(T0 + 2), "level": "CRITICAL", "message": "c"}),
        ]
        (tmp_path / "app.log").write_text("\n".join(lines) + "\n")
        code, out, _ = run([str(tmp_path), "--level", "error"], capsys)
        assert code == 0 and [json.loads(x)["message"] for x in out.splitlines()] == ["a", "c"]

    def test_limit_stops_after_n_records(self, fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run([str(fleet.root), "--outcome", "failure", "--limit", "3"], capsys)
        assert code == 0
        assert _ns(out) == _expected(fleet, lambda r: r["attributes"]["mev.outcome"] == "failure")[:3]

    def test_table_has_readable_columns(self, fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(
            [str(fleet.root), "--trace-id", TRACE, "--format", "table", "--limit", "1"], capsys
        )
        assert code == 0
        header, row = out.splitlines()
        assert header.split() == [
            "time",
            "level",
            "operation",
            "exchange",
            "chain",
            "outcome",
            "duration_ms",
            "trace_id",
            "message",
        ]
        assert row.split()[:8] == [
            "2026-11-26T06:02:30.000Z",
            "INFO",
            "rpc",
            "sushiswap",
            "arbitrum",
            "success",
            "1.714",
            TRACE,
        ]
        assert row.endswith(" rpc bot-a success n=5")


class TestExitCodesAndDamage:
    def test_nothing_matched_exits_1(self, fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = run([str(fleet.root), "--trace-id", "0" * 31 + "f", "--chain", "base"], capsys)
        assert (code, out, err) == (1, "", "")

    @pytest.mark.parametrize(
        "args",
        [
            ["missing-dir"],
            ["{root}", "--since", "yesterday"],
            ["{root}", "--limit", "0"],
            ["{root}", "--level", "loud"],
            ["{root}", "--format", "xml"],
            ["{root}", "--since", "1h", "--until", "2h"],
            [],
        ],
    )
    def test_bad_arguments_exit_2_with_one_line(
        self, fleet: Fleet, capsys: pytest.CaptureFixture[str], args: list[str]
    ) -> None:
        code, out, err = run([a.format(root=fleet.root) for a in args], capsys)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "Traceback" not in err

    def test_unreadable_path_exits_2_from_a_real_process(self, tmp_path: Path) -> None:
        """A log file that cannot be opened (here a dangling link, as tests run as root)
        gives one line on stderr and exit 2."""
        (tmp_path / "bot.jsonl").write_text("")
        os.symlink(tmp_path / "gone", tmp_path / "bot.jsonl.2026-11-26T06-00-00.001.gz")
        done = subprocess.run(
            [sys.executable, "-m", "mevobs", "logs", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1 and "cannot read" in done.stderr

    def test_a_fifo_named_like_a_log_is_refused_not_waited_on(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        os.mkfifo(tmp_path / "bot.jsonl")
        code, out, err = run([str(tmp_path)], capsys)
        assert code == 2 and out == "" and "not a regular file" in err and err.count("\n") == 1

    def test_corrupt_lines_and_a_truncated_gzip_are_skipped_and_noted(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        good = [json.dumps(_record(n, T0 + n, "bot")) for n in range(40)]
        body = "\n".join(good[:20]).encode() + b"\n"
        (tmp_path / "bot.jsonl.2026-11-26T06-00-00.001.gz").write_bytes(gzip.compress(body)[:-30])
        text = "\n".join([good[20], "{not json", good[21], "[1, 2]", "\xff", *good[22:]]) + "\n"
        (tmp_path / "bot.jsonl").write_text(text)
        code, out, err = run([str(tmp_path)], capsys)
        assert code == 0
        found = [json.loads(x)["attributes"]["n"] for x in out.splitlines()]
        assert found[-20:] == list(range(20, 40))  # the whole current file, and some of the cut one
        assert found == sorted(found) and len(found) < 40
        notes = err.splitlines()
        assert len(notes) == 2
        assert "skipped 3 unreadable line(s)" in notes[0] and "bot.jsonl:2" in notes[0]
        assert "1 file(s) could not be read to the end" in notes[1]

    def test_an_overlong_line_is_skipped_without_reading_it_whole(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_logs_cli, "MAX_LINE", 1024)
        lines = [json.dumps(_record(0, T0, "bot")), "x" * 10_000, json.dumps(_record(1, T0 + 1, "bot"))]
        (tmp_path / "bot.jsonl").write_text("\n".join(lines) + "\n")
        code, out, err = run([str(tmp_path / "bot.jsonl")], capsys)
        assert code == 0 and [json.loads(x)["attributes"]["n"] for x in out.splitlines()] == [0, 1]
        assert "skipped 1 unreadable line(s)" in err


def _valid_gzip_prefix(cut: int) -> bytes:
    body = "".join(json.dumps(_record(n, T0 + n, "bot")) + "\n" for n in range(30)).encode()
    data = gzip.compress(body)
    return data[: cut % (len(data) + 1)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.one_of(
        st.binary(max_size=3000),
        st.builds(lambda b: b"\x1f\x8b" + b, st.binary(max_size=500)),
        st.integers(min_value=0, max_value=5000).map(_valid_gzip_prefix),
        st.lists(st.text(max_size=80), max_size=20).map(lambda xs: "\n".join(xs).encode("utf-8", "replace")),
    ),
    name=st.sampled_from(["bot.jsonl", "bot.jsonl.2026-11-26T06-00-00.001.gz", "x.log.gz"]),
    filters=st.sampled_from([[], ["--level", "error"], ["--trace-id", TRACE], ["--format", "table"]]),
)
def test_random_bytes_and_truncated_gzip_never_traceback(
    content: bytes, name: str, filters: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / name).write_bytes(content)
        code, _, err = run([directory, *filters], capsys)
    assert code in (0, 1), err
    assert "Traceback" not in err and len(err.splitlines()) <= 2


def test_broken_pipe_ends_quietly(fleet: Fleet) -> None:
    """Piped into a reader that stops early (head), the command exits without a traceback."""
    with subprocess.Popen(
        [sys.executable, "-m", "mevobs", "logs", str(fleet.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"{")
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 0
    assert err == b""


def test_output_stream_without_buffer_still_gets_json_lines(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["logs", str(fleet.root), "--trace-id", TRACE, "--limit", "2"]) == 0
    assert [json.loads(x)["attributes"]["n"] for x in out.getvalue().splitlines()] == [5, 5]
