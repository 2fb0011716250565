"""Offline fitted-Q iteration over logged-wave transitions, and its myopic baseline.

One Q model over (state, one-hot action) is refitted ``iterations`` times on the targets
``reward + gamma * max_a' Q_prev(next_state, a')``; the policy is ``argmax_a Q(s, a)``.
With ``gamma = 0`` the target is the reward alone and the policy is the one-step uplift
policy (the best expected wave profit per customer): :func:`fit_myopic` is that policy,
learned by the same code on the same transitions, so the comparison is fair.

The Q model is fitted on the driver from the collected transitions (pandas): a few
million rows of a dozen features fit a driver; beyond ``RLParams.max_transitions`` the
fit refuses (the data-parallel DQN of issue 26 is the path for larger logs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from marketlab.errors import BadInputError
from marketlab.rl import transitions as T
from marketlab.rl.params import RegressorParams, RLParams


def _slog(x: np.ndarray) -> np.ndarray:
    # Days, counts and money are heavy-tailed; a signed log keeps a linear Q sane and is
    # monotone, so trees split the same.
    return np.sign(x) * np.log1p(np.abs(x))


class QModel:
    """``Q(s, a)`` for every action at once from one regressor over (state, one-hot action).

    Args:
        n_actions: Number of actions.
        p: Regressor settings.
        seed: Seed of the boosting.
    """

    def __init__(self, n_actions: int, p: RegressorParams, seed: int):
        self.n_actions = n_actions
        self.p = p
        self.seed = seed
        self._mu: np.ndarray | None = None
        self._sd: np.ndarray | None = None
        self._coef: np.ndarray | None = None
        self._hgb: HistGradientBoostingRegressor | None = None

    def _design(self, x: np.ndarray, a: np.ndarray) -> np.ndarray:
        z = (_slog(x) - self._mu) / self._sd
        onehot = np.eye(self.n_actions)[a]
        if self.p.kind == "hgb":
            return np.column_stack([z, onehot])
        # A linear Q per action: action dummies and action x state interactions.
        inter = (onehot[:, :, None] * z[:, None, :]).reshape(len(z), -1)
        return np.column_stack([np.ones(len(z)), z, onehot[:, 1:], inter])

    def fit(self, x: np.ndarray, a: np.ndarray, y: np.ndarray) -> "QModel":
        """Fits ``Q(x, a) ~ y`` (the standardisation is fitted on the first call only)."""
        if self._mu is None:
            s = _slog(x)
            self._mu, sd = s.mean(0), s.std(0)
            self._sd = np.where(sd > 0, sd, 1.0)
        X = self._design(x, a)
        if self.p.kind == "hgb":
            with threadpool_limits(self.p.threads, user_api="openmp"):
                self._hgb = HistGradientBoostingRegressor(
                    max_iter=self.p.max_iter, learning_rate=self.p.learning_rate,
                    max_leaf_nodes=self.p.max_leaf_nodes, min_samples_leaf=self.p.min_samples_leaf,
                    l2_regularization=self.p.l2, early_stopping=False, random_state=self.seed).fit(X, y)
        else:
            d = x.shape[1]
            pen = np.full(X.shape[1], self.p.ridge)
            pen[0] = 0.0  # the intercept is not shrunk
            pen[1 + d + self.n_actions - 1:] = self.p.ridge_effect
            self._coef = np.linalg.solve(X.T @ X + np.diag(pen), X.T @ y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` Q values."""
        out = np.empty((len(x), self.n_actions))
        with threadpool_limits(self.p.threads, user_api="openmp"):
            for k in range(self.n_actions):
                X = self._design(x, np.full(len(x), k))
                out[:, k] = self._hgb.predict(X) if self.p.kind == "hgb" else X @ self._coef
        return out


@dataclass
class FQIPolicy:
    """A greedy policy of a fitted Q model.

    Attributes:
        actions: Action names, in the Q model's column order.
        state_cols: State columns the model reads, in order.
        model: The last iteration's Q model.
        gamma / iterations: How it was fitted.
        target_mean: Mean Bellman target per iteration (a diverging fit shows here).
    """

    actions: list[str]
    state_cols: list[str]
    model: QModel
    gamma: float
    iterations: int
    target_mean: list[float] = field(default_factory=list)

    def q(self, states: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` Q values of states laid out as :attr:`state_cols`."""
        return self.model.predict(np.asarray(states, float))

    def act(self, states: np.ndarray) -> np.ndarray:
        """The greedy action name per state (ties: the first action, no contact first)."""
        return np.asarray(self.actions, dtype=object)[self.q(states).argmax(1)]


def fit_fqi(transitions: pd.DataFrame, actions: Sequence[str], p: RLParams,
            value_cols: Sequence[str] = ()) -> FQIPolicy:
    """Fitted-Q iteration on collected transitions.

    Args:
        transitions: Rows of :func:`~marketlab.rl.transitions.build_transitions` as pandas.
        actions: Action names (every logged action must be one of them).
        p: Discount, iterations, regressor, seed, size limit.
        value_cols: Extra state columns the transitions carry.

    Raises:
        BadInputError: No transitions, more than ``p.max_transitions``, missing columns,
            actions outside ``actions``, or non-finite rewards or states.
    """
    cols = T.state_columns(value_cols)
    need = [*cols, *[T.NEXT + c for c in cols], T.ACTION, T.REWARD, T.DONE]
    missing = [c for c in need if c not in transitions.columns]
    if missing:
        raise BadInputError(f"rl fqi: transitions lack column(s) {missing}")
    n = len(transitions)
    if n == 0:
        raise BadInputError("rl fqi: no transitions to learn from")
    if n > p.max_transitions:
        raise BadInputError(f"rl fqi: {n} transitions exceed max_transitions={p.max_transitions} (the Q model is "
                            "fitted on the driver); sample the log or raise the limit")
    acts = list(actions)
    a = pd.Index(acts).get_indexer(transitions[T.ACTION].astype(str))
    if (a < 0).any():
        bad = sorted(set(transitions[T.ACTION].astype(str)[a < 0]))[:5]
        raise BadInputError(f"rl fqi: logged action(s) {bad} are not in the actions {acts}")
    x = transitions[cols].to_numpy(float)
    x2 = transitions[[T.NEXT + c for c in cols]].to_numpy(float)
    r = transitions[T.REWARD].to_numpy(float)
    if not (np.isfinite(x).all() and np.isfinite(x2).all() and np.isfinite(r).all()):
        raise BadInputError("rl fqi: transitions have missing or infinite states or rewards")
    cont = 1.0 - transitions[T.DONE].to_numpy(bool) if p.terminal_done else np.ones(n)
    model = QModel(len(acts), p.regressor, p.seed)
    y, means = r, []
    iterations = p.iterations if p.gamma > 0 else 1
    for _ in range(iterations):
        means.append(float(y.mean()))
        model.fit(x, a, y)
        if p.gamma > 0:
            y = r + p.gamma * cont * model.predict(x2).max(1)
    return FQIPolicy(acts, cols, model, p.gamma, iterations, means)


def fit_myopic(transitions: pd.DataFrame, actions: Sequence[str], p: RLParams,
               value_cols: Sequence[str] = ()) -> FQIPolicy:
    """The myopic one-step uplift policy: fitted-Q with ``gamma = 0`` (one fit on the reward)."""
    return fit_fqi(transitions, actions, p.model_copy(update={"gamma": 0.0, "iterations": 1}), value_cols)
