"""What every worker of either launcher backend shares, whatever model it trains.

A backend only supplies a :class:`Distribution`: how replicas agree on initial weights,
all-reduce gradients and split the input. A model supplies a :class:`TrainTask`: a small
picklable spec whose ``train(dist, device)`` reads its own shard on the worker (so no
training row passes through the Spark driver) and returns a :class:`WorkerResult`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass
class WorkerResult:
    """What one worker hands back to the driver (small: weights of a small model, figures)."""

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


@runtime_checkable
class TrainTask(Protocol):
    """A model's training spec as the launchers see it (pickled to the workers).

    Attributes:
        threads: TensorFlow intra-op threads of the worker (0 = TensorFlow's default).
        use_gpu: Use one GPU per worker if visible.
    """

    threads: int
    use_gpu: bool

    def train(self, dist: Distribution, device: str = "cpu") -> WorkerResult:
        """Train on this worker's shard in lock-step with the other workers."""
        ...


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


def training_dataset(x, y, batch_size: int, seed: int, weights=None):
    """Endless shuffled batches of one worker's examples (``fit`` bounds each epoch by steps).

    Args:
        x: Inputs, an array ``(n, ...)`` or a tuple/dict of such arrays.
        y: Targets, an array ``(n, ...)`` or a tuple/dict of such arrays.
        batch_size: Batch size; the last partial batch of a pass is dropped so every
            step has the same shape on every worker.
        seed: Shuffle seed (the base seed plus the worker's rank).
        weights: Optional sample weights shaped like ``y`` (per output, per position).

    Returns:
        A ``tf.data.Dataset`` of ``(x, y)`` (or ``(x, y, weights)``) batches.
    """
    import tensorflow as tf

    n = len(next(iter(x.values())) if isinstance(x, dict) else x[0] if isinstance(x, tuple) else x)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if weights is None else (x, y, weights))
    ds = ds.shuffle(min(n, 100_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat().batch(batch_size, drop_remainder=True).prefetch(2)
    # No autotuning: nothing here is AUTOTUNE, and its optimisation thread is only joined
    # when the iterator is destroyed at the end of ``fit``, after waiting out its current
    # period (which doubles up to 60 s). That made ``fit`` return 17-18 s after the last
    # epoch at full scale, with both cores idle.
    opts = tf.data.Options()
    opts.autotune.enabled = False
    return ds.with_options(opts)


def weights_digest(weights: Sequence[np.ndarray]) -> str:
    """sha256 of the weights' bytes: equal digests = bit-identical replicas."""
    h = hashlib.sha256()
    for w in weights:
        h.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return h.hexdigest()


def epoch_timer(out: list[float]):
    """A Keras callback appending each epoch's seconds to ``out``."""
    import tensorflow as tf

    class _EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            out.append(time.perf_counter() - self._t)

    return _EpochTimer()


def early_stopping(score: Callable[[Any], float], patience: int, rank: int, checkpoint_path: str | None = None,
                   min_delta: float = 0.0):
    """A Keras callback: stop when ``score(model)`` (lower is better) stops improving.

    Every worker scores the same whole validation slice with the same (all-reduced)
    weights, so all of them reach the same decision at the same epoch without a
    collective; a worker stopping alone would leave the others waiting in an all-reduce.
    The best weights are restored at the end and, on rank 0 only, written to
    ``checkpoint_path`` (``.npz``) each time they improve.

    Args:
        score: Validation loss of a model (computed without the backend, on local data).
        patience: Epochs without improvement before stopping.
        rank: This worker's rank.
        checkpoint_path: Where rank 0 keeps the best weights; None for none.
        min_delta: Smallest decrease that counts as an improvement.

    Returns:
        The callback; its ``history`` lists each epoch's score and ``best_epoch`` the
        0-based epoch whose weights were kept.
    """
    import tensorflow as tf

    class _EarlyStopping(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history: list[float] = []
            self.best, self.best_epoch, self.best_weights, self.wait = float("inf"), -1, None, 0

        def on_epoch_end(self, epoch, logs=None):
            value = float(score(self.model))
            self.history.append(value)
            if logs is not None:
                logs["val_score"] = value
            if value < self.best - min_delta:
                self.best, self.best_epoch, self.wait = value, epoch, 0
                self.best_weights = [np.asarray(w) for w in self.model.get_weights()]
                if checkpoint_path and rank == 0:
                    os.makedirs(os.path.dirname(checkpoint_path) or ".", exist_ok=True)
                    np.savez(checkpoint_path, *self.best_weights)
            else:
                self.wait += 1
                if self.wait >= patience:
                    self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return _EarlyStopping()


def load_checkpoint(path: str) -> list[np.ndarray]:
    """Weights written by :func:`early_stopping`, in model order."""
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]
