"""Power of off-policy comparisons: MDE / sample size formulas and the cross-fitted segment gain."""

import numpy as np
import pandas as pd
import pytest

from marketlab.strategy.power import minimal_detectable_difference, required_sample_size, segment_policy_gain


def test_mde_and_sample_size_formulas():
    # z_0.975 + z_0.8 = 1.959964 + 0.841621
    assert minimal_detectable_difference(1.0) == pytest.approx(2.801585, abs=1e-6)
    assert minimal_detectable_difference(0.5, alpha=0.1, power=0.5) == pytest.approx(0.5 * 1.644854, abs=1e-6)
    # halving the effect quadruples the sample
    assert required_sample_size(100, 0.1, 0.2801585) == pytest.approx(100.0)
    assert required_sample_size(100, 0.1, 0.1400792) == pytest.approx(400.0, rel=1e-5)
    assert required_sample_size(100, 0.1, 0.0) == float("inf")
    with pytest.raises(ValueError, match="alpha and power"):
        minimal_detectable_difference(1.0, alpha=0.0)


def _log(n: int, rng, lift_b_in_g1: float) -> pd.DataFrame:
    """Randomized 3-arm log; arm A is best in segment 0, B beats A by ``lift_b_in_g1`` in segment 1."""
    g = rng.integers(0, 2, n)
    a = rng.choice(["none", "A", "B"], n)
    mean = np.select([a == "A", (a == "B") & (g == 1), a == "B"], [1.0, 1.0 + lift_b_in_g1, 0.5], 0.0)
    return pd.DataFrame({"g": g, "action": a, "reward": mean + rng.normal(0, 2.0, n)})


def test_segment_gain_finds_real_heterogeneity():
    log = _log(30_000, np.random.default_rng(1), lift_b_in_g1=0.6)
    res = segment_policy_gain(log, ["g"], reference="A")
    # B in segment 1 (half the customers), A in segment 0: true gain 0.5 x 0.6
    assert res.share_changed == pytest.approx(0.5, abs=0.02)
    assert res.lo < 0.3 < res.hi and res.lo > 0
    assert res.n_segments == 2 and res.n_needed < len(log)


def test_segment_gain_without_heterogeneity_is_not_significant_and_insample_overfits():
    rng = np.random.default_rng(2)
    log = _log(6_000, rng, lift_b_in_g1=0.0)
    log["fine"] = rng.integers(0, 40, len(log))  # 80 noise segments
    res = segment_policy_gain(log, ["g", "fine"], reference="A", min_count=10)
    assert res.lo < 0 < res.hi or res.hi < 0
    # choosing and evaluating on the same rows flatters the policy
    assert res.insample_gain > res.gain
    assert res.n_segments == 80


def test_segment_gain_se_matches_repeated_sampling():
    """The reported SE is the spread the estimate really has across independent logs."""
    rng = np.random.default_rng(3)
    runs = [segment_policy_gain(_log(3_000, rng, lift_b_in_g1=0.6), ["g"], reference="A", seed=i) for i in range(150)]
    gains = np.array([r.gain for r in runs])
    ses = np.array([r.se for r in runs])
    assert np.mean(ses) == pytest.approx(np.std(gains, ddof=1), rel=0.2)


def test_segment_gain_bad_input():
    log = pd.DataFrame({"g": [0, 1], "action": ["A", "B"], "reward": [1.0, 0.0]})
    with pytest.raises(ValueError, match="never logged"):
        segment_policy_gain(log, ["g"], reference="none")
    with pytest.raises(ValueError, match="empty"):
        segment_policy_gain(log.iloc[:0], ["g"], reference="A")
    with pytest.raises(ValueError, match="folds"):
        segment_policy_gain(log, ["g"], reference="A", folds=1)


def test_strategy_notes_an_inconclusive_comparison():
    from marketlab.strategy.run import _power_notes

    ope = pd.DataFrame([{"policy": "strategy", "estimator": "dr", "diff": 0.01, "diff_lo": -0.05, "diff_hi": 0.07,
                         "mde": 0.09}, {"policy": "strategy", "estimator": "ips", "diff": 0.2, "diff_lo": 0.1,
                                        "diff_hi": 0.3, "mde": 0.09}])
    (note,) = _power_notes(ope, "all:A", 32_000)
    assert "inconclusive" in note and "0.0900" in note and "32,000" in note
    ope.loc[0, ["diff_lo", "diff_hi"]] = [0.001, 0.02]  # CI excludes 0: nothing to say
    assert _power_notes(ope, "all:A", 32_000) == []
    assert _power_notes(ope.drop(columns="mde"), "all:A", 32_000) == []  # no bootstrap
