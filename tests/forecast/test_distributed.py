"""Real 2-process training through each backend on local Spark (nothing mocked)."""

import dataclasses
import datetime as dt

import numpy as np
import pytest

from marketlab.forecast import prep
from marketlab.training.launch import LaunchError, get_launcher
from marketlab.forecast.series import complete_calendar, series_profile
from marketlab.forecast.train import TrainSpec
from forecast.conftest import synthetic_demand

CUT = dt.date(2011, 5, 1)


@pytest.fixture(scope="module")
def staged(spark, tmp_path_factory):
    demand = spark.createDataFrame(synthetic_demand(n_items=6, dirt=False))
    series = complete_calendar(demand).cache()
    prof = series_profile(series, CUT, 40)
    shards = prep.assign_shards(prof, 2, 14, 7, 1).cache()
    uri = str(tmp_path_factory.mktemp("stage") / "shards")
    prep.stage(prep.training_frame(series, prof, shards, CUT), uri)
    steps, per_shard = prep.steps_per_epoch(shards, 2, 32, cap=6)
    return TrainSpec(uri, window=14, horizon=7, stride=1, epochs=3, steps_per_epoch=steps, batch_size=32,
                     learning_rate=3e-3, lstm_units=8, dense_units=8, seed=3, use_gpu=False, threads=1), per_shard


def test_shards_are_balanced_and_whole(staged):
    spec, per_shard = staged
    # 12 series of 121 days -> origins 13..113 = 101 windows each, 6 series per shard
    assert per_shard == [606, 606] and spec.steps_per_epoch == 6


@pytest.mark.parametrize("backend", ["horovod", "tf-distribute"])
def test_two_workers_train_in_sync(spark, staged, backend):
    spec, _ = staged
    results = get_launcher(backend, start_timeout_s=240).run(spark, spec, 2)
    assert [r.rank for r in results] == [0, 1] and {r.size for r in results} == {2}
    assert {r.backend for r in results} == {backend}
    assert len({r.extra["pid"] for r in results}) == 2  # two real processes
    assert [r.extra["intra_op_threads"] for r in results] == [1, 1]  # one core each, as Spark granted
    assert results[0].digest == results[1].digest  # replicas bit-identical
    for a, b in zip(results[0].weights, results[1].weights):
        np.testing.assert_array_equal(a, b)
    loss = results[0].loss
    assert len(loss) == 3 and loss[-1] < 0.8 * loss[0], loss
    assert results[0].n_samples == 606 and results[0].samples_trained == 3 * 6 * 32


def test_too_many_workers_is_a_clear_error(spark, staged):
    spec, _ = staged
    with pytest.raises(LaunchError, match="3 training workers need as many concurrent Spark task slots; the cluster has 2"):
        get_launcher("tf-distribute").run(spark, spec, 3)


def test_one_horovod_launch_trains_several_models_each_as_if_alone(spark, staged):
    spec, _ = staged
    other = dataclasses.replace(spec, seed=11, epochs=2)
    first, second, again = get_launcher("horovod", start_timeout_s=240).run_many(spark, [spec, other, spec], 2)
    pids = {r.extra["pid"] for r in first}
    assert {r.extra["pid"] for r in again} == pids and len(pids) == 2  # one launch: the same two processes
    for results in (first, second, again):
        assert [r.rank for r in results] == [0, 1] and results[0].digest == results[1].digest
    # The model trained after another one is bit-identical to the one trained first: each
    # training starts from a fresh Keras state and its own seeds.
    assert again[0].digest == first[0].digest and again[0].loss == first[0].loss
    assert second[0].digest != first[0].digest and len(second[0].loss) == 2
