"""The profit report from an audit trail: transactions, reverts, gas, gross and net
profit by day, exchange or chain, and the latest inventory per token (risk exposure).

A record whose amounts are not whole numbers of wei, or a line that is not a record,
stops the report with :class:`AuditFormatError` naming its file and line: a total
that silently skipped a record would be wrong."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mevobs._money import wei_to_eth_decimal
from mevobs.guards._audit_verify import AuditFormatError, iter_lines

GroupBy = Literal["day", "exchange", "chain"]
_WEI = re.compile(r"-?[0-9]+")
COLUMNS = ("group", "operations", "transactions", "reverted", "gas_eth", "gross_profit_eth", "net_profit_eth")


def _eth(wei: int) -> str:
    return format(wei_to_eth_decimal(wei), "f")


def _wei(record: dict[str, Any], name: str) -> int:
    """An amount as written by the audit log: a decimal string (or an integer) of wei."""
    value = record.get(name, 0)
    if type(value) is int:
        return value
    if isinstance(value, str) and _WEI.fullmatch(value) and len(value) <= 80:
        return int(value)
    raise ValueError(f"{name} is not a whole number of wei: {value!r:.60}")


@dataclass
class Row:
    group: str
    operations: int = 0
    gas_wei: int = 0
    gross_wei: int = 0
    net_wei: int = 0
    _txs: set[str] = field(default_factory=set, repr=False)
    _reverted_txs: set[str] = field(default_factory=set, repr=False)

    @property
    def transactions(self) -> int:
        return len(self._txs)

    @property
    def reverted(self) -> int:
        return len(self._reverted_txs)

    def add(self, record: dict[str, Any]) -> None:
        """Count one operation record; ValueError (before changing anything) if it is malformed."""
        tx = record.get("tx_hash")
        if tx is not None and not isinstance(tx, str):
            raise ValueError(f"tx_hash is not a string: {tx!r:.60}")
        gas, gross, net = (_wei(record, n) for n in ("gas_cost_wei", "gross_profit_wei", "net_profit_wei"))
        self.operations += 1
        if tx:
            # An arbitrage and its swap may name the same transaction: count it once.
            self._txs.add(tx)
            if record.get("outcome") == "reverted":
                self._reverted_txs.add(tx)
        self.gas_wei += gas
        self.gross_wei += gross
        self.net_wei += net

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "operations": self.operations,
            "transactions": self.transactions,
            "reverted": self.reverted,
            "gas_eth": _eth(self.gas_wei),
            "gross_profit_eth": _eth(self.gross_wei),
            "net_profit_eth": _eth(self.net_wei),
        }


@dataclass
class AuditReport:
    rows: list[Row]
    total: Row
    exposure: dict[str, dict[str, str]] = field(default_factory=dict)


def audit_report(paths: Sequence[str | Path], *, by: GroupBy = "day") -> AuditReport:
    """Totals per group, exact in wei; every record is counted once, every transaction
    hash once (transactions, reverted). Raises :class:`AuditFormatError` at a bad record."""
    groups: dict[str, Row] = {}
    total = Row("total")
    exposure: dict[str, dict[str, str]] = {}
    for file, line, record in iter_lines(paths):
        if record.get("kind") == "exposure":
            key = f"{record.get('token')}@{record.get('chain', '')}".rstrip("@")
            exposure[key] = {"amount": str(record.get("amount")), "time": str(record.get("time"))}
            continue
        if record.get("kind") != "operation":
            continue
        name = str(record.get("time", ""))[:10] if by == "day" else str(record.get(by) or "(none)")
        try:
            total.add(record)
        except ValueError as exc:
            raise AuditFormatError(f"{file}:{line}", str(exc)) from None
        groups.setdefault(name, Row(name)).add(record)
    return AuditReport(sorted(groups.values(), key=lambda r: r.group), total, exposure)


def report_text(paths: Sequence[str | Path], *, by: GroupBy = "day", fmt: str = "table") -> str:
    report = audit_report(paths, by=by)
    rows = [r.as_dict() for r in (*report.rows, report.total)]
    if fmt == "json":
        body = {"by": by, "rows": rows[:-1], "total": rows[-1], "exposure": report.exposure}
        return json.dumps(body, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines.append("  ".join("-" * widths[c] for c in COLUMNS))
    for r in rows:
        lines.append(
            "  ".join(
                str(r[c]).rjust(widths[c]) if c != "group" else str(r[c]).ljust(widths[c]) for c in COLUMNS
            )
        )
    if report.exposure:
        lines += ["", "exposure (latest per token):"]
        lines += [
            f"  {token}: {info['amount']} (at {info['time']})"
            for token, info in sorted(report.exposure.items())
        ]
    return "\n".join(lines) + "\n"
