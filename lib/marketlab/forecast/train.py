"""The one LSTM training function, run by every worker of either launcher backend.

A backend only supplies a :class:`Distribution`: how replicas agree on initial weights,
all-reduce gradients and split the input. The data each worker trains on is its own shard
of the staged training frame (read here, on the worker, from shared storage), so no
training row passes through the Spark driver.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from marketlab.training.worker import Distribution, WorkerResult, training_dataset


@dataclass(frozen=True)
class TrainSpec:
    """Everything a worker needs (pickled to the workers).

    Attributes:
        shard_uri: Staged training frame; worker ``r`` reads ``<shard_uri>/shard=r``.
        window: Input days.
        horizon: Target days.
        stride: Origin stride.
        epochs: Epochs.
        steps_per_epoch: Steps per epoch, equal on every worker (collectives must match).
        batch_size: Per-worker batch.
        learning_rate: Single-worker Adam step (scaled by the number of workers).
        lstm_units: LSTM width.
        dense_units: Dense width.
        seed: Seed.
        use_gpu: Use one GPU per worker if visible.
        threads: TensorFlow intra-op threads of the worker (0 = TensorFlow's default).
    """

    shard_uri: str
    window: int
    horizon: int
    stride: int
    epochs: int
    steps_per_epoch: int
    batch_size: int
    learning_rate: float
    lstm_units: int
    dense_units: int
    seed: int = 7
    use_gpu: bool = True
    threads: int = 0

    def train(self, dist: Distribution, device: str = "cpu") -> WorkerResult:
        """The launchers' entry point (:class:`marketlab.training.worker.TrainTask`)."""
        return train_lstm(self, dist, device)


def read_shard(uri: str, rank: int):
    """This worker's rows of the staged frame as pandas (``series_id, date, z, scale, zero_share``)."""
    import pyarrow.dataset as ds

    path = f"{uri.rstrip('/')}/shard={rank}"
    if path.startswith("file:"):
        path = path[len("file:"):].replace("///", "/", 1) if path.startswith("file:///") else path[len("file:"):]
    table = ds.dataset(path, format="parquet").to_table(columns=["series_id", "date", "z", "scale", "zero_share"])
    return table.to_pandas()


def train_lstm(spec: TrainSpec, dist: Distribution, device: str = "cpu") -> WorkerResult:
    """Train the LSTM on this worker's shard in lock-step with the other workers.

    Args:
        spec: Training settings and where the shards are.
        dist: The backend's distribution hooks (rank, size, all-reduce).
        device: Device description for the result.

    Returns:
        This worker's final weights, per-epoch loss (mean over its steps), throughput.
    """
    import tensorflow as tf

    from marketlab.forecast.model import build_model, pinball_loss, weights_digest
    from marketlab.forecast.windows import N_FEATURES, shard_windows

    tf.keras.utils.set_random_seed(spec.seed)
    frame = read_shard(spec.shard_uri, dist.rank)
    x, y = shard_windows(frame, spec.window, spec.horizon, spec.stride)
    if len(x) == 0:
        raise ValueError(f"worker {dist.rank}: shard has no training window")

    def make():
        return training_dataset(x, y, spec.batch_size, spec.seed + dist.rank)

    with dist.scope():
        model = build_model(spec.window, N_FEATURES, spec.horizon, spec.lstm_units, spec.dense_units, spec.seed)
        opt = dist.optimizer(tf.keras.optimizers.Adam(spec.learning_rate * dist.size))
        model.compile(optimizer=opt, loss=pinball_loss)
    data = dist.dataset(make)
    epoch_s: list[float] = []

    class _EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_s.append(time.perf_counter() - self._t)

    t0 = time.perf_counter()
    hist = model.fit(data, epochs=spec.epochs, steps_per_epoch=spec.steps_per_epoch, verbose=0,
                     callbacks=[*dist.callbacks(), _EpochTimer()])
    seconds = time.perf_counter() - t0
    weights = [np.asarray(w) for w in model.get_weights()]
    return WorkerResult(
        rank=dist.rank, size=dist.size, backend=dist.name, weights=weights, digest=weights_digest(weights),
        loss=[float(v) for v in hist.history["loss"]], n_samples=int(len(x)),
        samples_trained=spec.epochs * spec.steps_per_epoch * spec.batch_size, train_seconds=seconds, device=device,
        extra={"pid": os.getpid(), "epoch_seconds": epoch_s,
               "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads()},
    )
