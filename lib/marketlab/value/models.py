"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie 2013 note) in NumPy/SciPy.

The likelihoods and the conditional expectations are the papers' closed forms, fitted by
maximum likelihood on the (frequency, recency, T[, monetary]) summary. Every function takes
plain arrays so the same code runs on the driver (fit, evaluation) and inside Spark's
``mapInPandas`` (scoring). Rows may carry a ``weight`` (how many customers share the
summary), so a summary grouped on its distinct rows fits in one pass however many
customers it stands for. Why not a library: docs/VALUE.md#library.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

from marketlab.errors import BadInputError


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD: purchase rate ~ Gamma(r, alpha), dropout p ~ Beta(a, b) (time in ``time_unit`` days)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    n_customers: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma: spend per transaction ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")
    n_customers: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean(self) -> float:
        """E[M] of a customer with no repeat purchase: p * gamma / (q - 1)."""
        return self.p * self.gamma / (self.q - 1.0)


def _arrays(*cols) -> list[np.ndarray]:
    return [np.asarray(c, dtype=float) for c in cols]


def bgnbd_log_likelihood(r: float, alpha: float, a: float, b: float, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood of BG/NBD (FHL 2005, eq. 6), in the log domain for stability."""
    x, t_x, T = _arrays(x, t_x, T)
    lg = special.gammaln
    a1 = lg(r + x) - lg(r) + r * np.log(alpha)
    a2 = lg(a + b) + lg(b + x) - lg(b) - lg(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _check_summary(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if x.size == 0:
        raise BadInputError("no customers to fit the purchase model on (empty calibration window?)")
    bad = (x < 0) | (t_x < 0) | (T <= 0) | (t_x > T + 1e-9) | ((x == 0) & (t_x != 0)) | ~np.isfinite(x + t_x + T)
    if bad.any():
        raise BadInputError(f"{int(bad.sum())} summary rows are not a valid (frequency >= 0, 0 <= recency <= T, T > 0, "
                            "recency 0 when frequency is 0) purchase history")


def fit_bgnbd(x, t_x, T, weight=None, penalizer: float = 0.0, x0: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)) -> BGNBD:
    """Maximum-likelihood BG/NBD on a summary.

    Args:
        x: Repeat purchases (frequency) per row.
        t_x: Time of the last purchase since the first (recency).
        T: Time since the first purchase to the end of the calibration window.
        weight: Customers per row (default 1).
        penalizer: L2 penalty on the log-parameters per customer (0: plain maximum likelihood).
        x0: Starting values of (r, alpha, a, b).

    Raises:
        BadInputError: No rows, an impossible row, or the optimiser did not converge.
    """
    x, t_x, T = _arrays(x, t_x, T)
    _check_summary(x, t_x, T)
    w = np.ones_like(x) if weight is None else np.asarray(weight, dtype=float)
    n = float(w.sum())
    if not (x > 0).any():
        raise BadInputError("no customer has a repeat purchase: the purchase rate and dropout cannot be estimated")
    # alpha is in time units: start it at the scale of the data so the optimiser needs few steps.
    start = np.log(np.array([x0[0], max(float(np.average(T, weights=w)) * x0[1] / 10.0, 1e-3), x0[2], x0[3]]))

    def nll(theta):
        r, alpha, a, b = np.exp(theta)
        ll = np.dot(w, bgnbd_log_likelihood(r, alpha, a, b, x, t_x, T))
        return -(ll / n) + penalizer * float(np.sum(theta ** 2))

    res = optimize.minimize(nll, start, method="Nelder-Mead",
                            options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 20000, "maxfev": 20000})
    res = optimize.minimize(nll, res.x, method="BFGS", options={"gtol": 1e-8})
    if not np.isfinite(res.fun):
        raise BadInputError(f"BG/NBD fit did not converge: {res.message}")
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    return BGNBD(r, alpha, a, b, log_likelihood=-float(res.fun) * n, n_customers=n)


def p_alive(m: BGNBD, x, t_x, T) -> np.ndarray:
    """P(customer still active at T | x, t_x, T) (FHL 2005, eq. 11); 1 for customers without repeat purchases."""
    x, t_x, T = _arrays(x, t_x, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(m.a) - np.log(np.maximum(m.b + x - 1, 1e-300)) + (m.r + x) * (np.log(m.alpha + T) - np.log(m.alpha + t_x))
    return np.where(x > 0, 1.0 / (1.0 + np.exp(np.minimum(log_ratio, 700.0))), 1.0)


def expected_purchases(m: BGNBD, t, x, t_x, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10)."""
    x, t_x, T = _arrays(x, t_x, T)
    t = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    head = (a + b + x - 1) / (a - 1)
    body = 1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 + np.where(x > 0, m.a / np.maximum(b + x - 1, 1e-300)
                               * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x))), 0.0)
    return np.where(t > 0, head * body / denom, 0.0)


def gamma_gamma_log_likelihood(p: float, q: float, gamma: float, x, mx) -> np.ndarray:
    """Per-customer log-likelihood of Gamma-Gamma for x >= 1 repeat purchases of mean value mx (Fader & Hardie 2013, eq. 5)."""
    x, mx = _arrays(x, mx)
    lg = special.gammaln
    return (lg(p * x + q) - lg(p * x) - lg(q) + q * np.log(gamma) + (p * x - 1) * np.log(mx)
            + p * x * np.log(x) - (p * x + q) * np.log(gamma + x * mx))


def fit_gamma_gamma(x, mx, weight=None, penalizer: float = 0.0) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma on customers with at least one repeat purchase.

    Args:
        x: Repeat purchases per row (rows with x = 0 are ignored: they carry no spend signal
            beyond the first purchase, which the lifetimes convention leaves out).
        mx: Mean value of the repeat purchases.
        weight: Customers per row.
        penalizer: L2 penalty on the log-parameters per customer.

    Raises:
        BadInputError: A non-positive or missing mean value among repeat buyers, fewer than
            two repeat buyers, or no convergence.
    """
    x, mx = _arrays(x, mx)
    w = np.ones_like(x) if weight is None else np.asarray(weight, dtype=float)
    keep = x > 0
    x, mx, w = x[keep], mx[keep], w[keep]
    if w.sum() < 2:
        raise BadInputError(f"the spend model needs at least two customers with a repeat purchase, got {w.sum():.0f}")
    bad = ~np.isfinite(mx) | (mx <= 0)
    if bad.any():
        raise BadInputError(f"{int(bad.sum())} repeat buyers have a non-positive or missing mean purchase value: "
                            "the Gamma-Gamma spend model needs positive values (filter returns out of the summary first)")
    n = float(w.sum())

    def nll(theta):
        p, q, g = np.exp(theta)
        return -np.dot(w, gamma_gamma_log_likelihood(p, q, g, x, mx)) / n + penalizer * float(np.sum(theta ** 2))

    start = np.log([1.0, 2.0, float(np.average(mx, weights=w))])
    res = optimize.minimize(nll, start, method="Nelder-Mead",
                            options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 20000, "maxfev": 20000})
    res = optimize.minimize(nll, res.x, method="BFGS", options={"gtol": 1e-8})
    if not np.isfinite(res.fun):
        raise BadInputError(f"Gamma-Gamma fit did not converge: {res.message}")
    p, q, g = (float(v) for v in np.exp(res.x))
    if q <= 1:
        raise BadInputError(f"Gamma-Gamma fit gives q = {q:.3f} <= 1: the mean spend is infinite (heavy-tailed values)")
    return GammaGamma(p, q, g, log_likelihood=-float(res.fun) * n, n_customers=n)


def expected_spend(m: GammaGamma, x, mx) -> np.ndarray:
    """E[value per purchase | x, mx] (Fader & Hardie 2013, eq. 7); the population mean for x = 0."""
    x, mx = _arrays(x, mx)
    mx = np.where(x > 0, np.nan_to_num(mx, nan=0.0), 0.0)
    return m.p * (m.gamma + x * mx) / (m.p * x + m.q - 1.0)


def discounted_clv(bg: BGNBD, gg: GammaGamma, x, t_x, T, mx, horizon: float, period: float,
                   discount_per_period: float, margin: float) -> np.ndarray:
    """Margin x expected spend x discounted expected purchases, period by period up to ``horizon``.

    CLV = margin * E[M] * sum_i (E[Y(i p)] - E[Y((i-1) p)]) / (1 + d)^i, the discrete form of
    lifetimes' ``customer_lifetime_value``; the last period is cut at ``horizon``.
    """
    x, t_x, T, mx = _arrays(x, t_x, T, mx)
    n_periods = int(np.ceil(horizon / period - 1e-9))
    edges = np.minimum(period * np.arange(1, n_periods + 1), horizon)
    cum = np.stack([expected_purchases(bg, t, x, t_x, T) for t in edges])
    steps = np.diff(np.vstack([np.zeros_like(x)[None, :], cum]), axis=0)
    disc = (1.0 + discount_per_period) ** -np.arange(1, len(edges) + 1)
    return margin * expected_spend(gg, x, mx) * (disc[:, None] * steps).sum(axis=0)
