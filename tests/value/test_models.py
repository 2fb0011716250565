"""BG/NBD and Gamma-Gamma closed forms: the papers' CDNOW estimates, lifetimes as the peer, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketlab.errors import BadInputError
from marketlab.value import models as M

CDNOW = Path(__file__).parent / "data" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW)


@pytest.fixture(scope="module")
def fits(cdnow):
    return M.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"]), M.fit_gamma_gamma(cdnow["x"], cdnow["zbar"])


def test_cdnow_reproduces_the_papers_estimates(fits):
    bg, gg = fits
    # Fader, Hardie & Lee (2005), table 1; LL = -9582.4.
    assert (bg.r, bg.alpha, bg.a, bg.b) == pytest.approx((0.243, 4.414, 0.793, 2.426), abs=1.5e-3)
    assert bg.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert bg.n_customers == 2357
    # Fader & Hardie (2013) Gamma-Gamma note: p = 6.25, q = 3.74, gamma = 15.44 on the 946 repeat buyers.
    assert (gg.p, gg.q, gg.gamma) == pytest.approx((6.25, 3.74, 15.44), abs=0.01)
    assert gg.n_customers == 946
    assert gg.population_mean == pytest.approx(gg.p * gg.gamma / (gg.q - 1))


def test_paper_figures_of_one_customer(fits):
    bg, _ = fits
    # FHL 2005 section 5: a customer with x=2, t_x=30.43, T=38.86 expects 1.226 purchases in the next 39 weeks.
    assert M.expected_purchases(bg, 39.0, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=2e-3)
    # Without repeat purchases P(alive) is 1 by the model's construction (dropout happens after a purchase).
    assert M.p_alive(bg, [0, 0], [0, 0], [5, 30]).tolist() == [1.0, 1.0]
    # ...but fewer purchases are expected the longer such a customer has been silent.
    e = M.expected_purchases(bg, 10.0, [0, 0], [0, 0], [5.0, 30.0])
    assert e[0] > e[1] > 0
    assert M.expected_purchases(bg, 0.0, [3], [10], [20])[0] == 0.0


def test_grouped_summary_gives_the_same_fit(cdnow, fits):
    bg, _ = fits
    g = cdnow.groupby(["x", "t_x", "T"]).size().rename("w").reset_index()
    assert len(g) < len(cdnow)
    gb = M.fit_bgnbd(g["x"], g["t_x"], g["T"], weight=g["w"])
    assert (gb.r, gb.alpha, gb.a, gb.b) == pytest.approx((bg.r, bg.alpha, bg.a, bg.b), rel=1e-4)
    assert gb.n_customers == 2357


def test_clv_is_discounted_sum_of_period_purchases(fits, cdnow):
    bg, gg = fits
    x, t_x, T, mx = (cdnow[c].to_numpy()[:50] for c in ("x", "t_x", "T", "zbar"))
    undiscounted = M.discounted_clv(bg, gg, x, t_x, T, mx, horizon=52.0, period=4.0, discount_per_period=0.0, margin=1.0)
    np.testing.assert_allclose(undiscounted, M.expected_purchases(bg, 52.0, x, t_x, T) * M.expected_spend(gg, x, mx))
    disc = M.discounted_clv(bg, gg, x, t_x, T, mx, horizon=52.0, period=4.0, discount_per_period=0.01, margin=0.3)
    assert np.all(disc < 0.3 * undiscounted) and np.all(disc > 0.3 * undiscounted / 1.01 ** 13)
    # A horizon that is not a whole number of periods ends with a short period.
    part = M.discounted_clv(bg, gg, x, t_x, T, mx, horizon=50.0, period=4.0, discount_per_period=0.0, margin=1.0)
    np.testing.assert_allclose(part, M.expected_purchases(bg, 50.0, x, t_x, T) * M.expected_spend(gg, x, mx))


def test_matches_lifetimes(cdnow, fits):
    lifetimes = pytest.importorskip("lifetimes", reason="lifetimes (the peer library) is not installed; "
                                    "pip install lifetimes to run the cross-check (docs/VALUE.md#library)")
    bg, gg = fits
    x, t_x, T, mx = cdnow["x"], cdnow["t_x"], cdnow["T"], cdnow["zbar"]
    lbg = lifetimes.BetaGeoFitter().fit(x, t_x, T)
    assert [lbg.params_[k] for k in ("r", "alpha", "a", "b")] == pytest.approx([bg.r, bg.alpha, bg.a, bg.b], rel=1e-4)
    np.testing.assert_allclose(M.p_alive(bg, x, t_x, T), lbg.conditional_probability_alive(x, t_x, T), rtol=1e-4)
    np.testing.assert_allclose(M.expected_purchases(bg, 26.0, x, t_x, T),
                               lbg.conditional_expected_number_of_purchases_up_to_time(26.0, x, t_x, T), rtol=1e-4)
    rep = cdnow[cdnow["x"] > 0]
    lgg = lifetimes.GammaGammaFitter().fit(rep["x"], rep["zbar"])
    assert [lgg.params_[k] for k in ("p", "q", "v")] == pytest.approx([gg.p, gg.q, gg.gamma], rel=1e-4)
    np.testing.assert_allclose(M.expected_spend(gg, x, mx), lgg.conditional_expected_average_profit(x, mx), rtol=1e-4)
    # lifetimes' CLV: 12 periods of 4.345 weeks ("W"), monthly discount 1 %, no margin.
    ref = lgg.customer_lifetime_value(lbg, x, t_x, T, mx, time=12, discount_rate=0.01, freq="W")
    ours = M.discounted_clv(bg, gg, x, t_x, T, mx, horizon=12 * 4.345, period=4.345, discount_per_period=0.01, margin=1.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-3)


def test_bad_input_is_a_user_error():
    with pytest.raises(BadInputError, match="empty calibration window"):
        M.fit_bgnbd([], [], [])
    with pytest.raises(BadInputError, match="no customer has a repeat purchase"):
        M.fit_bgnbd([0, 0, 0], [0, 0, 0], [10, 20, 30])
    with pytest.raises(BadInputError, match="not a valid"):
        M.fit_bgnbd([1, 2], [12, 3], [10, 20])  # recency after T
    with pytest.raises(BadInputError, match="non-positive"):
        M.fit_gamma_gamma([1, 2, 3], [10.0, -4.0, 0.0])
    with pytest.raises(BadInputError, match="at least two"):
        M.fit_gamma_gamma([0, 0, 1], [0.0, 0.0, 10.0])
    # Single-purchase customers are ignored by the spend fit, whatever their monetary value.
    gg = M.fit_gamma_gamma([0, 1, 2, 3, 1, 4], [-5.0, 10.0, 12.0, 9.0, 30.0, 11.0])
    assert gg.n_customers == 5
    assert M.expected_spend(gg, [0], [-5.0])[0] == pytest.approx(gg.population_mean)
