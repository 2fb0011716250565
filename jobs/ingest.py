"""Ingest raw files (CSV, CSV.gz, JSON Lines, Parquet) into bronze Delta tables, rejects quarantined."""

import mlflow

from marketlab.ingest.run import ingest_sources
from marketlab.ingest.report import print_summary
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> None:
    params = ctx.settings.jobs.ingest
    sources = params.sources or list(ctx.settings.sources)
    with job_run(ctx.settings, "ingest", ctx.lake, params={"sources": ",".join(sources)}) as run:
        summary = ingest_sources(ctx.lake, ctx.settings, sources)
        for name in sources:
            mlflow.log_metrics({f"{name}.{k}": v for k, v in summary.totals(name).items()})
        mlflow.log_metrics({f"rejected.{k}": v for k, v in summary.rejected_by_reason().items()})
        mlflow.log_metrics({
            "files_ok": sum(f.status == "ok" for f in summary.files),
            "files_skipped": sum(f.status == "skipped" for f in summary.files),
            "files_failed": len(summary.failed),
        })
        print_summary(summary, ctx.lake, run.info.run_id)
    if summary.failed:
        raise JobError("; ".join(f.message for f in summary.failed))


if __name__ == "__main__":
    main_guard("ingest", main)
