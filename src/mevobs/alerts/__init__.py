"""Alerting, dashboards and collector configuration as code.

Everything here is generated from :mod:`mevobs.semconv`, the same constants
the instrumentation records with, so a rule can never drift from a metric
name. Each generator is a function returning plain data and a ``mevobs``
subcommand writing it to a file.
"""

from mevobs.alerts._alertmanager import build_alertmanager_config
from mevobs.alerts._collector import CollectorSettings, build_collector_config
from mevobs.alerts._dashboards import build_dashboards
from mevobs.alerts._output import (
    to_yaml,
    write_alertmanager,
    write_collector_config,
    write_dashboards,
    write_rules,
)
from mevobs.alerts._rules import AlertRule, alert_rules, build_rules, recording_rules
from mevobs.alerts._settings import AlertSettings, AlertSettingsError

__all__ = [
    "AlertRule",
    "AlertSettings",
    "AlertSettingsError",
    "CollectorSettings",
    "alert_rules",
    "build_alertmanager_config",
    "build_collector_config",
    "build_dashboards",
    "build_rules",
    "recording_rules",
    "to_yaml",
    "write_alertmanager",
    "write_collector_config",
    "write_dashboards",
    "write_rules",
]
