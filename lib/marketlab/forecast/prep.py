"""Training data for the workers: scaled series, split into one shard per worker by Spark.

The frame is built and written by executors (a Parquet folder partitioned by ``shard``,
the same idea as Horovod's Store/Petastorm cache); each training worker then reads only
``shard=<rank>``. Whole series go to one shard (windows need consecutive days), and shards
are balanced on their number of training windows.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab.constants import DATE
from marketlab.forecast.series import OK, SERIES_ID, STATUS, UNITS

SHARD = "shard"


def assign_shards(profile: DataFrame, num_workers: int, window: int, horizon: int, stride: int) -> DataFrame:
    """Series -> shard, balancing the number of training windows (snake order by size).

    Args:
        profile: :func:`~marketlab.forecast.series.series_profile` rows (only ``ok`` are used).
        num_workers: Shards.
        window: Input days.
        horizon: Target days.
        stride: Origin stride.

    Returns:
        ``series_id, shard, n_windows`` of the ``ok`` series.
    """
    last_origin = F.col("n_days") - horizon - 1
    n_win = F.when(last_origin < window - 1, F.lit(0)).otherwise(F.floor((last_origin - (window - 1)) / stride) + 1)
    ok = profile.where(F.col(STATUS) == OK).select(SERIES_ID, n_win.cast("long").alias("n_windows"))
    # One row per series: a global ordering is cheap and makes the split deterministic.
    i = F.row_number().over(Window.orderBy(F.desc("n_windows"), SERIES_ID)) - 1
    k, n = i % num_workers, F.lit(num_workers)
    snake = F.when(F.floor(i / n) % 2 == 0, k).otherwise(n - 1 - k)
    return ok.select(SERIES_ID, snake.cast("int").alias(SHARD), "n_windows")


def training_frame(series: DataFrame, profile: DataFrame, shards: DataFrame, cutoff: dt.date) -> DataFrame:
    """Scaled history (up to ``cutoff``) of the sharded series.

    The scale and the zero share come from the profile, i.e. from the training period only.

    Returns:
        ``shard, series_id, date, z (= units / scale), scale, zero_share``.
    """
    stats = profile.select(SERIES_ID, "scale", "zero_share")
    return (
        series.where(F.col(DATE) <= F.lit(cutoff))
        .join(F.broadcast(shards.select(SERIES_ID, SHARD)), SERIES_ID)
        .join(stats, SERIES_ID)
        .select(SHARD, SERIES_ID, DATE, (F.col(UNITS) / F.col("scale")).alias("z"), "scale", "zero_share")
    )


def stage(frame: DataFrame, uri: str) -> None:
    """Write the training frame as Parquet partitioned by shard (one overwrite)."""
    (frame.repartition(SHARD).sortWithinPartitions(SERIES_ID, DATE)
     .write.mode("overwrite").partitionBy(SHARD).parquet(uri))


def steps_per_epoch(shards: DataFrame, num_workers: int, batch_size: int, cap: int | None = None) -> tuple[int, list[int]]:
    """Steps every worker can take per epoch (the smallest shard, once) and windows per shard.

    Raises:
        ValueError: A shard is too small for one batch.
    """
    rows = {r[SHARD]: int(r["w"]) for r in shards.groupBy(SHARD).agg(F.sum("n_windows").alias("w")).collect()}
    per_shard = [rows.get(s, 0) for s in range(num_workers)]
    steps = min(per_shard) // batch_size if per_shard else 0
    if steps < 1:
        raise ValueError(f"not enough training windows for {num_workers} workers x batch {batch_size}: windows per shard {per_shard}")
    return (min(steps, cap) if cap else steps), per_shard
