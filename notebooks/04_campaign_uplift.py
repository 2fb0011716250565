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
# # 04 · Campaign, uplift and strategy
#
# The randomized e-mail campaign: outcomes per arm, the measured A/B effects with their
# confidence intervals, Qini curves of the uplift scores on held-out customers, and the
# budgeted strategy per segment.
#
# Conf: `MARKETLAB_CONF` / `MARKETLAB_SET` (see 01_data_quality). The Qini curves join the
# pseudonymised scores back to the campaign with the lake's pseudonym secret (see
# lib/marketlab/privacy.py), as the jobs do.

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from pyspark.sql import functions as F

from marketlab.privacy import resolve_secret
from marketlab.report import calc
from marketlab.report.collect import qini_buckets
from marketlab.report.model import Unavailable
from marketlab.report.notebook import open_lake, table

settings, spark, lake = open_lake()
print("lake:", settings.resolve(settings.lake_root))

# %% [markdown]
# ## Outcomes per arm

# %%
campaign = table(lake, "silver.campaign_log")
if campaign is not None:
    arms = (campaign.groupBy("treatment").agg(F.count(F.lit(1)).alias("customers"), F.avg("visit").alias("visit_rate"),
                                              F.avg("conversion").alias("conversion_rate"),
                                              F.avg("spend").alias("spend_per_customer"))
            .orderBy("treatment").toPandas())
    display(arms)
    arms.set_index("treatment")[["visit_rate", "conversion_rate"]].plot.bar(figsize=(7, 3), rot=0)
    plt.show()

# %% [markdown]
# ## A/B results: effect vs control with confidence intervals

# %%
evaluations = table(lake, "gold.campaign_evaluations")
if evaluations is not None:
    ev = evaluations.where(F.col("segment") == "all").toPandas()
    display(ev[["arm", "metric", "effect", "ci_low", "ci_high", "p_adjusted", "significant"]])
    metrics = list(dict.fromkeys(ev["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 2.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        g = ev[ev["metric"] == m].reset_index(drop=True)
        ax.errorbar(g["effect"], np.arange(len(g)), xerr=[g["effect"] - g["ci_low"], g["ci_high"] - g["effect"]],
                    fmt="o", capsize=3)
        ax.axvline(0, color="r", lw=1)
        ax.set_yticks(np.arange(len(g)), g["arm"])
        ax.set_title(m)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Qini curves of the uplift scores (held-out customers)

# %%
buckets = qini_buckets(lake, settings, resolve_secret(settings), points=40)  # Unavailable(reason) when a table is missing
if isinstance(buckets, Unavailable):
    print("skipped:", buckets.reason)
else:
    groups = list(buckets.groupby(["action", "outcome"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3), squeeze=False)
    for ax, ((action, outcome), g) in zip(axes[0], groups):
        q = calc.qini_from_buckets(g)
        ax.plot(q["share"], q["qini"], label="model")
        ax.plot(q["share"], q["random"], "--", color="grey", label="random")
        ax.set_title(f"{action}\n{outcome}", fontsize=8)
    axes[0][0].legend(fontsize=7)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Strategy: chosen action per segment

# %%
summary = table(lake, "gold.strategy_summary")
if summary is not None:
    sm = summary.toPandas()
    display(sm)
    sm.pivot_table(index="segment", columns="action", values="customers", aggfunc="sum", fill_value=0) \
        .plot.barh(stacked=True, figsize=(8, 3))
    plt.xlabel("customers")
    plt.show()
