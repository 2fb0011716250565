"""Static checks of the deployment descriptors that cannot run here (no Kubernetes, Airflow
or Docker engine): a SparkApplication manifest, an Airflow DAG file read with ``ast``, and
a Dockerfile against its build context. Only the tests use them, so they live with them.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

from marketlab.deploy import API_VERSION, IMAGE_HOME, KIND


def image_path_to_repo(path: str, project_root: str | Path) -> Path | None:
    """``local:///opt/marketlab/x`` or ``/opt/marketlab/x`` -> ``<project_root>/x`` (None if elsewhere)."""
    p = path[len("local://"):] if path.startswith("local://") else path
    pp = PurePosixPath(p)
    try:
        rel = pp.relative_to(IMAGE_HOME)
    except ValueError:
        return None
    return Path(project_root) / rel


def validate_manifest(doc: Any, project_root: str | Path) -> list[str]:
    """Problems of one SparkApplication manifest (empty list: valid).

    Checks apiVersion and kind, that ``mainApplicationFile`` is
    ``local:///opt/marketlab/jobs/<job>.py`` with ``jobs/<job>.py`` present in the project,
    that ``--conf`` names a conf file present under ``conf/``, and the image, mode and type.
    """
    errors: list[str] = []
    if not isinstance(doc, dict):
        return [f"manifest is a {type(doc).__name__}, not a mapping"]
    if doc.get("apiVersion") != API_VERSION:
        errors.append(f"apiVersion is {doc.get('apiVersion')!r}, expected {API_VERSION!r}")
    if doc.get("kind") != KIND:
        errors.append(f"kind is {doc.get('kind')!r}, expected {KIND!r}")
    name = (doc.get("metadata") or {}).get("name")
    if not name or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", str(name)) or len(str(name)) > 63:
        errors.append(f"metadata.name {name!r} is not a DNS-1123 label")
    spec = doc.get("spec") or {}
    if spec.get("type") != "Python":
        errors.append(f"spec.type is {spec.get('type')!r}, expected 'Python'")
    if spec.get("mode", "cluster") != "cluster":
        errors.append(f"spec.mode is {spec.get('mode')!r}, expected 'cluster'")
    if not spec.get("image"):
        errors.append("spec.image is missing")
    main = str(spec.get("mainApplicationFile") or "")
    m = re.fullmatch(r"local://" + re.escape(str(IMAGE_HOME)) + r"/jobs/([A-Za-z0-9_]+)\.py", main)
    if not m:
        errors.append(f"spec.mainApplicationFile {main!r} is not local://{IMAGE_HOME}/jobs/<job>.py")
    else:
        job_file = Path(project_root) / "jobs" / f"{m.group(1)}.py"
        if not job_file.is_file():
            errors.append(f"spec.mainApplicationFile {main!r}: no job file jobs/{m.group(1)}.py in the project")
    args = [str(a) for a in spec.get("arguments") or []]
    if "--conf" not in args or args.index("--conf") + 1 >= len(args):
        errors.append("spec.arguments has no '--conf <file>'")
    else:
        conf = args[args.index("--conf") + 1]
        local = image_path_to_repo(conf, project_root)
        if local is None:
            errors.append(f"--conf {conf!r} is not under {IMAGE_HOME}")
        elif not local.is_file():
            errors.append(f"--conf {conf!r}: no conf file {local.relative_to(project_root)} in the project")
    for role in ("driver", "executor"):
        if not isinstance(spec.get(role), dict):
            errors.append(f"spec.{role} is missing")
    return errors


def manifest_job(doc: dict) -> str | None:
    """Job stem of a manifest's mainApplicationFile."""
    m = re.search(r"/jobs/([A-Za-z0-9_]+)\.py$", str((doc.get("spec") or {}).get("mainApplicationFile") or ""))
    return m.group(1) if m else None


def read_airflow_dag(path: str | Path) -> dict:
    """Parse a DAG file with ``ast`` (no Airflow needed).

    Returns:
        ``{"tasks": {task_id: {"var", "operator", "application"}}, "edges": [(up, down), ...],
        "dag_id"}`` with applications as written (f-strings rendered with ``{NAME}`` kept).
    """
    tree = ast.parse(Path(path).read_text())

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                elif isinstance(v, ast.FormattedValue):
                    parts.append("{" + ast.unparse(v.value) + "}")
            return "".join(parts)
        return None

    tasks: dict[str, dict] = {}
    var_to_task: dict[str, str] = {}
    dag_id = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fname = ast.unparse(node.func)
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            if fname == "DAG" and "dag_id" in kw:
                dag_id = text(kw["dag_id"])
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            call = node.value
            kw = {k.arg: k.value for k in call.keywords if k.arg}
            if "task_id" in kw:
                task_id = text(kw["task_id"])
                app = text(kw["application"]) if "application" in kw else None
                if app is None and "bash_command" in kw:
                    app = text(kw["bash_command"])
                tasks[task_id] = {"var": node.targets[0].id, "operator": ast.unparse(call.func), "application": app}
                var_to_task[node.targets[0].id] = task_id

    edges: list[tuple[str, str]] = []

    def names(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Name):
            return [var_to_task.get(node.id, node.id)]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [n for e in node.elts for n in names(e)]
        return []

    def groups(node: ast.AST, op: type) -> list[list[str]]:
        # a >> b >> c parses as (a >> b) >> c: operand groups left to right
        if isinstance(node, ast.BinOp) and isinstance(node.op, op):
            return groups(node.left, op) + [names(node.right)]
        return [names(node)]

    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.BinOp) \
                and isinstance(node.value.op, (ast.RShift, ast.LShift)):
            op = type(node.value.op)
            gs = groups(node.value, op)
            for g1, g2 in zip(gs, gs[1:]):
                edges.extend((a, b) if op is ast.RShift else (b, a) for a in g1 for b in g2)
    return {"dag_id": dag_id, "tasks": tasks, "edges": edges}


# --- Dockerfile ---------------------------------------------------------------------------


def parse_dockerfile(path: str | Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` per instruction, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in Path(path).read_text().splitlines():
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        instr, _, rest = buf.strip().partition(" ")
        out.append((instr.upper(), rest.strip()))
        buf = ""
    if buf.strip():
        instr, _, rest = buf.strip().partition(" ")
        out.append((instr.upper(), rest.strip()))
    return out


def _exec_form(args: str) -> list[str]:
    args = args.strip()
    if args.startswith("["):
        try:
            value = ast.literal_eval(args)
            return [str(v) for v in value]
        except (ValueError, SyntaxError):
            return []
    return shlex.split(args)


def dockerfile_problems(path: str | Path, context: str | Path) -> list[str]:
    """Static checks of a Dockerfile against its build context (the repo root).

    A FROM comes first; every COPY/ADD source (without ``--from``) exists in the context;
    the requirements/constraints files that pip installs exist; the ENTRYPOINT (or CMD)
    names a file the image COPYs from an existing source.
    """
    context = Path(context)
    instrs = parse_dockerfile(path)
    problems: list[str] = []
    first = next((i for i, _ in instrs if i not in ("ARG",)), None)
    if first != "FROM":
        problems.append(f"first instruction is {first}, not FROM")
    copied: dict[str, str] = {}  # destination in the image -> source in the context
    workdir = "/"
    for instr, args in instrs:
        if instr == "WORKDIR":
            workdir = args if args.startswith("/") else str(PurePosixPath(workdir) / args)
        if instr in ("COPY", "ADD"):
            parts = _exec_form(args)
            flags = [p for p in parts if p.startswith("--")]
            paths = [p for p in parts if not p.startswith("--")]
            if any(f.startswith("--from") for f in flags):
                continue
            if len(paths) < 2:
                problems.append(f"{instr} {args}: needs a source and a destination")
                continue
            *sources, dest = paths
            dest_abs = dest if dest.startswith("/") else str(PurePosixPath(workdir) / dest)
            for src in sources:
                if "://" in src:
                    continue
                matches = list(context.glob(src)) if any(c in src for c in "*?[") else \
                    ([context / src] if (context / src).exists() else [])
                if not matches:
                    problems.append(f"{instr} source {src!r} does not exist in {context}")
                    continue
                if dest_abs.endswith("/") or len(sources) > 1 or (context / src).is_dir():
                    target = str(PurePosixPath(dest_abs) / PurePosixPath(src).name) \
                        if not (context / src).is_dir() else dest_abs.rstrip("/")
                else:
                    target = dest_abs
                copied[target] = src
                if (context / src).is_dir():
                    for f in (context / src).rglob("*"):
                        if f.is_file():
                            copied[str(PurePosixPath(dest_abs.rstrip("/")) / f.relative_to(context / src).as_posix())] = \
                                str(f.relative_to(context))
        if instr == "RUN":
            for m in re.finditer(r"(?:-c|-r|--constraint|--requirement)\s+(\S+)", args):
                ref = m.group(1)
                if not re.search(r"\.(txt|in)$", ref):
                    continue
                if ref.startswith("/"):
                    known = ref in copied
                    if not known:
                        problems.append(f"RUN installs {ref!r}, which no COPY puts into the image")
                    elif not (context / copied[ref]).is_file():
                        problems.append(f"RUN installs {ref!r}: {copied[ref]} is missing")
                elif not (context / ref).is_file() and not (PurePosixPath(workdir) / ref).as_posix() in copied:
                    problems.append(f"RUN installs {ref!r}, which is not in the build context")
    entry = [a for i, a in instrs if i == "ENTRYPOINT"] or [a for i, a in instrs if i == "CMD"]
    if not entry:
        problems.append("no ENTRYPOINT or CMD")
    else:
        argv = _exec_form(entry[-1])
        exe = next((a for a in argv if a.startswith("/")), None)
        if exe is None:
            problems.append(f"ENTRYPOINT/CMD {entry[-1]!r} names no absolute path")
        elif exe in copied:
            if not (context / copied[exe]).is_file():
                problems.append(f"ENTRYPOINT {exe} comes from {copied[exe]}, which is missing")
        elif not exe.startswith(("/usr/", "/bin/", "/opt/venv/")):
            problems.append(f"ENTRYPOINT/CMD {exe} is neither copied into the image nor a system path")
    return problems
