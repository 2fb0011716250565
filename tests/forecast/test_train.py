"""The per-worker training input of :func:`marketlab.forecast.train.train_lstm`."""

from __future__ import annotations

import numpy as np

from marketlab.training.worker import training_dataset


def _windows(n: int = 50, window: int = 6, features: int = 3, horizon: int = 2):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, window, features)).astype(np.float32),
            rng.normal(size=(n, horizon)).astype(np.float32))


def test_batches_are_full_endless_and_seeded():
    x, y = _windows()
    ds = training_dataset(x, y, batch_size=8, seed=3)
    # 50 windows make 6 full batches a pass; 20 steps run through more than 3 passes.
    batches = [(bx.numpy(), by.numpy()) for bx, by in ds.take(20)]
    assert len(batches) == 20
    assert all(bx.shape == (8, 6, 3) and by.shape == (8, 2) for bx, by in batches)
    # every element of a batch is one of the windows, with its own target
    rows = {xi.tobytes(): yi.tobytes() for xi, yi in zip(x, y)}
    assert all(rows[xi.tobytes()] == yi.tobytes() for bx, by in batches for xi, yi in zip(bx, by))
    again = [bx.numpy() for bx, _ in training_dataset(x, y, batch_size=8, seed=3).take(20)]
    assert all(np.array_equal(a, b) for (a, _), b in zip(batches, again))
    other = next(iter(training_dataset(x, y, batch_size=8, seed=4)))[0].numpy()
    assert not np.array_equal(other, batches[0][0])


def test_autotuning_is_off():
    # Its optimisation thread kept `fit` waiting for up to a period (17-18 s at full scale)
    # after the last epoch, when the iterator was destroyed.
    x, y = _windows()
    assert training_dataset(x, y, batch_size=8, seed=3).options().autotune.enabled is False
