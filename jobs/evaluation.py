"""Evaluate a randomized campaign (A/B tests, ROI) into gold history (the export job writes the next wave)."""

import matplotlib.pyplot as plt
import mlflow

from marketlab.evaluation.ab import TESTED_METRICS, evaluate_campaign, summary_metrics
from marketlab.evaluation.plots import forest_plot, segment_plot
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.evaluation
    log = ctx.lake.read(p.input_table)
    with job_run(ctx.settings, "evaluation", ctx.lake, params=p.model_dump()) as run:
        try:
            res = evaluate_campaign(
                log, campaign=p.campaign, control_arm=p.control_arm, arms=p.arms, segment_columns=p.segment_columns,
                cost_of=p.cost_of, margin_rate=p.margin_rate, alpha=p.alpha, correction=p.correction,
                spend_test=p.spend_test, bootstrap_resamples=p.bootstrap_resamples, seed=p.seed,
                expected_allocation=p.expected_allocation, srm_alpha=p.srm_alpha, min_segment_size=p.min_segment_size,
                run_id=run.info.run_id, treatment_col=p.treatment_column)
        except ValueError as exc:
            raise JobError(f"{p.input_table}: {exc}") from None
        mlflow.log_metrics(summary_metrics(res))
        if res.srm.mismatch and p.fail_on_srm:
            raise JobError(f"sample-ratio mismatch (p={res.srm.p_value:.2e}): observed {res.srm.observed}, "
                           f"expected {res.srm.expected}; set jobs.evaluation.fail_on_srm=false to only flag it")
        ctx.lake.write(res.to_spark(ctx.spark), p.output_table, replace_where=f"campaign = '{p.campaign}'")
        mlflow.log_text(res.rows.to_csv(index=False), "evaluation/campaign_evaluations.csv")
        mlflow.log_figure(forest_plot(res.rows, list(TESTED_METRICS) + ["roi"]), "evaluation/forest.png")
        for arm in sorted(res.rows["arm"].unique()):
            mlflow.log_figure(segment_plot(res.rows, "conversion_rate", arm), f"evaluation/segments_{arm.replace(' ', '_')}.png")
        plt.close("all")

    overall = res.rows[res.rows["segment"] == "all"]
    print(f"evaluation {p.campaign}: SRM p={res.srm.p_value:.3g}{' MISMATCH' if res.srm.mismatch else ''}; "
          f"{len(res.rows)} rows -> {p.output_table}")
    print(overall[["arm", "metric", "effect", "ci_low", "ci_high", "p_adjusted"]].to_string(index=False, float_format="%.4g"))


if __name__ == "__main__":
    main_guard("evaluation", main)
