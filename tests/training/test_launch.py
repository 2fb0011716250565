"""A sequence model through the tf-distribute backend (the forecast tests cover the LSTM on both)."""

from __future__ import annotations

import numpy as np

from marketlab.sequence import data
from marketlab.sequence.params import SequenceParams
from marketlab.sequence.run import model_config
from marketlab.sequence.train import SequenceTrainSpec
from marketlab.training.launch import get_launcher
from sequence.conftest import synthetic_sequences, to_spark


def test_tf_distribute_trains_the_vae_in_sync_with_early_stopping(spark, tmp_path):
    hist = data.histories(to_spark(spark, synthetic_sequences(n_customers=80)))
    split = data.plan_split(hist, 30)
    vocab = data.vocabulary(hist, split.val_cutoff)
    uri = str(tmp_path / "histories")
    data.stage(hist, split, 2, uri)
    p = SequenceParams.model_validate({"vae": {"hidden": 16, "latent": 8}})
    spec = SequenceTrainSpec(kind="vae", stage_uri=uri, vocabulary=vocab.items, config=model_config("vae", p, vocab.size),
                             val_cutoff=split.val_cutoff, cutoff=split.cutoff, horizon_days=30, epochs=6, patience=1,
                             steps_per_epoch=4, batch_size=8, learning_rate=0.01, threads=1, checkpoint_dir=str(tmp_path))
    results = get_launcher("tf-distribute", start_timeout_s=240).run(spark, spec, 2)
    assert [r.rank for r in results] == [0, 1] and {r.backend for r in results} == {"tf-distribute"}
    assert results[0].digest == results[1].digest
    # both workers saw the same validation scores, so they stopped at the same epoch
    assert results[0].extra["val_score"] == results[1].extra["val_score"]
    assert results[0].extra["best_epoch"] == int(np.argmin(results[0].extra["val_score"]))
    assert (tmp_path / "vae.npz").exists()
