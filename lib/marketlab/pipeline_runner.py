"""Run the stage graph of :mod:`marketlab.pipeline` in one process (one Spark session).

A stage is *up to date* when its fingerprint — the job's code, its parameters, the catalog
entries it touches, the Delta versions of its inputs (for ingest: the source files' sizes
and modification times) — equals the one recorded by its last successful run, and every
output table is still at the version that run wrote. Up-to-date stages are skipped, so a
re-run of an unchanged pipeline costs seconds; a change upstream re-runs exactly the
stages downstream of it (their input versions move).

A stage starts once the stages writing its inputs have finished; up to
``pipeline.max_parallel_stages`` run at once in threads sharing the Spark session (most
stages leave cores idle between their many small Spark jobs, and the critical path is
about half the summed stage time). Among the ready stages the one with the slowest
remaining chain of dependents goes first.

Stage runs are recorded in the Delta table ``ops.pipeline_runs`` (one row per stage
outcome), which also gives the per-stage time of the last run for the progress display
and the scheduling priorities.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import threading
import time
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

from rich.console import Console
from rich.table import Table

import marketlab
from marketlab.config import ConfigError, Settings, load_settings
from marketlab.pipeline import STAGES, Stage, dependencies, remaining_path, select_stages

STATE_TABLE = "ops.pipeline_runs"
_STATE_SCHEMA = ("run_id string, stage string, fingerprint string, status string, started_at timestamp, "
                 "seconds double, input_versions string, output_versions string, message string")


@dataclass
class StageOutcome:
    """What happened to one stage in one pipeline run."""

    stage: str
    status: str  # ok | skipped (up to date) | failed | not built | not selected
    seconds: float = 0.0
    message: str = ""
    output_versions: dict[str, int | None] = field(default_factory=dict)


@dataclass
class PipelineResult:
    """Outcome of :func:`run_pipeline`."""

    run_id: str
    exit_code: int
    stages: list[StageOutcome]
    report_path: str | None = None

    def by_stage(self) -> dict[str, StageOutcome]:
        return {s.stage: s for s in self.stages}


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def code_fingerprint(job_file: Path) -> str:
    """Hash of the job file and the whole marketlab package.

    The whole package rather than the job's own subpackage: jobs share helpers (tables,
    tracking, effect metrics used by strategy, ...), and a stale skip is worse than a
    needless re-run.
    """
    lib = Path(marketlab.__file__).parent
    return _hash_files([job_file, *lib.rglob("*.py")])


def _source_files(settings: Settings) -> list[dict]:
    """Size and mtime of every raw source file ingest would read."""
    out = []
    for name in settings.jobs.ingest.sources or sorted(settings.sources):
        spec = settings.sources[name]
        pattern = settings.resolve(spec.path)
        pattern = pattern[len("file:"):] if pattern.startswith("file:") else pattern
        files = sorted(glob.glob(pattern)) if not Path(pattern).is_dir() else sorted(
            str(p) for p in Path(pattern).rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        for f in files:
            st = os.stat(f)
            out.append({"source": name, "file": f, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def stage_fingerprint(st: Stage, settings: Settings, job_file: Path, input_versions: dict[str, int | None]) -> str:
    """Fingerprint of everything a stage's outputs depend on."""
    params = getattr(settings.jobs, st.job_name, None)
    extra = {"quality": settings.jobs.quality.model_dump(mode="json")} if st.name == "clean" else {}
    payload = {
        "stage": st.name,
        "code": code_fingerprint(job_file),
        "params": params.model_dump(mode="json") if params is not None else None,
        "extra": extra,
        "catalog": {t: settings.catalog[t].model_dump(mode="json") for t in (*st.inputs, *st.outputs)
                    if t in settings.catalog},
        "inputs": input_versions,
        "sources": _source_files(settings) if st.name == "ingest" else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _last_runs(lake) -> dict[str, dict]:
    """Latest successful run record per stage."""
    if not lake.exists(STATE_TABLE):
        return {}
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = lake.spark.read.format("delta").load(lake.path(STATE_TABLE)).where("status = 'ok'")
    w = Window.partitionBy("stage").orderBy(F.col("started_at").desc())
    rows = df.withColumn("_r", F.row_number().over(w)).where("_r = 1").collect()
    return {r["stage"]: r.asDict() for r in rows}


def _session_alive(spark) -> bool:
    """False once the SparkContext is stopped or its JVM is gone."""
    try:
        return not spark.sparkContext._jsc.sc().isStopped()
    except Exception:  # py4j cannot reach the JVM any more
        return False


def _record(lake, run_id: str, st: str, fingerprint: str, status: str, started: datetime, seconds: float,
            inputs: dict, outputs: dict, message: str = "") -> None:
    row = [(run_id, st, fingerprint, status, started, float(seconds), json.dumps(inputs, sort_keys=True),
            json.dumps(outputs, sort_keys=True), message[:2000])]
    lake.write(lake.spark.createDataFrame(row, _STATE_SCHEMA), STATE_TABLE, mode="append")


def run_graph(names: Sequence[str], deps: Mapping[str, set[str]], run: Callable[[str], bool], max_parallel: int = 1,
              priority: Mapping[str, float] | None = None, on_interrupt: Callable[[], None] | None = None) -> list[str]:
    """Call ``run(name)`` for every name once the names it depends on have run and returned True.

    With ``max_parallel`` 1 the names run in the calling thread in their given order; above
    that, in up to ``max_parallel`` threads, the ready name with the highest ``priority``
    first (ties in the given order). After the first False nothing new starts and the running
    ones finish; names whose dependencies did not succeed never start.

    Args:
        names: Names in a dependency-respecting order.
        deps: ``name -> names it waits for`` (names outside ``names`` are ignored).
        run: Does the work; returns whether it succeeded.
        max_parallel: Names run at once.
        priority: Higher starts first among ready names.
        on_interrupt: Called when the wait is interrupted (Ctrl-C), before re-raising, to
            stop the running work.

    Returns:
        The names in the order they started.
    """
    order = {n: i for i, n in enumerate(names)}
    wanted = {n: set(deps.get(n, ())) & set(order) for n in names}
    prio = priority or {}
    pending, ok, started, failed = list(names), set(), [], False

    def ready() -> list[str]:
        return [n for n in pending if wanted[n] <= ok]

    if max_parallel <= 1:
        while not failed and (now := ready()):
            pending.remove(now[0])
            started.append(now[0])
            if run(now[0]):
                ok.add(now[0])
            else:
                failed = True
        return started
    pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="marketlab-stage")
    running: dict = {}
    try:
        while True:
            if not failed:
                for n in sorted(ready(), key=lambda n: (-prio.get(n, 0.0), order[n]))[:max_parallel - len(running)]:
                    pending.remove(n)
                    started.append(n)
                    running[pool.submit(run, n)] = n
            if not running:
                return started
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                name = running.pop(fut)
                if fut.result():
                    ok.add(name)
                else:
                    failed = True
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_pipeline(conf: str, overrides: tuple[str, ...] = (), only: tuple[str, ...] = (), force: bool = False,
                 from_stage: str | None = None, console: Console | None = None,
                 max_parallel: int | None = None) -> PipelineResult:
    """Run the selected stages, each once its inputs are written, skipping up-to-date ones.

    Independent stages run at once in threads of this process, sharing its Spark session
    (``pipeline.max_parallel_stages``, the slowest remaining chain first); after the first
    failure no new stage starts.

    Args:
        conf: Environment conf file.
        overrides: ``key=value`` conf overrides, passed to every job.
        only: Run only these stages.
        force: Run even up-to-date stages.
        from_stage: Start at this stage (earlier stages are neither run nor checked).
        console: Where the progress and summary go (default stderr).
        max_parallel: Stages at once (default ``pipeline.max_parallel_stages``; 1 runs them
            one after another in graph order).

    Returns:
        The run's outcome (stages in graph order); ``exit_code`` is 0 when every selected
        stage succeeded or was up to date, else the code of the first stage that failed (2
        for a bad conf or stage name).
    """
    from marketlab.cli import run_job_file
    from marketlab.logs import setup_logging
    from marketlab.spark import get_spark
    from marketlab.tables import Lake

    console = console or Console(stderr=True)
    run_id = uuid.uuid4().hex[:12]
    try:
        selected = select_stages(only, from_stage)
        settings = load_settings(conf, list(overrides))
    except (ValueError, ConfigError) as exc:
        console.print(f"[red]marketlab pipeline: {exc}[/red]")
        return PipelineResult(run_id, 2, [])
    setup_logging()
    jobs_dir = Path(settings.project_root) / "jobs"
    lake = Lake(get_spark(settings), settings)
    last = _last_runs(lake)
    outcomes: dict[str, StageOutcome] = {}
    failures: list[int] = []  # exit codes in the order the stages failed
    record_lock = threading.Lock()
    position = {st.name: i for i, st in enumerate(STAGES, start=1)}
    by_name = {st.name: st for st in selected}

    def run_stage(name: str) -> bool:
        outcome, rc = run_one(by_name[name], last.get(name))
        outcomes[name] = outcome
        if rc:
            failures.append(rc)
        return rc == 0

    def run_one(st: Stage, prev: dict | None) -> tuple[StageOutcome, int]:
        """Skip, refuse or run one stage and record its outcome; returns ``(outcome, exit code)``."""
        job_file = jobs_dir / f"{st.job_name}.py"
        if not job_file.is_file():
            return StageOutcome(st.name, "not built", message=f"no {job_file.name}"), 0
        inputs = {t: lake.version(t) for t in st.inputs}
        fp = stage_fingerprint(st, settings, job_file, inputs)
        current_out = {t: lake.version(t) for t in st.outputs}
        header = f"[{position[st.name]}/{len(STAGES)}] {st.name}: {st.description}"
        if not force and prev and prev["fingerprint"] == fp and json.loads(prev["output_versions"]) == current_out:
            console.print(f"[dim]{header} — up to date (outputs {_fmt_versions(current_out)}), skipped[/dim]")
            return StageOutcome(st.name, "skipped", output_versions=current_out, message="up to date"), 0
        missing = [t for t, v in inputs.items() if v is None]
        if missing:
            msg = f"input table(s) {missing} do not exist: run the stages that write them first"
            console.print(f"[red]{header} — {msg}[/red]")
            return StageOutcome(st.name, "failed", message=msg), 2
        eta = f", last run {prev['seconds']:.0f} s" if prev else ""
        console.rule(f"[bold]{header}[/bold]{eta}")
        # The stage's Spark jobs carry its name as their group (Spark UI: which stage ran what).
        lake.spark.sparkContext.setLocalProperty("spark.jobGroup.id", f"marketlab.{st.name}")
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        message = ""
        try:
            rc = run_job_file(conf, st.job_name, overrides)
        except Exception as exc:  # a bug in a job: report it as that stage's failure, keep the summary
            traceback.print_exc()
            rc, message = 1, f"{type(exc).__name__}: {exc}"
        secs = time.perf_counter() - t0
        if rc and not _session_alive(lake.spark):
            # A driver out of heap kills the JVM: nothing more can be read or recorded.
            message = (f"the Spark driver died during {st.name} (out of memory? raise spark.driver.memory); "
                       "its output tables stay at their previous versions, no run state recorded")
            console.print(f"[red]{st.name}: failed in {secs:.1f} s — {message}[/]")
            return StageOutcome(st.name, "failed", secs, message), rc
        lake.spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        out_versions = {t: lake.version(t) for t in st.outputs}
        status = "ok" if rc == 0 else "failed"
        with record_lock:  # one writer at a time: concurrent first appends would race to create the table
            _record(lake, run_id, st.name, fp, status, started, secs, inputs, out_versions, message)
        console.print(f"[{'green' if rc == 0 else 'red'}]{st.name}: {status} in {secs:.1f} s[/]")
        return StageOutcome(st.name, status, secs, message or ("" if rc == 0 else f"exit code {rc}"), out_versions), rc

    parallel = settings.pipeline.max_parallel_stages if max_parallel is None else max_parallel
    names = [st.name for st in selected]
    run_graph(names, dependencies(selected), run_stage, parallel,
              remaining_path(selected, {n: float(r["seconds"]) for n, r in last.items()}),
              on_interrupt=lambda: lake.spark.sparkContext.cancelAllJobs())
    ordered = [outcomes[n] for n in names if n in outcomes]
    report = _latest_report(settings)
    _print_summary(console, ordered, report, run_id)
    return PipelineResult(run_id, failures[0] if failures else 0, ordered, report)


def _fmt_versions(versions: dict[str, int | None]) -> str:
    return ", ".join(f"{t}@v{v}" for t, v in versions.items()) or "none"


def _latest_report(settings: Settings) -> str | None:
    params = getattr(settings.jobs, "report", None)
    reports_dir = getattr(params, "reports_dir", None) if params is not None else None
    candidates = [Path(settings.resolve(reports_dir))] if reports_dir else []
    candidates.append(Path(settings.resolve(settings.lake_root).removeprefix("file:")).parent / "reports")
    for d in candidates:
        latest = d / "latest.html"
        if latest.is_file():
            return str(latest.resolve())
    return None


def _print_summary(console: Console, outcomes: list[StageOutcome], report: str | None, run_id: str) -> None:
    table = Table(title=f"pipeline run {run_id}")
    for col in ("stage", "status", "seconds", "note"):
        table.add_column(col)
    colours = {"ok": "green", "skipped": "dim", "failed": "red", "not built": "yellow"}
    for o in outcomes:
        table.add_row(o.stage, f"[{colours.get(o.status, 'white')}]{o.status}[/]", f"{o.seconds:.1f}" if o.seconds else "",
                      o.message)
    total = sum(o.seconds for o in outcomes)
    table.add_row("total", "", f"{total:.1f}", "")
    console.print(table)
    if report:
        console.print(f"report: {report}")
