"""What every worker shares: batches with sample weights, early stopping, checkpoints, the task protocol."""

from __future__ import annotations

import numpy as np

from marketlab.forecast.train import TrainSpec
from marketlab.sequence.train import SequenceTrainSpec
from marketlab.training.worker import TrainTask, early_stopping, load_checkpoint, training_dataset, weights_digest


def test_both_capabilities_specs_are_train_tasks():
    fc = TrainSpec("x", 1, 1, 1, 1, 1, 1, 0.1, 1, 1)
    sq = SequenceTrainSpec("vae", "x", ("a",), {}, 0, 1, 1, 1, 1, 1, 1, 0.1)
    assert isinstance(fc, TrainTask) and isinstance(sq, TrainTask)


def test_weighted_batches_keep_inputs_targets_and_weights_together():
    x = {"a": np.arange(20, dtype=np.float32).reshape(10, 2)}
    y = {"t": np.arange(10, dtype=np.int32)}
    w = {"t": np.arange(10, dtype=np.float32) / 10}
    for bx, by, bw in training_dataset(x, y, 4, seed=1, weights=w).take(5):
        a, t, ww = bx["a"].numpy(), by["t"].numpy(), bw["t"].numpy()
        assert a.shape == (4, 2) and np.array_equal(a[:, 0], 2 * t) and np.allclose(ww, t / 10)


def test_early_stopping_restores_and_checkpoints_the_best_epoch(tmp_path):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    # A validation score that improves twice, then gets worse: stop after `patience` more.
    marks = iter([3.0, 2.0, 1.0, 1.5, 1.2, 0.5])
    seen = []

    def score(m):
        seen.append(weights_digest(m.get_weights()))
        return next(marks)

    path = str(tmp_path / "ck" / "best.npz")
    cb = early_stopping(score, patience=2, rank=0, checkpoint_path=path)
    x = np.linspace(0, 1, 32, dtype=np.float32).reshape(-1, 1)
    model.fit(x, 3 * x, epochs=10, batch_size=8, verbose=0, callbacks=[cb])
    assert cb.history == [3.0, 2.0, 1.0, 1.5, 1.2] and cb.best_epoch == 2
    assert weights_digest(model.get_weights()) == seen[2]  # restored to epoch 2's weights
    assert weights_digest(load_checkpoint(path)) == seen[2]
    cb1 = early_stopping(lambda m: 1.0, patience=1, rank=1, checkpoint_path=str(tmp_path / "r1.npz"))
    model.fit(x, 3 * x, epochs=3, verbose=0, callbacks=[cb1])
    assert not (tmp_path / "r1.npz").exists()  # only rank 0 writes
    assert list(marks) == [0.5]  # fit ended at the stop, not after 10 epochs
