"""Alert thresholds, windows and receivers: one pydantic model, loadable from YAML or TOML."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, ValidationError

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _duration(text: str) -> str:
    if not _DURATION.match(text) or all(int(n) == 0 for n in re.findall(r"\d+", text)):
        raise ValueError(f"not a Prometheus duration such as 30s, 5m or 1h30m: {text!r}")
    return text


def _zero_or_duration(text: str) -> str:
    return text if text == "0s" else _duration(text)


Duration = Annotated[str, AfterValidator(_duration)]
"""A Prometheus duration (``30s``, ``5m``, ``1h30m``), non-zero."""

ForDuration = Annotated[str, AfterValidator(_zero_or_duration)]
"""How long a condition must hold before its alert fires; ``0s`` fires at once."""

Ratio = Annotated[float, Field(ge=0.0, le=1.0)]


class AlertSettings(BaseModel):
    """Every threshold, window and receiver the generated rules and configs use.

    Defaults suit a bot doing a few operations per second on mainnet; load your
    own with :meth:`load`. Field names are the keys of the YAML/TOML file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- where the series come from
    selector: str = Field(
        "",
        description='Extra label matchers added to every series, e.g. job="mevbot"; empty matches all. '
        "Match on target labels: the bot-down alert applies them to Prometheus's up series too.",
    )
    group_interval: Duration = Field("30s", description="Evaluation interval of the generated rule groups.")
    rate_window: Duration = Field("5m", description="Window of the rates behind most rules and panels.")

    # -- critical
    failure_ratio: Ratio = Field(
        0.2, description="Failed transactions: share of swap/liquidity/arbitrage calls failed or reverted."
    )
    failure_min_rate: float = Field(
        0.01, ge=0, description="Failed transactions: ignore series with fewer operations per second."
    )
    failure_for: ForDuration = Field("2m", description="Failed transactions: how long before firing.")
    security_for: ForDuration = Field("0s", description="Security incident: how long before firing.")
    latency_p99_seconds: float = Field(
        2.0, gt=0, description="Performance degradation: p99 latency over rate_window above this (seconds)..."
    )
    latency_baseline_factor: float = Field(
        2.0,
        ge=1.0,
        description="...and above this multiple of its baseline: the median of the recorded p99 over "
        "latency_baseline_window, ending rate_window ago (so the degradation is not in it).",
    )
    latency_baseline_window: Duration = Field("1d", description="Performance degradation: baseline window.")
    latency_for: ForDuration = Field("10m", description="Performance degradation: how long before firing.")
    min_profit_eth_per_hour: float = Field(
        0.0, description="Profitability drop: net profit rate (ETH per hour) below this; 0 means negative."
    )
    profit_window: Duration = Field("1h", description="Profitability drop: window of the net profit rate.")
    profit_for: ForDuration = Field("15m", description="Profitability drop: how long before firing.")
    connectivity_failure_ratio: Ratio = Field(
        0.25,
        description="Exchange connectivity: share of RPC and swap calls per exchange and chain that "
        "failed (an exception: reverts and rate limits excluded), where no health check reports it up.",
    )
    connectivity_min_rate: float = Field(
        0.01, ge=0, description="Exchange connectivity: ignore exchanges with fewer calls per second."
    )
    connectivity_for: ForDuration = Field("2m", description="Exchange connectivity: how long before firing.")
    bot_down_window: Duration = Field(
        "2m",
        description="Bot down: mev.heartbeat unchanged (or absent) for this long; keep it above the "
        "metric export interval plus a scrape interval.",
    )
    bot_down_lookback: Duration = Field(
        "1d",
        description="Bot down: a job or service that reported mev.heartbeat within this window is a bot; "
        "one silent for longer stops alerting.",
    )
    bot_down_for: ForDuration = Field("1m", description="Bot down: how long before firing.")
    trading_halted_for: ForDuration = Field(
        "5m", description="Trading halted: a circuit breaker open (or half open) for this long."
    )
    telemetry_lost_for: ForDuration = Field(
        "5m",
        description="Telemetry lost: telemetry dropped for a loss reason within every rate_window for "
        "this long (a single failed export, gone within the window, does not fire).",
    )

    # -- warning
    slippage_p95_bp: float = Field(
        50.0, ge=0, description="High slippage: p95 adverse slippage of successful swaps above this (bp)."
    )
    slippage_for: ForDuration = Field("10m", description="High slippage: how long before firing.")
    min_pool_liquidity_usd: float = Field(
        100_000.0, ge=0, description="Low liquidity: a watched pool's liquidity below this (USD)."
    )
    liquidity_for: ForDuration = Field("5m", description="Low liquidity: how long before firing.")
    max_price_deviation_bp: float = Field(
        300.0, ge=0, description="Unusual price difference: pool price off reference by more (bp)."
    )
    price_deviation_for: ForDuration = Field("2m", description="Unusual price difference: how long.")
    rate_limited_ratio: Ratio = Field(
        0.05, description="API rate limiting: share of RPC calls answered with a rate limit."
    )
    rate_limited_for: ForDuration = Field("5m", description="API rate limiting: how long before firing.")
    memory_fraction: Ratio = Field(
        0.85,
        description="Memory: warn above this fraction of the limit the bot reports "
        "(mev.process.memory.limit: the smallest of configure(memory_limit_bytes=...), "
        "the cgroup's and the host's RAM).",
    )
    memory_for: ForDuration = Field("5m", description="Memory: how long before firing.")
    exposure_for: ForDuration = Field(
        "2m",
        description="Risk exposure: a token's inventory above its limit (configure(exposure_limits=...)) "
        "for this long.",
    )

    # -- routing and documentation
    runbook_url: str = Field(
        "docs/runbook.md", description="Base URL of the runbook; each alert links to its #section."
    )
    pager_webhook_url: HttpUrl = Field(
        HttpUrl("http://127.0.0.1:9095/pager"),
        description="Alertmanager: webhook receiving critical alerts (your pager bridge).",
    )
    chat_webhook_url: HttpUrl = Field(
        HttpUrl("http://127.0.0.1:9095/chat"),
        description="Alertmanager: webhook receiving warnings (your chat bridge).",
    )
    group_wait: Duration = Field("30s", description="Alertmanager: wait before the first notification.")
    alert_group_interval: Duration = Field("5m", description="Alertmanager: wait between group updates.")
    repeat_interval: Duration = Field("4h", description="Alertmanager: resend a firing alert this often.")

    @classmethod
    def load(cls, path: str | Path) -> AlertSettings:
        """Read settings from a ``.yaml``/``.yml`` or ``.toml`` file.

        Raises :class:`AlertSettingsError` naming the file and the offending field.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise AlertSettingsError(f"{path}: {exc.strerror or exc}") from None
        try:
            data = _parse(path, text)
        except ValueError as exc:
            raise AlertSettingsError(f"{path}: {exc}") from None
        if not isinstance(data, dict):
            raise AlertSettingsError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(top level)"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise AlertSettingsError(f"{path}: {field}: {first['msg']}{more}") from None


class AlertSettingsError(ValueError):
    """An alert settings file that cannot be read or does not validate; the message
    names the file and the field."""


def _parse(path: Path, text: str) -> Any:
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {exc}") from None
    if path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"not valid TOML: {exc}") from None
    raise ValueError("unknown settings format; use .yaml, .yml or .toml")
