"""Campaign job: the shop's waves planned, sent, ingested and measured -> gold.campaign_* (docs/CAMPAIGN.md).

    spark-submit jobs/campaign.py --conf conf/local.yaml [--set jobs.campaign.waves=6]

Each wave is an MLflow child run (predicted and measured effects, ROI, and the regret
against the simulator's oracle when the simulator plays the platform).
"""

from __future__ import annotations

import mlflow

from marketlab import privacy
from marketlab.campaign.run import run
from marketlab.campaign.tracking import log_campaign_run, summary_line
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    s = ctx.settings
    p = s.jobs.campaign
    checkpoint_dir = s.resolve(s.lake_root).rstrip("/") + "/" + s.jobs.recommend.checkpoint_subdir
    with job_run(s, "campaign", ctx.lake, params={"campaign": p.model_dump(mode="json")}):
        mlflow.set_tag("marketlab.run_kind", "effect_evaluation")
        res = run(ctx.lake, p, s.jobs.recommend, s.jobs.simulator, privacy.resolve_secret(s), checkpoint_dir,
                  s.jobs.value)
        log_campaign_run(res)
    print(summary_line(res, p.waves_table))
    return {"waves": len(res.waves), "coverage": res.coverage}


if __name__ == "__main__":
    main_guard("campaign", main)
