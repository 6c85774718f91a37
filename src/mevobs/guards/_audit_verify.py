"""Verifying an audit trail: every record's hash and chain link, its MAC when a key is
given, and the files against the signed checkpoints, which is what makes dropped oldest
or newest records, a dropped rotated file, records moved between files and a chain
re-hashed after an edit visible. Also the checked record reader the profit report uses.

Reading is streamed and line length bounded (``MAX_LINE``), so memory does not grow
with the log; any input yields a result naming ``file:line``, never an exception
(except ``OSError`` for files that cannot be read).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mevobs.guards._audit_format import (
    GENESIS,
    AuditKey,
    base_name,
    body_of,
    canonical,
    checkpoint_path_for,
    checkpoint_problem,
    first_seq,
    load_key,
    parse_line,
    read_line,
    record_problem,
    split_paths,
)

_LOG_MARK = "audit checkpoint {"


class AuditFormatError(ValueError):
    """A line of an audit file that is not a well-formed record; ``where`` is ``file:line``."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    message: str
    truncated: bool = False
    head: str = GENESIS
    #: Checkpoints checked against the files.
    checkpoints: int = 0
    #: Whether MACs were checked (a key was given).
    keyed: bool = False


class _Lines:
    """(file, line number, bytes) of every line of ``files`` in the given order; the newest
    file's partial last line (a crash mid-write) is skipped and remembered."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = files
        self.truncated_in: str | None = None

    def __iter__(self) -> Iterator[tuple[str, int, bytes | None]]:
        for index, path in enumerate(self.files):
            with path.open("rb") as f:
                number = 0
                while (got := read_line(f)) is not None:
                    number += 1
                    raw, complete = got
                    if not complete and index == len(self.files) - 1:
                        self.truncated_in = str(path)
                        break
                    yield str(path), number, raw


def _ordered(files: Iterable[Path]) -> list[Path]:
    return sorted(files, key=first_seq)  # by first seq: the order given does not matter


def _checked(name: str, number: int, raw: bytes | None) -> dict[str, Any]:
    try:
        value = parse_line(raw)
    except ValueError as exc:
        raise AuditFormatError(f"{name}:{number}", str(exc)) from None
    problem = record_problem(value)
    if problem:
        raise AuditFormatError(f"{name}:{number}", problem)
    return dict(value)


def iter_lines(paths: Sequence[str | Path]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file, line number, record) of every complete record, oldest first. Raises
    :class:`AuditFormatError` at the first line that is not a well-formed record (no hash
    or MAC check: run :func:`verify_audit` for that)."""
    audit, _ = split_paths(paths)
    for name, number, raw in _Lines(_ordered(audit)):
        yield name, number, _checked(name, number, raw)


def iter_records(paths: Sequence[str | Path]) -> Iterator[dict[str, Any]]:
    """Every complete record, oldest first (no verification: run verify_audit for that)."""
    for _, _, record in iter_lines(paths):
        yield record


def read_records(paths: Sequence[str | Path]) -> tuple[list[tuple[str, int, str]], bool]:
    """Every line as (file, line number, text), files ordered by their first record's seq;
    and whether the newest file ends in a partial line. Loads everything: prefer iter_lines."""
    audit, _ = split_paths(paths)
    lines = _Lines(_ordered(audit))
    out = [(n, i, raw.decode("utf-8", "replace") if raw is not None else "") for n, i, raw in lines]
    return out, lines.truncated_in is not None


# ----------------------------------------------------------------- checkpoints


@dataclass
class _Checkpoints:
    path: Path | None = None
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    by_seq: dict[int, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)


def _from_log_line(raw: bytes | None) -> Any:
    """The checkpoint in a line of the bot's log (JSON or text format), or None."""
    try:
        text = raw.decode("utf-8") if raw is not None else ""
    except UnicodeDecodeError:
        return None
    if _LOG_MARK not in text:
        return None
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            text = doc["message"]
    except (ValueError, RecursionError):
        pass  # a text-format log line
    start = text.find(_LOG_MARK)
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start + len(_LOG_MARK) - 1)
    except (ValueError, RecursionError):
        return None
    return value


def _load_checkpoints(path: Path, key: AuditKey | None, log: str) -> _Checkpoints | str:
    """The checkpoints in ``path`` with their seal and chain checked, or why they fail.
    A ``*.checkpoints`` file must hold nothing else; any other file is read as the bot's
    log, where checkpoints are picked out of the lines and gaps are allowed."""
    strict = path.name.endswith(".checkpoints")
    found = _Checkpoints(path)
    last: dict[str, Any] | None = None
    sealed_seen = False
    with path.open("rb") as f:
        number = 0
        while (got := read_line(f)) is not None:
            number += 1
            raw, complete = got
            where = f"{path}:{number}"
            if not complete:
                break  # a partial last line: a crash mid-write
            if strict:
                try:
                    value = parse_line(raw)
                except ValueError as exc:
                    return f"BROKEN at {where}: {exc} (altered)"
            else:
                value = _from_log_line(raw)
                if not isinstance(value, dict) or value.get("log") != log:
                    continue
            problem = checkpoint_problem(value)
            if problem:
                return f"BROKEN at {where}: {problem}"
            body = body_of(value)
            if hashlib.sha256(body).hexdigest() != value["hash"]:
                return f"BROKEN at {where}: checkpoint altered (hash mismatch)"
            if strict and canonical(value) != raw:
                return f"BROKEN at {where}: checkpoint altered (not in canonical form)"
            if key is not None:
                if "mac" in value:
                    if not hmac.compare_digest(key.mac(body), value["mac"]):
                        return f"BROKEN at {where}: checkpoint MAC does not verify (altered, or another key)"
                    sealed_seen = True
                elif sealed_seen:
                    return f"BROKEN at {where}: checkpoint has no MAC after sealed ones (MAC stripped)"
            if not strict and last is not None and value["hash"] == last["hash"]:
                continue  # the same checkpoint shipped twice by the log pipeline
            if last is None:
                if strict and (value["n"] != 1 or value["prev"] != GENESIS):
                    return f"BROKEN at {where}: checkpoints 1-{value['n'] - 1} removed before it"
            elif value["n"] <= last["n"]:
                return f"BROKEN at {where}: checkpoints reordered (n {value['n']} after {last['n']})"
            elif value["n"] == last["n"] + 1 and value["prev"] != last["hash"]:
                return f"BROKEN at {where}: checkpoint chain altered (prev hash mismatch)"
            elif strict and value["n"] != last["n"] + 1:
                return f"BROKEN at {where}: checkpoints {last['n'] + 1}-{value['n'] - 1} removed before it"
            found.items.append((where, value))
            found.by_seq.setdefault(value["seq"], []).append((where, value))
            last = value
    if key is not None and found.items and not sealed_seen:
        return f"BROKEN at {found.items[-1][0]}: no checkpoint carries a MAC, but a key was given"
    return found


def _resolve_checkpoints(audit: list[Path], named: list[Path], given: str | Path | None) -> Path | None:
    if given is not None:
        return Path(given)
    if named:
        return named[0]
    bases = {p.with_name(base_name(p)) for p in audit}
    if len(bases) == 1:
        sibling = checkpoint_path_for(bases.pop())
        if sibling.exists():
            return sibling
    return None


# ------------------------------------------------------------------- the walk


@dataclass
class _Span:
    """Where one file's records start and end."""

    name: str
    first: int
    first_line: int
    last: int = 0
    last_line: int = 0


def _next_seq_found(lines: Iterator[tuple[str, int, bytes | None]], wanted: int) -> bool:
    """Whether ``wanted`` comes later (told apart: records removed, or reordered)."""
    for _, _, raw in lines:
        try:
            value = parse_line(raw)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("seq") == wanted:
            return True
    return False


def verify_audit(
    paths: Sequence[str | Path],
    *,
    key: AuditKey | bytes | str | None = None,
    key_file: str | Path | None = None,
    checkpoints: str | Path | None = None,
    use_checkpoints: bool = True,
) -> VerifyResult:
    """Check every record's hash, its link to the one before (across rotated files, in any
    order given) and, with a key, its MAC; then the files against the checkpoints (the
    given file, else ``<path>.checkpoints`` when it exists). The message is one line:
    ``OK: ...`` or ``BROKEN at <file>:<line> (seq n): <what>``."""
    audit, named = split_paths(paths)
    files = _ordered(audit)
    secret = load_key(key, key_file)
    ck_path = _resolve_checkpoints(audit, named, checkpoints) if use_checkpoints else None
    if ck_path is None:
        return _Walk(files, secret, _Checkpoints()).run()
    loaded = _load_checkpoints(ck_path, secret, base_name(files[-1]) if files else "")
    if isinstance(loaded, str):
        return VerifyResult(False, 0, loaded, keyed=secret is not None)
    return _Walk(files, secret, loaded).run()


class _Walk:
    """One pass over the records; stops at the first break."""

    def __init__(self, files: list[Path], key: AuditKey | None, cks: _Checkpoints) -> None:
        self.lines = _Lines(files)
        self.key = key
        self.cks = cks
        self.count = 0
        self.spans: dict[str, _Span] = {}
        self.starts: dict[int, str] = {}  # seq -> "file:line" of file starts named by checkpoints
        self.sealed_from: int | None = None
        self.unchecked_macs = False
        self.quarantines: list[dict[str, Any]] = []
        self.ck_matched = 0  # newest checkpoint seq whose head matched

    def fail(self, message: str) -> VerifyResult:
        return VerifyResult(False, self.count, message, keyed=self.key is not None)

    def run(self) -> VerifyResult:
        prev, expected = GENESIS, 0
        wanted_starts = {f["first"] for _, c in self.cks.items for f in c["files"]}
        first_where = last_where = ""
        lines = iter(self.lines)
        for name, number, raw in lines:
            try:
                record = _checked(name, number, raw)
            except AuditFormatError as exc:
                return self.fail(f"BROKEN at {exc.where}: {exc.reason} (altered)")
            seq = record["seq"]
            where = f"{name}:{number} (seq {seq})"
            problem = self.seal_problem(record, raw)
            if problem:
                return self.fail(f"BROKEN at {where}: {problem}")
            if not self.count:
                expected, prev, first_where = seq, record["prev"], where  # the oldest kept may not be 1
            if record["prev"] != prev or seq != expected:
                return self.fail(f"BROKEN at {where}: {self.link_problem(lines, seq, expected)}")
            problem = self.checkpoint_head_problem(record)
            if problem:
                return self.fail(f"BROKEN at {where}: {problem}")
            span = self.spans.get(name)
            if span is None:
                span = self.spans[name] = _Span(name, seq, number)
            span.last, span.last_line = seq, number
            if seq in wanted_starts and number == 1:
                self.starts[seq] = f"{name}:{number}"
            if record["kind"] == "quarantine":
                self.quarantines.append(record)
            prev, expected = record["hash"], seq + 1
            self.count += 1
            last_where = where
        if self.key is not None and self.count and self.sealed_from is None:
            return self.fail(
                f"BROKEN at {first_where}: no record carries a MAC, but a key was given "
                "(written without a key, or MACs stripped)"
            )
        problem = self.files_problem(first_where, last_where, expected - 1)
        if problem:
            return self.fail(problem)
        return VerifyResult(
            True,
            self.count,
            self.ok_message(prev),
            self.lines.truncated_in is not None,
            prev,
            len(self.cks.items),
            self.key is not None,
        )

    def seal_problem(self, record: dict[str, Any], raw: bytes | None) -> str | None:
        body = body_of(record)
        if hashlib.sha256(body).hexdigest() != record["hash"]:
            return "record altered (hash mismatch)"
        if canonical(record) != raw:
            return "record altered (not in canonical form)"
        if self.key is None:
            self.unchecked_macs = self.unchecked_macs or "mac" in record
            return None
        if "mac" in record:
            if not hmac.compare_digest(self.key.mac(body), record["mac"]):
                return "MAC does not verify (record altered, or sealed with another key)"
            if self.sealed_from is None:
                self.sealed_from = record["seq"]
        elif self.sealed_from is not None:
            return "record has no MAC after sealed records (MAC stripped)"
        return None

    def link_problem(self, lines: Iterator[tuple[str, int, bytes | None]], seq: int, expected: int) -> str:
        if seq > expected and not _next_seq_found(lines, expected):
            gap = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
            return f"record(s) {gap} removed before it"
        if seq != expected:
            return f"records reordered (expected seq {expected})"
        return "chain link altered (prev hash mismatch)"

    def checkpoint_head_problem(self, record: dict[str, Any]) -> str | None:
        for where, ck in self.cks.by_seq.get(record["seq"], ()):
            if ck["head"] != record["hash"]:
                since = f"seq {self.ck_matched + 1}-{record['seq']}"
                return (
                    f"hash differs from the checkpoint at {where}: a record in {since} was "
                    "altered and the chain re-hashed"
                )
            self.ck_matched = record["seq"]
        return None

    def files_problem(self, first_where: str, last_where: str, last_seq: int) -> str | None:
        """The files against what the checkpoints say they held."""
        if not self.cks.items:
            return None
        if not self.count:
            where, ck = self.cks.items[-1]
            return (
                f"BROKEN: no records in the files given, yet the checkpoint at {where} names seq {ck['seq']}"
            )
        by_name = {Path(name).name: span for name, span in self.spans.items()}
        disk_first = min((s.first for s in self.spans.values()), default=0)
        for where, ck in self.cks.items:
            for entry in ck["files"]:
                problem = self.entry_problem(where, ck, entry, by_name, disk_first)
                if problem:
                    return problem
        oldest = min(self.cks.items, key=lambda item: item[1]["first_seq"])
        if oldest[1]["first_seq"] < disk_first:
            gap = oldest[1]["first_seq"]
            gap_text = f"{gap}" if gap == disk_first - 1 else f"{gap}-{disk_first - 1}"
            return (
                f"BROKEN at {first_where}: record(s) {gap_text} dropped before it "
                f"(the checkpoint at {oldest[0]} names first seq {gap})"
            )
        newest = max(self.cks.items, key=lambda item: item[1]["seq"])
        if newest[1]["seq"] > last_seq:
            seq = newest[1]["seq"]
            gap_text = f"{last_seq + 1}" if seq == last_seq + 1 else f"{last_seq + 1}-{seq}"
            return (
                f"BROKEN at {last_where}: record(s) {gap_text} deleted after it (the checkpoint at "
                f"{newest[0]} names seq {seq}, head {newest[1]['head'][:16]}...)"
            )
        return None

    def entry_problem(
        self,
        where: str,
        ck: dict[str, Any],
        entry: dict[str, Any],
        by_name: dict[str, _Span],
        disk_first: int,
    ) -> str | None:
        first = entry["first"]
        live = entry["name"] == ck["log"]
        if live or "last" not in entry:
            # The live file is renamed when it rotates: only where it starts is fixed.
            if disk_first <= first <= ck["seq"] and first not in self.starts:
                return (
                    f"BROKEN at {where}: records moved between files: this checkpoint starts "
                    f"{entry['name']} at seq {first}, which does not start a file"
                )
            return None
        last = entry["last"]
        span = by_name.get(entry["name"])
        if span is None:
            if last < disk_first:
                return (
                    f"BROKEN at {where}: {entry['name']} (seq {first}-{last}), named by this "
                    "checkpoint, is missing (deleted, or not given to verify)"
                )
            return (
                f"BROKEN at {where}: {entry['name']} (seq {first}-{last}), named by this checkpoint, "
                "is not among the files; its records are in other files (renamed or moved)"
            )
        if span.first != first:
            return (
                f"BROKEN at {span.name}:{span.first_line} (seq {span.first}): records moved between "
                f"files: the checkpoint at {where} puts seq {first}-{last} in {entry['name']}"
            )
        if span.last != last:
            return (
                f"BROKEN at {span.name}:{span.last_line} (seq {span.last}): records moved between "
                f"files: the checkpoint at {where} puts seq {first}-{last} in {entry['name']}"
            )
        return None

    def ok_message(self, head: str) -> str:
        parts = [f"OK: {self.count} records, chain intact, head {head}"]
        if self.key is not None:
            first = min((s.first for s in self.spans.values()), default=0)
            parts.append(
                "MACs verified"
                if self.sealed_from in (None, first)
                else f"MACs verified from seq {self.sealed_from} (earlier records bound by the chain)"
            )
        elif self.unchecked_macs:
            parts.append("records are sealed but MACs were not checked (no key given)")
        if self.cks.items:
            newest = max(ck["seq"] for _, ck in self.cks.items)
            parts.append(f"{len(self.cks.items)} checkpoints match (newest seq {newest})")
        else:
            parts.append("no checkpoints: dropped oldest or newest records cannot be seen")
        if self.quarantines:
            q = self.quarantines[0]
            parts.append(
                f"{len(self.quarantines)} quarantine record(s), first at seq {q['seq']}: "
                f"{q.get('lines')} line(s) that were not records moved to {q.get('quarantine_file')}"
            )
        if self.lines.truncated_in is not None:
            parts.append(
                f"the last line of {self.lines.truncated_in} is a partial record (crash mid-write), ignored"
            )
        return "; ".join(parts)
