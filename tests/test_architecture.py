"""The package tree tells the architecture: layers, no cycles, names from the contract.

Each module belongs to one layer; a module imports only from its own layer or
lower ones, wherever the import stands (module level, inside a function, or for
type checking only). A new module must be given a layer here, which is the
point: where it sits is a decision, written down.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mevobs"

# Lowest first. docs/architecture.md describes the same layers.
LAYERS: dict[str, int] = {}
_LAYER_TABLE = (
    # 0: the contract and pure helpers (no global state, no OpenTelemetry SDK)
    (
        0,
        "semconv _metricspec _version _money _scrub _scrub_keys _rpc_errors _protocols _cardinality "
        "_exporters "
        "_otlp _otlp_wire _otlp_export _otel_env",
    ),
    # 1: the instruments built from the contract, and the one global state
    (1, "_instruments _slots _state _context"),
    # 2: the core: operations, their wrappers, emission, logs, observations
    (
        2,
        "_operation _recorders _emission _logs _extract _results _closures _wrap _factories _observations "
        "_fastcall _records _logfile",
    ),
    # 3: the runtime guards, which see the core through the protocols
    (
        3,
        "guards guards._audit guards._audit_format guards._audit_verify guards._audit_report "
        "guards._breaker guards._health guards._health_http guards._runtime guards._process guards._security "
        "guards._start guards._cli",
    ),
    # 4: the pipeline configure() builds, and the test kit
    (4, "_settings _setup _globals _pipeline _fastpath _outputs _otlp_output _collect _snapshot testing"),
    # 5: the faces: the package front, the CLI, generators and the demo
    (
        5,
        "__init__ __main__ _pytest_plugin _logs_cli cli alerts alerts._alertmanager alerts._cli "
        "alerts._collector "
        "alerts._dashboards alerts._output alerts._promql alerts._rules alerts._settings "
        "demo demo._amm demo._bot demo._chain demo._conditions demo._run demo._scenarios demo._summary",
    ),
)
for _layer, _names in _LAYER_TABLE:
    for _name in _names.split():
        LAYERS[_name] = _layer


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _resolve(target: str, known: dict[str, Path]) -> str | None:
    """The mevobs module an import names (``mevobs.x.y`` -> ``x.y``), else None."""
    if target == "mevobs":
        return "__init__"
    if not target.startswith("mevobs."):
        return None
    name = target[len("mevobs.") :]
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or "__init__"


def _imports(path: Path, known: dict[str, Path], *, runtime_only: bool) -> set[str]:
    """mevobs modules imported by ``path``: all of them, or only those imported when
    the module itself is imported (module level, outside ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if (mod := _resolve(alias.name, known)) is not None:
                        found.add(mod)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    mod = _resolve(full if full[len("mevobs.") :] in known else node.module, known)
                    if mod is not None:
                        found.add(mod)
            elif runtime_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            elif runtime_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if isinstance(node, ast.ClassDef):
                    visit(node.body)
                continue
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        visit(
                            [c for c in children if isinstance(c, ast.stmt)]
                            + [s for h in children if isinstance(h, ast.ExceptHandler) for s in h.body]
                        )

    visit(tree.body)
    if path.is_relative_to(SRC):
        found.discard(_module_name(path))
    return found


def test_the_import_reader_sees_late_and_type_only_imports(tmp_path: Path) -> None:
    """The checks below can fail: a late import inside a function and a
    TYPE_CHECKING import are both found (runtime_only skips them)."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from mevobs import semconv\n"
        "if TYPE_CHECKING:\n    from mevobs._wrap import OperationSpec\n"
        "def late():\n    from mevobs.guards._breaker import observe_circuits\n"
    )
    known = _modules()
    assert _imports(source, known, runtime_only=False) == {"semconv", "_wrap", "guards._breaker"}
    assert _imports(source, known, runtime_only=True) == {"semconv"}


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in a layer (here and in docs/architecture.md)."""
    assert set(_modules()) - set(LAYERS) == set()
    assert set(LAYERS) - set(_modules()) == set(), "a layer lists a module that no longer exists"


def test_no_module_imports_from_a_higher_layer() -> None:
    """Lower layers never import higher ones, not even inside a function: the core
    does not import the guards, and the state imports nothing above it."""
    known = _modules()
    violations = []
    for name, path in known.items():
        for imported in _imports(path, known, runtime_only=False):
            if LAYERS[imported] > LAYERS[name]:
                violations.append(
                    f"{name} (layer {LAYERS[name]}) imports {imported} (layer {LAYERS[imported]})"
                )
    assert violations == []


def test_the_core_and_the_state_import_nothing_of_the_guards() -> None:
    known = _modules()
    for name in ("_state", "_operation", "_emission", "_wrap", "_factories", "_observations"):
        assert not {m for m in _imports(known[name], known, runtime_only=False) if m.startswith("guards")}


def test_no_import_cycle_at_runtime() -> None:
    """Module-level imports form no cycle (a cycle makes import order matter)."""
    known = _modules()
    graph = {name: _imports(path, known, runtime_only=True) for name, path in known.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt == "__init__":
                continue  # importing the package front from inside is the package's own entry
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if state.get(name) is None:
            visit(name)


_MEV_LITERAL = re.compile(r"""["']mev\.[a-z_.]+["']""")


def test_every_mev_name_in_the_code_comes_from_semconv() -> None:
    """Attribute and metric names are constants in semconv, never retyped elsewhere
    (docstrings may quote them)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "semconv.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and _MEV_LITERAL.fullmatch(repr(node.value))
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 600
    }
    assert long == {}


_EDIT = re.compile(r"<!-- edit: (\S+) \| (before|after): (.+?) -->\n```py\n(.*?)```", re.DOTALL)
_RUN = re.compile(r"<!-- run -->\n```py\n(.*?)```", re.DOTALL)


def test_the_worked_example_adds_a_kind_and_its_metric_in_three_files(tmp_path: Path) -> None:
    """docs/architecture.md's worked example, applied to a copy of the package: it touches at
    most three files, the contract's checks still pass, and the new kind records its metric."""
    import shutil
    import subprocess
    import sys

    root = SRC.parents[1]
    page = (root / "docs" / "architecture.md").read_text()
    copy = tmp_path / "repo"
    shutil.copytree(root / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(root / "tools", copy / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "docs").mkdir()
    shutil.copy(root / "docs" / "semantic-conventions.md", copy / "docs")
    (copy / "tests").mkdir()
    shutil.copy(root / "tests" / "test_semconv_docs.py", copy / "tests")
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    edits = _EDIT.findall(page)
    assert len(edits) >= 3
    for rel, where, anchor, code in edits:
        target = copy / rel
        text = target.read_text()
        assert text.count(anchor) == 1, f"anchor {anchor!r} not unique in {rel}"
        found = text.index(anchor)
        # after: the line following the anchor's; before: the start of the anchor's line.
        at = text.index("\n", found) + 1 if where == "after" else text.rindex("\n", 0, found) + 1
        target.write_text(text[:at] + code + text[at:])
    env = {"PYTHONPATH": str(copy / "src"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, str(copy / "tools" / "semconv_table.py")], env=env, capture_output=True
    )
    assert run.returncode == 0, run.stderr
    changed = {
        p.relative_to(copy) for p in copy.rglob("*") if p.is_file() and before.get(p) != p.read_bytes()
    }
    changed = {p for p in changed if "__pycache__" not in p.parts}
    assert len(changed) <= 3, sorted(map(str, changed))
    usage = _RUN.findall(page)
    assert len(usage) == 1
    (tmp_path / "usage.py").write_text(usage[0])
    out = subprocess.run(
        [sys.executable, str(tmp_path / "usage.py")], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    checks = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:mevobs",
            "-p",
            "no:cacheprovider",
            str(copy / "tests" / "test_semconv_docs.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=copy,
    )
    assert checks.returncode == 0, checks.stdout + checks.stderr
