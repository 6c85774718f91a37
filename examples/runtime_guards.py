"""Runtime guards as the demo uses them: a circuit breaker on the executor, readiness
checks, the security detectors with a contract allowlist, and the audit trail.

Run: python examples/runtime_guards.py
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import mevobs

ROUTER = "0x" + "77" * 20
audit_path = Path(tempfile.mkdtemp()) / "audit.jsonl"

breaker = mevobs.CircuitBreaker(
    "executor", max_consecutive_failures=3, trip_on_security=("unexpected_contract",), cooldown_seconds=60
)
breaker.on_change(lambda t: print(f"breaker {t.old} -> {t.new}: {t.reason}"))
mevobs.register_health_check("circuit", lambda: breaker.state != "open")

telemetry = mevobs.configure(
    service_name="guards-example",
    exporter="none",
    log_destination="none",
    health_port=0,
    audit_path=str(audit_path),
    contract_allowlist={"ethereum": [ROUTER]},
)


@mevobs.arbitrage(strategy="cross_dex", chain="ethereum", breaker=breaker)
def execute(to: str) -> None:
    with mevobs.swap(exchange="uniswap_v2", chain="ethereum") as op:
        op.record_tx(tx_hash="0x" + "ab" * 32, status=1, to=to)
        op.record_gas(gas_used=140_000, effective_gas_price_wei=15 * 10**9)
    mevobs.current_operation().record_profit(gross_wei=4 * 10**15)


def ready() -> int:
    assert telemetry.health is not None
    try:
        with urllib.request.urlopen(telemetry.health.url + "/readyz") as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


execute(ROUTER)
print("ready:", ready())  # 200
execute("0x" + "66" * 20)  # an unknown contract: CRITICAL security event, breaker trips (held)
try:
    execute(ROUTER)
except mevobs.CircuitOpenError as err:
    print("refused:", err)
print("ready:", ready())  # 503 while the breaker is open
telemetry.shutdown()
mevobs.unregister_health_check("circuit")

print(mevobs.verify_audit([audit_path]).message)
print(json.dumps(json.loads(audit_path.read_text().splitlines()[0]), indent=1)[:400])
