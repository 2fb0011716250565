"""Distributed LSTM training throughput: 1 vs 2 workers per backend, and time to train on real data.

    .venv/bin/python bench/forecast_training.py [--steps 60] [--batch 256] [--threads 0] [--skip-real]

Prints a table and ends with ONE JSON line. Throughput counts training samples per second
of wall time in the epochs after the first (process start-up and TF graph tracing excluded); scaling efficiency = samples/s(2 workers) / (2 x samples/s(1 worker)).
``--threads`` sets the TensorFlow threads per worker (0 = TensorFlow's default, every core;
1 = what Spark grants a task with ``spark.task.cpus=1``, so 2 workers use twice the cores of
one and the efficiency isolates the cost of the all-reduce).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))

import pandas as pd  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from marketlab.config import load_settings  # noqa: E402
from marketlab.forecast import prep  # noqa: E402
from marketlab.training.launch import get_launcher, task_slots  # noqa: E402
from marketlab.forecast.params import ForecastParams  # noqa: E402
from marketlab.forecast.run import prepare, train_at  # noqa: E402
from marketlab.forecast.series import complete_calendar, series_profile  # noqa: E402
from marketlab.forecast.train import TrainSpec  # noqa: E402
from marketlab.spark import get_spark  # noqa: E402


def real_demand(spark):
    """Daily units per stock code x (UK | INTL) straight from the vendored CSV (bench only)."""
    df = pd.read_csv(ROOT / "data/online_retail/online_retail.csv.gz", dtype={"StockCode": str, "InvoiceNo": str})
    df = df[~df.InvoiceNo.str.startswith("C") & (df.Quantity > 0) & (df.UnitPrice > 0) & df.StockCode.str.match(r"^\d{5}")]
    df = df.assign(item_id=df.StockCode.str.upper(), warehouse=(df.Country == "United Kingdom").map({True: "UK", False: "INTL"}),
                   date=pd.to_datetime(df.InvoiceDate).dt.date, units=df.Quantity.astype(float))
    return spark.createDataFrame(df.groupby(["item_id", "warehouse", "date"], as_index=False)["units"].sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="TensorFlow threads per worker (0 = all cores)")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--conf", default=str(ROOT / "conf/local.yaml"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-forecast-"))
    st = load_settings(args.conf, [f"lake_root={tmp / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}"])
    spark = get_spark(st)
    slots = task_slots(spark)
    from forecast.conftest import synthetic_demand

    demand = spark.createDataFrame(synthetic_demand(n_items=40, dirt=False, n_days=400))
    series = complete_calendar(demand).cache()
    cut = series.agg(F.max("date")).first()[0]
    prof = series_profile(series, cut, 84)
    figures: dict = {"slots": slots, "batch_per_worker": args.batch, "steps": args.steps, "threads_per_worker": args.threads}
    print(f"task slots: {slots}; per-worker batch {args.batch}; {args.steps} timed steps per run; "
          f"{args.threads or 'all'} TensorFlow thread(s) per worker")
    for backend in ("horovod", "tf-distribute"):
        sps = {}
        for n in (1, 2):
            if n > slots:
                continue
            shards = prep.assign_shards(prof, n, 56, 14, 1)
            uri = str(tmp / f"stage-{backend}-{n}")
            prep.stage(prep.training_frame(series, prof, shards, cut), uri)
            spec = TrainSpec(uri, 56, 14, 1, epochs=3, steps_per_epoch=args.steps, batch_size=args.batch,
                             learning_rate=2e-3, lstm_units=32, dense_units=32, use_gpu=True, threads=args.threads)
            t0 = time.perf_counter()
            res = get_launcher(backend).run(spark, spec, n)
            wall = time.perf_counter() - t0
            # epoch 1 warms up (graph tracing): steady state = later epochs; the slowest worker sets the pace
            sps[n] = n * min(r.steady_samples_per_second for r in res)
            figures[f"{backend}.{n}w.samples_per_s"] = round(sps[n], 1)
            figures[f"{backend}.{n}w.wall_s"] = round(wall, 1)
            print(f"{backend:14s} {n} worker(s): {sps[n]:9.1f} samples/s  (launch+train wall {wall:.1f}s, device {res[0].device})")
        if 1 in sps and 2 in sps:
            eff = sps[2] / (2 * sps[1])
            figures[f"{backend}.scaling_efficiency"] = round(eff, 3)
            print(f"{backend:14s} scaling efficiency 2 vs 1 worker: {eff:.1%}")
    if not args.skip_real:
        p = ForecastParams(max_series=1000, train=dict(backend="tf-distribute", num_workers=min(2, slots)))
        real_series, end = prepare(real_demand(spark))
        real_series = real_series.cache()
        real_prof = series_profile(real_series, end, p.history_needed, p.max_series).cache()
        t0 = time.perf_counter()
        m = train_at(spark, real_series, real_prof, end, p, get_launcher(p.train.backend), str(tmp / "stage-real"))
        total = time.perf_counter() - t0
        figures.update({"real.series": m.n_series, "real.epochs": p.train.epochs, "real.steps_per_epoch": m.steps_per_epoch,
                        "real.train_s": round(total, 1), "real.samples_per_s": round(m.samples_per_second, 1)})
        print(f"real data: {m.n_series} series, {p.train.epochs} epochs x {m.steps_per_epoch} steps: "
              f"{total:.1f}s staging+training ({m.samples_per_second:.0f} samples/s)")
    print(json.dumps({"bench": "forecast_training", "at": dt.datetime.now().isoformat(timespec="seconds"), **figures}))


if __name__ == "__main__":
    main()
