"""Clean job: bronze -> silver (order lines, returns, adjustments, campaign log, sessions),
the audit of every excluded/altered row, exact row accounting and the data-quality gate.

    spark-submit jobs/clean.py --conf conf/local.yaml
"""

from __future__ import annotations

import mlflow

from marketlab.clean.run import CleanResult, run as clean
from marketlab.quality.run import run as check
from marketlab.quality.tracking import log_result as log_gate
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> CleanResult:
    """Clean the configured bronze tables, account for every row, run the gate on the silver tables."""
    params, quality = ctx.settings.jobs.clean, ctx.settings.jobs.quality
    with job_run(ctx.settings, "clean", ctx.lake, params={"clean": params.model_dump(), "quality": quality.model_dump()}) as run:
        res = clean(ctx.lake, params)
        mlflow.log_metrics(res.metrics())
        gate = check(ctx.lake, res.silver_tables, quality, run_id=run.info.run_id)
        log_gate(gate)
        gate.raise_if_failed()
    rows = {a.source_table: f"{a.bronze_rows:,} -> {sum(a.silver_rows.values()):,} (+{sum(a.excluded.values()):,} excluded)"
            for a in res.accounting}
    print(f"clean: {'; '.join(f'{t} {r}' for t, r in rows.items())}; quality gate: {len(gate.results)} expectations, "
          f"{len(gate.warnings)} warnings, {len(gate.failures)} blocking failures")
    return res


if __name__ == "__main__":
    main_guard("clean", main)
