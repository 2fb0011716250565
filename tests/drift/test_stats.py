"""Drift statistics: PSI against a hand computation, KS against SciPy's own, verdict order."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from marketlab.drift import stats


def test_psi_matches_the_formula_by_hand():
    ref, cur = [50, 30, 20], [30, 30, 40]
    r, c = np.array(ref) / 100, np.array(cur) / 100
    by_hand = sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c))
    assert stats.psi(ref, cur) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.2408, abs=1e-4)
    assert stats.psi(ref, ref) == 0.0


def test_an_empty_bin_gives_a_large_finite_psi():
    value = stats.psi([100, 0], [50, 50])
    assert math.isfinite(value) and value > 2


def test_psi_refuses_mismatched_or_empty_histograms():
    with pytest.raises(ValueError, match="same bins"):
        stats.psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-empty"):
        stats.psi([0, 0], [1, 1])


def test_quantile_edges_collapse_repeated_quantiles():
    assert stats.quantile_edges([1.0, 1.0, 2.0, None, float("nan")]) == [-np.inf, 1.0, 2.0, np.inf]


def test_ks_is_scipys():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 500), rng.normal(0.3, 1, 400)
    expected = sps.ks_2samp(a, b)
    assert stats.ks(a, b) == pytest.approx((expected.statistic, expected.pvalue))
    assert all(math.isnan(v) for v in stats.ks([], b))


@pytest.mark.parametrize("psi_value,null_change,expected", [
    (0.3, 0.0, "block"), (0.25, 0.0, "block"), (0.12, 0.0, "warn"), (0.01, 0.2, "warn"),
    (0.01, -0.2, "warn"), (0.01, 0.01, "ok"), (None, 0.0, "ok"), (0.3, 0.5, "block")])
def test_verdict(psi_value, null_change, expected):
    assert stats.verdict(psi_value, null_change, 0.1, 0.25, 0.05) == expected
