"""The sequence training tasks in one process (the local Distribution), on staged synthetic data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from marketlab.sequence import data
from marketlab.sequence.run import model_config
from marketlab.sequence.params import SequenceParams
from marketlab.sequence.train import SequenceTrainSpec, transformer_examples, validation_loss
from marketlab.training.worker import Distribution, load_checkpoint


@pytest.fixture(scope="module")
def staged(spark, sequences, tmp_path_factory):
    hist = data.histories(sequences)
    split = data.plan_split(hist, 30)
    vocab = data.vocabulary(hist, split.val_cutoff)
    uri = str(tmp_path_factory.mktemp("seq") / "histories")
    data.stage(hist, split, 1, uri)
    return split, vocab, uri


def _spec(staged, kind, tmp_path, **kw):
    split, vocab, uri = staged
    p = SequenceParams.model_validate({"transformer": {"max_len": 12, "dim": 16, "heads": 2, "blocks": 1, "dropout": 0.0},
                                       "vae": {"hidden": 16, "latent": 8}})
    return SequenceTrainSpec(kind=kind, stage_uri=uri, vocabulary=vocab.items, config=model_config(kind, p, vocab.size),
                             val_cutoff=split.val_cutoff, cutoff=split.cutoff, horizon_days=30, epochs=kw.pop("epochs", 6),
                             patience=2, steps_per_epoch=8, batch_size=32, learning_rate=5e-3, threads=1,
                             checkpoint_dir=str(tmp_path), **kw)


def test_examples_use_only_the_fit_window():
    idx = np.array([1, 2, 3, 4], np.int32)
    days = np.array([10, 20, 30, 40], np.int32)
    x, y, w = transformer_examples([(idx, days)], max_len=4, val_cutoff=35, horizon=10)
    # next item: input 1,2 (before 35 without the last), targets 2,3; purchase: input before 25, label = basket in [25, 35)
    assert x["items"].tolist() == [[0, 0, 1, 2], [0, 0, 1, 2]]
    assert y["next"].tolist()[0] == [0, 0, 2, 3] and w["next"].tolist()[0] == [0, 0, 1, 1]
    assert y["buy"][:, 0].tolist() == [0.0, 1.0] and w["buy"].tolist() == [0.0, 1.0]
    np.testing.assert_allclose(x["recency"][:, 0], np.log1p([10, 5]))  # at the target basket; at the anchor


def test_validation_loss_by_hand():
    s = np.log(np.array([[1e-30, 1, 1, 2]]))  # softmax over items 1..3 = 1/4, 1/4, 1/2
    assert validation_loss(s, [np.array([3])]) == pytest.approx(np.log(2))
    assert validation_loss(s, [np.array([1, 3])], np.array([0.5]), np.array([1.0]), 2.0) == pytest.approx(
        (np.log(4) + np.log(2)) / 2 + 2 * np.log(2))


@pytest.mark.parametrize("kind", ["transformer", "vae"])
def test_training_learns_stops_early_and_checkpoints(staged, kind, tmp_path):
    spec = _spec(staged, kind, tmp_path)
    res = spec.train(Distribution())
    val = res.extra["val_score"]
    assert len(res.loss) == len(val) <= 6 and res.loss[-1] < res.loss[0]
    best = int(np.argmin(val))
    assert res.extra["best_epoch"] == best and min(val) < val[0]
    # the returned weights are the best epoch's, also written as the checkpoint
    saved = load_checkpoint(res.extra["checkpoint"])
    assert all(np.array_equal(a, b) for a, b in zip(saved, res.weights))


def test_transformer_learns_the_planted_order(staged, tmp_path):
    # Order is the only signal in the synthetic walks: the validation loss must fall well
    # below the uniform guess over the catalogue.
    spec = dataclasses.replace(_spec(staged, "transformer", tmp_path, epochs=10), buy_weight=0.0)
    res = spec.train(Distribution())
    assert min(res.extra["val_score"]) < 0.6 * np.log(len(spec.vocabulary))


def test_driver_counts_the_examples_the_workers_build(spark, staged):
    from marketlab.sequence.train import histories, read_staged, vae_examples

    split, vocab, uri = staged
    counts = data.examples_per_shard(spark.read.parquet(uri), split, 1)
    hs = histories(read_staged(uri, 0), vocab.items)
    x, y, _ = transformer_examples(hs, 12, split.val_cutoff, 30)
    assert counts == {"transformer": [len(y["buy"])], "vae": [len(vae_examples(hs, vocab.size, split.val_cutoff))]}
