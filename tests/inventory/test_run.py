"""Unit costs of the inventory stage: cost_ratio x the item's median price (from gold.item_features)."""

from __future__ import annotations

import pandas as pd
import pytest

from marketlab.inventory.run import unit_costs


def test_unit_costs_are_cost_ratio_times_median_price(spark):
    pdf = pd.DataFrame({"item_id": ["A", "B", "C"], "price_median": [2.5, 0.85, None], "units": [10, 3, 1]})
    got = unit_costs(spark.createDataFrame(pdf), 0.6).toPandas().set_index("item_id")["unit_cost"]
    assert list(got.index) == ["A", "B", "C"]
    assert got["A"] == pytest.approx(1.5) and got["B"] == pytest.approx(0.51)
    assert pd.isna(got["C"])  # no price: build_problems falls back to default_unit_cost
