"""Train the purchase-intent classifier (LR + GBT, k-fold CV) against baselines; score every session."""

import logging

from marketlab.behaviour.run import log_result, run
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run

log = logging.getLogger("marketlab.job")


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.behaviour
    with job_run(ctx.settings, "behaviour", ctx.lake, params=p.model_dump()) as mlrun:
        out = run(ctx.lake, p, run_id=mlrun.info.run_id)
        log_result(out, p)
    res = out.result
    table = res.metrics_table().set_index("model")
    cols = ["threshold", "accuracy", "precision", "recall", "f1", "npv", "lr_plus", "lr_minus", "roc_auc", "pr_auc",
            "expected_cost"]
    print(f"behaviour: selected {res.best} (CV {p.tuning_metric} {res.tuned[res.best].cv_metric:.3f}), threshold "
          f"{res.threshold:.2f} for cost FP={p.cost_false_positive} FN={p.cost_false_negative}; "
          f"{p.output_table} v{out.version}")
    log.info("test set:\n%s", table[cols].to_string(float_format="%.3f"))


if __name__ == "__main__":
    main_guard("behaviour", main)
