"""Ranking and propensity metrics, cross-checked against a plain pandas/numpy computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketlab.sequence import evaluate as E


def _reference(scores: np.ndarray, targets, n_targets, k=10, k_recall=20) -> pd.DataFrame:
    """The textbook definitions, one customer at a time with pandas sorting."""
    rows = []
    for r, t in enumerate(targets):
        order = pd.Series(scores[r]).sort_values(ascending=False, kind="mergesort").index.to_numpy()
        rel = np.isin(order, t).astype(float)
        hits = np.flatnonzero(rel[:k])
        dcg = sum(1 / np.log2(i + 2) for i in hits)
        idcg = sum(1 / np.log2(i + 2) for i in range(min(n_targets[r], k)))
        ap = sum(rel[:i + 1].sum() / (i + 1) for i in hits) / min(n_targets[r], k)
        rows.append({"hr_at_10": float(len(hits) > 0), "ndcg_at_10": dcg / idcg, "map_at_10": ap,
                     "recall_at_20": rel[:k_recall].sum() / n_targets[r]})
    return pd.DataFrame(rows)


def test_ranking_metrics_match_the_reference():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(40, 60))
    scores[:, 0] = -np.inf
    targets = [np.unique(rng.integers(1, 60, size=rng.integers(1, 8))) for _ in range(40)]
    # Some customers also bought items outside the vocabulary: misses in every denominator.
    n_targets = [len(t) + int(rng.integers(0, 3)) for t in targets]
    got = E.ranking_metrics(scores, targets, n_targets)
    want = _reference(scores, targets, n_targets)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_ranking_metrics_by_hand():
    # Items 1..5 scored 5,4,3,2,1: ranking 1,2,3,4,5. Targets {2, 4}.
    s = np.array([[-np.inf, 5, 4, 3, 2, 1]])
    m = E.ranking_metrics(s, [np.array([2, 4])], k=10, k_recall=20).iloc[0]
    assert m["hr_at_10"] == 1.0 and m["recall_at_20"] == 1.0
    assert m["ndcg_at_10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3)))
    assert m["map_at_10"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    # a third target outside the vocabulary halves nothing but recall and the ideal DCG
    m3 = E.ranking_metrics(s, [np.array([2, 4])], n_targets=[3]).iloc[0]
    assert m3["recall_at_20"] == pytest.approx(2 / 3) and m3["ndcg_at_10"] < m["ndcg_at_10"]


def test_top_k_breaks_ties_by_index_and_never_returns_padding():
    s = np.array([[-np.inf, 1.0, 2.0, 2.0, 0.5]])
    assert E.top_k(s, 3).tolist() == [[2, 3, 1]]
    assert E.coverage(np.array([[-np.inf, 3, 2, 1], [-np.inf, 3, 1, 2]]), k=1) == pytest.approx(1 / 3)


def test_bootstrap_ci_covers_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small, big = rng.binomial(1, 0.3, 100), rng.binomial(1, 0.3, 10_000)
    m, lo, hi = E.bootstrap_mean(small, 500)
    assert lo < m < hi and m == pytest.approx(small.mean())
    _, blo, bhi = E.bootstrap_mean(big, 200)
    assert (bhi - blo) < (hi - lo) / 5
    g, glo, ghi = E.relative_gain(np.full(50, 0.2) + rng.normal(0, 0.01, 50), np.full(50, 0.1), 300)
    assert g == pytest.approx(1.0, abs=0.05) and glo > 0.9 and ghi < 1.1


def test_propensity_metrics_against_sklearn_and_by_hand():
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(3)
    p = rng.uniform(size=400)
    y = (rng.uniform(size=400) < p).astype(float)
    pm = E.propensity_metrics(y, p, 200)
    assert pm.auc[0] == pytest.approx(roc_auc_score(y, p)) and pm.auc[1] < pm.auc[0] < pm.auc[2]
    assert pm.log_loss[0] == pytest.approx(log_loss(y, p))
    assert pm.ece < 0.1  # calibrated by construction
    assert E.expected_calibration_error(np.array([1.0, 1.0, 0.0, 0.0]), np.array([0.05, 0.05, 0.95, 0.95])) == pytest.approx(0.95)
