"""The package layout is the architecture: every module of `sauron/` sits in
a layer, imports only from its own layer or lower ones, and no module
imports itself back through others. Every import counts: the ones made only
for type checking and the ones inside functions too, since a cycle hidden in
a function is still a cycle a reader has to untangle. No root, no kernel."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sauron"

#: lowest first: a layer may import from itself and those before it
LAYERS = (
    ("abi",),
    ("host",),
    ("catalog",),
    ("bpf",),
    ("pfcp",),
    ("control",),
    ("energy",),
    ("diagnosis",),
    ("security",),
    ("kpi",),
    ("export",),
    ("service",),
    ("agent",),
    ("testbed",),
    ("commands",),
    ("__main__",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: what may sit at the root of the package, beside the layers
ROOT_MODULES = {"__init__.py", "__main__.py", "catalog.py"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports() -> dict[str, set[str]]:
    """module -> the sauron modules it imports (a name imported from a
    package counts as its module when it is one, else as the package)."""
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if not node.module.startswith("sauron"):
                    continue
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    graph[name].add(full if full in known else node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name.startswith("sauron"))
    return graph


def layer(module: str) -> str:
    """sauron.kpi.engine -> kpi; the package itself (its version) -> ""."""
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    return parts[1]


def test_every_module_is_in_a_layer_and_the_root_holds_few() -> None:
    for name in modules():
        if name != "sauron":
            assert layer(name) in RANK, f"{name}: in no layer of tests/unit/test_layers.py"
    root = {p.name for p in PACKAGE.glob("*.py")}
    assert root <= ROOT_MODULES, root - ROOT_MODULES


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = []
    for module, targets in imports().items():
        for target in targets:
            if layer(target) == "" or module == "sauron":
                continue  # the package's own version is anyone's
            if RANK[layer(target)] > RANK[layer(module)]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle() -> None:
    graph = imports()
    known = set(modules())
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in known or target == module:
                continue
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(known):
        if module not in state:
            visit(module)


def test_an_agent_without_otlp_loads_no_opentelemetry_sdk() -> None:
    """The SDK and protobuf are about 10 MB of an idle agent's memory: only
    an agent that exports OTLP may load them (sauron.agent.run.open_otlp)."""
    probe = (
        "import sys, sauron.agent.run, sauron.export.prometheus, sauron.service.app; "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith"
        "(('opentelemetry', 'google.protobuf'))}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
