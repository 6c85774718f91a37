"""The audit trail writer: an append-only JSON-lines file in which each record is chained
to the one before by SHA-256 and, when a key is configured, sealed by HMAC-SHA256; with
signed checkpoints written to a second file and to the ``mevobs`` logger.

A record is the canonical JSON (sorted keys, no spaces, ASCII) of ``seq``, ``time``,
``service``, ``kind``, its fields and ``prev`` (the previous record's ``hash``), plus
``hash`` = SHA-256 of those bytes and, with a key, ``mac`` = HMAC-SHA256 of the same bytes.
Rotation renames the full file to ``<path>.<n>`` (six digits) and the chain continues in
the new file. Appends from several processes are serialised by ``flock`` on ``<path>.lock``;
each append first catches up with what the others wrote. Verification lives in
``_audit_verify``; the format in ``_audit_format``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import sys
import threading
import weakref
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from mevobs import semconv
from mevobs._protocols import FinishedOperation
from mevobs._state import LOGGER, STATE
from mevobs.guards._audit_format import (
    GENESIS,
    LOCK_SUFFIX,
    MAX_LINE,
    QUARANTINE_MARK,
    AuditKey,
    canonical,
    checkpoint_path_for,
    checkpoint_problem,
    lines_backwards,
    load_key,
    parse_line,
    record_problem,
    rotated_files,
    seal,
)
from mevobs.guards._audit_format import body_of as _body_of
from mevobs.guards._audit_verify import VerifyResult, iter_records, read_records, verify_audit

if sys.platform != "win32":
    import fcntl


class AuditSettings(Protocol):
    """The fields of :class:`mevobs.Settings` an audit log is built from."""

    audit_path: str | None
    audit_rotate_bytes: int
    audit_fsync: bool
    service_name: str
    audit_key: Any
    audit_key_file: str | None
    audit_checkpoint_every: int


__all__ = [
    "GENESIS",
    "AuditKey",
    "AuditLog",
    "VerifyResult",
    "iter_records",
    "read_records",
    "rotated_files",
    "verify_audit",
]

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
_RESERVED = frozenset({"seq", "prev", "hash", "mac"})
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT
# Open logs, so a forked child gets its own lock: flock belongs to the open file, which
# parent and child would otherwise share, and then neither would exclude the other.
_OPEN_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for log in list(_OPEN_LOGS):
        log._reopen_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _last_valid(fd: int, end: int, check: Any) -> tuple[int, dict[str, Any] | None]:
    """Where the trailing run of lines that ``check`` rejects starts, and the last line it
    accepts (None when it accepts none)."""
    good_end = end
    for start, raw in lines_backwards(fd, end):
        try:
            value = parse_line(raw)
        except ValueError:
            good_end = start
            continue
        if check(value) is None:
            return good_end, value
        good_end = start
    return good_end, None


def _complete_end(fd: int) -> int:
    """Where the last complete line of ``fd`` ends (before a partial last line, if any)."""
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return size
    return next(lines_backwards(fd, size + 1))[0]


def _first_seq(fd: int, end: int) -> int | None:
    """The seq of the first line of ``fd`` when it is a record."""
    data = os.pread(fd, min(end, MAX_LINE + 1), 0)
    cut = data.find(b"\n")
    try:
        value = parse_line(data[:cut] if cut >= 0 else None)
    except ValueError:
        return None
    return int(value["seq"]) if record_problem(value) is None else None


def _file_range(path: Path) -> tuple[int, int, str] | None:
    """First seq, last seq and last hash of a rotated file (None when it holds no record)."""
    try:
        with path.open("rb") as f:
            end = _complete_end(f.fileno())
            _, last = _last_valid(f.fileno(), end, record_problem)
            first = _first_seq(f.fileno(), end)
    except OSError:
        return None
    if last is None:
        return None
    return (first if first is not None else int(last["seq"])), int(last["seq"]), str(last["hash"])


class AuditLog:
    """Append-only, hash-chained (and, with a key, HMAC-sealed) JSON-lines audit trail.

    One record per finished operation that carries a transaction, gas or a net
    profit (time, service, operation, exchange, chain, tx hash, block, amounts,
    gas, fees, net profit, outcome), and one per :func:`mevobs.record_exposure`.
    Net profit is written on the outermost operation only (an arbitrage, not its
    swaps), so summing ``net_profit_wei`` over records counts each wei once.

    Writes are synchronous and flushed (``fsync=True`` also syncs each record to
    disk), under an exclusive ``flock`` shared with other processes appending to
    the same path. Every ``checkpoint_every`` records and on close a checkpoint
    (seq, head hash, files, sealed like a record) goes to ``<path>.checkpoints``
    and to the ``mevobs`` logger at INFO. Reopening continues the chain: a
    partial last line (a crash mid-write) is dropped, and trailing lines that are
    not records are moved to ``<path>.quarantine-<time>`` and replaced by a
    ``quarantine`` record naming them, so the bot starts and verify tells.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        rotate_bytes: int = 64 * 1024 * 1024,
        fsync: bool = False,
        service_name: str = "mev-bot",
        key: AuditKey | bytes | str | None = None,
        checkpoint_every: int = 1000,
    ) -> None:
        self.path = Path(path)
        self.checkpoint_path = checkpoint_path_for(self.path)
        self.rotate_bytes = rotate_bytes
        self.fsync = fsync
        self.service_name = service_name
        self.checkpoint_every = checkpoint_every
        #: Lines moved aside at start-up (or when catching up with another process).
        self.quarantined = 0
        self.quarantine_files: list[Path] = []
        self._key = load_key(key)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_name(self.path.name + LOCK_SUFFIX)
        self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        self._fd = self._ck_fd = -1
        self._ino = self._ck_ino = self._size = self._ck_size = -1
        self._seq, self._prev = 0, GENESIS
        self._ck_n, self._ck_prev, self._ck_seq = 0, GENESIS, 0
        self._ck_last: dict[str, Any] | None = None
        self._rotated: list[tuple[str, int, int]] = []  # (name, first seq, last seq)
        self._current_first: int | None = None
        self._closed = False
        with self._lock:
            self._flock(True)
            try:
                self._sync()
                self._sync_checkpoints()
                self._startup_checks()
            finally:
                self._flock(False)
        _OPEN_LOGS.add(self)

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> AuditLog:
        """The log ``configure(audit_path=...)`` asks for, with its key and checkpoints."""
        if settings.audit_path is None:
            raise ValueError("audit_path is not set")
        secret = settings.audit_key.get_secret_value() if settings.audit_key is not None else None
        return cls(
            settings.audit_path,
            rotate_bytes=settings.audit_rotate_bytes,
            fsync=settings.audit_fsync,
            service_name=settings.service_name,
            key=load_key(secret, settings.audit_key_file),
            checkpoint_every=settings.audit_checkpoint_every,
        )

    @property
    def keyed(self) -> bool:
        return self._key is not None

    # ---------------------------------------------------------------- writing

    def write(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Append one record of ``kind`` with ``fields``; returns it with seq and seal."""
        clash = _RESERVED.intersection(fields)
        if clash:
            raise ValueError(f"audit fields {sorted(clash)} are reserved")
        with self._lock:
            if self._closed:
                raise ValueError("audit log is closed")
            self._flock(True)
            try:
                self._sync()
                record = self._append(kind, fields)
                if self.checkpoint_every and record["seq"] % self.checkpoint_every == 0:
                    self._checkpoint_quietly("periodic")
            finally:
                self._flock(False)
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
        """Write a closing checkpoint (unless the newest one already names the head) and close."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._flock(True)
            try:
                self._sync()
                self._sync_checkpoints()
                if self._seq and self._ck_seq != self._seq:
                    self._checkpoint("close")
            except Exception as exc:  # closing runs at shutdown: count, never raise
                STATE.dropped("recorder_error", f"audit close: {type(exc).__name__}")
                LOGGER.error("audit checkpoint at close failed: %s: %s", type(exc).__name__, exc)
            finally:
                self._flock(False)
                for fd in (self._fd, self._ck_fd, self._lock_fd):
                    if fd >= 0:
                        os.close(fd)
                _OPEN_LOGS.discard(self)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- private

    def _reopen_lock(self) -> None:
        """In a forked child: a lock of its own (the parent's thread lock may be held)."""
        self._lock = threading.Lock()
        if not self._closed:
            os.close(self._lock_fd)
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)

    def _flock(self, take: bool) -> None:
        if sys.platform != "win32":  # elsewhere one process per file (documented)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX if take else fcntl.LOCK_UN)

    def _append(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        record = seal(
            {
                "seq": self._seq + 1,
                "time": _now(),
                "service": self.service_name,
                "kind": kind,
                **{k: v for k, v in fields.items() if v is not None},
                "prev": self._prev,
            },
            self._key,
        )
        line = canonical(record) + b"\n"
        if len(line) > MAX_LINE:
            raise ValueError(f"audit record of {len(line)} bytes exceeds {MAX_LINE}")
        if self._size and self._size + len(line) > self.rotate_bytes:
            self._rotate()
        _write_all(self._fd, line)
        if self.fsync:
            os.fsync(self._fd)
        self._size += len(line)
        self._seq, self._prev = record["seq"], record["hash"]
        if self._current_first is None:
            self._current_first = self._seq
        return record

    def _rotate(self) -> None:
        existing = rotated_files(self.path)
        number = int(existing[-1].suffix[1:]) + 1 if existing else 1
        target = self.path.with_name(f"{self.path.name}.{number:06d}")
        self.path.rename(target)
        if self._current_first is not None:
            self._rotated.append((target.name, self._current_first, self._seq))
        self._open_current()
        self._size, self._current_first = 0, None

    def _open_current(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        self._ino = os.fstat(self._fd).st_ino

    def _sync(self) -> None:
        """Catch up with other processes: a rotation (the path is a new file) or appends."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is None or st.st_ino != self._ino:
            self._open_current()
            self._rotated = [
                (p.name, r[0], r[1]) for p in rotated_files(self.path) if (r := _file_range(p)) is not None
            ]
            self._load_tail()
        elif st.st_size != self._size:
            self._load_tail()

    def _load_tail(self) -> None:
        """Continue the chain from the last complete record; drop a partial last line and
        quarantine trailing lines that are not records."""
        size = os.fstat(self._fd).st_size
        end = _complete_end(self._fd)
        if end < size:
            LOGGER.warning(
                "audit trail %s ends with a partial record (crash mid-write); dropping its %d bytes",
                self.path,
                size - end,
            )
            os.ftruncate(self._fd, end)
        good_end, last = _last_valid(self._fd, end, record_problem)
        moved = self._quarantine(good_end, end) if good_end < end else None
        self._size = good_end
        self._current_first = None
        if last is not None:
            self._seq, self._prev = int(last["seq"]), str(last["hash"])
            first = _first_seq(self._fd, good_end)
            self._current_first = first if first is not None else self._seq
        elif self._rotated:
            newest = rotated_files(self.path)[-1]
            found = _file_range(newest)
            self._seq, self._prev = (found[1], found[2]) if found else (0, GENESIS)
        else:
            self._seq, self._prev = 0, GENESIS
        if moved is not None:
            self._append("quarantine", moved)

    def _quarantine(self, start: int, end: int) -> dict[str, Any]:
        """Move bytes [start, end) of the current file to a quarantine file."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path.with_name(f"{self.path.name}{QUARANTINE_MARK}{stamp}")
        for n in range(2, 1000):
            if not target.exists():
                break
            target = self.path.with_name(f"{self.path.name}{QUARANTINE_MARK}{stamp}-{n}")
        digest = hashlib.sha256()
        lines = 0
        with target.open("xb") as out:
            pos = start
            while pos < end:
                chunk = os.pread(self._fd, min(1 << 20, end - pos), pos)
                out.write(chunk)
                digest.update(chunk)
                lines += chunk.count(b"\n")
                pos += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.ftruncate(self._fd, start)
        self.quarantined += lines
        self.quarantine_files.append(target)
        STATE.dropped("invalid_value", f"audit: {lines} lines quarantined", count=lines)
        LOGGER.warning(
            "audit trail %s: %d trailing line(s) (%d bytes) are not audit records; moved to %s, "
            "the chain continues from the last good record",
            self.path,
            lines,
            end - start,
            target,
        )
        return {
            "quarantine_file": target.name,
            "lines": lines,
            "bytes": end - start,
            "sha256": digest.hexdigest(),
        }

    def _startup_checks(self) -> None:
        """Warnings an operator should see at start-up: a key mismatch or missing records."""
        if self._seq == 0:
            return
        if self._ck_ino == -1:
            LOGGER.warning(
                "audit trail %s holds records but has no checkpoint file %s: starting one",
                self.path,
                self.checkpoint_path,
            )
        if self._ck_seq > self._seq:
            LOGGER.warning(
                "audit trail %s ends at seq %d but its last checkpoint names seq %d: records removed",
                self.path,
                self._seq,
                self._ck_seq,
            )
        on_disk = {name for name, _, _ in self._rotated}
        named = self._ck_last["files"] if self._ck_last is not None else []
        missing = [f["name"] for f in named if "last" in f and f["name"] not in on_disk]
        if missing:
            LOGGER.warning(
                "audit trail %s: %s, named by the last checkpoint, missing (verify reports them)",
                self.path,
                ", ".join(missing),
            )
        _, last = _last_valid(self._fd, self._size, record_problem) if self._size else (0, None)
        if last is None:
            return
        if self._key is not None and "mac" in last and self._key.mac(_body_of(last)) != last["mac"]:
            LOGGER.warning(
                "audit trail %s: the last record (seq %d) does not verify with the configured key "
                "(altered, or written with another key)",
                self.path,
                last["seq"],
            )
        elif self._key is None and "mac" in last:
            LOGGER.warning("audit trail %s was sealed with a key; no key is configured now", self.path)

    # ------------------------------------------------------------ checkpoints

    def _sync_checkpoints(self) -> None:
        """Continue the checkpoint chain where this or another process left it."""
        try:
            st = os.stat(self.checkpoint_path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_ino == self._ck_ino and st.st_size == self._ck_size:
            return
        if self._ck_ino != -1 and (st is None or st.st_ino != self._ck_ino):
            LOGGER.warning("audit checkpoints %s were removed or replaced", self.checkpoint_path)
        if self._ck_fd >= 0:
            os.close(self._ck_fd)
            self._ck_fd = -1
        self._ck_n, self._ck_prev, self._ck_seq, self._ck_size, self._ck_ino = 0, GENESIS, 0, 0, -1
        if st is None:
            return
        self._ck_fd = os.open(self.checkpoint_path, _OPEN_FLAGS, 0o644)
        size = _complete_end(self._ck_fd)
        os.ftruncate(self._ck_fd, size)  # a partial last checkpoint: a crash mid-write
        self._ck_ino, self._ck_size = os.fstat(self._ck_fd).st_ino, size
        good_end, last = _last_valid(self._ck_fd, size, checkpoint_problem)
        if good_end < size:
            LOGGER.warning(
                "audit checkpoints %s end with lines that are not checkpoints (verify reports them)",
                self.checkpoint_path,
            )
        if last is not None:
            self._ck_n, self._ck_prev, self._ck_seq = last["n"], last["hash"], last["seq"]
        self._ck_last = last

    def _checkpoint_quietly(self, reason: str) -> None:
        """A checkpoint whose failure is counted, not raised: the record itself was written."""
        try:
            self._checkpoint(reason)
        except Exception as exc:
            STATE.dropped("recorder_error", f"audit checkpoint: {type(exc).__name__}")
            LOGGER.error("audit checkpoint failed: %s: %s", type(exc).__name__, exc)

    def _checkpoint(self, reason: str) -> None:
        self._sync_checkpoints()
        if self._ck_fd < 0:
            self._ck_fd = os.open(self.checkpoint_path, _OPEN_FLAGS, 0o644)
            self._ck_ino, self._ck_size = os.fstat(self._ck_fd).st_ino, 0
        files: list[dict[str, Any]] = [{"name": n, "first": a, "last": b} for n, a, b in self._rotated]
        if self._current_first is not None:  # the live file holds records
            files.append({"name": self.path.name, "first": self._current_first})
        first: int = files[0]["first"] if files else self._seq
        body = {
            "kind": "checkpoint",
            "n": self._ck_n + 1,
            "log": self.path.name,
            "seq": self._seq,
            "head": self._prev,
            "records": self._seq - first + 1,
            "first_seq": first,
            "files": files,
            "time": _now(),
            "reason": reason,
            "prev": self._ck_prev,
        }
        sealed = seal(body, self._key)
        line = canonical(sealed) + b"\n"
        _write_all(self._ck_fd, line)
        if self.fsync:
            os.fsync(self._ck_fd)
        self._ck_size += len(line)
        self._ck_n, self._ck_prev, self._ck_seq = sealed["n"], sealed["hash"], self._seq
        # The second copy: whatever ships the bot's logs off the machine ships this too.
        # Its hashes and MAC are public digests, not keys: the scrubber must keep them.
        public = frozenset(str(v) for k, v in sealed.items() if k in ("hash", "head", "prev", "mac"))
        LOGGER.info("audit checkpoint %s", line[:-1].decode(), extra={"mevobs_keep": public})
