"""Response models of the shop's waves: bagged ridge T-learners fitted and scored in Spark.

One linear-probability ridge model of *ordered* in the response window over the
customer's inputs, an intercept per e-mail action and action x input interactions (an
S-learner: the baseline is shared by every arm, so each arm's lift is estimated with the
precision of the whole log, and the interactions — the heterogeneity — are shrunk much
harder than the baseline), and one pooled ridge model of log revenue among buyers; predicted profit of action ``a``
is ``p_a(x) * m(x) * (margin - coupon_a) - contact_cost_a`` and its increment is measured
against no contact. Rows are weighted by the inverse of the logged probability of the
treatment they really got (targeted waves are not uniform), times a Poisson(1) bootstrap
weight per bag: the bags give every prediction its interval.

Why not Spark ML estimators: ``bags x actions`` fits of a few thousand rows each cost
seconds of job overhead per fit; the normal equations of all of them are one aggregation
pass (partial ``X'WX`` and ``X'Wy`` per partition in ``mapInPandas``, summed on the
driver: ``bags x 2`` small matrices), so training scales with rows, not
with fits, and nothing but those matrices reaches the driver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.value.summary import DELTA_CLV

ORDER = "__order__"
SPEND = "__spend__"


def _uniform(h: np.ndarray, salt: int) -> np.ndarray:
    """Uniforms in [0, 1) from 64-bit row hashes (splitmix64): the same row, the same draw."""
    with np.errstate(over="ignore"):
        z = h.astype(np.uint64) + np.uint64((0x9E3779B97F4A7C15 * (salt + 1)) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def poisson_weights(h: np.ndarray, bags: int, seed: int) -> np.ndarray:
    """(rows, bags) Poisson(1) bootstrap weights, deterministic per row hash (inverse CDF)."""
    u = np.stack([_uniform(h, seed * 1000 + b) for b in range(bags)], axis=1)
    # P(K <= k) of Poisson(1) for k = 0..9; beyond 9 has probability < 1e-7.
    cdf = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(10)])
    return np.searchsorted(cdf, u).astype(np.float64)


@dataclass
class ResponseModel:
    """Fitted coefficients (standardised inputs) of every bag.

    Attributes:
        features: Input columns.
        mean / scale: Standardisation of the inputs.
        actions: Action names; the first is no contact (the reference arm).
        order: (bags, p) coefficients of the order probability over :meth:`order_design`.
        spend: (bags, d + 1) coefficients of log revenue of a buyer.
        spend_sigma2: Residual variance of log revenue (lognormal mean correction).
        profit_var: Action -> sample variance of realised profit per customer.
        n_train: Action -> training rows.
        ridge_effect: The interaction penalty chosen by 5-fold cross-validation.
        cv_error: Penalty -> held-out weighted squared error of the order model.
    """

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    actions: list[str]
    order: np.ndarray
    spend: np.ndarray
    spend_sigma2: float
    profit_var: dict[str, float]
    n_train: dict[str, int]
    ridge_effect: float = float("nan")
    cv_error: dict[float, float] | None = None

    @property
    def bags(self) -> int:
        return int(self.spend.shape[0])

    def design(self, pdf: pd.DataFrame) -> np.ndarray:
        """Standardised design matrix with an intercept column."""
        z = (pdf[self.features].to_numpy(np.float64) - self.mean) / self.scale
        return np.hstack([np.ones((len(pdf), 1)), z])

    def p_order(self, x: np.ndarray, action: str) -> np.ndarray:
        """(n, bags) order probability of every row under ``action`` (``x`` from :meth:`design`)."""
        return np.clip(order_design(x, np.full(len(x), action, dtype=object), self.actions) @ self.order.T, 0.0, 1.0)


def order_design(x: np.ndarray, treatment: np.ndarray, actions: list[str]) -> np.ndarray:
    """``[x, arm dummies, arm dummies x inputs]`` with the first action as the reference arm."""
    parts = [x]
    for a in actions[1:]:
        parts.append((treatment == a).astype(np.float64)[:, None] * x)
    return np.hstack(parts)


def _penalty(d: int, n_actions: int, ridge: float, ridge_effect: float) -> np.ndarray:
    """Diagonal ridge penalty: none on intercepts, ``ridge`` on inputs, ``ridge_effect`` on interactions."""
    one = np.full(d, ridge)
    one[0] = 0.0
    inter = np.full(d, ridge_effect)
    inter[0] = 0.0
    return np.diag(np.concatenate([one] + [inter] * (n_actions - 1)))

def fit(train: DataFrame, actions: list[str], features: list[str], *, bags: int, ridge: float,
        ridge_effect: float | list[float],
        seed: int,
        treatment_col: str = "treatment", ordered_col: str = "ordered", revenue_col: str = "revenue",
        profit_col: str = "profit", weight_col: str = "weight", hash_col: str = "_h") -> ResponseModel:
    """Fit the bagged order and spend models on logged responses.

    Args:
        train: One row per logged response: features, the realised ``treatment``,
            ``ordered``, ``revenue``, ``profit``, the inverse-propensity ``weight`` and a
            64-bit row hash ``hash_col`` (the bootstrap draw).
        actions: Every action name, no contact first (each needs training rows).
        features: Input columns.
        bags / seed: Bootstrap replicates and their seed.
        ridge / ridge_effect: L2 penalty of the inputs and of the action x input interactions,
            in rows (the weights are scaled to mean 1). A list of interaction penalties is a
            grid: the one with the least 5-fold held-out error of the order model is used.

    Raises:
        BadInputError: An action without logged responses (it cannot be predicted).
    """
    stats = train.agg(*[F.mean(c).alias(f"m_{c}") for c in features],
                      *[F.stddev_pop(c).alias(f"s_{c}") for c in features], F.mean(weight_col).alias("_w")).first()
    # Stabilised weights (mean 1): the penalties then count in rows whatever the propensities.
    w_mean = float(stats["_w"] or 1.0)
    mean = np.array([stats[f"m_{c}"] or 0.0 for c in features])
    scale = np.array([stats[f"s_{c}"] or 0.0 for c in features])
    scale = np.where(scale > 1e-12, scale, 1.0)
    moments = {r[treatment_col]: (int(r["n"]), float(r["v"] or 0.0)) for r in train.groupBy(treatment_col).agg(
        F.count(F.lit(1)).alias("n"), F.var_samp(profit_col).alias("v")).collect()}
    missing = [a for a in actions if moments.get(a, (0, 0))[0] < 2]
    if missing:
        raise BadInputError(f"campaign: no logged responses for action(s) {missing}: a randomized wave must "
                            f"assign every action before a targeted one")
    d = len(features) + 1
    dims = {ORDER: d * len(actions), SPEND: d}
    keys = [ORDER, SPEND]

    folds = 5

    def partial(batches):
        acc = {k: (np.zeros((bags, dims[k], dims[k])), np.zeros((bags, dims[k]))) for k in keys}
        cv = (np.zeros((folds, dims[ORDER], dims[ORDER])), np.zeros((folds, dims[ORDER])), np.zeros(folds))
        for pdf in batches:
            z = (pdf[features].to_numpy(np.float64) - mean) / scale
            x = np.hstack([np.ones((len(pdf), 1)), z])
            h = pdf[hash_col].to_numpy()
            w1 = pdf[weight_col].to_numpy(np.float64) / w_mean
            w = poisson_weights(h, bags, seed) * w1[:, None]
            t = pdf[treatment_col].to_numpy(object)
            y = pdf[ordered_col].to_numpy(np.float64)
            xo = order_design(x, t, actions)
            acc[ORDER][0][:] += np.einsum("nb,ni,nj->bij", w, xo, xo)
            acc[ORDER][1][:] += np.einsum("nb,ni,n->bi", w, xo, y)
            # Per-fold sufficient statistics of the unbootstrapped fit: the held-out error of
            # any penalty follows from them, so choosing ridge_effect costs no extra pass.
            f = (_uniform(h, 10_007) * folds).astype(int)
            for k in range(folds):
                m = f == k
                cv[0][k] += (xo[m] * w1[m, None]).T @ xo[m]
                cv[1][k] += (xo[m] * w1[m, None]).T @ y[m]
                cv[2][k] += float((w1[m] * y[m] ** 2).sum())
            buy = (y > 0) & (pdf[revenue_col].to_numpy(np.float64) > 0)
            if buy.any():
                xb, wb = x[buy], w[buy]
                lr = np.log(pdf[revenue_col].to_numpy(np.float64)[buy])
                acc[SPEND][0][:] += np.einsum("nb,ni,nj->bij", wb, xb, xb)
                acc[SPEND][1][:] += np.einsum("nb,ni,n->bi", wb, xb, lr)
        rows = {"key": keys, "xtx": [acc[k][0].ravel().tolist() for k in keys],
                "xty": [acc[k][1].ravel().tolist() for k in keys], "yty": [0.0, 0.0]}
        for k in range(folds):
            rows["key"].append(f"cv{k}")
            rows["xtx"].append(cv[0][k].ravel().tolist())
            rows["xty"].append(cv[1][k].tolist())
            rows["yty"].append(cv[2][k])
        yield pd.DataFrame(rows)

    cols = [*features, treatment_col, ordered_col, revenue_col, weight_col, hash_col]
    schema = "key string, xtx array<double>, xty array<double>, yty double"
    parts = train.select(*cols).mapInPandas(partial, schema).collect()
    xtx = {k: np.zeros((bags, dims[k], dims[k])) for k in keys}
    xty = {k: np.zeros((bags, dims[k])) for k in keys}
    do = dims[ORDER]
    cxx, cxy, cyy = np.zeros((folds, do, do)), np.zeros((folds, do)), np.zeros(folds)
    for r in parts:
        if r.key.startswith("cv"):
            k = int(r.key[2:])
            cxx[k] += np.asarray(r.xtx).reshape(do, do)
            cxy[k] += np.asarray(r.xty)
            cyy[k] += r.yty
            continue
        xtx[r.key] += np.asarray(r.xtx).reshape(bags, dims[r.key], dims[r.key])
        xty[r.key] += np.asarray(r.xty).reshape(bags, dims[r.key])
    grid = sorted(set(ridge_effect if isinstance(ridge_effect, (list, tuple)) else [ridge_effect]))
    cv_error = {lam: _cv_error(cxx, cxy, cyy, _penalty(d, len(actions), ridge, lam)) for lam in grid}
    best = min(grid, key=lambda lam: (cv_error[lam], -lam))  # ties: the stronger shrinkage
    pens = {ORDER: _penalty(d, len(actions), ridge, best), SPEND: _penalty(d, 1, ridge, ridge)}

    def solve(k: str) -> np.ndarray:
        return np.stack([np.linalg.lstsq(xtx[k][b] + pens[k], xty[k][b], rcond=None)[0] for b in range(bags)])

    spend = solve(SPEND)
    if not np.isfinite(spend).all() or np.abs(xtx[SPEND][:, 0, 0]).min() <= 0:
        raise BadInputError("campaign: no buyer in the logged responses: the spend model cannot be fitted")
    # Residual variance of log revenue from the sums (bag 0 is a bootstrap draw too; use the mean fit).
    sigma2 = _spend_residual(train, features, mean, scale, spend.mean(axis=0), ordered_col, revenue_col)
    return ResponseModel(features, mean, scale, list(actions), solve(ORDER), spend, sigma2,
                         {a: moments[a][1] for a in actions}, {a: moments[a][0] for a in actions}, best, cv_error)


def _cv_error(xx: np.ndarray, xy: np.ndarray, yy: np.ndarray, pen: np.ndarray) -> float:
    """Held-out weighted squared error summed over folds, from per-fold sufficient statistics."""
    err = 0.0
    sx, sy = xx.sum(axis=0), xy.sum(axis=0)
    for k in range(len(yy)):
        beta = np.linalg.lstsq(sx - xx[k] + pen, sy - xy[k], rcond=None)[0]
        err += float(yy[k] - 2 * beta @ xy[k] + beta @ xx[k] @ beta)
    return err


def _spend_residual(train: DataFrame, features: list[str], mean: np.ndarray, scale: np.ndarray, beta: np.ndarray,
                    ordered_col: str, revenue_col: str) -> float:
    pred = F.lit(float(beta[0]))
    for i, c in enumerate(features):
        pred = pred + F.lit(float(beta[i + 1] / scale[i])) * (F.col(c) - F.lit(float(mean[i])))
    r = (train.where((F.col(ordered_col).cast("double") > 0) & (F.col(revenue_col) > 0))
         .agg(F.mean((F.log(revenue_col) - pred) ** 2).alias("v")).first())
    return float(r["v"] or 0.0)


def score(customers: DataFrame, model: ResponseModel, actions: list[str], coupon: dict[str, float],
          margin: float, contact_cost: float, no_contact: str, keep: list[str] | None = None,
          clv_weight: float = 0.0, clv_col: str = DELTA_CLV) -> DataFrame:
    """Predicted incremental profit of every action for every customer, per bag and on average.

    Args:
        customers: One row per customer with ``model.features`` (and ``clv_col`` when
            ``clv_weight`` > 0).
        model: Fitted response models.
        actions / coupon / margin / contact_cost / no_contact: The action list and the economics.
        keep: Columns of ``customers`` carried through (default: ``customer_key``).
        clv_weight: Weight of the customer's ΔCLV (``clv_col``: the CLV one more purchase
            adds; :func:`marketlab.value.stage.delta_clv`) in the value of an incremental
            order. 0: one wave's profit only.

    Returns:
        ``keep`` columns plus, per action ``a``: ``inc_<a>`` (the objective: mean over bags
        of the incremental profit against no contact, plus ``clv_weight`` x ``dp_<a>`` x
        ΔCLV), ``bags_<a>`` (array, one per bag, of the wave's incremental profit alone:
        what the wave's A/B test measures), ``dp_<a>`` (incremental order probability),
        ``cost_<a>`` (contact plus expected coupon cost), ``rev_<a>`` (incremental revenue:
        mean over bags of the order-probability difference times the expected basket).
    """
    keep = keep or [C.CUSTOMER_KEY]
    schema = ", ".join([*(f"`{c}` {customers.schema[c].dataType.simpleString()}" for c in keep),
                        *(f"inc_{a} double, bags_{a} array<double>, dp_{a} double, cost_{a} double, rev_{a} double"
                          for a in actions)])
    extra = [clv_col] if clv_weight > 0 and clv_col not in keep else []

    def run(batches):
        for pdf in batches:
            x = model.design(pdf)
            m = np.exp(x @ model.spend.T + model.spend_sigma2 / 2)  # (n, bags)
            p = {a: model.p_order(x, a) for a in actions}
            base = p[no_contact] * m * margin
            future = clv_weight * pdf[clv_col].to_numpy(float) if clv_weight > 0 else 0.0
            out = {c: pdf[c] for c in keep}
            for a in actions:
                email = a != no_contact
                prof = p[a] * m * (margin - coupon[a]) - (contact_cost if email else 0.0)
                inc = prof - base
                dp = (p[a] - p[no_contact]).mean(axis=1)
                out[f"inc_{a}"] = inc.mean(axis=1) + dp * future
                out[f"bags_{a}"] = list(inc)
                out[f"dp_{a}"] = dp
                out[f"cost_{a}"] = (p[a] * m * coupon[a]).mean(axis=1) + (contact_cost if email else 0.0)
                out[f"rev_{a}"] = ((p[a] - p[no_contact]) * m).mean(axis=1)
            yield pd.DataFrame(out)

    return customers.select(*keep, *extra, *model.features).mapInPandas(run, schema)
