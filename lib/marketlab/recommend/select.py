"""Which source is served: ALS, a baseline or a sequence model, chosen on a validation split.

Every candidate is scored on the same validation split of the order lines (fit on events
before ``start``, held-out pairs first bought in ``[start, end)``, warm users only) with
the same metric code, and the best one on ``selection_metric`` is served; the test window
after the recommender's cutoff never takes part. Candidates: the models of
:data:`~marketlab.recommend.evaluate.ALL_MODELS` (popular, item-item CF, content, ALS,
ALS + content blend) and each sequence source of ``gold.sequence_scores``.

A sequence candidate is what would be served: the sequence model's top-k for the customer
(already-bought items removed under ``bought: exclude``), filled up to k from the ALS +
content list. Its rows must be point-in-time for the split: they come from the table's
validation slice (``as_of`` = the sequence stage's validation cutoff; its weights were fitted
on baskets before that day and its inputs are the histories before it), and when such a
slice exists the split starts at that ``as_of`` for every candidate, so ALS and the
baselines see exactly the history the sequence model saw. Rows ``as_of`` the end of the
data are only served, never evaluated: they read the validation window.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import scipy.sparse as sp
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.recommend import metrics as M
from marketlab.recommend.data import ITEM_IDX, USER_IDX
from marketlab.recommend.evaluate import ALL_MODELS, EvalConfig, evaluate_models
from marketlab.recommend.models import als_side, fit_als
from marketlab.recommend.params import AlsParams
from marketlab.recommend.score import SOURCE_POPULAR, score_users, user_frame
from marketlab.recommend.split import temporal_split

log = logging.getLogger(__name__)

#: The ALS model's own candidates: serving one of them promotes the registered ALS model.
ALS_SOURCES = ("blend", "als")
#: Served in this order of preference when candidates tie (today's default first).
PREFERENCE = ("blend", "als", "popular", "itemcf", "content")


@dataclass
class SequenceSlices:
    """The two slices of ``gold.sequence_scores`` the recommender uses.

    Attributes:
        serving: ``customer_key, item_id, rank, score, source`` at the latest ``as_of``.
        validation: The same columns at the latest earlier ``as_of`` before the
            recommender's cutoff (None: the table has no such slice; nothing to validate).
        serving_as_of / validation_as_of: Their dates.
        sources: Sequence sources present in both slices (the candidates).
    """

    serving: DataFrame
    validation: DataFrame | None
    serving_as_of: dt.date
    validation_as_of: dt.date | None
    sources: tuple[str, ...]


def sequence_slices(scores: DataFrame, cutoff: dt.datetime, item_col: str = C.ITEM_ID) -> SequenceSlices | None:
    """Split ``gold.sequence_scores`` into its serving and validation slices.

    The popular fallback rows are dropped: the recommender has its own cold-start path.

    Args:
        scores: ``gold.sequence_scores`` (``customer_key, rank, stock_code, score, source, as_of``).
        cutoff: The recommender's temporal cutoff: a validation slice must start before it.

    Returns:
        None when the table has no rows.
    """
    rows = scores.where(F.col("source") != SOURCE_POPULAR).select(
        C.CUSTOMER_KEY, F.col(C.STOCK_CODE).alias(item_col), F.col("rank").cast("int"),
        F.col("score").cast("double"), "source", F.col(C.AS_OF))
    days = sorted(r[0] for r in rows.select(C.AS_OF).distinct().collect())
    if not days:
        return None
    serve_day = days[-1]
    earlier = [d for d in days[:-1] if d < cutoff.date()]
    val_day = earlier[-1] if earlier else None

    def at(day: dt.date) -> DataFrame:
        return rows.where(F.col(C.AS_OF) == F.lit(day)).drop(C.AS_OF)

    def sources(day: dt.date) -> set[str]:
        return {r[0] for r in rows.where(F.col(C.AS_OF) == F.lit(day)).select("source").distinct().collect()}

    both = tuple(sorted(sources(serve_day) & sources(val_day))) if val_day else ()
    return SequenceSlices(at(serve_day), at(val_day) if val_day else None, serve_day, val_day, both)


def sequence_lists(seq: DataFrame, fill: DataFrame, k: int, bought: DataFrame | None = None) -> DataFrame:
    """Each user's sequence items first (minus ``bought``), then the ``fill`` list, k in all.

    Args:
        seq: ``user_idx, item_idx, rank, score, source`` rows of one sequence source.
        fill: ``user_idx, items, scores, sources`` (output of
            :func:`~marketlab.recommend.score.score_users`), every user to serve.
        k: List length.
        bought: ``user_idx, train_items`` (array) to remove from the sequence part (the
            fill list has already applied the bought rule); None keeps them.

    Returns:
        ``user_idx, items, scores, sources``: one row per user of ``fill``.
    """
    part = seq.groupBy(USER_IDX).agg(F.sort_array(F.collect_list(F.struct("rank", ITEM_IDX, "score", "source"))).alias("_s"))
    part = part.select(USER_IDX, F.transform("_s", lambda r: F.struct(
        r[ITEM_IDX].alias("i"), r["score"].alias("s"), r["source"].alias("src"))).alias("_seq"))
    frame = fill.join(part, USER_IDX, "left")
    if bought is not None:
        frame = frame.join(bought.select(USER_IDX, "train_items"), USER_IDX, "left")
        owned = F.coalesce(F.col("train_items"), F.array().cast("array<int>"))
        frame = frame.withColumn("_seq", F.filter("_seq", lambda r: ~F.array_contains(owned, r["i"])))
    seq_part: Column = F.coalesce(F.col("_seq"), F.array())
    filled = F.arrays_zip(F.col("items").alias("i"), F.col("scores").alias("s"), F.col("sources").alias("src"))
    rest = F.filter(filled, lambda r: ~F.array_contains(F.transform(seq_part, lambda q: q["i"]), r["i"]))
    merged = F.slice(F.concat(seq_part, rest), 1, k)
    return frame.select(USER_IDX, F.transform(merged, lambda r: r["i"]).alias("items"),
                        F.transform(merged, lambda r: r["s"]).alias("scores"),
                        F.transform(merged, lambda r: r["src"]).alias("sources"))


@dataclass
class Selection:
    """What the validation split chose.

    Attributes:
        served: The winning candidate (a model of ``ALL_MODELS`` or a sequence source).
        metric: The metric key it was chosen on (e.g. ``map_at_10``).
        results: ``{candidate: {metric: value}}`` on the validation split.
        start / end: The validation window ``[start, end)``.
        sequence_as_of: ``as_of`` of the sequence rows evaluated (None without them).
    """

    served: str
    metric: str
    results: dict[str, dict[str, float]]
    start: dt.datetime
    end: dt.datetime
    sequence_as_of: dt.date | None

    def flat(self) -> dict[str, float]:
        """``select.<candidate>.<metric>`` for MLflow."""
        return {f"select.{m}.{name}": v for m, res in self.results.items() for name, v in res.items()}


def winner(results: dict[str, dict[str, float]], metric: str) -> str:
    """The best candidate on ``metric``; a tie goes to the earlier one in :data:`PREFERENCE`, then the sequence sources by name."""
    order = [m for m in PREFERENCE if m in results] + sorted(m for m in results if m not in PREFERENCE)
    best = order[0]
    for m in order[1:]:
        if results[m][metric] > results[best][metric]:
            best = m
    return best


def select_source(
    ev: DataFrame,
    n_items: int,
    tfidf: sp.csr_matrix,
    als_params: AlsParams,
    cfg: EvalConfig,
    start: dt.datetime,
    end: dt.datetime,
    metric: str,
    content_weight: float,
    content_neighbours: int,
    seq: DataFrame | None = None,
    sources: tuple[str, ...] = (),
    sequence_as_of: dt.date | None = None,
    checkpoint_dir: str | None = None,
    ts_col: str = "ts",
) -> Selection:
    """Evaluate every candidate on ``[start, end)`` and return the best on ``metric``.

    Args:
        ev: Indexed events ``user_idx, item_idx, ts, strength``.
        n_items / tfidf: The item space.
        als_params: ALS settings (the tuned ones when tuning is on: their validation figure
            is then biased upwards, which favours keeping ALS).
        cfg: Evaluation settings (k, bought rule, baselines' knobs).
        start / end: Validation window; training is every event before ``start``.
        metric: Selection metric with k (``map_at_10``).
        content_weight / content_neighbours: The served ALS + content side (the fill list).
        seq: ``user_idx, item_idx, rank, score, source`` sequence rows as of ``start`` or earlier.
        sources: The sequence sources in ``seq`` to evaluate.
        sequence_as_of: Their ``as_of`` (logged).
        checkpoint_dir: ALS checkpoint folder.
    """
    vcfg = EvalConfig(**{**cfg.__dict__, "ks": [cfg.k], "with_auc": False})
    train, val = temporal_split(ev.where(F.col(ts_col) < F.lit(end)), start, end, new_only=cfg.bought == "exclude",
                                user_col=USER_IDX, item_col=ITEM_IDX, ts_col=ts_col)
    train, val = train.cache(), val.cache()
    results = evaluate_models(train, val, n_items, als_params, vcfg, tfidf, checkpoint_dir, ALL_MODELS)
    if seq is not None and sources:
        warm = val.join(train.select(USER_IDX).distinct(), USER_IDX, "left_semi").cache()
        model = fit_als(train, als_params, checkpoint_dir)
        users = user_frame(train, warm, model.userFactors).cache()
        side = als_side(model, n_items, tfidf, content_weight, content_neighbours)
        fill = score_users(users, side, cfg.k, cfg.bought, cfg.bought_weight).cache()
        for s in sources:
            recs = sequence_lists(seq.where(F.col("source") == s), fill, cfg.k,
                                  users if cfg.bought == "exclude" else None)
            frame = M.ranking_frame(recs, warm)
            res = M.ranking_metrics(frame, [cfg.k])
            res["n_users"] = float(frame.count())
            res[f"coverage_at_{cfg.k}"] = M.coverage(recs, n_items, cfg.k)
            # Share of the list the sequence model filled (the rest is the ALS fill).
            res["sequence_share"] = float(recs.select(F.explode("sources").alias("x"))
                                          .agg(F.avg((F.col("x") == s).cast("double"))).first()[0] or 0.0)
            frame.unpersist()
            results[s] = res
        for df in (fill, users, warm):
            df.unpersist()
    train.unpersist()
    val.unpersist()
    best = winner(results, metric)
    log.info("served source on validation [%s, %s): %s (%s %s)", start.date(), end.date(), best, metric,
             {m: round(r[metric], 4) for m, r in results.items()})
    return Selection(best, metric, results, start, end, sequence_as_of)


def user_positions(seq: DataFrame, users: DataFrame, items: DataFrame, user_col: str, item_col: str = C.ITEM_ID) -> DataFrame:
    """Sequence rows with dense indices (``user_idx, item_idx, rank, score, source``); unknown ids are dropped.

    ``users`` maps ``user_col`` to ``user_idx``, ``items`` ``item_col`` to ``item_idx``;
    ``seq`` holds ``user_col`` (keyed the same way) and ``item_col``.
    """
    w = Window.partitionBy(USER_IDX, "source").orderBy("rank")
    return (seq.join(users, user_col).join(F.broadcast(items), item_col)
            .select(USER_IDX, ITEM_IDX, "rank", "score", "source")
            .withColumn("rank", F.row_number().over(w)))


def gate_served(model_name: str, version: str, selection: Selection, metric: str, value: float, margin: float) -> bool:
    """Move the ALS model's ``champion`` alias only if an ALS source won this run's validation.

    When a baseline or a sequence source is served, the registered ALS version is not
    promoted and its ``gate.result`` tag says why (``rejected_baseline`` /
    ``rejected_sequence``, with ``gate.served``); otherwise
    :func:`~marketlab.tracking.promote_if_better` compares ``metric`` with the champion's.

    Returns:
        Whether the alias moved.
    """
    from mlflow import MlflowClient

    from marketlab.tracking import promote_if_better

    if selection.served in ALS_SOURCES:
        return promote_if_better(model_name, version, metric, value, margin=margin)
    client = MlflowClient()
    why = "rejected_baseline" if selection.served in ALL_MODELS else "rejected_sequence"
    client.set_model_version_tag(model_name, str(version), "gate.result", why)
    client.set_model_version_tag(model_name, str(version), "gate.served", selection.served)
    best_als = max(selection.results[m][selection.metric] for m in ALS_SOURCES if m in selection.results)
    log.info("%s v%s not promoted: %s is served (validation %s %.4f vs ALS %.4f)", model_name, version,
             selection.served, selection.metric, selection.results[selection.served][selection.metric], best_als)
    return False
