"""Rewrite the generated parts of docs/alerts.md from mevobs.alerts.

Run ``python tools/alerts_table.py`` after changing a rule or a setting;
``tests/test_alerts.py`` checks the page and the generator agree.
"""

from __future__ import annotations

from pathlib import Path

from mevobs.alerts import AlertSettings, alert_rules, recording_rules
from mevobs.demo._scenarios import how_to_fire

DOC = Path(__file__).resolve().parents[1] / "docs" / "alerts.md"


def summary_rows() -> list[str]:
    s = AlertSettings()
    rows = ["| Alert | Severity | Fires when (defaults) | Runbook |", "|---|---|---|---|"]
    for rule in alert_rules(s):
        rows.append(
            f"| [`{rule.name}`](#{rule.name.lower()}) | {rule.severity} | {rule.threshold} | "
            f"[{rule.runbook}](runbook.md#{rule.runbook}) |"
        )
    return rows


def rule_sections() -> list[str]:
    s = AlertSettings()
    out: list[str] = []
    for rule in alert_rules(s):
        out += [
            f"### {rule.name}",
            "",
            f"- severity: **{rule.severity}**; for: `{rule.for_}`",
            f"- default threshold: {rule.threshold}",
            f"- summary: {rule.summary}",
            f"- runbook: [runbook.md#{rule.runbook}](runbook.md#{rule.runbook})",
            f"- see it fire: {how_to_fire(rule.name)} ([scenarios](demo.md#scenarios))",
            "",
            "```promql",
            rule.expr,
            "```",
            "",
        ]
    return out[:-1]


def recording_sections() -> list[str]:
    out = ["| Recording rule | Expression |", "|---|---|"]
    for rule in recording_rules(AlertSettings()):
        expr = rule["expr"].replace("|", "\\|")
        out.append(f"| `{rule['record']}` | `{expr}` |")
    return out


def settings_rows() -> list[str]:
    rows = ["| Setting | Default | Meaning |", "|---|---|---|"]
    for name, field in AlertSettings.model_fields.items():
        default = field.default
        shown = '""' if default == "" else default
        rows.append(f"| `{name}` | `{shown}` | {field.description or ''} |")
    return rows


SECTIONS = {
    "summary": summary_rows,
    "rules": rule_sections,
    "recording": recording_sections,
    "settings": settings_rows,
}


def render_into(text: str) -> str:
    """``text`` with every generated section replaced by what the code says now."""
    for name, rows in SECTIONS.items():
        head, rest = text.split(f"<!-- {name}:start -->", 1)
        _, tail = rest.split(f"<!-- {name}:end -->", 1)
        text = f"{head}<!-- {name}:start -->\n" + "\n".join(rows()) + f"\n<!-- {name}:end -->{tail}"
    return text


if __name__ == "__main__":
    DOC.write_text(render_into(DOC.read_text()))
