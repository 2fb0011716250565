"""Benchmark: ingest rows/s of the real 541,909-line Online Retail export into bronze Delta.

The ingest validates every record (types, dates, column count, encoding), keeps lineage,
quarantines rejects and writes one Delta commit per table. Two baselines run in the same
process on the same file so the figure is a ratio, not a machine-dependent absolute:

* ``spark_csv``: Spark's own CSV reader with a fixed schema writing the same rows to Delta
  (no validation, no lineage, no rejects) — the cost of doing nothing extra;
* ``pandas``: ``pandas.read_csv`` of the file into memory (no write at all).

    .venv/bin/python bench/ingest.py [--master local[2]] [--repeat 2]

Prints the figures, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from marketlab.config import load_settings  # noqa: E402
from marketlab.tables import Lake  # noqa: E402

SOURCE = "online_retail"


def _settings(tmp: Path, master: str):
    return load_settings(ROOT / "conf" / "test.yaml", [
        f"lake_root={tmp / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
        f"mlflow.artifact_root={tmp / 'artifacts'}", f"spark.master={master}",
    ])


def bench_marketlab(spark, tmp: Path, master: str, run: int) -> tuple[float, int, int]:
    from marketlab.ingest.run import run as ingest

    st = _settings(tmp / f"ml{run}", master)
    lake = Lake(spark, st)
    t0 = time.perf_counter()
    summary = ingest(lake, st.jobs.ingest.model_copy(update={"sources": [SOURCE]}))
    secs = time.perf_counter() - t0
    res = [r for r in summary.files if r.source == SOURCE][0]
    return secs, res.records, res.bronze_rows


def bench_spark_csv(spark, tmp: Path, path: Path, run: int) -> float:
    schema = ("InvoiceNo STRING, StockCode STRING, Description STRING, Quantity INT, InvoiceDate TIMESTAMP, "
              "UnitPrice DOUBLE, CustomerID DOUBLE, Country STRING")
    t0 = time.perf_counter()
    df = spark.read.csv(str(path), header=True, schema=schema)
    df.write.format("delta").mode("overwrite").save(str(tmp / f"plain{run}"))
    return time.perf_counter() - t0


def bench_pandas(path: Path) -> float:
    import pandas as pd

    t0 = time.perf_counter()
    pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str}, parse_dates=["InvoiceDate"])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=2, help="runs per variant; the best is reported")
    args = ap.parse_args()

    from marketlab.spark import get_spark

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        tmp = Path(d)
        st = _settings(tmp / "base", args.master)
        path = ROOT / st.sources[SOURCE].path
        spark = get_spark(st)
        ml, plain, pdt = [], [], []
        records = rows = 0
        for i in range(args.repeat):
            secs, records, rows = bench_marketlab(spark, tmp, args.master, i)
            ml.append(secs)
            plain.append(bench_spark_csv(spark, tmp, path, i))
            pdt.append(bench_pandas(path))
        spark.stop()

    best, best_plain, best_pd = min(ml), min(plain), min(pdt)
    figures = {
        "bench": "ingest",
        "master": args.master,
        "file": str(path.relative_to(ROOT)),
        "records": records,
        "bronze_rows": rows,
        "marketlab_s": round(best, 2),
        "marketlab_rows_per_s": round(records / best),
        "spark_csv_s": round(best_plain, 2),
        "spark_csv_rows_per_s": round(records / best_plain),
        "pandas_read_s": round(best_pd, 2),
        "ratio_vs_spark_csv": round(best / best_plain, 2),
        "ratio_vs_pandas_read": round(best / best_pd, 2),
        "runs": args.repeat,
    }
    print(f"records read           {records:,}  (bronze {rows:,})")
    print(f"marketlab ingest       {best:7.2f} s  {figures['marketlab_rows_per_s']:>9,} rows/s  (all runs {[round(x, 1) for x in ml]})")
    print(f"spark csv -> delta     {best_plain:7.2f} s  {figures['spark_csv_rows_per_s']:>9,} rows/s  (no validation/lineage)")
    print(f"pandas read_csv        {best_pd:7.2f} s  (read only)")
    print(f"ratio ingest / plain spark {figures['ratio_vs_spark_csv']}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
