"""Baselines scored in the same run as the models: popularity, repeat purchase, item-item CF, RFM.

All rank the same full vocabulary as the models (index 0 = padding, scored ``-inf``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.sequence.data import ITEMS, cut
from marketlab.sequence.encode import Vocabulary, multi_hot

BASELINES = ("popular", "repeat", "itemcf")


def popularity(hs: Sequence[tuple[np.ndarray, np.ndarray]], n_items: int) -> np.ndarray:
    """Distinct customers per item over the given histories."""
    pop = np.zeros(n_items, np.float64)
    for idx, _ in hs:
        pop[np.unique(idx)] += 1
    pop[0] = 0
    return pop


def _tiebreak(pop: np.ndarray) -> np.ndarray:
    # Below 1: orders items a customer-level score leaves tied, never overrides it.
    return 0.5 * pop / max(pop.max(), 1.0)


def popular_scores(n: int, pop: np.ndarray) -> np.ndarray:
    """Every customer gets the popularity row."""
    s = np.broadcast_to(pop, (n, len(pop))).astype(np.float64).copy()
    s[:, 0] = -np.inf
    return s


def repeat_scores(hs: Sequence[tuple[np.ndarray, np.ndarray]], pop: np.ndarray) -> np.ndarray:
    """The customer's own purchase counts, then popularity (the next-basket reality check's baseline)."""
    s = np.tile(_tiebreak(pop), (len(hs), 1))
    for r, (idx, _) in enumerate(hs):
        np.add.at(s[r], idx, 1.0)
    s[:, 0] = -np.inf
    return s


def itemcf_scores(hs: Sequence[tuple[np.ndarray, np.ndarray]], sim: sp.csr_matrix, pop: np.ndarray) -> np.ndarray:
    """``bought @ S`` (row j of S = the items similar to j), then popularity."""
    x = sp.csr_matrix(multi_hot(hs, sim.shape[0]))
    s = np.asarray((x @ sim).todense(), dtype=np.float64)
    s = s + _tiebreak(pop)[None] * (s.max(axis=1, keepdims=True) == 0)
    s[:, 0] = -np.inf
    return s


def item_similarity_matrix(hist: DataFrame, vocab: Vocabulary, before_day: int, neighbours: int = 50) -> sp.csr_matrix:
    """Item-item cosine of :func:`marketlab.recommend.models.item_similarity` on the histories before ``before_day``."""
    from marketlab.recommend.data import ITEM_IDX, STRENGTH, USER_IDX
    from marketlab.recommend.models import item_similarity

    spark = hist.sparkSession
    items = spark.createDataFrame([(code, i + 1) for i, code in enumerate(vocab.items)], ["_item", ITEM_IDX])
    rows = (cut(hist, end=before_day).select(C.CUSTOMER_KEY, F.explode(ITEMS).alias("_item"))
            .join(items, "_item").groupBy(C.CUSTOMER_KEY, ITEM_IDX).agg(F.count(F.lit(1)).cast("double").alias(STRENGTH)))
    users = rows.select(C.CUSTOMER_KEY).distinct().withColumn(
        USER_IDX, (F.row_number().over(Window.orderBy(C.CUSTOMER_KEY)) - 1).cast("int"))
    return item_similarity(rows.join(users, C.CUSTOMER_KEY).select(USER_IDX, ITEM_IDX, STRENGTH), vocab.size, neighbours)


def rfm_features(hs: Sequence[tuple[np.ndarray, np.ndarray]], as_of: int) -> np.ndarray:
    """Recency (log days since the last basket), frequency (log baskets) and log items, at ``as_of``."""
    out = np.zeros((len(hs), 3), np.float64)
    for r, (idx, days) in enumerate(hs):
        d = days[days < as_of]
        if len(d) == 0:
            out[r] = (np.log1p(3650.0), 0.0, 0.0)
            continue
        out[r] = (np.log1p(as_of - d.max()), np.log1p(len(np.unique(d))), np.log1p(len(d)))
    return out


def bought_in(hs: Sequence[tuple[np.ndarray, np.ndarray]], start: int, end: int) -> np.ndarray:
    """1 where the customer has a basket in ``[start, end)``."""
    return np.array([float(np.any((d >= start) & (d < end))) for _, d in hs])


def fit_rfm_propensity(hs: Sequence[tuple[np.ndarray, np.ndarray]], anchor: int, horizon: int):
    """Logistic regression of "a basket in the horizon after ``anchor``" on the RFM features there.

    Fitted on customers with history before ``anchor``; the same recipe (and window) the
    Transformer's purchase head trains on.
    """
    from sklearn.linear_model import LogisticRegression

    with_hist = [h for h in hs if np.any(h[1] < anchor)]
    x, y = rfm_features(with_hist, anchor), bought_in(with_hist, anchor, anchor + horizon)
    if len(np.unique(y)) < 2:
        return None
    return LogisticRegression(max_iter=1000).fit(x, y)
