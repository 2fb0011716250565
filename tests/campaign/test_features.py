"""Featured-item candidates: repeat-first ranking in Spark equals the same rule in pandas."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketlab.campaign import features as feat

pytestmark = pytest.mark.spark


def _pandas_repeat_first(inter: pd.DataFrame, fill: pd.DataFrame, k: int) -> pd.DataFrame:
    """Own items by orders, latest purchase, id; then the fill ranking without own items."""
    own = inter.assign(_tier=0, score=inter["n_purchases"].astype(float), _last=inter["last_ts"].map(dt.datetime.timestamp),
                       _fill_rank=0)
    seen = set(zip(inter["customer_key"], inter["item_id"]))
    rest = fill[[(c, i) not in seen for c, i in zip(fill["customer_key"], fill["item_id"])]]
    rest = rest.assign(_tier=1, score=0.0, _last=0.0, _fill_rank=rest["rank"])
    u = pd.concat([own, rest])[["customer_key", "item_id", "_tier", "score", "_last", "_fill_rank"]]
    u = u.sort_values(["customer_key", "_tier", "score", "_last", "_fill_rank", "item_id"],
                      ascending=[True, True, False, False, True, True])
    u["rank"] = u.groupby("customer_key").cumcount() + 1
    return u[u["rank"] <= k][["customer_key", "item_id", "rank", "score"]].reset_index(drop=True)


def test_repeat_first_equals_pandas_and_fills_to_k(spark):
    rng = np.random.default_rng(3)
    items = [f"I{j:03d}" for j in range(40)]
    rows, fills = [], []
    base = dt.datetime(2011, 1, 1)
    for c in range(60):
        key = f"k{c:03d}"
        own = rng.choice(items, size=int(rng.integers(0, 8)), replace=False)
        for it in own:  # few distinct counts and days: the tie-breaks decide often
            rows.append((key, it, int(rng.integers(1, 4)), base + dt.timedelta(days=int(rng.integers(0, 5)))))
        for r, it in enumerate(rng.choice(items, size=10, replace=False), start=1):
            fills.append((key, it, r))
    inter = pd.DataFrame(rows, columns=["customer_key", "item_id", "n_purchases", "last_ts"])
    fill = pd.DataFrame(fills, columns=["customer_key", "item_id", "rank"])
    got = (feat.repeat_first(spark.createDataFrame(inter), spark.createDataFrame(fill), 5).toPandas()
           .sort_values(["customer_key", "rank"]).reset_index(drop=True))
    want = _pandas_repeat_first(inter, fill, 5)
    pd.testing.assert_frame_equal(got.astype({"rank": int}), want.astype({"rank": int}), check_dtype=False)
    # every customer gets k distinct items; own items always come before fill items
    assert (got.groupby("customer_key")["item_id"].nunique() == 5).all()
    n_own = inter.groupby("customer_key").size().reindex(got["customer_key"].unique(), fill_value=0).clip(upper=5)
    first_fill = got[got["score"] == 0].groupby("customer_key")["rank"].min()
    assert (first_fill == n_own.reindex(first_fill.index) + 1).all()


def test_repeat_first_ranks_by_orders_then_latest_purchase(spark):
    t0, t1 = dt.datetime(2011, 3, 1), dt.datetime(2011, 5, 1)
    inter = spark.createDataFrame([("a", "X", 1, t1), ("a", "Y", 3, t0), ("a", "Z", 1, t0)],
                                  "customer_key string, item_id string, n_purchases long, last_ts timestamp")
    fill = spark.createDataFrame([("a", "Z", 1), ("a", "W", 2), ("a", "V", 3)],
                                 "customer_key string, item_id string, rank int")
    got = [r.item_id for r in feat.repeat_first(inter, fill, 4).orderBy("rank").collect()]
    assert got == ["Y", "X", "Z", "W"]  # most orders, then the latest; Z is not filled twice
