"""Gold features and segments on the real data (session ``gold`` fixture): exact sizes,
contract invariants, and cross-checks against pandas on the silver tables.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

pytestmark = pytest.mark.slow


def test_gold_sizes(gold):
    _, info = gold
    assert info["as_of"] == dt.date(2011, 12, 10)
    assert info["rows"] == {"gold.item_features": 3_900, "gold.interactions": 264_655, "gold.demand_daily": 2_206_258,
                            "gold.demand_weekly": 320_124, "gold.customer_features": 4_334,
                            "gold.customer_sequences": 4_334}


def test_contract_invariants(gold):
    lake, _ = gold
    cf = lake.read("gold.customer_features")
    assert cf.select("customer_key").distinct().count() == cf.count()
    assert cf.where(F.length("customer_key") != 16).count() == 0
    assert cf.where("recency_days < 1 OR frequency < 1 OR tenure_days < recency_days").count() == 0
    assert lake.read("gold.interactions").where("strength <= 0").count() == 0
    assert lake.read("gold.demand_daily").where("units < 0").count() == 0
    built = {r[0] for r in lake.read("gold.item_features").select("_built_from").distinct().collect()}
    assert len(built) == 1 and "silver.order_lines@v" in built.pop()


def test_demand_matches_pandas(gold):
    """Zero-filled calendar size and total units equal a pandas computation on silver."""
    lake, _ = gold
    sales = lake.read("silver.order_lines").select("stock_code", "warehouse", "date", "quantity").toPandas()
    rets = lake.read("silver.returns").select("stock_code", "warehouse", "date", "quantity").toPandas()
    end = sales.date.max()
    first = sales.groupby(["stock_code", "warehouse"]).date.min()
    assert int(((end - first).apply(lambda d: d.days) + 1).sum()) == 2_206_258
    s = sales.groupby(["stock_code", "warehouse", "date"]).quantity.sum()
    r = rets.groupby(["stock_code", "warehouse", "date"]).quantity.sum()
    net = s.sub(r, fill_value=0)
    net = net[net.index.droplevel(2).isin(first.index)]  # returns for pairs never sold are not demand rows
    expected = float(net.clip(lower=0).sum())
    got = lake.read("gold.demand_daily").agg(F.sum("units")).first()[0]
    assert got == pytest.approx(expected)


def test_segments(gold):
    lake, info = gold
    p = lake.settings.jobs.segments
    assert p.k_min <= info["k"] <= p.k_max and set(info["silhouettes"]) == set(range(p.k_min, p.k_max + 1))
    assert info["silhouettes"][info["k"]] == max(info["silhouettes"].values())
    prof = lake.read("gold.segment_profiles").toPandas()
    assert prof.n_customers.sum() == 4_334 and prof.share.sum() == pytest.approx(1.0)
    seg = lake.read("gold.segments")
    assert seg.count() == 4_334 and seg.select("segment").distinct().count() == info["k"]
    # segments order customers by value: the best segment's median spend beats the worst's
    assert prof.median_monetary.max() > 5 * prof.median_monetary.min()
    assert isinstance(prof, pd.DataFrame)
