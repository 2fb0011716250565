"""Drift statistics on binned counts and samples (pure numpy/SciPy; Spark does the counting).

The population stability index has no implementation in the locked libraries (SciPy,
pandas, scikit-learn); it is four lines over the binned counts. The two-sample
Kolmogorov-Smirnov test is SciPy's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats

# A bin empty on one side would make the PSI infinite; this share stands in for zero.
EPS = 1e-4


def quantile_edges(quantiles: Sequence[float]) -> list[float]:
    """Bucket splits from the reference's inner quantiles: -inf, unique quantiles, +inf.

    Repeated quantiles (a column with few distinct values) collapse into one edge, so a
    constant column has two bins, not ``bins`` empty ones.
    """
    inner = sorted({float(q) for q in quantiles if q is not None and np.isfinite(q)})
    return [-np.inf, *inner, np.inf]


def psi(reference: Sequence[float], current: Sequence[float], eps: float = EPS) -> float:
    """Population stability index of two histograms over the same bins.

    ``sum((c - r) * ln(c / r))`` over the bins' shares, each share floored at ``eps``.

    Raises:
        ValueError: Histograms of different lengths, or an empty one.
    """
    r = np.asarray(reference, dtype=float)
    c = np.asarray(current, dtype=float)
    if r.shape != c.shape or r.sum() <= 0 or c.sum() <= 0:
        raise ValueError(f"psi needs two non-empty histograms over the same bins: {r.shape} vs {c.shape}")
    r = np.maximum(r / r.sum(), eps)
    c = np.maximum(c / c.sum(), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def ks(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample KS statistic and p-value (SciPy); ``(nan, nan)`` when a side is empty."""
    if len(reference) == 0 or len(current) == 0:
        return float("nan"), float("nan")
    res = stats.ks_2samp(np.asarray(reference, dtype=float), np.asarray(current, dtype=float))
    return float(res.statistic), float(res.pvalue)


def verdict(psi_value: float | None, null_change: float, warn_psi: float, block_psi: float,
            max_null_rate_change: float) -> str:
    """``block``, ``warn`` or ``ok`` for one compared column (``None`` PSI: nothing to bin)."""
    if psi_value is not None and psi_value >= block_psi:
        return "block"
    if (psi_value is not None and psi_value >= warn_psi) or abs(null_change) > max_null_rate_change:
        return "warn"
    return "ok"
