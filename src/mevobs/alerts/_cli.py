"""The generator subcommands of the ``mevobs`` CLI: rules, alertmanager, dashboards, collector-config."""

from __future__ import annotations

import argparse
import sys

from mevobs.alerts._collector import CollectorSettings
from mevobs.alerts._output import write_alertmanager, write_collector_config, write_dashboards, write_rules
from mevobs.alerts._settings import AlertSettings

COMMANDS = ("rules", "alertmanager", "dashboards", "collector-config")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    config_help = "YAML or TOML file of AlertSettings (thresholds, windows, webhooks); defaults otherwise"
    rules = sub.add_parser("rules", help="write the Prometheus recording and alerting rules (YAML)")
    rules.add_argument("--config", help=config_help)
    rules.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    am = sub.add_parser("alertmanager", help="write the Alertmanager configuration (YAML)")
    am.add_argument("--config", help=config_help)
    am.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    dash = sub.add_parser("dashboards", help="write the Grafana dashboards (JSON)")
    dash.add_argument("--config", help=config_help)
    dash.add_argument(
        "-o", "--output", default="dashboards", help="directory to write (default: ./dashboards)"
    )
    col = sub.add_parser("collector-config", help="write an OpenTelemetry Collector configuration (YAML)")
    col.add_argument("--upstream", help="OTLP endpoint for traces and metrics, never logs (e.g. tempo:4317)")
    col.add_argument(
        "--logs-upstream",
        help="OTLP endpoint of the log store (e.g. http://loki:3100/otlp); without it logs stay on the host",
    )
    col.add_argument("--traces-upstream", help="OTLP endpoint for traces (overrides --upstream)")
    col.add_argument("--metrics-upstream", help="OTLP endpoint to push metrics to (overrides --upstream)")
    col.add_argument("--insecure", action="store_true", help="plain-text gRPC to the upstreams")
    col.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")


def run(args: argparse.Namespace) -> int:
    """Run one generator command; errors propagate as AlertSettingsError or OSError."""
    if args.command == "collector-config":
        settings = CollectorSettings(
            upstream_otlp_endpoint=args.upstream,
            traces_upstream_endpoint=args.traces_upstream,
            metrics_upstream_endpoint=args.metrics_upstream,
            logs_upstream_endpoint=args.logs_upstream,
            upstream_insecure=args.insecure,
        )
        _emit(write_collector_config(_target(args.output), settings), args.output)
        if not args.logs_upstream and (args.upstream or args.traces_upstream):
            print(
                "mevobs: note: logs are not forwarded (the trace upstream never gets them); "
                "pass --logs-upstream for the log store",
                file=sys.stderr,
            )
        return 0
    alert_settings = AlertSettings.load(args.config) if args.config else AlertSettings()
    if args.command == "rules":
        _emit(write_rules(_target(args.output), alert_settings), args.output)
    elif args.command == "alertmanager":
        _emit(write_alertmanager(_target(args.output), alert_settings), args.output)
    else:
        for path in write_dashboards(args.output, alert_settings):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _target(output: str) -> str | None:
    return None if output == "-" else output


def _emit(text: str, output: str) -> None:
    if output == "-":
        sys.stdout.write(text)
    else:
        print(f"wrote {output}", file=sys.stderr)
