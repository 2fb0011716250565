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
# # 01 · Data quality
#
# What the clean job's data-quality gate found, how every bronze row is accounted for
# (bronze = silver + excluded), what was ingested, and a profile of the silver order lines.
#
# The lake is read through `marketlab`; point the notebook at another lake with
# `MARKETLAB_CONF` (default `conf/local.yaml`) and `MARKETLAB_SET`
# (`;`-separated `key=value` overrides, e.g. `lake_root=/tmp/pl/lake`).
# Sections whose tables are missing print `skipped: ...` and the rest still runs.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from pyspark.sql import functions as F

from marketlab.report.notebook import open_lake, table

pd.set_option("display.width", 160)
settings, spark, lake = open_lake()
print("lake:", settings.resolve(settings.lake_root))

# %% [markdown]
# ## Expectations of the latest checked version of each table

# %%
results = table(lake, "quality.results")
if results is not None:
    latest = results.groupBy("table").agg(F.max("version").alias("version"))
    res = (results.join(latest, ["table", "version"])
           .select("table", "version", "expectation", "kind", "severity", "passed", "offending", "rows", "detail")
           .orderBy("passed", "table", "expectation").toPandas())
    summary = res.groupby("table").agg(checked=("expectation", "size"), failed=("passed", lambda p: int((~p).sum())))
    display(summary)
    failed = res[~res["passed"]]
    print(f"{len(failed)} failed expectation(s):")
    display(failed)
    ax = summary[["checked", "failed"]].plot.barh(figsize=(7, 0.5 * len(summary) + 1.2), color=["#2f9e44", "#c92a2a"])
    ax.set_xlabel("expectations")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Row accounting: every bronze row is in silver or excluded with a reason

# %%
audit = table(lake, "silver._audit")
if audit is not None:
    by_reason = (audit.groupBy("source_table", "action", "reason").count()
                 .orderBy("source_table", "action", F.desc("count")).toPandas())
    display(by_reason)
    rows, clean = [], settings.jobs.clean
    for kind in clean.tables:
        bronze = clean.input_table(kind)
        if not lake.exists(bronze):
            print(f"skipped {bronze}: not in this lake")
            continue
        silver = {t: lake.read(t).count() for t in clean.output_tables(kind) if lake.exists(t)}
        excluded = int(by_reason[(by_reason.source_table == bronze) & (by_reason.action == "excluded")]["count"].sum())
        n = lake.read(bronze).count()
        rows.append({"bronze": bronze, "bronze_rows": n, "silver_rows": sum(silver.values()), "excluded": excluded,
                     "balanced": n == sum(silver.values()) + excluded})
    if rows:
        display(pd.DataFrame(rows))

# %% [markdown]
# ## Ingested files

# %%
ingest = table(lake, "ops.ingest_log")
if ingest is not None:
    display(ingest.select("source", "file", "status", "records", "bronze_rows", "rejected_rows", "ingested_at")
            .orderBy(F.desc("ingested_at")).limit(50).toPandas())

# %% [markdown]
# ## Silver order lines: null rates, daily volume, outliers

# %%
lines = table(lake, "silver.order_lines")
if lines is not None:
    cols = [c for c in lines.columns if not c.startswith("_")]
    nulls = lines.agg(*[F.avg(F.col(c).isNull().cast("double")).alias(c) for c in cols]).toPandas().T
    nulls.columns = ["null_rate"]
    display(nulls[nulls.null_rate > 0].sort_values("null_rate", ascending=False))
    daily = (lines.groupBy("date").agg(F.count(F.lit(1)).alias("lines"), F.sum("amount").alias("revenue"))
             .orderBy("date").toPandas())
    fig, ax = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    ax[0].plot(pd.to_datetime(daily["date"]), daily["lines"], lw=0.8)
    ax[0].set_ylabel("order lines / day")
    ax[1].plot(pd.to_datetime(daily["date"]), daily["revenue"], lw=0.8, color="C1")
    ax[1].set_ylabel("revenue / day")
    plt.tight_layout()
    plt.show()
    if "is_outlier" in lines.columns:
        display(lines.groupBy("is_outlier").agg(F.count(F.lit(1)).alias("lines"), F.sum("amount").alias("revenue"))
                .toPandas())
