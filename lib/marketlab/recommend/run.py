"""The recommend capability end to end: evaluate, tune, fit, recommend for everyone.

:func:`run` is the stage's one entry point: it reads its inputs and writes
``gold.recommendations`` through :class:`~marketlab.tables.Lake` (table names from
:class:`~marketlab.recommend.params.RecommendParams`); the job logs what it returns. The
item index and the items' TF-IDF are built once (:func:`item_space`) and shared by both
evaluations and the final fit.

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
from dataclasses import dataclass

import scipy.sparse as sp
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.recommend.data import ITEM_IDX, STRENGTH, USER_IDX, dense_index, order_line_events, to_indexed
from marketlab.recommend.evaluate import ALL_MODELS, EvalConfig, evaluate_models, tune_als
from marketlab.recommend.models import als_side, fit_als, segment_popular, tfidf_matrix
from marketlab.recommend.params import AlsParams, RecommendParams
from marketlab.recommend.score import SOURCE_POPULAR, score_users, user_frame
from marketlab.recommend.split import last_event_time, random_hide, temporal_split
from marketlab.tables import Lake

log = logging.getLogger(__name__)

CUSTOMER_KEY = C.CUSTOMER_KEY


@dataclass
class ItemSpace:
    """The item index and the items' TF-IDF rows, shared by every protocol and the final fit.

    Attributes:
        index: ``item_id, item_idx`` (cached).
        n_items: Catalogue size.
        tfidf: L2-normalised TF-IDF row per item index.
    """

    index: DataFrame
    n_items: int
    tfidf: sp.csr_matrix


def item_space(items: DataFrame, p: RecommendParams, *used: DataFrame, item_col: str = C.ITEM_ID,
               description_col: str = C.DESCRIPTION) -> ItemSpace:
    """Index the catalogue ``items`` plus every item of the ``used`` frames; TF-IDF of their descriptions."""
    catalog = items.select(item_col)
    for df in used:
        catalog = catalog.unionByName(df.select(item_col))
    iidx = dense_index(catalog, item_col, ITEM_IDX).cache()
    n_items = iidx.count()
    tfidf = tfidf_matrix(items.join(iidx, item_col).select(ITEM_IDX, description_col), n_items,
                         description_col, p.min_df, p.vocab_size)
    return ItemSpace(iidx, n_items, tfidf)


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
    space: ItemSpace,
    p: RecommendParams,
    checkpoint_dir: str | None,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    ts_col: str = "ts",
    strength_col: str = STRENGTH,
    models: tuple[str, ...] = ALL_MODELS,
) -> tuple[AlsParams, dict[str, float], dict[str, dict[str, float]], dict[str, object]]:
    """Tune on a validation window, then evaluate every model on the test window.

    Args:
        events: ``user, item, ts, strength`` event rows (order lines).
        space: Item index and TF-IDF (:func:`item_space`; holds every item of ``events``).
        p: Job parameters.
        checkpoint_dir: ALS checkpoint folder.

    Returns:
        ``(tuned ALS params, flat metrics, per-model results, info)``.
    """
    cfg = eval_config(p)
    anchor = last_event_time(events, ts_col)
    cutoff = (anchor - dt.timedelta(days=p.temporal_test_days)).replace(hour=0, minute=0, second=0, microsecond=0)
    val_cutoff = cutoff - dt.timedelta(days=p.validation_days)
    iidx, n_items, tfidf = space.index, space.n_items, space.tfidf
    uidx = dense_index(events, user_col, USER_IDX).cache()
    ev = events.select(user_col, item_col, ts_col, F.col(strength_col).cast("double").alias(STRENGTH))
    ev = ev.join(uidx, user_col).join(F.broadcast(iidx), item_col).select(USER_IDX, ITEM_IDX, ts_col, STRENGTH)

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
    space: ItemSpace,
    p: RecommendParams,
    als_params: AlsParams,
    checkpoint_dir: str | None,
    user_col: str = CUSTOMER_KEY,
    item_col: str = C.ITEM_ID,
    models: tuple[str, ...] = ("popular", "itemcf", "als", "blend"),
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per-user random hide protocol on customer x item interactions.

    Args:
        interactions: ``user, item, strength`` pairs.
        space: Item index and TF-IDF (:func:`item_space`; holds every item of ``interactions``).
        p: Job parameters.
        als_params: ALS settings (the tuned ones).
        checkpoint_dir: ALS checkpoint folder.

    Returns:
        ``(flat metrics under "hide.", per-model results)``.
    """
    cfg = eval_config(p)
    uidx = dense_index(interactions, user_col, USER_IDX).cache()
    idx = to_indexed(interactions, uidx, space.index, user_col, item_col).cache()
    train, test = random_hide(idx, p.hide_fraction, p.hide_seed, p.hide_min_items, USER_IDX, ITEM_IDX)
    results = evaluate_models(train, test, space.n_items, als_params, cfg, space.tfidf, checkpoint_dir, models)
    idx.unpersist()
    return _flat("hide", results), results


def recommend_all(
    interactions: DataFrame,
    space: ItemSpace,
    p: RecommendParams,
    als_params: AlsParams,
    checkpoint_dir: str | None,
    segments: DataFrame | None = None,
    user_col: str = CUSTOMER_KEY,
    item_col: str = C.ITEM_ID,
) -> tuple[DataFrame, ALSModel]:
    """Fit ALS on all interactions and produce top-k per customer.

    Known customers get ALS (+ content blend, cold items reachable through imputed
    factors); customers only known from ``segments`` get their segment's popular items.

    Returns:
        ``(recommendations, model)``; recommendations have ``user_col, item_id, rank,
        score, source``.
    """
    iidx = space.index
    uidx = dense_index(interactions, user_col, USER_IDX).cache()
    idx = to_indexed(interactions, uidx, iidx, user_col, item_col).cache()
    model = fit_als(idx, als_params, checkpoint_dir)
    side = als_side(model, space.n_items, space.tfidf, p.content_weight, p.content_neighbours)
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
    return recs, model



@dataclass
class RecommendResult:
    """What one recommend run evaluated, fitted and wrote.

    Attributes:
        als_params: ALS settings used for the final fit (tuned when tuning is on).
        metrics: Flat metrics (``temporal.*``, ``hide.*``, validation/tuning values).
        temporal: Per-model results of the temporal protocol.
        hide: Per-model results of the random-hide protocol (None when it is off).
        info: Temporal protocol facts (cutoffs, catalogue size, test users).
        model: The ALS model fitted on all interactions.
        version: Delta version of the recommendations table written.
    """

    als_params: AlsParams
    metrics: dict[str, float]
    temporal: dict[str, dict[str, float]]
    hide: dict[str, dict[str, float]] | None
    info: dict[str, object]
    model: ALSModel
    version: int


def run(lake: Lake, p: RecommendParams, checkpoint_dir: str | None) -> RecommendResult:
    """Evaluate (temporal, optionally random hide), fit on all interactions, write ``p.output_table``.

    Args:
        lake: The lake (reads interactions, item features, segments when present, order lines).
        p: Recommend parameters.
        checkpoint_dir: ALS checkpoint folder.

    Raises:
        BadInputError: The interactions table is empty.
    """
    interactions = lake.read(p.interactions_table).select(CUSTOMER_KEY, C.ITEM_ID, STRENGTH)
    if interactions.limit(1).count() == 0:
        raise BadInputError(f"{p.interactions_table} is empty: nothing to recommend from")
    items = lake.read(p.item_features_table).select(C.ITEM_ID, C.DESCRIPTION)
    segments = lake.read(p.segments_table) if lake.exists(p.segments_table) else None
    # The temporal evaluation needs per-line timestamps, which gold.interactions aggregates
    # away; it runs on the order lines and only its metrics leave the run.
    events = order_line_events(lake.read(p.order_lines_table))
    space = item_space(items, p, interactions, events)
    best, metrics, temporal, info = temporal_evaluation(events, space, p, checkpoint_dir)
    hide = None
    if p.evaluate_random_hide:
        hide_metrics, hide = random_hide_evaluation(interactions, space, p, best, checkpoint_dir)
        metrics.update(hide_metrics)
    recs, model = recommend_all(interactions, space, p, best, checkpoint_dir, segments)
    version = lake.write(recs, p.output_table)
    space.index.unpersist()
    return RecommendResult(best, metrics, temporal, hide, info, model, version)
