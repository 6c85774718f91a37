"""Rewrite the tables of docs/semantic-conventions.md from mevobs.semconv.

Run ``python tools/semconv_table.py`` after changing the contract (``--print``
only prints them); ``tests/test_semconv_docs.py`` checks the page and the
module agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mevobs import semconv


def _doc(name: str) -> str:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(semconv))
    body = tree.body
    for i, node in enumerate(body[:-1]):
        target = getattr(node, "target", None) or (getattr(node, "targets", [None])[0])
        if getattr(target, "id", None) == name:
            nxt = body[i + 1]
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                return str(nxt.value.value).replace("\n", " ")
    return ""


def metric_rows() -> list[str]:
    rows = [
        "| Metric | Instrument | Unit | Attributes | Cardinality | Prometheus name | Description |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in semconv.METRICS:
        attrs = ", ".join(f"`{a}`" for a in spec.attributes)
        card = (
            "bounded (cap per attribute, default 100)" if len(spec.attributes) > 1 else "bounded (fixed set)"
        )
        rows.append(
            f"| `{spec.name}` | {spec.instrument} | `{spec.unit}` | {attrs} | {card} | "
            f"`{spec.prometheus_name}` | {spec.description} |"
        )
    return rows


def attribute_rows() -> list[str]:
    rows = ["| Attribute | Where | Cardinality | Description |", "|---|---|---|---|"]
    names = {v: k for k, v in vars(semconv).items() if k.startswith("ATTR_") and isinstance(v, str)}
    for attr in semconv.METRIC_ATTRIBUTES:
        rows.append(f"| `{attr}` | metrics, spans, logs | bounded | {_doc(names[attr])} |")
    # Labels of particular metrics (slippage direction, funnel stage, pool...), in contract order.
    particular = [
        attr
        for spec in semconv.METRICS
        for attr in spec.attributes
        if attr not in semconv.METRIC_ATTRIBUTES
    ]
    for attr in dict.fromkeys(particular):
        doc = _doc(names[attr])
        if attr == semconv.ATTR_DROP_REASON:
            doc += " Values: " + ", ".join(f"`{reason}`" for reason in semconv.DROP_REASONS) + "."
        rows.append(f"| `{attr}` | one metric (see above) | fixed set | {doc} |")
    for attr in semconv.SPAN_ONLY_ATTRIBUTES:
        rows.append(f"| `{attr}` | spans, logs only | unbounded | {_doc(names[attr])} |")
    return rows


def rewrite(path: Path) -> None:
    """Replace what lies between each table's start and end markers in ``path``."""
    text = path.read_text()
    for name, rows in (("metrics", metric_rows()), ("attributes", attribute_rows())):
        head, rest = text.split(f"<!-- {name}:start -->", 1)
        _, tail = rest.split(f"<!-- {name}:end -->", 1)
        text = f"{head}<!-- {name}:start -->\n" + "\n".join(rows) + f"\n<!-- {name}:end -->{tail}"
    path.write_text(text)


if __name__ == "__main__":
    if "--print" in sys.argv:
        print("\n".join(metric_rows()))
        print()
        print("\n".join(attribute_rows()))
    else:
        rewrite(Path(__file__).resolve().parents[1] / "docs" / "semantic-conventions.md")
