"""Statistical wrappers against SciPy / statsmodels and published values."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from marketlab.evaluation import stats as S


def test_two_proportions_matches_chi_square_and_newcombe_published_interval():
    # Newcombe (1998), Stat. Med. 17, example (56/70 vs 48/80): method 10 interval 0.0524 .. 0.3339.
    r = S.two_proportions(56, 70, 48, 80)
    assert r.effect == pytest.approx(56 / 70 - 48 / 80)
    assert (round(r.ci_low, 4), round(r.ci_high, 4)) == (0.0524, 0.3339)
    chi = stats.chi2_contingency(np.array([[56, 14], [48, 32]]), correction=False)
    assert r.p_value == pytest.approx(chi.pvalue, rel=1e-10)
    assert r.p_value == pytest.approx(S.chi_square_2x2(56, 70, 48, 80), rel=1e-12)
    z, p = proportions_ztest([56, 48], [70, 80])
    assert r.p_value == pytest.approx(p, rel=1e-12)
    assert r.test == "two_proportion_z"


def test_two_proportions_degenerate_and_bad_input():
    r = S.two_proportions(0, 100, 0, 120)
    assert r.effect == 0.0 and np.isnan(r.p_value)
    with pytest.raises(ValueError, match="control group is empty"):
        S.two_proportions(1, 10, 0, 0)
    with pytest.raises(ValueError, match="outside"):
        S.two_proportions(11, 10, 0, 5)


def test_welch_from_stats_matches_scipy_on_rows():
    rng = np.random.default_rng(3)
    a = rng.exponential(2.0, 400) * (rng.random(400) < 0.1)  # zero-inflated like spend
    b = rng.exponential(1.5, 500) * (rng.random(500) < 0.1)
    r = S.welch_from_stats(a.mean(), a.var(ddof=1), a.size, b.mean(), b.var(ddof=1), b.size, alpha=0.1)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(confidence_level=0.9)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (r.ci_low, r.ci_high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert r.effect == pytest.approx(a.mean() - b.mean())


def test_bootstrap_is_scipy_bca_and_reproducible():
    rng = np.random.default_rng(5)
    a, b = rng.gamma(2.0, 3.0, 300), rng.gamma(2.0, 2.5, 250)
    r1 = S.bootstrap_mean_diff(a, b, n_resamples=999, seed=11)
    r2 = S.bootstrap_mean_diff(a, b, n_resamples=999, seed=11)
    assert (r1.ci_low, r1.ci_high) == (r2.ci_low, r2.ci_high)
    ref = stats.bootstrap((a, b), lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis), n_resamples=999,
                          method="BCa", vectorized=True, rng=np.random.default_rng(11)).confidence_interval
    assert (r1.ci_low, r1.ci_high) == (pytest.approx(ref.low, rel=1e-12), pytest.approx(ref.high, rel=1e-12))
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval()
    # Bootstrap and Welch intervals agree to within a few percent of their width here.
    assert abs(r1.ci_low - welch.low) < 0.1 * (welch.high - welch.low)
    assert r1.test == "bootstrap_bca"


def test_srm_detects_skewed_allocation_and_passes_balanced():
    skewed = S.srm_check({"A": 10_000, "B": 10_400}, alpha=0.001)
    ref = stats.chisquare([10_000, 10_400], [10_200, 10_200])
    assert skewed.p_value == pytest.approx(ref.pvalue, rel=1e-12) and skewed.p_value < 0.01
    # p = 0.005: not an SRM at the strict 0.001 level, an SRM at 0.01.
    assert skewed.mismatch is False
    assert S.srm_check({"A": 10_000, "B": 10_400}, alpha=0.01).mismatch is True
    # A 48/52 split of 50k is far beyond chance.
    assert S.srm_check({"A": 24_000, "B": 26_000}).mismatch is True
    balanced = S.srm_check({"A": 21_307, "B": 21_387, "C": 21_306})
    assert balanced.mismatch is False and balanced.p_value > 0.5
    # Planned 90/10 holdout allocation, observed as planned: no mismatch; read as 50/50: mismatch.
    assert S.srm_check({"t": 9_000, "c": 1_000}, {"t": 0.9, "c": 0.1}).mismatch is False
    assert S.srm_check({"t": 9_000, "c": 1_000}).mismatch is True
    with pytest.raises(ValueError, match="not in expected_allocation"):
        S.srm_check({"t": 10, "c": 10}, {"t": 1.0})


def test_adjust_pvalues_matches_multipletests_and_keeps_nan():
    p = [0.01, 0.04, np.nan, 0.03, 0.2]
    out = S.adjust_pvalues(p, "holm")
    ref = multipletests([0.01, 0.04, 0.03, 0.2], method="holm")[1]
    np.testing.assert_allclose(out[[0, 1, 3, 4]], ref)
    assert np.isnan(out[2])
    np.testing.assert_allclose(S.adjust_pvalues([0.01, 0.02], "bonferroni"), [0.02, 0.04])
