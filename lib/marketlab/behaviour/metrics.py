"""The seeds' classification metric suite, computed in Spark from (label, score) columns.

Confusion counts, the threshold sweep and the calibration bins are Spark aggregations
(one pass each, a handful of rows back to the driver); ROC AUC and PR AUC come from
Spark's ``BinaryClassificationEvaluator``. Ratios whose denominator is 0 are NaN (e.g.
precision of a rule that never predicts a purchase), never a silent 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError


class DegenerateDataError(BadInputError):
    """A split holds only one class (or no rows): the metric suite is undefined on it."""


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def binary_metrics(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """Accuracy, precision, recall, F1, specificity, NPV, LR+, LR-, rates, from counts.

    Args:
        tp: True positives.
        fp: False positives.
        tn: True negatives.
        fn: False negatives.

    Returns:
        Metric name -> value (NaN where the denominator is 0). ``conversion_rate`` is
        the share of actual purchases; ``targeted_rate`` the share predicted to buy
        (the audience a campaign would contact).
    """
    n = tp + fp + tn + fn
    precision = _div(tp, tp + fp)
    recall = _div(tp, tp + fn)
    specificity = _div(tn, tn + fp)
    fpr = _div(fp, fp + tn)
    fnr = _div(fn, fn + tp)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    return {
        "accuracy": _div(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "specificity": specificity,
        "npv": _div(tn, tn + fn),
        "lr_plus": _div(recall, fpr) if not math.isnan(recall) and not math.isnan(fpr) else float("nan"),
        "lr_minus": _div(fnr, specificity) if not math.isnan(fnr) and not math.isnan(specificity) else float("nan"),
        "fpr": fpr,
        "conversion_rate": _div(tp + fn, n),
        "targeted_rate": _div(tp + fp, n),
        "tp": float(tp), "fp": float(fp), "tn": float(tn), "fn": float(fn),
    }


def class_counts(df: DataFrame, label_col: str = C.LABEL) -> dict[int, int]:
    """Label value -> rows."""
    return {int(r[0]): int(r[1]) for r in df.groupBy(label_col).count().collect()}


def check_both_classes(df: DataFrame, what: str, label_col: str = C.LABEL) -> dict[int, int]:
    """Raise :class:`DegenerateDataError` unless ``df`` has both labels 0 and 1.

    Returns:
        The class counts.
    """
    counts = class_counts(df, label_col)
    if counts.get(0, 0) == 0 or counts.get(1, 0) == 0:
        raise DegenerateDataError(
            f"{what} has only one class ({counts or 'no rows'}): precision/recall/AUC are undefined; "
            "use more data or a different split")
    return counts


def confusion(df: DataFrame, label_col: str, pred_col: str) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) of 0/1 ``pred_col`` against 0/1 ``label_col`` in one aggregation."""
    y, p = F.col(label_col).cast("int"), F.col(pred_col).cast("int")
    r = df.agg(F.sum(((y == 1) & (p == 1)).cast("long")).alias("tp"), F.sum(((y == 0) & (p == 1)).cast("long")).alias("fp"),
               F.sum(((y == 0) & (p == 0)).cast("long")).alias("tn"), F.sum(((y == 1) & (p == 0)).cast("long")).alias("fn")
               ).first()
    return tuple(int(r[k] or 0) for k in ("tp", "fp", "tn", "fn"))  # type: ignore[return-value]


def auc_metrics(df: DataFrame, label_col: str, score_col: str) -> dict[str, float]:
    """ROC AUC and PR AUC (Spark's trapezoidal area under the PR curve) of a score column."""
    data = df.select(F.col(score_col).cast("double").alias("s"), F.col(label_col).cast("double").alias("y"))
    out = {}
    for name, metric in (("roc_auc", "areaUnderROC"), ("pr_auc", "areaUnderPR")):
        ev = BinaryClassificationEvaluator(rawPredictionCol="s", labelCol="y", metricName=metric, numBins=0)
        out[name] = float(ev.evaluate(data))
    return out


def evaluate_scores(df: DataFrame, threshold: float, label_col: str = C.LABEL, score_col: str = "probability_1",
                    what: str = "test set") -> dict[str, float]:
    """The full suite for scores cut at ``threshold`` (predict 1 when score >= threshold).

    Args:
        df: Rows with a 0/1 label and a score (higher = more likely to buy).
        threshold: Decision threshold.
        label_col: Label column.
        score_col: Score column.
        what: Name of the data in the error message.

    Returns:
        :func:`binary_metrics` plus ``roc_auc``, ``pr_auc`` and ``threshold``.

    Raises:
        DegenerateDataError: Only one class in ``df``.
    """
    check_both_classes(df, what, label_col)
    pred = df.withColumn("_pred", (F.col(score_col) >= F.lit(threshold)).cast("int"))
    out = binary_metrics(*confusion(pred, label_col, "_pred"))
    out.update(auc_metrics(df, label_col, score_col))
    out["threshold"] = float(threshold)
    return out


def threshold_costs(df: DataFrame, cost_fp: float, cost_fn: float, grid: int = 99, label_col: str = C.LABEL,
                    score_col: str = "probability_1") -> pd.DataFrame:
    """Expected business cost per session at each candidate threshold ``k / (grid + 1)``.

    One Spark aggregation of label counts per score bucket; the sweep is a cumulative sum
    on the driver, so it costs the same for 10 or 1000 thresholds.

    Returns:
        pandas ``threshold, tp, fp, tn, fn, cost`` (cost = (c_fp fp + c_fn fn) / n).
    """
    b = grid + 1
    buckets = (df.select(F.least(F.floor(F.col(score_col) * b), F.lit(b)).cast("int").alias("k"),
                         F.col(label_col).cast("int").alias("y"))
               .groupBy("k").agg(F.sum("y").alias("pos"), F.sum(1 - F.col("y")).alias("neg")).toPandas())
    pos = np.zeros(b + 1)
    neg = np.zeros(b + 1)
    pos[buckets["k"].to_numpy()] = buckets["pos"].to_numpy()
    neg[buckets["k"].to_numpy()] = buckets["neg"].to_numpy()
    # Rows with bucket >= k have score >= k / b: suffix sums give predicted positives.
    tp_at = np.cumsum(pos[::-1])[::-1]
    fp_at = np.cumsum(neg[::-1])[::-1]
    ks = np.arange(1, b)
    tp, fp = tp_at[ks], fp_at[ks]
    fn, tn = pos.sum() - tp, neg.sum() - fp
    n = pos.sum() + neg.sum()
    return pd.DataFrame({"threshold": ks / b, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                         "cost": (cost_fp * fp + cost_fn * fn) / n})


def choose_threshold(costs: pd.DataFrame) -> float:
    """Threshold of least expected cost (ties -> the highest, i.e. the smallest audience)."""
    best = costs["cost"].min()
    return float(costs.loc[np.isclose(costs["cost"], best, rtol=0, atol=1e-12), "threshold"].max())


def calibration_table(df: DataFrame, n_bins: int = 10, label_col: str = C.LABEL,
                      score_col: str = "probability_1") -> pd.DataFrame:
    """Reliability curve with equal-width bins (the binning of sklearn's ``calibration_curve``).

    Returns:
        pandas ``bin, mean_predicted, fraction_positive, count`` for non-empty bins.
    """
    # sklearn puts a score equal to an inner edge into the lower bin: bin = ceil(s n) - 1.
    bin_ = F.least(F.greatest(F.ceil(F.col(score_col) * n_bins) - 1, F.lit(0)), F.lit(n_bins - 1)).cast("int")
    out = (df.select(bin_.alias("bin"), F.col(score_col).alias("s"), F.col(label_col).cast("double").alias("y"))
           .groupBy("bin").agg(F.avg("s").alias("mean_predicted"), F.avg("y").alias("fraction_positive"),
                               F.count(F.lit(1)).alias("count"))
           .orderBy("bin").toPandas())
    return out
