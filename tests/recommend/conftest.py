"""Real-data inputs of the recommender tests.

The evaluation needs event-level order lines (temporal split) and customer x item
interactions (random-hide protocol). While the features capability's `gold` fixture is
not available, both are built here from the vendored Online Retail export with the
cleaning rules of the published benchmark: identified customers only, product stock
codes (start with a digit), net units per customer x item > 0.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[2] / "data"


def _retail_lines() -> pd.DataFrame:
    df = pd.read_csv(DATA / "online_retail" / "online_retail.csv.gz", dtype={"InvoiceNo": str, "StockCode": str})
    df = df[df["CustomerID"].notna() & df["StockCode"].str.match(r"^\d")].copy()
    df["user_id"] = df["CustomerID"].astype("int64").astype(str)
    df["item_id"] = df["StockCode"].str.upper().str.strip()
    df["ts"] = pd.to_datetime(df["InvoiceDate"])
    df["description"] = df["Description"].fillna("").str.strip()
    return df


@pytest.fixture(scope="session")
def retail_frames(spark):
    """``(events, interactions, items)`` Spark frames from the vendored export.

    events: user_id, item_id, ts, strength (sales lines, quantity > 0, no cancellations);
    interactions: user_id, item_id, strength (net units incl. cancellations, > 0);
    items: item_id, description (most frequent description per code).
    """
    df = _retail_lines()
    sales = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0) & ~df["InvoiceNo"].str.startswith("C")]
    events = sales[["user_id", "item_id", "ts", "Quantity"]].rename(columns={"Quantity": "strength"})
    events = events.astype({"strength": "float64"})
    net = df.groupby(["user_id", "item_id"], as_index=False)["Quantity"].sum()
    net = net[net["Quantity"] > 0].rename(columns={"Quantity": "strength"}).astype({"strength": "float64"})
    desc = (df[df["description"] != ""].groupby(["item_id", "description"]).size().reset_index(name="n")
            .sort_values(["item_id", "n", "description"], ascending=[True, False, True])
            .drop_duplicates("item_id")[["item_id", "description"]])
    items = pd.DataFrame({"item_id": sorted(set(df["item_id"]))}).merge(desc, on="item_id", how="left")
    return (spark.createDataFrame(events).repartition(4).cache(), spark.createDataFrame(net).repartition(4).cache(),
            spark.createDataFrame(items).cache())
