"""Report job: one self-contained HTML report of the lake and the jobs' MLflow runs.

Writes ``<reports_dir>/report-<UTC timestamp>-<run id>.html`` and ``latest.html``
(reports_dir: ``jobs.report.reports_dir``, default ``<lake_root>/../reports``) and logs
the file to the run as an artifact.

    spark-submit jobs/report.py --conf conf/local.yaml
"""

from __future__ import annotations

from marketlab import privacy
from marketlab.report.run import ReportResult, run
from marketlab.report.tracking import log_result
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> ReportResult:
    """Build the report, log it to MLflow, print where it is."""
    params = ctx.settings.jobs.report
    with job_run(ctx.settings, "report", ctx.lake, params={"report": params.model_dump()}) as mlrun:
        res = run(ctx.lake, ctx.settings, privacy.resolve_secret(ctx.settings), run_id=mlrun.info.run_id)
        log_result(res)
    partial = ", ".join(res.partial) or "none"
    print(f"report: {res.path} ({len(res.sections)} sections, with parts not available: {partial}; also {res.latest})")
    return res


if __name__ == "__main__":
    main_guard("report", main)
