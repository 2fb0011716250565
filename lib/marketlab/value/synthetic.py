"""Synthetic purchase days drawn from the BG/NBD and Gamma-Gamma processes (tests, bench/clv.py).

Generated in the executors (``mapInPandas`` over blocks of customer ids), so a million
customers never pass through the driver.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from marketlab import constants as C
from marketlab.value.models import BGNBD, GammaGamma

LINES_SCHEMA = T.StructType([T.StructField(C.CUSTOMER_ID, T.LongType()), T.StructField(C.DATE, T.DateType()),
                             T.StructField(C.AMOUNT, T.DoubleType()), T.StructField(C.IS_OUTLIER, T.BooleanType())])


def simulate_block(ids: np.ndarray, bg: BGNBD, gg: GammaGamma, start: dt.date, days: int, seed: int,
                   max_repeats: int = 60) -> pd.DataFrame:
    """Order lines (one per purchase) of customers ``ids`` whose first purchase is uniform in the first half of the window.

    A customer buys at Poisson rate lambda ~ Gamma(r, alpha) and drops out with probability
    p ~ Beta(a, b) right after each repeat purchase; each purchase is worth z ~ Gamma(p_gg, nu)
    with nu ~ Gamma(q, gamma) per customer. At most ``max_repeats`` repeat purchases.
    """
    rng = np.random.default_rng([seed, int(ids[0]) if len(ids) else 0])
    n = len(ids)
    lam = rng.gamma(bg.r, 1.0 / bg.alpha, n)
    drop = rng.beta(bg.a, bg.b, n)
    nu = rng.gamma(gg.q, 1.0 / gg.gamma, n)
    first = rng.integers(0, max(days // 2, 1), n).astype(float)
    # Dropout happens only right after a repeat purchase (FHL 2005: x = 0 means alive), so the
    # repeat purchase after which the customer drops is geometric on 1, 2, ...
    alive_repeats = np.minimum(rng.geometric(drop), max_repeats)
    gaps = rng.exponential(1.0, (n, max_repeats)) / np.maximum(lam, 1e-12)[:, None]
    times = first[:, None] + np.cumsum(gaps, axis=1)
    keep = (np.arange(1, max_repeats + 1)[None, :] <= alive_repeats[:, None]) & (times < days)
    rows, cols = np.nonzero(keep)
    cust = np.concatenate([np.arange(n), rows])
    day = np.concatenate([first, np.floor(times[rows, cols])]).astype("int64")
    amount = rng.gamma(gg.p, 1.0, len(cust)) / nu[cust]
    return pd.DataFrame({C.CUSTOMER_ID: ids[cust].astype("int64"),
                         C.DATE: (np.datetime64(start) + day.astype("timedelta64[D]")).astype("datetime64[D]"),
                         C.AMOUNT: amount, C.IS_OUTLIER: False})


def simulate_order_lines(spark: SparkSession, n_customers: int, bg: BGNBD, gg: GammaGamma,
                         start: dt.date = dt.date(2011, 1, 1), days: int = 365, seed: int = 0,
                         block: int = 50_000) -> DataFrame:
    """A Spark frame of ``customer_id, date, amount, is_outlier`` for ``n_customers`` simulated customers."""
    n_blocks = max(1, -(-n_customers // block))
    blocks = spark.range(0, n_blocks, 1, numPartitions=min(n_blocks, spark.sparkContext.defaultParallelism * 4))

    def fn(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            for b in pdf["id"].to_numpy():
                ids = np.arange(b * block, min((b + 1) * block, n_customers))
                out = simulate_block(ids, bg, gg, start, days, seed)
                out[C.DATE] = pd.to_datetime(out[C.DATE]).dt.date
                yield out

    return blocks.mapInPandas(fn, LINES_SCHEMA).withColumn(C.DATE, F.col(C.DATE))
