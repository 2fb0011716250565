"""Benchmark: clean (orders) + features wall time on the real 541,909 order lines and on a
synthetic 10x scale-up generated from them.

The scale-up replicates bronze.orders ``--scale`` times with disjoint invoice numbers,
customer ids and source lines (same items and dates), so every rule's count scales
exactly by ``--scale`` — the script asserts that — and the work per row is the same as on
the real data. Goal: scale-up time <= scale x real time (linear), real run < 2 min on
2 cores.

    .venv/bin/python bench/clean_features.py --scale 10 [--master local[2]]

Prints the figures, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from marketlab.config import load_settings  # noqa: E402
from marketlab.tables import Lake  # noqa: E402


def scale_up(bronze: DataFrame, k: int) -> DataFrame:
    """``k`` disjoint copies of the order lines (copy 0 is the original)."""
    n = bronze.count()
    copies = bronze.sparkSession.range(k).withColumnRenamed("id", "_copy")
    out = bronze.crossJoin(F.broadcast(copies))
    prefix = F.regexp_extract("invoice_no", r"^([A-Za-z]*)", 1)
    number = F.regexp_extract("invoice_no", r"([0-9]+)$", 1).cast("long")
    return (out.withColumn("invoice_no", F.when(F.col("_copy") == 0, F.col("invoice_no"))
                           .otherwise(F.concat(prefix, (number + F.col("_copy") * 1_000_000).cast("string"))))
            .withColumn("customer_id", F.col("customer_id") + F.col("_copy") * 100_000)
            .withColumn("_line", F.col("_line") + F.col("_copy") * n)
            .drop("_copy"))


def timed_stage(lake: Lake) -> dict:
    from marketlab.clean.params import CleanParams
    from marketlab.clean.run import run as clean
    from marketlab.features.run import run as features
    from marketlab.privacy import resolve_secret
    from marketlab.quality.run import run as check

    st = lake.settings
    params = CleanParams.model_validate({**st.jobs.clean.model_dump(), "tables": ["orders"]})
    t0 = time.perf_counter()
    acc = clean(lake, params).accounting[0]
    t1 = time.perf_counter()
    check(lake, ["silver.order_lines", "silver.returns"], st.jobs.quality).raise_if_failed()
    t2 = time.perf_counter()
    feats = features(lake, st.jobs.features, resolve_secret(st))
    t3 = time.perf_counter()
    return {"clean_s": t1 - t0, "gate_s": t2 - t1, "features_s": t3 - t2, "total_s": t3 - t0, "accounting": acc,
            "rows": feats.rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    from marketlab.ingest.run import run as ingest
    from marketlab.spark import get_spark

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-clean-"))

    def settings(name: str):
        return load_settings(ROOT / "conf" / "local.yaml", [
            f"lake_root={work / name}", f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}",
            f"mlflow.artifact_root={work / 'artifacts'}", f"spark.master={args.master}",
            "jobs.ingest.sources=[online_retail]"])

    real = Lake(get_spark(settings("real")), settings("real"))
    if not real.exists("bronze.orders"):
        ingest(real, real.settings.jobs.ingest)  # jobs.ingest.sources=[online_retail] above
    big = Lake(real.spark, settings(f"x{args.scale}"))
    if not big.exists("bronze.orders"):
        big.write(scale_up(real.read("bronze.orders"), args.scale), "bronze.orders")

    r1 = timed_stage(real)
    rk = timed_stage(big)
    a1, ak = r1["accounting"], rk["accounting"]
    exact = (ak.bronze_rows == args.scale * a1.bronze_rows
             and all(ak.excluded[k] == args.scale * v for k, v in a1.excluded.items())
             and all(ak.silver_rows[k] == args.scale * v for k, v in a1.silver_rows.items()))
    ratio = rk["total_s"] / r1["total_s"]
    print(f"master {args.master}; workdir {work}")
    for name, r in (("real", r1), (f"x{args.scale}", rk)):
        print(f"  {name:>5}: {r['accounting'].bronze_rows:>9} bronze rows  clean {r['clean_s']:7.1f} s  "
              f"gate {r['gate_s']:6.1f} s  features {r['features_s']:7.1f} s  total {r['total_s']:7.1f} s")
    print(f"  scale-up cost: {ratio:.2f}x for {args.scale}x rows (goal <= {args.scale}x); counts scale exactly: {exact}")
    print(json.dumps({"bench": "clean_features", "master": args.master, "scale": args.scale,
                      "rows_real": a1.bronze_rows, "rows_scaled": ak.bronze_rows,
                      "real_total_s": round(r1["total_s"], 2), "scaled_total_s": round(rk["total_s"], 2),
                      "real_clean_s": round(r1["clean_s"], 2), "real_features_s": round(r1["features_s"], 2),
                      "scaled_clean_s": round(rk["clean_s"], 2), "scaled_features_s": round(rk["features_s"], 2),
                      "cost_ratio": round(ratio, 3), "linear": ratio <= args.scale, "counts_scale_exactly": exact}))


if __name__ == "__main__":
    main()
