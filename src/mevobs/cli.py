"""The ``mevobs`` command line: the demo, the alerting generators and the runtime-guard tools.

One error path: a bad argument, a bad setting (named by its environment variable)
or an unreadable file gives one line on stderr and exit code 2, never a usage
dump or a traceback. Commands that judge something (``health``, ``audit verify``)
use exit code 1 for "not ready" or "broken".
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from mevobs import _logs_cli as logs_cli
from mevobs._version import __version__
from mevobs.alerts import _cli as alerts_cli
from mevobs.guards import _cli as guards_cli

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
    # Not required=True: argparse's message would only say "required: command".
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
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
        help="where telemetry goes (default: what MEVOBS_EXPORTER or the OTEL_* variables say, "
        "else prometheus)",
    )
    demo.add_argument("--fail-rate", type=_rate, default=0.0, help="share of reverted transactions (0..1)")
    demo.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="Prometheus /metrics port on 127.0.0.1 (default 9464, or OTEL_EXPORTER_PROMETHEUS_PORT)",
    )
    demo.add_argument(
        "--health-port",
        type=_port_or_zero,
        default=0,
        help="health endpoints port on 127.0.0.1 (default: any free)",
    )
    demo.add_argument("--log-stdout", action="store_true", help="also print the JSON log lines")
    demo.add_argument(
        "--scenario",
        metavar="NAME",
        default=None,
        help="break one thing so that one alert fires (healthy: nothing does); '--scenario list' lists them",
    )
    alerts_cli.add_parsers(sub)
    guards_cli.add_parsers(sub)
    logs_cli.add_parser(sub)
    return parser


def _port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now: bound as the servers bind it.

    With SO_REUSEADDR, as the Prometheus and health servers set it, so that the
    connections of a run that just ended (in TIME_WAIT for a minute) do not count
    as busy; a socket listening there still does. (Not on Windows, where the flag
    would let the bind succeed over a live server.)"""
    with socket.socket() as sock:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _fail(message: str) -> NoReturn:
    """The one error path: one line on stderr, exit code 2."""
    sys.stderr.write(f"mevobs: error: {message}\n")
    raise SystemExit(2)


def _settings_error(exc: Exception) -> str:
    """One line from a settings error (pydantic's are several)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}"
    return str(exc)


def _environment_exporter(settings: Any) -> str | None:
    """The exporter the environment chose (MEVOBS_EXPORTER or an OTLP variable), if any.
    ``OTEL_<SIGNAL>_EXPORTER`` variables apply on top of it, per signal, either way."""
    from mevobs._otel_env import otlp_configured

    chosen = os.environ.get("MEVOBS_EXPORTER") or otlp_configured(os.environ)
    return str(settings.exporter) if chosen else None


def _demo(args: argparse.Namespace) -> int:
    import logging

    from pydantic import ValidationError

    from mevobs._otel_env import ENV_LOGGER
    from mevobs._settings import Settings, SettingsError
    from mevobs.demo._scenarios import listing, scenario

    if args.scenario == "list":
        print(listing())
        return 0
    try:
        chosen = scenario(args.scenario) if args.scenario is not None else None
    except KeyError as exc:
        _fail(f"{exc.args[0]} (mevobs demo --scenario list)")

    # What the environment gets wrong (an OTEL_* value ignored) is shown on the terminal.
    shown = logging.StreamHandler(sys.stderr)
    shown.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger(ENV_LOGGER).addHandler(shown)
    try:
        settings = Settings.load()  # every MEVOBS_* and OTEL_* variable, checked before anything starts
    except (SettingsError, ValidationError) as exc:
        _fail(_settings_error(exc))
    exporter = args.exporter or _environment_exporter(settings) or "prometheus"
    metrics_port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    pulls = exporter == "prometheus" or settings.metrics_exporter == "prometheus"
    if pulls and importlib.util.find_spec("opentelemetry.exporter.prometheus") is None:
        _fail("the prometheus exporter needs: pip install 'mevobs[prometheus]'")
    if pulls and metrics_port and not _port_free(metrics_port):
        _fail(f"port {metrics_port} on 127.0.0.1 is busy; pass --metrics-port")
    if args.health_port and not _port_free(args.health_port):
        _fail(f"port {args.health_port} on 127.0.0.1 is busy; pass --health-port")
    import mevobs
    from mevobs.demo import DemoOptions, run_demo

    try:
        run_demo(
            DemoOptions(
                duration=args.duration,
                blocks=args.blocks,
                seed=args.seed,
                exporter=exporter,
                fail_rate=args.fail_rate,
                metrics_port=metrics_port,
                log_stdout=args.log_stdout,
                health_port=args.health_port,
                scenario=chosen,
            )
        )
    except (SettingsError, ValidationError) as exc:
        _fail(_settings_error(exc))
    except OSError as exc:  # a port taken since the check, an unwritable audit or log file
        _fail(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}")
    finally:
        mevobs.shutdown(timeout_seconds=5)  # flush and stop the exporters before exiting
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        commands = ", ".join(_command_names(parser))
        _fail(f"a command is required, one of: {commands} (mevobs COMMAND --help)")
    if args.command == "demo":
        return _demo(args)
    if args.command == logs_cli.COMMAND:
        return logs_cli.run(args)
    if args.command in guards_cli.COMMANDS:
        try:
            return guards_cli.run(args)
        except guards_cli.UsageError as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}")
    if args.command in alerts_cli.COMMANDS:
        from mevobs.alerts import AlertSettingsError

        try:
            return alerts_cli.run(args)
        except AlertSettingsError as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"cannot write {exc.filename or args.output}: {exc.strerror}")
    return 2  # pragma: no cover - argparse knows every command


def _command_names(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
