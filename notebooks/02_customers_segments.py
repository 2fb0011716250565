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
# # 02 · Customers and segments
#
# RFM features of the latest cutoff, the k-means segments and what distinguishes them,
# and the purchase-intent scores of browsing sessions. Everything is aggregated in Spark;
# only histograms, profiles and a bounded sample reach pandas.
#
# Conf: `MARKETLAB_CONF` / `MARKETLAB_SET` (see 01_data_quality).

# %%
import matplotlib.pyplot as plt
from IPython.display import display
from pyspark.sql import functions as F

from marketlab.report.collect import histogram
from marketlab.report.notebook import open_lake, table

settings, spark, lake = open_lake()
print("lake:", settings.resolve(settings.lake_root))

# %% [markdown]
# ## RFM distributions (latest cutoff)

# %%
features = table(lake, "gold.customer_features")
if features is not None:
    as_of = features.agg(F.max("as_of")).first()[0]
    latest = features.where(F.col("as_of") == as_of)
    print("as of", as_of, "-", latest.count(), "customers")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, (col, log) in zip(axes, [("recency_days", False), ("frequency", True), ("monetary", True)]):
        h = histogram(latest, col, 30, col, log_scale=log)
        if hasattr(h, "bins"):
            ax.bar(h.bins["lo"], h.bins["count"], width=h.bins["hi"] - h.bins["lo"], align="edge")
            ax.set_xscale("log" if log else "linear")
        ax.set_title(col)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Segment profiles

# %%
profiles = table(lake, "gold.segment_profiles")
if profiles is not None:
    prof = profiles.where(F.col("as_of") == profiles.agg(F.max("as_of")).first()[0]).orderBy("segment").toPandas()
    display(prof[["segment", "segment_name", "n_customers", "share", "mean_recency_days", "mean_frequency",
                  "mean_monetary", "median_monetary", "total_monetary"]])
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.2))
    ax[0].barh(prof["segment_name"], prof["share"] * 100)
    ax[0].set_xlabel("% of customers")
    ax[1].barh(prof["segment_name"], prof["total_monetary"] / prof["total_monetary"].sum() * 100, color="C1")
    ax[1].set_xlabel("% of revenue")
    ax[1].set_yticklabels([])
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Recency vs monetary value by segment (a bounded sample)

# %%
segments = table(lake, "gold.segments")
if features is not None and segments is not None:
    joined = latest.join(segments.select("customer_key", "segment", "segment_name"), "customer_key")
    n = joined.count()
    sample = joined.sample(fraction=min(1.0, 3000 / max(n, 1)), seed=1) \
        .select("recency_days", "monetary", "segment", "segment_name").toPandas()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for seg, g in sample.groupby("segment_name"):
        ax.scatter(g["recency_days"], g["monetary"].clip(lower=1), s=6, alpha=0.5, label=seg)
    ax.set(yscale="log", xlabel="recency (days)", ylabel="monetary (log)")
    ax.legend(fontsize=7)
    plt.show()

# %% [markdown]
# ## Purchase intent of sessions (test split)

# %%
intent = table(lake, "gold.purchase_intent")
if intent is not None:
    test = intent.where(F.col("split") == "test")
    test = test if test.limit(1).count() else intent
    bins = (test.groupBy(F.floor(F.col("probability") * 20).alias("bin"), "label").count()
            .toPandas().pivot_table(index="bin", columns="label", values="count", fill_value=0))
    ax = (bins / bins.sum()).plot.bar(figsize=(9, 3.2), width=0.8)
    ax.set(xlabel="predicted probability (x 0.05)", ylabel="share of class", title="score distribution by label")
    plt.tight_layout()
    plt.show()
    display(test.groupBy("label", "prediction").count().orderBy("label", "prediction").toPandas())
