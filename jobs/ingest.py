"""Ingest raw files (CSV, CSV.gz, JSON Lines, Parquet) into bronze Delta tables, rejects quarantined.

    spark-submit jobs/ingest.py --conf conf/local.yaml
"""

from __future__ import annotations

import mlflow

from marketlab.ingest.run import IngestResult, run
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> IngestResult:
    """Ingest the configured sources, log the counts; fail (after logging) if a file failed."""
    params = ctx.settings.jobs.ingest
    sources = params.sources or list(ctx.settings.sources)
    with job_run(ctx.settings, "ingest", ctx.lake, params={"sources": ",".join(sources)}):
        res = run(ctx.lake, params)
        mlflow.log_metrics(res.metrics())
    total = res.totals()
    print(f"ingest: {res.count('ok')} files ok, {res.count('skipped')} skipped, {res.count('failed')} failed; "
          f"{total['records']:,} records = {total['bronze_rows']:,} bronze + {total['rejected_rows']:,} quarantined")
    res.raise_if_failed()
    return res


if __name__ == "__main__":
    main_guard("ingest", main)
