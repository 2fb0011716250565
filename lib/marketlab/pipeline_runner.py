"""Run the stage graph of :mod:`marketlab.pipeline` in one process (one Spark session).

A stage is *up to date* when its fingerprint — the job's code, the conf sections it declares
(:attr:`marketlab.pipeline.Stage.params`), the catalog entries it touches, the Delta
versions of its inputs (for ingest: the source specs and the files' sizes and modification
times) — equals the one recorded by its last successful run, and every
output table is still at the version that run wrote. Up-to-date stages are skipped, so a
re-run of an unchanged pipeline costs seconds; a change upstream re-runs exactly the
stages downstream of it (their input versions move).

A stage starts once the stages writing its inputs have finished; up to
``pipeline.max_parallel_stages`` run at once in threads sharing the Spark session (most
stages leave cores idle between their many small Spark jobs, and the critical path is
about half the summed stage time). Among the ready stages the one with the slowest
remaining chain of dependents goes first.

Each stage is called, not executed as a script: :func:`marketlab.runtime.call_job` imports
``jobs/<job>.py`` and calls its ``main(ctx)`` through the same harness spark-submit uses.

Stage runs are recorded in the Delta table ``ops.pipeline_runs`` (one row per stage
outcome), which also gives the per-stage time of the last run for the progress display
and the scheduling priorities. The closing table shows each stage's time, the run's wall
time and the share of the machine's CPU time that was busy during it.
"""

from __future__ import annotations

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

import psutil
from rich.console import Console
from rich.table import Table

import marketlab
from marketlab.config import Settings, load_settings
from marketlab.errors import UserError
from marketlab.logs import PIPELINE_RUN
from marketlab.pipeline import STAGES, Stage, dependencies, remaining_path, select_stages

STATE_TABLE = "ops.pipeline_runs"
_STATE_SCHEMA = ("run_id string, stage string, fingerprint string, status string, started_at timestamp, "
                 "seconds double, input_versions string, output_versions string, message string")


@dataclass
class StageOutcome:
    """What happened to one stage in one pipeline run."""

    stage: str
    status: str  # ok | skipped (up to date) | failed
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
    wall_s: float = 0.0
    cpu_busy: float | None = None  # busy share of the machine's CPU time over the run, 0..1

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
    """Spec, size and mtime of every raw source file ingest would read."""
    out = []
    for name in settings.jobs.ingest.sources or sorted(settings.sources):
        spec = settings.sources[name]
        out.append({"source": name, "spec": spec.model_dump(mode="json")})
        path = settings.source_path(spec)
        path = path[len("file:"):] if path.startswith("file:") else path
        # The path is literal (ingest globs only `pattern`); with a pattern every file of the
        # folder counts: a needless re-run is cheaper than a stale skip.
        files = [path] if Path(path).is_file() else sorted(
            str(p) for p in Path(path).rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        for f in files:
            st = os.stat(f)
            out.append({"source": name, "file": f, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def stage_fingerprint(st: Stage, settings: Settings, job_file: Path, input_versions: dict[str, int | None]) -> str:
    """Fingerprint of everything a stage's outputs depend on.

    Raises:
        AttributeError: A section of ``st.params`` is not in ``settings.jobs`` (the contract
            test checks every stage's sections).
    """
    payload = {
        "stage": st.name,
        "code": code_fingerprint(job_file),
        "params": {name: getattr(settings.jobs, name).model_dump(mode="json") for name in st.params},
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
    from marketlab.tables import lock_lake

    console = console or Console(stderr=True)
    run_id = uuid.uuid4().hex[:12]
    try:
        selected = select_stages(only, from_stage)
        settings = load_settings(conf, list(overrides))
    except (ValueError, UserError) as exc:  # an unknown stage name, a bad conf
        console.print(f"[red]marketlab pipeline: {exc}[/red]")
        return PipelineResult(run_id, 2, [])
    try:
        held = lock_lake(settings)
    except UserError as exc:  # another run holds the lake (or it cannot hold files): nothing ran
        console.print(f"[red]marketlab pipeline: {exc}[/red]")
        return PipelineResult(run_id, exc.exit_code, [])
    try:
        return _run_locked(conf, overrides, selected, settings, force, console, max_parallel, run_id)
    finally:
        held.release()


def _run_locked(conf: str, overrides: tuple[str, ...], selected: list[Stage], settings: Settings, force: bool,
                console: Console, max_parallel: int | None, run_id: str) -> PipelineResult:
    """:func:`run_pipeline` once it holds the lake."""
    from marketlab.logs import setup_logging
    from marketlab.runtime import call_job, job_argv, load_job
    from marketlab.spark import get_spark
    from marketlab.tables import Lake

    clock = _RunClock()
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
            msg = f"no job file {job_file}"
            console.print(f"[red]{st.name}: {msg}[/red]")
            return StageOutcome(st.name, "failed", message=msg), 2
        inputs = {t: lake.version(t) for t in st.inputs}
        fp = stage_fingerprint(st, settings, job_file, inputs)
        current_out = {t: lake.version(t) for t in st.outputs}
        header = f"[{position[st.name]}/{len(STAGES)}] {st.name}: {st.description}"
        if not force and prev and prev["fingerprint"] == fp and json.loads(prev["output_versions"]) == current_out:
            console.print(f"[dim]{header} — up to date (outputs {_fmt_versions(current_out)}), skipped[/dim]")
            return StageOutcome(st.name, "skipped", output_versions=current_out, message="up to date"), 0
        missing = [t for t, v in inputs.items() if v is None and t not in st.optional]
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
            # A copy per stage: stages run in threads, and a job must not see another's edits.
            PIPELINE_RUN.set(run_id)  # this thread's job logs carry the pipeline's run id
            rc = call_job(job_file, job_argv(conf, overrides), settings=settings.model_copy(deep=True))
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
    if parallel > 1:
        # Import every job (and so its capability's modules) here, before the stage threads
        # start: a module that one thread is still importing is visible half-initialised to
        # another (mlflow's isinstance check on pyspark.ml.param failed so).
        for st in selected:
            try:
                load_job(jobs_dir / f"{st.job_name}.py")
            except UserError:
                pass  # reported as the stage's failure when it runs
    run_graph(names, dependencies(selected), run_stage, parallel,
              remaining_path(selected, {n: float(r["seconds"]) for n, r in last.items()}),
              on_interrupt=lambda: lake.spark.sparkContext.cancelAllJobs())
    ordered = [outcomes[n] for n in names if n in outcomes]
    report = _latest_report(settings)
    wall_s, cpu_busy = clock.stop()
    result = PipelineResult(run_id, failures[0] if failures else 0, ordered, report, wall_s, cpu_busy)
    _print_summary(console, result, parallel)
    return result


def _fmt_versions(versions: dict[str, int | None]) -> str:
    return ", ".join(f"{t}@v{v}" for t, v in versions.items()) or "none"


def _latest_report(settings: Settings) -> str | None:
    """The ``latest.html`` the report stage keeps in its reports folder, if there is one."""
    from marketlab.report.build import LATEST, reports_dir

    try:
        latest = reports_dir(settings) / LATEST
    except (ValueError, UserError):  # a remote lake without jobs.report.reports_dir: no local report
        return None
    return str(latest.resolve()) if latest.is_file() else None


class _RunClock:
    """Wall time and the busy share of the machine's CPU time from construction to :meth:`stop`.

    Machine-wide (psutil's system CPU times), not this process's: in local mode the
    executors are threads of the driver JVM, Python workers and Horovod ranks are
    processes of their own, and all of them are the run's work. On a shared machine the
    share includes the neighbours' load.
    """

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._cpu0 = _cpu_times()

    def stop(self) -> tuple[float, float | None]:
        wall = time.perf_counter() - self._t0
        cpu1 = _cpu_times()
        if self._cpu0 is None or cpu1 is None or cpu1[1] <= self._cpu0[1]:
            return wall, None
        return wall, (cpu1[0] - self._cpu0[0]) / (cpu1[1] - self._cpu0[1])


def _cpu_times() -> tuple[float, float] | None:
    """``(busy, total)`` CPU seconds of the machine since boot, summed over cores."""
    try:
        t = psutil.cpu_times()
    except OSError:
        return None
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(t)
    return total - idle, total


def _print_summary(console: Console, result: PipelineResult, parallel: int) -> None:
    table = Table(title=f"pipeline run {result.run_id}")
    for col in ("stage", "status", "seconds", "note"):
        table.add_column(col)
    colours = {"ok": "green", "skipped": "dim", "failed": "red"}
    for o in result.stages:
        table.add_row(o.stage, f"[{colours.get(o.status, 'white')}]{o.status}[/]", f"{o.seconds:.1f}" if o.seconds else "",
                      o.message)
    console.print(table)
    console.print(summary_line(result, parallel))
    if result.report_path:
        console.print(f"report: {result.report_path}")


def summary_line(result: PipelineResult, parallel: int) -> str:
    """``wall 513.0 s; stage times sum to 893.7 s (up to 2 stages at once); CPU busy 87% of 2 cores``."""
    summed = sum(o.seconds for o in result.stages)
    busy = f"{result.cpu_busy:.0%}" if result.cpu_busy is not None else "n/a"
    return (f"wall {result.wall_s:.1f} s; stage times sum to {summed:.1f} s (up to {parallel} "
            f"stage{'s' if parallel != 1 else ''} at once); CPU busy {busy} of {psutil.cpu_count()} cores")
