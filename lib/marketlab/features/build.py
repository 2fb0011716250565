"""Gold features from silver sales and returns (pure DataFrame transforms).

Customer ids are pseudonymised (:func:`marketlab.privacy.customer_key` with the caller's
secret) before anything leaves this module. ``customer_features`` is point-in-time: it only
sees rows strictly before ``as_of``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.privacy import customer_key


def item_features(sales: DataFrame, returns: DataFrame) -> DataFrame:
    """One row per item: popularity, price stats, return rate, description, sale dates."""
    s = sales.groupBy(F.col(C.STOCK_CODE).alias(C.ITEM_ID)).agg(
        F.first(C.DESCRIPTION, ignorenulls=True).alias(C.DESCRIPTION),
        F.countDistinct(C.INVOICE_NO).alias("n_orders"),
        F.countDistinct(C.CUSTOMER_ID).alias("n_customers"),
        F.sum(C.QUANTITY).cast("long").alias("units"),
        F.sum(C.AMOUNT).alias("revenue"),
        F.mean(C.UNIT_PRICE).alias("price_mean"),
        F.percentile(C.UNIT_PRICE, F.lit(0.5)).alias("price_median"),
        F.min(C.DATE).alias("first_sold"), F.max(C.DATE).alias("last_sold"))
    r = returns.groupBy(F.col(C.STOCK_CODE).alias(C.ITEM_ID)).agg(F.sum(C.QUANTITY).alias("returned_units"))
    return (s.join(r, C.ITEM_ID, "left").fillna({"returned_units": 0})
            .withColumn("returned_units", F.col("returned_units").cast("long"))
            .withColumn("return_rate", F.col("returned_units") / F.col("units")))


def interactions(sales: DataFrame, returns: DataFrame, secret: str) -> DataFrame:
    """Customer x item implicit strength = net units (sold - returned), kept where > 0."""
    s = (sales.where(F.col(C.CUSTOMER_ID).isNotNull())
         .groupBy(C.CUSTOMER_ID, C.STOCK_CODE)
         .agg(F.sum(C.QUANTITY).alias("_sold"), F.countDistinct(C.INVOICE_NO).alias("n_purchases"),
              F.min(C.INVOICE_TS).alias("first_ts"), F.max(C.INVOICE_TS).alias("last_ts")))
    r = (returns.where(F.col(C.CUSTOMER_ID).isNotNull()).groupBy(C.CUSTOMER_ID, C.STOCK_CODE)
         .agg(F.sum(C.QUANTITY).alias("_ret")))
    j = s.join(r, [C.CUSTOMER_ID, C.STOCK_CODE], "left").fillna({"_ret": 0})
    return (j.withColumn("strength", (F.col("_sold") - F.col("_ret")).cast("double")).where(F.col("strength") > 0)
            .select(customer_key(C.CUSTOMER_ID, secret).alias(C.CUSTOMER_KEY), F.col(C.STOCK_CODE).alias(C.ITEM_ID),
                    "strength", F.col("n_purchases").cast("long"), "first_ts", "last_ts"))


def _calendar(df: DataFrame, date_col: str = C.DATE) -> DataFrame:
    d = F.col(date_col)
    return (df.withColumn("dow", F.dayofweek(d)).withColumn("week", F.weekofyear(d)).withColumn("month", F.month(d))
            .withColumn("is_weekend", F.dayofweek(d).isin(1, 7)))


def demand_daily(sales: DataFrame, returns: DataFrame, end_date: dt.date | None = None,
                 exclude_outliers: bool = False, max_calendar_days: int | None = None) -> DataFrame:
    """Net units per item x warehouse x day, zero-filled from the pair's first sale to ``end_date``.

    ``units`` = max(sold - returned, 0) that day (a day with more returns than sales
    counts 0 demand; the raw parts are kept as ``sold_units`` and ``returned_units``).

    Args:
        sales: ``silver.order_lines``.
        returns: ``silver.returns``.
        end_date: Last calendar day (default: the last sale's).
        exclude_outliers: Leave flagged outlier lines out.
        max_calendar_days: Longest calendar (first sale to ``end_date``, inclusive)
            allowed; None: no cap.

    Raises:
        BadInputError: The calendar would be longer than ``max_calendar_days``. Every item
            is zero-filled to the end, so one far date multiplies the table (a single 2030
            sale in 2010-2011 data grew it from 1,135 to 8,292,310 rows); that is an input to fix, and a
            clipped calendar would silently drop the far sale's units.
    """
    if exclude_outliers:
        sales = sales.where(~F.col(C.IS_OUTLIER))
    keys = [F.col(C.STOCK_CODE).alias(C.ITEM_ID), C.WAREHOUSE, C.DATE]
    s = sales.groupBy(*keys).agg(F.sum(C.QUANTITY).alias("sold_units"))
    r = returns.groupBy(*keys).agg(F.sum(C.QUANTITY).alias("returned_units"))
    daily = s.join(r, [C.ITEM_ID, C.WAREHOUSE, C.DATE], "full").fillna({"sold_units": 0, "returned_units": 0})
    first_day, last_day = sales.agg(F.min(C.DATE), F.max(C.DATE)).first()
    end_day = end_date or last_day
    if max_calendar_days is not None and first_day is not None:
        span = (end_day - first_day).days + 1
        if span > max_calendar_days:
            raise BadInputError(
                f"the demand calendar would span {span:,} days ({first_day} to {end_day}), more than "
                f"jobs.features.demand_calendar_max_days={max_calendar_days:,}: is a sale dated far from the "
                f"others? (silver.order_lines' dates lie within jobs.ingest.timestamp_bounds)")
    end = F.lit(end_day)
    spans = s.groupBy(C.ITEM_ID, C.WAREHOUSE).agg(F.min(C.DATE).alias("_first"))
    grid = spans.select(C.ITEM_ID, C.WAREHOUSE, F.explode(F.sequence(F.col("_first"), end)).alias(C.DATE))
    out = (grid.join(daily, [C.ITEM_ID, C.WAREHOUSE, C.DATE], "left").fillna({"sold_units": 0, "returned_units": 0})
           .withColumn("units", F.greatest(F.col("sold_units") - F.col("returned_units"), F.lit(0)).cast("double"))
           .withColumn("sold_units", F.col("sold_units").cast("double"))
           .withColumn("returned_units", F.col("returned_units").cast("double")))
    return _calendar(out).select(C.ITEM_ID, C.WAREHOUSE, C.DATE, "units", "sold_units", "returned_units",
                                 "dow", "week", "month", "is_weekend")


def demand_weekly(daily: DataFrame) -> DataFrame:
    """Weekly (Monday-start) sums of :func:`demand_daily`."""
    return (daily.withColumn("week_start", F.to_date(F.date_trunc("week", F.col(C.DATE))))
            .groupBy(C.ITEM_ID, C.WAREHOUSE, "week_start")
            .agg(F.sum("units").alias("units"), F.sum("sold_units").alias("sold_units"),
                 F.sum("returned_units").alias("returned_units"), F.count(F.lit(1)).alias("n_days"))
            .withColumn("week", F.weekofyear("week_start")).withColumn("month", F.month("week_start")))


def default_as_of(sales: DataFrame) -> dt.date:
    """The day after the last sale: features over all the data."""
    return sales.agg(F.max(C.DATE)).first()[0] + dt.timedelta(days=1)


def _score(col: str, bins: int, ascending: bool) -> Column:
    # percent_rank gives ties the same score (ntile would split ties arbitrarily).
    order = F.col(col).asc() if ascending else F.col(col).desc()
    pr = F.percent_rank().over(Window.orderBy(order))
    return F.least(F.floor(pr * bins) + 1, F.lit(bins)).cast("int")


def customer_features(sales: DataFrame, returns: DataFrame, as_of: dt.date, secret: str,
                      windows_days: list[int] = (7, 30, 90), bins: int = 5) -> DataFrame:
    """RFM, scores, tenure, basket stats, return rate and window aggregates as of a cutoff.

    Only rows with ``date < as_of`` are used (no look-ahead); customers without a sale
    before the cutoff and guest lines (null customer id) are absent.

    Args:
        sales: ``silver.order_lines``.
        returns: ``silver.returns``.
        as_of: Cutoff date (exclusive).
        secret: Pseudonymisation secret (:func:`marketlab.privacy.resolve_secret`).
        windows_days: Look-back windows (days before ``as_of``).
        bins: Number of score bins (R, F, M scores in 1..bins, higher is better).

    Returns:
        One row per customer_key.
    """
    cut = F.lit(as_of)
    s = sales.where(F.col(C.CUSTOMER_ID).isNotNull() & (F.col(C.DATE) < cut))
    r = returns.where(F.col(C.CUSTOMER_ID).isNotNull() & (F.col(C.DATE) < cut))
    baskets = s.groupBy(C.CUSTOMER_ID, C.INVOICE_NO).agg(
        F.min(C.DATE).alias("_d"), F.sum(C.AMOUNT).alias("_v"), F.sum(C.QUANTITY).alias("_u"),
        F.countDistinct(C.STOCK_CODE).alias("_k"))
    win = [F.sum(F.when(F.col("_d") >= F.date_sub(cut, w), 1).otherwise(0)).alias(f"orders_{w}d") for w in windows_days]
    win += [F.sum(F.when(F.col("_d") >= F.date_sub(cut, w), F.col("_v")).otherwise(0.0)).alias(f"revenue_{w}d")
            for w in windows_days]
    win += [F.sum(F.when(F.col("_d") >= F.date_sub(cut, w), F.col("_u")).otherwise(0)).alias(f"units_{w}d")
            for w in windows_days]
    agg = baskets.groupBy(C.CUSTOMER_ID).agg(
        F.max("_d").alias("_last"), F.min("_d").alias("_first"), F.count(F.lit(1)).alias("frequency"),
        F.sum("_v").alias("gross_revenue"), F.sum("_u").alias("units"), F.mean("_v").alias("avg_basket_value"),
        F.mean("_u").alias("avg_basket_units"), F.mean("_k").alias("avg_basket_items"), *win)
    items = s.groupBy(C.CUSTOMER_ID).agg(F.countDistinct(C.STOCK_CODE).alias("n_items"))
    ret = r.groupBy(C.CUSTOMER_ID).agg(F.sum(C.QUANTITY).alias("returned_units"), F.sum(C.AMOUNT).alias("returned_value"))
    out = (agg.join(items, C.CUSTOMER_ID).join(ret, C.CUSTOMER_ID, "left")
           .fillna({"returned_units": 0, "returned_value": 0.0})
           .withColumn("recency_days", F.datediff(cut, F.col("_last")))
           .withColumn("tenure_days", F.datediff(cut, F.col("_first")))
           .withColumn("monetary", F.col("gross_revenue") - F.col("returned_value"))
           .withColumn("return_rate", F.col("returned_units") / F.col("units")))
    out = (out.withColumn("r_score", _score("recency_days", bins, ascending=False))
           .withColumn("f_score", _score("frequency", bins, ascending=True))
           .withColumn("m_score", _score("monetary", bins, ascending=True)))
    hi, lo = max(bins - 1, 2), 2
    seg = (F.when((F.col("r_score") >= hi) & (F.col("f_score") >= hi), "champions")
           .when((F.col("r_score") >= hi) & (F.col("f_score") <= lo), "new_or_promising")
           .when((F.col("r_score") <= lo) & (F.col("f_score") >= hi), "at_risk")
           .when((F.col("r_score") <= lo) & (F.col("f_score") <= lo), "hibernating")
           .otherwise("regular"))
    cols = ["recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "tenure_days",
            "gross_revenue", "units", "n_items", "avg_basket_value", "avg_basket_units", "avg_basket_items",
            "returned_units", "return_rate",
            *[f"{k}_{w}d" for k in ("orders", "revenue", "units") for w in windows_days]]
    return out.select(customer_key(C.CUSTOMER_ID, secret).alias(C.CUSTOMER_KEY), cut.alias(C.AS_OF), *cols,
                      F.concat(F.col("r_score").cast("string"), F.col("f_score").cast("string"),
                               F.col("m_score").cast("string")).alias("rfm_code"),
                      seg.alias("rfm_segment"))


def customer_sequences(sales: DataFrame, secret: str, max_baskets: int = 100, as_of: dt.date | None = None) -> DataFrame:
    """Each customer's baskets in time order: ``baskets`` (invoice, ts, items) and the flat ``item_sequence``."""
    s = sales.where(F.col(C.CUSTOMER_ID).isNotNull())
    if as_of is not None:
        s = s.where(F.col(C.DATE) < F.lit(as_of))
    b = s.groupBy(C.CUSTOMER_ID, C.INVOICE_NO).agg(
        F.min(C.INVOICE_TS).alias("ts"), F.sort_array(F.collect_set(C.STOCK_CODE)).alias("items"))
    w = Window.partitionBy(C.CUSTOMER_ID).orderBy(F.col("ts").desc(), F.col(C.INVOICE_NO).desc())
    b = b.withColumn("_rk", F.row_number().over(w)).where(F.col("_rk") <= max_baskets)
    seq = b.groupBy(C.CUSTOMER_ID).agg(
        F.sort_array(F.collect_list(F.struct("ts", F.col(C.INVOICE_NO).alias("invoice_no"), "items"))).alias("baskets"))
    return seq.select(customer_key(C.CUSTOMER_ID, secret).alias(C.CUSTOMER_KEY), "baskets",
                      F.flatten(F.transform("baskets", lambda x: x["items"])).alias("item_sequence"),
                      F.size("baskets").alias("n_baskets"))
