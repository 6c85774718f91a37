"""A fresh virtualenv with ``pip install .`` (no extras) runs the README's quick start and
examples/quickstart.py, and ``import mevobs`` there loads no SDK, pydantic or YAML module.

It builds the virtualenv from PyPI (pip's cache makes a second run fast) from a copy of
the project, so the checkout gets no build directories. It is slow (tens of seconds) and
marked ``integration``, but it needs nothing besides pip and the network to PyPI: it
never skips.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("opentelemetry.sdk", "pydantic", "yaml")

pytestmark = pytest.mark.integration


def _readme_quick_start() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Use it") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README has no Python quick start"
    return match.group(1)


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("fresh")
    project = work / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env_dir = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(project)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return python


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "OTEL_", "MEVOBS_"))}
    return subprocess.run([str(python), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_the_readme_quick_start_runs(venv_python: Path, tmp_path: Path) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(_readme_quick_start(), encoding="utf-8")
    proc = _run(venv_python, str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"name": "arbitrage cross_dex"' in proc.stdout  # the console exporter printed the trace


def test_the_quickstart_example_runs(venv_python: Path, tmp_path: Path) -> None:
    proc = _run(venv_python, str(ROOT / "examples" / "quickstart.py"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"name": "arbitrage cross_dex"' in proc.stdout


def test_import_loads_no_sdk_pydantic_or_yaml(venv_python: Path, tmp_path: Path) -> None:
    """Per ``python -X importtime``, also once the decorators are in use."""
    for code in ("import mevobs", "import mevobs\n@mevobs.swap(exchange='x')\ndef f(): return 1\nf()"):
        proc = _run(venv_python, "-X", "importtime", "-c", code, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        modules = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if "|" in line]
        assert "mevobs" in modules
        loaded = [m for m in modules if m.startswith(FORBIDDEN)]
        assert loaded == [], (code, loaded)


def test_the_installed_distribution_is_consistent(venv_python: Path, tmp_path: Path) -> None:
    proc = _run(venv_python, "-m", "pip", "check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
