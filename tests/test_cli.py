"""The ``mevobs`` command line: one error path, and a demo that honours the environment.

Every bad argument, bad setting (named by its environment variable) or unreadable
file gives exactly one line on stderr and exit code 2, never a traceback.
Regression tests for the defects of issue 12.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.otlp_capture import HttpCapture

import mevobs.cli


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("MEVOBS_", "OTEL_")):
            monkeypatch.delenv(name)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = mevobs.cli.main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MEVOBS_SAMPLE_RATIO", "abc"),
        ("MEVOBS_METRICS_PORT", "-3"),
        ("MEVOBS_ENABLED", "maybe"),
        ("MEVOBS_SECURITY", "{bad"),
        ("MEVOBS_SECURITY", '{"gas_sensitivity": -1}'),
        ("MEVOBS_LOG_LEVEL", "LOUD"),
        ("MEVOBS_EXPORTER", "zipkin"),
    ],
)
def test_a_bad_setting_names_its_variable(
    variable: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    code, out, err = run(capsys, "demo", "--duration", "0.25", "--exporter", "none")
    assert_one_line(code, err, f"mevobs: error: {variable}={value!r}: ")
    assert out == "" and list(tmp_path.iterdir()) == []  # refused before anything started


def test_a_bad_setting_through_the_installed_command(tmp_path: Path) -> None:
    env = {**os.environ, "MEVOBS_SAMPLE_RATIO": "abc"}
    proc = subprocess.run(
        [sys.executable, "-m", "mevobs", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert_one_line(proc.returncode, proc.stderr, "MEVOBS_SAMPLE_RATIO='abc'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["health", "notaurl"], "not an http(s) URL: 'notaurl'"),
        (["health", "ftp://127.0.0.1:1"], "not an http(s) URL"),
        (["health", "http://127.0.0.1:port"], "not an http(s) URL"),
        (["health", "http://127.0.0.1:1", "--timeout", "0"], "must be a positive number of seconds, got 0"),
        (["health", "http://127.0.0.1:1", "--timeout", "-1"], "must be a positive number of seconds, got -1"),
        (["health", "http://127.0.0.1:1", "--timeout", "nan"], "positive number of seconds"),
        (["health", "http://127.0.0.1:1", "--timeout", "inf"], "positive number of seconds"),
        (["health", "http://127.0.0.1:1", "--timeout", "soon"], "not a number: 'soon'"),
        ([], "a command is required, one of: demo,"),
        (["rules", "--config", "/nonexistent/alerts.yaml"], "/nonexistent/alerts.yaml"),
        (["audit", "verify", "/nonexistent/audit.jsonl"], "/nonexistent/audit.jsonl"),
        (["audit", "report", "/nonexistent/audit.jsonl"], "/nonexistent/audit.jsonl"),
        (["logs", "/nonexistent/bot.jsonl"], "/nonexistent/bot.jsonl"),
        (["demo", "--metrics-port", "0"], "between 1 and 65535"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *args)
    assert_one_line(code, err, fragment)
    assert out == ""


def test_an_unreachable_health_server_is_not_ready(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "health", "http://127.0.0.1:1", "--timeout", "2")
    assert code == 1 and out.startswith("not ready:") and err == ""


def test_dashboards_report_on_stderr_like_the_other_generators(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "dashboards", "-o", str(tmp_path))
    assert code == 0 and out == ""
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written
    assert sorted(err.splitlines()) == [f"wrote {tmp_path / name}" for name in written]
    code, out, err = run(capsys, "rules", "-o", str(tmp_path / "rules.yaml"))
    assert (code, out, err) == (0, "", f"wrote {tmp_path / 'rules.yaml'}\n")


@pytest.fixture
def http_receiver() -> Iterator[HttpCapture]:
    receiver = HttpCapture()
    receiver.start()
    yield receiver
    receiver.stop()


def test_the_demo_honours_the_otel_variables(http_receiver: HttpCapture, tmp_path: Path) -> None:
    """OTEL_SERVICE_NAME, the endpoint and the protocol reach the receiver; an invalid
    OTEL_* value is a warning on stderr, and the demo runs."""
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": "my-demo",
        "OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "2",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mevobs", "demo", "--duration", "0.5", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mevobs: OTEL_TRACES_SAMPLER_ARG='2' is invalid" in proc.stderr
    assert "exporter otlp-http" in proc.stderr and "Traceback" not in proc.stderr
    got = http_receiver.received
    assert {"traces", "metrics", "logs"} <= got.signals()
    assert {r["service.name"] for r in got.resources()} == {"my-demo"}
