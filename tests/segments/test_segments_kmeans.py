"""Segments: k by silhouette on well-separated RFM blobs, profiles add up."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from marketlab.segments.kmeans import fit_segments
from marketlab.segments.params import SegmentsParams


def test_three_blobs_give_k3(spark):
    rng = np.random.default_rng(0)
    rows = []
    for i, (rec, freq, mon) in enumerate([(5, 40, 20000), (60, 8, 1500), (300, 1, 90)]):
        for j in range(40):
            rows.append((f"c{i}_{j}", dt.date(2011, 12, 10), int(rec * rng.uniform(0.8, 1.2)),
                         int(max(1, freq * rng.uniform(0.8, 1.2))), float(mon * rng.uniform(0.8, 1.2))))
    df = spark.createDataFrame(rows, "customer_key string, as_of date, recency_days int, frequency int, monetary double")
    res = fit_segments(df, SegmentsParams(k_min=2, k_max=5, max_iter=20))
    assert res.k == 3 and res.silhouettes[3] > 0.8
    assert max(res.silhouettes, key=res.silhouettes.get) == 3
    segs = res.segments.toPandas()
    # every blob is one segment
    assert segs.assign(blob=segs.customer_key.str[:2]).groupby("blob").segment.nunique().tolist() == [1, 1, 1]
    prof = {r["segment_name"]: r for r in res.profiles.collect()}
    assert sum(r["n_customers"] for r in prof.values()) == 120 and sum(r["share"] for r in prof.values()) == pytest.approx(1)
    names = sorted(prof)
    assert names[0] == "bottom_value_lapsed_occasional" and names[2] == "top_value_recent_frequent"
    assert names[1].startswith("mid1_value_")  # the middle blob sits at the overall medians
    assert prof["top_value_recent_frequent"]["mean_recency_days"] < 7


def test_k_range_is_validated():
    with pytest.raises(ValueError, match="k_max"):
        SegmentsParams(k_min=5, k_max=3)
