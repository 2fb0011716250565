"""The drift stage on a real Delta lake: baseline, unchanged, a shift that blocks until it is
accepted, slices, a missing table; PSI cross-checked with a pandas computation."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from conftest import ROOT, make_settings
from marketlab.drift import stats
from marketlab.drift.params import DriftParams
from marketlab.drift.run import DriftBlockedError, run
from marketlab.runtime import call_job, job_argv
from marketlab.tables import Lake

CHECKS = [{"table": "gold.customer_features", "columns": ["recency_days", "monetary"]},
          {"table": "gold.uplift_scores", "columns": ["uplift"], "by": ["action"]},
          {"table": "gold.sequence_scores", "columns": ["p_buy"]}]


def _features(n: int, shift: float = 0.0, seed: int = 0, null_share: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    monetary = rng.lognormal(5 + shift, 1, n)
    monetary[rng.random(n) < null_share] = np.nan
    return pd.DataFrame({"customer_key": [f"k{i}" for i in range(n)],
                         "recency_days": rng.integers(0, 365, n).astype(float),
                         "frequency": rng.poisson(3, n) + 1, "monetary": monetary})


def _uplift(n: int, shift: float = 0.0, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer_key": [f"k{i}" for i in range(n)] * 2,
                         "action": ["email"] * n + ["coupon"] * n, "outcome": "spend",
                         "uplift": np.r_[rng.normal(0.02, 0.01, n), rng.normal(0.05 + shift, 0.01, n)]})


def _write(lake, name, pdf):
    return lake.write(lake.spark.createDataFrame(pdf), name)


def _params(**kw) -> DriftParams:
    return DriftParams(checks=CHECKS, ks_sample=5000, **kw)


@pytest.fixture()
def lake(spark, tmp_path):
    lk = Lake(spark, make_settings(tmp_path))
    _write(lk, "gold.customer_features", _features(3000))
    _write(lk, "gold.uplift_scores", _uplift(1500))
    return lk


def _rows(res):
    return res.rows.set_index(["table", "column", "slice"])


def test_first_run_is_the_baseline_and_an_unchanged_rerun_is_unchanged(lake):
    first = run(lake, _params(), run_id="r1")
    assert first.status == "baseline" and first.missing == ["gold.sequence_scores"]
    rows = _rows(first)
    assert set(rows.index) == {("gold.customer_features", "recency_days", "all"),
                               ("gold.customer_features", "monetary", "all"),
                               ("gold.uplift_scores", "uplift", "action=coupon"),
                               ("gold.uplift_scores", "uplift", "action=email")}
    assert rows["n_cur"].tolist() == [3000, 3000, 1500, 1500]
    assert rows["ref_version"].isna().all() and rows["accepted"].all()
    again = run(lake, _params(), run_id="r2")
    assert again.status == "unchanged" and (again.rows["psi"] == 0).all()
    assert (again.rows["ref_version"] == again.rows["cur_version"]).all()
    # one row per table x column x slice x version pair: the rerun added its rows once
    assert lake.read("ops.drift").count() == 8
    run(lake, _params(), run_id="r3")
    assert lake.read("ops.drift").count() == 8


def test_a_new_version_from_the_same_distribution_is_ok_and_the_psi_matches_pandas(lake):
    run(lake, _params())
    new = _features(3000, seed=2)
    _write(lake, "gold.customer_features", new)
    res = run(lake, _params())
    row = _rows(res).loc[("gold.customer_features", "monetary", "all")]
    assert row["status"] == "ok" and row["ref_version"] == 0 and row["cur_version"] == 1
    # the same PSI from pandas: deciles of the reference, both sides binned by them
    old = _features(3000)["monetary"]
    edges = np.quantile(old, np.arange(1, 10) / 10)
    bins = [-np.inf, *edges, np.inf]
    hist = [pd.cut(s, bins, right=True).value_counts(sort=False).to_numpy() for s in (old, new["monetary"])]
    assert row["psi"] == pytest.approx(stats.psi(*hist), abs=0.005)
    assert row["psi"] < 0.05
    # ks_sample exceeds both sides: the KS test saw every value, as SciPy on the full columns
    expected = sps.ks_2samp(old, new["monetary"])
    assert (row["ks_stat"], row["ks_pvalue"]) == pytest.approx((expected.statistic, expected.pvalue))


def test_a_shift_blocks_until_a_run_accepts_it(lake):
    run(lake, _params())
    v_old = lake.version("gold.customer_features")
    _write(lake, "gold.customer_features", _features(3000, shift=1.0, seed=7))
    with pytest.raises(DriftBlockedError, match=r"gold.customer_features.monetary\[all\] psi=.*on_block=warn"):
        run(lake, _params())
    drift = lake.read("ops.drift").toPandas()
    blocked = drift[drift["cur_version"] == v_old + 1]
    assert not blocked["accepted"].any()
    assert blocked.set_index("column").loc["monetary", "status"] == "block"
    assert blocked.set_index("column").loc["monetary", "psi"] > 0.5
    assert blocked.set_index("column").loc["recency_days", "status"] == "ok"
    # running again does not make the drifted version its own reference
    with pytest.raises(DriftBlockedError):
        run(lake, _params())
    accepted = run(lake, _params(on_block="warn"))
    assert accepted.status == "block" and accepted.rows["accepted"].all()
    # from now on the shifted version is the reference
    after = run(lake, _params())
    assert after.status == "unchanged"


def test_slices_are_compared_separately(lake):
    run(lake, _params())
    _write(lake, "gold.uplift_scores", _uplift(1500, shift=0.03, seed=2))
    res = run(lake, _params(on_block="warn"))
    rows = _rows(res)
    assert rows.loc[("gold.uplift_scores", "uplift", "action=coupon"), "status"] == "block"
    assert rows.loc[("gold.uplift_scores", "uplift", "action=email"), "status"] == "ok"


def test_a_null_share_change_warns(lake):
    run(lake, _params())
    _write(lake, "gold.customer_features", _features(3000, seed=0, null_share=0.2))
    row = _rows(run(lake, _params())).loc[("gold.customer_features", "monetary", "all")]
    assert row["null_rate_ref"] == 0 and row["null_rate_cur"] == pytest.approx(0.2, abs=0.03)
    assert row["status"] == "warn"


def test_a_missing_column_is_one_clear_error(lake):
    bad = DriftParams(checks=[{"table": "gold.customer_features", "columns": ["nope"]}])
    with pytest.raises(Exception, match=r"gold.customer_features has no column\(s\) \['nope'\]"):
        run(lake, bad)


def test_the_job_prints_one_summary_line_and_exits_2_when_blocked(lake, tmp_path, capsys):
    argv = job_argv(str(ROOT / "conf" / "test.yaml"), [
        f"lake_root={tmp_path / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"mlflow.artifact_root={tmp_path / 'artifacts'}"])
    capsys.readouterr()
    assert call_job(ROOT / "jobs" / "drift.py", argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("drift baseline: 5 columns x slices")
    _write(lake, "gold.customer_features", _features(3000, shift=1.0, seed=7))
    assert call_job(ROOT / "jobs" / "drift.py", argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("marketlab drift: drift past block_psi=0.25: gold.customer_features.monetary")
