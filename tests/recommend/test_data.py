"""Order lines -> recommender events, and the one item space the protocols and the final fit share."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from marketlab.recommend.data import order_line_events
from marketlab.recommend.params import RecommendParams
from marketlab.recommend.run import item_space

T0 = dt.datetime(2011, 3, 1, 10, 0)


def test_order_line_events_keep_known_customers_and_map_columns(spark):
    lines = spark.createDataFrame(
        [(17850, "85123A", T0, 6), (None, "71053", T0, 2), (13047, "22752", T0 + dt.timedelta(hours=1), -1)],
        "customer_id long, stock_code string, invoice_ts timestamp, quantity int")
    got = order_line_events(lines).orderBy("user_id").toPandas()
    assert list(got.columns) == ["user_id", "item_id", "ts", "strength"]
    want = pd.DataFrame({"user_id": ["13047", "17850"], "item_id": ["22752", "85123A"],
                         "ts": [T0 + dt.timedelta(hours=1), T0], "strength": [-1.0, 6.0]})
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_item_space_indexes_catalogue_and_used_items_once(spark):
    items = spark.createDataFrame([("B", "red heart lantern"), ("A", "white heart lantern"), ("C", None)],
                                  "item_id string, description string")
    used = spark.createDataFrame([("u1", "D", 1.0), ("u2", "A", 2.0)], "customer_key string, item_id string, strength double")
    space = item_space(items, RecommendParams(min_df=1), used)
    index = dict(space.index.select("item_id", "item_idx").collect())
    assert index == {"A": 0, "B": 1, "C": 2, "D": 3}  # id order, catalogue + used items
    assert space.n_items == 4 and space.tfidf.shape[0] == 4
    norms = np.sqrt(np.asarray(space.tfidf.multiply(space.tfidf).sum(axis=1))).ravel()
    np.testing.assert_allclose(norms, [1.0, 1.0, 0.0, 0.0])  # no description: no content row
    # "heart" and "lantern" are shared, "red"/"white" not: the two lanterns are similar, not equal.
    sim = (space.tfidf[0] @ space.tfidf[1].T).toarray()[0, 0]
    assert 0.0 < sim < 1.0
