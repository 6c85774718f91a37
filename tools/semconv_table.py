"""Print the tables of docs/semantic-conventions.md from mevobs.semconv.

Run ``python tools/semconv_table.py`` and paste the output between the
markers in the docs page; ``tests/test_semconv_docs.py`` checks they agree.
"""

from __future__ import annotations

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
    for attr in (semconv.ATTR_SLIPPAGE_DIRECTION, semconv.ATTR_OPPORTUNITY_STAGE, semconv.ATTR_DROP_REASON):
        rows.append(f"| `{attr}` | one metric (see above) | fixed set | {_doc(names[attr])} |")
    for attr in semconv.SPAN_ONLY_ATTRIBUTES:
        rows.append(f"| `{attr}` | spans, logs only | unbounded | {_doc(names[attr])} |")
    return rows


if __name__ == "__main__":
    print("\n".join(metric_rows()))
    print()
    print("\n".join(attribute_rows()))
