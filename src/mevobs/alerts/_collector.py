"""An OpenTelemetry Collector configuration for production fleets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CollectorSettings(BaseModel):
    """Endpoints and limits of the generated collector configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    otlp_grpc_endpoint: str = Field("0.0.0.0:4317", description="Where bots send OTLP/gRPC.")
    otlp_http_endpoint: str = Field("0.0.0.0:4318", description="Where bots send OTLP/HTTP.")
    prometheus_endpoint: str = Field("0.0.0.0:8889", description="Where Prometheus scrapes the fleet.")
    upstream_otlp_endpoint: str | None = Field(
        None, description="Forward traces and logs (and metrics) to this OTLP/gRPC backend, e.g. Tempo."
    )
    upstream_insecure: bool = Field(False, description="Plain-text gRPC to the upstream (inside a VPC).")
    memory_limit_percentage: int = Field(80, ge=10, le=95)
    memory_spike_percentage: int = Field(20, ge=5, le=50)
    batch_size: int = Field(8192, gt=0)
    batch_timeout: str = Field("1s")


def build_collector_config(settings: CollectorSettings | None = None) -> dict[str, Any]:
    """OTLP receivers, ``memory_limiter`` then ``batch`` in every pipeline, a Prometheus
    exporter for metrics (the names match the embedded exporter's) and, when an
    upstream is set, an OTLP exporter for traces, logs and metrics."""
    s = settings or CollectorSettings()
    exporters: dict[str, Any] = {
        "prometheus": {
            "endpoint": s.prometheus_endpoint,
            # Keep the resource attributes (service.name...) as labels, as target_info.
            "resource_to_telemetry_conversion": {"enabled": True},
            "enable_open_metrics": True,
        },
    }
    if s.upstream_otlp_endpoint:
        exporters["otlp"] = {
            "endpoint": s.upstream_otlp_endpoint,
            "tls": {"insecure": s.upstream_insecure},
            "sending_queue": {"enabled": True, "queue_size": 5000},
            "retry_on_failure": {"enabled": True, "max_elapsed_time": "300s"},
        }
    else:
        exporters["debug"] = {"verbosity": "basic"}
    sink = ["otlp"] if s.upstream_otlp_endpoint else ["debug"]
    processors = ["memory_limiter", "batch"]
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
                "traces": {"receivers": ["otlp"], "processors": processors, "exporters": sink},
                "metrics": {
                    "receivers": ["otlp"],
                    "processors": processors,
                    "exporters": ["prometheus", *(["otlp"] if s.upstream_otlp_endpoint else [])],
                },
                "logs": {"receivers": ["otlp"], "processors": processors, "exporters": sink},
            },
        },
    }
