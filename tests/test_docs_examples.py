"""Every Python example in README.md and docs/ runs, so the docs cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for i, block in enumerate(BLOCK.findall(page.read_text())):
            found.append((f"{page.name}#{i}", block))
    return found


@pytest.mark.parametrize(("where", "code"), _examples(), ids=[w for w, _ in _examples()])
def test_doc_example_runs(where: str, code: str, tmp_path: Path) -> None:
    if "def test_" in code:
        # A pytest example: run it as a test file through the installed plugin.
        target = tmp_path / "test_example.py"
        target.write_text(code)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target)]
    else:
        target = tmp_path / "example.py"
        target.write_text(code)
        cmd = [sys.executable, str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, f"{where} failed:\n{proc.stdout}\n{proc.stderr}"


def test_quickstart_example_prints_its_telemetry() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"name": "arbitrage cross_dex"' in proc.stdout
    assert '"mev.operation.duration"' in proc.stdout or "mev.operation.duration" in proc.stdout
    assert '"logger":"mevobs"' in proc.stdout
    assert "[REDACTED]" in proc.stdout and "0123456789abcdef0123456789abcdef" not in proc.stdout


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_every_example_runs(script: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "s3cr3tKeyInTheUrl0123" not in proc.stdout + proc.stderr
