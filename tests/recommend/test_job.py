"""The recommend job end to end on a small real-data lake: table, idempotency, MLflow gate."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from conftest import ROOT, make_settings, pass_gate
from marketlab.recommend.select import ALS_SOURCES
from marketlab.runtime import JobContext
from marketlab.tables import Lake


def _job():
    spec = importlib.util.spec_from_file_location("recommend_job", ROOT / "jobs" / "recommend.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def small_lake(spark, retail_frames, tmp_path_factory):
    """Gold/silver inputs for 120 customers (every 30th id) written to a lake of its own."""
    events, interactions, items = retail_frames
    keep = interactions.select("user_id").distinct().where(F.abs(F.hash("user_id")) % 30 == 0)
    st = make_settings(tmp_path_factory.mktemp("rec_job"), [
        # Few, short ALS fits: the job fits ALS for every trial, each evaluation and the final
        # model, twice (rerun); what is tested is the job's plumbing, not the model's quality.
        "jobs.recommend.tuning.enabled=true", "jobs.recommend.tuning.n_trials=2", "jobs.recommend.als.max_iter=3", "jobs.recommend.tuning.max_iter=[2, 3]",
        "jobs.recommend.tuning.rank=[4, 8]", "jobs.recommend.als.checkpoint_interval=2",
        "jobs.recommend.k_curve=[5, 10]", "jobs.recommend.temporal_test_days=60",
        "jobs.recommend.evaluate_random_hide=true",  # off in the base conf; its metrics are checked here
    ])
    lake = Lake(spark, st)
    inter = interactions.join(keep, "user_id").withColumnRenamed("user_id", "customer_key")
    lake.write(inter.withColumn("n_purchases", F.lit(1).cast("long")), "gold.interactions")
    lake.write(items, "gold.item_features")
    segs = inter.select("customer_key").distinct().withColumn("segment", (F.abs(F.hash("customer_key")) % 3).cast("int"))
    # Two customers known only from segments: the cold-start path.
    cold = spark.createDataFrame([("cold-1", 0), ("cold-2", 1)], "customer_key string, segment int")
    lake.write(segs.unionByName(cold).withColumn("segment_name", F.concat(F.lit("s"), F.col("segment"))), "gold.segments")
    lines = events.join(keep, "user_id").select(
        F.col("user_id").cast("long").alias("customer_id"), F.col("item_id").alias("stock_code"),
        F.col("ts").alias("invoice_ts"), F.col("strength").cast("int").alias("quantity"))
    lake.write(lines, "silver.order_lines")
    pass_gate(lake, "silver.order_lines")
    return st, inter.count(), inter.select("customer_key").distinct().count()


def test_job_writes_recommendations_and_gates_the_champion(spark, small_lake):
    st, n_pairs, n_customers = small_lake
    job = _job()
    ctx = JobContext("recommend", st, spark, Lake(spark, st), argparse.Namespace())
    job.main(ctx)
    lake = Lake(spark, st)
    recs = lake.read("gold.recommendations")
    first = recs.orderBy("customer_key", "rank").collect()
    k = st.jobs.recommend.k
    counts = recs.groupBy("customer_key").count()
    assert counts.count() == n_customers + 2
    assert counts.where(F.col("count") != k).count() == 0
    # Already-bought items never come back (bought: exclude).
    inter = lake.read("gold.interactions")
    assert recs.join(inter, ["customer_key", "item_id"]).count() == 0
    assert {r["source"] for r in first} <= {"als", "content", "popular", "itemcf"}
    assert {r["source"] for r in first if r["customer_key"].startswith("cold-")} == {"popular"}
    ranks = recs.where("customer_key = 'cold-1'").orderBy("rank").select("rank").collect()
    assert [r[0] for r in ranks] == list(range(1, k + 1))
    ckpt = Path(st.resolve(st.lake_root)) / st.jobs.recommend.checkpoint_subdir
    assert ckpt.is_dir()

    client = MlflowClient(st.tracking_uri())
    mlflow.set_tracking_uri(st.tracking_uri())
    name = st.jobs.recommend.model_name
    run = client.search_runs([client.get_experiment_by_name(st.mlflow.experiment).experiment_id],
                             "tags.`marketlab.job` = 'recommend'")[0]
    m = run.data.metrics
    for key in ("val_map_at_10", "temporal.als.map_at_10", "temporal.popular.auc", "hide.als.auc", "hide.itemcf.ndcg_at_5",
                "select.blend.map_at_10", "select.popular.map_at_10", "select.itemcf.map_at_10"):
        assert key in m, key
    # no gold.sequence_scores in this lake: the served source is the best of ALS and the baselines
    served = run.data.tags["recommend.served"]
    sel = {x: m[f"select.{x}.map_at_10"] for x in ("popular", "itemcf", "content", "als", "blend")}
    assert served == run.data.params["select.served"] and sel[served] == max(sel.values())
    assert run.data.params["select.sequence_as_of"] == "None"
    # the gate follows the served source: ALS is champion only when an ALS source won
    als_won = served in ALS_SOURCES
    warm = {r["source"] for r in first if not r["customer_key"].startswith("cold-")}
    assert ("als" in warm) == als_won and (served in warm or als_won)
    v1 = client.get_model_version(name, "1").tags
    if als_won:
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    else:
        assert (v1["gate.result"], v1["gate.served"]) == ("rejected_baseline", served)
        with pytest.raises(mlflow.exceptions.MlflowException, match="alias champion not found"):
            client.get_model_version_by_alias(name, "champion")
    assert 0.0 <= m["hide.als.auc"] <= 1.0
    assert run.data.params["read.gold.interactions"] == "0"
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert arts == {"plots/temporal_metric_at_k.png", "plots/hide_metric_at_k.png"}

    # Rerun: same table content, a new model version that the gate does not promote
    # (same temporal metric, margin > 0).
    job.main(JobContext("recommend", st, spark, Lake(spark, st), argparse.Namespace()))
    second = Lake(spark, st).read("gold.recommendations").orderBy("customer_key", "rank").collect()
    assert [(r["customer_key"], r["item_id"], r["rank"]) for r in second] == \
        [(r["customer_key"], r["item_id"], r["rank"]) for r in first]
    v2 = client.get_model_version(name, "2").tags
    if als_won:
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
        assert v2["gate.result"] == "rejected"
        assert float(v2["gate.temporal.als.map_at_10"]) == pytest.approx(m["temporal.als.map_at_10"])
    else:
        assert (v2["gate.result"], v2["gate.served"]) == ("rejected_baseline", served)
