# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Demand, forecast and inventory
#
# Weekly demand per warehouse, how concentrated it is on a few items, the forecast of the
# busiest item against its history, the rolling-origin backtest against the baselines and
# the inventory plan built on the forecast.
#
# Conf: `MARKETLAB_CONF` / `MARKETLAB_SET` (see 01_data_quality).

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from pyspark.sql import functions as F

from marketlab.report.notebook import open_lake, table

settings, spark, lake = open_lake()
print("lake:", settings.resolve(settings.lake_root))

# %% [markdown]
# ## Weekly demand per warehouse

# %%
demand = table(lake, "gold.demand_daily")
if demand is not None:
    weekly = (demand.groupBy("warehouse", F.date_trunc("week", "date").alias("week")).agg(F.sum("units").alias("units"))
              .orderBy("week").toPandas().pivot_table(index="week", columns="warehouse", values="units", fill_value=0))
    weekly.plot(figsize=(10, 3.5), title="units per week")
    plt.show()

# %% [markdown]
# ## Concentration: share of units from the top items

# %%
if demand is not None:
    per_item = demand.groupBy("item_id").agg(F.sum("units").alias("units")).orderBy(F.desc("units"))
    units = np.array([r["units"] for r in per_item.select("units").collect()], dtype=float)  # one value per item
    units = np.clip(units, 0, None)
    share = np.cumsum(units) / units.sum() if units.sum() else units
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(share) + 1) / len(share) * 100, share * 100)
    ax.set(xlabel="% of items (by units)", ylabel="% of units", title="demand concentration")
    plt.show()
    display(per_item.limit(10).toPandas())

# %% [markdown]
# ## Forecast of the busiest forecasted series vs its history

# %%
forecasts = table(lake, "gold.forecasts")
if forecasts is not None and demand is not None:
    start = forecasts.agg(F.min("date")).first()[0]
    top = (forecasts.groupBy("item_id", "warehouse").agg(F.sum("p50").alias("p50")).orderBy(F.desc("p50")).first())
    key = (F.col("item_id") == top["item_id"]) & (F.col("warehouse") == top["warehouse"])
    hist = demand.where(key & (F.col("date") >= F.date_sub(F.lit(start), 90)) & (F.col("date") < F.lit(start))) \
        .select("date", "units").orderBy("date").toPandas()
    fc = forecasts.where(key).select("date", "p50", "p90").orderBy("date").toPandas()
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(pd.to_datetime(hist["date"]), hist["units"], color="k", lw=1, label="actual")
    ax.plot(pd.to_datetime(fc["date"]), fc["p50"], label="P50")
    ax.fill_between(pd.to_datetime(fc["date"]), fc["p50"], fc["p90"], alpha=0.25, label="P50-P90")
    ax.set_title(f"item {top['item_id']} in {top['warehouse']}")
    ax.legend()
    plt.show()

# %% [markdown]
# ## Backtest: LSTM vs baselines

# %%
backtest = table(lake, "gold.forecast_backtest")
if backtest is not None:
    bt = backtest.toPandas()
    display(bt[bt["cutoff"].isna()][["model", "n_series", "mase", "wape", "pinball", "coverage_p90"]].sort_values("mase"))
    per_cut = bt[bt["cutoff"].notna()].pivot_table(index="cutoff", columns="model", values="mase")
    if not per_cut.empty:
        per_cut.plot(marker="o", figsize=(8, 3.2), title="MASE per cutoff (lower is better)")
        plt.show()

# %% [markdown]
# ## Inventory plan and solver status

# %%
status = table(lake, "gold.inventory_status")
if status is not None:
    st = status.toPandas()
    display(st[["scenario", "warehouse", "status", "objective", "cost_ordering", "cost_holding", "cost_shortage",
                "planned_fill_rate", "realized_fill_rate"]])
plan = table(lake, "gold.inventory_plan")
if plan is not None:
    p = (plan.where(F.col("scenario") == "plan").groupBy("warehouse", "period")
         .agg(*[F.sum(c).alias(c) for c in ("order_qty", "inventory_end", "shortage", "demand_p50")])
         .orderBy("warehouse", "period").toPandas())
    for wh, g in p.groupby("warehouse"):
        ax = g.plot(x="period", y=["order_qty", "inventory_end", "demand_p50", "shortage"], figsize=(8, 3), title=wh)
        ax.set_ylabel("units")
        plt.show()
