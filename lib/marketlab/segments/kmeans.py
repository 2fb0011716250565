"""Customer segments: Spark ML k-means on scaled RFM, k chosen by silhouette."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import Pipeline
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.segments.params import SegmentsParams


@dataclass
class SegmentFit:
    """Outcome of :func:`fit_segments`."""

    segments: DataFrame  # customer_key, segment, segment_name, as_of
    profiles: DataFrame  # one row per segment
    silhouettes: dict[int, float]
    k: int
    model: object  # fitted PipelineModel of the chosen k


def _prepare(features: DataFrame, params: SegmentsParams) -> DataFrame:
    out = features
    for c in params.features:
        x = F.greatest(F.col(c).cast("double"), F.lit(0.0))  # refunds can make monetary negative
        out = out.withColumn(f"_x_{c}", F.log1p(x) if params.log_transform else x)
    return out


def fit_segments(features: DataFrame, params: SegmentsParams) -> SegmentFit:
    """Cluster customers; try k in [k_min, k_max], keep the best silhouette.

    Args:
        features: gold.customer_features rows of ONE cutoff.
        params: Segment params.

    Returns:
        Segments, per-segment profiles, silhouette per k, chosen k and model.
    """
    data = _prepare(features, params).cache()
    assembler = VectorAssembler(inputCols=[f"_x_{c}" for c in params.features], outputCol="_raw")
    scaler = StandardScaler(inputCol="_raw", outputCol="_features", withMean=True, withStd=True)
    evaluator = ClusteringEvaluator(featuresCol="_features", predictionCol="_cluster", metricName="silhouette")
    sil, models = {}, {}
    for k in range(params.k_min, params.k_max + 1):
        km = KMeans(k=k, seed=params.seed, maxIter=params.max_iter, featuresCol="_features", predictionCol="_cluster")
        model = Pipeline(stages=[assembler, scaler, km]).fit(data)
        sil[k] = float(evaluator.evaluate(model.transform(data)))
        models[k] = model
    k = max(sil, key=lambda kk: (sil[kk], -kk))
    assigned = models[k].transform(data).withColumnRenamed("_cluster", C.SEGMENT_ID).cache()
    names = _names(assigned, params)
    name_map = F.create_map(*[F.lit(x) for kv in names.items() for x in kv])
    segs = assigned.select(C.CUSTOMER_KEY, F.col(C.SEGMENT_ID).cast("int"), name_map[F.col(C.SEGMENT_ID)].alias("segment_name"),
                           C.AS_OF)
    n = assigned.count()
    prof_cols = [c for c in ("recency_days", "frequency", "monetary", "tenure_days", "avg_basket_value", "return_rate",
                             "r_score", "f_score", "m_score") if c in features.columns]
    profiles = (assigned.groupBy(C.SEGMENT_ID).agg(
        F.count(F.lit(1)).alias("n_customers"), *[F.mean(c).alias(f"mean_{c}") for c in prof_cols],
        F.percentile("monetary", F.lit(0.5)).alias("median_monetary"), F.sum("monetary").alias("total_monetary"))
        .withColumn("share", F.col("n_customers") / F.lit(n))
        .withColumn("segment_name", name_map[F.col(C.SEGMENT_ID)])
        .withColumn(C.SEGMENT_ID, F.col(C.SEGMENT_ID).cast("int"))
        .withColumn("k", F.lit(k)).withColumn("silhouette", F.lit(sil[k]))
        .withColumn(C.AS_OF, F.lit(features.select(F.max(C.AS_OF)).first()[0])))
    data.unpersist()
    return SegmentFit(segs, profiles, sil, k, models[k])


def _names(assigned: DataFrame, params: SegmentsParams) -> dict[int, str]:
    """Readable, unique names: value tier by the cluster's median monetary (top, mid1, ...,
    bottom) + recency and frequency vs the overall medians, e.g. ``top_value_recent_frequent``.
    """
    med = assigned.agg(*[F.percentile(c, F.lit(0.5)).alias(c) for c in ("recency_days", "frequency", "monetary")]).first()
    cent = assigned.groupBy(C.SEGMENT_ID).agg(*[F.percentile(c, F.lit(0.5)).alias(c)
                                                for c in ("recency_days", "frequency", "monetary")]).collect()
    ranked = sorted(cent, key=lambda r: (-r["monetary"], int(r[C.SEGMENT_ID])))
    out: dict[int, str] = {}
    for i, r in enumerate(ranked):
        tier = "top" if i == 0 else "bottom" if i == len(ranked) - 1 else f"mid{i}"
        rec = "recent" if r["recency_days"] <= med["recency_days"] else "lapsed"
        freq = "frequent" if r["frequency"] > med["frequency"] else "occasional"
        out[int(r[C.SEGMENT_ID])] = f"{tier}_value_{rec}_{freq}"
    return out
