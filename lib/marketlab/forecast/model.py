"""The LSTM: window of per-day features -> P50 and P90 of the next ``horizon`` days.

Trained on the pinball (quantile) loss of both quantiles at once. P90 is P50 plus a
softplus, so the quantiles never cross. Outputs are in scaled units (``units / scale``).
TensorFlow is imported lazily: the driver of a job that only plans work needs none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marketlab.training.worker import weights_digest  # noqa: F401  (re-exported: forecast's callers)

QUANTILES = (0.5, 0.9)


def pinball_loss(y_true, y_pred):
    """Mean pinball loss of ``y_pred[..., q]`` for the quantiles of :data:`QUANTILES`.

    Args:
        y_true: ``(batch, horizon)``.
        y_pred: ``(batch, horizon, 2)``.
    """
    import tensorflow as tf

    y = tf.expand_dims(tf.cast(y_true, y_pred.dtype), -1)
    q = tf.constant(QUANTILES, dtype=y_pred.dtype)
    err = y - y_pred
    return tf.reduce_mean(tf.maximum(q * err, (q - 1.0) * err), axis=[-2, -1])


def build_model(window: int, n_features: int, horizon: int, lstm_units: int = 32, dense_units: int = 32, seed: int = 7):
    """Keras (2, ``tf.keras``) model; build it inside a strategy scope where one applies.

    Args:
        window: Input days.
        n_features: Features per day.
        horizon: Output days.
        lstm_units: LSTM width.
        dense_units: Width of the dense layer before the quantile head.
        seed: Initialiser seed (identical on every worker; Horovod/TF also broadcast rank 0's).
    """
    import tensorflow as tf

    init = tf.keras.initializers.GlorotUniform(seed=seed)
    inp = tf.keras.Input(shape=(window, n_features), name="history")
    h = tf.keras.layers.LSTM(lstm_units, kernel_initializer=init,
                             recurrent_initializer=tf.keras.initializers.Orthogonal(seed=seed + 1), name="lstm")(inp)
    h = tf.keras.layers.Dense(dense_units, activation="relu", kernel_initializer=init, name="dense")(h)
    p50 = tf.keras.layers.Dense(horizon, kernel_initializer=init, name="p50")(h)
    gap = tf.keras.layers.Dense(horizon, activation="softplus", kernel_initializer=init, name="p90_gap")(h)
    p90 = tf.keras.layers.Add(name="p90")([p50, gap])
    # Built-in layers only (no Lambda), so the saved model loads anywhere without custom code.
    stack = [tf.keras.layers.Reshape((horizon, 1), name=f"{n}_col")(t) for n, t in (("p50", p50), ("p90", p90))]
    out = tf.keras.layers.Concatenate(axis=-1, name="quantiles")(stack)
    return tf.keras.Model(inp, out, name="demand_lstm")


def model_config(window: int, n_features: int, horizon: int, lstm_units: int, dense_units: int, seed: int) -> dict[str, Any]:
    """The arguments of :func:`build_model` (sent with the weights to inference tasks)."""
    return dict(window=window, n_features=n_features, horizon=horizon, lstm_units=lstm_units,
                dense_units=dense_units, seed=seed)


def predict_quantiles(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """``(n, horizon, 2)`` scaled P50/P90, clipped at 0 (demand is never negative)."""
    if len(x) == 0:
        h = int(model.output_shape[1])
        return np.zeros((0, h, 2), np.float32)
    out = np.concatenate([model(x[i:i + batch_size], training=False).numpy() for i in range(0, len(x), batch_size)])
    return np.maximum(out, 0.0)
