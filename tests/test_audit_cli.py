"""``mevobs audit verify`` and ``mevobs audit report`` on damaged input: random bytes,
random JSON, truncated lines and wrongly typed amounts give exit 1 (verify: BROKEN at
file:line) or 2 (report: refused at file:line) with exactly one line, never a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mevobs.cli
from mevobs.guards._audit import AuditLog
from mevobs.guards._audit_format import canonical, seal


def json_values(*, finite: bool) -> st.SearchStrategy[Any]:
    floats = st.floats(allow_nan=not finite, allow_infinity=not finite)
    return st.recursive(
        st.none() | st.booleans() | st.integers() | floats | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )


# NaN and Infinity too: json.dumps writes them, and no reader should accept them.
JSON = json_values(finite=False)
WEI = re.compile(r"-?[0-9]{1,80}")
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def good_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("good") / "audit.jsonl"
    with AuditLog(path) as log:
        for i in range(5):
            log.write(
                "operation", {"operation": "swap", "gas_cost_wei": str(10**15 + i), "tx_hash": f"0x{i}"}
            )
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = mevobs.cli.main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[str, str]:
    """verify: exit 1 and one BROKEN line on stdout; report: exit 2 and one line on stderr."""
    code, out, err = run(capsys, "audit", "verify", str(path))
    assert (code, err) == (1, ""), (code, out, err)
    assert out.startswith(f"BROKEN at {path}:") and out.count("\n") == 1 and out.endswith("\n"), out
    code, rout, rerr = run(capsys, "audit", "report", str(path))
    assert (code, rout) == (2, ""), (code, rout, rerr)
    assert rerr.startswith(f"mevobs: error: refusing {path}:") and rerr.count("\n") == 1, rerr
    return out, rerr


@SETTINGS
@given(garbage=st.binary(max_size=200), at=st.integers(0, 5))
def test_random_bytes_are_reported_at_their_line(
    garbage: bytes, at: int, good_lines: list[bytes], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "audit.jsonl"
    lines = list(good_lines)
    lines.insert(at, garbage + b"\n")
    path.write_bytes(b"".join(lines))
    out, _ = assert_refused(capsys, path)
    # A newline inside the garbage splits it, but the first broken line is at or after ``at``.
    assert int(out.split(f"{path}:")[1].split(":")[0].split(" ")[0]) >= at + 1


@SETTINGS
@given(value=JSON)
def test_random_json_is_not_a_record(value: Any, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = workdir / "audit.jsonl"
    path.write_text(json.dumps(value) + "\n")
    assert_refused(capsys, path)


@SETTINGS
@given(index=st.integers(0, 4), cut=st.floats(0, 0.999))
def test_truncated_lines_are_reported(
    index: int, cut: float, good_lines: list[bytes], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "audit.jsonl"
    lines = list(good_lines)
    body = lines[index][:-1]
    lines[index] = body[: int(len(body) * cut)] + b"\n"
    path.write_bytes(b"".join(lines))
    out, _ = assert_refused(capsys, path)
    assert f"{path}:{index + 1}" in out


@SETTINGS
@given(
    value=json_values(finite=True).filter(
        lambda v: type(v) is not int and not (isinstance(v, str) and WEI.fullmatch(v))
    )
)
def test_report_refuses_an_amount_that_is_not_wei(
    value: Any, good_lines: list[bytes], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A well-sealed record (verify passes) whose amount is not a whole number of wei."""
    path = workdir / "audit.jsonl"
    record = json.loads(good_lines[0])
    record.pop("hash")
    record["gas_cost_wei"] = value
    line = canonical(seal(record, None))
    path.write_bytes(line + b"\n")
    shown = json.loads(line)["gas_cost_wei"]  # as read back: JSON sorts a dict's keys
    code, out, err = run(capsys, "audit", "report", str(path))
    assert (code, out) == (2, "")
    assert (
        err == f"mevobs: error: refusing {path}:1: gas_cost_wei is not a whole number of wei: {shown!r:.60}\n"
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json at all\n", "broken JSON"),
        (b"[1, 2, 3]\n", "not an audit record (a JSON array)"),
        (b'{"seq": 1, "prev": "x"}\n', "not an audit record (prev is not 64 hex digits)"),
    ],
)
def test_report_names_the_file_and_line_of_a_bad_record(
    line: bytes, reason: str, good_lines: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(good_lines[:3]) + line + good_lines[3])
    code, out, err = run(capsys, "audit", "report", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"mevobs: error: refusing {path}:4: {reason}") and err.count("\n") == 1


def test_a_flipped_byte_through_the_installed_command(good_lines: list[bytes], tmp_path: Path) -> None:
    """The subprocess case: one byte made undecodable, and a non-numeric amount."""
    path = tmp_path / "audit.jsonl"
    data = bytearray(b"".join(good_lines))
    data[len(good_lines[0]) + 20] = 0xFF
    path.write_bytes(bytes(data))
    for action, code, stream in (("verify", 1, "stdout"), ("report", 2, "stderr")):
        done = subprocess.run(
            [sys.executable, "-m", "mevobs", "audit", action, str(path)], capture_output=True, text=True
        )
        text = getattr(done, stream)
        assert done.returncode == code and done.stdout + done.stderr == text, done
        assert text.count("\n") == 1 and f"{path}:2" in text and "undecodable bytes" in text
    assert "Traceback" not in done.stderr


def test_verify_ignores_sidecar_files_a_glob_matches(
    good_lines: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``audit.jsonl*`` also matches the lock, checkpoint and quarantine files."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.write("operation", {"operation": "swap"})
    (tmp_path / "audit.jsonl.quarantine-20250101T000000000000Z").write_bytes(b"\xff garbage\n")
    files = sorted(str(p) for p in tmp_path.glob("audit.jsonl*"))
    assert len(files) == 4
    code, out, _ = run(capsys, "audit", "verify", *files)
    assert code == 0 and out.startswith("OK: 1 records") and "1 checkpoints match" in out
    code, out, _ = run(capsys, "audit", "report", *files)
    assert code == 0 and "total" in out


def test_a_missing_file_or_a_short_key_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, "audit", "verify", str(tmp_path / "nope.jsonl"))
    assert code == 2 and out == "" and err.count("\n") == 1
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    monkeypatch.setenv("MEVOBS_AUDIT_KEY", "short")
    code, out, err = run(capsys, "audit", "verify", str(path))
    assert (
        code == 2
        and out == ""
        and err == "mevobs: error: the audit key must be at least 16 bytes (e.g. `openssl rand -hex 32`)\n"
    )
