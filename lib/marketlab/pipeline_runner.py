"""Run the stage graph of :mod:`marketlab.pipeline` in one process (one Spark session)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from marketlab.pipeline import STAGES


def run_pipeline(conf: str, overrides: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> int:
    """Run every stage (or ``only`` those) in order; stop at the first failing stage.

    Returns:
        0 if every stage that ran succeeded, else the failing stage's exit code.
    """
    from marketlab.cli import run_job_file

    console = Console(stderr=True)
    jobs_dir = Path(conf).resolve().parent.parent / "jobs"
    unknown = set(only) - {s.name for s in STAGES}
    if unknown:
        console.print(f"[red]unknown stage(s) {sorted(unknown)}[/red]")
        return 2
    results: list[tuple[str, str, float]] = []
    code = 0
    for st in STAGES:
        if only and st.name not in only:
            continue
        if not (jobs_dir / f"{st.job_name}.py").is_file():
            results.append((st.name, "not built yet", 0.0))
            continue
        console.rule(f"[bold]{st.name}[/bold]: {st.description}")
        t0 = time.perf_counter()
        code = run_job_file(conf, st.job_name, overrides)
        results.append((st.name, "ok" if code == 0 else f"failed ({code})", time.perf_counter() - t0))
        if code:
            break
    table = Table(title="pipeline")
    for col in ("stage", "status", "seconds"):
        table.add_column(col)
    for name, status, secs in results:
        table.add_row(name, status, f"{secs:.1f}" if secs else "")
    console.print(table)
    return code
