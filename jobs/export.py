"""Export job: the next campaign wave (strategy's actions + random holdout) for an e-mail tool.

    spark-submit jobs/export.py --conf conf/local.yaml

Reads ``gold.strategy`` (or, before any strategy exists, re-randomizes the evaluated
campaign's customers) and writes ``gold.campaign_export`` plus a single-file CSV copy. Its
responses come back as the next ``silver.campaign_log`` and are evaluated by the
evaluation job: the closed loop.
"""

from __future__ import annotations

import mlflow

from marketlab import privacy
from marketlab.evaluation.run import export_wave
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> int:
    """Write this wave's rows of gold.campaign_export (replacing only this campaign)."""
    p = ctx.settings.jobs.evaluation
    e = ctx.settings.jobs.export
    secret = privacy.resolve_secret(ctx.settings)
    with job_run(ctx.settings, "export", ctx.lake, params={"export": e.model_dump(), "control_arm": p.control_arm}):
        res = export_wave(ctx.lake, e, p, secret)
        mlflow.log_metrics({"export.rows": res.rows, "export.holdout": res.held_out})
        mlflow.set_tag("export.audience", res.origin)
    print(f"export {e.campaign}: {res.rows} customers from {res.origin}, {res.held_out} held out -> {e.output_table}")
    return res.rows


if __name__ == "__main__":
    main_guard("export", main)
