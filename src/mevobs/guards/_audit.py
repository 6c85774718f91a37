"""The audit trail: an append-only JSON-lines file, each record chained to the one
before by SHA-256, so an edited, removed or reordered record is detectable.

Every line is the canonical JSON (sorted keys, no spaces) of a record whose
``prev`` field is the previous record's ``hash``; ``hash`` is the SHA-256 of
the line without its ``hash`` field. Rotation renames the full file to
``<path>.<n>`` (six digits) and the chain continues in the new file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from mevobs import semconv
from mevobs._protocols import FinishedOperation
from mevobs._state import LOGGER, STATE

GENESIS = "0" * 64
_OP_FIELDS = {
    "tx_hash": semconv.ATTR_TX_HASH,
    "block": semconv.ATTR_BLOCK_NUMBER,
    "exchange": semconv.ATTR_EXCHANGE,
    "chain": semconv.ATTR_CHAIN,
    "strategy": semconv.ATTR_STRATEGY,
    "token_in": semconv.ATTR_TOKEN_IN,
    "token_out": semconv.ATTR_TOKEN_OUT,
    "amount_in": semconv.ATTR_AMOUNT_IN,
    "amount_out": semconv.ATTR_AMOUNT_OUT,
    "l1_fee_wei": semconv.ATTR_L1_FEE_WEI,
    "gas_price_wei": semconv.ATTR_GAS_PRICE_WEI,
}


def _digest(record: dict[str, Any]) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"


def rotated_files(path: Path) -> list[Path]:
    """``path``'s rotated files, oldest first."""
    found = [p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()]
    return sorted(found, key=lambda p: int(p.suffix[1:]))


class AuditLog:
    """Append-only, hash-chained JSON-lines audit trail.

    One record per finished operation that carries a transaction, gas or a net
    profit (time, service, operation, exchange, chain, tx hash, block, amounts,
    gas, fees, net profit, outcome), and one per :func:`mevobs.record_exposure`.
    Net profit is written on the outermost operation only (an arbitrage, not its
    swaps), so summing ``net_profit_wei`` over records counts each wei once.
    Writes are synchronous and flushed (``fsync=True`` also syncs each record to
    disk); reopening continues the chain, dropping a partial last line left by
    a crash mid-write (that record was never completely written).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        rotate_bytes: int = 64 * 1024 * 1024,
        fsync: bool = False,
        service_name: str = "mev-bot",
    ) -> None:
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.fsync = fsync
        self.service_name = service_name
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seq, self._prev = self._resume()
        self._file = self.path.open("a", encoding="utf-8")
        self._size = self.path.stat().st_size
        self._closed = False

    # ---------------------------------------------------------------- writing

    def write(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Append one record of ``kind`` with ``fields``; returns it with seq and hashes."""
        with self._lock:
            if self._closed:
                raise ValueError("audit log is closed")
            record: dict[str, Any] = {
                "seq": self._seq + 1,
                "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"),
                "service": self.service_name,
                "kind": kind,
                **{k: v for k, v in fields.items() if v is not None},
                "prev": self._prev,
            }
            record["hash"] = _digest(record)
            line = _line(record)
            if self._size and self._size + len(line) > self.rotate_bytes:
                self._rotate()
            self._file.write(line)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
            self._size += len(line.encode())
            self._seq, self._prev = record["seq"], record["hash"]
            return record

    def record_operation(self, op: FinishedOperation) -> None:
        """The operation hook: write a record if the operation carries a transaction,
        gas or a net profit. Never raises into the bot (failures are counted)."""
        try:
            attrs = op.attributes
            # Net profit belongs to the root of an operation tree (children hand theirs up).
            net = op.net_profit_wei if op.is_root else None
            if semconv.ATTR_TX_HASH not in attrs and not op.gas_cost_wei and net is None:
                return
            fields: dict[str, Any] = {"operation": op.kind, "outcome": op.outcome}
            for name, key in _OP_FIELDS.items():
                value = attrs.get(key)
                if value is not None:
                    fields[name] = str(value) if name not in ("block",) else value
            fields["gas_used"] = op.gas_used
            fields["gas_cost_wei"] = str(op.gas_cost_wei)
            if op.gross_profit_wei is not None:
                fields["gross_profit_wei"] = str(op.gross_profit_wei)
            if net is not None:
                fields["net_profit_wei"] = str(net)
            if op.expected_profit_wei is not None:
                fields["expected_profit_wei"] = str(op.expected_profit_wei)
            self.write("operation", fields)
        except Exception as exc:
            STATE.dropped("recorder_error", f"audit: {type(exc).__name__}")
            LOGGER.error("audit trail write failed: %s: %s", type(exc).__name__, exc)

    def record_exposure(self, token: str, amount: Decimal, chain: str | None) -> None:
        try:
            self.write("exposure", {"token": token, "amount": str(amount), "chain": chain})
        except Exception as exc:
            STATE.dropped("recorder_error", f"audit: {type(exc).__name__}")
            LOGGER.error("audit trail write failed: %s: %s", type(exc).__name__, exc)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._file.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- private

    def _rotate(self) -> None:
        self._file.close()
        existing = rotated_files(self.path)
        number = int(existing[-1].suffix[1:]) + 1 if existing else 1
        self.path.rename(self.path.with_name(f"{self.path.name}.{number:06d}"))
        self._file = self.path.open("a", encoding="utf-8")
        self._size = 0

    def _resume(self) -> tuple[int, str]:
        """Seq and hash of the last complete record, dropping a torn last line."""
        for candidate in [self.path, *reversed(rotated_files(self.path))]:
            if not candidate.exists() or candidate.stat().st_size == 0:
                continue
            data = candidate.read_bytes()
            if not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                LOGGER.warning(
                    "audit trail %s ends with a partial record (crash mid-write); dropping its %d bytes",
                    candidate,
                    len(data) - cut,
                )
                with candidate.open("r+b") as f:
                    f.truncate(cut)
                data = data[:cut]
                if not data:
                    continue
            last = json.loads(data[data.rstrip(b"\n").rfind(b"\n") + 1 :])
            return int(last["seq"]), str(last["hash"])
        return 0, GENESIS


# ------------------------------------------------------------------ verifying


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    message: str
    truncated: bool = False
    head: str = GENESIS


def read_records(paths: Sequence[str | Path]) -> tuple[list[tuple[str, int, str]], bool]:
    """Every line as (file, line number, text), files ordered by their first record's seq;
    and whether the newest file ends in a partial line (crash mid-write)."""
    files = []
    for p in paths:
        path = Path(p)
        lines = path.read_text(encoding="utf-8").split("\n")
        first_seq = 0
        for text in lines:
            if text.strip():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    first_seq = int(json.loads(text)["seq"])
                break
        files.append((first_seq, str(path), lines))
    files.sort(key=lambda f: f[0])
    out: list[tuple[str, int, str]] = []
    truncated = False
    for index, (_, name, lines) in enumerate(files):
        ends_clean = lines[-1] == ""
        body = lines[:-1] if ends_clean else lines
        if not ends_clean and index == len(files) - 1:
            truncated = True
            body = lines[:-1]
        out += [(name, n, text) for n, text in enumerate(body, start=1)]
    return out, truncated


def verify_chain(paths: Sequence[str | Path]) -> VerifyResult:
    """Check every record's hash and its link to the one before, across rotated files."""
    lines, truncated = read_records(paths)
    parsed: list[dict[str, Any]] = []
    for name, number, text in lines:
        try:
            record = json.loads(text)
            if not isinstance(record, dict) or "hash" not in record or "seq" not in record:
                raise ValueError
        except ValueError:
            return VerifyResult(
                False, len(parsed), f"BROKEN at {name}:{number}: not an audit record (altered)"
            )
        parsed.append(record)
    prev, expected_seq = GENESIS, None
    seqs = [r["seq"] for r in parsed]
    for i, ((name, number, _), record) in enumerate(zip(lines, parsed, strict=True)):
        where = f"{name}:{number} (seq {record['seq']})"
        body = {k: v for k, v in record.items() if k != "hash"}
        if _digest(body) != record["hash"]:
            return VerifyResult(False, i, f"BROKEN at {where}: record altered (hash mismatch)")
        if expected_seq is None:
            expected_seq = record["seq"]  # the oldest file kept may not start at 1
            prev = record["prev"]
        if record["prev"] != prev or record["seq"] != expected_seq:
            if record["seq"] > expected_seq and expected_seq not in seqs[i:]:
                gap = (
                    f"{expected_seq}"
                    if record["seq"] == expected_seq + 1
                    else f"{expected_seq}-{record['seq'] - 1}"
                )
                return VerifyResult(False, i, f"BROKEN at {where}: record(s) {gap} removed before it")
            if record["seq"] != expected_seq:
                return VerifyResult(
                    False, i, f"BROKEN at {where}: records reordered (expected seq {expected_seq})"
                )
            return VerifyResult(False, i, f"BROKEN at {where}: chain link altered (prev hash mismatch)")
        prev, expected_seq = record["hash"], record["seq"] + 1
    note = ""
    if truncated:
        last_file = lines[-1][0] if lines else paths[-1]
        note = f"; the last line of {last_file} is a partial record (crash mid-write), ignored"
    return VerifyResult(
        True, len(parsed), f"OK: {len(parsed)} records, chain intact, head {prev}{note}", truncated, prev
    )


def iter_records(paths: Sequence[str | Path]) -> Iterable[dict[str, Any]]:
    """Every complete record, oldest first (no verification: run verify_chain for that)."""
    lines, _ = read_records(paths)
    for _, _, text in lines:
        yield json.loads(text)
