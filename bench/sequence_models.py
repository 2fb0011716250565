"""Sequence models: training samples/s with 1 and 2 workers per backend, epoch time, inference
for all customers, and (``--evaluate``) the whole workflow on the real data.

    .venv/bin/python bench/sequence_models.py [--steps 20] [--evaluate] [--epochs 6]

The histories are built from the vendored Online Retail CSV with the features stage's own
``customer_sequences`` (bench only; the job reads gold.customer_sequences). Throughput is
training examples per second of wall time in the epochs after the first (process start-up
and graph tracing excluded); efficiency = samples/s(2 workers) / (2 x samples/s(1 worker)).
Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import pandas as pd  # noqa: E402

from marketlab import constants as C  # noqa: E402
from marketlab.config import load_settings  # noqa: E402
from marketlab.features.build import customer_sequences  # noqa: E402
from marketlab.sequence import data  # noqa: E402
from marketlab.sequence.run import popularity, run, train_models  # noqa: E402
from marketlab.sequence.score import Served, score_all  # noqa: E402
from marketlab.spark import get_spark  # noqa: E402
from marketlab.tables import Lake  # noqa: E402
from marketlab.training.launch import get_launcher, task_slots  # noqa: E402


def real_sequences(spark):
    """gold.customer_sequences of the vendored orders (sales lines only, as the features stage keeps them)."""
    df = pd.read_csv(ROOT / "data/online_retail/online_retail.csv.gz", dtype={"StockCode": str, "InvoiceNo": str})
    df = df[~df.InvoiceNo.str.startswith("C") & (df.Quantity > 0) & (df.UnitPrice > 0) & df.CustomerID.notna()]
    ts = pd.to_datetime(df.InvoiceDate)
    sales = pd.DataFrame({C.CUSTOMER_ID: df.CustomerID.astype(int).astype(str), C.INVOICE_NO: df.InvoiceNo,
                          C.INVOICE_TS: ts, C.STOCK_CODE: df.StockCode.str.upper(), C.DATE: ts.dt.date})
    return customer_sequences(spark.createDataFrame(sales), "bench-salt")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20, help="steps per epoch of the throughput runs (3 epochs)")
    ap.add_argument("--evaluate", action="store_true", help="also run the whole workflow on the real data")
    ap.add_argument("--epochs", type=int, default=6, help="most epochs of the --evaluate run")
    ap.add_argument("--backends", default="horovod,tf-distribute", help="backends of the throughput runs ('' for none)")
    ap.add_argument("--conf", default=str(ROOT / "conf/local.yaml"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sequence-"))
    st = load_settings(args.conf, [f"lake_root={tmp / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}"])
    spark = get_spark(st)
    lake = Lake(spark, st)
    lake.write(real_sequences(spark), "gold.customer_sequences")
    params = st.jobs.sequence
    hist = data.histories(lake.read(params.input_table)).cache()
    split = data.plan_split(hist, params.horizon_days)
    vocab = data.vocabulary(hist, split.val_cutoff, params.min_item_count, params.max_items)
    n_customers = hist.count()
    slots = task_slots(spark)
    figures: dict = {"slots": slots, "customers": n_customers, "items": len(vocab.items), "steps": args.steps,
                     "batch_per_worker": params.train.batch_size, "split": split.describe()}
    print(f"{n_customers} customers, {len(vocab.items)} items, split {split.describe()}; {slots} task slots")
    trained = {}
    for backend in [b for b in args.backends.split(",") if b]:
        for n in (1, 2):
            if n > slots:
                continue
            p = params.model_copy(update={"shuffle_test": False, "models": ["transformer"], "train": params.train.model_copy(update={
                "backend": backend, "num_workers": n, "epochs": 3, "patience": 3, "max_steps_per_epoch": args.steps})})
            uri = str(tmp / f"stage-{backend}-{n}")
            staged = data.stage(hist, split, n, uri)
            t0 = time.perf_counter()
            models = train_models(spark, get_launcher(backend), p, split, vocab, staged, uri, str(tmp / "ckpt"))
            wall = time.perf_counter() - t0
            for kind, m in models.items():
                r = m.results
                sps = sum(x.steady_samples_per_second for x in r)
                ep = float(pd.Series(r[0].extra["epoch_seconds"][1:]).mean())
                figures[f"{backend}.{n}.{kind}.samples_per_s"] = round(sps, 1)
                figures[f"{backend}.{n}.{kind}.epoch_s"] = round(ep, 2)
                print(f"{backend:13s} {n} worker(s) {kind:11s}: {sps:8.1f} samples/s, epoch {ep:.2f} s "
                      f"({args.steps} steps), replicas identical {m.replicas_identical}")
            figures[f"{backend}.{n}.launch_s"] = round(wall, 1)
            trained = models
        for kind in ["transformer"]:
            one, two = figures.get(f"{backend}.1.{kind}.samples_per_s"), figures.get(f"{backend}.2.{kind}.samples_per_s")
            if one and two:
                figures[f"{backend}.{kind}.efficiency"] = round(two / (2 * one), 3)
    if "transformer" in trained:
        m = trained["transformer"]
        served = Served("transformer", vocab.items, popularity(hist, vocab, split.last_day + 1),
                        {"transformer": (m.config, m.weights)}, max_len=params.transformer.max_len)
        t0 = time.perf_counter()
        rows = score_all(hist, served, split.last_day + 1, params.top_k, params.horizon_days).count()
        figures["inference_all_customers_s"] = round(time.perf_counter() - t0, 1)
        print(f"inference for all {n_customers} customers (mapInPandas, {rows} rows): {figures['inference_all_customers_s']} s")
    if args.evaluate:
        p = params.model_copy(update={"train": params.train.model_copy(update={"epochs": args.epochs})})
        t0 = time.perf_counter()
        res = run(lake, p, work_uri=str(tmp / "work"), checkpoint_path=str(tmp / "ckpt-eval"))
        res.scores.count()
        figures["evaluate_s"] = round(time.perf_counter() - t0, 1)
        cols = ["model", "n_customers", "coverage", *[c for c in res.test.columns if c.startswith(("hr", "ndcg", "map", "recall"))]]
        for name, frame in (("validation", res.validation), ("test", res.test)):
            print(f"--- {name} ---")
            print(frame[cols].round(4).to_string(index=False))
        for name, pm in res.propensity.items():
            print(f"propensity {name}: AUC {pm.auc[0]:.3f} [{pm.auc[1]:.3f}, {pm.auc[2]:.3f}], log loss {pm.log_loss[0]:.4f} "
                  f"[{pm.log_loss[1]:.4f}, {pm.log_loss[2]:.4f}], ECE {pm.ece:.4f}, base rate {pm.base_rate:.3f}, n {pm.n}")
        print("gains (nDCG@10, test):", {k: tuple(round(x, 4) for x in v) for k, v in res.gains.items()})
        print("served:", res.served, "best baseline:", res.best_baseline,
              "epochs:", {k: (len(m.results[0].loss), m.best_epoch) for k, m in res.models.items()})
        figures["test"] = res.test[cols].round(5).to_dict("records")
        figures["gains"] = res.gains
        figures["propensity"] = {k: dataclasses.asdict(v) for k, v in res.propensity.items()}
        figures["served"] = res.served
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
