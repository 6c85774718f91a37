"""The ``mevobs`` command line: ``mevobs demo`` (more subcommands come with later capabilities)."""

from __future__ import annotations

import argparse
import importlib.util
import socket
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

from mevobs import _guards_cli as guards_cli
from mevobs._version import __version__
from mevobs.alerts import _cli as alerts_cli

T = TypeVar("T")
EXPORTERS = ("prometheus", "otlp", "otlp-http", "console", "none")


class _Parser(argparse.ArgumentParser):
    """Bad input gives one line on stderr and exit code 2, never a usage dump or traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _checked(convert: Callable[[str], T], ok: Callable[[T], bool], requirement: str) -> Callable[[str], T]:
    """An argparse type: convert the text, then check it, with a one-line reason on failure."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{requirement}, got {text}")
        return value

    return parse


_positive_seconds = _checked(float, lambda v: 0 < v < float("inf"), "must be a positive number of seconds")
_block_count = _checked(int, lambda v: 1 <= v <= 10**9, "must be a whole number of blocks from 1 to 10**9")
_rate = _checked(float, lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1")
_port = _checked(int, lambda v: 1 <= v <= 65535, "must be between 1 and 65535")
_port_or_zero = _checked(int, lambda v: 0 <= v <= 65535, "must be between 0 and 65535")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mevobs", description="mevobs: telemetry for MEV and DeFi bots.")
    parser.add_argument("--version", action="version", version=f"mevobs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser("demo", help="run a simulated arbitrage bot instrumented with mevobs")
    length = demo.add_mutually_exclusive_group()
    length.add_argument(
        "--duration", type=_positive_seconds, default=15.0, help="seconds to run, paced (default 15)"
    )
    length.add_argument(
        "--blocks", type=_block_count, default=None, help="blocks to run as fast as possible, unpaced"
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed; same seed, same run (default 1)")
    demo.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default=None,
        help="where telemetry goes (default prometheus, or otlp if OTEL_EXPORTER_OTLP_ENDPOINT is set)",
    )
    demo.add_argument("--fail-rate", type=_rate, default=0.0, help="share of reverted transactions (0..1)")
    demo.add_argument(
        "--metrics-port", type=_port, default=9464, help="Prometheus /metrics port on 127.0.0.1"
    )
    demo.add_argument(
        "--health-port",
        type=_port_or_zero,
        default=0,
        help="health endpoints port on 127.0.0.1 (default: any free)",
    )
    demo.add_argument("--log-stdout", action="store_true", help="also print the JSON log lines")
    alerts_cli.add_parsers(sub)
    guards_cli.add_parsers(sub)
    return parser


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    import os

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        exporter = args.exporter or (
            "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "prometheus"
        )
        if exporter == "prometheus" and importlib.util.find_spec("opentelemetry.exporter.prometheus") is None:
            parser.exit(2, "mevobs: error: the prometheus exporter needs: pip install 'mevobs[prometheus]'\n")
        if exporter == "prometheus" and not _port_free(args.metrics_port):
            parser.exit(
                2, f"mevobs: error: port {args.metrics_port} on 127.0.0.1 is busy; pass --metrics-port\n"
            )
        if args.health_port and not _port_free(args.health_port):
            parser.exit(
                2, f"mevobs: error: port {args.health_port} on 127.0.0.1 is busy; pass --health-port\n"
            )
        import mevobs
        from mevobs.demo import DemoOptions, run_demo

        run_demo(
            DemoOptions(
                duration=args.duration,
                blocks=args.blocks,
                seed=args.seed,
                exporter=exporter,
                fail_rate=args.fail_rate,
                metrics_port=args.metrics_port,
                log_stdout=args.log_stdout,
                health_port=args.health_port,
            )
        )
        mevobs.shutdown(timeout_seconds=5)  # flush and stop the exporters before exiting
        return 0
    if args.command in guards_cli.COMMANDS:
        try:
            return guards_cli.run(args)
        except OSError as exc:
            parser.exit(2, f"mevobs: error: {exc.filename or ''}: {exc.strerror or exc}\n")
    if args.command in alerts_cli.COMMANDS:
        from mevobs.alerts import AlertSettingsError

        try:
            return alerts_cli.run(args)
        except AlertSettingsError as exc:
            parser.exit(2, f"mevobs: error: {exc}\n")
        except OSError as exc:
            parser.exit(2, f"mevobs: error: cannot write {exc.filename or args.output}: {exc.strerror}\n")
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
