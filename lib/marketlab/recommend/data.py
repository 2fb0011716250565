"""Interaction frames for the recommender: integer indices, ratings, event aggregation.

Spark ALS wants integer user/item ids; these helpers assign dense 0-based indices
deterministically (ordered by the original id, so a rerun on the same data gives the same
index) and keep the mapping frames to translate recommendations back.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C

USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
STRENGTH = "strength"
RATING = "rating"


def dense_index(ids: DataFrame, col: str, idx_col: str) -> DataFrame:
    """Dense 0-based integer index over the distinct values of ``col``.

    Args:
        ids: Frame holding ``col``.
        col: Id column (string or number).
        idx_col: Name of the index column to add.

    Returns:
        ``col, idx_col`` with one row per distinct non-null id, index in id order.
    """
    distinct = ids.select(col).where(F.col(col).isNotNull()).distinct()
    # One ordered window: the id space (customers, items) is small next to the
    # interactions, and an id-ordered index is reproducible run to run.
    return distinct.withColumn(idx_col, (F.row_number().over(Window.orderBy(col)) - 1).cast("int"))


def aggregate_events(
    events: DataFrame,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    strength_col: str = STRENGTH,
) -> DataFrame:
    """Sum event strengths per user x item and keep the positive pairs.

    Args:
        events: One row per event (order line) with user, item and strength.
        user_col / item_col / strength_col: Column names.

    Returns:
        ``user_col, item_col, strength`` with ``strength > 0`` (net returns drop a pair).
    """
    return (
        events.groupBy(user_col, item_col)
        .agg(F.sum(strength_col).cast("double").alias(STRENGTH))
        .where(F.col(STRENGTH) > 0)
    )


def to_indexed(
    interactions: DataFrame,
    users: DataFrame,
    items: DataFrame,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    strength_col: str = STRENGTH,
) -> DataFrame:
    """Replace ids by dense indices (inner join: ids missing from the index are dropped).

    Returns:
        ``user_idx, item_idx, strength``.
    """
    return (
        interactions.join(users, user_col)
        .join(F.broadcast(items), item_col)
        .select(USER_IDX, ITEM_IDX, F.col(strength_col).cast("double").alias(STRENGTH))
    )


def with_rating(interactions: DataFrame, log_strength: bool = True) -> DataFrame:
    """Add the implicit rating ALS sees: ``log1p(strength)`` or the raw strength."""
    expr = F.log1p(F.col(STRENGTH)) if log_strength else F.col(STRENGTH)
    return interactions.withColumn(RATING, expr.cast("float"))


def order_line_events(
    lines: DataFrame,
    customer_col: str = C.CUSTOMER_ID,
    stock_col: str = C.STOCK_CODE,
    ts_col: str = C.INVOICE_TS,
    quantity_col: str = C.QUANTITY,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
) -> DataFrame:
    """Recommender events from order lines: one ``user, item, ts, strength`` row per line of a known customer.

    The user is the customer id as text, the item the stock code, the strength the
    quantity (``silver.order_lines`` contract).
    """
    return lines.where(F.col(customer_col).isNotNull()).select(
        F.col(customer_col).cast("string").alias(user_col), F.col(stock_col).alias(item_col),
        F.col(ts_col).alias("ts"), F.col(quantity_col).cast("double").alias(STRENGTH))
