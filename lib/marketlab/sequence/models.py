"""The two Keras (2, ``tf.keras``) models: a SASRec-style Transformer and the Mult-VAE.

Transformer (Kang & McAuley 2018, trained with full softmax cross-entropy as in
Klenitskiy & Vasilev 2023): item + position embeddings plus the log time gap of each
position, pre-norm causal self-attention blocks, and two heads: next-item logits over the
whole catalogue at every position, and P(buy within the horizon) from the last position
and the recency at the scoring day.

Mult-VAE (Liang et al. 2018): L2-normalised multi-hot history with input dropout, a tanh
encoder to ``mu, logvar``, the reparameterised sample (the mean at inference), a tanh
decoder to logits; multinomial log-likelihood plus ``beta`` x KL.

Custom layers are registered serializable under ``marketlab``; importing this module is
enough to load a saved model. TensorFlow is imported lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _layers():
    import tensorflow as tf

    @tf.keras.saving.register_keras_serializable(package="marketlab")
    class PositionEmbedding(tf.keras.layers.Layer):
        """Learned embedding of the position index, added to the input."""

        def __init__(self, max_len: int, dim: int, **kw):
            super().__init__(**kw)
            self.max_len, self.dim = max_len, dim
            self.table = tf.keras.layers.Embedding(max_len, dim, name="table")

        def call(self, x):
            return x + self.table(tf.range(self.max_len))[None]

        def get_config(self):
            return {**super().get_config(), "max_len": self.max_len, "dim": self.dim}

    @tf.keras.saving.register_keras_serializable(package="marketlab")
    class CausalBlock(tf.keras.layers.Layer):
        """Pre-norm self-attention (causal, padding keys masked) and a feed-forward layer."""

        def __init__(self, dim: int, heads: int, dropout: float, seed: int, **kw):
            super().__init__(**kw)
            self.dim, self.heads, self.dropout, self.seed = dim, heads, dropout, seed
            init = tf.keras.initializers.GlorotUniform(seed=seed)
            self.norm1 = tf.keras.layers.LayerNormalization(epsilon=1e-6)
            self.att = tf.keras.layers.MultiHeadAttention(heads, dim // heads, dropout=dropout, kernel_initializer=init)
            self.norm2 = tf.keras.layers.LayerNormalization(epsilon=1e-6)
            self.ff1 = tf.keras.layers.Dense(dim, activation="gelu", kernel_initializer=init)
            self.ff2 = tf.keras.layers.Dense(dim, kernel_initializer=init)
            self.drop = tf.keras.layers.Dropout(dropout, seed=seed)

        def call(self, x, valid, training=None):
            n = tf.shape(x)[1]
            causal = tf.linalg.band_part(tf.ones((n, n), tf.bool), -1, 0)
            # A query may look at itself and earlier real items; a padded query still has
            # itself, so no attention row is empty.
            mask = tf.logical_and(causal[None], tf.logical_or(valid[:, None, :], tf.eye(n, dtype=tf.bool)[None]))
            h = self.norm1(x)
            x = x + self.drop(self.att(h, h, attention_mask=mask, training=training), training=training)
            return x + self.drop(self.ff2(self.ff1(self.norm2(x))), training=training)

        def get_config(self):
            return {**super().get_config(), "dim": self.dim, "heads": self.heads, "dropout": self.dropout,
                    "seed": self.seed}

    @tf.keras.saving.register_keras_serializable(package="marketlab")
    class Sampling(tf.keras.layers.Layer):
        """``mu + eps * sigma`` while training (``mu`` otherwise); adds ``beta`` x KL to the loss."""

        def __init__(self, beta: float, seed: int, **kw):
            super().__init__(**kw)
            self.beta, self.seed = beta, seed

        def call(self, inputs, training=None):
            mu, logvar = inputs
            kl = tf.reduce_mean(tf.reduce_sum(0.5 * (tf.exp(logvar) + tf.square(mu) - 1.0 - logvar), axis=-1))
            self.add_loss(self.beta * kl)
            if not training:
                return mu
            return mu + tf.exp(0.5 * logvar) * tf.random.normal(tf.shape(mu), seed=self.seed)

        def get_config(self):
            return {**super().get_config(), "beta": self.beta, "seed": self.seed}

    return PositionEmbedding, CausalBlock, Sampling


def build_transformer(n_items: int, max_len: int, dim: int = 64, heads: int = 2, blocks: int = 2,
                      dropout: float = 0.2, seed: int = 7):
    """The two-headed sequence Transformer.

    Args:
        n_items: Width of a score row (vocabulary + padding index 0).
        max_len: N, the items of history it reads.
        dim: Embedding width (a multiple of ``heads``).
        heads: Attention heads.
        blocks: Attention blocks.
        dropout: Dropout of embeddings, attention and feed-forward.
        seed: Initialiser seed (identical on every worker; the launchers also broadcast rank 0's).

    Returns:
        A model from ``{items (N,), gaps (N,), recency (1,)}`` to ``{next (N, n_items)
        logits, buy (1,) probability}``.
    """
    import tensorflow as tf

    PositionEmbedding, CausalBlock, _ = _layers()
    init = tf.keras.initializers.GlorotUniform(seed=seed)
    items = tf.keras.Input((max_len,), dtype="int32", name="items")
    gaps = tf.keras.Input((max_len,), dtype="float32", name="gaps")
    recency = tf.keras.Input((1,), dtype="float32", name="recency")
    emb = tf.keras.layers.Embedding(n_items, dim, embeddings_initializer=tf.keras.initializers.RandomNormal(0, 0.05, seed),
                                    name="item_embedding")(items)
    gap_emb = tf.keras.layers.Dense(dim, use_bias=False, kernel_initializer=init, name="gap_embedding")(
        tf.keras.layers.Reshape((max_len, 1))(gaps))
    h = PositionEmbedding(max_len, dim, name="position")(tf.keras.layers.Add()([emb, gap_emb]))
    h = tf.keras.layers.Dropout(dropout, seed=seed)(h)
    valid = tf.not_equal(items, 0)
    for b in range(blocks):
        h = CausalBlock(dim, heads, dropout, seed + 10 + b, name=f"block{b}")(h, valid)
    h = tf.keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(h)
    nxt = tf.keras.layers.Dense(n_items, kernel_initializer=init, name="next")(h)
    last = h[:, -1, :]
    buy = tf.keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init, name="buy")(
        tf.keras.layers.Concatenate()([last, recency]))
    return tf.keras.Model({"items": items, "gaps": gaps, "recency": recency}, {"next": nxt, "buy": buy},
                          name="sequence_transformer")


def multinomial_nll(y_true, logits):
    """Mult-VAE's reconstruction loss: ``-sum(x * log_softmax(logits))`` per customer."""
    import tensorflow as tf

    return -tf.reduce_sum(tf.cast(y_true, logits.dtype) * tf.nn.log_softmax(logits, axis=-1), axis=-1)


def build_vae(n_items: int, hidden: int = 200, latent: int = 64, dropout: float = 0.5, beta: float = 0.2, seed: int = 7):
    """The Mult-VAE (one hidden layer each side, as in Liang et al.'s best setting).

    Args:
        n_items: Width of a score row (vocabulary + padding index 0).
        hidden: Encoder/decoder width.
        latent: Latent dimension.
        dropout: Input dropout (the denoising of the paper).
        beta: Weight of the KL term (the paper's annealed value settles near 0.2).
        seed: Initialiser seed.

    Returns:
        A model from the multi-hot history ``(n_items,)`` to item logits ``(n_items,)``.
    """
    import tensorflow as tf

    _, _, Sampling = _layers()
    init = tf.keras.initializers.GlorotUniform(seed=seed)
    x = tf.keras.Input((n_items,), dtype="float32", name="history")
    h = tf.keras.layers.UnitNormalization(name="l2")(x)
    h = tf.keras.layers.Dropout(dropout, seed=seed)(h)
    h = tf.keras.layers.Dense(hidden, activation="tanh", kernel_initializer=init, name="enc")(h)
    mu = tf.keras.layers.Dense(latent, kernel_initializer=init, name="mu")(h)
    logvar = tf.keras.layers.Dense(latent, kernel_initializer=init, name="logvar")(h)
    z = Sampling(beta, seed, name="z")([mu, logvar])
    h = tf.keras.layers.Dense(hidden, activation="tanh", kernel_initializer=init, name="dec")(z)
    out = tf.keras.layers.Dense(n_items, kernel_initializer=init, name="logits")(h)
    return tf.keras.Model(x, out, name="mult_vae")


def build(kind: str, config: dict[str, Any]):
    """A model from its kind (``transformer`` / ``vae``) and :func:`build_transformer`'s or :func:`build_vae`'s arguments."""
    if kind == "vae":
        return build_vae(**config)
    return build_transformer(**config)


def predict(model, kind: str, inputs, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray | None]:
    """Next-item scores ``(n, n_items)`` (padding column at -inf) and, for the Transformer, P(buy) ``(n,)``."""
    n = len(inputs["items"]) if kind != "vae" else len(inputs)
    scores, buys = [], []
    for i in range(0, n, batch_size):
        if kind == "vae":
            out = model(inputs[i:i + batch_size], training=False).numpy()
        else:
            res = model({k: v[i:i + batch_size] for k, v in inputs.items()}, training=False)
            out = res["next"][:, -1, :].numpy()
            buys.append(res["buy"].numpy()[:, 0])
        scores.append(out)
    width = model.output_shape[-1] if kind == "vae" else model.output_shape["next"][-1]
    s = np.concatenate(scores) if scores else np.zeros((0, width), np.float32)
    s[:, 0] = -np.inf
    return s, (np.concatenate(buys) if buys else np.zeros(0, np.float32)) if kind != "vae" else None
