"""Report job: one self-contained HTML report of the lake and the jobs' MLflow runs.

Writes ``<reports_dir>/report-<UTC timestamp>-<run id>.html`` and ``latest.html``
(reports_dir: ``jobs.report.reports_dir``, default ``<lake_root>/../reports``) and logs
the file to the run as an artifact.

    spark-submit jobs/report.py --conf conf/local.yaml
"""

from __future__ import annotations

import mlflow

from marketlab.report.build import make_report
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    """Build the report, log it to MLflow, print where it is."""
    params = ctx.settings.jobs.report
    with job_run(ctx.settings, "report", ctx.lake, params={"report": params.model_dump()}) as run:
        try:
            res = make_report(ctx.lake, ctx.settings, run_id=run.info.run_id)
        except ValueError as exc:  # e.g. a remote lake_root without jobs.report.reports_dir
            raise JobError(f"report: {exc}") from None
        mlflow.log_artifact(str(res.path), "report")
        mlflow.log_metrics({"sections": len(res.sections), "sections_partial": len(res.partial),
                            "size_kb": res.path.stat().st_size / 1024})
        mlflow.set_tags({"report.path": str(res.path), "report.partial": ", ".join(res.partial) or "none"})
    print(f"report: {res.path}")
    print(f"  latest: {res.latest}")
    if res.partial:
        print(f"  sections with parts not available: {', '.join(res.partial)}")
    return {"path": str(res.path), "partial": res.partial}


if __name__ == "__main__":
    main_guard("report", main)
