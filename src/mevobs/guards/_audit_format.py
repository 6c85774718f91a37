"""The audit trail's on-disk format, shared by the writer and the verifier: canonical
encoding, the SHA-256 hash and HMAC-SHA256 seal of a record, what counts as a
well-formed record or checkpoint, bounded line reading (forwards and backwards)
and the names of the files that sit next to an audit file.

Kept free of the writer and of telemetry so the verifier depends on nothing that
could disagree with what it checks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
#: Longest line the writer produces and the readers accept (a record is a few hundred bytes).
MAX_LINE = 1 << 20
_BLOCK = 1 << 16
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False).encode
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
CHECKPOINT_SUFFIX = ".checkpoints"
LOCK_SUFFIX = ".lock"
QUARANTINE_MARK = ".quarantine-"


class AuditKey:
    """An HMAC-SHA256 key for the audit trail. Its repr never shows the key, and the
    key bytes are held only inside the prepared HMAC state."""

    __slots__ = ("_hmac",)

    def __init__(self, secret: bytes | str) -> None:
        raw = (secret.encode() if isinstance(secret, str) else bytes(secret)).strip()
        if len(raw) < 16:
            raise ValueError("the audit key must be at least 16 bytes (e.g. `openssl rand -hex 32`)")
        self._hmac = hmac.new(raw, digestmod=hashlib.sha256)

    @classmethod
    def from_file(cls, path: str | Path) -> AuditKey:
        """The key in ``path``; surrounding whitespace (a trailing newline) is ignored."""
        return cls(Path(path).read_bytes())

    def mac(self, body: bytes) -> str:
        h = self._hmac.copy()  # the padded key state is computed once, in __init__
        h.update(body)
        return h.hexdigest()

    def __repr__(self) -> str:
        return "AuditKey(<hidden>)"


def load_key(
    key: AuditKey | bytes | str | None = None, key_file: str | Path | None = None
) -> AuditKey | None:
    """The key given directly or read from ``key_file``; None when neither is given."""
    if key is not None and key_file is not None:
        raise ValueError("give the audit key or the audit key file, not both")
    if key_file is not None:
        return AuditKey.from_file(key_file)
    if key is None or isinstance(key, AuditKey):
        return key
    return AuditKey(key)


def canonical(value: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, ASCII only, no NaN: one byte string per value."""
    return _ENCODE(value).encode()


def seal(body: dict[str, Any], key: AuditKey | None) -> dict[str, Any]:
    """``body`` plus ``hash`` (SHA-256 of its canonical form) and, with a key, ``mac``
    (HMAC-SHA256 of the same bytes)."""
    data = canonical(body)
    sealed = {**body, "hash": hashlib.sha256(data).hexdigest()}
    if key is not None:
        sealed["mac"] = key.mac(data)
    return sealed


def body_of(sealed: dict[str, Any]) -> bytes:
    """The bytes ``hash`` and ``mac`` cover: the canonical record without those two fields."""
    return canonical({k: v for k, v in sealed.items() if k not in ("hash", "mac")})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_line(raw: bytes | None) -> Any:
    """The JSON value on one line (without its newline); ValueError says why there is none."""
    if raw is None:
        raise ValueError(f"line longer than {MAX_LINE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"undecodable bytes at column {exc.start + 1}") from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:
        msg = getattr(exc, "msg", None)
        col = getattr(exc, "colno", None)
        raise ValueError(f"broken JSON ({msg} at column {col})" if msg else f"broken JSON ({exc})") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), "object")


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _is_count(value: Any, least: int) -> bool:
    return type(value) is int and value >= least


def record_problem(value: Any) -> str | None:
    """Why ``value`` is not a well-formed audit record, or None. Says nothing of its hash."""
    if not isinstance(value, dict):
        return f"not an audit record (a JSON {_json_type(value)})"
    if not _is_count(value.get("seq"), 1):
        return "not an audit record (seq is not a positive integer)"
    for name in ("prev", "hash"):
        if not _is_hex64(value.get(name)):
            return f"not an audit record ({name} is not 64 hex digits)"
    if "mac" in value and not _is_hex64(value["mac"]):
        return "not an audit record (mac is not 64 hex digits)"
    if not isinstance(value.get("kind"), str):
        return "not an audit record (kind is not a string)"
    return None


def checkpoint_problem(value: Any) -> str | None:
    """Why ``value`` is not a well-formed checkpoint, or None. Says nothing of its seal."""
    if not isinstance(value, dict) or value.get("kind") != "checkpoint":
        return "not a checkpoint"
    for name in ("n", "seq", "first_seq"):
        if not _is_count(value.get(name), 1):
            return f"not a checkpoint ({name} is not a positive integer)"
    if not _is_count(value.get("records"), 0):
        return "not a checkpoint (records is not an integer)"
    for name in ("head", "prev", "hash"):
        if not _is_hex64(value.get(name)):
            return f"not a checkpoint ({name} is not 64 hex digits)"
    if "mac" in value and not _is_hex64(value["mac"]):
        return "not a checkpoint (mac is not 64 hex digits)"
    files = value.get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("name"), str)
        and _is_count(f.get("first"), 1)
        and _is_count(f.get("last", 1), 1)
        for f in files
    ):
        return "not a checkpoint (files is not a list of {name, first, last})"
    if value["records"] != value["seq"] - value["first_seq"] + 1:
        return "checkpoint altered (records does not equal seq - first_seq + 1)"
    return None


# ---------------------------------------------------------------------------- files


def rotated_files(path: Path) -> list[Path]:
    """``path``'s rotated files, oldest first."""
    found = [p for p in path.parent.glob(glob_escape(path.name) + ".*") if p.suffix[1:].isdigit()]
    return sorted(found, key=lambda p: int(p.suffix[1:]))


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def checkpoint_path_for(path: Path) -> Path:
    return path.with_name(path.name + CHECKPOINT_SUFFIX)


def base_name(path: Path) -> str:
    """The live file's name for an audit file or one of its rotated files."""
    return path.stem if path.suffix[1:].isdigit() and len(path.suffix) > 1 else path.name


def split_paths(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """Audit files and checkpoint files among ``paths``; lock and quarantine files (which a
    shell glob such as ``audit.jsonl*`` also matches) are left out. Duplicates are dropped."""
    audit: list[Path] = []
    checkpoints: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        key = p.absolute()
        if key in seen:
            continue
        seen.add(key)
        if p.name.endswith(CHECKPOINT_SUFFIX):
            checkpoints.append(p)
        elif not (p.name.endswith(LOCK_SUFFIX) or QUARANTINE_MARK in p.name):
            audit.append(p)
    return audit, checkpoints


# ---------------------------------------------------------------------------- lines


def lines_backwards(fd: int, end: int) -> Iterator[tuple[int, bytes | None]]:
    """(offset, bytes) of each line of ``fd`` before ``end`` (just after a newline),
    newest first, without the newline; None for a line longer than MAX_LINE."""
    pos = end - 1  # offset of the newline that ends the next line
    block, block_start = b"", pos
    while pos >= 0:
        parts: list[bytes] = []
        size = 0
        while True:
            nl = block.rfind(b"\n")
            if nl >= 0 or block_start == 0:
                break
            size += len(block)
            if size <= MAX_LINE:
                parts.append(block)
            step = min(_BLOCK, block_start)
            block_start -= step
            block = os.pread(fd, step, block_start)
        parts.append(block[nl + 1 :])
        size += len(block) - nl - 1
        start = block_start + nl + 1
        yield start, (b"".join(reversed(parts)) if size <= MAX_LINE else None)
        block = block[:nl] if nl >= 0 else b""
        pos = start - 1


def read_line(f: Any) -> tuple[bytes | None, bool] | None:
    """The next line of the binary file ``f``: (bytes without the newline or None when longer
    than MAX_LINE, whether it ended with a newline); None at the end of the file."""
    raw: bytes = f.readline(MAX_LINE + 1)
    if not raw:
        return None
    if raw.endswith(b"\n"):
        return raw[:-1], True
    if len(raw) <= MAX_LINE:
        return raw, False  # the file ends without a newline
    while raw and not raw.endswith(b"\n"):  # skip the rest of an over-long line, bounded reads
        raw = f.readline(_BLOCK)
    return None, raw.endswith(b"\n")


def first_seq(path: Path) -> int:
    """The seq of the first line of ``path``, 0 when it is not a record (sorts first)."""
    with path.open("rb") as f:
        line = read_line(f)
    try:
        value = parse_line(line[0]) if line else None
    except ValueError:
        return 0
    return int(value["seq"]) if value is not None and record_problem(value) is None else 0
