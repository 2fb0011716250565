"""Histories, the temporal split, the vocabulary and the bad inputs of the Spark side."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from marketlab.errors import BadInputError
from marketlab.sequence import data, encode
from sequence.conftest import START, synthetic_sequences, to_spark


def test_histories_keep_basket_order_and_days(spark):
    frame = synthetic_sequences(n_customers=3, n_days=30, noise=0.0)
    hist = {r["customer_key"]: r for r in data.histories(to_spark(spark, frame)).collect()}
    row, want = hist["k00000"], frame.iloc[0]
    assert row["items"] == want["item_sequence"]
    assert row["days"] == [data.to_day(b["ts"].date()) for b in want["baskets"] for _ in b["items"]]
    assert row["days"] == sorted(row["days"])


def test_split_puts_validation_and_test_windows_at_the_end(spark, sequences):
    hist = data.histories(sequences)
    split = data.plan_split(hist, 30)
    last = max(d for r in hist.collect() for d in r["days"])
    assert split.last_day == last and split.end == last + 1
    assert split.cutoff == last + 1 - 30 and split.val_cutoff == split.cutoff - 30
    fixed = data.plan_split(hist, 20, dt.date(2011, 6, 1))
    assert fixed.cutoff == data.to_day(dt.date(2011, 6, 1)) and fixed.val_cutoff == fixed.cutoff - 20


def test_empty_training_window_is_a_clear_error(spark, sequences):
    hist = data.histories(sequences)
    with pytest.raises(BadInputError, match="empty training window"):
        data.plan_split(hist, 30, START.date() + dt.timedelta(days=5))
    with pytest.raises(BadInputError, match="no baskets"):
        data.plan_split(data.histories(to_spark(spark, synthetic_sequences(n_customers=0))), 30)


def test_vocabulary_counts_only_the_training_window_and_has_a_softmax_limit(spark):
    frame = synthetic_sequences(n_customers=20, n_items=12, noise=0.0)
    hist = data.histories(to_spark(spark, frame))
    split = data.plan_split(hist, 30)
    vocab = data.vocabulary(hist, split.val_cutoff)
    pdf = frame.explode("baskets")
    before = pdf[pdf["baskets"].map(lambda b: data.to_day(b["ts"].date()) < split.val_cutoff)]
    counts = before["baskets"].map(lambda b: b["items"]).explode().value_counts()
    want = sorted(counts.index, key=lambda i: (-counts[i], i))
    assert list(vocab.items) == want and vocab.size == len(want) + 1
    with pytest.raises(BadInputError, match="exceed the softmax limit jobs.sequence.max_items=5"):
        data.vocabulary(hist, split.val_cutoff, max_items=5)


def test_cut_and_shards(spark, sequences):
    hist = data.histories(sequences)
    split = data.plan_split(hist, 30)
    early = data.cut(hist, end=split.val_cutoff).collect()
    assert all(max(r["days"]) < split.val_cutoff for r in early)
    # the five one-basket customers bought in the first week: all still there
    assert sum(len(r["items"]) == 1 for r in early) >= 5
    sharded = data.with_shard(hist, 2).groupBy("shard").count().collect()
    assert sorted(r["shard"] for r in sharded) == [0, 1] and sum(r["count"] for r in sharded) == 125


def test_encoding_drops_unknown_items_and_keeps_the_last_n():
    idx, days = encode.to_indices(["A", "X", "B", "A"], [1, 1, 5, 9], {"A": 1, "B": 2})
    assert idx.tolist() == [1, 2, 1] and days.tolist() == [1, 5, 9]
    x = encode.sequence_inputs([(idx, days), (np.zeros(0, np.int32), np.zeros(0, np.int32))], max_len=2, as_of=12)
    assert x["items"].tolist() == [[2, 1], [0, 0]]  # longer than N: the most recent N
    np.testing.assert_allclose(x["gaps"][0], np.log1p([4, 4]))
    np.testing.assert_allclose(x["recency"][:, 0], np.log1p([3, 3650]))
    assert encode.multi_hot([(idx, days)], 4).tolist() == [[0, 1, 1, 0]]
    assert encode.window(idx, days, 5, 10).tolist() == [1, 2]
