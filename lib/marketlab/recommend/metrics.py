"""Offline metrics of top-k recommendations against held-out interactions.

Definitions (binary relevance; ``R_u`` = the user's top-k list, ``T_u`` = held-out items):

- precision@k = |R_u ∩ T_u| / k (k, not |R_u|: a short list is not rewarded)
- recall@k = |R_u ∩ T_u| / |T_u|
- MAP@k = mean_u of sum_{i<=k} P@i * rel_i / min(|T_u|, k)
- nDCG@k = DCG@k / IDCG@k with log2(i + 1) discounts
- AUC = per-user ROC AUC of held-out items vs. all items not in the user's training set,
  averaged over users (see :func:`marketlab.recommend.score.user_auc`)
- coverage@k = distinct items recommended to anyone / catalogue size
- novelty@k = mean over recommended items of -log2(p_i), p_i = (training users of i + 1)
  / (training users + 1): higher means less mainstream recommendations

Ranking metrics follow Spark's ``RankingEvaluator`` definitions, computed in one
aggregation (averaged over users with at least one held-out item; a user the model could
not score counts with an empty list).
"""

from __future__ import annotations

import math

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from scipy import stats

from marketlab.recommend.data import ITEM_IDX, USER_IDX


def ranking_frame(recs: DataFrame, test: DataFrame) -> DataFrame:
    """``prediction`` / ``label`` arrays (double) per held-out user, cached.

    Args:
        recs: ``user_idx, items`` (array<int>, best first).
        test: ``user_idx, item_idx`` held-out pairs.
    """
    labels = test.groupBy(USER_IDX).agg(F.collect_set(ITEM_IDX).alias("_label"))
    empty = F.array().cast(T.ArrayType(T.DoubleType()))
    return (
        labels.join(recs.select(USER_IDX, "items"), USER_IDX, "left")
        .select(
            USER_IDX,
            F.coalesce(F.col("items").cast(T.ArrayType(T.DoubleType())), empty).alias("prediction"),
            F.col("_label").cast(T.ArrayType(T.DoubleType())).alias("label"),
        )
        .cache()
    )


def ranking_metrics(frame: DataFrame, ks: list[int]) -> dict[str, float]:
    """precision/recall/MAP/nDCG at each k, e.g. ``{"map_at_10": ...}``, in one Spark job.

    The definitions are those of Spark's ``RankingEvaluator`` / ``RankingMetrics``
    (``tests/recommend/test_metrics.py`` checks both against each other and against
    pandas), written as array expressions so that every metric at every k comes out of a
    single aggregation: one ``RankingEvaluator.evaluate`` per metric and k was ~20 Spark
    jobs per model and the largest cost of the recommend job's evaluation.
    A user without held-out items scores 0 on every metric, as in Spark.
    """
    kmax = max(ks)
    rel = F.transform(F.slice("prediction", 1, kmax),
                      lambda x: F.when(F.array_contains("label", x), F.lit(1.0)).otherwise(F.lit(0.0)))
    base = frame.select(rel.alias("_rel"), F.size("label").alias("_nl"))

    def total(arr: F.Column, k: int | F.Column) -> F.Column:
        return F.aggregate(F.slice(arr, 1, k), F.lit(0.0), lambda acc, v: acc + v)

    # Precision at each hit position (hits so far / position) and the DCG gain 1/ln(i+2);
    # natural log like Spark (the base cancels in nDCG).
    terms = base.select(
        "_rel", "_nl",
        F.transform("_rel", lambda x, i: F.when(x > 0, total(F.col("_rel"), i + 1) / (i + 1))
                    .otherwise(F.lit(0.0))).alias("_ap"),
        F.transform("_rel", lambda x, i: x / F.log(i + 2.0)).alias("_dcg"),
    )
    has = F.col("_nl") > 0
    aggs = []
    for k in ks:
        hits = total(F.col("_rel"), k)
        cut = F.least(F.col("_nl"), F.lit(k))
        idcg = F.aggregate(F.sequence(F.lit(0), F.greatest(cut, F.lit(1)) - 1), F.lit(0.0),
                           lambda a, i: a + 1.0 / F.log(i + 2.0))
        per_user = {
            "precision": hits / k,
            "recall": hits / F.col("_nl"),
            "map": total(F.col("_ap"), k) / cut,
            "ndcg": total(F.col("_dcg"), k) / idcg,
        }
        for name, expr in per_user.items():
            aggs.append(F.avg(F.when(has, expr).otherwise(F.lit(0.0))).alias(f"{name}_at_{k}"))
    row = terms.agg(*aggs).first()
    return {key: float(row[key]) for key in row.asDict()}


def coverage(recs: DataFrame, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    n = recs.select(F.explode(F.slice("items", 1, k)).alias("i")).distinct().count()
    return n / n_items if n_items else 0.0


def novelty(recs: DataFrame, popularity: np.ndarray, n_users: int, k: int) -> float:
    """Mean self-information -log2 p_i of recommended items (see module doc)."""
    info = np.log2(n_users + 1) - np.log2(np.asarray(popularity, dtype=np.float64) + 1)
    rows = recs.select(F.explode(F.slice("items", 1, k)).alias("i")).groupBy("i").count().collect()
    if not rows:
        return float("nan")
    idx = np.array([r["i"] for r in rows])
    cnt = np.array([r["count"] for r in rows], dtype=np.float64)
    return float((info[idx] * cnt).sum() / cnt.sum())


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and a t-interval of per-user values (NaNs dropped)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - half, m + half
