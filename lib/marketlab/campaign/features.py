"""Point-in-time inputs of a wave: the active customers' features and the featured-item candidates.

Everything is computed from silver order lines *before* the wave's history cutoff, so a
model or a recommendation never sees an order placed after the wave it plans (the
simulator draws relevance from exactly those later orders).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.features.build import customer_features, interactions
from marketlab.privacy import pseudonymise
from marketlab.recommend.params import RecommendParams
from marketlab.recommend.run import item_space, recommend_all

# Model inputs (standardised by the response models). Log transforms because RFM figures
# are heavy-tailed; campaign-history inputs come from the logged waves.
FEATURES = ["log_recency", "log_frequency", "log_monetary", "log_tenure", "log_basket_value", "return_rate",
            "orders_90d", "log_revenue_90d", "log_items", "prev_contacts", "prev_coupons", "prev_order_rate"]
HISTORY = ["prev_contacts", "prev_coupons", "prev_order_rate"]


def customer_frame(sales: DataFrame, returns: DataFrame, as_of: dt.date, secret: str) -> DataFrame:
    """One row per customer with a sale before ``as_of``: shop id, key and the RFM inputs.

    Args:
        sales: silver.order_lines.
        returns: silver.returns.
        as_of: History cutoff (exclusive).
        secret: Pseudonymisation secret.

    Returns:
        ``customer_id``, ``customer_key`` and the non-history columns of :data:`FEATURES`.
    """
    feats = customer_features(sales, returns, as_of, secret)
    ids = pseudonymise(sales.where(F.col(C.CUSTOMER_ID).isNotNull() & (F.col(C.DATE) < F.lit(as_of)))
                       .select(C.CUSTOMER_ID).distinct(), secret)
    lg = lambda c: F.log1p(F.greatest(F.col(c).cast("double"), F.lit(0.0)))  # noqa: E731
    return feats.join(ids, C.CUSTOMER_KEY).select(
        C.CUSTOMER_ID, C.CUSTOMER_KEY,
        lg("recency_days").alias("log_recency"), lg("frequency").alias("log_frequency"),
        lg("monetary").alias("log_monetary"), lg("tenure_days").alias("log_tenure"),
        lg("avg_basket_value").alias("log_basket_value"),
        F.coalesce(F.col("return_rate"), F.lit(0.0)).cast("double").alias("return_rate"),
        F.col("orders_90d").cast("double").alias("orders_90d"), lg("revenue_90d").alias("log_revenue_90d"),
        lg("n_items").alias("log_items"))


def history_features(responses: DataFrame | None, waves: list[int]) -> DataFrame | None:
    """Per customer x wave: e-mails, coupons and the order rate over the *earlier* waves.

    Args:
        responses: silver.campaign_responses so far (None before the first response).
        waves: Waves to produce rows for (a customer without earlier responses gets zeros
            when joined).

    Returns:
        ``customer_key``, ``wave`` and :data:`HISTORY`, or None without responses.
    """
    if responses is None:
        return None
    r = responses.select(C.CUSTOMER_KEY, "wave", F.col("sent").cast("double").alias("_s"),
                         (F.col("sent") & (F.col("coupon_level") > 0)).cast("double").alias("_c"),
                         F.col("ordered").cast("double").alias("_o"))
    grid = r.select(C.CUSTOMER_KEY).distinct().crossJoin(
        r.sparkSession.createDataFrame([(int(w),) for w in waves], "wave int"))
    earlier = grid.alias("g").join(r.alias("r"), (F.col("g.customer_key") == F.col("r.customer_key"))
                                   & (F.col("r.wave") < F.col("g.wave")), "left")
    return earlier.groupBy(F.col("g.customer_key").alias(C.CUSTOMER_KEY), F.col("g.wave").alias("wave")).agg(
        F.coalesce(F.sum("_s"), F.lit(0.0)).alias("prev_contacts"),
        F.coalesce(F.sum("_c"), F.lit(0.0)).alias("prev_coupons"),
        F.coalesce(F.mean("_o"), F.lit(0.0)).alias("prev_order_rate"))


def with_history(customers: DataFrame, history: DataFrame | None, wave: int) -> DataFrame:
    """``customers`` with the :data:`HISTORY` inputs as of ``wave`` (zeros without history)."""
    if history is None:
        return customers.select("*", *[F.lit(0.0).alias(c) for c in HISTORY])
    h = history.where(F.col("wave") == wave).drop("wave")
    return customers.join(h, C.CUSTOMER_KEY, "left").fillna(0.0, subset=HISTORY)


def candidates(sales: DataFrame, returns: DataFrame, items: DataFrame, as_of: dt.date, secret: str,
               rec: RecommendParams, k: int, bought: str, checkpoint_dir: str | None,
               source: str = "repeat") -> DataFrame:
    """Featured-item candidates as of ``as_of``: the recommend capability's ALS, or repeat-first.

    ``als``: the tuned ALS of ``jobs.recommend`` (content blend, cold items) on the
    interactions before the cutoff, ``k`` items per customer; ``bought`` (keep | exclude |
    downweight) says what happens to items the customer bought before. ``repeat``: the
    customer's own items before the cutoff first (:func:`repeat_first`), the same ALS
    filling the rest, so a customer with few items still gets ``k``.

    Returns:
        ``customer_key``, ``item_id``, ``rank`` (1 = best), ``score``.
    """
    cut = F.col(C.DATE) < F.lit(as_of)
    inter = interactions(sales.where(cut), returns.where(cut), secret)
    p = rec.model_copy(update={"k": k, "bought": bought})
    space = item_space(items.select(C.ITEM_ID, C.DESCRIPTION), p, inter)
    recs, _ = recommend_all(inter, space, p, p.als, checkpoint_dir)
    space.index.unpersist()
    als = recs.select(C.CUSTOMER_KEY, C.ITEM_ID, "rank", "score")
    return als if source == "als" else repeat_first(inter, als, k)


def repeat_first(inter: DataFrame, fill: DataFrame, k: int) -> DataFrame:
    """The customer's own items first, ``fill``'s ranking after them: ``k`` candidates each.

    Own items are ranked by the orders they were in, then the latest purchase, then item id:
    the customer's purchase counts, as the repeat-purchase baseline of
    :mod:`marketlab.sequence.baselines` ranks them, which beat every learned ranking of this
    shop's next purchases (docs/SEQUENCE_MODELS.md). ``fill`` items the customer already
    bought are not counted twice.

    Args:
        inter: Interactions before the cutoff (``customer_key, item_id, n_purchases, last_ts``).
        fill: A ranking (``customer_key, item_id, rank``) for the places own items leave.
        k: Candidates per customer.

    Returns:
        ``customer_key``, ``item_id``, ``rank`` (1..k), ``score`` (orders with the item for
        own items, 0 for fill).
    """
    own = inter.select(C.CUSTOMER_KEY, C.ITEM_ID, F.lit(0).alias("_tier"),
                       F.col("n_purchases").cast("double").alias("score"),
                       F.col("last_ts").cast("double").alias("_last"), F.lit(0).alias("_fill_rank"))
    rest = (fill.join(inter.select(C.CUSTOMER_KEY, C.ITEM_ID), [C.CUSTOMER_KEY, C.ITEM_ID], "left_anti")
            .select(C.CUSTOMER_KEY, C.ITEM_ID, F.lit(1).alias("_tier"), F.lit(0.0).alias("score"),
                    F.lit(0.0).alias("_last"), F.col("rank").cast("int").alias("_fill_rank")))
    w = Window.partitionBy(C.CUSTOMER_KEY).orderBy("_tier", F.desc("score"), F.desc("_last"), "_fill_rank", C.ITEM_ID)
    return (own.unionByName(rest).withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= k)
            .select(C.CUSTOMER_KEY, C.ITEM_ID, "rank", "score"))


def featured(cands: DataFrame, vetoed: DataFrame | None, k: int) -> DataFrame:
    """The ``k`` best candidates per customer that the inventory does not veto, ';'-joined.

    Returns:
        ``customer_key``, ``featured_items`` (string), ``n_featured``.
    """
    c = cands if vetoed is None else cands.join(F.broadcast(vetoed.select(C.ITEM_ID)), C.ITEM_ID, "left_anti")
    w = Window.partitionBy(C.CUSTOMER_KEY).orderBy("rank")
    top = c.withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= k)
    return top.groupBy(C.CUSTOMER_KEY).agg(
        F.array_join(F.transform(F.array_sort(F.collect_list(F.struct("_r", C.ITEM_ID))), lambda s: s[C.ITEM_ID]),
                     ";").alias("featured_items"),
        F.count(F.lit(1)).alias("n_featured"))
