"""The campaign stage on the real customers: the waves the pipeline ran, and a real export fed by conf only."""

from __future__ import annotations

import glob
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.config import load_settings
from marketlab.errors import ConfError
from marketlab.tables import Lake

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_pipeline_waves_reach_the_shops_customers_and_are_measured(spark, pipeline_lake):
    settings, _, _, _ = pipeline_lake
    lake = Lake(spark, settings)
    p = settings.jobs.campaign
    waves = lake.read(p.waves_table).toPandas()
    customers = lake.read("silver.order_lines").where(F.col(C.DATE) < F.lit(settings.jobs.simulator.wave_date)) \
        .where(F.col(C.CUSTOMER_ID).isNotNull()).select(C.CUSTOMER_ID).distinct().count()
    assert sorted(waves["wave"].unique()) == list(range(p.waves))
    assert (waves.groupby("wave").size() == customers).all()  # every active customer, every wave
    w0, w1 = waves[waves.wave == 0], waves[waves.wave == 1]
    assert set(w0["design"]) == {"randomized"} and not w0["holdout"].any()
    share = w0["arm"].value_counts(normalize=True)
    assert set(share.index) == {a.name for a in p.actions} and (share - 0.25).abs().max() < 0.04
    emails = w1[w1.arm != p.no_contact]
    assert abs(emails["holdout"].mean() - p.holdout_fraction) < 0.03
    assert (w1[w1.arm != p.no_contact]["featured_items"].str.count(";") == p.featured_k - 1).mean() > 0.95
    # The export leaves the lake with the shop's ids; gold keeps keys only.
    assert "customer_id" not in waves.columns
    export = pd.concat(pd.read_csv(f) for f in glob.glob(f"{lake.path(p.waves_table)}_csv/shop_w1/part-*.csv"))
    assert len(export) == customers and export["customer_id"].between(12_000, 19_000).all()
    # Every response row accounted for: silver + rejects = bronze.
    bronze = lake.read("bronze.campaign_responses").count()
    assert bronze == lake.read(p.responses_table).count() + lake.read(p.rejects_table).count() == p.waves * customers
    res = lake.read(p.results_table).toPandas()
    t1 = res[res.wave == 1].set_index("arm")
    assert set(t1.index) == set(p.email_actions)
    ok = t1[t1.status == "ok"]
    assert len(ok) >= 1 and np.isfinite(ok[["measured", "measured_low", "measured_high", "predicted_low",
                                            "predicted_high"]].to_numpy()).all()
    assert (ok["predicted_low"] <= ok["predicted"]).all() and (ok["predicted"] <= ok["predicted_high"]).all()
    plans = lake.read(p.plans_table).toPandas()
    truth = plans[plans.wave == 1].set_index("policy")["true"]
    # The simulator's truth of the plan and its baselines (regret is exact).
    assert {"strategy", "oracle", "random", "all_email", "all_no_contact"} <= set(truth.dropna().index)
    assert truth["oracle"] >= truth.drop("oracle").max() - 1e-6
    assert truth["all_no_contact"] == 0.0
    # One MLflow child run per wave; the true total profit of the wave as sent is logged
    # (incremental profit + what no contact would have earned: larger than the increment).
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.tracking_uri())
    exp = client.get_experiment_by_name(settings.mlflow.experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`marketlab.run_kind` = 'effect_evaluation' "
                                                   "and tags.`marketlab.campaign_id` = 'shop_w1'")
    assert len(runs) == 1
    m = runs[0].data.metrics
    assert m["true.total_profit_sent"] > max(m["true.strategy"], 0.0)


def test_a_hand_written_response_export_loads_by_conf_only(spark, pipeline_lake, tmp_path):
    """Production mode: another platform's column names, mapped in conf; bad rows quarantined; next wave planned."""
    from marketlab.campaign.run import run
    from marketlab.privacy import resolve_secret

    settings, _, overrides, root = pipeline_lake
    copy = tmp_path / "lake"
    shutil.copytree(root / "lake", copy, ignore=shutil.ignore_patterns("campaign_responses", "_campaign_rejects",
                                                                        "campaign_ingest_log", "_exchange"))
    if (root / ".marketlab-secret").exists():  # the lake's local secret sits beside it (same keys)
        shutil.copy(root / ".marketlab-secret", tmp_path)
    p = settings.jobs.campaign
    w0 = pd.concat(pd.read_csv(f, dtype={"featured_items": str}, keep_default_na=False)
                   for f in glob.glob(f"{root}/lake/gold/campaign_waves_csv/shop_w0/part-*.csv"))
    rng = np.random.default_rng(0)
    ordered = rng.random(len(w0)) < 0.3
    out = pd.DataFrame({"Campaign": w0["campaign_id"], "Recipient": w0["customer_id"], "Variant": w0["arm"],
                        "Control": w0["holdout"].astype(str).str.lower(),
                        "SendTime": pd.to_datetime(w0["sent_at"]).dt.strftime("%d/%m/%Y %H:%M"),
                        "Purchased": np.where(ordered, "yes", "no"),
                        "Revenue": np.where(ordered, rng.gamma(2, 50, len(w0)).round(2), 0.0)})
    bad = pd.DataFrame({"Campaign": ["shop_w0", "other_campaign", "shop_w0"],
                        "Recipient": [w0["customer_id"].iloc[0], w0["customer_id"].iloc[1], 99999999],
                        "Variant": [w0["arm"].iloc[0], w0["arm"].iloc[1], "email"], "Control": ["false"] * 3,
                        "SendTime": ["01/11/2011 09:00"] * 3, "Purchased": ["no"] * 3, "Revenue": [0.0] * 3})
    folder = tmp_path / "platform_exports"
    folder.mkdir()
    pd.concat([out, bad]).to_csv(folder / "export_2011-11.csv", index=False)
    mapping = {"campaign_id": "Campaign", "customer_id": "Recipient", "arm": "Variant", "holdout": "Control",
               "sent_at": "SendTime", "ordered": "Purchased", "revenue": "Revenue"}
    st = load_settings(ROOT / "conf" / "test.yaml", [
        *[o for o in overrides if not o.startswith("lake_root=")], f"lake_root={copy}",
        f"sources.shop_campaign.path={folder}", "sources.shop_campaign.columns=" + str(mapping).replace("'", '"'),
        "sources.shop_campaign.timestamp_format=dd/MM/yyyy HH:mm",
        "jobs.campaign.simulate=false", "jobs.campaign.waves_table=gold.campaign_waves",
        "jobs.campaign.clv_weight=1.0"])  # the next wave's objective counts each order's ΔCLV
    lake = Lake(spark, st)
    # Only wave 0 happened on this platform.
    lake.write(lake.read(p.waves_table).where("wave = 0"), p.waves_table)
    with pytest.raises(ConfError, match="clv_weight > 0 needs the value parameters"):
        run(lake, st.jobs.campaign, st.jobs.recommend, st.jobs.simulator, resolve_secret(st))
    res = run(lake, st.jobs.campaign, st.jobs.recommend, st.jobs.simulator, resolve_secret(st), value=st.jobs.value)
    bronze = lake.read("bronze.campaign_responses").count()
    rejects = {r[C.REASON]: r["count"] for r in lake.read(p.rejects_table).groupBy(C.REASON).count().collect()}
    assert bronze == len(w0) + 3
    assert rejects == {"duplicate_response": 1, "unknown_campaign": 1, "not_in_export": 1}
    assert lake.read(p.responses_table).count() == len(w0)
    # Measured wave 0 (randomized: each arm against no contact), then wave 1 planned and exported.
    assert set(res.results["wave"]) == {0} and (res.results["status"] == "ok").all()
    assert [w.wave for w in res.waves] == [1]
    w1 = lake.read(p.waves_table).where("wave = 1").count()
    assert w1 == len(w0) and not math.isnan(res.waves[0].ridge_effect)
    assert glob.glob(f"{copy}/gold/campaign_waves_csv/shop_w1/part-*.csv")
