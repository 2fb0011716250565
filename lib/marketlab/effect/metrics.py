"""Uplift metrics computed in Spark, with Poisson-bootstrap confidence intervals.

Definitions follow scikit-uplift 0.5 exactly (tests cross-check on the same predictions):

* Qini curve at each distinct score threshold (top rows by predicted uplift):
  ``Q = Y_t - Y_c * N_t / N_c``; uplift curve ``U = (Y_t/N_t - Y_c/N_c) * N``; both start
  at (0, 0) and ties in the score form one step (no arbitrary tie order).
* Qini AUC (``qini_auc_score``, negative_effect=True) and uplift AUC
  (``uplift_auc_score``): area between the model's curve and the random diagonal,
  divided by the same area of the perfect ranking; trapezoidal areas.
* uplift@k: ``by_group`` takes the top k share of each group separately, ``overall`` the
  top k share of all rows; ties broken by ``tiebreak_col`` descending, which is the
  order ``np.argsort(kind='mergesort')[::-1]`` produces on rows sorted by that column.

Bootstrap: every row gets a Poisson(1) weight per replicate (the distributed form of the
bootstrap: no collect, no resampling join), drawn from a hash of (row id, replicate,
seed) so it does not depend on partitioning. Weighted metrics with all weights 1 equal
the unweighted ones. Intervals are percentile intervals of the replicates. The
replicates are grouped by replicate id and each is scored in one pandas UDF call
(:func:`replicate_metrics`, the same definitions in numpy): a replicate is one sort,
where the column expressions above cost a dozen shuffles of rows x replicates.
:func:`uplift_metrics` scores the unweighted rows as one more group of that pass, so an
estimate and its interval cost one job (the column expressions took 3-5 s per estimate
on 21k rows, the whole pass with 100 replicates about 3 s). The column-expression
functions stay the reference the numpy scorer is tested against.

For a continuous outcome (spend) the same formulas apply with sums of the outcome;
the "perfect" ranking used for normalisation puts treated spenders first and control
spenders last.
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

REP = "_rep"
W = "_w"
POINT = -1  # replicate id of the unweighted data in bootstrap_metrics(with_point=True)

# Poisson(1) CDF: a uniform below CDF[k] and above CDF[k-1] draws k (k > 9 has p < 1e-7).
_POISSON1_CDF = [0.36787944117144233, 0.7357588823428847, 0.9196986029286058, 0.9810118431238462,
                 0.9963401531726563, 0.9994058151824183, 0.9999167588507119, 0.9999898700090192,
                 0.9999989719621401, 0.999999933]


def poisson_replicates(df: DataFrame, n: int, seed: int, id_col: str) -> DataFrame:
    """``n`` bootstrap replicates of ``df`` as Poisson(1) row weights (rows of weight 0 dropped).

    Args:
        df: Rows to resample; ``id_col`` must identify a row.
        n: Replicates.
        seed: Seed; same seed and ids -> same weights on any cluster.
        id_col: Row id.

    Returns:
        ``df`` x replicates with columns ``_rep`` (int) and ``_w`` (double).
    """
    reps = df.sparkSession.range(n).select(F.col("id").cast("int").alias(REP))
    h = F.xxhash64(F.col(id_col), F.col(REP), F.lit(seed))
    u = (F.pmod(h, F.lit(1 << 30)).cast("double") + 0.5) / float(1 << 30)
    w = reduce(lambda acc, c: acc + (u > F.lit(c)).cast("int"), _POISSON1_CDF, F.lit(0))
    return df.crossJoin(F.broadcast(reps)).withColumn(W, w.cast("double")).where(F.col(W) > 0)


def curve_points(df: DataFrame, score_col: str, y_col: str, t_col: str, weight_col: str | None = None,
                 keys: list[str] | None = None) -> DataFrame:
    """Cumulative counts at each distinct score (descending) and the Qini / uplift curve values.

    Returns:
        ``keys`` + ``score``, ``n`` (rows so far), ``n_t``, ``n_c``, ``y_t``, ``y_c``,
        ``qini``, ``uplift`` per distinct score, per key.
    """
    keys = keys or []
    w = F.col(weight_col) if weight_col else F.lit(1.0)
    t = F.col(t_col).cast("double")
    y = F.col(y_col).cast("double")
    agg = df.groupBy(*keys, F.col(score_col).alias("score")).agg(
        F.sum(w * t).alias("n_t"), F.sum(w * (1 - t)).alias("n_c"),
        F.sum(w * y * t).alias("y_t"), F.sum(w * y * (1 - t)).alias("y_c"))
    win = Window.partitionBy(*keys).orderBy(F.desc("score")).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cum = agg.select(*keys, "score", *[F.sum(c).over(win).alias(c) for c in ("n_t", "n_c", "y_t", "y_c")])
    rate_t = F.when(F.col("n_t") > 0, F.col("y_t") / F.col("n_t")).otherwise(0.0)
    rate_c = F.when(F.col("n_c") > 0, F.col("y_c") / F.col("n_c")).otherwise(0.0)
    return (cum.withColumn("n", F.col("n_t") + F.col("n_c"))
               .withColumn("qini", F.col("y_t") - F.when(F.col("n_c") > 0, F.col("y_c") * F.col("n_t") / F.col("n_c"))
                           .otherwise(0.0))
               .withColumn("uplift", (rate_t - rate_c) * F.col("n")))


def _areas(points: DataFrame, keys: list[str], prefix: str) -> DataFrame:
    """Trapezoidal area under qini / uplift curves from (0, 0), plus the last point."""
    win = Window.partitionBy(*keys).orderBy(F.desc("score"))
    px = F.lag("n", 1, 0.0).over(win)
    out = points.select(*keys, "n", "qini", "uplift", px.alias("_px"),
                        F.lag("qini", 1, 0.0).over(win).alias("_pq"), F.lag("uplift", 1, 0.0).over(win).alias("_pu"))
    return out.groupBy(*keys).agg(
        F.sum((F.col("n") - F.col("_px")) * (F.col("qini") + F.col("_pq")) / 2).alias(f"{prefix}area_qini"),
        F.sum((F.col("n") - F.col("_px")) * (F.col("uplift") + F.col("_pu")) / 2).alias(f"{prefix}area_uplift"),
        F.max("n").alias(f"{prefix}n"),
        F.max_by("qini", "n").alias(f"{prefix}last_qini"),
        F.max_by("uplift", "n").alias(f"{prefix}last_uplift"),
    )


def auc_scores(df: DataFrame, score_col: str, y_col: str, t_col: str, weight_col: str | None = None,
               keys: list[str] | None = None) -> DataFrame:
    """Normalised Qini AUC and uplift AUC (scikit-uplift definitions) per key.

    Returns:
        ``keys`` + ``qini_auc``, ``uplift_auc``.
    """
    keys = keys or []
    w = F.col(weight_col) if weight_col else F.lit(1.0)
    y, t = F.col(y_col).cast("double"), F.col(t_col).cast("double")
    base = df.select(*keys, F.col(score_col).alias("_score"), y.alias("_y"), t.alias("_t"), w.alias("_ww"))
    actual = _areas(curve_points(base, "_score", "_y", "_t", "_ww", keys), keys, "a_")
    pq = base.withColumn("_ps", F.col("_y") * F.col("_t") - F.col("_y") * (1 - F.col("_t")))
    perfect_q = _areas(curve_points(pq, "_ps", "_y", "_t", "_ww", keys), keys, "pq_")
    # sklift's perfect uplift ranking: responders in the group that dominates first.
    stats = base.groupBy(*keys).agg(
        F.sum(F.col("_ww") * ((F.col("_y") > 0) & (F.col("_t") == 0)).cast("double")).alias("_cr"),
        F.sum(F.col("_ww") * ((F.col("_y") == 0) & (F.col("_t") == 1)).cast("double")).alias("_tn"))
    pu = (base.join(F.broadcast(stats), keys) if keys else base.crossJoin(F.broadcast(stats)))
    summand = F.when(F.col("_cr") > F.col("_tn"), F.col("_y")).otherwise(F.col("_t"))
    pu = pu.withColumn("_ps", 2 * (F.col("_y") == F.col("_t")).cast("double") + summand)
    perfect_u = _areas(curve_points(pu, "_ps", "_y", "_t", "_ww", keys), keys, "pu_")
    joined = actual.join(perfect_q, keys) if keys else actual.crossJoin(perfect_q)
    joined = joined.join(perfect_u, keys) if keys else joined.crossJoin(perfect_u)
    base_q = F.col("pq_n") * F.col("pq_last_qini") / 2
    base_u = F.col("pu_n") * F.col("pu_last_uplift") / 2
    return joined.select(
        *keys,
        ((F.col("a_area_qini") - base_q) / (F.col("pq_area_qini") - base_q)).alias("qini_auc"),
        ((F.col("a_area_uplift") - base_u) / (F.col("pu_area_uplift") - base_u)).alias("uplift_auc"),
    )


def uplift_at_k(df: DataFrame, score_col: str, y_col: str, t_col: str, k: float, strategy: str = "by_group",
                tiebreak_col: str | None = None, weight_col: str | None = None, keys: list[str] | None = None) -> DataFrame:
    """Observed uplift among the top ``k`` share by predicted uplift (scikit-uplift definition).

    Args:
        df: Predictions with outcome and 0/1 treatment.
        score_col: Predicted uplift.
        y_col: Outcome.
        t_col: 0/1 treatment.
        k: Share in (0, 1).
        strategy: ``by_group`` (top k of each group) or ``overall`` (top k of all rows).
        tiebreak_col: Order among equal scores (descending); the row id.
        weight_col: Optional row weights (bootstrap).
        keys: Grouping columns (bootstrap replicate).

    Returns:
        ``keys`` + ``uplift_at_k``.
    """
    if not 0 < k < 1:
        raise ValueError(f"k must be in (0, 1), got {k}")
    if strategy not in ("by_group", "overall"):
        raise ValueError(f"strategy must be 'by_group' or 'overall', got '{strategy}'")
    keys = keys or []
    w = F.col(weight_col) if weight_col else F.lit(1.0)
    t = F.col(t_col).cast("int")
    base = df.select(*keys, F.col(score_col).alias("_s"), F.col(y_col).cast("double").alias("_y"), t.alias("_t"),
                     w.alias("_ww"), (F.col(tiebreak_col) if tiebreak_col else F.lit(0)).alias("_tb"))
    part = keys + (["_t"] if strategy == "by_group" else [])
    order = Window.partitionBy(*part).orderBy(F.desc("_s"), F.desc("_tb")).rowsBetween(Window.unboundedPreceding, 0)
    total = Window.partitionBy(*part)
    ranked = base.withColumn("_cw", F.sum("_ww").over(order)).withColumn("_tot", F.sum("_ww").over(total))
    top = ranked.where(F.col("_cw") <= F.floor(F.col("_tot") * F.lit(k)))
    means = top.groupBy(*keys).agg(
        (F.sum(F.col("_ww") * F.col("_y") * F.col("_t")) / F.sum(F.col("_ww") * F.col("_t"))).alias("_mt"),
        (F.sum(F.col("_ww") * F.col("_y") * (1 - F.col("_t"))) / F.sum(F.col("_ww") * (1 - F.col("_t")))).alias("_mc"))
    return means.select(*keys, (F.col("_mt") - F.col("_mc")).alias("uplift_at_k"))


def uplift_metrics(df: DataFrame, score_col: str, y_col: str, t_col: str, id_col: str,
                   ks: list[float] = (0.1, 0.2, 0.3), bootstrap: int = 0, seed: int = 42,
                   level: float = 0.95) -> dict[str, float]:
    """Qini AUC, uplift AUC and uplift@k (both strategies), with bootstrap CIs.

    Args:
        df: Held-out predictions.
        score_col: Predicted uplift.
        y_col: Outcome.
        t_col: 0/1 treatment.
        id_col: Row id (tie-break and bootstrap hash).
        ks: Shares for uplift@k.
        bootstrap: Replicates (0 = point estimates only).
        seed: Bootstrap seed.
        level: Confidence level of the percentile intervals.

    Returns:
        ``{"qini_auc": .., "uplift_auc": .., "uplift_at_30": .., "uplift_at_30_overall": ..}``
        and, with a bootstrap, ``<name>_lo`` / ``<name>_hi``.
    """
    names = metric_names(list(ks))
    rows = bootstrap_metrics(df, score_col, y_col, t_col, id_col, ks, bootstrap, seed, with_point=True).toPandas()
    rows = rows.set_index(REP)
    result = {n: float(rows.at[POINT, n]) for n in names}
    if bootstrap:
        boot = rows.drop(index=POINT)
        q = [100 * (1 - level) / 2, 100 * (1 - (1 - level) / 2)]
        for n in names:
            vals = boot[n].to_numpy(dtype=float)
            # A replicate can leave a metric undefined (no treated row in the top k): the
            # interval is over the replicates that define it.
            lo, hi = np.nanpercentile(vals, q) if np.isfinite(vals).any() else (float("nan"), float("nan"))
            result[f"{n}_lo"], result[f"{n}_hi"] = float(lo), float(hi)
    return result


def uplift_at_k_names(k: float) -> tuple[str, str]:
    """Metric names of uplift@k (``by_group``, ``overall``), e.g. ``uplift_at_30``, ``uplift_at_30_overall``."""
    pct = int(round(k * 100))
    return f"uplift_at_{pct}", f"uplift_at_{pct}_overall"


def metric_names(ks: list[float]) -> list[str]:
    """Names :func:`uplift_metrics` reports, in its order."""
    return ["qini_auc", "uplift_auc", *[name for k in ks for name in uplift_at_k_names(k)]]


def bootstrap_metrics(df: DataFrame, score_col: str, y_col: str, t_col: str, id_col: str,
                      ks: list[float] = (0.1, 0.2, 0.3), bootstrap: int = 100, seed: int = 42,
                      with_point: bool = False) -> DataFrame:
    """Every metric of :func:`uplift_metrics` on each Poisson-bootstrap replicate.

    Args:
        df, score_col, y_col, t_col, id_col, ks, seed: As in :func:`uplift_metrics`.
        bootstrap: Replicates (may be 0 with ``with_point``).
        with_point: Also score the data itself (every weight 1) as replicate ``POINT``,
            in the same pass: one job for the estimate and its interval.

    Returns:
        One row per replicate: ``_rep`` and the metric columns (NaN where a replicate
        leaves a metric undefined, e.g. no treated row in the top k).
    """
    names = metric_names(list(ks))
    rows = df.select(F.col(id_col).alias("_id"), F.col(score_col).cast("double").alias("_s"),
                     F.col(y_col).cast("double").alias("_y"), F.col(t_col).cast("double").alias("_t"))
    reps = poisson_replicates(rows, bootstrap, seed, "_id")
    if with_point:
        reps = reps.unionByName(rows.select("*", F.lit(POINT).alias(REP), F.lit(1.0).alias(W)))

    def score(pdf: pd.DataFrame) -> pd.DataFrame:
        m = replicate_metrics(pdf["_s"].to_numpy(), pdf["_y"].to_numpy(), pdf["_t"].to_numpy(),
                              pdf[W].to_numpy(), pdf["_id"].to_numpy(), list(ks))
        return pd.DataFrame({REP: [int(pdf[REP].iloc[0])], **{n: [m[n]] for n in names}})

    schema = f"{REP} int, " + ", ".join(f"{n} double" for n in names)
    return reps.groupBy(REP).applyInPandas(score, schema)


def _curve(score: np.ndarray, y: np.ndarray, t: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative weighted counts per distinct score, descending (as :func:`curve_points`)."""
    uniq, inv = np.unique(-score, return_inverse=True)  # ascending in -score = descending score
    m = len(uniq)
    cum = [np.cumsum(np.bincount(inv, weights=v, minlength=m))
           for v in (w * t, w * (1 - t), w * y * t, w * y * (1 - t))]
    n_t, n_c, y_t, y_c = cum
    n = n_t + n_c
    safe_c, safe_t = np.where(n_c > 0, n_c, 1.0), np.where(n_t > 0, n_t, 1.0)
    qini = y_t - np.where(n_c > 0, y_c * n_t / safe_c, 0.0)
    rate = np.where(n_t > 0, y_t / safe_t, 0.0) - np.where(n_c > 0, y_c / safe_c, 0.0)
    return n, qini, rate * n


def _area(n: np.ndarray, v: np.ndarray) -> float:
    """Trapezoids from (0, 0) through the curve points (as :func:`_areas`)."""
    px, pv = np.concatenate([[0.0], n[:-1]]), np.concatenate([[0.0], v[:-1]])
    return float(np.sum((n - px) * (v + pv) / 2))


def _top_k_uplift(s: np.ndarray, y: np.ndarray, t: np.ndarray, w: np.ndarray, tb: np.ndarray, k: float,
                  by_group: bool) -> float:
    """uplift@k on weighted rows (as :func:`uplift_at_k`); nan where a group mean is undefined."""
    top = np.zeros(len(s), dtype=bool)
    for part in ([t == 1, t == 0] if by_group else [np.ones(len(s), dtype=bool)]):
        idx = np.flatnonzero(part)
        if len(idx) == 0:
            continue
        order = idx[np.lexsort((tb[idx], s[idx]))[::-1]]  # score desc, then tie-break desc
        cw = np.cumsum(w[order])  # integer weights: exact, as Spark's running sum
        top[order[cw <= np.floor(cw[-1] * k)]] = True
    wt, wc = w * t * top, w * (1 - t) * top
    if wt.sum() == 0 or wc.sum() == 0:
        return float("nan")
    return float(np.sum(wt * y) / wt.sum() - np.sum(wc * y) / wc.sum())


def replicate_metrics(score: np.ndarray, y: np.ndarray, t: np.ndarray, w: np.ndarray, tiebreak: np.ndarray,
                      ks: list[float]) -> dict[str, float]:
    """Qini AUC, uplift AUC and uplift@k (both strategies) of weighted rows, in numpy.

    The definitions of :func:`auc_scores` and :func:`uplift_at_k` (scikit-uplift's);
    ``tests/effect/test_metrics.py`` checks equality with those Spark functions on
    weighted replicates.

    Args:
        score: Predicted uplift.
        y: Outcome.
        t: 0/1 treatment.
        w: Row weights.
        tiebreak: Order among equal scores (descending): the row id.
        ks: Shares for uplift@k.

    Returns:
        Metric name -> value (nan where undefined).
    """
    score, y, t, w = (np.asarray(a, np.float64) for a in (score, y, t, w))
    tiebreak = np.asarray(tiebreak)
    out: dict[str, float] = {}
    n, qini, upl = _curve(score, y, t, w)
    pn, pq, _ = _curve(y * t - y * (1 - t), y, t, w)
    cr, tn = np.sum(w * ((y > 0) & (t == 0))), np.sum(w * ((y == 0) & (t == 1)))
    un, _, pu = _curve(2 * (y == t) + (y if cr > tn else t), y, t, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        base_q, base_u = pn[-1] * pq[-1] / 2, un[-1] * pu[-1] / 2
        qa = (_area(n, qini) - base_q) / (_area(pn, pq) - base_q)
        ua = (_area(n, upl) - base_u) / (_area(un, pu) - base_u)
    out["qini_auc"] = float(qa) if np.isfinite(qa) else float("nan")
    out["uplift_auc"] = float(ua) if np.isfinite(ua) else float("nan")
    for k in ks:
        by_group, overall = uplift_at_k_names(k)
        out[by_group] = _top_k_uplift(score, y, t, w, tiebreak, k, True)
        out[overall] = _top_k_uplift(score, y, t, w, tiebreak, k, False)
    return out


def calibration_table(df: DataFrame, score_col: str, y_col: str, t_col: str, bins: int = 10,
                      z: float = 1.959963984540054) -> DataFrame:
    """Predicted vs observed uplift per bin of predicted uplift (bin 1 = highest predictions).

    Observed uplift is the difference in means between treated and control rows of the bin,
    with a normal-approximation interval from the two sample variances.

    Returns:
        ``bin``, ``n_t``, ``n_c``, ``predicted``, ``observed``, ``observed_lo``,
        ``observed_hi``, ``score_min``, ``score_max``.
    """
    t = F.col(t_col)
    y = F.col(y_col).cast("double")
    binned = df.withColumn("bin", F.ntile(bins).over(Window.orderBy(F.desc(score_col))))
    agg = binned.groupBy("bin").agg(
        F.sum(t).alias("n_t"), F.sum(1 - t).alias("n_c"), F.avg(score_col).alias("predicted"),
        F.avg(F.when(t == 1, y)).alias("m_t"), F.avg(F.when(t == 0, y)).alias("m_c"),
        F.var_samp(F.when(t == 1, y)).alias("v_t"), F.var_samp(F.when(t == 0, y)).alias("v_c"),
        F.min(score_col).alias("score_min"), F.max(score_col).alias("score_max"))
    se = F.sqrt(F.coalesce(F.col("v_t"), F.lit(0.0)) / F.col("n_t") + F.coalesce(F.col("v_c"), F.lit(0.0)) / F.col("n_c"))
    return (agg.withColumn("observed", F.col("m_t") - F.col("m_c"))
               .withColumn("observed_lo", F.col("observed") - z * se)
               .withColumn("observed_hi", F.col("observed") + z * se)
               .select("bin", "n_t", "n_c", "predicted", "observed", "observed_lo", "observed_hi", "score_min", "score_max")
               .orderBy("bin"))
