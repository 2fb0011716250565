"""Off-policy evaluation of wave policies from the logged waves alone (issue 26).

The logged waves are trajectories: one per customer, one step per wave, each with the state
before the wave, the action the exploring policy took with its propensity, and the wave's
profit. A target policy's value over those waves (the total profit of every customer over
the logged horizon, undiscounted by default, as the simulator's truth counts it) is
estimated two ways, following Jiang & Li (2016, "Doubly robust off-policy value evaluation
for reinforcement learning"):

* **per-decision importance sampling** (PDIS; Precup et al., 2000): each reward weighted by
  the product of the ratios ``pi(a_k | s_k) / b(a_k | s_k)`` of the steps up to it;
* **doubly robust** (DR): the same weights on the residuals of a model of the target's
  value-to-go, ``Q_hat``, plus that model's value of each state the log reaches:
  ``sum_t g^t [rho_t (r_t - Q_hat(s_t, a_t)) + rho_{t-1} V_hat(s_t)]``, with
  ``V_hat(s) = sum_a pi(a | s) Q_hat(s, a)``. Unbiased whatever ``Q_hat`` is (the
  propensities are known); a good ``Q_hat`` lowers the variance. ``Q_hat`` here is fitted-Q
  *evaluation* (FQE) of the target on the same transitions: the fitted-Q code with the
  target's action in place of the max, over the logged horizon (the last logged wave is
  terminal for the estimate).

Customers are independent trajectories, so the interval is a bootstrap over customers
(SciPy's ``stats.bootstrap``, percentile): importance weights are heavy-tailed, where a
normal interval is too narrow. A weight that is 0 for almost every customer (a
deterministic target and a long horizon: ``4^-t`` of the log follows the target for ``t``
waves) makes PDIS noisy; the report gives the effective sample size of the last step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from marketlab.errors import BadInputError
from marketlab.rl import transitions as T
from marketlab.rl.fqi import QModel
from marketlab.rl.params import RLParams

#: ``states (n, d) -> probabilities (n, n_actions)`` of the target policy.
TargetFn = Callable[[np.ndarray], np.ndarray]
PROPENSITY = "propensity"  # the logged propensity column of the transitions
BOOT_BATCH = 100  # bootstrap resamples held in memory at once


@dataclass
class Trajectories:
    """The log as ``(customers, waves)`` arrays, waves in order.

    Attributes:
        states: ``(n, L, d)`` state before each wave.
        actions: ``(n, L)`` action index taken.
        propensity: ``(n, L)`` the logging policy's probability of that action.
        rewards: ``(n, L)`` the wave's profit.
        customers: The customer ids, in row order.
    """

    states: np.ndarray
    actions: np.ndarray
    propensity: np.ndarray
    rewards: np.ndarray
    customers: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(customers, waves)``."""
        return self.actions.shape


@dataclass
class Estimate:
    """One estimator's value of one policy, summed over customers.

    Attributes:
        value: The estimate (total over customers and waves).
        low / high: Bootstrap interval (``level``).
        per_customer: Each customer's term (the estimate is their sum).
    """

    value: float
    low: float
    high: float
    per_customer: np.ndarray

    def covers(self, truth: float) -> bool:
        """True if ``truth`` lies in the interval."""
        return bool(self.low <= truth <= self.high)

    def scaled(self, k: float) -> "Estimate":
        """The estimate for ``k`` times as many customers (a sample's total to the population's)."""
        return Estimate(self.value * k, self.low * k, self.high * k, self.per_customer)


def trajectories(transitions: pd.DataFrame, actions: Sequence[str], state_cols: Sequence[str],
                 propensity_col: str = PROPENSITY, customer_col: str = T.CUSTOMER,
                 wave_col: str = T.WAVE) -> Trajectories:
    """Lays the transitions out as one trajectory per customer.

    Raises:
        BadInputError: Missing columns, a customer without exactly one row for every logged
            wave, actions outside ``actions``, or propensities outside (0, 1].
    """
    need = [customer_col, wave_col, *state_cols, T.ACTION, T.REWARD, propensity_col]
    missing = [c for c in need if c not in transitions.columns]
    if missing:
        raise BadInputError(f"rl ope: transitions lack column(s) {missing}")
    df = transitions.sort_values([customer_col, wave_col], kind="stable")
    if df.duplicated([customer_col, wave_col]).any():
        raise BadInputError(f"rl ope: {int(df.duplicated([customer_col, wave_col]).sum())} repeated (customer, wave) "
                            "row(s); a trajectory has one step per wave")
    waves = np.sort(df[wave_col].unique())
    counts = df.groupby(customer_col, sort=True).size()
    if (counts != len(waves)).any():
        raise BadInputError(f"rl ope: {int((counts != len(waves)).sum())} customer(s) lack a row for some of the "
                            f"{len(waves)} logged waves; a trajectory needs every wave")
    a = pd.Index(list(actions)).get_indexer(df[T.ACTION].astype(str))
    if (a < 0).any():
        raise BadInputError(f"rl ope: logged action(s) {sorted(set(df[T.ACTION].astype(str)[a < 0]))[:5]} "
                            f"are not in {list(actions)}")
    prop = df[propensity_col].to_numpy(float)
    if not ((prop > 0) & (prop <= 1)).all():
        raise BadInputError("rl ope: logged propensities must lie in (0, 1]; OPE needs the logging policy's "
                            "probability of every logged action")
    n, L = len(counts), len(waves)
    return Trajectories(df[list(state_cols)].to_numpy(float).reshape(n, L, len(state_cols)), a.reshape(n, L),
                        prop.reshape(n, L), df[T.REWARD].to_numpy(float).reshape(n, L),
                        counts.index.to_numpy())


def deterministic(act: Callable[[np.ndarray], np.ndarray], actions: Sequence[str]) -> TargetFn:
    """The probabilities of a policy that picks one action name per state."""
    idx = pd.Index(list(actions))

    def probs(states: np.ndarray) -> np.ndarray:
        out = np.zeros((len(states), len(idx)))
        out[np.arange(len(states)), idx.get_indexer(np.asarray(act(states), dtype=object))] = 1.0
        return out

    return probs


def _target_probs(tr: Trajectories, target: TargetFn) -> np.ndarray:
    n, L = tr.shape
    pi = np.asarray(target(tr.states.reshape(n * L, -1)), float).reshape(n, L, -1)
    if not np.allclose(pi.sum(-1), 1.0):
        raise BadInputError("rl ope: the target policy's probabilities must sum to 1 in every state")
    return pi


def _weights(tr: Trajectories, pi: np.ndarray) -> np.ndarray:
    """``rho_t``: cumulative importance ratios up to and including step ``t``."""
    taken = np.take_along_axis(pi, tr.actions[..., None], -1)[..., 0]
    return np.cumprod(taken / tr.propensity, axis=1)


def fqe(tr: Trajectories, target: TargetFn, n_actions: int, p: RLParams, gamma: float = 1.0) -> np.ndarray:
    """Fitted-Q evaluation of ``target`` over the logged horizon: ``(n, L, n_actions)`` Q.

    One Q model over (state, action) refitted ``p.iterations`` times (at least the horizon,
    so the last wave's reward reaches the first) on ``r_t + gamma * V_hat(s_{t+1})``, with
    ``V_hat`` the target's expectation of the previous fit and 0 after the last logged wave.
    """
    n, L = tr.shape
    d = tr.states.shape[-1]
    x = tr.states.reshape(n * L, d)
    a = tr.actions.reshape(-1)
    r = tr.rewards.reshape(-1)
    pi_next = np.zeros((n, L, n_actions))
    pi_next[:, :-1] = _target_probs(tr, target)[:, 1:]
    x_next = np.zeros_like(tr.states)
    x_next[:, :-1] = tr.states[:, 1:]
    x_next = x_next.reshape(n * L, d)
    last = np.zeros((n, L), bool)
    last[:, -1] = True
    last = last.reshape(-1)
    model = QModel(n_actions, p.regressor, p.seed)
    y = r
    for _ in range(max(p.iterations, L)):
        model.fit(x, a, y)
        v_next = (model.predict(x_next) * pi_next.reshape(n * L, -1)).sum(1)
        y = r + gamma * np.where(last, 0.0, v_next)
    return model.predict(x).reshape(n, L, n_actions)


def _interval(per_customer: np.ndarray, level: float, n_boot: int, seed: int) -> tuple[float, float]:
    n = len(per_customer)
    if n < 2 or np.all(per_customer == per_customer[0]):
        v = float(per_customer.sum())
        return v, v
    # batch: resamples drawn at once (memory: batch x customers floats, whatever the base size)
    res = stats.bootstrap((per_customer,), np.mean, confidence_level=level, n_resamples=n_boot, method="percentile",
                          random_state=np.random.default_rng(seed), vectorized=True, batch=BOOT_BATCH)
    return float(res.confidence_interval.low * n), float(res.confidence_interval.high * n)


def _estimate(per_customer: np.ndarray, level: float, n_boot: int, seed: int) -> Estimate:
    lo, hi = _interval(per_customer, level, n_boot, seed)
    return Estimate(float(per_customer.sum()), lo, hi, per_customer)


def pdis(tr: Trajectories, target: TargetFn, *, gamma: float = 1.0, level: float = 0.95, n_boot: int = 2000,
         seed: int = 0) -> Estimate:
    """Per-decision importance sampling estimate of ``target``'s total profit over the log."""
    rho = _weights(tr, _target_probs(tr, target))
    disc = gamma ** np.arange(tr.shape[1])
    return _estimate((rho * tr.rewards * disc).sum(1), level, n_boot, seed)


def doubly_robust(tr: Trajectories, target: TargetFn, q: np.ndarray, *, gamma: float = 1.0, level: float = 0.95,
                  n_boot: int = 2000, seed: int = 0) -> Estimate:
    """Doubly robust estimate of ``target``'s total profit over the log, with ``q`` = ``Q_hat``.

    Args:
        q: ``(n, L, n_actions)`` value-to-go of the target at each logged state (:func:`fqe`).
    """
    pi = _target_probs(tr, target)
    rho = _weights(tr, pi)
    rho_prev = np.column_stack([np.ones(tr.shape[0]), rho[:, :-1]])
    q_taken = np.take_along_axis(q, tr.actions[..., None], -1)[..., 0]
    v = (pi * q).sum(-1)
    disc = gamma ** np.arange(tr.shape[1])
    return _estimate(((rho * (tr.rewards - q_taken) + rho_prev * v) * disc).sum(1), level, n_boot, seed)


def effective_sample_size(tr: Trajectories, target: TargetFn) -> np.ndarray:
    """Kish's effective sample size of the importance weights at each step (n when on-policy)."""
    rho = _weights(tr, _target_probs(tr, target))
    return rho.sum(0) ** 2 / np.maximum((rho ** 2).sum(0), 1e-300)


@dataclass
class OPEReport:
    """Both estimators for one target policy.

    Attributes:
        pdis / dr: The estimates.
        ess: Effective sample size per step.
    """

    pdis: Estimate
    dr: Estimate
    ess: np.ndarray


def evaluate_policy(transitions: pd.DataFrame, actions: Sequence[str], state_cols: Sequence[str],
                    target: TargetFn, p: RLParams, *, gamma: float = 1.0, level: float = 0.95,
                    n_boot: int = 2000) -> OPEReport:
    """PDIS and DR (with FQE) of ``target`` from the logged transitions alone.

    Args:
        transitions: Transitions with the logged propensity (``propensity``), customer and wave.
        actions: Action names in the target's column order.
        state_cols: State columns, as the target reads them.
        target: The policy's action probabilities per state (:func:`deterministic` for a
            greedy policy).
        p: The FQE model's regressor, iterations and seed.
        gamma: Discount of the value estimated (1: total profit, as the truth counts it).
        level: Interval coverage.
        n_boot: Bootstrap resamples.
    """
    tr = trajectories(transitions, actions, state_cols)
    q = fqe(tr, target, len(actions), p, gamma)
    return OPEReport(pdis(tr, target, gamma=gamma, level=level, n_boot=n_boot, seed=p.seed),
                     doubly_robust(tr, target, q, gamma=gamma, level=level, n_boot=n_boot, seed=p.seed),
                     effective_sample_size(tr, target))
