"""Inference for every customer in Spark: the served model broadcast, ``mapInPandas``.

No customer passes through the driver: each task rebuilds the model from the broadcast
weights once and scores its partition's histories in batches.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from marketlab import constants as C

SCHEMA = T.StructType([
    T.StructField(C.CUSTOMER_KEY, T.StringType(), False),
    T.StructField("rank", T.IntegerType(), False),
    T.StructField(C.STOCK_CODE, T.StringType(), False),
    T.StructField("score", T.DoubleType(), False),
    T.StructField("source", T.StringType(), False),
    T.StructField("p_buy", T.DoubleType(), True),
    T.StructField("horizon_days", T.IntegerType(), False),
    T.StructField(C.AS_OF, T.DateType(), False),
])


@dataclass
class Served:
    """What the scoring tasks need (broadcast once).

    Attributes:
        source: Served ranking: ``transformer``, ``vae``, ``repeat``, ``popular`` or ``itemcf``.
        vocabulary: Item codes (index = position + 1).
        popularity: Distinct customers per item index (fallback and tie-breaks).
        models: Kind -> ``(config, weights)`` of the trained models needed here.
        similarity: Item-item matrix for ``itemcf``.
        max_len: The Transformer's N.
    """

    source: str
    vocabulary: tuple[str, ...]
    popularity: np.ndarray
    models: dict[str, tuple[dict, list[np.ndarray]]] = field(default_factory=dict)
    similarity: sp.csr_matrix | None = None
    max_len: int = 50


def score_partition(frames: Iterator[pd.DataFrame], served: Served, as_of: int, top_k: int, horizon: int,
                    batch: int = 512) -> Iterator[pd.DataFrame]:
    """Top-k rows and P(buy) for the histories of one partition (``customer_key, items, days``)."""
    from marketlab.sequence import baselines as B
    from marketlab.sequence import encode
    from marketlab.sequence.data import from_day
    from marketlab.sequence.evaluate import top_k as top

    built: dict[str, Any] = {}

    def model(kind: str):
        if kind not in built:
            from marketlab.sequence.models import build

            config, weights = served.models[kind]
            m = build(kind, config)
            m.set_weights(weights)
            built[kind] = m
        return built[kind]

    index = {c: i + 1 for i, c in enumerate(served.vocabulary)}
    codes = np.asarray(("",) + tuple(served.vocabulary), dtype=object)
    day = from_day(as_of)
    for frame in frames:
        for lo in range(0, len(frame), batch):
            part = frame.iloc[lo:lo + batch]
            hs = [encode.to_indices(list(i), list(d), index) for i, d in zip(part[ITEMS_COL], part[DAYS_COL])]
            scores = _scores(served, hs, model, as_of)
            p_buy = None
            if "transformer" in served.models:
                from marketlab.sequence.models import predict

                _, p_buy = predict(model("transformer"), "transformer",
                                   encode.sequence_inputs(hs, served.max_len, as_of))
            known = np.array([len(h[0]) > 0 for h in hs])
            pop = B.popular_scores(1, served.popularity)[0]
            scores[~known] = pop  # nothing the models know: the popular items
            idx = top(scores, top_k)
            n, k = idx.shape
            yield pd.DataFrame({
                C.CUSTOMER_KEY: np.repeat(part[C.CUSTOMER_KEY].to_numpy(), k),
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n),
                C.STOCK_CODE: codes[idx.ravel()],
                "score": np.take_along_axis(scores, idx, axis=1).ravel().astype(np.float64),
                "source": np.repeat(np.where(known, served.source, "popular"), k),
                "p_buy": np.repeat(p_buy.astype(np.float64), k) if p_buy is not None else np.full(n * k, np.nan),
                "horizon_days": np.full(n * k, horizon, np.int32),
                C.AS_OF: [day] * (n * k),
            })


ITEMS_COL, DAYS_COL = "items", "days"


def _scores(served: Served, hs, model, as_of: int) -> np.ndarray:
    from marketlab.sequence import baselines as B
    from marketlab.sequence import encode
    from marketlab.sequence.models import predict

    if served.source == "transformer":
        return predict(model("transformer"), "transformer", encode.sequence_inputs(hs, served.max_len, as_of))[0]
    if served.source == "vae":
        return predict(model("vae"), "vae", encode.multi_hot(hs, len(served.vocabulary) + 1))[0]
    if served.source == "repeat":
        return B.repeat_scores(hs, served.popularity)
    if served.source == "itemcf":
        return B.itemcf_scores(hs, served.similarity, served.popularity)
    return B.popular_scores(len(hs), served.popularity)


def score_all(hist: DataFrame, served: Served, as_of: dt.date | int, top_k: int, horizon: int) -> DataFrame:
    """``gold.sequence_scores`` rows for every customer of ``hist`` (``customer_key, items, days``)."""
    from marketlab.sequence.data import to_day

    day = as_of if isinstance(as_of, int) else to_day(as_of)
    bc = hist.sparkSession.sparkContext.broadcast(served)

    def run(frames):
        yield from score_partition(frames, bc.value, day, top_k, horizon)

    return hist.select(C.CUSTOMER_KEY, ITEMS_COL, DAYS_COL).mapInPandas(run, SCHEMA)
