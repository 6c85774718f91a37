"""What importing mevobs loads: nothing heavy until it is used.

``import mevobs`` loads two small modules; the decorators bring the core and the
OpenTelemetry API (never the SDK, pydantic or YAML); the pytest plugin adds nothing
to a pytest run but its own module. docs/performance.md ("Import time") has the
measured times; these tests pin down the module sets that make them so.
"""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("opentelemetry.sdk", "pydantic", "yaml", "grpc", "google.protobuf")


def _new_modules(setup: str, code: str) -> list[str]:
    """Modules ``code`` loads after ``setup``, the standard library's left out."""
    script = (
        f"import sys\n{setup}\nbefore = set(sys.modules)\n{code}\n"
        "new = set(sys.modules) - before\n"
        "print('\\n'.join(sorted(m for m in new if m.split('.')[0] not in sys.stdlib_module_names)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_import_mevobs_loads_almost_nothing() -> None:
    assert _new_modules("", "import mevobs") == ["mevobs", "mevobs._version"]


def test_the_pytest_plugin_adds_only_itself_to_a_pytest_run() -> None:
    new = _new_modules("import pytest", "import mevobs._pytest_plugin")
    assert new == ["mevobs", "mevobs._pytest_plugin", "mevobs._version"]


def test_instrumented_code_loads_no_sdk_pydantic_or_yaml() -> None:
    new = _new_modules(
        "",
        "import mevobs\n"
        "@mevobs.swap(exchange='x')\n"
        "def f():\n"
        "    mevobs.current_operation().record_gas(gas_used=1, effective_gas_price_wei=1)\n"
        "f()\n"
        "mevobs.shutdown()\n"
        "with mevobs.rpc(method='eth_call'):\n"
        "    pass\n",
    )
    assert "opentelemetry.trace" in new and "wrapt" in new
    assert [m for m in new if m.startswith(FORBIDDEN)] == []


def test_every_public_name_resolves() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mevobs\nfor n in mevobs.__all__: getattr(mevobs, n)\n"
            "print(len(mevobs.__all__) == len(mevobs._LAZY) + 1 == len(set(mevobs.__all__)))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
