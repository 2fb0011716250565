"""The simulator's ground truth: per-customer response probabilities, effects and spend.

Private: only :class:`marketlab.simulator.CampaignSimulator` (sampling) and its
:class:`~marketlab.simulator.Oracle` (exact expectations) read it. docs/SIMULATOR.md states
every formula here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from marketlab.simulator._world import World, member
from marketlab.simulator.params import SimulatorParams

# Baseline coefficients of a synthetic world (intercept, log1p frequency, log1p recency,
# log1p tenure, log aov): the fit on the real customers at the default wave date, rounded.
SYNTHETIC_BASELINE = np.array([-2.43, 1.60, -0.02, -0.21, 0.13])
_MAX_U = 0.99  # a lift never makes an order certain


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def _mean_one(x: np.ndarray, cap: float) -> np.ndarray:
    # Clip outliers first so one customer cannot carry the population's average effect.
    x = np.minimum(x / x.mean(), cap)
    return x / x.mean()


def _design(w: World) -> np.ndarray:
    return np.column_stack([np.log1p(w.frequency), np.log1p(w.recency_days), np.log1p(w.tenure_days),
                            np.log(np.maximum(w.aov, 1.0))])


@dataclass(frozen=True)
class Truth:
    """Per-customer truth of one world.

    Attributes:
        p0: Baseline probability of an order in the response window without contact.
        spend: Expected window revenue of a buyer (the same with or without the e-mail:
            Hillstrom's spend per converter does not differ between arms).
        tau: Purchase lift of a generic e-mail (no featured items), absolute.
        coupon_tau: Coupon level -> extra purchase lift, absolute.
        click: Click probability of a generic e-mail.
        baseline_coef: Coefficients of the baseline model (intercept first).
    """

    p0: np.ndarray
    spend: np.ndarray
    tau: np.ndarray
    coupon_tau: dict[float, np.ndarray]
    click: np.ndarray
    baseline_coef: np.ndarray


def build_truth(w: World, p: SimulatorParams, rng: np.random.Generator) -> Truth:
    """Draws the truth of a world (the noise terms come from the simulator's seed)."""
    X = _design(w)
    if w.ordered_in_window is not None and 0 < w.ordered_in_window.mean() < 1:
        # The baseline is the customer's own history, scaled to how often the shop's
        # customers really ordered in the window after the wave date.
        m = LogisticRegression(C=1e4, max_iter=1000).fit(X, w.ordered_in_window)
        coef = np.concatenate([m.intercept_, m.coef_[0]])
    else:
        coef = SYNTHETIC_BASELINE
    p0 = 1 / (1 + np.exp(-(coef[0] + X @ coef[1:])))
    p0 = np.clip(p0, 0.002, p.max_baseline)

    # Expected orders of a buyer: Poisson with the baseline's rate, given at least one.
    mu = -np.log1p(-p0)
    orders = mu / -np.expm1(-mu)
    # Order values shrink towards the median in logs (few orders say little), winsorised.
    la = np.log(np.maximum(w.aov, 1.0))
    wgt = w.frequency / (w.frequency + 2.0)
    aov = np.exp(wgt * la + (1 - wgt) * np.median(la))
    aov = np.minimum(aov, np.quantile(aov, 0.99))
    spend = aov * orders

    n = w.n
    zr, zf, zm = _z(np.log1p(w.recency_days)), _z(np.log1p(w.frequency)), _z(la)
    # Recent and frequent customers read the shop's e-mails; big-basket (wholesale)
    # customers order on their own schedule; customers who buy anyway leave little room.
    h = np.exp(-0.4 * zr + 0.2 * zf - 0.2 * zm + p.effect_noise * rng.standard_normal(n)) * (1 - p0)
    tau = p.hillstrom_conversion_lift * _mean_one(h, 8.0)
    # Cheap-item buyers are the price-sensitive ones.
    ps = np.exp(-0.5 * _z(np.log(w.mean_price)) + 0.5 * zr + p.effect_noise * rng.standard_normal(n)) * (1 - p0)
    g = _mean_one(ps, 6.0)
    coupon_tau = {lvl: lift * g for lvl, lift in p.coupon_lift.items()}
    hc = np.exp(-0.5 * zr + 0.3 * rng.standard_normal(n))
    # Clicks of a generic e-mail: the visits Hillstrom's e-mail added (see docs).
    click = p.hillstrom_visit_lift * _mean_one(hc, 3.0)
    return Truth(p0=p0, spend=spend, tau=tau, coupon_tau=coupon_tau, click=click, baseline_coef=coef)


def featured_shares(w: World, cust: np.ndarray, item_codes, k: int, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Relevance and affinity shares of featured items per customer.

    Args:
        w: The world.
        cust: Customer index of each (customer, featured item) pair.
        item_codes: Stock codes of the pairs (pandas Series of str).
        k: Items the shares are taken over (``featured_k``): more relevant items never hurt.
        digits: Category prefix length.

    Returns:
        ``(relevance, affinity)`` arrays of length ``w.n``, each in [0, 1].
    """
    rel = np.zeros(w.n)
    aff = np.zeros(w.n)
    if len(cust) == 0:
        return rel, aff
    item = w.item_index(item_codes)
    cat = w.category_of(item_codes, digits)
    cust = cust.astype(np.int64)
    hit = (item >= 0) & member(w.future_item_keys, cust * len(w.items) + np.maximum(item, 0))
    known = (cat >= 0) & member(w.hist_category_keys, cust * len(w.categories) + np.maximum(cat, 0))
    rel = np.minimum(np.bincount(cust, hit, w.n) / k, 1.0)
    aff = np.minimum(np.bincount(cust, known, w.n) / k, 1.0)
    return rel, aff


@dataclass
class Outcome:
    """Expected (or probability of) outcomes of one action per customer at one state."""

    p_order: np.ndarray
    p_click: np.ndarray
    p_open: np.ndarray
    revenue: np.ndarray
    coupon_cost: np.ndarray
    contact_cost: np.ndarray
    profit: np.ndarray


def expected(t: Truth, p: SimulatorParams, *, sent: np.ndarray, coupon: np.ndarray, relevance: np.ndarray,
             affinity: np.ndarray, base: np.ndarray, recent_contacts: np.ndarray,
             recent_coupons: np.ndarray) -> Outcome:
    """Outcome probabilities and expected money per customer for the given actions.

    ``base`` is the state's baseline purchase probability (``p0`` in a first wave). The
    purchase probability is ``1 - (1 - base) * (1 - u)`` with ``u`` the e-mail's lift as a
    share of the customer's room ``1 - p0``; in a first wave that is ``p0 + lift``, and it
    stays linear in ``base``, so expected values over waves are exact.
    """
    d = p.dynamics
    mult = 1 + p.affinity_boost * affinity + p.relevance_boost * relevance
    fat = np.exp(-d.fatigue_rate * recent_contacts) if d.fatigue else 1.0
    lift = t.tau * mult * fat
    for lvl, ct in t.coupon_tau.items():
        lift = lift + np.where(np.isclose(coupon, lvl), ct, 0.0)
    u = np.where(sent, np.minimum(lift / (1 - t.p0), _MAX_U), 0.0)
    b = base
    if d.anticipation:
        # Customers used to coupons wait for the next one instead of buying at full price.
        b = np.where(sent & (coupon > 0), base, base * np.exp(-d.anticipation_rate * recent_coupons))
    p_order = 1 - (1 - b) * (1 - u)
    p_click = np.where(sent, np.minimum(t.click * mult * fat, 1.0), 0.0)
    p_open = np.where(sent, np.minimum(p_click / p.click_to_open, 1.0), 0.0)
    revenue = p_order * t.spend
    coupon_cost = np.where(sent, coupon, 0.0) * revenue
    contact_cost = np.where(sent, p.contact_cost, 0.0)
    profit = p.margin * revenue - coupon_cost - contact_cost
    return Outcome(p_order, p_click, p_open, revenue, coupon_cost, contact_cost, profit)
