"""Alert settings, and the generated rules, Alertmanager config, dashboards and collector
config: well formed, built from the telemetry contract, documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mevobs import semconv
from mevobs.alerts import (
    AlertSettings,
    AlertSettingsError,
    CollectorSettings,
    build_alertmanager_config,
    build_collector_config,
    build_dashboards,
    build_rules,
    recording_rules,
)
from mevobs.alerts import _promql as q
from mevobs.alerts._dashboards import expressions

ROOT = Path(__file__).resolve().parents[1]


class TestSettings:
    def test_defaults_are_valid(self) -> None:
        """The documented defaults validate (frozen, no missing field)."""
        s = AlertSettings()
        assert s.failure_ratio == 0.2 and s.rate_window == "5m"

    @pytest.mark.parametrize(
        "name,text",
        [
            ("a.yaml", "failure_ratio: 0.4\nrate_window: 2m\nselector: 'job=\"bot\"'\n"),
            ("a.toml", 'failure_ratio = 0.4\nrate_window = "2m"\nselector = \'job="bot"\'\n'),
        ],
    )
    def test_load_yaml_and_toml(self, tmp_path: Path, name: str, text: str) -> None:
        """Both formats load into the same settings."""
        path = tmp_path / name
        path.write_text(text)
        s = AlertSettings.load(path)
        assert (s.failure_ratio, s.rate_window, s.selector) == (0.4, "2m", 'job="bot"')

    @pytest.mark.parametrize(
        "text,field",
        [
            ("failure_ratio: 1.5\n", "failure_ratio"),
            ("rate_window: five minutes\n", "rate_window"),
            ("failure_for: 0m\n", "failure_for"),
            ("pager_webhook_url: not a url\n", "pager_webhook_url"),
            ("failure_ratioo: 0.1\n", "failure_ratioo"),
            ("bot_down_window: 0s\n", "bot_down_window"),
            ("memory_limit_bytes: 2147483648\n", "memory_limit_bytes"),  # the bot reports its limit now
        ],
    )
    def test_invalid_file_names_the_field(self, tmp_path: Path, text: str, field: str) -> None:
        """A bad value, duration, URL or an unknown key: the error names the file and field."""
        path = tmp_path / "alerts.yaml"
        path.write_text(text)
        with pytest.raises(AlertSettingsError, match=rf"alerts.yaml: {field}: "):
            AlertSettings.load(path)

    def test_unreadable_or_unparsable_files(self, tmp_path: Path) -> None:
        """Missing files, broken syntax and unknown extensions are one-line errors too."""
        with pytest.raises(AlertSettingsError, match="No such file"):
            AlertSettings.load(tmp_path / "nope.yaml")
        (tmp_path / "x.toml").write_text("failure_ratio = \n")
        with pytest.raises(AlertSettingsError, match="not valid TOML"):
            AlertSettings.load(tmp_path / "x.toml")
        (tmp_path / "x.yaml").write_text("- a list\n")
        with pytest.raises(AlertSettingsError, match="expected a mapping"):
            AlertSettings.load(tmp_path / "x.yaml")
        (tmp_path / "x.ini").write_text("")
        with pytest.raises(AlertSettingsError, match="unknown settings format"):
            AlertSettings.load(tmp_path / "x.ini")


def _all_promql() -> list[str]:
    rules = build_rules()
    found = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for dashboard in build_dashboards().values():
        found += [e for _, e in expressions(dashboard)]
    return found


_FUNCTIONS = {
    "sum", "rate", "increase", "histogram_quantile", "max", "min", "and", "or", "unless", "offset",
    "label_values", "abs", "changes", "present_over_time", "quantile_over_time", "group", "group_left",
}  # fmt: skip
# Labels that are no mevobs attribute: the scrape target's (Prometheus), the instrumentation
# scope's (every OpenTelemetry exporter), the bot's resource (the generated collector
# configuration turns service.name and service.instance.id into labels), and a histogram's.
_SOURCE_LABELS = {
    "le",
    "job",
    "instance",
    "__name__",
    *q.SCOPE_LABELS,
    q.L_SERVICE_NAME,
    q.L_SERVICE_INSTANCE,
}


def _identifiers(expr: str) -> set[str]:
    """Metric names in a PromQL expression (not labels, functions or keywords)."""
    expr = re.sub(r'"[^"]*"', '""', expr)  # drop string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # drop matchers
    expr = re.sub(r"\b(by|without|on|ignoring) \([^)]*\)", "", expr)  # drop grouping and matching labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # drop range durations
    expr = re.sub(r"\$__\w+", "", expr)  # drop Grafana variables
    expr = re.sub(r"offset \w+", "", expr)  # drop offsets
    expr = re.sub(r", \w+\)$", ")", expr) if expr.startswith("label_values(") else expr  # the label
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in _FUNCTIONS and not re.fullmatch(r"\d.*|e", n)}


def _contract_series() -> set[str]:
    names = set()
    for spec in semconv.METRICS:
        base = spec.prometheus_name
        names |= {base, f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names


def test_every_metric_name_in_rules_and_dashboards_comes_from_the_contract() -> None:
    """No retyped names: each series a rule or panel reads is a contract metric, a
    recording rule built from them, Prometheus's own ``up``, or one of OpenTelemetry's
    system metrics (whose names are checked against the real exporter below)."""
    allowed = _contract_series() | {r["record"] for r in recording_rules(AlertSettings())}
    allowed |= {q.UP} | {spec.prometheus_name for spec in q.SYSTEM_METRICS}
    for expr in _all_promql():
        unknown = _identifiers(expr) - allowed
        assert not unknown, f"{unknown} in {expr}"


def test_every_label_in_rules_and_dashboards_comes_from_the_contract() -> None:
    """Matchers, groupings and vector matching use the contract's attributes as Prometheus
    labels, the labels of the system metrics, or those that say where a series comes from."""
    specs = (*semconv.METRICS, *q.SYSTEM_METRICS)
    allowed = {semconv.prometheus_label(a) for spec in specs for a in spec.attributes}
    allowed |= _SOURCE_LABELS
    for expr in _all_promql():
        used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
        for group in re.findall(r"\b(?:by|without|on|ignoring) \(([^)]*)\)", expr):
            used |= {g.strip() for g in group.split(",") if g.strip()}
        assert used <= allowed, f"{used - allowed} in {expr}"


def test_system_metric_names_and_labels_match_the_real_instrumentation() -> None:
    """The system panels read what configure(system_metrics=True) exports through the
    real OpenTelemetry instrumentation and Prometheus exporter: each name, each label
    the panels use, and the scope labels alerts aggregate away."""
    pytest.importorskip("opentelemetry.instrumentation.system_metrics", reason="system extra not installed")
    pytest.importorskip("opentelemetry.exporter.prometheus", reason="prometheus extra not installed")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    from mevobs.guards._runtime import SYSTEM_METRICS_CONFIG

    assert {spec.name for spec in q.SYSTEM_METRICS} <= set(SYSTEM_METRICS_CONFIG)
    registry = CollectorRegistry()  # private: the global registry stays untouched
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(metric_readers=[reader])
    instrumentor = SystemMetricsInstrumentor(config=SYSTEM_METRICS_CONFIG)
    instrumentor.instrument(meter_provider=provider)
    try:
        exposed: dict[str, set[str]] = {}
        for line in generate_latest(registry).decode().splitlines():
            if line.startswith("#") or "{" not in line:
                continue
            name, labels = line.split("{", 1)
            exposed.setdefault(name, set()).update(re.findall(r'(\w+)="', labels))
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    for spec in q.SYSTEM_METRICS:
        assert spec.prometheus_name in exposed, spec.prometheus_name
        wanted = {semconv.prometheus_label(a) for a in spec.attributes} | set(q.SCOPE_LABELS)
        assert wanted <= exposed[spec.prometheus_name], (spec.prometheus_name, exposed[spec.prometheus_name])


def _other_value(name: str) -> Any:
    """A valid value of setting ``name`` different from its default."""
    default = AlertSettings.model_fields[name].default
    if name == "selector":
        return 'job="elsewhere"'
    if name.endswith("_url"):
        return "https://elsewhere.example/x"
    if isinstance(default, str):
        return "3s" if default == "0s" else "7m"
    if isinstance(default, float) and default <= 1.0:
        return 0.37
    return default + 3


@pytest.mark.parametrize("name", list(AlertSettings.model_fields))
def test_every_setting_changes_what_is_generated(name: str) -> None:
    """No dead setting: changing any field of AlertSettings changes the rules, the
    Alertmanager configuration or the dashboards."""

    def generated(s: AlertSettings) -> str:
        return json.dumps([build_rules(s), build_alertmanager_config(s), build_dashboards(s)])

    changed = AlertSettings.model_validate({name: _other_value(name)})
    assert generated(changed) != generated(AlertSettings())


def test_renaming_a_contract_metric_renames_it_in_rules_and_dashboards() -> None:
    """Rules and panels are computed from semconv: a renamed metric (here in a fresh
    interpreter) appears renamed everywhere and the old name nowhere."""
    code = (
        "import dataclasses, json\n"
        "from mevobs import semconv\n"
        "semconv.OPERATION_DURATION = dataclasses.replace(semconv.OPERATION_DURATION, name='mev.op.time')\n"
        "from mevobs.alerts import build_rules, build_dashboards\n"
        "print(json.dumps([build_rules(), build_dashboards()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "mev_op_time_seconds_bucket" in out
    assert "mev_operation_duration_seconds" not in out


def test_alerts_carry_severity_summary_description_and_a_runbook_section() -> None:
    """Each alert links to a heading of docs/runbook.md that exists."""
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, re.M)
    }
    alerting = [r for g in build_rules()["groups"][1:] for r in g["rules"]]
    assert {r["labels"]["severity"] for r in alerting} == {"critical", "warning"}
    for rule in alerting:
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"]
        section = annotations["runbook_url"].split("#", 1)[1]
        assert section in anchors, f"{rule['alert']}: docs/runbook.md has no section #{section}"


def test_alert_docs_table_matches_the_rules() -> None:
    """docs/alerts.md shows each alert's expression, default threshold and runbook entry
    exactly as generated (regenerate with python tools/alerts_table.py)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import alerts_table
    finally:
        sys.path.remove(str(ROOT / "tools"))
    doc = (ROOT / "docs" / "alerts.md").read_text()
    assert alerts_table.render_into(doc) == doc


def test_alertmanager_routes_by_severity_and_inhibits_warnings() -> None:
    s = AlertSettings(pager_webhook_url="https://pager.example/hook")  # type: ignore[arg-type]
    config = build_alertmanager_config(s)
    routes = {r["matchers"][0]: r["receiver"] for r in config["route"]["routes"]}
    assert routes == {'severity="critical"': "pager", 'severity="warning"': "chat"}
    hooks = {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]}
    assert hooks["pager"] == "https://pager.example/hook"
    assert config["route"]["group_by"] == ["alertname", "mev_chain", "mev_exchange"]
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="critical"']
    # Same exchange and chain, and the same process: a bot down does not mute another
    # bot's memory warning (labels both lack count as equal in Alertmanager).
    assert inhibit["equal"] == ["mev_chain", "mev_exchange", "job", "instance", "service_name"]


@pytest.mark.parametrize("upstream", [None, "tempo:4317"])
def test_collector_config_pipelines_reference_defined_components(upstream: str | None) -> None:
    """Every receiver, processor and exporter a pipeline names is defined; memory_limiter
    runs first; metrics always reach the Prometheus exporter."""
    config = build_collector_config(CollectorSettings(upstream_otlp_endpoint=upstream))
    for name, pipeline in config["service"]["pipelines"].items():
        assert pipeline["processors"][0] == "memory_limiter", name
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(config[kind]), (name, kind)
    assert "prometheus" in config["service"]["pipelines"]["metrics"]["exporters"]
    if upstream:
        assert config["exporters"]["otlp/traces"]["endpoint"] == upstream
        assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp/traces"]


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


def test_dashboards_are_importable_grafana_models() -> None:
    """Schema 39, unique uids and panel ids, panels on the 24-column grid without overlap,
    every target with a refId and the datasource variable."""
    models = build_dashboards()
    assert len({m["uid"] for m in models.values()}) == len(models)
    for model in models.values():
        assert model["schemaVersion"] == 39
        json.dumps(model)  # serialisable
        ids = [p["id"] for p in _panels(model)]
        assert len(ids) == len(set(ids))
        cells: set[tuple[int, int]] = set()
        for panel in _panels(model):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & area, panel["title"]
            cells |= area
            for target in panel["targets"]:
                assert target["refId"] and target["datasource"]["uid"] == "${datasource}"
    drill = models["mevobs-exchange.json"]
    assert {v["name"] for v in drill["templating"]["list"]} == {"datasource", "chain", "exchange"}
    process = models["mevobs-process.json"]
    assert {v["name"] for v in process["templating"]["list"]} == {"datasource", "job"}


def test_dashboards_have_the_panels_operators_asked_for() -> None:
    """System panels (memory against its limit, CPU, network I/O, GC), RPC latency by
    method, breaker state, telemetry dropped, volume and utilisation by exchange."""
    titles = {p["title"] for m in build_dashboards().values() for p in _panels(m)}
    assert {
        "Memory against its limit",
        "CPU (cores used)",
        "Network I/O (host)",
        "Garbage collections by generation",
        "RPC latency by method (p50, p99)",
        "Circuit breakers (0 closed, 1 half open, 2 open)",
        "Telemetry dropped by reason",
        "Notional volume by exchange (ETH/h)",
        "Exchange utilisation: share of volume",
        "Exchange utilisation: share of calls",
        "Database query latency p95",
    } <= titles


def test_cli_writes_every_file(tmp_path: Path) -> None:
    """The four generator commands write files the loaders read back."""
    from mevobs.cli import main

    assert main(["rules", "-o", str(tmp_path / "rules.yml")]) == 0
    assert main(["alertmanager", "-o", str(tmp_path / "am.yml")]) == 0
    assert main(["dashboards", "-o", str(tmp_path / "dash")]) == 0
    assert main(["collector-config", "-o", str(tmp_path / "otelcol.yml")]) == 0
    assert yaml.safe_load((tmp_path / "rules.yml").read_text())["groups"]
    assert yaml.safe_load((tmp_path / "am.yml").read_text())["receivers"]
    assert yaml.safe_load((tmp_path / "otelcol.yml").read_text())["service"]
    assert sorted(p.name for p in (tmp_path / "dash").iterdir()) == [
        "mevobs-exchange.json",
        "mevobs-overview.json",
        "mevobs-process.json",
    ]


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "alerts.toml"
    bad.write_text("slippage_p95_bp = -3\n")
    done = subprocess.run(
        [sys.executable, "-m", "mevobs", "rules", "--config", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "slippage_p95_bp" in done.stderr
    assert "Traceback" not in done.stderr
