"""No import cycle: every module of marketlab and every jobs/*.py imports in a fresh
interpreter, whatever was imported before it.

Two checks: the graph of marketlab's imports, deferred (function-level) ones included, has
no cycle, so no import order can meet a half-initialised module; and a few fresh
interpreters really import everything, each in another order.
"""

from __future__ import annotations

import ast
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ROOT

LIB = ROOT / "lib"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((LIB / "marketlab").rglob("*.py")):
        parts = list(path.relative_to(LIB).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """marketlab modules ``path`` imports anywhere (module level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from pkg import sub` imports the submodule; `from mod import name` the module
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("marketlab"):
                out.add(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_of_marketlab_has_no_cycle():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    assert len(graph) > 50 and {"marketlab.runtime", "marketlab.config"} <= graph["marketlab.cli"]
    assert _cycles(graph) == []
    # the check sees deferred imports too: a cycle through one is found
    assert _cycles({**graph, "marketlab.pipeline": graph["marketlab.pipeline"] | {"marketlab.cli"}})
    # the library's runner does not reach the CLI at all
    assert "marketlab.cli" not in graph["marketlab.pipeline_runner"] | graph["marketlab.runtime"]


def test_every_module_and_job_imports_in_fresh_interpreters_in_any_order():
    names = [n for n in _modules() if n != "marketlab.__init__"]
    jobs = sorted(str(p) for p in (ROOT / "jobs").glob("*.py"))
    script = textwrap.dedent("""
        import importlib, importlib.util, sys
        for item in sys.argv[1:]:
            if item.endswith(".py"):
                spec = importlib.util.spec_from_file_location("job_" + item.rsplit("/", 1)[-1][:-3], item)
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            else:
                importlib.import_module(item)
        print("imported", len(sys.argv) - 1)
    """)
    items = names + jobs
    shuffled = list(items)
    random.Random(21).shuffle(shuffled)
    # two orders at once (each interpreter imports TensorFlow, MLflow, PySpark: ~20 s)
    orders = [sorted(items, reverse=True), shuffled]
    env = {**os.environ, "PYTHONPATH": str(LIB), "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen([sys.executable, "-c", script, *order], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT, env=env) for order in orders]
    for order, proc in zip(orders, procs):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (order[:5], err[-3000:])
        assert out.strip().splitlines()[-1] == f"imported {len(items)}"
