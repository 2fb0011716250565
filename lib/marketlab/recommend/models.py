"""Model fitting: popularity, item-item CF, TF-IDF content, implicit ALS, cold start.

Each ``*_side`` function returns the :class:`~marketlab.recommend.score.ItemSide` that the
shared scorer needs; the user side (bought items, ALS user factors) stays distributed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pyspark.ml import Pipeline
from pyspark.ml.feature import IDF, CountVectorizer, Normalizer, RegexTokenizer, StopWordsRemover
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.recommend.data import ITEM_IDX, RATING, STRENGTH, USER_IDX, with_rating
from marketlab.recommend.params import AlsParams
from marketlab.recommend.score import ItemSide


def item_popularity(train: DataFrame, n_items: int) -> np.ndarray:
    """Distinct training users per item index (zeros for unseen items)."""
    pop = np.zeros(n_items, dtype=np.float64)
    for row in train.groupBy(ITEM_IDX).agg(F.countDistinct(USER_IDX).alias("n")).collect():
        pop[row[ITEM_IDX]] = row["n"]
    return pop


def popular_side(train: DataFrame, n_items: int) -> ItemSide:
    """Most-bought-by-distinct-customers baseline."""
    return ItemSide(kind="popular", n_items=n_items, popularity=item_popularity(train, n_items))


def item_similarity(train: DataFrame, n_items: int, neighbours: int = 50, max_items_per_user: int = 300,
                    local_max_pairs: int = 20_000_000) -> sp.csr_matrix:
    """Cosine item-item similarity from co-purchases, top ``neighbours`` per item.

    A user's items are capped at their ``max_items_per_user`` strongest, because the pairs
    grow with the square of a basket and a few wholesale accounts with thousands of items
    would otherwise dominate both the cost and the similarities (Mahout's maxPrefsPerUser).

    Where the capped baskets have at most ``local_max_pairs`` rows and distinct item pairs
    (bounded by the pairs a self-join on the user produces and by ``n_items`` squared),
    the pairs are counted on the driver: one sparse product of the user x item matrix
    with its transpose and a sort per item (scipy/numpy). Above that, in Spark: a
    self-join on the user, a count per pair and a window per item. Both give the same
    matrix, ties broken by the lower item index. On the real data (265k basket rows,
    32M self-join rows, 6.2M distinct pairs of 3,643 items) the driver path takes ~2.5 s
    and the Spark path ~16-20 s on 2 cores.

    Returns:
        ``n_items x n_items`` CSR matrix, row i = neighbours of item i.
    """
    ranked = train.withColumn(
        "_r", F.row_number().over(Window.partitionBy(USER_IDX).orderBy(F.desc(STRENGTH), ITEM_IDX)))
    capped = ranked.where(F.col("_r") <= max_items_per_user).select(USER_IDX, ITEM_IDX).cache()
    n = F.col("count").cast("long")
    rows, pairs = capped.groupBy(USER_IDX).count().agg(F.sum(n), F.sum(n * (n - 1))).first()
    # What the driver would hold: the basket rows and at most this many distinct pairs.
    if (rows or 0) <= local_max_pairs and min(pairs or 0, n_items * (n_items - 1)) <= local_max_pairs:
        i, j, sim = _local_similarity(capped.toPandas(), n_items, neighbours)
    else:
        top = _spark_similarity(capped, neighbours).toPandas()
        i, j, sim = top["i"].to_numpy(), top["j"].to_numpy(), top["sim"].to_numpy()
    capped.unpersist()
    # Row j of the matrix holds the items similar to j: a user's score for i is the sum
    # of sim(j, i) over bought j, i.e. bought @ S.
    return sp.csr_matrix((sim, (j, i)), shape=(n_items, n_items))


def _spark_similarity(capped: DataFrame, neighbours: int) -> DataFrame:
    counts = capped.groupBy(ITEM_IDX).agg(F.count(F.lit(1)).alias("n"))
    a, b = capped.alias("a"), capped.alias("b")
    co = (
        a.join(b, F.col("a." + USER_IDX) == F.col("b." + USER_IDX))
        .where(F.col("a." + ITEM_IDX) != F.col("b." + ITEM_IDX))
        .groupBy(F.col("a." + ITEM_IDX).alias("i"), F.col("b." + ITEM_IDX).alias("j"))
        .agg(F.count(F.lit(1)).alias("co"))
    )
    ci, cj = counts.alias("ci"), counts.alias("cj")
    return (
        co.join(F.broadcast(ci), F.col("i") == F.col("ci." + ITEM_IDX))
        .join(F.broadcast(cj), F.col("j") == F.col("cj." + ITEM_IDX))
        .select("i", "j", (F.col("co") / F.sqrt(F.col("ci.n") * F.col("cj.n"))).alias("sim"))
        .withColumn("_r", F.row_number().over(Window.partitionBy("i").orderBy(F.desc("sim"), "j")))
        .where(F.col("_r") <= neighbours)
    )


def _local_similarity(pairs, n_items: int, neighbours: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, sim)`` of the top neighbours per item from ``user_idx, item_idx`` rows (pandas)."""
    _, user = np.unique(pairs[USER_IDX].to_numpy(), return_inverse=True)
    # A repeated (user, item) row counts as often as the self-join counts it.
    x = sp.csr_matrix((np.ones(len(pairs), np.int64), (user, pairs[ITEM_IDX].to_numpy())),
                      shape=(int(user.max(initial=-1)) + 1, n_items))
    n = np.asarray(x.sum(axis=0)).ravel()
    co = (x.T.tocsr() @ x).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    out_i, out_j, out_s = [], [], []
    for i in range(n_items):
        a, b = co.indptr[i], co.indptr[i + 1]
        if a == b:
            continue
        j = co.indices[a:b]
        # The same double arithmetic as the Spark path: co / sqrt(n_i * n_j).
        sim = co.data[a:b] / np.sqrt((n[i] * n[j]).astype(np.float64))
        top = np.lexsort((j, -sim))[:neighbours]
        out_i.append(np.full(len(top), i))
        out_j.append(j[top])
        out_s.append(sim[top])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s)


def itemcf_side(train: DataFrame, n_items: int, neighbours: int = 50, max_items_per_user: int = 300,
                local_max_pairs: int = 20_000_000) -> ItemSide:
    """Item-item collaborative filtering baseline."""
    return ItemSide(kind="itemcf", n_items=n_items,
                    similarity=item_similarity(train, n_items, neighbours, max_items_per_user, local_max_pairs))


def tfidf_matrix(items: DataFrame, n_items: int, description_col: str = C.DESCRIPTION, min_df: int = 2,
                 vocab_size: int = 4096) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows of item descriptions (Spark ML pipeline).

    Args:
        items: ``item_idx, description`` (one row per item; null descriptions give
            empty rows, i.e. no content signal).
        n_items: Catalogue size.
        description_col: Description column.
        min_df / vocab_size: Vocabulary limits.
    """
    docs = items.select(ITEM_IDX, F.lower(F.coalesce(F.col(description_col), F.lit(""))).alias("_text"))
    pipeline = Pipeline(stages=[
        RegexTokenizer(inputCol="_text", outputCol="_tok", pattern="[^a-z]+", minTokenLength=2),
        StopWordsRemover(inputCol="_tok", outputCol="_words"),
        CountVectorizer(inputCol="_words", outputCol="_tf", minDF=float(min_df), vocabSize=vocab_size),
        IDF(inputCol="_tf", outputCol="_tfidf"),
        Normalizer(inputCol="_tfidf", outputCol="_vec", p=2.0),
    ])
    model = pipeline.fit(docs)
    vocab = len(model.stages[2].vocabulary)
    rows, cols, vals = [], [], []
    for row in model.transform(docs).select(ITEM_IDX, "_vec").collect():
        v = row["_vec"]
        rows.extend([row[ITEM_IDX]] * len(v.indices))
        cols.extend(v.indices.tolist())
        vals.extend(v.values.tolist())
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_items, max(vocab, 1)))


def content_side(tfidf: sp.csr_matrix) -> ItemSide:
    """Content-only model: cosine between a user's purchase profile and items."""
    return ItemSide(kind="content", n_items=tfidf.shape[0], tfidf=tfidf)


def fit_als(train: DataFrame, params: AlsParams, checkpoint_dir: str | None = None) -> ALSModel:
    """Fit implicit-feedback ALS on indexed training pairs.

    Args:
        train: ``user_idx, item_idx, strength``.
        params: Hyper-parameters.
        checkpoint_dir: Folder for factor checkpoints (under the lake's temp area); set on
            the SparkContext before fitting, since ALS checkpoints only when one is set.

    Returns:
        The fitted model.
    """
    spark = train.sparkSession
    if checkpoint_dir:
        spark.sparkContext.setCheckpointDir(checkpoint_dir)
    blocks = params.num_blocks or int(spark.sparkContext.defaultParallelism)
    als = ALS(
        rank=params.rank, maxIter=params.max_iter, regParam=params.reg_param, alpha=params.alpha,
        implicitPrefs=True, userCol=USER_IDX, itemCol=ITEM_IDX, ratingCol=RATING,
        numUserBlocks=blocks, numItemBlocks=blocks, checkpointInterval=params.checkpoint_interval,
        seed=params.seed, coldStartStrategy="drop", nonnegative=False,
    )
    return als.fit(with_rating(train, params.log_strength))


def item_factor_matrix(model: ALSModel, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``n_items x rank`` item factors and the mask of items without factors."""
    rank = model.rank
    mat = np.zeros((n_items, rank), dtype=np.float64)
    has = np.zeros(n_items, dtype=bool)
    for row in model.itemFactors.collect():
        mat[row["id"]] = row["features"]
        has[row["id"]] = True
    return mat, ~has


def impute_cold_factors(factors: np.ndarray, missing: np.ndarray, tfidf: sp.csr_matrix | None,
                        neighbours: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Give items without interactions the similarity-weighted mean factors of their
    nearest warm items by description (TF-IDF cosine).

    Returns:
        ``(factors, cold)``: completed factor matrix and the mask of imputed items (items
        without any similar warm item keep zero factors and are not marked).
    """
    out = factors.copy()
    cold = np.zeros(len(missing), dtype=bool)
    if tfidf is None or not missing.any() or missing.all():
        return out, cold
    cold_idx = np.flatnonzero(missing)
    warm_idx = np.flatnonzero(~missing)
    sim = np.asarray((tfidf[cold_idx] @ tfidf[warm_idx].T).todense())
    m = min(neighbours, len(warm_idx))
    nn = np.argpartition(-sim, m - 1, axis=1)[:, :m]
    w = np.take_along_axis(sim, nn, axis=1)
    total = w.sum(axis=1)
    ok = total > 0
    out[cold_idx[ok]] = (w[ok, :, None] * factors[warm_idx[nn[ok]]]).sum(axis=1) / total[ok, None]
    cold[cold_idx[ok]] = True
    return out, cold


def als_side(model: ALSModel, n_items: int, tfidf: sp.csr_matrix | None = None, content_weight: float = 0.0,
             neighbours: int = 10) -> ItemSide:
    """ALS (``content_weight == 0``) or ALS + content blend, with cold items imputed."""
    factors, missing = item_factor_matrix(model, n_items)
    factors, cold = impute_cold_factors(factors, missing, tfidf, neighbours)
    kind = "blend" if (content_weight > 0 and tfidf is not None) else "als"
    return ItemSide(kind=kind, n_items=n_items, item_factors=factors, cold=cold, tfidf=tfidf,
                    content_weight=content_weight)


def segment_popular(
    interactions: DataFrame,
    segments: DataFrame,
    customers: DataFrame,
    k: int,
    user_col: str = "customer_key",
    item_col: str = C.ITEM_ID,
    segment_col: str = "segment",
) -> DataFrame:
    """Top-k popular items (distinct buyers) of each customer's segment.

    Customers without a segment, and segments with fewer than k items, are filled from
    the global popularity list.

    Args:
        interactions: ``user_col, item_col`` pairs the popularity is counted on.
        segments: ``user_col, segment_col``.
        customers: ``user_col`` of the customers to recommend to.
        k: List length.

    Returns:
        ``user_col, item_col, rank, score`` where score is the item's share of the
        segment's (or all) customers.
    """
    seg_sizes = segments.groupBy(segment_col).agg(F.countDistinct(user_col).alias("_size"))
    per_seg = (
        interactions.join(segments.select(user_col, segment_col), user_col)
        .groupBy(segment_col, item_col).agg(F.countDistinct(user_col).alias("_n"))
        .join(seg_sizes, segment_col)
        .withColumn("_score", F.col("_n") / F.col("_size"))
        .withColumn("_r", F.row_number().over(Window.partitionBy(segment_col).orderBy(F.desc("_n"), item_col)))
        .where(F.col("_r") <= k)
        .select(segment_col, item_col, "_score", F.col("_r").alias("_seg_rank"))
    )
    n_all = interactions.select(user_col).distinct().count()
    glob = (
        interactions.groupBy(item_col).agg(F.countDistinct(user_col).alias("_n"))
        .withColumn("_score", F.col("_n") / F.lit(max(n_all, 1)))
        .withColumn("_r", F.row_number().over(Window.orderBy(F.desc("_n"), item_col)))
        .where(F.col("_r") <= k)
        .select(item_col, "_score", F.col("_r").alias("_glob_rank"))
    )
    cust = customers.select(user_col).distinct().join(segments.select(user_col, segment_col), user_col, "left")
    seg_part = cust.join(per_seg, segment_col).select(user_col, item_col, "_score", F.lit(0).alias("_tier"),
                                                      F.col("_seg_rank").alias("_ord"))
    glob_part = cust.crossJoin(F.broadcast(glob)).select(user_col, item_col, "_score", F.lit(1).alias("_tier"),
                                                         F.col("_glob_rank").alias("_ord"))
    both = seg_part.unionByName(glob_part)
    dedup = both.withColumn("_d", F.row_number().over(Window.partitionBy(user_col, item_col).orderBy("_tier", "_ord")))
    ranked = dedup.where(F.col("_d") == 1).withColumn(
        "rank", F.row_number().over(Window.partitionBy(user_col).orderBy("_tier", "_ord")))
    return ranked.where(F.col("rank") <= k).select(user_col, item_col, F.col("rank").cast("int"),
                                                   F.col("_score").cast("double").alias("score"))
