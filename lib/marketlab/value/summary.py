"""Per-customer (frequency, recency, T, monetary) in Spark, and scoring of it in Spark.

Conventions (lifetimes' ``summary_data_from_transaction_data``, time in days):

- one purchase = the invoice days of a customer: lines of one day are one purchase;
- ``frequency`` = purchase days - 1 (repeat purchases); ``recency`` = days from the first
  to the last purchase day; ``T`` = days from the first purchase day to the end of the
  window (exclusive end, so a customer first seen on the last day has T = 1, never 0);
- ``monetary`` = mean value of the repeat purchase days (the first purchase is left out,
  as the Gamma-Gamma model expects); 0 for a customer with no repeat purchase;
- guest lines (no customer id), lines with a missing, zero or negative amount (returns
  live in silver.returns and are not netted) and, if configured, outlier lines are left
  out; :func:`order_days` reports how many.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from marketlab import constants as C
from marketlab.value import models as M

FREQUENCY, RECENCY, AGE, MONETARY = "frequency", "recency", "T", "monetary"
MEAN_VALUE = "mean_value"  # mean value of all purchase days (the baselines' order value)
P_ALIVE, EXP_PURCHASES, EXP_SPEND, EXP_ORDER_VALUE, CLV = (
    "p_alive", "expected_purchases", "expected_spend", "expected_order_value", "clv")
DELTA_CLV = "delta_clv"  # CLV gained by one more purchase at the window's end (the campaign objective)


def _date(d: dt.date | str) -> Column:
    return F.lit(str(d)).cast("date")


def order_days(lines: DataFrame, exclude_outliers: bool = True, customer_col: str = C.CUSTOMER_ID,
               date_col: str = C.DATE, amount_col: str = C.AMOUNT, outlier_col: str = C.IS_OUTLIER
               ) -> tuple[DataFrame, Column]:
    """One row per (customer, purchase day) with its value, and an aggregate counting what was left out.

    Returns:
        ``(days, dropped)``: ``days`` has ``customer_col``, ``date_col``, ``value``; ``dropped``
        is a struct column expression (``guest``, ``nonpositive``, ``outlier`` line counts)
        to evaluate on ``lines`` with ``lines.agg(dropped)``.
    """
    guest = F.col(customer_col).isNull()
    nonpos = F.col(amount_col).isNull() | (F.col(amount_col) <= 0)
    outlier = F.coalesce(F.col(outlier_col), F.lit(False)) if exclude_outliers and outlier_col in lines.columns else F.lit(False)
    dropped = F.struct(F.sum(guest.cast("long")).alias("guest"),
                       F.sum((~guest & nonpos).cast("long")).alias("nonpositive"),
                       F.sum((~guest & ~nonpos & outlier).cast("long")).alias("outlier")).alias("dropped")
    days = (lines.where(~guest & ~nonpos & ~outlier)
            .groupBy(customer_col, date_col).agg(F.sum(amount_col).alias("value")))
    return days, dropped


def summarise(days: DataFrame, end: dt.date | str, start: dt.date | str | None = None,
              customer_col: str = C.CUSTOMER_ID, date_col: str = C.DATE) -> DataFrame:
    """The (frequency, recency, T, monetary, mean_value) summary of purchase days in [start, end).

    Args:
        days: Output of :func:`order_days`.
        end: Exclusive end of the window (the as-of or calibration cutoff date).
        start: Inclusive start (None: all history).
    """
    win = days.where(F.col(date_col) < _date(end))
    if start is not None:
        win = win.where(F.col(date_col) >= _date(start))
    first = F.min_by("value", date_col)
    agg = win.groupBy(customer_col).agg(
        F.min(date_col).alias("_first"), F.max(date_col).alias("_last"), F.count("*").alias("_n"),
        F.sum("value").alias("_total"), first.alias("_first_value"))
    freq = (F.col("_n") - 1).cast("double")
    return agg.select(
        customer_col,
        freq.alias(FREQUENCY),
        F.datediff("_last", "_first").cast("double").alias(RECENCY),
        F.datediff(_date(end), "_first").cast("double").alias(AGE),
        F.when(freq > 0, (F.col("_total") - F.col("_first_value")) / freq).otherwise(F.lit(0.0)).alias(MONETARY),
        (F.col("_total") / F.col("_n")).alias(MEAN_VALUE),
    )


def holdout_actuals(days: DataFrame, start: dt.date | str, horizon_days: int, customer_col: str = C.CUSTOMER_ID,
                    date_col: str = C.DATE) -> DataFrame:
    """Purchase days and spend per customer in [start, start + horizon_days)."""
    end = F.date_add(_date(start), horizon_days)
    return (days.where((F.col(date_col) >= _date(start)) & (F.col(date_col) < end))
            .groupBy(customer_col)
            .agg(F.count("*").cast("double").alias(f"actual_purchases_{horizon_days}"),
                 F.sum("value").alias(f"actual_spend_{horizon_days}")))


SCORE_FIELDS = [P_ALIVE, EXP_PURCHASES, EXP_ORDER_VALUE, EXP_SPEND, CLV]


def score(summary: DataFrame, bg: M.BGNBD, gg: M.GammaGamma, horizon_days: int, period_days: int,
          discount_per_period: float, margin: float, extra_horizons: tuple[int, ...] = ()) -> DataFrame:
    """``summary`` with P(alive), expected purchases / order value / spend over the horizon and CLV.

    Runs in the executors (``mapInPandas`` over Arrow batches); nothing is collected.
    ``extra_horizons`` adds ``expected_purchases_<h>`` and ``expected_spend_<h>`` (the holdout
    evaluation's windows).
    """
    extra = [f"{k}_{h}" for h in extra_horizons for k in (EXP_PURCHASES, EXP_SPEND)]
    schema = T.StructType(list(summary.schema.fields) + [T.StructField(c, T.DoubleType()) for c in SCORE_FIELDS + extra])

    def fn(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            x, t_x, age, mx = (pdf[c].to_numpy(float) for c in (FREQUENCY, RECENCY, AGE, MONETARY))
            aov = M.expected_spend(gg, x, mx)
            out = pdf.copy()
            out[P_ALIVE] = M.p_alive(bg, x, t_x, age)
            out[EXP_PURCHASES] = M.expected_purchases(bg, float(horizon_days), x, t_x, age)
            out[EXP_ORDER_VALUE] = aov
            out[EXP_SPEND] = out[EXP_PURCHASES].to_numpy() * aov
            out[CLV] = M.discounted_clv(bg, gg, x, t_x, age, mx, float(horizon_days), float(period_days),
                                        discount_per_period, margin)
            for h in extra_horizons:
                n = M.expected_purchases(bg, float(h), x, t_x, age)
                out[f"{EXP_PURCHASES}_{h}"] = n
                out[f"{EXP_SPEND}_{h}"] = n * aov
            yield out

    return summary.mapInPandas(fn, schema)


def delta_clv(summary: DataFrame, bg: M.BGNBD, gg: M.GammaGamma, horizon_days: int, period_days: int,
              discount_per_period: float, margin: float, customer_col: str = C.CUSTOMER_ID) -> DataFrame:
    """``customer_col``, ``clv`` and ``delta_clv``: what one more purchase at the window's end adds to the CLV.

    The purchase is one more repeat purchase (frequency + 1) on the last day (recency = T)
    at the customer's mean purchase value. The CLV counts purchases after the window only,
    so the difference is what a campaign that causes the purchase adds beyond that
    purchase's own margin: a higher P(alive) and more expected purchases. Runs in the
    executors, like :func:`score`.
    """
    schema = T.StructType([summary.schema[customer_col], T.StructField(CLV, T.DoubleType()),
                           T.StructField(DELTA_CLV, T.DoubleType())])

    def fn(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            x, t_x, age, mx, mean = (pdf[c].to_numpy(float) for c in (FREQUENCY, RECENCY, AGE, MONETARY, MEAN_VALUE))
            clv = lambda *a: M.discounted_clv(bg, gg, *a, float(horizon_days), float(period_days),  # noqa: E731
                                              discount_per_period, margin)
            now = clv(x, t_x, age, mx)
            after = clv(x + 1.0, age, age, (mx * x + mean) / (x + 1.0))
            yield pd.DataFrame({customer_col: pdf[customer_col], CLV: now, DELTA_CLV: after - now})

    return summary.mapInPandas(fn, schema)


def grouped_for_fit(summary: DataFrame) -> pd.DataFrame:
    """Distinct (frequency, recency, T) rows with their customer count: what the BG/NBD fit needs.

    Its size is bounded by the calendar (days x days x purchases), not by the customers.
    """
    return (summary.groupBy(FREQUENCY, RECENCY, AGE).agg(F.count("*").cast("double").alias("weight"))
            .toPandas())


def repeat_buyers(summary: DataFrame) -> pd.DataFrame:
    """(frequency, monetary) of customers with a repeat purchase, grouped on equal values: the Gamma-Gamma fit's input."""
    return (summary.where(F.col(FREQUENCY) > 0).groupBy(FREQUENCY, MONETARY)
            .agg(F.count("*").cast("double").alias("weight")).toPandas())


def as_arrays(pdf: pd.DataFrame, *cols: str) -> list[np.ndarray]:
    return [pdf[c].to_numpy(float) for c in cols]
