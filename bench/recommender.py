"""Spark ALS vs. the `implicit` library: fit + recommend-all, same rank/iterations, same run.

    .venv/bin/python bench/recommender.py [--synthetic 1000000] [--rank 32] [--iters 10] [--skip-real]

For each data set (the vendored Online Retail interactions, and a synthetic power-law set
of N interactions) it times, in one process:

- implicit (CPU, `implicit.cpu.als`): fit, recommend-all (top-10, bought filtered), best of 3
- Spark ALS, blocks = default parallelism and = 2: fit, with and without checkpoints
- Spark recommend-all two ways: `ALSModel.recommendForAllUsers` (no bought filter) and
  this project's scorer (`score_users`: numpy BLAS per user batch, bought excluded)
- precision@10 of both (and popularity) on a per-user random hide-20 % split (seed 0)

Ratios are Spark / implicit measured in the same run. Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Before numpy loads OpenBLAS: implicit parallelises over users itself; nested BLAS threads
# slow it down severely (its own warning), which would flatter the Spark/implicit ratios.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from marketlab.config import load_settings  # noqa: E402
from marketlab.recommend.data import ITEM_IDX, USER_IDX  # noqa: E402
from marketlab.recommend.models import als_side, fit_als, item_popularity  # noqa: E402
from marketlab.recommend.params import AlsParams  # noqa: E402
from marketlab.recommend.score import ItemSide, score_users, user_frame  # noqa: E402
from marketlab.spark import get_spark  # noqa: E402


def bench_session(master: str, prefix: str):
    """A Spark session (conf/test.yaml, 6g driver) with its lake in a new temp folder: ``(spark, folder)``."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    st = load_settings(ROOT / "conf" / "test.yaml", [f"lake_root={tmp}", f"spark.master={master}",
                                                     "spark.conf={spark.driver.memory: 6g}"])
    return get_spark(st), tmp


def retail_pairs() -> pd.DataFrame:
    df = pd.read_csv(ROOT / "data" / "online_retail" / "online_retail.csv.gz", dtype={"StockCode": str})
    df = df[df["CustomerID"].notna() & df["StockCode"].str.match(r"^\d")]
    net = df.groupby(["CustomerID", "StockCode"], as_index=False)["Quantity"].sum()
    net = net[net["Quantity"] > 0]
    return pd.DataFrame({
        USER_IDX: pd.factorize(net["CustomerID"])[0].astype("int32"),
        ITEM_IDX: pd.factorize(net["StockCode"])[0].astype("int32"),
        "strength": net["Quantity"].astype("float64").to_numpy(),
    })


def synthetic_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n // 20, 10), max(n // 50, 10)
    # Power-law users and items draw many repeated pairs: draw until n distinct pairs exist
    # (one pass kept only ~37 % of 1.3 n draws).
    seen = pd.DataFrame({USER_IDX: pd.Series(dtype="int32"), ITEM_IDX: pd.Series(dtype="int32")})
    while len(seen) < n:
        m = 2 * (n - len(seen)) + 1000
        users = (rng.zipf(1.3, size=m) % n_users).astype("int32")
        items = (rng.zipf(1.2, size=m) % n_items).astype("int32")
        seen = pd.concat([seen, pd.DataFrame({USER_IDX: users, ITEM_IDX: items})]).drop_duplicates()
    df = seen.head(n).copy()
    df["strength"] = rng.integers(1, 12, size=len(df)).astype("float64")
    return df.reset_index(drop=True)


def hide(df: pd.DataFrame, frac: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    d = df.assign(_r=rng.random(len(df))).sort_values([USER_IDX, "_r"])
    d["_n"] = d.groupby(USER_IDX)[ITEM_IDX].transform("size")
    d["_k"] = d.groupby(USER_IDX).cumcount()
    test_mask = (d["_n"] >= 2) & (d["_k"] < np.maximum(1, np.round(d["_n"] * frac)).astype(int))
    return d[~test_mask].drop(columns=["_r", "_n", "_k"]), d[test_mask].drop(columns=["_r", "_n", "_k"])


def precision_at_10(recs: dict[int, np.ndarray], test: pd.DataFrame) -> float:
    truth = test.groupby(USER_IDX)[ITEM_IDX].apply(set)
    return float(np.mean([len(truth[u] & set(recs.get(u, [])[:10])) / 10 for u in truth.index]))


def bench_one(spark, name: str, pairs: pd.DataFrame, rank: int, iters: int, ckpt: str) -> dict:
    from implicit.cpu.als import AlternatingLeastSquares

    train, test = hide(pairs)
    n_users, n_items = int(pairs[USER_IDX].max()) + 1, int(pairs[ITEM_IDX].max()) + 1
    out: dict = {"data": name, "interactions": len(pairs), "users": n_users, "items": n_items}
    conf = np.log1p(train["strength"].to_numpy())
    alpha, reg = 15.0, 0.1
    ui = sp.csr_matrix((conf, (train[USER_IDX], train[ITEM_IDX])), shape=(n_users, n_items))

    # implicit scales confidence by alpha itself; Spark uses c = 1 + alpha * r too.
    # Best of 3: implicit's time doubled in one run next to a busy JVM; taking its best
    # makes the Spark / implicit ratios conservative.
    fits, recs = [], []
    for _ in range(3):
        model = AlternatingLeastSquares(factors=rank, iterations=iters, regularization=reg, alpha=alpha,
                                        random_state=0, calculate_training_loss=False)
        t = time.perf_counter()
        model.fit(ui, show_progress=False)
        fits.append(time.perf_counter() - t)
        t = time.perf_counter()
        ids, _ = model.recommend(np.arange(n_users), ui, N=10, filter_already_liked_items=True)
        recs.append(time.perf_counter() - t)
    out["implicit_fit_s"], out["implicit_recommend_s"] = min(fits), min(recs)
    out["implicit_p_at_10"] = precision_at_10({u: ids[u] for u in range(n_users)}, test)

    sdf = spark.createDataFrame(train).repartition(int(spark.sparkContext.defaultParallelism)).cache()
    sdf.count()
    pop = item_popularity(sdf, n_items)
    popular = np.argsort(-pop, kind="stable")
    bought = train.groupby(USER_IDX)[ITEM_IDX].apply(set)
    out["popular_p_at_10"] = precision_at_10(
        {u: np.array([i for i in popular[: 10 + len(b)] if i not in b][:10]) for u, b in bought.items()}, test)

    for blocks, interval, label in [(0, 5, "default_blocks"), (2, 5, "2_blocks"), (2, 1000, "2_blocks_no_ckpt")]:
        p = AlsParams(rank=rank, max_iter=iters, reg_param=reg, alpha=alpha, num_blocks=blocks,
                      checkpoint_interval=interval, seed=0)
        t = time.perf_counter()
        m = fit_als(sdf, p, ckpt)
        m.userFactors.count()
        out[f"spark_fit_{label}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    spark_recs = m.recommendForAllUsers(10)
    spark_recs.write.format("noop").mode("overwrite").save()
    out["spark_recommendForAllUsers_s"] = time.perf_counter() - t
    t = time.perf_counter()
    side = als_side(m, n_items)
    scored = score_users(user_frame(sdf, user_factors=m.userFactors), side, 10).cache()
    rows = scored.select(USER_IDX, "items").collect()
    out["spark_score_users_s"] = time.perf_counter() - t
    out["spark_p_at_10"] = precision_at_10({r[USER_IDX]: np.array(r["items"]) for r in rows}, test)
    fit = out["spark_fit_2_blocks_s"]
    out["ratio_fit"] = fit / out["implicit_fit_s"]
    out["ratio_recommend_builtin"] = out["spark_recommendForAllUsers_s"] / out["implicit_recommend_s"]
    out["ratio_recommend_scorer"] = out["spark_score_users_s"] / out["implicit_recommend_s"]
    out["ratio_fit_plus_recommend"] = (fit + out["spark_score_users_s"]) / (
        out["implicit_fit_s"] + out["implicit_recommend_s"])
    sdf.unpersist()
    scored.unpersist()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synthetic", type=int, default=1_000_000)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    spark, tmp = bench_session(args.master, "bench_rec_")
    ckpt = str(tmp / "_tmp" / "checkpoints")
    results = []
    sets = ([] if args.skip_real else [("online_retail", retail_pairs())]) + \
        ([(f"synthetic_{args.synthetic}", synthetic_pairs(args.synthetic))] if args.synthetic else [])
    for name, pairs in sets:
        r = bench_one(spark, name, pairs, args.rank, args.iters, ckpt)
        results.append(r)
        print(f"{name}: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    spark.stop()
    print(json.dumps({"bench": "recommender", "master": args.master, "rank": args.rank, "iters": args.iters,
                      "results": results}))


if __name__ == "__main__":
    main()
