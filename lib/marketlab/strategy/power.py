"""Statistical power of an off-policy comparison: can this log tell two policies apart?

A targeted policy is judged by the paired difference of its estimated value to a
reference policy (e-mail everyone with the best arm). Whether that difference can be
shown to be non-zero depends on two things the model does not control: the noise of the
reward (spend is zero for ~99 % of customers) and how much the targeting can gain at all.
This module measures both on a randomized log (pandas, per customer):

* :func:`minimal_detectable_difference` / :func:`required_sample_size`: the textbook
  two-sided z-test quantities for a standard error.
* :func:`segment_policy_gain`: the best arm per segment of the given columns, chosen on
  K-1 folds and evaluated (IPS, paired to the reference) on the held-out fold
  (cross-fitting), plus the same policy chosen and evaluated on all rows (an optimistic
  bound: it overfits). The per-customer difference terms give the SE and so the sample
  size at which the cross-fitted gain would be detectable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def minimal_detectable_difference(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference a two-sided test at ``alpha`` detects with probability ``power``.

    Args:
        se: Standard error of the estimated difference.
        alpha: Two-sided significance level (0.05: a 95 % interval excludes 0).
        power: Probability of detection.

    Returns:
        ``(z_{1-alpha/2} + z_{power}) * se``.
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must lie in (0, 1), got {alpha}, {power}")
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se)


def required_sample_size(n: int, se: float, effect: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Rows needed to detect ``effect`` when ``n`` rows give standard error ``se`` (SE ~ 1/sqrt(n)).

    Returns:
        ``n * (MDE(se) / effect)^2``; ``inf`` when ``effect <= 0`` (nothing to detect).
    """
    if effect <= 0:
        return float("inf")
    return float(n * (minimal_detectable_difference(se, alpha, power) / effect) ** 2)


@dataclass
class SegmentGain:
    """Gain of the best-arm-per-segment policy over the reference.

    Attributes:
        keys: Segment columns.
        n_segments: Segments seen in the log.
        gain: Cross-fitted IPS value difference per customer (policy - reference).
        se: Its standard error (per-customer difference terms).
        lo: Lower end of the 95 % normal interval.
        hi: Upper end.
        share_changed: Share of customers the policy treats differently from the reference.
        insample_gain: The policy chosen and evaluated on all rows (optimistic bound).
        mde: Minimal detectable difference at this log's size (alpha 0.05, power 0.8).
        n_needed: Customers needed to detect the cross-fitted ``gain`` (``inf`` when it
            is not positive); the in-sample gain is no basis for it (it is mostly overfit).
    """

    keys: list[str]
    n_segments: int
    gain: float
    se: float
    lo: float
    hi: float
    share_changed: float
    insample_gain: float
    mde: float
    n_needed: float


def _best_arm(train: pd.DataFrame, keys: list[str], action_col: str, reward_col: str, min_count: int) -> pd.Series:
    """Arm with the highest mean reward per segment (randomized log: an unbiased arm mean)."""
    g = train.groupby([*keys, action_col], observed=True)[reward_col].agg(["mean", "size"])
    g = g[g["size"] >= min_count]["mean"].unstack(action_col)
    return g.idxmax(axis=1) if len(g.columns) else pd.Series(dtype=object)


def _choose(df: pd.DataFrame, best: pd.Series, keys: list[str], reference: str) -> np.ndarray:
    seg = pd.MultiIndex.from_frame(df[keys]) if len(keys) > 1 else pd.Index(df[keys[0]])
    chosen = pd.Series(best).reindex(seg).to_numpy(dtype=object)
    return np.where(pd.isna(chosen), reference, chosen)


def _diff_terms(df: pd.DataFrame, chosen: np.ndarray, action_col: str, reward_col: str, reference: str,
                propensity: dict[str, float]) -> np.ndarray:
    """Per-customer IPS terms of V(policy) - V(reference)."""
    a = df[action_col].to_numpy(dtype=object)
    r = df[reward_col].to_numpy(np.float64)
    p = df[action_col].map(propensity).to_numpy(np.float64)
    return ((a == chosen).astype(float) - (a == reference).astype(float)) / p * r


def segment_policy_gain(log: pd.DataFrame, keys: list[str], reference: str, action_col: str = "action",
                        reward_col: str = "reward", folds: int = 5, seed: int = 42, min_count: int = 30,
                        alpha: float = 0.05, power: float = 0.8) -> SegmentGain:
    """How much the best arm per segment gains over ``reference``, cross-fitted.

    Args:
        log: Randomized log, one row per customer: ``keys``, ``action_col``, ``reward_col``.
        keys: Segment columns.
        reference: Action of the reference policy (everyone gets it).
        action_col: Logged action.
        reward_col: Reward (e.g. margin x spend - contact cost).
        folds: Cross-fitting folds.
        seed: Fold assignment seed.
        min_count: A segment x arm needs this many training rows to be chosen; segments
            without it keep the reference.
        alpha: Significance level of the MDE.
        power: Power of the MDE.

    Returns:
        The :class:`SegmentGain`.

    Raises:
        ValueError: Empty log, fewer than 2 folds, or the reference never logged.
    """
    if log.empty:
        raise ValueError("the log is empty")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    propensity = log[action_col].value_counts(normalize=True).to_dict()
    if reference not in propensity:
        raise ValueError(f"reference action '{reference}' never logged")
    fold = np.random.default_rng(seed).integers(0, folds, len(log))
    chosen = np.empty(len(log), dtype=object)
    for k in range(folds):
        test = fold == k
        best = _best_arm(log[~test], keys, action_col, reward_col, min_count)
        chosen[test] = _choose(log[test], best, keys, reference)
    d = _diff_terms(log, chosen, action_col, reward_col, reference, propensity)
    n = len(d)
    gain, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(n))
    z = float(stats.norm.ppf(1 - alpha / 2))
    best_all = _best_arm(log, keys, action_col, reward_col, min_count)
    d_all = _diff_terms(log, _choose(log, best_all, keys, reference), action_col, reward_col, reference, propensity)
    insample = float(d_all.mean())
    return SegmentGain(keys=list(keys), n_segments=int(log.groupby(keys, observed=True).ngroups), gain=gain, se=se,
                       lo=gain - z * se, hi=gain + z * se, share_changed=float(np.mean(chosen != reference)),
                       insample_gain=insample, mde=minimal_detectable_difference(se, alpha, power),
                       n_needed=required_sample_size(n, se, gain, alpha, power))
