"""One scorer for every model: dense per-user scores over the catalogue, top-k and AUC.

Popularity, item-item CF, content, ALS and the ALS + content blend all reduce to "a score
for each (user, catalogue item)", computed per batch of users inside ``mapInPandas``
tasks with numpy/scipy BLAS against a broadcast item side. Scoring every model through
the same code makes the comparison fair (same candidates, same exclusion of bought
items, same tie handling). For ALS the cost is the top-k, not the GEMM: see
:func:`top_k` and docs/benchmarks/recommender.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from scipy.stats import rankdata

from marketlab.recommend.data import ITEM_IDX, STRENGTH, USER_IDX

Kind = Literal["popular", "itemcf", "content", "als", "blend"]

SOURCE_ALS = "als"
SOURCE_CONTENT = "content"
SOURCE_POPULAR = "popular"
_BATCH = 256


@dataclass
class ItemSide:
    """What a scorer needs about the catalogue (``n_items`` rows, index = item_idx).

    Attributes:
        kind: Which score to compute.
        n_items: Catalogue size.
        popularity: Distinct training users per item (``popular``; also novelty).
        item_factors: ``n_items x rank`` ALS item factors (``als``/``blend``); imputed
            rows for cold items.
        cold: Boolean mask of items whose factors were imputed from content.
        similarity: ``n_items x n_items`` sparse item-item similarity (``itemcf``).
        tfidf: ``n_items x vocab`` L2-normalised TF-IDF rows (``content``/``blend``).
        content_weight: Weight of the content score in ``blend``.
    """

    kind: Kind
    n_items: int
    popularity: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    cold: np.ndarray | None = None
    similarity: sp.csr_matrix | None = None
    tfidf: sp.csr_matrix | None = None
    content_weight: float = 0.0
    extra: dict = field(default_factory=dict)


def _bought_matrix(items: list, strengths: list, n_items: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for r, (its, sts) in enumerate(zip(items, strengths)):
        if its is None:
            continue
        its = np.asarray(its, dtype=np.int64)
        rows.append(np.full(len(its), r))
        cols.append(its)
        vals.append(np.asarray(sts, dtype=np.float64) if sts is not None else np.ones(len(its)))
    if not rows:
        return sp.csr_matrix((len(items), n_items))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(items), n_items))


def _content_scores(bought: sp.csr_matrix, tfidf: sp.csr_matrix) -> np.ndarray:
    # User profile = sum of bought items' TF-IDF rows weighted by log units, L2-normalised;
    # the score is the cosine between the profile and each item.
    weights = bought.copy()
    weights.data = np.log1p(weights.data)
    profile = (weights @ tfidf).tocsr()
    norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1))).ravel()
    norms[norms == 0] = 1.0
    profile = sp.diags(1.0 / norms) @ profile
    return np.asarray((profile @ tfidf.T).todense(), dtype=np.float64)


def score_matrix(side: ItemSide, factors: np.ndarray | None, bought: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores of a batch of users over the whole catalogue.

    Args:
        side: The model's item side.
        factors: ``b x rank`` user factors (ALS kinds); rows of NaN for unknown users.
        bought: ``b x n_items`` training strengths of the batch.

    Returns:
        ``(scores, content_part)``: ``b x n_items`` scores and, for ``blend``, the
        weighted content part (to label the source of each recommendation).
    """
    b = bought.shape[0]
    if side.kind == "popular":
        return np.tile(side.popularity.astype(np.float64), (b, 1)), None
    if side.kind == "itemcf":
        binary = bought.copy()
        binary.data = np.ones_like(binary.data)
        return np.asarray((binary @ side.similarity).todense(), dtype=np.float64), None
    if side.kind == "content":
        return _content_scores(bought, side.tfidf), None
    # float32 like the factors themselves (Spark ALS stores Array[Float]); a float64 GEMM
    # would double the memory traffic for digits the factors do not have. Unknown users
    # (NaN rows) score 0 everywhere.
    f32 = np.nan_to_num(np.asarray(factors, dtype=np.float32), nan=0.0)
    als = f32 @ _item_factors_t(side)
    if side.kind == "als":
        return als, None
    content = side.content_weight * _content_scores(bought, side.tfidf)
    return als + content, content


def apply_bought(scores: np.ndarray, bought: sp.csr_matrix, mode: str, weight: float) -> np.ndarray:
    """Exclude (``-inf``) or down-weight the items each user already bought."""
    if mode == "keep":
        return scores
    bought = bought.tocsr()
    # From the CSR structure directly: ``nonzero()`` builds a COO copy, a visible cost per batch.
    nz = bought.data != 0
    rows = np.repeat(np.arange(bought.shape[0]), np.diff(bought.indptr))[nz]
    cols = bought.indices[nz]
    if mode == "exclude" or weight == 0.0:
        scores[rows, cols] = -np.inf
    else:
        s = scores[rows, cols]
        # Shrink towards -inf whatever the sign (ALS scores can be negative).
        scores[rows, cols] = np.where(s > 0, s * weight, s / weight)
    return scores


def _item_factors_t(side: ItemSide) -> np.ndarray:
    # Transposed float32 copy made once per task (the side is a broadcast value), not per batch.
    cached = side.extra.get("_item_factors_t")
    if cached is None:
        cached = np.ascontiguousarray(np.asarray(side.item_factors, dtype=np.float32).T)
        side.extra["_item_factors_t"] = cached
    return cached


def _top_k_exact(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    # The k-th best value per row is exact from a partition; every item above it is in,
    # and the items equal to it fill the remaining places by lower index.
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= room))
    rows, cols = np.nonzero(keep)  # row-major: k per row, in index order
    idx = cols.reshape(scores.shape[0], k)
    vals = scores[rows, cols].reshape(scores.shape[0], k)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)


def top_k(scores: np.ndarray, k: int, block: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` best items per row, best first, ties by lower index.

    A full partition of every row (``argpartition``) costs ~10 ns per score and was the
    scorer's largest cost. Instead each row is cut into blocks of ``block`` items: the
    k best items lie in the blocks whose maximum is at least the k-th largest block
    maximum (each such maximum is itself a score, so there are k scores at or above it),
    and only those k blocks are sorted. Rows with tied block maxima (popularity scores)
    fall back to an exact partition when the candidates would not be fewer.

    Args:
        scores: ``b x n`` scores (``-inf`` = excluded; callers drop non-finite results).
        k: Items per row (capped at ``n``).
        block: Block width of the candidate search.
    """
    b, n = scores.shape
    k = min(k, n)
    nb = -(-n // block)
    if nb <= 4 * k:
        return _top_k_exact(scores, k)
    padded = scores
    if nb * block != n:
        padded = np.full((b, nb * block), -np.inf, dtype=scores.dtype)
        padded[:, :n] = scores
    blocks = padded.reshape(b, nb, block)
    maxima = blocks.max(axis=2)
    kth_max = np.partition(maxima, nb - k, axis=1)[:, nb - k:nb - k + 1]
    chosen = maxima >= kth_max
    width = int(chosen.sum(axis=1).max())
    if width > 4 * k:
        return _top_k_exact(scores, k)
    # Rows with fewer chosen blocks than the widest row take extra (unneeded) blocks; the
    # candidates stay in item order so that a stable sort breaks ties by lower index.
    picked = np.sort(np.argsort(~chosen, axis=1, kind="stable")[:, :width], axis=1)
    cand = np.take_along_axis(blocks, picked[:, :, None], axis=1).reshape(b, width * block)
    cand_idx = (picked[:, :, None] * block + np.arange(block)).reshape(b, width * block)
    order = np.argsort(-cand, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cand_idx, order, axis=1), np.take_along_axis(cand, order, axis=1)


def user_auc(scores: np.ndarray, train_items: np.ndarray, test_items: np.ndarray) -> float:
    """ROC AUC of one user's scores: held-out items vs. every item not in training.

    Ties count one half (average ranks). Returns NaN without positives or negatives.
    """
    n = scores.shape[0]
    candidate = np.ones(n, dtype=bool)
    candidate[train_items] = False
    label = np.zeros(n, dtype=bool)
    label[test_items] = True
    label &= candidate
    pos = int(label.sum())
    neg = int(candidate.sum()) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores[candidate])
    rank_pos = ranks[label[candidate]].sum()
    return float((rank_pos - pos * (pos + 1) / 2) / (pos * neg))


OUT_SCHEMA = T.StructType([
    T.StructField(USER_IDX, T.IntegerType()),
    T.StructField("items", T.ArrayType(T.IntegerType())),
    T.StructField("scores", T.ArrayType(T.DoubleType())),
    T.StructField("sources", T.ArrayType(T.StringType())),
    T.StructField("auc", T.DoubleType()),
])


def score_users(
    users: DataFrame,
    side: ItemSide,
    k: int,
    bought_mode: str = "exclude",
    bought_weight: float = 0.5,
    with_auc: bool = False,
) -> DataFrame:
    """Top-k (and optionally AUC) per user, computed in executor tasks.

    Args:
        users: One row per user: ``user_idx``, ``factors`` (array<float>, null when the
            model has none), ``train_items`` / ``train_strength`` (arrays, may be null),
            ``test_items`` (array<int>, only with ``with_auc``).
        side: Item side of the model (broadcast to the tasks).
        k: Recommendations per user.
        bought_mode / bought_weight: Handling of already-bought items.
        with_auc: Also compute the per-user AUC on ``test_items``.

    Returns:
        ``user_idx, items, scores, sources, auc`` (auc null without ``with_auc``).
    """
    spark = users.sparkSession
    bc = spark.sparkContext.broadcast(side)
    rank = side.item_factors.shape[1] if side.item_factors is not None else 0

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        s: ItemSide = bc.value
        for pdf in batches:
            for start in range(0, len(pdf), _BATCH):
                chunk = pdf.iloc[start:start + _BATCH]
                bought = _bought_matrix(list(chunk["train_items"]), list(chunk["train_strength"]), s.n_items)
                factors = None
                if rank:
                    factors = np.stack([
                        np.asarray(f, dtype=np.float32) if f is not None else np.full(rank, np.nan, dtype=np.float32)
                        for f in chunk["factors"]
                    ])
                raw, content = score_matrix(s, factors, bought)
                aucs = [None] * len(chunk)
                if with_auc:
                    aucs = [
                        user_auc(raw[r], bought.indices[bought.indptr[r]:bought.indptr[r + 1]],
                                 np.asarray(t if t is not None else [], dtype=np.int64))
                        for r, t in enumerate(chunk["test_items"])
                    ]
                # The raw scores are needed again only for AUC (already done) and to label a
                # blend's sources; otherwise exclusion can work in place.
                needs_raw = content is not None
                scores = apply_bought(raw.copy() if needs_raw else raw, bought, bought_mode, bought_weight)
                idx, top = top_k(scores, k)
                items_out, scores_out, sources_out = [], [], []
                fixed_source = {"popular": SOURCE_POPULAR, "content": SOURCE_CONTENT, "itemcf": "itemcf"}.get(s.kind)
                if s.kind in ("als", "blend") and s.cold is None and content is None:
                    fixed_source = SOURCE_ALS
                finite = np.isfinite(top)
                for r in range(len(chunk)):
                    keep = finite[r]
                    its = idx[r][keep]
                    items_out.append(its.astype(np.int32).tolist())
                    scores_out.append(top[r][keep].astype(np.float64).tolist())
                    if fixed_source is not None:
                        src = [fixed_source] * len(its)
                    else:  # als / blend with cold items or a content part: per item
                        src = []
                        for j in its:
                            is_content = (s.cold is not None and bool(s.cold[j])) or (
                                content is not None and content[r, j] > raw[r, j] - content[r, j])
                            src.append(SOURCE_CONTENT if is_content else SOURCE_ALS)
                    sources_out.append(src)
                yield pd.DataFrame({
                    USER_IDX: chunk[USER_IDX].astype("int32").values,
                    "items": items_out,
                    "scores": scores_out,
                    "sources": sources_out,
                    "auc": pd.array(aucs, dtype="Float64"),
                })

    cols = [USER_IDX, "factors", "train_items", "train_strength"] + (["test_items"] if with_auc else [])
    frame = users
    if "factors" not in frame.columns:
        frame = frame.withColumn("factors", F.lit(None).cast(T.ArrayType(T.FloatType())))
    # Batches of the same users in the same order on every run: a GEMM's last bits can
    # depend on a row's place in the batch, and reruns must give identical tables.
    return frame.select(*cols).sortWithinPartitions(USER_IDX).mapInPandas(run, OUT_SCHEMA)


def user_frame(train: DataFrame, test: DataFrame | None = None, user_factors: DataFrame | None = None,
               users: DataFrame | None = None) -> DataFrame:
    """Assemble the per-user input of :func:`score_users` from indexed pairs.

    Args:
        train: ``user_idx, item_idx, strength`` training pairs.
        test: Optional held-out pairs (``user_idx, item_idx``); only their users are
            scored when given.
        user_factors: Optional ALS ``id, features`` user factors.
        users: Optional ``user_idx`` frame of the users to score (default: training users,
            or test users when ``test`` is given).
    """
    hist = train.groupBy(USER_IDX).agg(
        F.sort_array(F.collect_list(F.struct(ITEM_IDX, STRENGTH))).alias("_h"))
    hist = hist.select(USER_IDX, F.col("_h." + ITEM_IDX).alias("train_items"),
                       F.col("_h." + STRENGTH).alias("train_strength"))
    if test is not None:
        base = test.groupBy(USER_IDX).agg(F.sort_array(F.collect_set(ITEM_IDX)).alias("test_items"))
    elif users is not None:
        base = users.select(USER_IDX).distinct()
    else:
        base = hist.select(USER_IDX)
    frame = base.join(hist, USER_IDX, "left")
    if user_factors is not None:
        frame = frame.join(user_factors.select(F.col("id").alias(USER_IDX), F.col("features").alias("factors")),
                           USER_IDX, "left")
    return frame
