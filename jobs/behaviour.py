"""Train the purchase-intent classifier (LR + GBT, k-fold CV) against baselines; score every session."""

import mlflow
import mlflow.spark
import matplotlib.pyplot as plt

from marketlab import constants as C
from marketlab.behaviour import plots
from marketlab.behaviour.model import SCORE, feature_importance
from marketlab.behaviour.train import train_purchase_intent
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.tracking import SPARK_MODEL_REQUIREMENTS, job_run, pinned_requirements, promote_if_better


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.behaviour
    sessions = ctx.lake.read(p.input_table)
    with job_run(ctx.settings, "behaviour", ctx.lake, params=p.model_dump()) as run:
        try:
            res = train_purchase_intent(sessions, p, run_id=run.info.run_id)
        except ValueError as exc:
            raise JobError(f"{p.input_table}: {exc}") from None
        for name, m in res.test_metrics.items():
            mlflow.log_metrics({f"test.{name}.{k}": v for k, v in m.items() if v == v})  # NaN is not loggable
        mlflow.log_metrics({f"cv.{k}.{p.tuning_metric}": t.cv_metric for k, t in res.tuned.items()})
        mlflow.log_metrics({f"rows.{s}.{y}": n for s, c in res.split_counts.items() for y, n in c.items()})
        mlflow.set_tags({"selected_model": res.best, "threshold": f"{res.threshold:.4f}"})
        best = res.tuned[res.best]
        imp = feature_importance(best.model, sessions)
        for name, text in (("metrics_test.csv", res.metrics_table().to_csv(index=False)),
                           ("feature_importance.csv", imp.to_csv(index=False)),
                           ("calibration.csv", res.calibration.to_csv(index=False)),
                           ("threshold_costs.csv", res.costs.to_csv(index=False)),
                           *((f"cv_{k}.csv", t.cv_table.to_csv(index=False)) for k, t in res.tuned.items())):
            mlflow.log_text(text, f"behaviour/{name}")
        for fig, name in ((plots.curves(res.test_scores, C.LABEL, SCORE, res.best), "roc_pr.png"),
                          (plots.calibration(res.calibration, res.best), "calibration.png"),
                          (plots.confusion(res.test_metrics[res.best], res.best), "confusion.png"),
                          (plots.importance(imp, res.best), "feature_importance.png"),
                          (plots.threshold_cost(res.costs, res.threshold), "threshold_cost.png")):
            mlflow.log_figure(fig, f"behaviour/{name}")
            plt.close(fig)
        ctx.lake.write(res.scored, p.output_table)
        if p.register_model:
            info = mlflow.spark.log_model(best.model, "model", registered_model_name=p.model_name,
                                          pip_requirements=pinned_requirements(*SPARK_MODEL_REQUIREMENTS))
            promote_if_better(p.model_name, info.registered_model_version, "test_pr_auc",
                              res.test_metrics[res.best]["pr_auc"], margin=p.promote_margin)

    table = res.metrics_table().set_index("model")
    cols = ["threshold", "accuracy", "precision", "recall", "f1", "npv", "lr_plus", "lr_minus", "roc_auc", "pr_auc",
            "expected_cost"]
    print(f"behaviour: selected {res.best} (CV {p.tuning_metric} {best.cv_metric:.3f}), threshold {res.threshold:.2f} "
          f"for cost FP={p.cost_false_positive} FN={p.cost_false_negative}; test set:")
    print(table[cols].to_string(float_format="%.3f"))


if __name__ == "__main__":
    main_guard("behaviour", main)
