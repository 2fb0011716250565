"""The Spark transitions job against a pandas computation, and against the numpy tracker."""

from __future__ import annotations

import pytest

from marketlab.errors import BadInputError
from marketlab.rl.evaluate import collect
from marketlab.rl.params import RLParams
from marketlab.rl.state import local_transitions
from marketlab.rl.transitions import build_transitions
from marketlab.simulator import CampaignSimulator, Dynamics, SimulatorParams

from ._logs import MARGIN, assert_same, hand_log, reference


def test_transitions_equal_a_pandas_computation(spark):
    waves, history = hand_log()
    got = build_transitions(spark.createDataFrame(waves), spark.createDataFrame(history), value_cols=["clv"],
                            margin=MARGIN).toPandas()
    want = reference(waves, history, value_cols=["clv"])
    assert_same(got, want)
    # The figures the window must get right, spelled out for customer a before wave 3
    # (45 days after wave 2): one contact and one coupon in the last 90 days, last order
    # in wave 2, the last e-mail in wave 1.
    a3 = got[(got["customer_id"] == "a") & (got["wave"] == 3)].iloc[0]
    assert (a3["recency_days"], a3["days_since_contact"], a3["contacts_90d"], a3["coupons_90d"]) == (45, 75, 1, 1)
    assert a3["frequency"] == 5 and a3["monetary"] == pytest.approx((3 * 150 + 100 + 50) / 5)
    assert bool(a3["done"]) and a3["next_recency_days"] == 75  # the state 30 days after the last wave
    # b skipped wave 1: its wave-0 transition leads to the state before wave 2.
    b0 = got[(got["customer_id"] == "b") & (got["wave"] == 0)].iloc[0]
    assert not b0["done"] and b0["next_recency_days"] == 260 and b0["next_clv"] == 22


def test_spark_and_numpy_transitions_agree_on_a_simulated_log(spark):
    sim = CampaignSimulator.synthetic(400, SimulatorParams(seed=3, dynamics=Dynamics(fatigue=True, carryover=True)))
    logged = collect(sim, RLParams(logged_waves=5, seed=1))
    got = build_transitions(spark.createDataFrame(logged.waves.drop(columns=["window_end"])),
                            spark.createDataFrame(logged.history), margin=sim.params.margin).toPandas()
    want = local_transitions(logged.waves, logged.history, margin=sim.params.margin)
    assert len(got) == 400 * 5
    assert_same(got, want)
    assert want["contacts_90d"].max() == 3  # waves 30 days apart: three earlier waves in 90 days


def test_bad_logs_are_refused(spark):
    waves, history = hand_log()
    w = spark.createDataFrame(waves)
    h = spark.createDataFrame(history)
    with pytest.raises(BadInputError, match="lack column"):
        build_transitions(w.drop("revenue"), h)
    with pytest.raises(BadInputError, match="clash"):
        build_transitions(w.withColumnRenamed("clv", "frequency"), h, value_cols=["frequency"])
    with pytest.raises(BadInputError, match="one row per customer x wave"):
        build_transitions(w.unionByName(w.limit(1)), h)
