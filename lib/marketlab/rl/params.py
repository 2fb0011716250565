"""Parameters of the offline RL learners over campaign waves (issue 26).

Conf section ``jobs.rl`` (conf/base/params/rl.yaml), read by ``bench/rl_waves.py``; no
stage uses it yet (``policy: rl`` in the strategy stage is not built). docs/RL.md
describes every field's role.
"""

from __future__ import annotations

from pydantic import Field

from marketlab.params_base import StrictModel

# The Q model is fitted on the driver; beyond this many transitions the collected
# frame (features x 8 bytes x rows, times the boosting's binned copy) stops fitting a
# driver comfortably, and the data-parallel DQN of issue 26 is the path instead.
MAX_TRANSITIONS = 2_000_000


class RegressorParams(StrictModel):
    """The regressor of the Q model.

    Attributes:
        kind: ``hgb`` (sklearn HistGradientBoostingRegressor on state + one-hot action) or
            ``ridge`` (closed-form ridge on state, one-hot action and action x state
            interactions: one linear Q per action sharing nothing but the penalty).
        max_iter / learning_rate / max_leaf_nodes / min_samples_leaf / l2: Boosting settings.
        ridge: L2 penalty of the ridge Q's state and action terms per standardised
            feature, in rows.
        ridge_effect: L2 penalty of its action x state interactions (how the actions'
            values differ by state): a wave's profit is mostly baseline purchases, so the
            differences are small against the noise and need more shrinkage than the rest.
        threads: OpenMP threads of the boosting. One by default: on a driver whose cores
            the executors (or other jobs) use, OpenMP's spinning threads made a fit 100x
            slower (34 s instead of 0.4 s for five small fits on 2 busy cores).
    """

    kind: str = Field("ridge", pattern="^(hgb|ridge)$")
    max_iter: int = Field(100, ge=1, le=2000)
    learning_rate: float = Field(0.1, gt=0.0, le=1.0)
    max_leaf_nodes: int = Field(15, ge=2, le=255)
    min_samples_leaf: int = Field(200, ge=1)
    l2: float = Field(1.0, ge=0.0)
    ridge: float = Field(10.0, ge=0.0)
    ridge_effect: float = Field(10.0, ge=0.0)
    threads: int = Field(1, ge=1, le=256)


class RLParams(StrictModel):
    """Parameters of fitted-Q iteration and of the simulator evaluation.

    Attributes:
        gamma: Discount per wave (0: the myopic one-step policy).
        iterations: Fitted-Q iterations (Bellman backups); with ``gamma = 0`` one is enough.
        regressor: The Q model's regressor.
        seed: Seed of the regressor, the exploring policy and the rollouts.
        logged_waves: Waves the randomized exploring policy plays before learning.
        eval_waves: Waves each learned or baseline policy is rolled forward for evaluation.
        terminal_done: Treat ``done`` (the customer's last logged wave) as the end of the
            process. False (default): the log ends there but the customer goes on, so the
            target bootstraps from the next state (a truncation, not a termination).
        max_transitions: Largest transition count fitted on the driver (see
            :data:`MAX_TRANSITIONS`).
    """

    gamma: float = Field(0.9, ge=0.0, lt=1.0)
    iterations: int = Field(8, ge=1, le=200)
    regressor: RegressorParams = Field(default_factory=RegressorParams)
    seed: int = 26
    logged_waves: int = Field(6, ge=1, le=52)
    eval_waves: int = Field(12, ge=1, le=52)
    terminal_done: bool = False
    max_transitions: int = Field(MAX_TRANSITIONS, ge=1)
