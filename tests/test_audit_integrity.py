"""Audit trail integrity: forgeries that a plain hash chain misses (a chain re-hashed after
an edit, dropped oldest or newest records, a dropped rotated file, records moved between
files) are caught by the key and the checkpoints; two processes share one log; a corrupt
last line is quarantined at start-up; verify and report answer any input with one line."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mevobs
import mevobs.cli
from mevobs._settings import Settings
from mevobs.guards._audit import AuditLog, rotated_files, verify_audit
from mevobs.guards._audit_format import canonical, seal

N = 10_000
KEY = "5f0c1e7a9b3d4c2e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e"


def write_log(path: Path, n: int = N, **kwargs: Any) -> Path:
    with AuditLog(path, **kwargs) as log:
        for i in range(n):
            log.write(
                "operation",
                {
                    "operation": "arbitrage",
                    "exchange": ("uniswap_v2", "curve")[i % 2],
                    "tx_hash": f"0x{i:064x}",
                    "outcome": "success",
                    "gas_cost_wei": str(10**15 + i),
                    "net_profit_wei": str(10**16 - i),
                },
            )
    return path


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three 10 000-record logs: unkeyed, keyed, and unkeyed rotated into several files."""
    base = tmp_path_factory.mktemp("logs")
    return {
        "plain": write_log(base / "plain" / "audit.jsonl").parent,
        "keyed": write_log(base / "keyed" / "audit.jsonl", key=KEY).parent,
        "rotated": write_log(base / "rotated" / "audit.jsonl", rotate_bytes=512 * 1024).parent,
    }


def copy_of(logs: dict[str, Path], name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(logs[name], target)
    return target / "audit.jsonl"


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """Run ``mevobs`` in-process; the exit code and its whole output, which must be one line."""
    capsys.readouterr()
    try:
        code = mevobs.cli.main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    text = out + err
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert "Traceback" not in text
    return code, text


def all_files(path: Path) -> list[Path]:
    """What ``audit.jsonl*`` matches in a shell: rotated files, the live file and its sidecars."""
    return sorted(path.parent.glob(path.name + "*"))


def rewrite(path: Path, index: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit record ``index`` and recompute its hash and every later one's prev and hash, as a
    forger without the key can (a ``mac`` is kept as it was: it cannot be recomputed)."""
    lines = path.read_text().splitlines()
    prev = None
    for i in range(index, len(lines)):
        record = json.loads(lines[i])
        if i == index:
            change(record)
        if prev is not None:
            record["prev"] = prev
        mac = record.pop("mac", None)
        record.pop("hash")
        record = seal(record, None)
        if mac is not None:
            record["mac"] = mac
        prev = record["hash"]
        lines[i] = canonical(record).decode()
    path.write_text("\n".join(lines) + "\n")


def bump_profit(record: dict[str, Any]) -> None:
    record["net_profit_wei"] = str(int(record["net_profit_wei"]) + 10**18)


class TestForgeries:
    def test_intact_logs_verify(
        self, logs: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The reference logs verify, MACs and checkpoints included, so every failure below
        is caused by its forgery."""
        code, text = cli(capsys, "audit", "verify", logs["plain"] / "audit.jsonl")
        assert code == 0 and f"OK: {N} records" in text and "10 checkpoints match" in text
        code, text = cli(capsys, "audit", "verify", *all_files(logs["rotated"] / "audit.jsonl"))
        assert code == 0 and f"OK: {N} records" in text and "checkpoints match" in text
        monkeypatch.setenv("MEVOBS_AUDIT_KEY", KEY)
        code, text = cli(capsys, "audit", "verify", logs["keyed"] / "audit.jsonl")
        assert code == 0 and "MACs verified" in text and "10 checkpoints match" in text

    def test_keyed_edit_with_recomputed_hashes_fails_its_mac(
        self, logs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = copy_of(logs, "keyed", tmp_path)
        rewrite(path, 4321, bump_profit)
        key_file = tmp_path / "key"
        key_file.write_text(KEY + "\n")
        code, text = cli(capsys, "audit", "verify", path, "--key-file", key_file)
        assert code == 1
        assert f"BROKEN at {path}:4322 (seq 4322): MAC does not verify" in text

    def test_unkeyed_edit_with_recomputed_hashes_fails_the_checkpoint(
        self, logs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without a key the re-hashed chain is self-consistent; the next checkpoint's head
        is not (seq 5000 is the first checkpoint after the edited seq 4322)."""
        path = copy_of(logs, "plain", tmp_path)
        rewrite(path, 4321, bump_profit)
        assert verify_audit([path], use_checkpoints=False).ok  # what the plain chain alone sees
        code, text = cli(capsys, "audit", "verify", path)
        assert code == 1
        assert (
            f"BROKEN at {path}:5000 (seq 5000): hash differs from the checkpoint at {path}.checkpoints:5"
            in text
        )
        assert "seq 4001-5000 was altered and the chain re-hashed" in text

    def test_dropping_the_oldest_40_records(
        self, logs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = copy_of(logs, "plain", tmp_path)
        path.write_text("".join(path.read_text().splitlines(keepends=True)[40:]))
        code, text = cli(capsys, "audit", "verify", path)
        assert code == 1
        assert f"BROKEN at {path}:1 (seq 41): record(s) 1-40 dropped before it" in text
        assert f"the checkpoint at {path}.checkpoints:1 names first seq 1" in text

    def test_dropping_the_oldest_rotated_file(
        self, logs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = copy_of(logs, "rotated", tmp_path)
        oldest = rotated_files(path)[0]
        first_kept = json.loads(rotated_files(path)[1].read_text().splitlines()[0])["seq"]
        oldest.unlink()
        code, text = cli(capsys, "audit", "verify", *all_files(path))
        assert code == 1
        assert f"{oldest.name} (seq 1-{first_kept - 1}), named by this checkpoint, is missing" in text
        assert f"BROKEN at {path}.checkpoints:" in text

    def test_deleting_the_newest_record(
        self, logs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = copy_of(logs, "plain", tmp_path)
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
        code, text = cli(capsys, "audit", "verify", path)
        assert code == 1
        assert f"BROKEN at {path}:{N - 1} (seq {N - 1}): record(s) {N} deleted after it" in text

    def test_swapping_records_between_two_files(
        self, logs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = copy_of(logs, "rotated", tmp_path)
        first, second = rotated_files(path)[:2]
        a, b = first.read_text().splitlines(keepends=True), second.read_text().splitlines(keepends=True)
        a[100], b[100] = b[100], a[100]
        first.write_text("".join(a))
        second.write_text("".join(b))
        code, text = cli(capsys, "audit", "verify", *all_files(path))
        assert code == 1
        moved_in = json.loads(a[100])["seq"]  # now at line 101 of the first file
        assert f"BROKEN at {first}:101 (seq {moved_in}): records reordered (expected seq 101)" in text

    def test_moving_a_record_to_the_next_file(
        self, logs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Order is kept, so the chain is intact; the checkpoints' file ranges are not."""
        path = copy_of(logs, "rotated", tmp_path)
        first, second = rotated_files(path)[:2]
        a = first.read_text().splitlines(keepends=True)
        first.write_text("".join(a[:-1]))
        second.write_text(a[-1] + second.read_text())
        assert verify_audit([*rotated_files(path), path], use_checkpoints=False).ok
        code, text = cli(capsys, "audit", "verify", *all_files(path))
        last = json.loads(a[-2])["seq"]
        assert code == 1
        assert f"BROKEN at {first}:{len(a) - 1} (seq {last}): records moved between files" in text

    def test_keyed_checkpoint_rewritten_without_the_key(
        self,
        logs: dict[str, Path],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Deleting the newest record and re-sealing the checkpoint to match fails its MAC."""
        path = copy_of(logs, "keyed", tmp_path)
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:-1]))
        ck_path = Path(f"{path}.checkpoints")
        cks = ck_path.read_text().splitlines()
        last = json.loads(cks[-1])
        last.update(seq=N - 1, records=N - 1, head=json.loads(lines[-2])["hash"])
        mac = last.pop("mac")
        last.pop("hash")
        cks[-1] = canonical({**seal(last, None), "mac": mac}).decode()
        ck_path.write_text("\n".join(cks) + "\n")
        monkeypatch.setenv("MEVOBS_AUDIT_KEY", KEY)
        code, text = cli(capsys, "audit", "verify", path)
        assert code == 1 and f"BROKEN at {ck_path}:{len(cks)}: checkpoint MAC does not verify" in text

    def test_stripped_macs_and_a_wrong_key_are_reported(self, logs: dict[str, Path], tmp_path: Path) -> None:
        path = copy_of(logs, "keyed", tmp_path)
        wrong = verify_audit([path], key="another key, 16+ bytes long")
        assert not wrong.ok and f"{path}.checkpoints:1: checkpoint MAC does not verify" in wrong.message
        wrong = verify_audit([path], key="another key, 16+ bytes long", use_checkpoints=False)
        assert not wrong.ok and f"{path}:1 (seq 1): MAC does not verify" in wrong.message
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text(
            "".join(canonical({k: v for k, v in r.items() if k != "mac"}).decode() + "\n" for r in lines)
        )
        stripped = verify_audit([path], key=KEY, use_checkpoints=False)
        assert not stripped.ok and "no record carries a MAC, but a key was given" in stripped.message


class TestCheckpoints:
    def test_checkpoints_every_n_records_and_on_close(self, tmp_path: Path) -> None:
        path = write_log(tmp_path / "audit.jsonl", 250, checkpoint_every=100)
        cks = [json.loads(line) for line in Path(f"{path}.checkpoints").read_text().splitlines()]
        assert [(c["n"], c["seq"], c["reason"]) for c in cks] == [
            (1, 100, "periodic"),
            (2, 200, "periodic"),
            (3, 250, "close"),
        ]
        heads = {r["seq"]: r["hash"] for r in map(json.loads, path.read_text().splitlines())}
        assert all(c["head"] == heads[c["seq"]] and c["first_seq"] == 1 for c in cks)
        assert cks[-1]["records"] == 250 and cks[-1]["files"] == [{"name": "audit.jsonl", "first": 1}]

    def test_checkpoints_go_to_the_log_and_verify_from_it(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The INFO log copy of each checkpoint (JSON-formatted, scrubbed) is enough to catch a
        deleted newest record after the checkpoint file itself was deleted."""
        with caplog.at_level(logging.INFO, logger="mevobs"):
            path = write_log(tmp_path / "audit.jsonl", 300, checkpoint_every=100)
        ck_path = Path(f"{path}.checkpoints")
        logged = [r for r in caplog.records if r.getMessage().startswith("audit checkpoint {")]
        assert [r.levelno for r in logged] == [logging.INFO] * 3
        formatter = mevobs.JsonFormatter("bot")
        bot_log = tmp_path / "bot.log"
        bot_log.write_text("noise\n" + "".join(formatter.format(r) + "\n" for r in logged))
        assert [
            r.getMessage()[len("audit checkpoint ") :] for r in logged
        ] == ck_path.read_text().splitlines()
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
        ck_path.unlink()
        assert verify_audit([path]).ok  # nothing left on the machine to compare with
        code, text = cli(capsys, "audit", "verify", path, "--checkpoints", bot_log)
        assert code == 1 and "record(s) 300 deleted after it" in text

    def test_the_key_never_leaves_the_process(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The key set through the environment seals records, and appears in no record,
        checkpoint, log line or repr."""
        monkeypatch.setenv("MEVOBS_AUDIT_KEY", KEY)
        path = tmp_path / "audit.jsonl"
        with caplog.at_level(logging.DEBUG, logger="mevobs"):
            telemetry = mevobs.configure(exporter="none", audit_path=str(path), log_destination="none")
            with mevobs.swap(exchange="curve") as op:
                op.record_tx(tx_hash="0x" + "cd" * 32, status=1)
            assert telemetry.audit is not None and telemetry.audit.keyed
            text = repr(telemetry.settings) + repr(vars(telemetry.audit))
            telemetry.shutdown()
        assert "mac" in json.loads(path.read_text())
        assert verify_audit([path], key=KEY).ok
        for where in (path.read_text(), Path(f"{path}.checkpoints").read_text(), caplog.text, text):
            assert KEY not in where

    def test_key_settings(self, tmp_path: Path) -> None:
        key_file = tmp_path / "key"
        key_file.write_text(KEY + "\n")
        settings = Settings.load(
            {"MEVOBS_AUDIT_KEY_FILE": str(key_file), "MEVOBS_AUDIT_CHECKPOINT_EVERY": "7"}
        )
        assert settings.audit_key_file == str(key_file) and settings.audit_checkpoint_every == 7
        assert KEY not in repr(Settings.load({"MEVOBS_AUDIT_KEY": KEY}))
        with pytest.raises(ValueError, match="not both"):
            AuditLog.from_settings(
                Settings.load(audit_path=str(tmp_path / "a"), audit_key=KEY, audit_key_file="k")
            )
        with pytest.raises(ValueError, match="at least 16 bytes"):
            AuditLog(tmp_path / "b", key="short")


WRITER = """
import sys
from mevobs.guards._audit import AuditLog
with AuditLog(sys.argv[1], rotate_bytes=int(sys.argv[3]), key=sys.argv[4]) as log:
    for i in range(10_000):
        log.write("operation", {"operation": "swap", "tx_hash": sys.argv[2] + str(i)})
"""


def test_two_processes_appending_10000_records_each_verify(tmp_path: Path) -> None:
    """The flock serialises appends and each one continues the chain from the tail the
    other wrote, through rotations done by either process."""
    path = tmp_path / "audit.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(mevobs.__file__).parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(1 << 20), KEY], env=env)
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    files = [*rotated_files(path), path]
    assert len(files) > 1
    result = verify_audit(files, key=KEY)
    assert result.ok and result.records == 20_000, result.message
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(r["seq"] for r in records) == list(range(1, 20_001))
    assert {r["tx_hash"][0] for r in records} == {"a", "b"}


FORKER = """
import os, sys
from mevobs.guards._audit import AuditLog
log = AuditLog(sys.argv[1])
log.write("operation", {"operation": "swap"})
pid = os.fork()
for i in range(3000):
    log.write("operation", {"operation": "swap", "tx_hash": f"{pid}-{i}"})
if pid == 0:
    log.close()
    os._exit(0)
os.waitpid(pid, 0)
log.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_sharing_the_log_takes_its_own_lock(tmp_path: Path) -> None:
    """flock belongs to the open file, which fork shares: without a lock file opened anew in
    the child, parent and child append at once and the chain breaks. (A fresh interpreter
    forks, as pytest's process may run threads.)"""
    path = tmp_path / "audit.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(mevobs.__file__).parents[1])}
    subprocess.run([sys.executable, "-c", FORKER, str(path)], env=env, check=True, timeout=120)
    result = verify_audit([path])
    assert result.ok and result.records == 6001, result.message


class TestQuarantine:
    @pytest.mark.parametrize(
        "garbage",
        [b'{"seq": 51, "kind": "oper\n', b"\xff\xfe\x00 not text\n", b"[1, 2, 3]\n", b"\n\n"],
        ids=["broken-json", "undecodable", "json-list", "blank-lines"],
    )
    def test_a_corrupt_last_line_is_quarantined_at_start_up(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, garbage: bytes
    ) -> None:
        path = write_log(tmp_path / "audit.jsonl", 50)
        with path.open("ab") as f:
            f.write(garbage)
        lines = garbage.count(b"\n")
        dropped_before = mevobs.dropped_counts().get("invalid_value", 0)
        with caplog.at_level(logging.WARNING, logger="mevobs"):
            telemetry = mevobs.configure(exporter="none", audit_path=str(path), log_destination="none")
        assert telemetry.audit is not None
        assert telemetry.audit.quarantined == lines
        [moved] = telemetry.audit.quarantine_files
        assert moved.read_bytes() == garbage
        assert mevobs.dropped_counts().get("invalid_value", 0) - dropped_before == lines
        assert any("not audit records; moved to" in r.getMessage() for r in caplog.records)
        mevobs.record_exposure("WETH", Decimal(1), chain="ethereum")
        telemetry.shutdown()
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert [(r["seq"], r["kind"]) for r in records[-2:]] == [(51, "quarantine"), (52, "exposure")]
        assert records[-2]["quarantine_file"] == moved.name and records[-2]["bytes"] == len(garbage)
        result = verify_audit([path])
        assert result.ok and result.records == 52
        assert f"1 quarantine record(s), first at seq 51: {lines} line(s)" in result.message

    def test_garbage_written_by_another_process_is_quarantined_before_the_next_append(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "audit.jsonl"
        with AuditLog(path) as log:
            log.write("operation", {"operation": "swap"})
            with path.open("ab") as f:
                f.write(b"not a record\n")
            record = log.write("operation", {"operation": "swap"})
        assert record["seq"] == 3 and log.quarantined == 1
        assert verify_audit([path]).ok

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(garbage=st.binary(max_size=300))
    def test_any_tail_lets_the_log_open_and_verify(self, garbage: bytes, tmp_path_factory: Any) -> None:
        """Whatever bytes end the file, opening it never raises, and after one more record the
        log verifies (the garbage quarantined, or dropped as a partial line, and said so)."""
        path = tmp_path_factory.mktemp("tail") / "audit.jsonl"
        write_log(path, 3)
        with path.open("ab") as f:
            f.write(garbage)
        with AuditLog(path) as log:
            record = log.write("operation", {"operation": "swap"})
        complete = garbage[: garbage.rfind(b"\n") + 1]
        assert log.quarantined == complete.count(b"\n")
        assert record["seq"] == 4 + (1 if complete else 0)
        result = verify_audit([path])
        assert result.ok and result.records == record["seq"], result.message
        assert ("quarantine record(s)" in result.message) == bool(complete)

    def test_start_up_warns_when_a_file_the_last_checkpoint_named_is_gone(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = write_log(tmp_path / "audit.jsonl", 2000, rotate_bytes=64 * 1024)
        oldest = rotated_files(path)[0]
        oldest.unlink()
        with caplog.at_level(logging.WARNING, logger="mevobs"), AuditLog(path, rotate_bytes=64 * 1024):
            pass
        assert f"{oldest.name}, named by the last checkpoint, missing" in caplog.text
