"""Honest evaluation: full ranking over every item, bootstrap CIs over customers, baselines.

No sampled negatives: a customer's score row covers the whole vocabulary, and target items
the vocabulary lacks (first sold after the training window) stay in the denominators, so
they count as misses for every model alike. Relevance is binary (bought in the window).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

RANK_METRICS = ("hr_at_10", "ndcg_at_10", "map_at_10", "recall_at_20")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's ``k`` highest scores, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def ranking_metrics(scores: np.ndarray, targets: Sequence[np.ndarray], n_targets: Sequence[int] | None = None,
                    k: int = 10, k_recall: int = 20) -> pd.DataFrame:
    """Per-customer HR@k, nDCG@k, MAP@k and recall@k_recall from full score rows.

    Args:
        scores: ``(n, n_items)``; the padding column should be ``-inf``.
        targets: Per customer, the indices of the items bought in the window.
        n_targets: Per customer, the number of distinct items bought in the window,
            including those outside the vocabulary (default: ``len(targets[i])``).
        k: Cut-off of HR, nDCG and MAP.
        k_recall: Cut-off of recall.

    Returns:
        One row per customer: ``hr_at_10, ndcg_at_10, map_at_10, recall_at_20`` (names
        keep 10/20 whatever ``k``; the job uses the defaults).
    """
    n_t = np.asarray([len(t) for t in targets] if n_targets is None else n_targets, dtype=np.float64)
    top = top_k(scores, max(k, k_recall))
    # Narrower catalogues than k leave the ranks after the last item empty (no hit).
    hits = np.zeros((len(top), max(k, k_recall)), dtype=bool)
    for r, t in enumerate(targets):
        hits[r, :top.shape[1]] = np.isin(top[r], t)
    hk = hits[:, :k]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.array([discount[:int(min(m, k))].sum() for m in n_t])
    cum = np.cumsum(hk, axis=1)
    prec = cum / np.arange(1, k + 1)
    denom = np.minimum(n_t, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({
            "hr_at_10": hk.any(axis=1).astype(float),
            "ndcg_at_10": np.where(ideal > 0, (hk * discount).sum(axis=1) / ideal, 0.0),
            "map_at_10": np.where(denom > 0, (prec * hk).sum(axis=1) / denom, 0.0),
            "recall_at_20": np.where(n_t > 0, hits[:, :k_recall].sum(axis=1) / n_t, 0.0),
        })
    return out


def coverage(scores: np.ndarray, k: int = 10) -> float:
    """Share of the vocabulary (padding excluded) in at least one customer's top ``k``."""
    top = top_k(scores, k)
    return float(len(np.unique(top[top > 0])) / max(scores.shape[1] - 1, 1))


def bootstrap_mean(values: np.ndarray, n_boot: int = 500, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile bootstrap CI over customers."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))
    means = v[idx].mean(axis=1)
    a = (1 - level) / 2
    return float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def relative_gain(a: np.ndarray, b: np.ndarray, n_boot: int = 500, level: float = 0.95, seed: int = 0
                  ) -> tuple[float, float, float]:
    """``mean(a) / mean(b) - 1`` with a paired bootstrap CI (the same customers resampled)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) == 0 or b.mean() == 0:
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    with np.errstate(invalid="ignore", divide="ignore"):
        gains = a[idx].mean(axis=1) / b[idx].mean(axis=1) - 1
    q = (1 - level) / 2
    gains = gains[np.isfinite(gains)]
    return float(a.mean() / b.mean() - 1), float(np.quantile(gains, q)), float(np.quantile(gains, 1 - q))


def summarize(per_customer: dict[str, pd.DataFrame], scores_top: dict[str, float], n_boot: int, level: float,
              seed: int = 0) -> pd.DataFrame:
    """One row per model: each ranking metric with its CI, and coverage.

    Args:
        per_customer: Model -> :func:`ranking_metrics` of the same customers.
        scores_top: Model -> coverage.
    """
    rows = []
    for model, m in per_customer.items():
        row = {"model": model, "n_customers": len(m), "coverage": scores_top.get(model, float("nan"))}
        for name in RANK_METRICS:
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = bootstrap_mean(m[name].to_numpy(), n_boot, level, seed)
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class PropensityMetrics:
    """AUC, log loss and calibration error of a purchase probability, with CIs."""

    auc: tuple[float, float, float]
    log_loss: tuple[float, float, float]
    ece: float
    base_rate: float
    n: int

    def flat(self, prefix: str) -> dict[str, float]:
        out = {f"{prefix}.ece": self.ece, f"{prefix}.base_rate": self.base_rate, f"{prefix}.n": float(self.n)}
        for name, (v, lo, hi) in (("auc", self.auc), ("log_loss", self.log_loss)):
            out.update({f"{prefix}.{name}": v, f"{prefix}.{name}.ci_low": lo, f"{prefix}.{name}.ci_high": hi})
        return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Share-weighted mean |observed rate - mean prediction| over equal-width bins."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            err += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(err)


def propensity_metrics(y: np.ndarray, p: np.ndarray, n_boot: int = 500, level: float = 0.95, seed: int = 0
                       ) -> PropensityMetrics:
    """AUC and log loss with bootstrap CIs (over customers), and the calibration error."""
    from sklearn.metrics import log_loss, roc_auc_score

    y, p = np.asarray(y, np.float64), np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    rng = np.random.default_rng(seed)
    aucs, lls = [], []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            aucs.append(roc_auc_score(y[i], p[i]))
            lls.append(log_loss(y[i], p[i], labels=[0, 1]))
    q = (1 - level) / 2
    two = 0 < y.sum() < len(y)
    auc = roc_auc_score(y, p) if two else float("nan")
    ll = log_loss(y, p, labels=[0, 1]) if len(y) else float("nan")
    ci = lambda v: (float(np.quantile(v, q)), float(np.quantile(v, 1 - q))) if v else (float("nan"), float("nan"))  # noqa: E731
    return PropensityMetrics(auc=(float(auc), *ci(aucs)), log_loss=(float(ll), *ci(lls)),
                             ece=expected_calibration_error(y, p), base_rate=float(y.mean()) if len(y) else float("nan"),
                             n=len(y))
