"""The behaviour stage's entry point (:func:`run`) and its MLflow reporting (:func:`log_result`).

:func:`run` reads the sessions and writes every session's score through
:class:`~marketlab.tables.Lake`, with the table names of
:class:`~marketlab.behaviour.params.BehaviourParams`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from marketlab import constants as C
from marketlab.behaviour.model import SCORE, feature_importance
from marketlab.behaviour.params import BehaviourParams
from marketlab.behaviour.train import BehaviourResult, train_purchase_intent
from marketlab.tables import Lake


@dataclass
class BehaviourRun:
    """One behaviour run: the trained result, its feature importances, the table version written."""

    result: BehaviourResult
    importance: pd.DataFrame
    version: int


def run(lake: Lake, params: BehaviourParams, run_id: str | None = None) -> BehaviourRun:
    """Train and select the purchase-intent classifier; write ``params.output_table``.

    Args:
        lake: The lake (reads ``params.input_table``).
        params: Behaviour parameters.
        run_id: MLflow run id stored on the scored rows.

    Raises:
        marketlab.behaviour.metrics.DegenerateDataError: A split has only one class.
        marketlab.errors.BadInputError: Missing columns or null labels.
    """
    sessions = lake.read(params.input_table)
    res = train_purchase_intent(sessions, params, run_id=run_id)
    imp = feature_importance(res.tuned[res.best].model, sessions)
    version = lake.write(res.scored, params.output_table)
    return BehaviourRun(res, imp, version)


def log_result(out: BehaviourRun, params: BehaviourParams) -> None:
    """Log the metric suite, tables, figures and (with ``register_model``) the model to the active run."""
    import matplotlib.pyplot as plt
    import mlflow
    import mlflow.spark

    from marketlab.behaviour import plots
    from marketlab.tracking import SPARK_MODEL_REQUIREMENTS, pinned_requirements, promote_if_better

    res, imp = out.result, out.importance
    for name, m in res.test_metrics.items():
        mlflow.log_metrics({f"test.{name}.{k}": v for k, v in m.items() if v == v})  # NaN is not loggable
    mlflow.log_metrics({f"cv.{k}.{params.tuning_metric}": t.cv_metric for k, t in res.tuned.items()})
    mlflow.log_metrics({f"rows.{s}.{y}": n for s, c in res.split_counts.items() for y, n in c.items()})
    mlflow.set_tags({"selected_model": res.best, "threshold": f"{res.threshold:.4f}"})
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
    if params.register_model:
        info = mlflow.spark.log_model(res.tuned[res.best].model, "model", registered_model_name=params.model_name,
                                      pip_requirements=pinned_requirements(*SPARK_MODEL_REQUIREMENTS))
        promote_if_better(params.model_name, info.registered_model_version, "test_pr_auc",
                          res.test_metrics[res.best]["pr_auc"], margin=params.promote_margin)
