"""`mevobs collector-config`: each signal to its own upstream, logs never to the trace store, plain YAML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mevobs.alerts import CollectorSettings, build_collector_config, write_collector_config
from mevobs.cli import main


def _generate(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    out = tmp_path / "otelcol.yml"
    assert main(["collector-config", *argv, "-o", str(out)]) == 0
    return out.read_text(), capsys.readouterr().err


def _destinations(config: dict[str, Any], signal: str) -> set[str]:
    """The endpoints (or exporter kinds without one) that a signal's pipelines export to."""
    found = set()
    for name, pipeline in config["service"]["pipelines"].items():
        if name.split("/")[0] != signal:
            continue
        for exporter in pipeline["exporters"]:
            found.add(config["exporters"][exporter].get("endpoint", exporter))
    return found


def test_logs_go_to_the_log_store_only_and_traces_metrics_to_the_upstream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, err = _generate(["--upstream", "tempo:4317", "--logs-upstream", "loki:4317"], tmp_path, capsys)
    config = yaml.safe_load(text)
    assert _destinations(config, "logs") == {"loki:4317"}
    assert "tempo:4317" not in _destinations(config, "logs")
    assert _destinations(config, "traces") == {"tempo:4317"}
    assert _destinations(config, "metrics") == {"0.0.0.0:8889", "tempo:4317"}
    assert "note" not in err


def test_without_logs_upstream_logs_stay_on_the_host_and_the_operator_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, err = _generate(["--upstream", "tempo:4317", "--insecure"], tmp_path, capsys)
    config = yaml.safe_load(text)
    assert _destinations(config, "logs") == {"debug"}
    assert _destinations(config, "traces") == {"tempo:4317"}
    assert config["exporters"]["otlp/traces"]["tls"] == {"insecure": True}
    notes = [line for line in err.splitlines() if "note" in line]
    assert len(notes) == 1 and "--logs-upstream" in notes[0]


def test_per_signal_overrides_and_http_upstreams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = _generate(
        [
            "--upstream",
            "gateway:4317",
            "--traces-upstream",
            "tempo:4317",
            "--metrics-upstream",
            "http://prometheus:9090/api/v1/otlp",
            "--logs-upstream",
            "http://loki:3100/otlp",
        ],
        tmp_path,
        capsys,
    )
    config = yaml.safe_load(text)
    assert _destinations(config, "traces") == {"tempo:4317"}
    assert _destinations(config, "metrics") == {"0.0.0.0:8889", "http://prometheus:9090/api/v1/otlp"}
    assert _destinations(config, "logs") == {"http://loki:3100/otlp"}
    assert config["service"]["pipelines"]["logs"]["exporters"] == ["otlphttp/logs"]
    assert "gateway:4317" not in text


def test_an_explicit_shared_upstream_carries_logs_only_when_named_for_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An agent forwarding everything to a gateway collector names it for logs too."""
    text, _ = _generate(["--upstream", "gateway:4317", "--logs-upstream", "gateway:4317"], tmp_path, capsys)
    config = yaml.safe_load(text)
    assert {s: _destinations(config, s) - {"0.0.0.0:8889"} for s in ("traces", "metrics", "logs")} == {
        "traces": {"gateway:4317"},
        "metrics": {"gateway:4317"},
        "logs": {"gateway:4317"},
    }


@pytest.mark.parametrize(
    "settings",
    [
        CollectorSettings(),
        CollectorSettings(upstream_otlp_endpoint="tempo:4317"),
        CollectorSettings(
            upstream_otlp_endpoint="tempo:4317", logs_upstream_endpoint="http://loki:3100/otlp"
        ),
    ],
)
def test_yaml_is_plain_without_anchors_or_aliases(settings: CollectorSettings) -> None:
    """The same processors list in three pipelines must not come out as &id001 / *id001."""
    text = write_collector_config(None, settings)
    assert not re.search(r"[&*]id\d+", text)
    assert not any(line.lstrip("- ").startswith(("&", "*")) for line in text.splitlines())
    assert yaml.safe_load(text) == build_collector_config(settings)


def test_every_pipeline_names_defined_components_with_memory_limiter_first() -> None:
    config = build_collector_config(
        CollectorSettings(upstream_otlp_endpoint="a:4317", logs_upstream_endpoint="https://logs.example/otlp")
    )
    for name, pipeline in config["service"]["pipelines"].items():
        assert pipeline["processors"][0] == "memory_limiter", name
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(config[kind]), (name, kind)
    assert set(config["exporters"]) == {"prometheus", "otlp/traces", "otlp/metrics", "otlphttp/logs"}
