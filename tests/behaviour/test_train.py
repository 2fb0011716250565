"""train_purchase_intent pieces: split, weights, tuning table, feature importance."""

import pytest
from pyspark.sql import functions as F

from marketlab.behaviour.model import add_class_weights, split_sessions


def test_split_is_deterministic_and_close_to_fractions(sessions):
    a = split_sessions(sessions, 0.6, 0.2, seed=1).select("session_id", "split").toPandas().sort_values("session_id")
    b = split_sessions(sessions.repartition(5), 0.6, 0.2, seed=1).select("session_id", "split").toPandas() \
        .sort_values("session_id")
    assert (a.split.to_numpy() == b.split.to_numpy()).all()
    share = a.split.value_counts(normalize=True)
    assert abs(share["train"] - 0.6) < 0.05 and abs(share["test"] - 0.2) < 0.05


def test_balanced_weights_equalise_classes(sessions):
    counts = {r[0]: r[1] for r in sessions.groupBy("label").count().collect()}
    w = add_class_weights(sessions, counts).groupBy("label").agg(F.sum("class_weight").alias("w")).collect()
    tot = {r[0]: r[1] for r in w}
    assert tot[0] == pytest.approx(tot[1]) == pytest.approx(sum(counts.values()) / 2)
