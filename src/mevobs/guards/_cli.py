"""The runtime-guard subcommands of the ``mevobs`` CLI: ``health`` and ``audit``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

COMMANDS = ("health", "audit")


class UsageError(Exception):
    """A bad argument found after parsing: the CLI prints it on one line, exit code 2."""


def _url(text: str) -> str:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r} (e.g. http://127.0.0.1:8080)")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    health = sub.add_parser("health", help="exit 0 when a HealthServer is ready, 1 otherwise")
    health.add_argument("url", type=_url, help="base URL of the HealthServer, e.g. http://127.0.0.1:8080")
    health.add_argument("--token", help="bearer token, when the server requires one")
    health.add_argument("--timeout", type=_seconds, default=10.0, help="seconds to wait for the answer")
    audit = sub.add_parser("audit", help="verify or report on an audit trail")
    actions = audit.add_subparsers(dest="action", required=True)
    verify = actions.add_parser(
        "verify", help="exit 0 when the chain, MACs and checkpoints agree, 1 naming the first break"
    )
    verify.add_argument("paths", nargs="+", help="audit files, in any order (rotated files included)")
    verify.add_argument(
        "--key-file",
        help="file holding the audit key (default: $MEVOBS_AUDIT_KEY_FILE, then $MEVOBS_AUDIT_KEY)",
    )
    where = verify.add_mutually_exclusive_group()
    where.add_argument(
        "--checkpoints",
        help="checkpoint file, or the bot's log with its 'audit checkpoint' lines "
        "(default: <path>.checkpoints when it exists)",
    )
    where.add_argument("--no-checkpoints", action="store_true", help="check the chain only")
    report = actions.add_parser("report", help="volume, gas, profit and reverts by day, exchange or chain")
    report.add_argument("paths", nargs="+", help="audit files, oldest first")
    report.add_argument("--by", choices=("day", "exchange", "chain"), default="day")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    if args.command == "health":
        return health(args.url, token=args.token, timeout=args.timeout)
    from mevobs.guards._audit_report import report_text
    from mevobs.guards._audit_verify import AuditFormatError, verify_audit

    if args.action == "verify":
        key = os.environ.get("MEVOBS_AUDIT_KEY") or None
        key_file = args.key_file or os.environ.get("MEVOBS_AUDIT_KEY_FILE") or None
        try:
            result = verify_audit(
                args.paths,
                key=None if key_file else key,
                key_file=key_file,
                checkpoints=args.checkpoints,
                use_checkpoints=not args.no_checkpoints,
            )
        except ValueError as exc:  # a key that is too short
            raise UsageError(str(exc)) from None
        print(result.message)
        return 0 if result.ok else 1
    try:
        text = report_text(args.paths, by=args.by, fmt=args.format)
    except AuditFormatError as exc:
        raise UsageError(f"refusing {exc}") from None
    sys.stdout.write(text)
    return 0


def health(url: str, *, token: str | None = None, timeout: float = 10.0) -> int:
    """Ask ``/readyz``; print the failing checks. 0 ready, 1 not ready or unreachable."""
    target = url.rstrip("/")
    if not target.endswith("/readyz"):
        target += "/readyz"
    request = urllib.request.Request(target)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
    except (OSError, ValueError) as exc:
        print(f"not ready: {target} unreachable: {getattr(exc, 'reason', exc)}")
        return 1
    checks = body.get("checks", [])
    if code == 200:
        print(f"ready: {len(checks)} checks pass")
        return 0
    if code == 401:
        print("not ready: unauthorized (pass --token)")
        return 1
    failing = [c for c in checks if c.get("status") != "pass"]
    print(f"not ready (HTTP {code}): {len(failing)} of {len(checks)} checks fail")
    for check in failing:
        print(f"  {check.get('name')}: {check.get('error')}")
    return 1
