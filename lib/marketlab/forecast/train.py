"""The one LSTM training function, run by every worker of either launcher backend.

A backend only supplies a :class:`Distribution`: how replicas agree on initial weights,
all-reduce gradients and split the input. The data each worker trains on is its own shard
of the staged training frame (read here, on the worker, from shared storage), so no
training row passes through the Spark driver.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


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


@dataclass
class WorkerResult:
    """What one worker hands back to the driver (small: weights of a tiny model, figures)."""

    rank: int
    size: int
    backend: str
    weights: list[np.ndarray]
    digest: str
    loss: list[float]
    n_samples: int
    samples_trained: int
    train_seconds: float
    device: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        """This worker's samples per second over the whole ``fit`` (graph tracing included)."""
        return self.samples_trained / self.train_seconds if self.train_seconds > 0 else float("nan")

    @property
    def steady_samples_per_second(self) -> float:
        """Samples per second of the epochs after the first (tracing and warm-up excluded)."""
        ep = self.extra.get("epoch_seconds", [])[1:]
        per_epoch = self.samples_trained / max(len(self.loss), 1)
        return per_epoch * len(ep) / sum(ep) if ep and sum(ep) > 0 else self.samples_per_second


class Distribution:
    """Hooks a backend gives the training function. The default is a single process."""

    name = "local"

    def __init__(self) -> None:
        self.rank, self.size = 0, 1

    def scope(self) -> contextlib.AbstractContextManager:
        """Context in which the model and optimizer are created."""
        return contextlib.nullcontext()

    def optimizer(self, opt):
        """Wrap the optimizer (gradient all-reduce where the backend does it there)."""
        return opt

    def callbacks(self) -> list:
        """Keras callbacks (initial weight broadcast, metric averaging)."""
        return []

    def dataset(self, make: Callable[[], Any]):
        """Turn the per-worker dataset factory into what ``fit`` consumes."""
        return make()


def read_shard(uri: str, rank: int):
    """This worker's rows of the staged frame as pandas (``series_id, date, z, scale, zero_share``)."""
    import pyarrow.dataset as ds

    path = f"{uri.rstrip('/')}/shard={rank}"
    if path.startswith("file:"):
        path = path[len("file:"):].replace("///", "/", 1) if path.startswith("file:///") else path[len("file:"):]
    table = ds.dataset(path, format="parquet").to_table(columns=["series_id", "date", "z", "scale", "zero_share"])
    return table.to_pandas()


def set_threads(threads: int) -> None:
    """Limit TensorFlow's CPU thread pools; must run before TensorFlow's runtime starts."""
    import tensorflow as tf

    if threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        # Two inter-op threads at least: a blocking collective (all-reduce) must not hold
        # the only thread that could run the op it waits for.
        tf.config.threading.set_inter_op_parallelism_threads(max(threads, 2))


def pin_gpu(local_rank: int, use_gpu: bool) -> str:
    """Make one GPU visible to this worker (by local rank) or hide all; returns the device."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not use_gpu or not gpus:
        if gpus:
            tf.config.set_visible_devices([], "GPU")
        return "cpu"
    gpu = gpus[local_rank % len(gpus)]
    tf.config.set_visible_devices(gpu, "GPU")
    tf.config.experimental.set_memory_growth(gpu, True)
    return f"gpu:{gpu.name}"


def training_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """Endless shuffled batches of one worker's windows (``fit`` bounds each epoch by steps).

    Args:
        x: Input windows ``(n, window, features)``.
        y: Targets ``(n, horizon)``.
        batch_size: Batch size; the last partial batch of a pass is dropped so every
            step has the same shape on every worker.
        seed: Shuffle seed (the base seed plus the worker's rank).

    Returns:
        A ``tf.data.Dataset`` of ``(x, y)`` batches.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(min(len(x), 100_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat().batch(batch_size, drop_remainder=True).prefetch(2)
    # No autotuning: nothing here is AUTOTUNE, and its optimisation thread is only joined
    # when the iterator is destroyed at the end of ``fit``, after waiting out its current
    # period (which doubles up to 60 s). That made ``fit`` return 17-18 s after the last
    # epoch at full scale, with both cores idle.
    opts = tf.data.Options()
    opts.autotune.enabled = False
    return ds.with_options(opts)


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
