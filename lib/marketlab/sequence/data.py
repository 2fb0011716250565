"""Spark side of the data: histories from gold.customer_sequences, the temporal split, staging.

Split (days since 1970; ``h`` = ``horizon_days``)::

    ... fit (training examples) ... | val_cutoff ... validation ... | cutoff ... test ... | cutoff + h
                                      (early stopping, model choice)  (reported figures)

Models learn only from baskets before ``val_cutoff``; the validation window (targets in
``[val_cutoff, cutoff)``) stops training and chooses the served source; the test window is
touched once, for the reported figures. Inputs at the test cutoff are the history before
it (the model is not refitted on the validation window).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.sequence.encode import Vocabulary

EPOCH = dt.date(1970, 1, 1)
ITEMS, DAYS, SHARD = "items", "days", "shard"


def to_day(d: dt.date) -> int:
    return (d - EPOCH).days


def from_day(n: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(n))


@dataclass(frozen=True)
class Split:
    """The temporal split, in days since 1970."""

    val_cutoff: int
    cutoff: int
    end: int
    last_day: int

    @property
    def horizon(self) -> int:
        return self.end - self.cutoff

    def describe(self) -> dict[str, str]:
        return {"val_cutoff": str(from_day(self.val_cutoff)), "cutoff": str(from_day(self.cutoff)),
                "test_end": str(from_day(self.end)), "last_day": str(from_day(self.last_day))}


def histories(seq: DataFrame, key: str = C.CUSTOMER_KEY, baskets: str = "baskets") -> DataFrame:
    """``key, items, days``: each customer's items in basket order with each item's basket day."""
    flat = F.flatten(F.transform(baskets, lambda b: F.transform(
        b["items"], lambda i: F.struct(i.alias("item"), F.datediff(b["ts"].cast("date"), F.lit(str(EPOCH))).alias("day")))))
    return (seq.select(F.col(key).alias(C.CUSTOMER_KEY), flat.alias("_f"))
            .select(C.CUSTOMER_KEY, F.col("_f.item").alias(ITEMS), F.col("_f.day").alias(DAYS)))


def cut(hist: DataFrame, start: int | None = None, end: int | None = None) -> DataFrame:
    """Histories limited to days in ``[start, end)``; customers left with none are dropped."""
    def keep(d):
        conds = ([d >= F.lit(start)] if start is not None else []) + ([d < F.lit(end)] if end is not None else [])
        out = conds[0]
        for c in conds[1:]:
            out = out & c
        return out

    z = F.filter(F.arrays_zip(F.col(ITEMS).alias("i"), F.col(DAYS).alias("d")), lambda s: keep(s["d"]))
    return (hist.select(C.CUSTOMER_KEY, z.alias("_z")).where(F.size("_z") > 0)
            .select(C.CUSTOMER_KEY, F.col("_z.i").alias(ITEMS), F.col("_z.d").alias(DAYS)))


def plan_split(hist: DataFrame, horizon_days: int, cutoff: dt.date | None = None) -> Split:
    """The split of these histories.

    Raises:
        BadInputError: No baskets at all, or none before the validation cutoff (an empty
            training window).
    """
    first, last = hist.select(F.min(F.array_min(DAYS)), F.max(F.array_max(DAYS))).first()
    if last is None:
        raise BadInputError("sequence: the input has no baskets")
    c = to_day(cutoff) if cutoff is not None else int(last) + 1 - horizon_days
    split = Split(val_cutoff=c - horizon_days, cutoff=c, end=c + horizon_days, last_day=int(last))
    if int(first) >= split.val_cutoff:
        raise BadInputError(f"sequence: empty training window: no basket before the validation cutoff "
                            f"{from_day(split.val_cutoff)} (first basket {from_day(first)}, cutoff {from_day(c)}, "
                            f"horizon {horizon_days} days); set an earlier jobs.sequence.cutoff or a shorter horizon_days")
    return split


def vocabulary(hist: DataFrame, before_day: int, min_count: int = 1, max_items: int = 5000) -> Vocabulary:
    """Items bought at least ``min_count`` times before ``before_day``, most bought first.

    Raises:
        BadInputError: More items than the softmax limit ``max_items``.
    """
    ex = cut(hist, end=before_day).select(F.explode(ITEMS).alias("item"))
    counts = ex.groupBy("item").count().where(F.col("count") >= min_count).orderBy(F.desc("count"), "item")
    n = counts.count()
    if n > max_items:
        raise BadInputError(f"sequence: {n} items in the training window exceed the softmax limit "
                            f"jobs.sequence.max_items={max_items}; raise it or raise jobs.sequence.min_item_count")
    return Vocabulary(tuple(r["item"] for r in counts.collect()))


def with_shard(hist: DataFrame, num_workers: int) -> DataFrame:
    """A stable shard per customer: crc32 of the key modulo the workers."""
    return hist.withColumn(SHARD, F.pmod(F.crc32(F.col(C.CUSTOMER_KEY)), F.lit(num_workers)).cast("int"))


def stage(hist: DataFrame, split: Split, num_workers: int, uri: str) -> DataFrame:
    """Write the histories before the test cutoff, partitioned by shard, for the workers.

    Returns:
        The staged frame (read back), for the per-shard example counts.
    """
    staged = with_shard(cut(hist, end=split.cutoff), num_workers)
    staged.repartition(SHARD).write.mode("overwrite").partitionBy(SHARD).parquet(uri)
    return hist.sparkSession.read.parquet(uri)


def examples_per_shard(staged: DataFrame, split: Split, num_workers: int) -> dict[str, list[int]]:
    """Training examples each shard yields per model kind (what :mod:`marketlab.sequence.train` builds there)."""
    n_fit = F.size(F.filter(DAYS, lambda d: d < F.lit(split.val_cutoff)))
    n_anchor = F.size(F.filter(DAYS, lambda d: d < F.lit(split.val_cutoff - split.horizon)))
    rows = staged.groupBy(SHARD).agg(
        F.sum((n_fit >= 1).cast("int")).alias("vae"),
        F.sum((n_fit >= 2).cast("int") + (n_anchor >= 1).cast("int")).alias("transformer")).collect()
    got = {r[SHARD]: r for r in rows}
    return {kind: [int(got[s][kind] or 0) if s in got else 0 for s in range(num_workers)] for kind in ("vae", "transformer")}
