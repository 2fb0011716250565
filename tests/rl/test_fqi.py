"""Fitted-Q on a hand-made fatigue MDP: the long-run action differs from the myopic one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketlab.errors import BadInputError
from marketlab.rl.fqi import fit_fqi, fit_myopic
from marketlab.rl.params import RegressorParams, RLParams
from marketlab.rl.transitions import NEXT, STATE

MAIL_REWARD = {0: 10.0, 1: 1.0, 2: 0.5}  # a rested customer answers; a fatigued one barely


def fatigue_mdp(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Fatigue f in {0, 1, 2}: mail pays MAIL_REWARD[f] and tires (f + 1, at most 2); rest pays 0, resets f.

    Mailing always pays more now, so the myopic policy always mails; at gamma 0.9
    resting a tired customer (f >= 1) is worth more at gamma 0.8 (values in the test).
    The state's other columns are noise the learner must ignore.
    """
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 3, n)
    mail = rng.random(n) < 0.5
    reward = np.where(mail, np.vectorize(MAIL_REWARD.get)(f), 0.0) + rng.normal(0, 1.0, n)
    f2 = np.where(mail, np.minimum(f + 1, 2), 0)

    def state(fat):
        s = {c: rng.gamma(2.0, 10.0, n) for c in STATE}
        s["contacts_90d"] = fat.astype(float)
        s["coupons_90d"] = (fat == 2).astype(float)  # lets a linear Q tell the three levels apart
        return s

    s, s2 = state(f), state(f2)
    df = pd.DataFrame({**s, **{NEXT + c: v for c, v in s2.items()}})
    df["action"] = np.where(mail, "mail", "rest")
    df["reward"] = reward
    df["done"] = False
    return df


def _states(fatigue: list[int]) -> np.ndarray:
    x = np.full((len(fatigue), len(STATE)), 20.0)
    x[:, STATE.index("contacts_90d")] = fatigue
    x[:, STATE.index("coupons_90d")] = [float(v == 2) for v in fatigue]
    return x


@pytest.mark.parametrize("kind", ["ridge", "hgb"])
def test_fqi_rests_a_fatigued_customer_myopic_does_not(kind):
    # True values at gamma 0.8 (mail, rest, mail, rest, ...): Q(0, mail) 27.8 > Q(0, rest)
    # 22.2; Q(1, mail) 18.8 and Q(2, mail) 18.3 < Q(1|2, rest) 22.2: mail the rested, rest the tired.
    tr = fatigue_mdp()
    p = RLParams(gamma=0.8, iterations=20, regressor=RegressorParams(kind=kind, min_samples_leaf=50, max_iter=30))
    fqi = fit_fqi(tr, ["rest", "mail"], p)
    myo = fit_myopic(tr, ["rest", "mail"], p)
    x = _states([0, 1, 2])
    assert list(fqi.act(x)) == ["mail", "rest", "rest"]
    assert list(myo.act(x)) == ["mail", "mail", "mail"]
    q = fqi.q(x)
    assert q[0, 1] == pytest.approx(27.8, rel=0.1) and q[1, 0] == pytest.approx(22.2, rel=0.1)
    assert myo.gamma == 0 and myo.iterations == 1


def test_fqi_refuses_bad_transitions():
    tr = fatigue_mdp(200)
    p = RLParams()
    with pytest.raises(BadInputError, match="not in the actions"):
        fit_fqi(tr, ["rest"], p)
    with pytest.raises(BadInputError, match="exceed max_transitions"):
        fit_fqi(tr, ["rest", "mail"], p.model_copy(update={"max_transitions": 100}))
    with pytest.raises(BadInputError, match="no transitions"):
        fit_fqi(tr.iloc[:0], ["rest", "mail"], p)
    with pytest.raises(BadInputError, match="lack column"):
        fit_fqi(tr.drop(columns=["reward"]), ["rest", "mail"], p)
    with pytest.raises(BadInputError, match="missing or infinite"):
        fit_fqi(tr.assign(reward=np.nan), ["rest", "mail"], p)
