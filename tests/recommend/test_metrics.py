"""Metrics, scorer and splits on small hand-made frames, cross-checked with pandas/numpy/sklearn."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from chispa import assert_df_equality
from sklearn.metrics import roc_auc_score

from marketlab.recommend import metrics as M
from marketlab.recommend.data import ITEM_IDX, USER_IDX
from marketlab.recommend.params import RecommendParams
from marketlab.recommend.score import ItemSide, apply_bought, score_users, top_k, user_auc, user_frame
from marketlab.recommend.split import random_hide, temporal_split

RECS = {0: [3, 1, 7, 2, 9], 1: [5, 6, 8, 0, 4], 2: [1, 2, 3, 4, 5]}
TRUTH = {0: [1, 2, 11], 1: [4], 2: [9, 10]}  # user 2 gets nothing right


def _pandas_metrics(recs: dict, truth: dict, k: int) -> dict[str, float]:
    """Independent textbook implementation (binary relevance)."""
    rows = []
    for u, labels in truth.items():
        rel = [1.0 if i in labels else 0.0 for i in recs.get(u, [])[:k]]
        hits = sum(rel)
        prec_at = [sum(rel[: j + 1]) / (j + 1) for j in range(len(rel))]
        ap = sum(p * r for p, r in zip(prec_at, rel)) / min(len(labels), k)
        dcg = sum(r / np.log2(j + 2) for j, r in enumerate(rel))
        idcg = sum(1.0 / np.log2(j + 2) for j in range(min(len(labels), k)))
        rows.append({"precision": hits / k, "recall": hits / len(labels), "map": ap, "ndcg": dcg / idcg})
    return pd.DataFrame(rows).mean().to_dict()


@pytest.fixture()
def frames(spark):
    recs = spark.createDataFrame([(u, its) for u, its in RECS.items()], f"{USER_IDX} int, items array<int>")
    test = spark.createDataFrame([(u, i) for u, its in TRUTH.items() for i in its], f"{USER_IDX} int, {ITEM_IDX} int")
    return recs, test


def test_ranking_metrics_match_pandas_and_hand_values(frames):
    recs, test = frames
    frame = M.ranking_frame(recs, test)
    got = M.ranking_metrics(frame, [1, 3, 5])
    for k in (1, 3, 5):
        want = _pandas_metrics(RECS, TRUTH, k)
        for name in ("precision", "recall", "map", "ndcg"):
            assert got[f"{name}_at_{k}"] == pytest.approx(want[name], abs=1e-12), (name, k)
    # Hand values at k=5: user0 hits 1 (rank 2) and 2 (rank 4); user1 hits 4 (rank 5).
    assert got["precision_at_5"] == pytest.approx((2 / 5 + 1 / 5 + 0) / 3)
    assert got["recall_at_5"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert got["map_at_5"] == pytest.approx(((1 / 2 + 2 / 4) / 3 + (1 / 5) / 1 + 0) / 3)


def test_ranking_metrics_equal_sparks_ranking_evaluator(spark):
    # Random lists of 0-12 items (some shorter than k, some empty), 1-6 held-out items.
    from pyspark.ml.evaluation import RankingEvaluator

    rng = np.random.default_rng(3)
    recs, test = [], []
    for u in range(60):
        recs.append((u, rng.permutation(30)[: rng.integers(0, 13)].tolist()))
        test.extend((u, int(i)) for i in rng.permutation(30)[: rng.integers(1, 7)])
    frame = M.ranking_frame(spark.createDataFrame(recs, f"{USER_IDX} int, items array<int>"),
                            spark.createDataFrame(test, f"{USER_IDX} int, {ITEM_IDX} int"))
    ks = [1, 5, 10, 20]
    got = M.ranking_metrics(frame, ks)
    names = {"precision": "precisionAtK", "recall": "recallAtK", "map": "meanAveragePrecisionAtK", "ndcg": "ndcgAtK"}
    for k in ks:
        for name, spark_name in names.items():
            want = RankingEvaluator(metricName=spark_name, k=k).evaluate(frame)
            assert got[f"{name}_at_{k}"] == pytest.approx(want, abs=1e-12), (name, k)


def test_users_without_recommendations_count_as_misses(spark, frames):
    recs, test = frames
    extra = test.unionByName(spark.createDataFrame([(3, 1)], f"{USER_IDX} int, {ITEM_IDX} int"))
    got = M.ranking_metrics(M.ranking_frame(recs, extra), [5])
    assert got["precision_at_5"] == pytest.approx((2 / 5 + 1 / 5) / 4)


def test_coverage_and_novelty(frames):
    recs, _ = frames
    assert M.coverage(recs, n_items=20, k=5) == pytest.approx(len({i for v in RECS.values() for i in v}) / 20)
    pop = np.arange(20, dtype=float)  # item i bought by i training users, 19 users
    info = np.log2(20) - np.log2(pop + 1)
    want = np.mean([info[i] for v in RECS.values() for i in v[:2]])
    assert M.novelty(recs, pop, n_users=19, k=2) == pytest.approx(want)


def test_user_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=40), 1)  # rounding creates ties
    train = np.array([0, 5, 9])
    test = np.array([1, 2, 3, 17, 5])  # item 5 is also in train: not a candidate
    cand = np.setdiff1d(np.arange(40), train)
    y = np.isin(cand, [1, 2, 3, 17]).astype(int)
    assert user_auc(scores, train, test) == pytest.approx(roc_auc_score(y, scores[cand]))
    assert np.isnan(user_auc(scores, train, np.array([], dtype=int)))


def test_top_k_orders_by_score_then_index_and_skips_excluded():
    scores = np.array([[0.5, 0.9, 0.9, 0.1, 0.7]])
    bought = sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 5))
    s = apply_bought(scores.copy(), bought, "exclude", 0.5)
    idx, top = top_k(s, 3)
    assert idx.tolist() == [[2, 4, 0]] and top.tolist() == [[0.9, 0.7, 0.5]]
    down = apply_bought(np.array([[0.5, 0.9, -0.2]]), sp.csr_matrix(np.array([[0, 1.0, 1.0]])), "downweight", 0.5)
    assert down.tolist() == [[0.5, 0.45, -0.4]]


@pytest.mark.parametrize("kind", ["continuous", "ties", "excluded"])
def test_top_k_block_search_equals_a_full_stable_sort(kind):
    # 2,000 items in blocks of 32 take the block search; heavy ties take the exact path.
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(50, 2000)).astype(np.float32)
    if kind == "ties":
        scores = np.round(scores, 0)
    if kind == "excluded":
        scores[:, rng.random(2000) < 0.995] = -np.inf  # ~10 finite items: fewer than k in some rows
    idx, top = top_k(scores.copy(), 12)
    want = np.argsort(-scores, axis=1, kind="stable")[:, :12]
    finite = np.isfinite(top)
    assert np.array_equal(np.where(finite, idx, -1), np.where(finite, want, -1))
    assert np.array_equal(top[finite], np.take_along_axis(scores, want, axis=1)[finite])


def test_score_users_excludes_bought_items_in_spark(spark):
    train = spark.createDataFrame([(0, 0, 3.0), (0, 1, 1.0), (1, 2, 1.0), (2, 0, 1.0), (2, 3, 2.0)],
                                  f"{USER_IDX} int, {ITEM_IDX} int, strength double")
    side = ItemSide(kind="popular", n_items=5, popularity=np.array([2.0, 1.0, 1.0, 1.0, 0.0]))
    out = score_users(user_frame(train), side, k=3).orderBy(USER_IDX).collect()
    assert [r["items"] for r in out] == [[2, 3, 4], [0, 1, 3], [1, 2, 4]]
    assert out[0]["sources"] == ["popular"] * 3


def test_random_hide_hides_20_percent_per_user_deterministically(spark):
    rows = [(u, i, 1.0) for u, n in [(0, 10), (1, 5), (2, 1), (3, 2)] for i in range(n)]
    df = spark.createDataFrame(rows, "user_id int, item_id int, strength double")
    train, test = random_hide(df, 0.2, seed=0, min_items=2)
    per_user = test.groupBy("user_id").count().toPandas().set_index("user_id")["count"].to_dict()
    assert per_user == {0: 2, 1: 1, 3: 1}  # round(0.2 n), >= 1; user 2 (1 item) keeps it
    assert train.count() + test.count() == len(rows)
    assert train.join(test, ["user_id", "item_id"]).count() == 0
    train2, test2 = random_hide(df.repartition(3), 0.2, seed=0, min_items=2)
    assert_df_equality(test.orderBy("user_id", "item_id"), test2.orderBy("user_id", "item_id"))
    _, test_other = random_hide(df, 0.2, seed=1, min_items=2)
    assert test_other.orderBy("user_id", "item_id").collect() != test.orderBy("user_id", "item_id").collect()


def test_temporal_split_trains_before_cutoff_and_tests_new_pairs(spark):
    t = dt.datetime
    ev = spark.createDataFrame([
        ("a", "x", t(2011, 1, 1), 2.0), ("a", "x", t(2011, 3, 1), 5.0),  # repeat after cutoff: not new
        ("a", "y", t(2011, 3, 2), 1.0), ("b", "y", t(2011, 1, 5), 1.0), ("c", "z", t(2011, 3, 3), 4.0),
        ("b", "z", t(2011, 5, 1), 1.0),  # after test_end
    ], "user_id string, item_id string, ts timestamp, strength double")
    train, test = temporal_split(ev, t(2011, 2, 1), t(2011, 4, 1))
    assert sorted(map(tuple, train.collect())) == [("a", "x", 2.0), ("b", "y", 1.0)]
    assert sorted(map(tuple, test.collect())) == [("a", "y", 1.0), ("c", "z", 4.0)]
    _, test_all = temporal_split(ev, t(2011, 2, 1), t(2011, 4, 1), new_only=False)
    assert sorted(map(tuple, test_all.collect())) == [("a", "x", 5.0), ("a", "y", 1.0), ("c", "z", 4.0)]


def test_params_reject_checkpoint_outside_lake():
    with pytest.raises(ValueError, match="checkpoint_subdir"):
        RecommendParams(checkpoint_subdir="/tmp/ckpt")
    with pytest.raises(ValueError, match="k_curve"):
        RecommendParams(k=7)
