"""Clean job: bronze -> silver (order lines, returns, adjustments, campaign log, sessions),
the audit of every excluded/altered row, exact row accounting and the data-quality gate.

    spark-submit jobs/clean.py --conf conf/local.yaml
"""

from __future__ import annotations

from marketlab.clean.run import SILVER_OF, clean_tables
from marketlab.quality.run import check_tables
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    """Clean the configured bronze tables, account for every row, run the gate."""
    params, quality = ctx.settings.jobs.clean, ctx.settings.jobs.quality
    with job_run(ctx.settings, "clean", ctx.lake, params={"clean": params.model_dump(), "quality": quality.model_dump()}) as run:
        accounting = clean_tables(ctx.lake, params)  # writes silver + silver._audit, checks accounting, logs metrics
        silver = [t for kind in params.tables for t in SILVER_OF[kind]]
        results = check_tables(ctx.lake, silver, quality, run_id=run.info.run_id)
    print("clean: bronze -> silver")
    for acc in accounting:
        print(f"  {acc.source_table}: {acc.bronze_rows} rows = {acc.silver_rows} + excluded {acc.excluded}"
              f"; altered {acc.altered}")
    failed = [r for r in results if not r.passed]
    print(f"  quality gate: {len(results)} expectations, {len(failed)} failed (warnings only)")
    for r in failed:
        print(f"    {r.message()}")
    return {"accounting": accounting, "quality": results}


if __name__ == "__main__":
    main_guard("clean", main)
