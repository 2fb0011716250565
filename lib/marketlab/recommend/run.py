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
from marketlab.recommend.models import (als_side, content_side, fit_als, itemcf_side, popular_side, segment_popular,
                                        tfidf_matrix)
from marketlab.recommend.params import AlsParams, RecommendParams
from marketlab.recommend.score import SOURCE_POPULAR, score_users, user_frame
from marketlab.recommend.select import Selection, SequenceSlices, select_source, sequence_lists, sequence_slices, user_positions
from marketlab.privacy import customer_key, resolve_secret
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
    served: str = "blend",
    sequence: DataFrame | None = None,
) -> tuple[DataFrame, ALSModel]:
    """Fit ALS on all interactions and produce top-k per customer from the ``served`` source.

    Known customers get the served source: ALS + content blend (``blend``, cold items
    reachable through imputed factors), ALS alone (``als``), a baseline (``popular``,
    ``itemcf``, ``content``), or a sequence source (``sequence`` rows of that source first,
    minus bought items under ``bought: exclude``, filled up to k from the blend).
    Customers only known from ``segments`` get their segment's popular items.

    Args:
        sequence: ``user_col, item_id, rank, score, source`` rows (the serving slice of
            ``gold.sequence_scores``); used when ``served`` is one of their sources.

    Returns:
        ``(recommendations, model)``; recommendations have ``user_col, item_id, rank,
        score, source``. The ALS model is fitted whatever is served (the job registers it).
    """
    iidx = space.index
    uidx = dense_index(interactions, user_col, USER_IDX).cache()
    idx = to_indexed(interactions, uidx, iidx, user_col, item_col).cache()
    model = fit_als(idx, als_params, checkpoint_dir)
    users = user_frame(idx, user_factors=model.userFactors)
    if served == "popular":
        side = popular_side(idx, space.n_items)
    elif served == "itemcf":
        side = itemcf_side(idx, space.n_items, p.cf_neighbours, p.cf_max_items_per_user, p.cf_local_max_pairs)
    elif served == "content":
        side = content_side(space.tfidf)
    else:
        weight = 0.0 if served == "als" else p.content_weight
        side = als_side(model, space.n_items, space.tfidf, weight, p.content_neighbours)
    scored = score_users(users, side, p.k, p.bought, p.bought_weight)
    if sequence is not None and served not in ALL_MODELS:
        seq = user_positions(sequence.where(F.col("source") == served), uidx, iidx, user_col, item_col)
        scored = sequence_lists(seq, scored, p.k, users if p.bought == "exclude" else None)
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



def choose_served(
    events: DataFrame,
    space: ItemSpace,
    p: RecommendParams,
    als_params: AlsParams,
    info: dict[str, object],
    slices: SequenceSlices | None,
    secret: str | None,
    checkpoint_dir: str | None,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    ts_col: str = "ts",
) -> Selection:
    """The served source: the best candidate on a validation split before the temporal cutoff.

    Without a validation slice of sequence scores the split is the tuning one
    (``[cutoff - validation_days, cutoff)``). With one, it starts at the slice's ``as_of``
    (``validation_days`` long, never past the cutoff), so that every candidate sees the
    history the sequence model saw and no sequence score reads the validation window.

    Args:
        events: ``user, item, ts, strength`` order-line events (user = customer id as text).
        info: The temporal protocol's facts (``cutoff``, ``validation_cutoff``).
        slices: ``gold.sequence_scores`` split by :func:`sequence_slices` (None: no table).
        secret: Pseudonym secret, to key the order lines' customers like the sequence rows.
    """
    cutoff = dt.datetime.fromisoformat(str(info["cutoff"]))
    start = dt.datetime.fromisoformat(str(info["validation_cutoff"]))
    uidx = dense_index(events, user_col, USER_IDX).cache()
    ev = (events.select(user_col, item_col, ts_col, F.col(STRENGTH).cast("double").alias(STRENGTH))
          .join(uidx, user_col).join(F.broadcast(space.index), item_col).select(USER_IDX, ITEM_IDX, ts_col, STRENGTH))
    seq, sources, seq_as_of = None, (), None
    if slices is not None and slices.validation is not None and slices.sources:
        seq_as_of = slices.validation_as_of
        start = dt.datetime.combine(seq_as_of, dt.time())
        keyed = uidx.select(customer_key(user_col, secret).alias(CUSTOMER_KEY), USER_IDX)
        seq, sources = user_positions(slices.validation, keyed, space.index, CUSTOMER_KEY, item_col).cache(), slices.sources
    elif slices is not None:
        log.warning("gold.sequence_scores has no slice before the cutoff %s with a model's rows (as_of %s): "
                    "the sequence models cannot be validated and are not served", cutoff.date(), slices.serving_as_of)
    end = min(start + dt.timedelta(days=p.validation_days), cutoff)
    sel = select_source(ev, space.n_items, space.tfidf, als_params, eval_config(p), start, end,
                        p.selection_metric.replace("_k", f"_{p.k}"), p.content_weight, p.content_neighbours,
                        seq, sources, seq_as_of, checkpoint_dir, ts_col)
    uidx.unpersist()
    return sel


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
        selection: The served source and every candidate's validation metrics.
    """

    als_params: AlsParams
    metrics: dict[str, float]
    temporal: dict[str, dict[str, float]]
    hide: dict[str, dict[str, float]] | None
    info: dict[str, object]
    model: ALSModel
    version: int
    selection: Selection | None = None

    @property
    def served(self) -> str:
        return self.selection.served if self.selection else "blend"


def run(lake: Lake, p: RecommendParams, checkpoint_dir: str | None, secret: str | None = None) -> RecommendResult:
    """Evaluate (temporal, optionally random hide), choose the served source, fit, write ``p.output_table``.

    Args:
        lake: The lake (reads interactions, item features, segments and sequence scores
            when present, order lines).
        p: Recommend parameters.
        checkpoint_dir: ALS checkpoint folder.
        secret: Pseudonym secret, needed only with sequence scores (default:
            :func:`marketlab.privacy.resolve_secret`).

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
    slices = None
    if lake.exists(p.sequence_scores_table):
        slices = sequence_slices(lake.read(p.sequence_scores_table), dt.datetime.fromisoformat(str(info["cutoff"])))
    if slices is not None and slices.sources:
        secret = secret or resolve_secret(lake.settings)
    selection = choose_served(events, space, p, best, info, slices, secret, checkpoint_dir)
    metrics.update(selection.flat())
    recs, model = recommend_all(interactions, space, p, best, checkpoint_dir, segments, served=selection.served,
                                sequence=slices.serving if slices is not None else None)
    version = lake.write(recs, p.output_table)
    space.index.unpersist()
    return RecommendResult(best, metrics, temporal, hide, info, model, version, selection)
