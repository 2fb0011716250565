"""Evaluate a randomized campaign (A/B tests, ROI) into gold history (the export job writes the next wave)."""

import logging

import mlflow

from marketlab.evaluation.ab import summary_metrics
from marketlab.evaluation.plots import log_evaluation
from marketlab.evaluation.run import run
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run

log = logging.getLogger("marketlab.job")


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.evaluation
    with job_run(ctx.settings, "evaluation", ctx.lake, params=p.model_dump()) as mlrun:
        res = run(ctx.lake, p, run_id=mlrun.info.run_id)
        mlflow.log_metrics(summary_metrics(res.evaluation))
        log_evaluation(res.evaluation)
    ev = res.evaluation
    overall = ev.rows[ev.rows["segment"] == "all"]
    print(f"evaluation {p.campaign}: SRM p={ev.srm.p_value:.3g}{' MISMATCH' if ev.srm.mismatch else ''}; "
          f"{len(ev.rows)} rows -> {p.output_table} v{res.version}")
    log.info("overall effects:\n%s", overall[["arm", "metric", "effect", "ci_low", "ci_high", "p_adjusted"]]
             .to_string(index=False, float_format="%.4g"))


if __name__ == "__main__":
    main_guard("evaluation", main)
