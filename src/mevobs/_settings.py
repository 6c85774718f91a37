"""Settings for ``configure()``: a pydantic model and its environment variables.

Precedence: keyword arguments, then ``MEVOBS_*`` variables, then the standard
``OTEL_*`` variables (``_otel_env``), then defaults. ``model_fields_set`` holds
the first two only, so the pipeline can tell a value the user chose from one the
environment or a default gave. An invalid keyword argument raises
``pydantic.ValidationError`` naming the field; an invalid ``MEVOBS_*`` variable
raises :class:`SettingsError` naming the variable; an invalid ``OTEL_*`` variable
is a warning and is ignored, as the OpenTelemetry specification asks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from mevobs._exporters import EXPORTERS
from mevobs._logfile import parse_interval
from mevobs._otel_env import settings_from_env
from mevobs.guards._security import SecuritySettings

Environment = Literal["dev", "staging", "prod"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

ENV_PREFIX = "MEVOBS_"


class Settings(BaseModel):
    """Everything ``mevobs.configure()`` accepts. Each field ``x`` is also read
    from the environment variable ``MEVOBS_X``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_name: str = Field("mev-bot", min_length=1, description="service.name resource attribute.")
    environment: Environment = Field("dev", description="deployment.environment.name.")
    exporter: str = Field(
        "none",
        description="Where telemetry goes: otlp (gRPC), otlp-http, console, prometheus "
        "(metrics, needs the prometheus extra) or none.",
    )
    traces_exporter: str | None = Field(
        None, description="Exporter of spans when not the exporter above (OTEL_TRACES_EXPORTER)."
    )
    metrics_exporter: str | None = Field(
        None, description="Exporter of metrics when not the exporter above (OTEL_METRICS_EXPORTER)."
    )
    logs_exporter: str | None = Field(
        None, description="Exporter of log records when not the exporter above (OTEL_LOGS_EXPORTER)."
    )
    endpoint: str | None = Field(
        None, description="OTLP endpoint; default http://localhost:4317 (gRPC) or :4318 (HTTP)."
    )
    sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Fraction of successful traces kept; a trace with a failure, revert, rate "
        "limit, security event or slow operation is always kept whole (tail sampling).",
    )
    slow_threshold_seconds: float = Field(
        1.0, gt=0, description="An operation at least this slow keeps its whole trace."
    )
    slow_threshold_by_kind: dict[str, float] = Field(
        default_factory=dict,
        description="Per operation kind overrides of slow_threshold_seconds (env: JSON).",
    )
    pipeline: Literal["fast", "api"] = Field(
        "fast",
        description="fast: mevobs pre-aggregates metrics and exports spans and logs from a worker "
        "thread; api: record through the OpenTelemetry API into SDK providers.",
    )
    log_format: Literal["json", "text"] = Field("json", description="Format of mevobs log lines.")
    log_level: LogLevel = Field("INFO", description="Level of the mevobs logger.")
    log_destination: Literal["stderr", "stdout", "file", "none"] = Field(
        "stderr", description="Where configure() writes mevobs log lines (file: log_path, JSON lines)."
    )
    log_path: str | None = Field(
        None, validate_default=True, description="The log file when log_destination is 'file'."
    )
    log_max_bytes: int = Field(
        100 * 1024 * 1024, ge=4096, description="Rotate the log file before it grows past this size."
    )
    log_backups: int = Field(10, ge=0, description="Rotated (gzip-compressed) log files kept.")
    log_max_age_days: float = Field(
        14.0, ge=0, description="Delete rotated log files older than this (0 keeps them)."
    )
    log_rotate_interval: float | None = Field(
        86400.0,
        description="Also rotate at each UTC-aligned interval: 1h, 1d, seconds, or none (default 1d).",
    )
    resource_attributes: dict[str, str] = Field(
        default_factory=dict, description="Extra resource attributes (env: k=v,k2=v2)."
    )
    enabled: bool = Field(True, description="False records nothing (OTEL_SDK_DISABLED=true).")
    install_global: bool = Field(
        False,
        description="Replace global OpenTelemetry providers even if the application set them.",
    )
    metrics_host: str = Field("127.0.0.1", description="Bind address of the Prometheus endpoint.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Port of the Prometheus endpoint.")
    export_interval_seconds: float = Field(10.0, gt=0, description="Metric export interval.")
    export_timeout_seconds: float = Field(
        3.0, gt=0, le=60, description="Upper bound of one export attempt and of shutdown."
    )
    max_queue_size: int = Field(
        8192, ge=16, description="Span and log queue bound; what overflows is counted, never waited for."
    )
    max_series_per_metric: int = Field(
        2000, ge=10, description="Series per metric before new ones record into one 'other' series."
    )
    cardinality_cap: int = Field(
        100, ge=1, description="Distinct values per metric attribute before 'other'."
    )
    scrub_secrets: bool = Field(True, description="Scrub keys, mnemonics and URL secrets.")
    health_port: int | None = Field(
        None, ge=0, le=65535, description="Start a HealthServer (/healthz, /readyz) on this port."
    )
    health_host: str = Field("127.0.0.1", description="Bind address of the HealthServer.")
    health_token: str | None = Field(None, description="Bearer token the HealthServer requires.")
    health_interval_seconds: float = Field(
        15.0, gt=0, description="How often the HealthServer re-runs its checks for mev.exchange.up."
    )
    system_metrics: bool = Field(
        False, description="Process memory, CPU, threads, fds, GC, network I/O and event-loop lag."
    )
    instrument: list[str] = Field(
        default_factory=list,
        description="OpenTelemetry contrib instrumentations to switch on, e.g. sqlite3,requests.",
    )
    audit_path: str | None = Field(None, description="Write the hash-chained audit trail to this file.")
    audit_rotate_bytes: int = Field(
        64 * 1024 * 1024, ge=4096, description="Rotate the audit file past this size."
    )
    audit_fsync: bool = Field(False, description="fsync every audit record (durable, slower).")
    audit_key: SecretStr | None = Field(
        None, description="HMAC-SHA256 key sealing audit records and checkpoints; never logged."
    )
    audit_key_file: str | None = Field(None, description="Read the audit key from this file instead.")
    audit_checkpoint_every: int = Field(
        1000, ge=1, description="Write a signed audit checkpoint every this many records (and on close)."
    )
    contract_allowlist: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per chain (or '*'), the contracts transactions may go to (env: JSON).",
    )
    memory_limit_bytes: int | None = Field(
        None,
        gt=0,
        description=(
            "The bot's memory limit; mev.process.memory.limit reports the smallest of this, "
            "the cgroup's limit and the host's RAM."
        ),
    )
    exposure_limits: dict[str, float] = Field(
        default_factory=dict,
        description="Risk limit per token in whole tokens, reported as mev.exposure.limit (env: JSON).",
    )
    security: SecuritySettings = Field(
        default_factory=SecuritySettings, description="Security detector thresholds (env: JSON)."
    )

    @field_validator("exporter")
    @classmethod
    def _known_exporter(cls, value: str) -> str:
        if value not in EXPORTERS:
            raise ValueError(f"unknown exporter {value!r}; one of {', '.join(EXPORTERS)}")
        return value

    @field_validator("traces_exporter", "metrics_exporter", "logs_exporter")
    @classmethod
    def _signal_exporter(cls, value: str | None, info: ValidationInfo) -> str | None:
        signal = str(info.field_name).removesuffix("_exporter")
        if value is not None and (value not in EXPORTERS or signal not in EXPORTERS[value].signals):
            names = [name for name, row in EXPORTERS.items() if signal in row.signals]
            raise ValueError(f"unknown {signal} exporter {value!r}; one of {', '.join(names)}")
        return value

    @field_validator("log_rotate_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        return parse_interval(value)

    @field_validator("log_destination")
    @classmethod
    def _file_is_json(cls, value: str, info: ValidationInfo) -> str:
        if value == "file" and info.data.get("log_format", "json") != "json":
            raise ValueError("'file' writes JSON lines: log_format must be 'json'")
        return value

    @field_validator("log_path")
    @classmethod
    def _file_needs_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("log_destination") == "file" and not value:
            raise ValueError("log_path is required when log_destination is 'file'")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, /, **overrides: Any) -> Settings:
        """Build settings from keyword arguments, then the environment, then defaults."""
        env = os.environ if environ is None else environ
        from_env: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "" and name not in overrides:
                from_env[name] = raw
                values[name] = _parse_env(name, raw)
        values.update(overrides)
        otel = settings_from_env(env, values)
        try:
            settings = cls.model_validate({**otel, **values})
        except ValidationError as exc:
            raise _env_error(exc, from_env) from None
        # What the OTEL_* variables gave is not the user's explicit choice.
        settings.__pydantic_fields_set__.difference_update(otel.keys() - values.keys())
        return settings


class SettingsError(ValueError):
    """A ``MEVOBS_*`` environment variable holds a value its setting refuses."""


def _env_error(exc: ValidationError, from_env: Mapping[str, str]) -> Exception:
    """A one-line error naming the variable when a ``MEVOBS_*`` value failed, else ``exc``."""
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if field in from_env:
            where = ".".join(str(part) for part in error["loc"][1:])
            message = error["msg"] + (f" (at {where})" if where else "")
            more = len(exc.errors()) - 1
            extra = f"; and {more} more error{'s' if more > 1 else ''}" if more else ""
            variable = ENV_PREFIX + field.upper()
            return SettingsError(f"{variable}={from_env[field]!r}: {message}{extra}")
    return exc


def _parse_env(name: str, raw: str) -> Any:
    if name == "resource_attributes":
        return _parse_pairs(raw)
    if name == "instrument":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if name in ("contract_allowlist", "security", "slow_threshold_by_kind", "exposure_limits"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw  # validation names the field
    return raw


def _parse_pairs(raw: str) -> dict[str, str] | str:
    """``k=v,k2=v2`` with percent-encoded values (the OTEL_RESOURCE_ATTRIBUTES form);
    a malformed string is returned as is so that validation names the field."""
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return raw
        pairs[key.strip()] = unquote(value.strip())
    return pairs


__all__ = ["Settings", "SettingsError"]
