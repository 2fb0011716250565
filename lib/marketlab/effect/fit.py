"""Fit, evaluate and select uplift learners per arm x outcome; score every customer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.effect.data import TREATED_COL, arm_frame, hash_split
from marketlab.effect.learners import FittedLearner, fit_learner
from marketlab.effect.metrics import calibration_table, curve_points, uplift_metrics
from marketlab.effect.params import EffectParams

log = logging.getLogger(__name__)

BINARY_OUTCOMES = (C.VISIT, C.CONVERSION)
_SELECTION = "_selection"


def slug(text: str) -> str:
    """``"Womens E-Mail"`` -> ``"womens_e_mail"`` (metric and model names)."""
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


@dataclass
class ArmOutcomeResult:
    """Everything learned for one arm x outcome.

    Attributes:
        arm: Treatment arm.
        outcome: Outcome column.
        learners: Learner name -> fitted learner.
        metrics: Learner name -> held-out metrics (with bootstrap CIs).
        selection: Learner name -> the selection metric on the selection rows (carved
            from training; the held-out rows never choose the learner, so its held-out
            metrics are an unbiased report).
        selected: Learner chosen by the selection metric on the selection rows.
        calibration: Calibration table (pandas) of the selected learner on held-out rows.
        curves: Learner name -> Qini curve points (pandas, for plots).
    """

    arm: str
    outcome: str
    learners: dict[str, FittedLearner] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    selection: dict[str, float] = field(default_factory=dict)
    selected: str = ""
    calibration: pd.DataFrame | None = None
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)


def fit_arm_outcome(
    df: DataFrame,
    arm: str,
    outcome: str,
    params: EffectParams,
    holdout_col: str = "is_holdout",
    treatment_col: str = C.CAMPAIGN_TREATMENT,
    id_col: str = C.CUSTOMER_ID,
) -> ArmOutcomeResult:
    """Fit every learner on training rows, pick one on a selection split, report on held-out rows.

    ``params.selection_fraction`` of the training customers (a hash split with its own
    salt) are kept out of the fits and choose the learner; every learner is then
    evaluated on the held-out rows. Choosing on the held-out rows and reporting the
    winner's held-out metric would be biased upward (the max of noisy estimates).

    Args:
        df: Campaign rows with the boolean ``holdout_col``.
        arm: Treatment arm modelled against ``params.control``.
        outcome: Outcome column.
        params: Effect parameters: ``learners``, ``control``, ``base_model``, ``max_iter``,
            ``max_depth``, ``seed`` (models, bootstrap), ``ks`` (uplift@k), ``bootstrap``
            (replicates of the held-out metrics), ``calibration_bins`` and
            ``selection_metric`` (higher is better), ``selection_fraction``.
        holdout_col: Boolean column, True for held-out rows.
        treatment_col: Arm column.
        id_col: Customer id (tie-break, bootstrap).

    Returns:
        The fitted learners, their metrics and the selected one.
    """
    p = params
    binary = outcome in BINARY_OUTCOMES
    data = arm_frame(df, arm, p.control, treatment_col)
    train, chooser = (x.cache() for x in selection_split(data.where(~F.col(holdout_col)), p, id_col))
    hold = data.where(F.col(holdout_col)).cache()
    res = ArmOutcomeResult(arm=arm, outcome=outcome)
    preds = {}
    outcome_models = None  # mu1 / mu0 of the first T- or X-learner, reused by the other
    for name in p.learners:
        fl = fit_learner(name, train, outcome, binary, p.base_model, p.max_iter, p.max_depth, p.seed,
                         outcome_models=outcome_models)
        if outcome_models is None and "mu1" in fl.models:
            outcome_models = {role: fl.models[role] for role in ("mu1", "mu0")}
        cols = [id_col, TREATED_COL, outcome, *_feature_cols(hold)]
        res.selection[name] = uplift_metrics(fl.predict(chooser.select(*cols), "uplift"), "uplift", outcome,
                                             TREATED_COL, id_col, list(p.ks))[p.selection_metric]
        pred = fl.predict(hold.select(*cols), "uplift").cache()
        m = uplift_metrics(pred, "uplift", outcome, TREATED_COL, id_col, list(p.ks), p.bootstrap, p.seed)
        log.info("%s / %s / %s: selection %s=%.4f, held-out qini_auc=%.4f uplift@30=%.4f", arm, outcome, name,
                 p.selection_metric, res.selection[name], m["qini_auc"], m.get("uplift_at_30", float("nan")))
        res.learners[name], res.metrics[name], preds[name] = fl, m, pred
        pts = curve_points(pred, "uplift", outcome, TREATED_COL).select("n", "qini").orderBy("n").toPandas()
        res.curves[name] = _thin(pts)
    res.selected = max(res.selection, key=lambda n: _nan_low(res.selection[n]))
    res.calibration = calibration_table(preds[res.selected], "uplift", outcome, TREATED_COL, p.calibration_bins).toPandas()
    for pred in preds.values():
        pred.unpersist()
    train.unpersist()
    chooser.unpersist()
    hold.unpersist()
    return res


def selection_split(train: DataFrame, params: EffectParams, id_col: str = C.CUSTOMER_ID) -> tuple[DataFrame, DataFrame]:
    """``(fit rows, selection rows)`` of the training rows: ``params.selection_fraction`` choose the learner."""
    # A different salt from the held-out split's, so the selection rows are a random share
    # of the training customers rather than a slice of the same hash range.
    flagged = hash_split(train, params.selection_fraction, params.seed + 1, id_col, _SELECTION)
    return (flagged.where(~F.col(_SELECTION)).drop(_SELECTION), flagged.where(F.col(_SELECTION)).drop(_SELECTION))


def _nan_low(x: float) -> float:
    return -np.inf if x != x else x


def _thin(pts: pd.DataFrame, max_points: int = 400) -> pd.DataFrame:
    if len(pts) <= max_points:
        return pts
    idx = np.unique(np.linspace(0, len(pts) - 1, max_points).astype(int))
    return pts.iloc[idx].reset_index(drop=True)


def _feature_cols(df: DataFrame) -> list[str]:
    from marketlab.effect.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES

    return [c for c in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES) if c in df.columns]


def _interval_expr(score: str, cal: pd.DataFrame) -> tuple[F.Column, F.Column]:
    """Interval of the calibration bin a score falls in (bins are by descending score)."""
    cal = cal.sort_values("bin")
    lo_expr, hi_expr = None, None
    for _, row in cal.iterrows():
        cond = F.col(score) >= F.lit(float(row["score_min"]))
        lo_expr = (F.when(cond, F.lit(float(row["observed_lo"]))) if lo_expr is None
                   else lo_expr.when(cond, F.lit(float(row["observed_lo"]))))
        hi_expr = (F.when(cond, F.lit(float(row["observed_hi"]))) if hi_expr is None
                   else hi_expr.when(cond, F.lit(float(row["observed_hi"]))))
    last = cal.iloc[-1]
    return lo_expr.otherwise(F.lit(float(last["observed_lo"]))), hi_expr.otherwise(F.lit(float(last["observed_hi"])))


def score_customers(df: DataFrame, results: list[ArmOutcomeResult], model_versions: dict[tuple[str, str], str] | None = None,
                    id_col: str = C.CUSTOMER_ID, holdout_col: str = "is_holdout") -> DataFrame:
    """Predicted uplift of every customer for every arm x outcome (long format).

    ``mu_control`` is the control-outcome model of the T-/X-learner when one was fitted
    (the mean over arms), so a strategy can build Q(x, a) = mu_control + uplift_a; the
    interval is the observed uplift (95 %) among held-out customers in the same
    calibration bin of predicted uplift.

    Returns:
        ``customer_id``, ``action``, ``outcome``, ``uplift``, ``effect_low``,
        ``effect_high``, ``mu_control``, ``learner``, ``model_version``, ``is_holdout``.
    """
    versions = model_versions or {}
    base = df.select(id_col, holdout_col, *_feature_cols(df))
    parts = []
    for r in results:
        sel = r.learners[r.selected]
        scored = sel.predict(base, "uplift")
        mu_learner = next((r.learners[n] for n in ("t_learner", "x_learner") if n in r.learners), None)
        if mu_learner is not None:
            mu = mu_learner.predict(base.select(id_col, *_feature_cols(df)), "_u", mu0_col="mu_control").select(
                id_col, "mu_control")
            scored = scored.join(mu, id_col)
        else:
            scored = scored.withColumn("mu_control", F.lit(None).cast("double"))
        lo, hi = _interval_expr("uplift", r.calibration)
        parts.append(scored.select(
            id_col, F.lit(r.arm).alias("action"), F.lit(r.outcome).alias("outcome"),
            F.col("uplift").cast("double").alias("uplift"), lo.alias("effect_low"), hi.alias("effect_high"),
            F.col("mu_control").cast("double").alias("mu_control"), F.lit(r.selected).alias("learner"),
            F.lit(versions.get((r.arm, r.outcome), "")).alias("model_version"), F.col(holdout_col).alias("is_holdout")))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    # Several arms give several control-model estimates for one customer: average them.
    from pyspark.sql import Window

    w = Window.partitionBy(id_col, "outcome")
    return out.withColumn("mu_control", F.avg("mu_control").over(w))


def feature_importance(fl: FittedLearner) -> pd.DataFrame:
    """Importance of each input feature per fitted model of a learner.

    Tree models report Spark's impurity importances; linear models the absolute
    coefficients. One-hot slots are summed back to their source column.

    Returns:
        Columns ``model``, ``feature``, ``importance`` (normalised to sum 1 per model).
    """
    rows = []
    for role, pm in fl.models.items():
        est = pm.stages[-1]
        assembler = pm.stages[-2]
        names = _slot_names(pm, assembler)
        if hasattr(est, "featureImportances"):
            vals = est.featureImportances.toArray()
        else:
            vals = np.abs(est.coefficients.toArray())
        agg: dict[str, float] = {}
        for n, v in zip(names, vals):
            agg[n] = agg.get(n, 0.0) + float(v)
        total = sum(agg.values()) or 1.0
        rows += [{"model": role, "feature": k, "importance": v / total} for k, v in agg.items()]
    return pd.DataFrame(rows).sort_values(["model", "importance"], ascending=[True, False]).reset_index(drop=True)


def _slot_names(pm, assembler) -> list[str]:
    """Source column of each slot of the assembled vector."""
    ohe = pm.stages[1]
    indexer = pm.stages[0]
    sizes = {}
    for col, labels in zip(ohe.getOutputCols(), indexer.labelsArray):
        sizes[col] = len(labels) + 1  # dropLast=False + keep bucket
    names = []
    for col in assembler.getInputCols():
        src = col.replace("__ohe", "")
        names += [src] * sizes.get(col, 1)
    return names


def protocol_split(df: DataFrame, arm: str, control: str, test_size: float = 0.5, seed: int = 42,
                   id_col: str = C.CUSTOMER_ID, treatment_col: str = C.CAMPAIGN_TREATMENT,
                   holdout_col: str = "is_holdout") -> DataFrame:
    """The published scikit-uplift protocol split, row for row.

    The tutorials keep the arm and control rows in file order and call
    ``train_test_split(..., test_size=0.5, random_state=42)``; ``customer_id`` is the file
    line, so sorting by it and applying the same call reproduces their validation set.
    Only the ids travel to the driver.
    """
    from sklearn.model_selection import train_test_split

    sub = df.where(F.col(treatment_col).isin(arm, control))
    ids = np.array([r[0] for r in sub.select(id_col).orderBy(id_col).collect()])
    _, test_ids = train_test_split(ids, test_size=test_size, random_state=seed)
    hold = df.sparkSession.createDataFrame(pd.DataFrame({id_col: test_ids.astype("int64"), holdout_col: True}))
    return sub.join(F.broadcast(hold), id_col, "left").withColumn(holdout_col, F.coalesce(F.col(holdout_col), F.lit(False)))
