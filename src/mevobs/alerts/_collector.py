"""An OpenTelemetry Collector configuration for production fleets.

Each signal has its own upstream: traces to a trace store (Tempo, Jaeger),
logs to a log store (Loki, Elasticsearch), metrics to Prometheus (scraped
here, optionally pushed on). Logs are never sent to the trace/metrics
upstream unless they are named for it: a store that accepts OTLP logs may not
be the one meant to keep them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SIGNALS = ("traces", "metrics", "logs")


class CollectorSettings(BaseModel):
    """Endpoints and limits of the generated collector configuration.

    An upstream ``host:port`` is OTLP/gRPC (``otlp`` exporter); an ``http://`` or
    ``https://`` URL is OTLP/HTTP (``otlphttp`` exporter, which appends ``/v1/logs``
    and so on, e.g. Loki's ``http://loki:3100/otlp``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    otlp_grpc_endpoint: str = Field("0.0.0.0:4317", description="Where bots send OTLP/gRPC.")
    otlp_http_endpoint: str = Field("0.0.0.0:4318", description="Where bots send OTLP/HTTP.")
    prometheus_endpoint: str = Field("0.0.0.0:8889", description="Where Prometheus scrapes the fleet.")
    upstream_otlp_endpoint: str | None = Field(
        None, description="Forward traces and metrics (never logs) to this OTLP backend, e.g. Tempo."
    )
    traces_upstream_endpoint: str | None = Field(
        None, description="Forward traces here instead of upstream_otlp_endpoint."
    )
    metrics_upstream_endpoint: str | None = Field(
        None, description="Push metrics here instead of upstream_otlp_endpoint (Prometheus still scrapes)."
    )
    logs_upstream_endpoint: str | None = Field(
        None,
        description="Forward logs to this OTLP log store (Loki, Elasticsearch); without it logs stay "
        "on the host (debug exporter, a count in the collector's own log).",
    )
    upstream_insecure: bool = Field(False, description="Plain-text gRPC to the upstreams (inside a VPC).")
    memory_limit_percentage: int = Field(80, ge=10, le=95)
    memory_spike_percentage: int = Field(20, ge=5, le=50)
    batch_size: int = Field(8192, gt=0)
    batch_timeout: str = Field("1s")

    def upstream(self, signal: str) -> str | None:
        """Where ``signal`` is forwarded, if anywhere."""
        if signal == "logs":
            return self.logs_upstream_endpoint
        if signal == "traces":
            return self.traces_upstream_endpoint or self.upstream_otlp_endpoint
        return self.metrics_upstream_endpoint or self.upstream_otlp_endpoint


def _otlp_exporter(endpoint: str, insecure: bool) -> tuple[str, dict[str, Any]]:
    common = {
        "sending_queue": {"enabled": True, "queue_size": 5000},
        "retry_on_failure": {"enabled": True, "max_elapsed_time": "300s"},
    }
    if endpoint.startswith(("http://", "https://")):
        return "otlphttp", {"endpoint": endpoint, **common}
    return "otlp", {"endpoint": endpoint, "tls": {"insecure": insecure}, **common}


def build_collector_config(settings: CollectorSettings | None = None) -> dict[str, Any]:
    """OTLP receivers, ``memory_limiter`` then ``batch`` in every pipeline, a Prometheus
    exporter for metrics (the names match the embedded exporter's) and one OTLP
    exporter per forwarded signal (``otlp/traces``, ``otlphttp/logs``...), each with
    its own queue so a burst of one signal cannot hold up another. A signal with no
    upstream goes to the ``debug`` exporter (metrics: Prometheus only)."""
    s = settings or CollectorSettings()
    exporters: dict[str, Any] = {
        "prometheus": {
            "endpoint": s.prometheus_endpoint,
            # Keep the resource attributes (service.name...) as labels, as target_info.
            "resource_to_telemetry_conversion": {"enabled": True},
            "enable_open_metrics": True,
        },
    }
    sinks: dict[str, list[str]] = {"metrics": ["prometheus"], "traces": [], "logs": []}
    for signal in SIGNALS:
        endpoint = s.upstream(signal)
        if endpoint:
            kind, config = _otlp_exporter(endpoint, s.upstream_insecure)
            exporters[f"{kind}/{signal}"] = config
            sinks[signal].append(f"{kind}/{signal}")
        elif signal != "metrics":
            exporters["debug"] = {"verbosity": "basic"}
            sinks[signal].append("debug")
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": s.otlp_grpc_endpoint},
                    "http": {"endpoint": s.otlp_http_endpoint},
                }
            }
        },
        "processors": {
            # memory_limiter first: it refuses data before the batch queue grows without bound.
            "memory_limiter": {
                "check_interval": "1s",
                "limit_percentage": s.memory_limit_percentage,
                "spike_limit_percentage": s.memory_spike_percentage,
            },
            "batch": {"send_batch_size": s.batch_size, "timeout": s.batch_timeout},
        },
        "exporters": exporters,
        "extensions": {"health_check": {"endpoint": "0.0.0.0:13133"}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                signal: {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": sinks[signal],
                }
                for signal in SIGNALS
            },
        },
    }
