"""Statistical tests of an A/B comparison, on sufficient statistics where possible.

Thin, typed wrappers around SciPy / statsmodels so that every number in the evaluation
table comes from a maintained implementation; the wrappers only fix conventions (effect =
treated minus control, two-sided tests, (1 - alpha) intervals) and return plain floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest


@dataclass(frozen=True)
class TestResult:
    """One treated-vs-control comparison.

    Attributes:
        effect: Treated minus control (absolute difference).
        ci_low: Lower bound of the (1 - alpha) interval of ``effect``.
        ci_high: Upper bound.
        p_value: Two-sided p-value of H0: effect = 0.
        value_treated: The metric in the treated group.
        value_control: The metric in the control group.
        test: Name of the test used.
    """

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    value_treated: float
    value_control: float
    test: str


def two_proportions(x_t: int, n_t: int, x_c: int, n_c: int, alpha: float = 0.05) -> TestResult:
    """Difference of two proportions: pooled two-proportion z-test and Newcombe interval.

    The z-test (``statsmodels.stats.proportion.proportions_ztest``) is the same test as
    the 2x2 chi-square without continuity correction; the interval is Newcombe's
    hybrid score interval (``confint_proportions_2indep(method="newcomb")``), which keeps
    its coverage for rare events such as conversions of under 1%.

    Args:
        x_t: Successes in the treated group.
        n_t: Size of the treated group.
        x_c: Successes in the control group.
        n_c: Size of the control group.
        alpha: Two-sided level.

    Returns:
        The comparison (``p_value`` is NaN when both groups have 0% or both 100%).

    Raises:
        ValueError: An empty group or successes outside ``[0, n]``.
    """
    for x, n, name in ((x_t, n_t, "treated"), (x_c, n_c, "control")):
        if n <= 0:
            raise ValueError(f"{name} group is empty")
        if not 0 <= x <= n:
            raise ValueError(f"{name} successes {x} outside [0, {n}]")
    p_t, p_c = x_t / n_t, x_c / n_c
    if (x_t + x_c) in (0, n_t + n_c):
        # No variance at all: the z statistic is undefined, the difference is exactly 0.
        p = float("nan")
    else:
        _, p = proportions_ztest([x_t, x_c], [n_t, n_c], alternative="two-sided")
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb", compare="diff", alpha=alpha)
    return TestResult(p_t - p_c, float(low), float(high), float(p), p_t, p_c, "two_proportion_z")


def chi_square_2x2(x_t: int, n_t: int, x_c: int, n_c: int) -> float:
    """p-value of the chi-square test of independence on the 2x2 table (no Yates correction).

    Equal to the two-proportion z-test's p-value; kept as the textbook cross-check.
    """
    table = np.array([[x_t, n_t - x_t], [x_c, n_c - x_c]])
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def welch_from_stats(
    mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int, alpha: float = 0.05
) -> TestResult:
    """Welch's unequal-variance t-test and interval of a difference in means, from moments.

    Works from per-group mean, sample variance (ddof=1) and size, so the groups can be
    summarised in Spark without collecting rows.

    Args:
        mean_t: Mean of the treated group.
        var_t: Sample variance (ddof=1) of the treated group.
        n_t: Size of the treated group (>= 2).
        mean_c: Mean of the control group.
        var_c: Sample variance of the control group.
        n_c: Size of the control group (>= 2).
        alpha: Two-sided level.

    Returns:
        The comparison; with both variances 0 the p-value is NaN and the interval a point.
    """
    if n_t < 2 or n_c < 2:
        raise ValueError(f"Welch's test needs >= 2 observations per group, got {n_t} and {n_c}")
    diff = mean_t - mean_c
    se2 = var_t / n_t + var_c / n_c
    if se2 <= 0:
        return TestResult(diff, diff, diff, float("nan"), mean_t, mean_c, "welch_t")
    res = stats.ttest_ind_from_stats(mean_t, math.sqrt(var_t), n_t, mean_c, math.sqrt(var_c), n_c, equal_var=False)
    # Welch-Satterthwaite degrees of freedom, as SciPy uses for the p-value.
    df = se2**2 / ((var_t / n_t) ** 2 / (n_t - 1) + (var_c / n_c) ** 2 / (n_c - 1))
    half = stats.t.ppf(1 - alpha / 2, df) * math.sqrt(se2)
    return TestResult(diff, diff - half, diff + half, float(res.pvalue), mean_t, mean_c, "welch_t")


def bootstrap_mean_diff(
    treated: Sequence[float] | np.ndarray,
    control: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 7,
) -> TestResult:
    """Bootstrap interval of a difference in means (``scipy.stats.bootstrap``, BCa).

    The p-value is Welch's (the bootstrap gives the interval; a permutation p-value on
    zero-inflated spend agrees with Welch at these sizes and costs far more).

    Args:
        treated: Per-customer values of the treated group.
        control: Per-customer values of the control group.
        alpha: Two-sided level.
        n_resamples: Bootstrap resamples.
        seed: Random seed (same seed, same interval).

    Returns:
        The comparison with a BCa interval.
    """
    t = np.asarray(treated, dtype=float)
    c = np.asarray(control, dtype=float)
    welch = welch_from_stats(t.mean(), t.var(ddof=1), t.size, c.mean(), c.var(ddof=1), c.size, alpha)
    if not np.isfinite(welch.p_value):
        return TestResult(welch.effect, welch.ci_low, welch.ci_high, welch.p_value, welch.value_treated,
                          welch.value_control, "bootstrap_bca")
    res = stats.bootstrap(
        (t, c),
        lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
        n_resamples=n_resamples,
        confidence_level=1 - alpha,
        method="BCa",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return TestResult(welch.effect, float(ci.low), float(ci.high), welch.p_value, welch.value_treated,
                      welch.value_control, "bootstrap_bca")


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch check.

    Attributes:
        chi2: Goodness-of-fit statistic.
        p_value: Its p-value.
        mismatch: Whether ``p_value < alpha``.
        observed: Arm -> observed count.
        expected: Arm -> expected count under the planned allocation.
    """

    chi2: float
    p_value: float
    mismatch: bool
    observed: dict[str, int]
    expected: dict[str, float]


def srm_check(counts: dict[str, int], allocation: dict[str, float] | None = None, alpha: float = 0.001) -> SrmResult:
    """Chi-square goodness-of-fit of the arms' sizes against the planned allocation.

    Args:
        counts: Arm -> number of customers.
        allocation: Arm -> planned share (normalised here); None or empty -> equal shares.
        alpha: Level below which a mismatch is flagged (0.001 is the usual SRM threshold,
            because a false alarm stops a valid experiment).

    Returns:
        The check.

    Raises:
        ValueError: Fewer than two arms, or arms in ``counts`` missing from ``allocation``.
    """
    arms = sorted(counts)
    if len(arms) < 2:
        raise ValueError(f"SRM check needs at least two arms, got {arms}")
    if allocation:
        missing = [a for a in arms if a not in allocation]
        if missing:
            raise ValueError(f"arms {missing} are in the data but not in expected_allocation {sorted(allocation)}")
        shares = np.array([allocation[a] for a in arms], dtype=float)
    else:
        shares = np.ones(len(arms))
    shares = shares / shares.sum()
    observed = np.array([counts[a] for a in arms], dtype=float)
    expected = shares * observed.sum()
    res = stats.chisquare(observed, expected)
    return SrmResult(float(res.statistic), float(res.pvalue), bool(res.pvalue < alpha),
                     {a: int(counts[a]) for a in arms}, dict(zip(arms, expected.tolist())))


def adjust_pvalues(p_values: Sequence[float], method: str = "holm", alpha: float = 0.05) -> np.ndarray:
    """Multiple-testing adjusted p-values (``statsmodels`` ``multipletests``); NaN stays NaN.

    Args:
        p_values: Raw p-values of one family of tests.
        method: Any ``multipletests`` method (``holm``, ``bonferroni``, ``fdr_bh`` ...).
        alpha: Family-wise level (only affects the reject flags, not the adjusted values).

    Returns:
        Adjusted p-values in input order.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=alpha, method=method)[1]
    return out
