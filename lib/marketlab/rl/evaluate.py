"""Simulator evaluation of the wave policies: true cumulative profit over the next waves.

Protocol (docs/RL.md): a randomized exploring policy (every action uniform, logged
propensity) plays ``logged_waves`` waves to the whole population; fitted-Q and the myopic
policy (fitted-Q with ``gamma = 0``) learn from those waves only; then each policy is
rolled forward ``eval_waves`` waves from the same simulator state, with the same sampling
stream (a copy of the simulator per policy: common random numbers). A wave's figure is
the simulator's true expected profit of that wave given the state the wave meets
(``Oracle.expected``, no sampling noise); the state then moves on by sampling the wave's
responses, because the policies react to sampled outcomes (recency, orders). The sum
over waves is an unbiased estimate of the policy's true value; seeds average the rest.

Baselines: every static action, the best static action (chosen with hindsight on the
truth), uniform random, and the per-wave oracle (the truly best action of each wave for
each customer given the state: myopic, so under dynamics it is not the long-run optimum).
No policy features items (every e-mail is generic), so all compete on the same actions.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from marketlab.rl import ope
from marketlab.rl import transitions as T
from marketlab.rl._shop import shop_history
from marketlab.rl.fqi import FQIPolicy, fit_fqi, fit_myopic
from marketlab.rl.params import RLParams
from marketlab.rl.state import StateTracker, local_transitions, to_days
from marketlab.simulator import CampaignSimulator, SimState

TransitionsFn = Callable[..., pd.DataFrame]
Chooser = Callable[[np.ndarray, SimState], np.ndarray]
CAMPAIGN = "rl"  # campaign id prefix of the evaluation's waves


@dataclass
class Logged:
    """The exploring waves and where they leave the shop.

    Attributes:
        waves: One row per customer x wave: the response export plus ``wave``.
        history: The customers' history before the first wave (:func:`shop_history`).
        state: The simulator's state after the logged waves.
        tracker: The observable state after the logged waves.
    """

    waves: pd.DataFrame
    history: pd.DataFrame
    state: SimState
    tracker: StateTracker


@dataclass
class PolicyResult:
    """One policy's rollout.

    Attributes:
        name: Policy name.
        profit: True expected profit per wave (all customers).
        contacts / coupons: E-mails and coupons sent per wave.
    """

    name: str
    profit: list[float] = field(default_factory=list)
    contacts: list[int] = field(default_factory=list)
    coupons: list[int] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Cumulative true profit over the rollout."""
        return float(np.sum(self.profit))


@dataclass
class Evaluation:
    """All policies' rollouts from one logged start.

    Attributes:
        results: Policy name -> rollout (``best_static`` is the best of the ``static_*``).
        transitions: Transitions learned from.
        fit_seconds: Wall seconds of fitting fitted-Q and myopic.
        fqi / myopic: The learned policies.
        frame: The transitions themselves (for :func:`off_policy_check`).
    """

    results: dict[str, PolicyResult]
    transitions: int
    fit_seconds: float
    fqi: FQIPolicy
    myopic: FQIPolicy
    frame: pd.DataFrame | None = field(default=None, repr=False)

    def totals(self) -> dict[str, float]:
        """Policy name -> cumulative true profit."""
        return {k: v.total for k, v in self.results.items()}


def _sent_at(sim: CampaignSimulator, t: int) -> pd.Timestamp:
    return pd.Timestamp(sim.wave_date) + pd.Timedelta(days=sim.params.dynamics.gap_days * t)


def _wave(sim: CampaignSimulator, t: int, ids: np.ndarray, arms: np.ndarray, propensity=None) -> pd.DataFrame:
    w = pd.DataFrame({"campaign_id": f"{CAMPAIGN}_w{t}", T.CUSTOMER: ids, T.ARM: arms, T.SENT_AT: _sent_at(sim, t)})
    if propensity is not None:
        w["propensity"] = propensity
    return w


def _record(tracker: StateTracker, ts: float, resp: pd.DataFrame) -> None:
    sent = resp[T.SENT].to_numpy(bool)
    tracker.record(ts, sent, sent & (resp[T.COUPON_LEVEL].to_numpy(float) > 0), resp[T.ORDERED].to_numpy(bool),
                   resp[T.REVENUE].to_numpy(float))


def collect(sim: CampaignSimulator, p: RLParams) -> Logged:
    """Plays ``p.logged_waves`` uniformly randomized waves to every customer from the initial state."""
    rng = np.random.default_rng(np.random.SeedSequence([p.seed, 1]))
    acts = np.array([a.name for a in sim.params.actions], dtype=object)
    ids = sim.customer_ids
    hist = shop_history(sim)
    tracker = StateTracker(hist[T.RECENCY].to_numpy(float), hist[T.FREQUENCY].to_numpy(float),
                           hist[T.MONETARY].to_numpy(float))
    state = sim.initial_state()
    frames = []
    for t in range(p.logged_waves):
        arms = acts[rng.integers(len(acts), size=len(ids))]
        resp, state = sim.simulate(_wave(sim, t, ids, arms, 1.0 / len(acts)), state=state)
        _record(tracker, to_days(_sent_at(sim, t)), resp)
        frames.append(resp.assign(**{T.WAVE: t}))
    return Logged(pd.concat(frames, ignore_index=True), hist, state, tracker)


def rollout(sim: CampaignSimulator, logged: Logged, name: str, choose: Chooser, p: RLParams) -> PolicyResult:
    """Rolls one policy forward ``p.eval_waves`` waves from the logged state (on copies)."""
    sim = copy.deepcopy(sim)  # the same sampling stream for every policy
    tracker = copy.deepcopy(logged.tracker)
    state = logged.state
    ids = sim.customer_ids
    coupon = {a.name: a.coupon > 0 for a in sim.params.actions}
    email = {a.name: a.email for a in sim.params.actions}
    res = PolicyResult(name)
    for t in range(p.logged_waves, p.logged_waves + p.eval_waves):
        ts = to_days(_sent_at(sim, t))
        arms = np.asarray(choose(tracker.features(ts), state), dtype=object)
        pol = pd.DataFrame({T.CUSTOMER: ids, T.ARM: arms})
        res.profit.append(float(sim.oracle(state).expected(pol)["profit"].sum()))
        res.contacts.append(int(sum(email[a] for a in arms)))
        res.coupons.append(int(sum(coupon[a] for a in arms)))
        resp, state = sim.simulate(_wave(sim, t, ids, arms), state=state)
        _record(tracker, ts, resp)
    return res


def oracle_chooser(sim: CampaignSimulator) -> Chooser:
    """The per-wave oracle: each customer's truly most profitable action at the wave's state."""
    names = [a.name for a in sim.params.actions]
    ids = sim.customer_ids

    def choose(_feats: np.ndarray, state: SimState) -> np.ndarray:
        o = sim.oracle(state)
        prof = np.column_stack([o.expected(pd.DataFrame({T.CUSTOMER: ids, T.ARM: a}))["profit"].to_numpy()
                                for a in names])
        return np.asarray(names, dtype=object)[prof.argmax(1)]

    return choose


def evaluate(sim: CampaignSimulator, p: RLParams, *, transitions_fn: TransitionsFn | None = None,
             logged: Logged | None = None) -> Evaluation:
    """Logs exploring waves, fits fitted-Q and myopic on them, rolls every policy forward.

    Args:
        sim: The simulator (its dynamics decide what there is to learn).
        p: RL parameters (gamma, iterations, regressor, seed, logged and evaluated waves).
        transitions_fn: ``(waves, history, margin=, gap_days=) -> transitions`` as pandas;
            default :func:`~marketlab.rl.state.local_transitions` (numpy). The bench passes
            the Spark job.
        logged: Reuse already logged waves (default: :func:`collect`).

    Returns:
        Every policy's true cumulative profit; see the module docstring for the protocol.
    """
    logged = logged or collect(sim, p)
    fn = transitions_fn or local_transitions
    tr = fn(logged.waves, logged.history, margin=sim.params.margin, gap_days=sim.params.dynamics.gap_days)
    names = [a.name for a in sim.params.actions]
    t0 = time.perf_counter()
    fqi = fit_fqi(tr, names, p)
    myo = fit_myopic(tr, names, p)
    fit_s = time.perf_counter() - t0
    rng = np.random.default_rng(np.random.SeedSequence([p.seed, 2]))
    n = len(sim.customer_ids)
    choosers: dict[str, Chooser] = {
        "fqi": lambda f, s: fqi.act(f), "myopic": lambda f, s: myo.act(f),
        "random": lambda f, s: np.asarray(names, dtype=object)[rng.integers(len(names), size=n)],
        "oracle_wave": oracle_chooser(sim)}
    for a in names:
        choosers[f"static_{a}"] = lambda f, s, a=a: np.full(n, a, dtype=object)
    results = {k: rollout(sim, logged, k, c, p) for k, c in choosers.items()}
    best = max((k for k in results if k.startswith("static_")), key=lambda k: results[k].total)
    results["best_static"] = copy.deepcopy(results[best])
    results["best_static"].name = best
    return Evaluation(results, len(tr), fit_s, fqi, myo, tr)


def truth_from_start(sim: CampaignSimulator, logged: Logged, name: str, choose: Chooser, p: RLParams) -> PolicyResult:
    """A policy's true profit over the *logged* waves, from the state the log started in.

    What an off-policy estimate from the log estimates: the same waves, the same customers,
    the same first state, the policy deciding instead of the exploring one.
    """
    hist = logged.history  # in the simulator's customer order, as :func:`collect` reads it
    start = Logged(logged.waves, logged.history, sim.initial_state(),
                   StateTracker(hist[T.RECENCY].to_numpy(float), hist[T.FREQUENCY].to_numpy(float),
                                hist[T.MONETARY].to_numpy(float)))
    return rollout(sim, start, name, choose, p.model_copy(update={"logged_waves": 0, "eval_waves": p.logged_waves}))


def off_policy_check(sim: CampaignSimulator, p: RLParams, ev: Evaluation, logged: Logged, *,
                     level: float = 0.95, n_boot: int = 2000) -> pd.DataFrame:
    """PDIS and DR of fitted-Q, myopic and uniform random from the log, against the truth.

    Cross-fitted: the learned policies are refitted on half of the customers' transitions
    and estimated on the other half's trajectories (scaled to every customer), because a
    policy estimated on the very log it was fitted to picks the actions whose logged noise
    happened to be high, and its estimate is biased upwards (the optimiser's curse). The
    truth is the value of those same half-fitted policies.

    Args:
        sim: The simulator the log was played in (for the truth only).
        p: RL parameters (the policies' and the FQE model's regressor and iterations).
        ev: The evaluation whose transitions are used.
        logged: The logged waves (their propensities) and the start they were played from.

    Returns:
        One row per policy x estimator: ``estimate``, ``low``, ``high``, ``truth`` (the
        policy's true profit over the logged waves from the log's start, simulator truth),
        ``covers`` and ``ess_last`` (effective sample size of the last logged wave, of the
        estimation half).
    """
    names = [a.name for a in sim.params.actions]
    prop = logged.waves[[T.CUSTOMER, T.WAVE, ope.PROPENSITY]]
    tr = ev.frame.merge(prop, on=[T.CUSTOMER, T.WAVE], how="left", validate="one_to_one")
    rng = np.random.default_rng(np.random.SeedSequence([p.seed, 3]))
    ids = sim.customer_ids
    fit_half = set(rng.permutation(ids)[: len(ids) // 2].tolist())
    in_fit = tr[T.CUSTOMER].isin(fit_half).to_numpy()
    est_tr = tr[~in_fit]
    scale = len(ids) / est_tr[T.CUSTOMER].nunique()
    fqi, myo = fit_fqi(tr[in_fit], names, p), fit_myopic(tr[in_fit], names, p)
    uniform = np.full(len(names), 1.0 / len(names))
    n = len(ids)
    targets = {"fqi": (ope.deterministic(fqi.act, names), lambda f, s: fqi.act(f)),
               "myopic": (ope.deterministic(myo.act, names), lambda f, s: myo.act(f)),
               "random": (lambda x: np.tile(uniform, (len(x), 1)),
                          lambda f, s: np.asarray(names, dtype=object)[rng.integers(len(names), size=n)])}
    rows = []
    for name, (probs, choose) in targets.items():
        truth = truth_from_start(sim, logged, name, choose, p).total
        rep = ope.evaluate_policy(est_tr, names, fqi.state_cols, probs, p, level=level, n_boot=n_boot)
        for est, e in (("pdis", rep.pdis.scaled(scale)), ("dr", rep.dr.scaled(scale))):
            rows.append({"policy": name, "estimator": est, "estimate": e.value, "low": e.low, "high": e.high,
                         "truth": truth, "covers": e.covers(truth), "ess_last": float(rep.ess[-1])})
    return pd.DataFrame(rows)
