"""The sequence models' training tasks, run on every worker by :mod:`marketlab.training.launch`.

Each worker reads the staged histories (cut before the test cutoff, so the test window
never reaches training), trains on its own shard's examples from before the validation
cutoff, and scores the whole validation slice (targets in ``[val_cutoff, cutoff)``) after
every epoch for early stopping: all workers see the same slice with the same weights and
stop at the same epoch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from marketlab.sequence import encode
from marketlab.training.worker import Distribution, WorkerResult, early_stopping, epoch_timer, training_dataset, weights_digest


@dataclass(frozen=True)
class SequenceTrainSpec:
    """What a worker needs (pickled to the workers).

    Attributes:
        kind: ``transformer`` or ``vae``.
        stage_uri: Staged histories; rows of shard ``r`` are under ``<stage_uri>/shard=r``.
        vocabulary: Item codes of the training window (index = position + 1).
        config: Arguments of the model builder.
        val_cutoff: First day of the validation window (days since 1970).
        cutoff: First day of the test window; also the end of the validation window.
        horizon_days: Length of the target windows (and of the purchase horizon).
        epochs: Most epochs.
        patience: Epochs without validation improvement before stopping.
        steps_per_epoch: Steps per epoch, equal on every worker (collectives must match).
        batch_size: Per-worker batch.
        learning_rate: Single-worker Adam step (scaled by the number of workers).
        buy_weight: Weight of the purchase head's loss.
        max_val_customers: Cap of the validation slice.
        shuffle_history: The shuffle test: each history's items in a random order.
        checkpoint_dir: Where rank 0 keeps the best weights ("" for none).
        seed: Seed.
        use_gpu: Use one GPU per worker if visible.
        threads: TensorFlow intra-op threads of the worker (0 = TensorFlow's default).
    """

    kind: str
    stage_uri: str
    vocabulary: tuple[str, ...]
    config: dict
    val_cutoff: int
    cutoff: int
    horizon_days: int
    epochs: int
    patience: int
    steps_per_epoch: int
    batch_size: int
    learning_rate: float
    buy_weight: float = 1.0
    max_val_customers: int = 2000
    shuffle_history: bool = False
    checkpoint_dir: str = ""
    seed: int = 7
    use_gpu: bool = False
    threads: int = 0

    def train(self, dist: Distribution, device: str = "cpu") -> WorkerResult:
        """The launchers' entry point (:class:`marketlab.training.worker.TrainTask`)."""
        return train_sequence_model(self, dist, device)


def local_path(uri: str) -> str:
    """A ``file:`` URI as a path pyarrow opens."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return uri[len("file:"):] if uri.startswith("file:") else uri


def read_staged(uri: str, shard: int | None = None):
    """Staged histories as pandas (``customer_key, items, days, shard``), one shard or all."""
    import pyarrow.dataset as ds

    data = ds.dataset(local_path(uri), format="parquet", partitioning="hive")
    flt = (ds.field("shard") == shard) if shard is not None else None
    return data.to_table(columns=["customer_key", "items", "days", "shard"], filter=flt).to_pandas()


def histories(frame, vocabulary: tuple[str, ...], shuffle_seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Index histories of a staged frame (unknown items dropped; optionally shuffled)."""
    index = {code: i + 1 for i, code in enumerate(vocabulary)}
    out = [encode.to_indices(list(it), list(d), index) for it, d in zip(frame["items"], frame["days"])]
    if shuffle_seed is not None:
        rng = np.random.default_rng(shuffle_seed)
        out = [encode.shuffled(i, d, rng) for i, d in out]
    return out


def transformer_examples(hs, max_len: int, val_cutoff: int, horizon: int):
    """Training examples of the Transformer from histories, using days before ``val_cutoff`` only.

    Two kinds, one row each per customer: *next item* (input = the history before
    ``val_cutoff`` without its last item, target at every position = the item after it;
    needs two items) and *purchase* (input = the history before ``val_cutoff - horizon``,
    label = a basket in the horizon after it; needs one earlier item). Each row's weights
    switch off the other head's loss.

    Returns:
        ``(x, y, w)`` dicts of arrays (empty arrays when there is no example).
    """
    anchor = val_cutoff - horizon
    rows_n, rows_b, labels, tgt = [], [], [], []
    for idx, days in hs:
        i, d = encode.before(idx, days, val_cutoff)
        if len(i) >= 2:
            rows_n.append((i[:-1], d[:-1], d[-1]))
            tgt.append(encode.pad_left(i[1:], max_len))
        bi, bd = encode.before(idx, days, anchor)
        if len(bi) >= 1:
            rows_b.append((bi, bd, anchor))
            labels.append(float(np.any((days >= anchor) & (days < val_cutoff))))
    xs = [encode.sequence_inputs([(i, d) for i, d, _ in rows], max_len, [a for *_, a in rows]) if rows else
          {"items": np.zeros((0, max_len), np.int32), "gaps": np.zeros((0, max_len), np.float32),
           "recency": np.zeros((0, 1), np.float32)} for rows in (rows_n, rows_b)]
    x = {k: np.concatenate([xs[0][k], xs[1][k]]) for k in xs[0]}
    n_n, n_b = len(rows_n), len(rows_b)
    nxt = np.concatenate([np.asarray(tgt, np.int32).reshape(n_n, max_len), np.zeros((n_b, max_len), np.int32)])
    buy = np.concatenate([np.zeros(n_n, np.float32), np.asarray(labels, np.float32)]).reshape(-1, 1)
    w_next = (nxt != 0).astype(np.float32)
    w_buy = np.concatenate([np.zeros(n_n, np.float32), np.ones(n_b, np.float32)])
    return x, {"next": nxt, "buy": buy}, {"next": w_next, "buy": w_buy}


def vae_examples(hs, n_items: int, val_cutoff: int) -> np.ndarray:
    """Mult-VAE rows: the multi-hot history before ``val_cutoff`` of each customer with one."""
    cut = [encode.before(i, d, val_cutoff) for i, d in hs]
    return encode.multi_hot([h for h in cut if len(h[0])], n_items)


def validation_slice(hs, kind: str, max_len: int, n_items: int, val_cutoff: int, cutoff: int, horizon: int):
    """Inputs at ``val_cutoff``, next-basket targets and purchase labels of the validation window.

    Customers with history before ``val_cutoff``; those without a basket in the window
    count for the purchase head only.
    """
    inputs, targets, bought = [], [], []
    for idx, days in hs:
        i, d = encode.before(idx, days, val_cutoff)
        if len(i) == 0:
            continue
        inputs.append((i, d))
        # The next basket's items: what the next-item head is trained to predict. (The
        # whole window's items are the ranking target of the model choice; as a loss they
        # would penalise a confident, correct next item.)
        later = days[(days >= val_cutoff) & (days < cutoff)]
        targets.append(encode.window(idx, days, later.min(), later.min() + 1) if len(later) else later[:0])
        bought.append(float(np.any((days >= val_cutoff) & (days < val_cutoff + horizon))))
    x = encode.multi_hot(inputs, n_items) if kind == "vae" else encode.sequence_inputs(inputs, max_len, val_cutoff)
    return x, targets, np.asarray(bought, np.float32)


def validation_loss(scores: np.ndarray, targets, buy_prob: np.ndarray | None = None, bought: np.ndarray | None = None,
                    buy_weight: float = 1.0) -> float:
    """Mean over customers with targets of the mean negative log-softmax of their target items,
    plus ``buy_weight`` x the purchase head's log loss where there is one."""
    s = scores.astype(np.float64)
    s[:, 0] = -np.inf
    m = s.max(axis=1, keepdims=True)
    logp = s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))
    per = [-logp[r, t].mean() for r, t in enumerate(targets) if len(t)]
    loss = float(np.mean(per)) if per else 0.0
    if buy_prob is not None and bought is not None and len(bought):
        p = np.clip(buy_prob.astype(np.float64), 1e-7, 1 - 1e-7)
        loss += buy_weight * float(-np.mean(bought * np.log(p) + (1 - bought) * np.log(1 - p)))
    return loss


def _val_subset(frame, cap: int):
    # The same customers on every worker: the smallest hashes of the key, not a random draw.
    if len(frame) <= cap:
        return frame
    order = frame["customer_key"].map(lambda k: hash_key(k)).sort_values(kind="stable").index[:cap]
    return frame.loc[sorted(order)]


def hash_key(key: str) -> int:
    """A process-independent hash of a customer key (Python's ``hash`` is salted per process)."""
    import zlib

    return zlib.crc32(key.encode("utf-8"))


def train_sequence_model(spec: SequenceTrainSpec, dist: Distribution, device: str = "cpu") -> WorkerResult:
    """Train one sequence model on this worker's shard in lock-step with the other workers.

    Returns:
        This worker's best weights (early stopping on the validation slice), per-epoch loss
        and validation score, throughput.

    Raises:
        ValueError: The shard has no training example.
    """
    import tensorflow as tf

    from marketlab.sequence.models import build, multinomial_nll, predict

    tf.keras.utils.set_random_seed(spec.seed)
    everyone = read_staged(spec.stage_uri)
    shuffle_seed = spec.seed if spec.shuffle_history else None
    mine = everyone[everyone["shard"] == dist.rank].sort_values("customer_key")
    hs = histories(mine, spec.vocabulary, shuffle_seed)
    n_items = len(spec.vocabulary) + 1
    max_len = spec.config.get("max_len", 0)
    if spec.kind == "vae":
        x = vae_examples(hs, n_items, spec.val_cutoff)
        y, w = x, None
    else:
        x, y, w = transformer_examples(hs, max_len, spec.val_cutoff, spec.horizon_days)
    n = len(y) if spec.kind == "vae" else len(y["buy"])
    if n == 0:
        # The dataset repeats, so a small shard only trains on its examples more often.
        raise ValueError(f"worker {dist.rank}: its shard has no training example")
    val = _val_subset(everyone.sort_values("customer_key").reset_index(drop=True), spec.max_val_customers)
    vx, vt, vbought = validation_slice(histories(val, spec.vocabulary, shuffle_seed), spec.kind, max_len, n_items,
                                       spec.val_cutoff, spec.cutoff, spec.horizon_days)

    def score(model) -> float:
        s, p = predict(model, spec.kind, vx)
        return validation_loss(s, vt, p, vbought if p is not None else None, spec.buy_weight)

    def make():
        return training_dataset(x, y, spec.batch_size, spec.seed + dist.rank, weights=w)

    with dist.scope():
        model = build(spec.kind, spec.config)
        opt = dist.optimizer(tf.keras.optimizers.Adam(spec.learning_rate * dist.size))
        if spec.kind == "vae":
            model.compile(optimizer=opt, loss=multinomial_nll)
        else:
            model.compile(optimizer=opt, loss={"next": tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                               "buy": tf.keras.losses.BinaryCrossentropy()},
                          loss_weights={"next": 1.0, "buy": spec.buy_weight})
    data = dist.dataset(make)
    epoch_s: list[float] = []
    ckpt = os.path.join(spec.checkpoint_dir, f"{spec.kind}{'_shuffled' if spec.shuffle_history else ''}.npz") \
        if spec.checkpoint_dir else None
    stopper = early_stopping(score, spec.patience, dist.rank, ckpt)
    t0 = time.perf_counter()
    hist = model.fit(data, epochs=spec.epochs, steps_per_epoch=spec.steps_per_epoch, verbose=0,
                     callbacks=[*dist.callbacks(), stopper, epoch_timer(epoch_s)])
    seconds = time.perf_counter() - t0
    weights = [np.asarray(v) for v in model.get_weights()]
    epochs_run = len(hist.history["loss"])
    return WorkerResult(
        rank=dist.rank, size=dist.size, backend=dist.name, weights=weights, digest=weights_digest(weights),
        loss=[float(v) for v in hist.history["loss"]], n_samples=int(n),
        samples_trained=epochs_run * spec.steps_per_epoch * spec.batch_size, train_seconds=seconds, device=device,
        extra={"pid": os.getpid(), "epoch_seconds": epoch_s, "val_score": stopper.history, "best_epoch": stopper.best_epoch,
               "n_val": len(vt), "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
               "checkpoint": ckpt or ""},
    )
