"""The served source is chosen on a validation split: ALS, a baseline, or the sequence scores.

A synthetic lake of 60 customers in 4 taste groups x 200 items over 120 days, and a
gold.sequence_scores table built to be either much better than ALS on the validation
window (it holds the items each customer buys there) or much worse (items nobody buys
after day 60).
"""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from conftest import make_settings, pass_gate
from marketlab.privacy import customer_key
from marketlab.recommend.evaluate import ALL_MODELS
from marketlab.recommend.run import run
from marketlab.recommend.select import Selection, gate_served, sequence_lists, winner
from marketlab.tables import Lake

SECRET = "select-test-secret-0123456789"
DAY0 = dt.datetime(2011, 1, 1)
SEQ_AS_OF = (DAY0 + dt.timedelta(days=60)).date()  # the sequence stage's validation cutoff
END_AS_OF = (DAY0 + dt.timedelta(days=120)).date()
N_ITEMS = 200
DEAD = [f"i{j:03d}" for j in range(180, 190)]  # sold only before day 60


def _lines(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(60):
        group = np.arange(45) + 45 * (c % 4)  # a taste group's 45 items: structure ALS and CF can learn
        for _ in range(12):
            day = int(rng.integers(0, 120))
            # the DEAD items leave the shop at day 60
            pool = np.concatenate([group, np.arange(180, 190)]) if day < 60 else group
            for item in rng.choice(pool, size=3, replace=False):
                rows.append((1000 + c, f"i{item:03d}", DAY0 + dt.timedelta(days=day, hours=10), int(rng.integers(1, 4))))
    return pd.DataFrame(rows, columns=["customer_id", "stock_code", "invoice_ts", "quantity"])


def _sequence_rows(lines: pd.DataFrame, good: bool) -> pd.DataFrame:
    """Rows of gold.sequence_scores: a validation slice (as_of day 60) and a serving slice (day 120)."""
    rows = []
    cut = pd.Timestamp(DAY0 + dt.timedelta(days=60))
    for cid, g in lines.groupby("customer_id"):
        before = set(g[g.invoice_ts < cut].stock_code)
        window = g[(g.invoice_ts >= cut) & (g.invoice_ts < cut + pd.Timedelta(days=29))]
        val = [i for i in dict.fromkeys(window.sort_values("invoice_ts").stock_code) if i not in before] if good else DEAD
        for r, item in enumerate(val[:10], 1):
            rows.append((cid, r, item, 10.0 - r, "transformer", SEQ_AS_OF))
        # serving: one already-bought item first (bought: exclude drops it), then unbought ones
        owned = sorted(set(g.stock_code))
        serve = [owned[0]] + [f"i{j:03d}" for j in range(N_ITEMS) if f"i{j:03d}" not in owned][:9]
        for r, item in enumerate(serve, 1):
            rows.append((cid, r, item, 10.0 - r, "transformer", END_AS_OF))
    return pd.DataFrame(rows, columns=["customer_id", "rank", "stock_code", "score", "source", "as_of"])


def _lake(spark, tmp, lines: pd.DataFrame, seq: pd.DataFrame | None):
    st = make_settings(tmp, ["jobs.recommend.als.max_iter=3", "jobs.recommend.als.rank=4",
                             "jobs.recommend.als.checkpoint_interval=2", "jobs.recommend.k_curve=[5, 10]",
                             "jobs.recommend.evaluate_random_hide=false", "jobs.recommend.cf_neighbours=10"])
    lake = Lake(spark, st)
    sl = spark.createDataFrame(lines).withColumn("quantity", F.col("quantity").cast("int"))
    lake.write(sl, "silver.order_lines")
    pass_gate(lake, "silver.order_lines")
    inter = (sl.groupBy("customer_id", F.col("stock_code").alias("item_id"))
             .agg(F.sum("quantity").cast("double").alias("strength"), F.count(F.lit(1)).alias("n_purchases"))
             .withColumn("customer_key", customer_key("customer_id", SECRET)).drop("customer_id"))
    lake.write(inter, "gold.interactions")
    words = ["red", "blue", "heart", "star", "lamp", "mug", "bag", "box"]
    items = spark.createDataFrame([(f"i{j:03d}", f"{words[j % 8]} {words[(j // 8) % 8]} thing") for j in range(N_ITEMS)],
                                  "item_id string, description string")
    lake.write(items, "gold.item_features")
    if seq is not None:
        lake.write(spark.createDataFrame(seq).withColumn("customer_key", customer_key("customer_id", SECRET))
                   .drop("customer_id").withColumn("rank", F.col("rank").cast("int")), "gold.sequence_scores")
    return lake, st.jobs.recommend


@pytest.fixture(scope="module")
def lines():
    return _lines()


@pytest.fixture(scope="module")
def runs(spark, lines, tmp_path_factory):
    """The run without sequence scores, with good ones and with bad ones."""
    out = {}
    for name, seq in (("none", None), ("good", _sequence_rows(lines, True)), ("bad", _sequence_rows(lines, False))):
        lake, p = _lake(spark, tmp_path_factory.mktemp(f"select_{name}"), lines, seq)
        res = run(lake, p, None, secret=SECRET)
        out[name] = (res, lake.read(p.output_table).toPandas(), lake)
    return out


def test_better_sequence_scores_on_validation_are_served(runs):
    res, recs, lake = runs["good"]
    sel = res.selection
    assert sel.served == "transformer" and res.served == "transformer"
    # the validation window starts at the slice's as_of, not at the end-of-data scores
    assert sel.sequence_as_of == SEQ_AS_OF and sel.start == dt.datetime.combine(SEQ_AS_OF, dt.time())
    assert sel.end == dt.datetime(2011, 3, 31)  # the temporal cutoff: last order day 119 - 30 days
    assert set(sel.results) == set(ALL_MODELS) | {"transformer"}
    m = sel.metric
    assert m == "map_at_10" and sel.results["transformer"][m] > 2 * max(sel.results[x][m] for x in ALL_MODELS)
    assert res.metrics[f"select.transformer.{m}"] == sel.results["transformer"][m]
    # served rows: the serving slice minus the bought item, in its order; k per customer
    # (the dropped bought item leaves rank 10 to the ALS + content fill)
    assert set(recs[recs["rank"] <= 9].source) == {"transformer"} and set(recs[recs["rank"] == 10].source) <= {"als", "content"}
    assert (recs.groupby("customer_key").size() == 10).all()
    seq = lake.read("gold.sequence_scores").where(F.col("as_of") == F.lit(END_AS_OF)).toPandas()
    key = sorted(recs.customer_key)[0]
    want = seq[seq.customer_key == key].sort_values("rank").stock_code.tolist()[1:]
    got = recs[recs.customer_key == key].sort_values("rank").item_id.tolist()
    assert got[:9] == want and recs[recs.customer_key == key]["rank"].tolist() == list(range(1, 11))
    bought = lake.read("gold.interactions").toPandas()
    assert recs.merge(bought, on=["customer_key", "item_id"]).empty


def test_worse_sequence_scores_are_not_served(runs):
    res, recs, _ = runs["bad"]
    sel = res.selection
    m = sel.metric
    assert "transformer" in sel.results and sel.results["transformer"][m] < 0.5 * sel.results["blend"][m]
    assert sel.served in ALL_MODELS and sel.served == winner(sel.results, "map_at_10")
    assert "transformer" not in set(recs.source)


def test_without_sequence_scores_the_choice_is_among_als_and_the_baselines(runs):
    res, recs, _ = runs["none"]
    sel = res.selection
    assert set(sel.results) == set(ALL_MODELS) and sel.sequence_as_of is None
    # the tuning split: [cutoff - validation_days, cutoff)
    assert (sel.start, sel.end) == (dt.datetime(2011, 3, 1), dt.datetime(2011, 3, 31))
    values = {m: r["map_at_10"] for m, r in sel.results.items()}
    assert values[sel.served] == max(values.values())
    assert set(recs.source) <= {"als", "content", "popular", "itemcf"}
    assert (recs.groupby("customer_key").size() == 10).all()
    # the good and bad runs score ALS and the baselines on a later window: different figures
    assert res.metrics["select.als.map_at_10"] != runs["good"][0].metrics["select.als.map_at_10"]


def test_end_of_data_scores_alone_are_never_evaluated(spark, lines, tmp_path_factory):
    # Only the serving slice, holding each customer's future purchases: it reads the
    # validation window, so it must not take part in the choice.
    seq = _sequence_rows(lines, True)
    leaky = seq[seq.as_of == SEQ_AS_OF].assign(as_of=END_AS_OF)
    lake, p = _lake(spark, tmp_path_factory.mktemp("select_leak"), lines, leaky)
    res = run(lake, p, None, secret=SECRET)
    assert set(res.selection.results) == set(ALL_MODELS) and res.served != "transformer"


def test_sequence_lists_drop_bought_items_and_fill_from_the_fallback(spark):
    seq = spark.createDataFrame([(0, 5, 1, 0.9, "vae"), (0, 3, 2, 0.8, "vae"), (0, 7, 3, 0.7, "vae")],
                                "user_idx int, item_idx int, rank int, score double, source string")
    fill = spark.createDataFrame([(0, [7, 1, 2], [3.0, 2.0, 1.0], ["als", "als", "content"]),
                                  (1, [4, 1, 2], [3.0, 2.0, 1.0], ["als", "als", "als"])],
                                 "user_idx int, items array<int>, scores array<double>, sources array<string>")
    bought = spark.createDataFrame([(0, [3]), (1, [4])], "user_idx int, train_items array<int>")
    got = {r.user_idx: r for r in sequence_lists(seq, fill, 4, bought).collect()}
    assert got[0]["items"] == [5, 7, 1, 2] and got[0]["sources"] == ["vae", "vae", "als", "content"]
    assert got[0]["scores"] == [0.9, 0.7, 2.0, 1.0]
    assert got[1]["items"] == [4, 1, 2]  # no sequence rows: the fallback list as it is


def test_gate_refuses_als_when_a_baseline_is_served(tmp_path):
    st = make_settings(tmp_path)
    mlflow.set_tracking_uri(st.tracking_uri())
    client = MlflowClient(st.tracking_uri())
    client.create_registered_model("m")
    v1 = client.create_model_version("m", str(tmp_path), run_id=None).version
    res = {"blend": {"map_at_10": 0.02}, "als": {"map_at_10": 0.01}, "popular": {"map_at_10": 0.03}}
    base = Selection("popular", "map_at_10", res, DAY0, DAY0, None)
    assert not gate_served("m", v1, base, "temporal.als.map_at_10", 0.5, 0.0)
    tags = client.get_model_version("m", v1).tags
    assert tags["gate.result"] == "rejected_baseline" and tags["gate.served"] == "popular"
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias("m", "champion")
    seq = Selection("vae", "map_at_10", {**res, "vae": {"map_at_10": 0.05}}, DAY0, DAY0, None)
    assert not gate_served("m", v1, seq, "temporal.als.map_at_10", 0.5, 0.0)
    assert client.get_model_version("m", v1).tags["gate.result"] == "rejected_sequence"
    als = Selection("blend", "map_at_10", res | {"popular": {"map_at_10": 0.0}}, DAY0, DAY0, None)
    assert gate_served("m", v1, als, "temporal.als.map_at_10", 0.5, 0.0)
    assert client.get_model_version_by_alias("m", "champion").version == v1
