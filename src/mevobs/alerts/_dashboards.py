"""Grafana dashboards (JSON model, schema 39: Grafana 10.4 and later import it)
built from the telemetry contract: the fleet's trading (overview), one exchange
(drill-down) and each bot process (memory against its limit, CPU, network, GC...)."""

from __future__ import annotations

from typing import Any

from mevobs import semconv
from mevobs.alerts import _promql as q
from mevobs.alerts._settings import AlertSettings

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
RANGE = "$__range"
CHAIN = q.L_CHAIN + '=~"$chain"'
EXCHANGE = q.L_EXCHANGE + '=~"$exchange"'

JOB = q.L_JOB + '=~"$job"'
PROCESS_LEGEND = "{{job}} {{instance}} {{service_name}}"

OVERVIEW_UID = "mevobs-overview"
EXCHANGE_UID = "mevobs-exchange"
PROCESS_UID = "mevobs-process"


def _panel(
    title: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    width: int = 12,
    height: int = 8,
    description: str = "",
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flow panels left to right, top to bottom, on Grafana's 24-column grid."""
    x = y = row_h = 0
    for i, panel in enumerate(panels, start=1):
        pos = panel["gridPos"]
        if x + pos["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        pos["x"], pos["y"] = x, y
        x += pos["w"]
        row_h = max(row_h, pos["h"])
        panel["id"] = i
    return panels


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def _templating(selector: str, *, exchange: bool) -> dict[str, Any]:
    count = q.series(q.DURATION_COUNT, selector)
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
        },
        _variable("chain", "Chain", f"label_values({count}, {q.L_CHAIN})"),
    ]
    if exchange:
        scoped = q.series(q.DURATION_COUNT, selector, CHAIN)
        variables.append(_variable("exchange", "Exchange", f"label_values({scoped}, {q.L_EXCHANGE})"))
    return {"list": variables}


def _dashboard(
    uid: str, title: str, panels: list[dict[str, Any]], templating: dict[str, Any]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["mevobs", "mev"],
        "timezone": "utc",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": templating,
        "annotations": {"list": []},
        "links": [
            {"title": "Exchange drill-down", "type": "link", "url": f"/d/{EXCHANGE_UID}", "keepTime": True},
            {"title": "Overview", "type": "link", "url": f"/d/{OVERVIEW_UID}", "keepTime": True},
            {"title": "Bot processes", "type": "link", "url": f"/d/{PROCESS_UID}", "keepTime": True},
        ],
        "panels": _layout(panels),
    }


def _success_ratio(sel: str, labels: tuple[str, ...], *m: str) -> str:
    settled = q.sum_rate(q.DURATION_COUNT, sel, RATE, labels, q.none_of(q.L_OUTCOME, q.NEUTRAL_OUTCOMES), *m)
    ok = q.sum_rate(q.DURATION_COUNT, sel, RATE, labels, q.eq(q.L_OUTCOME, semconv.OUTCOME_SUCCESS), *m)
    return q.ratio(ok, settled)


def overview(settings: AlertSettings | None = None) -> dict[str, Any]:
    """The fleet at a glance: throughput, success, latency, gas, PnL, capture, slippage, RPC health
    and latency by method, breakers, inventory against its limits, volume and exchange utilisation."""
    sel = (settings or AlertSettings()).selector
    rpc = q.eq(q.L_OPERATION, semconv.OPERATION_RPC)
    by_strat = (q.L_CHAIN, q.L_STRATEGY)
    panels = [
        _panel(
            "Net profit over the range",
            [(q.net(q.PROFIT, q.LOSS, sel, RANGE, (q.L_CHAIN,), fn="increase"), "{{mev_chain}}")],
            unit="ETH",
            kind="stat",
            width=8,
            height=5,
        ),
        _panel(
            "Gas spent over the range",
            [(q.sum_increase(q.GAS_COST, sel, RANGE, (q.L_CHAIN,), CHAIN), "{{mev_chain}}")],
            unit="ETH",
            kind="stat",
            width=8,
            height=5,
        ),
        _panel(
            "Opportunity funnel",
            [(q.sum_increase(q.OPPORTUNITIES, sel, RANGE, (q.L_STAGE,), CHAIN), "{{mev_opportunity_stage}}")],
            kind="bargauge",
            width=8,
            height=5,
        ),
        _panel(
            "Throughput by operation and outcome",
            [
                (
                    q.sum_rate(q.DURATION_COUNT, sel, RATE, (q.L_OPERATION, q.L_OUTCOME), CHAIN),
                    "{{mev_operation}} {{mev_outcome}}",
                )
            ],
            unit="ops",
        ),
        _panel(
            "Success rate by operation and exchange",
            [
                (
                    _success_ratio(sel, q.BY_OPERATION, CHAIN),
                    "{{mev_operation}} {{mev_exchange}} {{mev_chain}}",
                )
            ],
            unit="percentunit",
        ),
        _panel(
            "Latency p50 / p95 / p99 by exchange",
            [
                (
                    q.quantile(p, q.DURATION_BUCKET, sel, RATE, (q.L_EXCHANGE,), CHAIN),
                    f"p{int(p * 100)} {{{{mev_exchange}}}}",
                )
                for p in (0.5, 0.95, 0.99)
            ],
            unit="s",
        ),
        _panel(
            "Gas spend rate",
            [
                (
                    f"{q.sum_rate(q.GAS_COST, sel, RATE, (q.L_CHAIN, q.L_EXCHANGE), CHAIN)} * 3600",
                    "{{mev_chain}} {{mev_exchange}}",
                )
            ],
            unit="ETH/h",
        ),
        _panel(
            "Net profit rate by strategy",
            [
                (
                    f"({q.net(q.PROFIT, q.LOSS, sel, RATE, by_strat, fn='rate')}) * 3600",
                    "{{mev_strategy}} {{mev_chain}}",
                )
            ],
            unit="ETH/h",
        ),
        _panel(
            "Capture rate (included / detected)",
            [
                (
                    q.ratio(
                        q.sum_increase(
                            q.OPPORTUNITIES, sel, RATE, by_strat, q.eq(q.L_STAGE, "included"), CHAIN
                        ),
                        q.sum_increase(
                            q.OPPORTUNITIES, sel, RATE, by_strat, q.eq(q.L_STAGE, "detected"), CHAIN
                        ),
                    ),
                    "{{mev_strategy}} {{mev_chain}}",
                )
            ],
            unit="percentunit",
        ),
        _panel(
            "Adverse slippage p95 by exchange",
            [
                (
                    q.quantile(
                        0.95,
                        q.SLIPPAGE_BUCKET,
                        sel,
                        RATE,
                        (q.L_EXCHANGE,),
                        q.eq(q.L_DIRECTION, "adverse"),
                        CHAIN,
                    ),
                    "{{mev_exchange}}",
                )
            ],
            unit="none",
            description="Basis points below the quoted amount.",
        ),
        _panel(
            "RPC errors and rate limits",
            [
                (
                    q.sum_rate(
                        q.DURATION_COUNT,
                        sel,
                        RATE,
                        (q.L_CHAIN, q.L_RPC_METHOD, q.L_OUTCOME, q.L_ERROR_TYPE),
                        rpc,
                        q.one_of(q.L_OUTCOME, (semconv.OUTCOME_FAILURE, semconv.OUTCOME_RATE_LIMITED)),
                        CHAIN,
                    ),
                    "{{mev_chain}} {{mev_rpc_method}} {{error_type}}",
                )
            ],
            unit="reqps",
            width=24,
        ),
        _panel(
            "Circuit breakers (0 closed, 1 half open, 2 open)",
            [(f"max by ({q.L_CIRCUIT}) ({q.series(q.CIRCUIT_STATE, sel)})", "{{mev_circuit_name}}")],
            unit="none",
            width=6,
        ),
        _panel(
            "Exchange connectivity checks",
            [
                (
                    f"min by ({q.L_EXCHANGE}, {q.L_CHAIN}) ({q.series(q.EXCHANGE_UP, sel, CHAIN)})",
                    "{{mev_exchange}} {{mev_chain}}",
                )
            ],
            unit="none",
            width=6,
        ),
        _panel(
            "Security events",
            [
                (
                    q.sum_increase(q.SECURITY_EVENTS, sel, RATE, (q.L_SECURITY_KIND, q.L_CHAIN)),
                    "{{mev_security_kind}} {{mev_chain}}",
                )
            ],
            unit="none",
            width=6,
        ),
        _panel(
            "Inventory (risk exposure)",
            [
                (
                    f"max by ({q.L_TOKEN}, {q.L_CHAIN}) ({q.series(q.EXPOSURE, sel, CHAIN)})",
                    "{{mev_token}} {{mev_chain}}",
                ),
            ],
            unit="none",
            width=6,
        ),
        *_volume_panels(sel),
        _panel(
            "Inventory against its limit",
            [
                (
                    f"max by ({q.L_TOKEN}, {q.L_CHAIN}) (abs({q.series(q.EXPOSURE, sel, CHAIN)}) "
                    f"/ ignoring ({q.L_CHAIN}) group_left {q.series(q.EXPOSURE_LIMIT, sel)})",
                    "{{mev_token}} {{mev_chain}}",
                )
            ],
            unit="percentunit",
            description="Each chain's holding of a token against the token's exposure_limits entry; "
            "above 100 % the risk-exposure alert fires.",
        ),
        _panel(
            "RPC latency by method (p50, p99)",
            [
                (
                    q.quantile(p, q.DURATION_BUCKET, sel, RATE, (q.L_CHAIN, q.L_RPC_METHOD), rpc, CHAIN),
                    f"p{int(p * 100)} {{{{mev_rpc_method}}}} {{{{mev_chain}}}}",
                )
                for p in (0.5, 0.99)
            ],
            unit="s",
            width=24,
        ),
    ]
    return _dashboard(OVERVIEW_UID, "mevobs: overview", panels, _templating(sel, exchange=False))


def _volume_panels(sel: str) -> list[dict[str, Any]]:
    """Notional volume per exchange, and each exchange's share of the volume and of the
    calls (exchange utilisation)."""
    by_exchange = (q.L_EXCHANGE, q.L_CHAIN)
    eth = q.sum_rate(q.VOLUME, sel, RATE, by_exchange, CHAIN)
    calls = q.sum_rate(
        q.DURATION_COUNT, sel, RATE, by_exchange, q.ne(q.L_OPERATION, semconv.OPERATION_RPC), CHAIN
    )
    legend = "{{mev_exchange}} {{mev_chain}}"
    return [
        _panel("Notional volume by exchange (ETH/h)", [(f"{eth} * 3600", legend)], unit="ETH/h", width=6),
        _panel(
            "Notional volume by exchange (USD/h)",
            [(f"{q.sum_rate(q.VOLUME_USD, sel, RATE, by_exchange, CHAIN)} * 3600", legend)],
            unit="USD/h",
            width=6,
        ),
        _panel(
            "Exchange utilisation: share of volume",
            [(f"{eth} / on () group_left sum({eth})", legend)],
            unit="percentunit",
            width=6,
        ),
        _panel(
            "Exchange utilisation: share of calls",
            [(f"{calls} / on () group_left sum({calls})", legend)],
            unit="percentunit",
            width=6,
            description="Swaps, liquidity and arbitrage operations; RPC calls excluded.",
        ),
    ]


def exchange_drilldown(settings: AlertSettings | None = None) -> dict[str, Any]:
    """One exchange on one chain: every operation's rate, success, latency, gas and slippage,
    and the pools it holds."""
    sel = (settings or AlertSettings()).selector
    both = (CHAIN, EXCHANGE)
    panels = [
        _panel(
            "Operations by kind and outcome",
            [
                (
                    q.sum_rate(q.DURATION_COUNT, sel, RATE, (q.L_OPERATION, q.L_OUTCOME), *both),
                    "{{mev_operation}} {{mev_outcome}}",
                )
            ],
            unit="ops",
        ),
        _panel(
            "Success rate by operation",
            [(_success_ratio(sel, (q.L_OPERATION,), *both), "{{mev_operation}}")],
            unit="percentunit",
        ),
        _panel(
            "Latency quantiles by operation",
            [
                (
                    q.quantile(p, q.DURATION_BUCKET, sel, RATE, (q.L_OPERATION,), *both),
                    f"p{int(p * 100)} {{{{mev_operation}}}}",
                )
                for p in (0.5, 0.95, 0.99)
            ],
            unit="s",
        ),
        _panel(
            "Gas used per transaction (p50, p95)",
            [
                (
                    q.quantile(
                        p, semconv.GAS_USED.prometheus_name + "_bucket", sel, RATE, (q.L_OPERATION,), *both
                    ),
                    f"p{int(p * 100)} {{{{mev_operation}}}}",
                )
                for p in (0.5, 0.95)
            ],
            unit="none",
        ),
        _panel(
            "Gas spend rate",
            [(f"{q.sum_rate(q.GAS_COST, sel, RATE, (q.L_OPERATION,), *both)} * 3600", "{{mev_operation}}")],
            unit="ETH/h",
        ),
        _panel(
            "Slippage p95 by direction",
            [
                (
                    q.quantile(0.95, q.SLIPPAGE_BUCKET, sel, RATE, (q.L_DIRECTION,), *both),
                    "{{mev_slippage_direction}}",
                )
            ],
            unit="none",
        ),
        _panel(
            "Notional volume (ETH/h)",
            [(f"{q.sum_rate(q.VOLUME, sel, RATE, (q.L_OPERATION,), *both)} * 3600", "{{mev_operation}}")],
            unit="ETH/h",
        ),
        _panel(
            "Pool liquidity",
            [(f"max by ({q.L_POOL}) ({q.series(q.POOL_LIQUIDITY, sel, *both)})", "{{mev_pool}}")],
            unit="currencyUSD",
        ),
        _panel(
            "Price deviation from reference",
            [(f"max by ({q.L_POOL}) ({q.series(q.PRICE_DEVIATION, sel, *both)})", "{{mev_pool}}")],
            unit="none",
            description="Basis points.",
        ),
        _panel(
            "Errors by type",
            [
                (
                    q.sum_rate(
                        q.DURATION_COUNT,
                        sel,
                        RATE,
                        (q.L_OPERATION, q.L_ERROR_TYPE),
                        q.one_of(q.L_OUTCOME, q.FAILED_OUTCOMES),
                        *both,
                    ),
                    "{{mev_operation}} {{error_type}}",
                )
            ],
            unit="ops",
            width=24,
        ),
    ]
    return _dashboard(EXCHANGE_UID, "mevobs: exchange drill-down", panels, _templating(sel, exchange=True))


def _of_bots(expr: str, sel: str) -> str:
    """``expr`` (aggregated by process) only for processes that report mevobs's heartbeat:
    the system metrics are OpenTelemetry's, and other services export them too."""
    return f"{expr} and on ({', '.join(q.PROCESS)}) {q.series(q.HEARTBEAT, sel, JOB)}"


def process(settings: AlertSettings | None = None) -> dict[str, Any]:
    """Each bot process: uptime, memory against its limit, CPU, network I/O, GC, threads,
    event-loop lag, telemetry dropped and database query latency (system panels need
    ``configure(system_metrics=True)``)."""
    sel = (settings or AlertSettings()).selector
    proc = q.by(q.PROCESS)

    def per_process(name: str, *labels: str) -> str:
        return q.sum_rate(name, sel, RATE, (*q.PROCESS, *labels), JOB)

    panels = [
        _panel(
            "Uptime (heartbeat)",
            [(f"max {proc} ({q.series(q.HEARTBEAT, sel, JOB)})", PROCESS_LEGEND)],
            unit="s",
            kind="stat",
            width=24,
            height=4,
            description="Seconds since each bot process started; a bot missing here stopped reporting.",
        ),
        _panel(
            "Memory against its limit",
            [
                (f"max {proc} ({q.series(q.MEMORY, sel, JOB)})", f"used {PROCESS_LEGEND}"),
                (f"max {proc} ({q.series(q.MEMORY_LIMIT, sel, JOB)})", f"limit {PROCESS_LEGEND}"),
            ],
            unit="bytes",
            description="Resident memory and the limit the process reports (the smallest of "
            "configure(memory_limit_bytes=...), its cgroup's and the host's RAM).",
        ),
        _panel(
            "CPU (cores used)",
            [(_of_bots(per_process(q.CPU_TIME), sel), PROCESS_LEGEND)],
            unit="short",
            description="CPU seconds per second, user and system (system_metrics=True).",
        ),
        _panel(
            "Network I/O (host)",
            [
                (
                    _of_bots(per_process(q.NETWORK_IO, q.L_NET_DIRECTION), sel),
                    f"{{{{direction}}}} {PROCESS_LEGEND}",
                )
            ],
            unit="Bps",
            description="The host's interfaces, as seen from the bot (system_metrics=True).",
        ),
        _panel(
            "Garbage collections by generation",
            [
                (
                    _of_bots(per_process(q.GC_COLLECTIONS, q.L_GC_GENERATION), sel),
                    f"gen {{{{{q.L_GC_GENERATION}}}}} {PROCESS_LEGEND}",
                )
            ],
            unit="ops",
        ),
        _panel(
            "Threads",
            [(_of_bots(f"max {proc} ({q.series(q.THREADS, sel, JOB)})", sel), PROCESS_LEGEND)],
            unit="short",
        ),
        _panel(
            "Event-loop lag p99",
            [(q.quantile(0.99, q.EVENT_LOOP_LAG_BUCKET, sel, RATE, q.PROCESS, JOB), PROCESS_LEGEND)],
            unit="s",
            description="How late asyncio ran a callback scheduled on time (watch_event_loop).",
        ),
        _panel(
            "Telemetry dropped by reason",
            [(q.sum_rate(q.TELEMETRY_DROPPED, sel, RATE, (q.L_DROP_REASON,), JOB), "{{reason}}")],
            unit="ops",
            description=f"Lost: {', '.join(semconv.LOSS_REASONS)}; the other reasons are refused "
            "input or reduced fidelity.",
        ),
        _panel(
            "Database query latency p95",
            [
                (
                    q.quantile(0.95, q.DB_DURATION_BUCKET, sel, RATE, (q.L_DB_SYSTEM, q.L_DB_OPERATION), JOB),
                    "{{db_system}} {{db_operation_name}}",
                )
            ],
            unit="s",
            width=24,
            description="Queries traced by a contrib instrumentation (configure(instrument=['sqlite3'])...).",
        ),
    ]
    templating = {
        "list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
            },
            _variable("job", "Job", f"label_values({q.series(q.HEARTBEAT, sel)}, {q.L_JOB})"),
        ]
    }
    return _dashboard(PROCESS_UID, "mevobs: bot processes", panels, templating)


def build_dashboards(settings: AlertSettings | None = None) -> dict[str, dict[str, Any]]:
    """File name to dashboard JSON model, for ``mevobs dashboards -o DIR``."""
    return {
        "mevobs-overview.json": overview(settings),
        "mevobs-exchange.json": exchange_drilldown(settings),
        "mevobs-process.json": process(settings),
    }


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (panel title, PromQL) of a dashboard, templating queries included."""
    found = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            found.append((f"variable {var['name']}", var["query"]["query"]))
    return found
