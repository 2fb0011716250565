"""The recommend capability end to end: evaluate, tune, fit, recommend for everyone.

The job (``jobs/recommend.py``) only reads tables, calls :func:`build_recommender` and
logs/writes what it returns.

Evaluation protocol:

1. Temporal (headline): train on order lines before ``cutoff = last event -
   temporal_test_days``, test on the pairs first bought in the window after it. ALS
   hyper-parameters are tuned with Optuna on a validation window carved from the
   training time only (the ``validation_days`` before the cutoff), then every model is
   refitted on all pre-cutoff data and scored once on the test window.
2. Per-user random hide (comparison with the published figure): hide
   ``hide_fraction`` of each customer's pairs of ``gold.interactions`` (seed
   ``hide_seed``), AUC over the items the customer did not buy in training.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import scipy.sparse as sp
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from marketlab import constants as C
from marketlab.recommend.data import ITEM_IDX, STRENGTH, USER_IDX, dense_index, to_indexed
from marketlab.recommend.evaluate import ALL_MODELS, EvalConfig, evaluate_models, tune_als
from marketlab.recommend.models import als_side, fit_als, segment_popular, tfidf_matrix
from marketlab.recommend.params import AlsParams, RecommendParams
from marketlab.recommend.score import SOURCE_POPULAR, score_users, user_frame
from marketlab.recommend.split import last_event_time, random_hide, temporal_split

log = logging.getLogger(__name__)

CUSTOMER_KEY = getattr(C, "CUSTOMER_KEY", "customer_key")


@dataclass
class RecommenderResult:
    """What one training run produced."""

    recommendations: DataFrame
    model: ALSModel
    als_params: AlsParams
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)


def eval_config(p: RecommendParams) -> EvalConfig:
    """Evaluation settings from the job parameters."""
    return EvalConfig(k=p.k, ks=list(p.k_curve), bought=p.bought, bought_weight=p.bought_weight,
                      content_weight=p.content_weight, content_neighbours=p.content_neighbours,
                      cf_neighbours=p.cf_neighbours, cf_max_items_per_user=p.cf_max_items_per_user,
                      cf_local_max_pairs=p.cf_local_max_pairs)


def _flat(prefix: str, results: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{prefix}.{model}.{name}": value for model, res in results.items() for name, value in res.items()}


def temporal_evaluation(
    events: DataFrame,
    items: DataFrame,
    p: RecommendParams,
    checkpoint_dir: str | None,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    ts_col: str = "ts",
    strength_col: str = STRENGTH,
    description_col: str = C.DESCRIPTION,
    models: tuple[str, ...] = ALL_MODELS,
) -> tuple[AlsParams, dict[str, float], dict[str, dict[str, float]], dict[str, object]]:
    """Tune on a validation window, then evaluate every model on the test window.

    Args:
        events: ``user, item, ts, strength`` event rows (order lines).
        items: ``item, description`` catalogue.
        p: Job parameters.
        checkpoint_dir: ALS checkpoint folder.

    Returns:
        ``(tuned ALS params, flat metrics, per-model results, info)``.
    """
    cfg = eval_config(p)
    anchor = last_event_time(events, ts_col)
    cutoff = (anchor - dt.timedelta(days=p.temporal_test_days)).replace(hour=0, minute=0, second=0, microsecond=0)
    val_cutoff = cutoff - dt.timedelta(days=p.validation_days)
    catalog = items.select(item_col).unionByName(events.select(item_col))
    iidx = dense_index(catalog, item_col, ITEM_IDX).cache()
    uidx = dense_index(events, user_col, USER_IDX).cache()
    n_items = iidx.count()
    ev = events.select(user_col, item_col, ts_col, F.col(strength_col).cast("double").alias(STRENGTH))
    ev = ev.join(uidx, user_col).join(F.broadcast(iidx), item_col).select(USER_IDX, ITEM_IDX, ts_col, STRENGTH)
    tfidf = tfidf_matrix(items.join(iidx, item_col).select(ITEM_IDX, description_col), n_items,
                         description_col, p.min_df, p.vocab_size)

    metrics: dict[str, float] = {}
    best = p.als
    if p.tuning.enabled:
        inner, val = temporal_split(ev.where(F.col(ts_col) < F.lit(cutoff)), val_cutoff, cutoff,
                                    new_only=p.bought == "exclude", user_col=USER_IDX, item_col=ITEM_IDX, ts_col=ts_col)
        t = p.tuning
        best, best_value, study = tune_als(
            inner, val, n_items, p.als, cfg, t.n_trials, t.metric,
            {"rank": t.rank, "reg_param": t.reg_param, "alpha": t.alpha, "max_iter": t.max_iter},
            t.seed, checkpoint_dir)
        metrics[f"val_{t.metric.replace('_k', f'_{p.k}')}"] = best_value
        metrics["tuning.default_value"] = float(study.trials[0].value)
    train, test = temporal_split(ev, cutoff, None, new_only=p.bought == "exclude",
                                 user_col=USER_IDX, item_col=ITEM_IDX, ts_col=ts_col)
    train, test = train.cache(), test.cache()
    results = evaluate_models(train, test, n_items, best, cfg, tfidf, checkpoint_dir, models)
    train_users = train.select(USER_IDX).distinct()
    n_test_users = test.select(USER_IDX).distinct().count()
    n_cold = test.select(USER_IDX).distinct().join(train_users, USER_IDX, "left_anti").count()
    info = {"cutoff": cutoff.isoformat(), "validation_cutoff": val_cutoff.isoformat(), "n_items": n_items,
            "test_users": n_test_users, "cold_test_users": n_cold}
    metrics.update(_flat("temporal", results))
    metrics["temporal.cold_test_users"] = float(n_cold)
    train.unpersist()
    test.unpersist()
    return best, metrics, results, info


def random_hide_evaluation(
    interactions: DataFrame,
    items: DataFrame,
    p: RecommendParams,
    als_params: AlsParams,
    checkpoint_dir: str | None,
    user_col: str = CUSTOMER_KEY,
    item_col: str = C.ITEM_ID,
    description_col: str = C.DESCRIPTION,
    models: tuple[str, ...] = ("popular", "itemcf", "als", "blend"),
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per-user random hide protocol on customer x item interactions.

    Returns:
        ``(flat metrics under "hide.", per-model results)``.
    """
    cfg = eval_config(p)
    catalog = items.select(item_col).unionByName(interactions.select(item_col))
    iidx = dense_index(catalog, item_col, ITEM_IDX).cache()
    uidx = dense_index(interactions, user_col, USER_IDX).cache()
    n_items = iidx.count()
    idx = to_indexed(interactions, uidx, iidx, user_col, item_col).cache()
    train, test = random_hide(idx, p.hide_fraction, p.hide_seed, p.hide_min_items, USER_IDX, ITEM_IDX)
    tfidf = None
    if "blend" in models or "content" in models:
        tfidf = tfidf_matrix(items.join(iidx, item_col).select(ITEM_IDX, description_col), n_items,
                             description_col, p.min_df, p.vocab_size)
    results = evaluate_models(train, test, n_items, als_params, cfg, tfidf, checkpoint_dir, models)
    idx.unpersist()
    return _flat("hide", results), results


def recommend_all(
    interactions: DataFrame,
    items: DataFrame,
    p: RecommendParams,
    als_params: AlsParams,
    checkpoint_dir: str | None,
    segments: DataFrame | None = None,
    user_col: str = CUSTOMER_KEY,
    item_col: str = C.ITEM_ID,
    description_col: str = C.DESCRIPTION,
) -> tuple[DataFrame, ALSModel, sp.csr_matrix]:
    """Fit ALS on all interactions and produce top-k per customer.

    Known customers get ALS (+ content blend, cold items reachable through imputed
    factors); customers only known from ``segments`` get their segment's popular items.

    Returns:
        ``(recommendations, model, tfidf)``; recommendations have ``user_col, item_id,
        rank, score, source``.
    """
    catalog = items.select(item_col).unionByName(interactions.select(item_col))
    iidx = dense_index(catalog, item_col, ITEM_IDX).cache()
    uidx = dense_index(interactions, user_col, USER_IDX).cache()
    n_items = iidx.count()
    idx = to_indexed(interactions, uidx, iidx, user_col, item_col).cache()
    tfidf = tfidf_matrix(items.join(iidx, item_col).select(ITEM_IDX, description_col), n_items,
                         description_col, p.min_df, p.vocab_size)
    model = fit_als(idx, als_params, checkpoint_dir)
    side = als_side(model, n_items, tfidf, p.content_weight, p.content_neighbours)
    scored = score_users(user_frame(idx, user_factors=model.userFactors), side, p.k, p.bought, p.bought_weight)
    recs = (
        scored.select(USER_IDX, F.posexplode(F.arrays_zip("items", "scores", "sources")).alias("pos", "r"))
        .select(USER_IDX, (F.col("pos") + 1).alias("rank"), F.col("r.items").alias(ITEM_IDX),
                F.col("r.scores").alias("score"), F.col("r.sources").alias("source"))
        .join(uidx, USER_IDX).join(F.broadcast(iidx), ITEM_IDX)
        .select(user_col, item_col, F.col("rank").cast("int"), F.col("score").cast("double"), "source")
    )
    if segments is not None and p.segment_popular:
        cold = segments.select(user_col).distinct().join(uidx, user_col, "left_anti")
        pop = segment_popular(interactions, segments, cold, p.k, user_col, item_col)
        recs = recs.unionByName(pop.withColumn("source", F.lit(SOURCE_POPULAR)))
    idx.unpersist()
    return recs, model, tfidf


def recommendation_schema(user_col: str = CUSTOMER_KEY) -> T.StructType:
    """Schema of ``gold.recommendations``."""
    return T.StructType([
        T.StructField(user_col, T.StringType()), T.StructField(C.ITEM_ID, T.StringType()),
        T.StructField("rank", T.IntegerType()), T.StructField("score", T.DoubleType()),
        T.StructField("source", T.StringType()),
    ])
