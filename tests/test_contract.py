"""The stage contract (docs/ARCHITECTURE.md, "Stage contract"), checked on the code.

Every stage's job is thin: ``main(ctx)``, one summary line, the ``main_guard`` line, no
helpers of its own. No capability opens files, reads the environment or builds a Spark
session: only the infrastructure modules of :data:`INFRASTRUCTURE` may.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT
from marketlab.config import JobsSettings
from marketlab.pipeline import STAGES

LIB = ROOT / "lib" / "marketlab"

#: lib/marketlab paths (files, or folders ending in "/") allowed to open files, read the
#: environment and build the session, and why.
INFRASTRUCTURE = {
    "config.py": "reads the conf files",
    "spark.py": "builds the one session; sets the PySpark interpreters for local mode",
    "tables.py": "the lake's I/O",
    "runtime.py": "the job harness",
    "privacy.py": "resolves the pseudonym secret: environment, mounted file, or the generated local file",
    "tracking.py": "MLflow store and artifacts",
    "logs.py": "log level from the environment",
    "cli.py": "the console script",
    "submit.py": "spark-submit commands: SPARK_HOME, the interpreters",
    "cluster.py": "starts and probes the loopback standalone cluster",
    "deploy.py": "writes the generated manifests and DAG",
    "profiles.py": "reads conf profiles",
    "pipeline_runner.py": "stats the raw source files for ingest's fingerprint",
    "training/": "the Horovod launcher: worker processes get their environment and exchange files",
    "forecast/launch.py": "the Horovod launcher before its move to training/",
    "report/notebook.py": "the notebooks' harness (MARKETLAB_CONF / MARKETLAB_SET)",
}

#: Most lines of code a job may have (docstring, comments, imports and blank lines not counted).
MAX_JOB_LINES = 40


def _allowed(path: Path) -> bool:
    rel = path.relative_to(LIB).as_posix()
    return any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in INFRASTRUCTURE)


def _violations(tree: ast.AST) -> list[tuple[int, str]]:
    """``open(``, ``os.environ``, ``os.getenv(``, ``SparkSession.builder`` in code (not in strings)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == "open") or (isinstance(f, ast.Attribute) and f.attr == "open"):
                out.append((node.lineno, "open("))
            if isinstance(f, ast.Attribute) and f.attr == "getenv" and isinstance(f.value, ast.Name) and f.value.id == "os":
                out.append((node.lineno, "os.getenv("))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) == ("os", "environ"):
                out.append((node.lineno, "os.environ"))
            if (node.value.id, node.attr) == ("SparkSession", "builder"):
                out.append((node.lineno, "SparkSession.builder"))
    return sorted(out)


def _code_lines(source: str, tree: ast.Module) -> int:
    """Non-blank lines outside comments, docstrings and imports."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        if doc or isinstance(node, (ast.Import, ast.ImportFrom)):
            skip.update(range(node.lineno, node.end_lineno + 1))
    return sum(1 for i, line in enumerate(source.splitlines(), 1)
               if i not in skip and line.strip() and not line.strip().startswith("#"))


def test_the_checks_find_what_they_look_for():
    code = ast.parse('"""open( os.environ in a docstring"""\n'
                     "import os\nx = open('f')\ny = os.environ.get('A')\nz = os.getenv('B')\n"
                     "s = SparkSession.builder.getOrCreate()\nw = path.open()\n")
    assert [v for _, v in _violations(code)] == ["open(", "os.environ", "os.getenv(", "SparkSession.builder", "open("]
    assert _violations(ast.parse("from urllib.request import urlopen\nurlopen('x')\n# open(\n")) == []
    assert _allowed(LIB / "training" / "launch.py") and not _allowed(LIB / "segments" / "run.py")
    assert _code_lines('"""Doc\n\nmore."""\nimport os\n\n# why\ndef main(ctx):\n    """Doc."""\n    return 1\n',
                       ast.parse('"""Doc\n\nmore."""\nimport os\n\n# why\ndef main(ctx):\n    """Doc."""\n    return 1\n')) == 2


@pytest.mark.parametrize("st", STAGES, ids=lambda s: s.name)
def test_each_stage_job_is_thin(st):
    path = ROOT / "jobs" / f"{st.job_name}.py"
    source = path.read_text()
    tree = ast.parse(source)
    funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert list(funcs) == ["main"], f"{path.name}: helpers belong in the capability, found {list(funcs)}"
    assert not [n for n in tree.body if isinstance(n, ast.ClassDef)], f"{path.name}: no classes in a job"
    args = funcs["main"].args
    assert [a.arg for a in args.args] == ["ctx"] and not args.vararg and not args.kwonlyargs, \
        f"{path.name}: main(ctx) takes the context only"
    guard = tree.body[-1]
    assert isinstance(guard, ast.If) and ast.unparse(guard.test) == "__name__ == '__main__'", path.name
    call = ast.unparse(guard.body[0])
    assert call.startswith(f"main_guard('{st.job_name}', main"), f"{path.name}: ends with {call!r}"
    prints = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "print"]
    assert len(prints) == 1, f"{path.name}: one printed summary line, found {len(prints)} print calls"
    assert _violations(tree) == [], f"{path.name}: {_violations(tree)}"
    assert _code_lines(source, tree) <= MAX_JOB_LINES, f"{path.name}: {_code_lines(source, tree)} lines of code"
    assert set(st.params) <= set(JobsSettings.model_fields), (st.name, st.params)


def test_no_capability_opens_files_reads_the_environment_or_builds_a_session():
    found = {}
    for path in sorted(LIB.rglob("*.py")):
        if not _allowed(path):
            hits = _violations(ast.parse(path.read_text()))
            if hits:
                found[path.relative_to(LIB).as_posix()] = hits
    assert found == {}, "move these into Lake / privacy / the harness, or justify them in INFRASTRUCTURE"
