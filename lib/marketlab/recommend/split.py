"""Evaluation splits: temporal (headline) and per-user random hide (published protocol).

Both return ``(train, test)`` interaction frames of ``user, item, strength``. Neither
looks at the test side when building the training side.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.recommend.data import STRENGTH, aggregate_events


def temporal_split(
    events: DataFrame,
    cutoff: dt.datetime,
    test_end: dt.datetime | None = None,
    new_only: bool = True,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    ts_col: str = "ts",
    strength_col: str = STRENGTH,
) -> tuple[DataFrame, DataFrame]:
    """Train on events before ``cutoff``, test on events in ``[cutoff, test_end)``.

    Args:
        events: One row per event with user, item, timestamp and strength (units).
        cutoff: First instant of the test window.
        test_end: End of the test window (exclusive); None means all later events.
        new_only: Keep only test pairs the user had not bought before the cutoff; this is
            the target when already-bought items are excluded from recommendations.
        user_col / item_col / ts_col / strength_col: Column names.

    Returns:
        ``(train, test)``: aggregated ``user, item, strength`` pairs with strength > 0.
        Test users absent from train are kept (cold users); callers decide how to score.
    """
    before = events.where(F.col(ts_col) < F.lit(cutoff))
    after = events.where(F.col(ts_col) >= F.lit(cutoff))
    if test_end is not None:
        after = after.where(F.col(ts_col) < F.lit(test_end))
    train = aggregate_events(before, user_col, item_col, strength_col)
    test = aggregate_events(after, user_col, item_col, strength_col)
    if new_only:
        test = test.join(train.select(user_col, item_col), [user_col, item_col], "left_anti")
    return train, test


def random_hide(
    interactions: DataFrame,
    fraction: float = 0.2,
    seed: int = 0,
    min_items: int = 2,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
) -> tuple[DataFrame, DataFrame]:
    """Hide a random ``fraction`` of each user's non-zero pairs.

    Every user with at least ``min_items`` distinct items loses ``max(1, round(fraction
    * n))`` of them (never all: at least one stays in training). The draw is a hash of
    (seed, user, item), so it does not depend on partitioning or row order.

    Args:
        interactions: ``user, item, strength`` with one row per pair.
        fraction: Share of each user's pairs to hide.
        seed: Seed of the draw.
        min_items: Users with fewer pairs keep all of them in training.
        user_col / item_col: Column names.

    Returns:
        ``(train, test)`` with the columns of ``interactions``; test holds the hidden pairs.
    """
    by_user = Window.partitionBy(user_col)
    ordered = Window.partitionBy(user_col).orderBy("_draw", item_col)
    marked = (
        interactions.withColumn("_draw", F.xxhash64(F.lit(seed), F.col(user_col).cast("string"), F.col(item_col).cast("string")))
        .withColumn("_n", F.count(F.lit(1)).over(by_user))
        .withColumn("_rn", F.row_number().over(ordered))
        .withColumn(
            "_hide_n",
            F.when(F.col("_n") < min_items, F.lit(0)).otherwise(
                F.least(F.greatest(F.lit(1), F.round(F.col("_n") * fraction).cast("int")), F.col("_n") - 1)
            ),
        )
        .withColumn("_hidden", F.col("_rn") <= F.col("_hide_n"))
    )
    cols = interactions.columns
    train = marked.where(~F.col("_hidden")).select(*cols)
    test = marked.where(F.col("_hidden")).select(*cols)
    return train, test


def last_event_time(events: DataFrame, ts_col: str = "ts") -> dt.datetime:
    """Latest timestamp of the events (the anchor of the temporal windows)."""
    value = events.agg(F.max(ts_col)).first()[0]
    if value is None:
        raise ValueError("no events: cannot place a temporal cutoff")
    return value
