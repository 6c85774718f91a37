"""The ``OTEL_*`` environment variables, read as the OpenTelemetry SDK specification says.

What the SDK already reads stays with the SDK: the resource (``Resource.create``
reads ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``, percent-decoded) and
the OTLP exporters' endpoints, headers, compression and certificates (mevobs
builds the exporters without those arguments unless ``configure()`` was given
them). This module reads only what mevobs must decide itself: whether the SDK is
disabled, which exporter each signal uses and with which OTLP protocol, the
sampler (which sets mevobs's tail-sampling rate), the export timeouts (in
milliseconds, as the specification says; the Python SDK reads seconds) and the
Prometheus address.

An invalid value is logged once as a WARNING on the ``mevobs.env`` logger, naming
the variable, and ignored: the setting keeps its default, as the specification asks
of an SDK. :data:`ENV_VARIABLES` is the table docs/getting-started.md shows.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIGNALS = ("traces", "metrics", "logs")
PROTOCOLS = ("grpc", "http/protobuf")

#: Where the warnings about the environment go (a child of the ``mevobs`` logger).
ENV_LOGGER = "mevobs.env"
_LOGGER = logging.getLogger(ENV_LOGGER)
_WARNED: set[str] = set()
_PENDING: list[str] = []
_MAX_PENDING = 64


def warn_once(message: str) -> None:
    """One WARNING on the ``mevobs.env`` logger per distinct message and process.

    While nothing would show it (only mevobs's NullHandler, no handler of the
    application's), the message waits until :func:`flush_warnings`: ``configure()``
    calls it once its own log handlers are installed.
    """
    if message in _WARNED:
        return
    _WARNED.add(message)
    if _visible():
        _LOGGER.warning("mevobs: %s", message)
    elif len(_PENDING) < _MAX_PENDING:
        _PENDING.append(message)


def flush_warnings() -> None:
    """Log the warnings that were raised while no handler could show them."""
    while _PENDING and _visible():
        _LOGGER.warning("mevobs: %s", _PENDING.pop(0))


def _visible() -> bool:
    logger: logging.Logger | None = _LOGGER
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def reset_warnings() -> None:
    """Forget which warnings were given (tests)."""
    _WARNED.clear()
    _PENDING.clear()


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _invalid(name: str, raw: str, expected: str, using: str) -> None:
    warn_once(f"{name}={raw!r} is invalid ({expected}); ignored, using {using}")


# ----------------------------------------------------------------------- the SDK


def sdk_disabled(env: Mapping[str, str]) -> bool | None:
    """``OTEL_SDK_DISABLED``: True or False when set to either, else None."""
    raw = _get(env, "OTEL_SDK_DISABLED")
    if raw is None:
        return None
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    _invalid("OTEL_SDK_DISABLED", raw, "true or false", "false")
    return None


# ------------------------------------------------------------------- the sampler

#: The specification's sampler names and the rate of successful traces each keeps
#: (None: the rate is OTEL_TRACES_SAMPLER_ARG).
SAMPLERS: dict[str, float | None] = {
    "always_on": 1.0,
    "parentbased_always_on": 1.0,
    "always_off": 0.0,
    "parentbased_always_off": 0.0,
    "traceidratio": None,
    "parentbased_traceidratio": None,
}


@dataclass(frozen=True)
class SamplerChoice:
    """What ``OTEL_TRACES_SAMPLER`` means for mevobs's tail sampling."""

    ratio: float  # the share of successful traces kept
    traces: bool  # False: always_off, no trace at all (not even failed ones)


def sampler(env: Mapping[str, str]) -> SamplerChoice | None:
    """The sampler the environment names, or None (the default: every trace kept).

    ``OTEL_TRACES_SAMPLER_ARG`` applies to the ratio samplers only, as in the
    specification; without ``OTEL_TRACES_SAMPLER`` the default sampler
    (parentbased_always_on) takes no argument.
    """
    raw = _get(env, "OTEL_TRACES_SAMPLER")
    if raw is None:
        return None
    name = raw.lower()
    if name not in SAMPLERS:
        _invalid("OTEL_TRACES_SAMPLER", raw, "one of " + ", ".join(SAMPLERS), "parentbased_always_on")
        return None
    ratio = SAMPLERS[name]
    if ratio is None:
        ratio = _sampler_arg(env)
    return SamplerChoice(ratio, traces=name not in ("always_off", "parentbased_always_off"))


def _sampler_arg(env: Mapping[str, str]) -> float:
    raw = _get(env, "OTEL_TRACES_SAMPLER_ARG")
    if raw is None:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        _invalid("OTEL_TRACES_SAMPLER_ARG", raw, "a ratio from 0 to 1", "1.0")
        return 1.0
    return value


# ----------------------------------------------------------------- the exporters

#: The values of OTEL_{TRACES,METRICS,LOGS}_EXPORTER mevobs supports, per signal.
SIGNAL_EXPORTERS: dict[str, tuple[str, ...]] = {
    "traces": ("otlp", "console", "none"),
    "metrics": ("otlp", "prometheus", "console", "none"),
    "logs": ("otlp", "console", "none"),
}


def signal_exporter(signal: str, env: Mapping[str, str]) -> str | None:
    """``OTEL_<SIGNAL>_EXPORTER``: ``otlp``, ``console``, ``none`` (or ``prometheus``
    for metrics), else None. mevobs sends a signal to one exporter: of a list, the
    first supported one is used, with a warning."""
    name = f"OTEL_{signal.upper()}_EXPORTER"
    raw = _get(env, name)
    if raw is None:
        return None
    wanted = ["console" if w == "logging" else w for w in (p.strip().lower() for p in raw.split(",")) if w]
    allowed = SIGNAL_EXPORTERS[signal]
    if "none" in wanted:
        return "none"
    supported = [w for w in wanted if w in allowed]
    if not supported:
        _invalid(name, raw, "one of " + ", ".join(allowed), "the exporter setting")
        return None
    if len(wanted) > 1:
        warn_once(f"{name}={raw!r}: mevobs sends {signal} to one exporter; using {supported[0]}")
    return supported[0]


def otlp_configured(env: Mapping[str, str]) -> bool:
    """Whether any OTLP endpoint or protocol variable is set (general or per signal)."""
    names = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"]
    for signal in SIGNALS:
        names += [
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT",
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL",
        ]
    return any(_get(env, name) for name in names)


def signal_protocol(signal: str, default: str, env: Mapping[str, str] | None = None) -> str:
    """The OTLP protocol of ``signal``: the per-signal variable, then the general one,
    then ``default``. ``http/json`` (no SDK exporter speaks it) is refused with a
    warning and sent as http/protobuf; an unknown value is ignored with a warning."""
    env = os.environ if env is None else env
    for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        raw = _get(env, name)
        if raw is None:
            continue
        value = raw.lower()
        if value in PROTOCOLS:
            return value
        if value == "http/json":
            warn_once(f"{name}='http/json' is not supported (no SDK exporter sends it); using http/protobuf")
            return "http/protobuf"
        _invalid(name, raw, "grpc, http/protobuf or http/json", default)
        return default
    return default


def timeout_seconds(signal: str, env: Mapping[str, str] | None = None) -> float | None:
    """``OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT``, then ``OTEL_EXPORTER_OTLP_TIMEOUT``, in
    milliseconds as the specification says, converted to seconds; None when unset."""
    env = os.environ if env is None else env
    for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        raw = _get(env, name)
        if raw is None:
            continue
        try:
            millis = float(raw)
        except ValueError:
            millis = math.nan
        if 0 < millis < math.inf:
            return millis / 1000
        _invalid(name, raw, "a positive number of milliseconds", "the next setting")
    return None


def _port(env: Mapping[str, str], name: str) -> int | None:
    raw = _get(env, name)
    if raw is None:
        return None
    if raw.isdigit() and int(raw) <= 65535:
        return int(raw)
    _invalid(name, raw, "a port from 0 to 65535", "the metrics_port setting")
    return None


# ------------------------------------------------------- what becomes a Settings field


def settings_from_env(env: Mapping[str, str], given: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~mevobs.Settings` values the ``OTEL_*`` variables give for every
    field not in ``given`` (keyword arguments and ``MEVOBS_*`` variables, which win).
    Every value returned is valid: an invalid variable was warned about and left out."""
    out: dict[str, Any] = {}
    disabled = sdk_disabled(env)
    if disabled is not None and "enabled" not in given:
        out["enabled"] = not disabled
    if "exporter" not in given and otlp_configured(env):
        # The row only sets the default protocol; the protocol variables still apply per signal.
        general = (_get(env, "OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").lower()
        out["exporter"] = "otlp-http" if general.startswith("http") else "otlp"
    exporter = given.get("exporter", out.get("exporter", "none"))
    for signal in SIGNALS:
        field = f"{signal}_exporter"
        if field in given:
            continue
        choice = signal_exporter(signal, env)
        if choice == "otlp":
            # The OTLP row of the general exporter, so its default protocol applies.
            choice = exporter if exporter in ("otlp", "otlp-http") else "otlp"
        if choice is not None:
            out[field] = choice
    chosen = sampler(env)
    if chosen is not None and "sample_ratio" not in given:
        out["sample_ratio"] = chosen.ratio
        if not chosen.traces and "traces_exporter" not in given:
            out["traces_exporter"] = "none"
    if "metrics_host" not in given and (host := _get(env, "OTEL_EXPORTER_PROMETHEUS_HOST")):
        out["metrics_host"] = host
    if "metrics_port" not in given and (port := _port(env, "OTEL_EXPORTER_PROMETHEUS_PORT")) is not None:
        out["metrics_port"] = port
    return out


# ------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class EnvVariable:
    """One row of the table in docs/getting-started.md."""

    name: str
    read_by: str  # "SDK" (the OpenTelemetry SDK reads it) or "mevobs"
    effect: str


ENV_VARIABLES: tuple[EnvVariable, ...] = (
    EnvVariable("OTEL_SERVICE_NAME", "SDK", "`service.name`; a `service_name` given to configure() wins"),
    EnvVariable(
        "OTEL_RESOURCE_ATTRIBUTES",
        "SDK",
        "`k=v,k2=v2`, percent-decoded; configure()'s `resource_attributes`, `service_name` and "
        "`environment` win; mevobs's defaults never overwrite them",
    ),
    EnvVariable("OTEL_SDK_DISABLED", "mevobs", "`true`: configure() records nothing (`enabled=False`)"),
    EnvVariable(
        "OTEL_TRACES_SAMPLER",
        "mevobs",
        "`always_on`, `parentbased_always_on`: every trace kept; `always_off`, "
        "`parentbased_always_off`: no traces; `traceidratio`, `parentbased_traceidratio`: "
        "`sample_ratio` = the argument",
    ),
    EnvVariable(
        "OTEL_TRACES_SAMPLER_ARG", "mevobs", "the ratio (0..1) of the two ratio samplers; default 1.0"
    ),
    EnvVariable(
        "OTEL_TRACES_EXPORTER",
        "mevobs",
        "`otlp`, `console` or `none`; unset: the `exporter` setting",
    ),
    EnvVariable(
        "OTEL_METRICS_EXPORTER",
        "mevobs",
        "`otlp`, `prometheus`, `console` or `none`; unset: the `exporter` setting",
    ),
    EnvVariable(
        "OTEL_LOGS_EXPORTER",
        "mevobs",
        "`otlp`, `console` (the log destination already prints) or `none`; unset: the `exporter` setting",
    ),
    EnvVariable(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "SDK",
        "collector base URL (HTTP adds `/v1/<signal>`); setting it selects the OTLP exporter",
    ),
    EnvVariable(
        "OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT",
        "SDK",
        "the signal's full URL, beats the general one; setting it selects the OTLP exporter",
    ),
    EnvVariable(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "mevobs",
        "`grpc` or `http/protobuf`; `http/json` is sent as http/protobuf with a warning",
    ),
    EnvVariable(
        "OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL",
        "mevobs",
        "the signal's protocol, beats the general one",
    ),
    EnvVariable("OTEL_EXPORTER_OTLP_HEADERS", "SDK", "`k=v,k2=v2`, percent-decoded, sent with every export"),
    EnvVariable(
        "OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_HEADERS",
        "SDK",
        "the signal's headers, beat the general ones",
    ),
    EnvVariable(
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "mevobs",
        "milliseconds per export, as the specification says; `export_timeout_seconds` given to "
        "configure() wins",
    ),
    EnvVariable(
        "OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_TIMEOUT",
        "mevobs",
        "the signal's timeout, beats the general one",
    ),
    EnvVariable(
        "OTEL_METRIC_EXPORT_INTERVAL", "SDK", "milliseconds between metric exports (default here 10000)"
    ),
    EnvVariable("OTEL_METRIC_EXPORT_TIMEOUT", "SDK", "milliseconds one metric export may take"),
    EnvVariable("OTEL_EXPORTER_PROMETHEUS_HOST", "mevobs", "bind address of /metrics (`metrics_host`)"),
    EnvVariable("OTEL_EXPORTER_PROMETHEUS_PORT", "mevobs", "port of /metrics (`metrics_port`, 0: any free)"),
)


def env_table_markdown() -> str:
    """:data:`ENV_VARIABLES` as the Markdown table of docs/getting-started.md."""
    lines = ["| Variable | Read by | What it does |", "|---|---|---|"]
    lines += [f"| `{row.name}` | {row.read_by} | {row.effect} |" for row in ENV_VARIABLES]
    return "\n".join(lines) + "\n"
