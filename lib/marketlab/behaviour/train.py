"""One training run of the purchase-intent classifier, with its baselines, on one split.

train (k-fold CV grid search per learner; the learner with the best CV metric wins)
-> valid (decision threshold of least business cost) -> test (every reported metric, for
the tuned learners and the two baselines, at their thresholds).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.behaviour import metrics as M
from marketlab.behaviour.model import SCORE, TunedModel, add_class_weights, score, split_sessions, tune
from marketlab.behaviour.params import BehaviourParams
from marketlab.errors import BadInputError

@dataclass
class BehaviourResult:
    """Everything the job logs and writes.

    Attributes:
        tuned: Learner kind -> tuned model.
        best: Kind of the selected learner (best CV metric).
        threshold: Decision threshold of the selected learner (chosen on valid).
        thresholds: Model name -> threshold used on test.
        test_metrics: Model name (learners and baselines) -> metric suite on test.
        costs: Threshold sweep of the selected learner on valid.
        calibration: Calibration table of the selected learner on test.
        split_counts: split -> {label: rows}.
        test_scores: Selected learner's (label, score) on test (pandas, for plots).
        scored: Every session scored by the selected learner (``gold.purchase_intent`` rows).
    """

    tuned: dict[str, TunedModel]
    best: str
    threshold: float
    thresholds: dict[str, float]
    test_metrics: dict[str, dict[str, float]]
    costs: pd.DataFrame
    calibration: pd.DataFrame
    split_counts: dict[str, dict[int, int]]
    test_scores: pd.DataFrame
    scored: DataFrame
    extra: dict = field(default_factory=dict)

    def metrics_table(self) -> pd.DataFrame:
        """Model x metric table of the test metrics (learners and baselines)."""
        return pd.DataFrame(self.test_metrics).T.rename_axis("model").reset_index()


def _grid(p: BehaviourParams, kind: str) -> dict[str, list]:
    g = p.grid
    if kind == "lr":
        return {"reg_param": g.lr_reg_param, "elastic_net": g.lr_elastic_net}
    return {"max_depth": g.gbt_max_depth, "max_iter": g.gbt_max_iter, "step_size": g.gbt_step_size}


def tune_learners(train: DataFrame, p: BehaviourParams, label_col: str = C.LABEL) -> dict[str, TunedModel]:
    """Cross-validate every learner of ``p.models`` on weighted training rows.

    CrossValidator runs its folds one after another and parallelises only over grid
    points, so with one grid point per learner (the default conf) it fits one model at a
    time. The learners are therefore tuned side by side, ``p.parallelism`` at once (Spark
    jobs from several driver threads; every fit is seeded, so the results agree up to the
    order of floating-point sums).

    Returns:
        Learner kind -> tuned model, in ``p.models`` order.
    """
    def tune_one(kind: str) -> TunedModel:
        return tune(train, kind, _grid(p, kind), p.num_folds, p.tuning_metric, p.seed, p.parallelism, label_col)

    with ThreadPoolExecutor(max_workers=max(1, min(p.parallelism, len(p.models))),
                            thread_name_prefix="behaviour-tune") as pool:
        return dict(zip(p.models, pool.map(tune_one, p.models)))


def train_purchase_intent(
    sessions: DataFrame,
    p: BehaviourParams,
    run_id: str | None = None,
    scored_at: datetime | None = None,
    id_col: str = C.SESSION_ID,
    label_col: str = C.LABEL,
) -> BehaviourResult:
    """Split, tune, pick, threshold and evaluate the classifier and its baselines.

    Args:
        sessions: ``silver.sessions`` rows (features, ``session_id``, 0/1 ``label``).
        p: Job parameters.
        run_id: MLflow run id stored on the scored rows.
        scored_at: Timestamp on the scored rows (default now, UTC).
        id_col: Session id column.
        label_col: 0/1 label column.

    Returns:
        The result.

    Raises:
        DegenerateDataError: A split has only one class.
        BadInputError: Missing columns or null labels.
    """
    missing = [c for c in (id_col, label_col, "page_values") if c not in sessions.columns]
    if missing:
        raise BadInputError(f"sessions lack column(s) {missing}")
    nulls = sessions.where(F.col(label_col).isNull()).count()
    if nulls:
        raise BadInputError(f"{nulls} session(s) have a null {label_col}: the label must be set for every session")
    df = split_sessions(sessions, p.train_fraction, p.valid_fraction, p.seed, id_col).cache()
    split_counts = {s: {} for s in ("train", "valid", "test")}
    for r in df.groupBy("split", label_col).count().collect():
        split_counts[r["split"]][int(r[label_col])] = int(r["count"])
    train = df.where("split = 'train'")
    valid = df.where("split = 'valid'")
    test = df.where("split = 'test'")
    counts = M.check_both_classes(train, "training split", label_col)
    M.check_both_classes(valid, "validation split", label_col)
    M.check_both_classes(test, "test split", label_col)

    train_w = add_class_weights(train, counts, p.class_weight, label_col).cache()
    tuned = tune_learners(train_w, p, label_col)
    train_w.unpersist()
    best = max(tuned, key=lambda k: tuned[k].cv_metric)

    test_metrics: dict[str, dict[str, float]] = {}
    thresholds: dict[str, float] = {}
    costs_best = pd.DataFrame()
    for kind, tm in tuned.items():
        costs = M.threshold_costs(score(tm.model, valid), p.cost_false_positive, p.cost_false_negative,
                                  p.threshold_grid, label_col, SCORE)
        thresholds[kind] = M.choose_threshold(costs)
        scored_test = score(tm.model, test)
        test_metrics[kind] = M.evaluate_scores(scored_test, thresholds[kind], label_col, SCORE)
        if kind == best:
            costs_best = costs
            calibration = M.calibration_table(scored_test, p.calibration_bins, label_col, SCORE)
            test_scores = scored_test.select(label_col, SCORE).toPandas()
    # Baselines on the same test rows. Majority: the training majority class for everyone
    # (a constant score: AUC 0.5). PageValues rule: buy iff page_values > cut.
    majority = 1 if counts[1] > counts[0] else 0
    base = test.withColumn(SCORE, F.lit(float(majority)))
    thresholds["majority"] = 0.5
    test_metrics["majority"] = M.evaluate_scores(base, 0.5, label_col, SCORE)
    pv = F.coalesce(F.col("page_values").cast("double"), F.lit(0.0))
    # The score is page_values itself (for the AUCs); the rule predicts 1 above the cut.
    rule = test.withColumn(SCORE, pv)
    cut = float(p.page_values_threshold)
    tp, fp, tn, fn = M.confusion(rule.withColumn("_p", (F.col(SCORE) > cut).cast("int")), label_col, "_p")
    test_metrics["page_values_rule"] = {**M.binary_metrics(tp, fp, tn, fn), **M.auc_metrics(rule, label_col, SCORE),
                                        "threshold": cut}
    thresholds["page_values_rule"] = cut
    for name, m in test_metrics.items():
        m["expected_cost"] = (p.cost_false_positive * m["fp"] + p.cost_false_negative * m["fn"]) / (
            m["tp"] + m["fp"] + m["tn"] + m["fn"])

    scored_at = scored_at or datetime.now(timezone.utc).replace(tzinfo=None)
    thr = thresholds[best]
    scored = score(tuned[best].model, df).select(
        F.col(id_col).cast("long").alias(C.SESSION_ID), "split", F.col(label_col).cast("int").alias(C.LABEL),
        F.col(SCORE).alias("probability"), (F.col(SCORE) >= F.lit(thr)).cast("int").alias("prediction"),
        F.lit(thr).alias("threshold"), F.lit(best).alias("model"), F.lit(run_id).cast("string").alias("run_id"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"))
    return BehaviourResult(tuned, best, thr, thresholds, test_metrics, costs_best, calibration, split_counts,
                           test_scores, scored)
