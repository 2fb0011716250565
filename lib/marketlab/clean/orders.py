"""Cleaning of order lines (Online Retail): bronze.orders -> sales, returns, adjustments.

Every bronze row gets exactly one route (first matching rule wins):

1. ``duplicate`` (excluded): an exact copy of an earlier line (all data columns equal);
2. ``bad_debt`` (adjustment): invoice starts with the adjustment prefix ("A");
3. ``non_product`` (adjustment): stock code is not a product (POST, DOT, M, fees ...);
4. a cancellation invoice ("C") with quantity < 0 -> a return (units made positive);
   with quantity >= 0 -> ``cancellation_non_negative_quantity`` (excluded);
5. ``non_positive_quantity`` (excluded): a non-cancellation line with quantity <= 0
   (stock write-offs: "damaged", "lost" ...);
6. ``non_positive_price`` (excluded): a sale with unit price <= 0 (free/manual lines);
7. otherwise a product sale.

Sales and returns then get one description per stock code (the most frequent trimmed
text; each changed row is audited as ``description_normalised``), a warehouse from the
country map, and sales an ``is_outlier`` flag. Missing customer ids are kept: guests'
sales are real demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from marketlab import constants as C
from marketlab.clean.audit import ALTERED, EXCLUDED, audit_rows, union_all
from marketlab.clean.params import OrderRules

ORDER_DATA_COLUMNS = [C.INVOICE_NO, C.STOCK_CODE, C.DESCRIPTION, C.QUANTITY, C.INVOICE_DATE, C.UNIT_PRICE,
                      C.CUSTOMER_ID, C.COUNTRY]

SALE, RETURN, ADJUSTMENT, EXCLUDE = "sale", "return", "adjustment", "exclude"


@dataclass
class CleanOrders:
    """The outputs of :func:`clean_orders` (lazy DataFrames over one cached routing)."""

    order_lines: DataFrame
    returns: DataFrame
    adjustments: DataFrame
    audit: DataFrame
    routed: DataFrame  # bronze rows with `_route`, `_reason`; cached, unpersist when done


def route_orders(bronze: DataFrame, rules: OrderRules) -> DataFrame:
    """Add ``_route`` (sale/return/adjustment/exclude) and ``_reason`` to every bronze row.

    Args:
        bronze: ``bronze.orders`` rows.
        rules: Order rules from conf.

    Returns:
        The rows with the two columns added (row count unchanged).
    """
    missing = [c for c in ORDER_DATA_COLUMNS if c not in bronze.columns]
    if missing:
        raise ValueError(f"bronze.orders lacks column(s) {missing}")
    order = [F.col(C.LINE), F.col(C.SOURCE_FILE)] if C.LINE in bronze.columns else [F.lit(0)]
    dup = F.row_number().over(Window.partitionBy(*ORDER_DATA_COLUMNS).orderBy(*order)) > 1
    inv = F.coalesce(F.col(C.INVOICE_NO), F.lit(""))
    is_cancel = inv.startswith(rules.cancellation_prefix)
    is_adj = inv.startswith(rules.adjustment_prefix)
    is_product = F.coalesce(F.col(C.STOCK_CODE).rlike(rules.product_code_pattern), F.lit(False))
    qty, price = F.col(C.QUANTITY), F.col(C.UNIT_PRICE)
    route = (F.when(dup, F.lit(EXCLUDE)).when(is_adj | ~is_product, F.lit(ADJUSTMENT))
             .when(is_cancel & (qty < 0), F.lit(RETURN)).when(is_cancel | (qty <= 0) | (price <= 0), F.lit(EXCLUDE))
             .otherwise(F.lit(SALE)))
    reason = (F.when(dup, F.lit("duplicate")).when(is_adj, F.lit("bad_debt")).when(~is_product, F.lit("non_product"))
              .when(is_cancel & (qty < 0), F.lit("cancellation"))
              .when(is_cancel, F.lit("cancellation_non_negative_quantity"))
              .when(qty <= 0, F.lit("non_positive_quantity")).when(price <= 0, F.lit("non_positive_price"))
              .otherwise(F.lit("sale")))
    return bronze.withColumn("_route", route).withColumn("_reason", reason)


def canonical_descriptions(rows: DataFrame, code_col: str = C.STOCK_CODE, desc_col: str = C.DESCRIPTION) -> DataFrame:
    """One description per code: the most frequent trimmed non-empty text (ties: A-Z first).

    Returns:
        ``(code_col, "_canonical_description")``.
    """
    d = rows.select(code_col, F.trim(F.col(desc_col)).alias("_d")).where(F.col("_d").isNotNull() & (F.col("_d") != ""))
    counts = d.groupBy(code_col, "_d").count()
    w = Window.partitionBy(code_col).orderBy(F.col("count").desc(), F.col("_d"))
    return (counts.withColumn("_rk", F.row_number().over(w)).where("_rk = 1")
            .select(code_col, F.col("_d").alias("_canonical_description")))


def warehouse_column(country: Column, rules: OrderRules) -> Column:
    """The fulfilment site of a country (``default_warehouse`` when not mapped)."""
    if not rules.warehouses:
        return F.lit(rules.default_warehouse)
    m = F.create_map(*[F.lit(x) for kv in rules.warehouses.items() for x in kv])
    return F.coalesce(m[country], F.lit(rules.default_warehouse))


def flag_outliers(sales: DataFrame, rules: OrderRules, item_col: str = C.STOCK_CODE, qty_col: str = C.QUANTITY) -> DataFrame:
    """Add ``is_outlier``: the line's quantity is extreme for its item (rule from conf).

    ``iqr``: x > Q3 + k * (Q3 - Q1) with exact per-item quartiles; ``zscore``:
    (x - mean) / stddev > k; x = log1p(quantity) when ``log_scale`` else quantity. Items with fewer than ``min_lines`` lines are never
    flagged. Only large quantities are flagged: small ones are ordinary single units.
    """
    r = rules.outliers
    x = F.log1p(F.col(qty_col)) if r.log_scale else F.col(qty_col)
    sales = sales.withColumn("_x", x)
    qty_col = "_x"
    if r.method == "iqr":
        stats = sales.groupBy(item_col).agg(
            F.count(F.lit(1)).alias("_n"),
            F.percentile(F.col(qty_col), F.lit(0.25)).alias("_q1"),
            F.percentile(F.col(qty_col), F.lit(0.75)).alias("_q3"))
        limit = F.col("_q3") + F.lit(r.k) * (F.col("_q3") - F.col("_q1"))
    else:
        stats = sales.groupBy(item_col).agg(F.count(F.lit(1)).alias("_n"), F.mean(qty_col).alias("_mu"),
                                            F.stddev_samp(qty_col).alias("_sd"))
        limit = F.col("_mu") + F.lit(r.k) * F.col("_sd")
    stats = stats.select(item_col, F.when(F.col("_n") >= r.min_lines, limit).alias("_limit"))
    out = sales.join(F.broadcast(stats), item_col, "left")
    return out.withColumn(C.IS_OUTLIER, F.coalesce(F.col(qty_col) > F.col("_limit"), F.lit(False))).drop("_limit", "_x")


def link_returns(returns: DataFrame, sales: DataFrame, window_days: int) -> DataFrame:
    """Add ``original_invoice_no``: the latest earlier sale of the same customer and item.

    Only sales at or before the return and at most ``window_days`` earlier qualify;
    returns without a customer id (or without such a sale, e.g. bought before the export
    starts) stay unlinked (null).
    """
    s = sales.select(F.col(C.CUSTOMER_ID).alias("_c"), F.col(C.STOCK_CODE).alias("_s"),
                     F.col(C.INVOICE_NO).alias("_orig"), F.col(C.INVOICE_TS).alias("_ots"))
    r = returns.withColumn("_rid", F.monotonically_increasing_id())
    cond = ((r[C.CUSTOMER_ID] == s["_c"]) & (r[C.STOCK_CODE] == s["_s"]) & (s["_ots"] <= r[C.INVOICE_TS])
            & (s["_ots"] >= r[C.INVOICE_TS] - F.expr(f"INTERVAL {int(window_days)} DAYS")))
    cand = r.join(s, cond, "left")
    w = Window.partitionBy("_rid").orderBy(F.col("_ots").desc_nulls_last(), F.col("_orig").desc())
    return (cand.withColumn("_rk", F.row_number().over(w)).where("_rk = 1")
            .withColumn(C.ORIGINAL_INVOICE_NO, F.col("_orig"))
            .drop("_rid", "_c", "_s", "_orig", "_ots", "_rk"))


def _with_parts(df: DataFrame) -> DataFrame:
    ts = F.col(C.INVOICE_DATE)
    return (df.withColumn(C.INVOICE_TS, ts).withColumn(C.DATE, F.to_date(ts))
            .withColumn("year", F.year(ts)).withColumn("month", F.month(ts))
            .withColumn("dow", F.dayofweek(ts)).withColumn("hour", F.hour(ts)))


def clean_orders(
    bronze: DataFrame,
    rules: OrderRules,
    *,
    source_table: str = "bronze.orders",
    sales_table: str = "silver.order_lines",
    returns_table: str = "silver.returns",
) -> CleanOrders:
    """Bronze order lines -> silver sales, returns, adjustments and audit rows.

    Args:
        bronze: ``bronze.orders`` rows (canonical columns + lineage).
        rules: Order rules from conf.
        source_table: Bronze table name (for the audit).
        sales_table: Silver sales table name (for the audit).
        returns_table: Silver returns table name (for the audit).

    Returns:
        A :class:`CleanOrders`; ``routed`` is cached and should be unpersisted after the
        outputs are written.
    """
    routed = route_orders(bronze, rules).persist()
    lineage = [c for c in (C.SOURCE_FILE, C.LINE, C.BATCH_ID) if c in bronze.columns]
    audits = [
        audit_rows(routed, F.col("_route") == EXCLUDE, table=_target(sales_table, returns_table),
                   source_table=source_table, action=EXCLUDED, reason=F.col("_reason"), record_columns=ORDER_DATA_COLUMNS,
                   detail=F.concat(F.lit("invoice="), F.col(C.INVOICE_NO), F.lit(" qty="), F.col(C.QUANTITY).cast("string"),
                                   F.lit(" price="), F.col(C.UNIT_PRICE).cast("string")))]

    goods = routed.where(F.col("_route").isin(SALE, RETURN))
    canon = canonical_descriptions(goods)
    goods = goods.join(F.broadcast(canon), C.STOCK_CODE, "left")
    changed = ~F.col(C.DESCRIPTION).eqNullSafe(F.col("_canonical_description"))
    audits.append(audit_rows(
        goods, changed, table=_target(sales_table, returns_table),
        source_table=source_table, action=ALTERED, record_columns=ORDER_DATA_COLUMNS,
        reason=F.when(F.trim(F.col(C.DESCRIPTION)) == F.col("_canonical_description"), F.lit("description_trimmed"))
        .otherwise(F.lit("description_normalised")),
        detail=F.concat(F.lit("'"), F.coalesce(F.col(C.DESCRIPTION), F.lit("<null>")), F.lit("' -> '"),
                        F.coalesce(F.col("_canonical_description"), F.lit("<null>")), F.lit("'"))))
    goods = _with_parts(goods.withColumn(C.DESCRIPTION, F.col("_canonical_description")))
    goods = goods.withColumn(C.WAREHOUSE, warehouse_column(F.col(C.COUNTRY), rules))

    base = [C.INVOICE_NO, C.STOCK_CODE, C.DESCRIPTION, C.QUANTITY, C.INVOICE_TS, C.DATE, C.UNIT_PRICE, C.AMOUNT,
            C.CUSTOMER_ID, C.COUNTRY, C.WAREHOUSE]
    parts = ["year", "month", "dow", "hour"]
    sales = (goods.where(F.col("_route") == SALE)
             .withColumn(C.AMOUNT, F.col(C.QUANTITY) * F.col(C.UNIT_PRICE)))
    plain_sales = sales
    sales = flag_outliers(sales, rules).select(*base, C.IS_OUTLIER, *parts, *lineage)
    rets = (goods.where(F.col("_route") == RETURN)
            .withColumn(C.QUANTITY, -F.col(C.QUANTITY))
            .withColumn(C.AMOUNT, F.col(C.QUANTITY) * F.col(C.UNIT_PRICE)))
    # linking needs no outlier flags: skip their per-item percentiles in this plan
    rets = link_returns(rets, plain_sales, rules.link_window_days).select(*base, C.ORIGINAL_INVOICE_NO, *parts, *lineage)

    adj = _with_parts(routed.where(F.col("_route") == ADJUSTMENT))
    adjustments = adj.select(
        C.INVOICE_NO, C.STOCK_CODE, F.trim(F.col(C.DESCRIPTION)).alias(C.DESCRIPTION), C.QUANTITY, C.INVOICE_TS, C.DATE,
        C.UNIT_PRICE, (F.col(C.QUANTITY) * F.col(C.UNIT_PRICE)).alias(C.AMOUNT), C.CUSTOMER_ID, C.COUNTRY,
        warehouse_column(F.col(C.COUNTRY), rules).alias(C.WAREHOUSE), F.col("_reason").alias("kind"),
        F.coalesce(F.col(C.INVOICE_NO).startswith(rules.cancellation_prefix), F.lit(False)).alias("is_cancellation"),
        *lineage)
    return CleanOrders(sales, rets, adjustments, union_all(audits), routed)


def _target(sales_table: str, returns_table: str) -> Column:
    """The silver table a routed row is bound for (adjustments are audited as sales)."""
    return F.when(F.col("_route") == RETURN, returns_table).otherwise(sales_table)
