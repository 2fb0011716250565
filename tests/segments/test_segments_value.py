"""Segments with value tiers: tiers from gold.customer_value (cross-checked against pandas
quantiles), tier mix and CLV per segment in the profiles, and segments without a value table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from marketlab.segments.params import SegmentsParams
from marketlab.segments.run import run
from marketlab.value.params import ValueParams

AS_OF = dt.date(2011, 12, 10)
TIERS, QUANTILES = ["top", "high", "medium", "low"], [0.95, 0.8, 0.5]


def _features(spark):
    """Three well-separated RFM blobs of 40 customers (k = 3 wins, as in test_segments_kmeans)."""
    rng = np.random.default_rng(0)
    rows = []
    for i, (rec, freq, mon) in enumerate([(5, 40, 20000), (60, 8, 1500), (300, 1, 90)]):
        for j in range(40):
            rows.append((f"c{i}_{j:02d}", AS_OF, int(rec * rng.uniform(0.8, 1.2)), int(max(1, freq * rng.uniform(0.8, 1.2))),
                         float(mon * rng.uniform(0.8, 1.2))))
    return spark.createDataFrame(rows, "customer_key string, as_of date, recency_days int, frequency int, monetary double")


def _values(keys: list[str], seed: int, as_of: dt.date) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(keys)
    return pd.DataFrame({"customer_key": keys, "as_of": as_of, "clv": np.round(rng.lognormal(5, 1.2, n), 3),
                         "p_alive": np.round(rng.uniform(0.01, 1.0, n), 4), "value_tier": "stale", "at_risk": False})


def _pandas_tiers(v: pd.DataFrame) -> pd.Series:
    """The reference: tier i for CLV at or above the i-th quantile (numpy's inverted CDF = Spark's exact quantile)."""
    cuts = np.quantile(v["clv"].to_numpy(), QUANTILES, method="inverted_cdf")
    tier = pd.Series(TIERS[-1], index=v.index)
    for name, cut in reversed(list(zip(TIERS[:-1], cuts))):
        tier = tier.mask(v["clv"] >= cut, name)
    return tier


@pytest.fixture(scope="module")
def seg_lake(spark, tmp_path_factory):
    from conftest import make_settings
    from marketlab.tables import Lake

    lake = Lake(spark, make_settings(tmp_path_factory.mktemp("segments_value")))
    lake.write(_features(spark), "gold.customer_features")
    return lake


DDL = "customer_key string, as_of date, clv double, p_alive double, value_tier string, at_risk boolean"


def test_segments_carry_value_tiers_of_the_latest_slice_before_the_cutoff(spark, seg_lake):
    keys = [f"c{i}_{j:02d}" for i in range(3) for j in range(40)]
    # The value slice covers 5 more customers than the segments (tiers are quantiles of the whole
    # slice), misses 3 segmented ones; an older slice and a later one (after the cutoff) are not used.
    current = _values(keys[3:] + [f"x{j}" for j in range(5)], 1, AS_OF)
    older = _values(keys, 2, AS_OF - dt.timedelta(days=30))
    later = _values(keys, 3, AS_OF + dt.timedelta(days=30))
    seg_lake.write(spark.createDataFrame(pd.concat([current, older, later], ignore_index=True), DDL), "gold.customer_value")
    value = ValueParams(tiers=TIERS, tier_quantiles=QUANTILES, at_risk_min_clv_quantile=0.8, at_risk_max_p_alive=0.5)
    res = run(seg_lake, SegmentsParams(k_min=3, k_max=3, max_iter=20), value)
    assert res.k == 3 and res.value_as_of == AS_OF and res.value_note == ""
    segs = seg_lake.read("gold.segments").toPandas()
    assert len(segs) == 120 and segs["customer_key"].is_unique

    ref = current.assign(expected=_pandas_tiers(current))
    clv_cut = np.quantile(current["clv"], 0.8, method="inverted_cdf")
    ref["expected_at_risk"] = (ref["clv"] >= clv_cut) & (ref["p_alive"] <= 0.5)
    got = segs.merge(ref[["customer_key", "clv", "expected", "expected_at_risk"]], on="customer_key", how="left",
                     suffixes=("", "_ref"))
    valued = got[got["expected"].notna()]
    assert len(valued) == 117
    assert (valued["value_tier"] == valued["expected"]).all()
    assert (valued["at_risk"] == valued["expected_at_risk"]).all()
    np.testing.assert_allclose(valued["clv"], valued["clv_ref"])
    # the three customers the slice does not score: no tier, no CLV
    unvalued = got[got["expected"].isna()]
    assert sorted(unvalued["customer_key"]) == keys[:3]
    assert unvalued["value_tier"].isna().all() and unvalued["clv"].isna().all()
    # the top tier is ~5 % of the slice (not of the segments)
    assert (ref["expected"] == "top").sum() == len(ref) - int(np.ceil(0.95 * len(ref))) + 1 == 7

    prof = seg_lake.read("gold.segment_profiles").toPandas().set_index("segment")
    by_seg = valued.groupby("segment")
    pd.testing.assert_series_equal(prof["n_valued"].astype(int), by_seg.size().astype(int), check_names=False)
    np.testing.assert_allclose(prof.loc[by_seg.size().index, "mean_clv"], by_seg["clv"].mean())
    np.testing.assert_allclose(prof.loc[by_seg.size().index, "total_clv"], by_seg["clv"].sum())
    assert prof["n_at_risk"].sum() == valued["at_risk"].sum()
    for sg, g in by_seg:
        assert dict(prof.loc[sg, "value_tier_mix"]) == g["value_tier"].value_counts().to_dict()
    assert (prof["value_as_of"] == AS_OF).all()
    assert res.metrics()["value.customers"] == 117 and res.metrics()["value.at_risk"] == valued["at_risk"].sum()


def test_segments_without_a_value_table_keep_the_schema(spark, seg_lake, tmp_path):
    from conftest import make_settings
    from marketlab.tables import Lake

    lake = Lake(spark, make_settings(tmp_path))
    lake.write(seg_lake.read("gold.customer_features"), "gold.customer_features")
    res = run(lake, SegmentsParams(k_min=3, k_max=3, max_iter=20))
    assert res.k == 3 and res.value_as_of is None and "gold.customer_value does not exist" in res.value_note
    assert "value.customers" not in res.metrics()
    segs = lake.read("gold.segments")
    assert dict(segs.dtypes)["value_tier"] == "string" and dict(segs.dtypes)["clv"] == "double"
    assert segs.count() == 120 and segs.where(F.col("value_tier").isNotNull() | F.col("clv").isNotNull()).count() == 0
    prof = lake.read("gold.segment_profiles")
    assert set(prof.columns) == set(seg_lake.read("gold.segment_profiles").columns)  # one schema either way
    rows = prof.collect()
    assert sum(r["n_customers"] for r in rows) == 120
    assert all(r["n_valued"] == 0 and r["mean_clv"] is None and r["n_at_risk"] == 0 and r["value_tier_mix"] == {}
               and r["value_as_of"] is None for r in rows)
    # a value table whose only slice is after the cutoff: no tiers either (no look-ahead)
    later = _values([f"c0_{j:02d}" for j in range(40)], 4, AS_OF + dt.timedelta(days=1))
    lake.write(spark.createDataFrame(later, DDL), "gold.customer_value")
    res = run(lake, SegmentsParams(k_min=3, k_max=3, max_iter=20))
    assert res.value_as_of is None and "no slice on or before 2011-12-10" in res.value_note
    # switched off in conf: not even read
    lake.reads.clear()
    res = run(lake, SegmentsParams(k_min=3, k_max=3, max_iter=20, value_table=None))
    assert res.value_as_of is None and "gold.customer_value" not in lake.reads


def test_segments_job_logs_the_tiers_and_prints_them(spark, seg_lake, capsys):
    import importlib.util

    import mlflow

    from conftest import ROOT, make_settings
    from marketlab.runtime import JobContext
    from marketlab.tables import Lake

    keys = [f"c{i}_{j:02d}" for i in range(3) for j in range(40)]
    seg_lake.write(spark.createDataFrame(_values(keys, 5, AS_OF), DDL), "gold.customer_value")
    st = make_settings(Path(seg_lake.settings.lake_root).parent, ["jobs.segments.k_min=3", "jobs.segments.k_max=3"])
    spec = importlib.util.spec_from_file_location("segments_job", ROOT / "jobs" / "segments.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    lake = Lake(spark, st)
    res = job.main(JobContext("segments", st, spark, lake, None))
    line = capsys.readouterr().out
    assert line.startswith("segments: k=3") and "value tiers as of 2011-12-10" in line
    assert res.metrics()["value.customers"] == 120
    run = mlflow.search_runs(filter_string="tags.`marketlab.job` = 'segments'", output_format="list")[0]
    assert run.data.params["value.tier_quantiles"] == "[0.95, 0.8, 0.5]"
    assert run.data.params["read.gold.customer_value"] is not None and run.data.metrics["value.customers"] == 120
