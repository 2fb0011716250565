"""Item-item CF similarity: co-occurrence on the driver (scipy) vs. the Spark self-join.

    .venv/bin/python bench/itemcf.py [--synthetic 1000000] [--rounds 2] [--master local[2]]

Both paths of `marketlab.recommend.models.item_similarity` on the vendored Online Retail
interactions (and optionally a synthetic power-law set of N interactions), same capped
baskets (300 items per user), top-50 neighbours: wall time (best of `--rounds`), the size
of the problem (basket rows, self-join rows, distinct item pairs) and whether the two
matrices are identical. The ratio is Spark path / driver path, measured in the same run.
Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from pyspark.sql import functions as F  # noqa: E402

from marketlab.recommend.data import ITEM_IDX, USER_IDX  # noqa: E402
from marketlab.recommend.models import item_similarity  # noqa: E402
from recommender import bench_session, retail_pairs, synthetic_pairs  # noqa: E402

NEIGHBOURS, CAP = 50, 300


def best_of(rounds: int, fn):
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def run(spark, name: str, pdf, rounds: int) -> dict:
    train = spark.createDataFrame(pdf).cache()
    n_items = int(pdf[ITEM_IDX].max()) + 1
    train.count()
    sizes = train.groupBy(USER_IDX).agg(F.least(F.count("*"), F.lit(CAP)).cast("long").alias("n"))
    rows, selfjoin = sizes.agg(F.sum("n"), F.sum(F.col("n") * (F.col("n") - 1))).first()
    t_local, s_local = best_of(rounds, lambda: item_similarity(train, n_items, NEIGHBOURS, CAP, local_max_pairs=10**12))
    t_spark, s_spark = best_of(rounds, lambda: item_similarity(train, n_items, NEIGHBOURS, CAP, local_max_pairs=0))
    identical = s_local.shape == s_spark.shape and s_local.nnz == s_spark.nnz and (s_local != s_spark).nnz == 0
    train.unpersist()
    out = {f"{name}.items": n_items, f"{name}.basket_rows": int(rows), f"{name}.selfjoin_rows": int(selfjoin),
           f"{name}.similarity_nnz": int(s_local.nnz), f"{name}.driver_s": round(t_local, 2),
           f"{name}.spark_s": round(t_spark, 2), f"{name}.spark_over_driver": round(t_spark / t_local, 2),
           f"{name}.identical": bool(identical)}
    print(f"{name}: {n_items} items, {rows} basket rows, {selfjoin} self-join rows; driver {t_local:.2f}s, "
          f"spark {t_spark:.2f}s ({t_spark / t_local:.1f}x), identical={identical}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synthetic", type=int, default=0, help="also a synthetic set of N interactions (0 = none)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    spark, _ = bench_session(args.master, "bench_itemcf_")
    out = {"bench": "itemcf", "master": args.master, "neighbours": NEIGHBOURS, "cap": CAP}
    out.update(run(spark, "real", retail_pairs(), args.rounds))
    if args.synthetic:
        out.update(run(spark, f"synthetic{args.synthetic}", synthetic_pairs(args.synthetic), args.rounds))
    spark.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
