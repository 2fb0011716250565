"""Benchmark: per-warehouse inventory LPs in Spark map tasks vs a bare loop in one process.

Same synthetic LPs (n_items x (4 T - L) variables each, default 50 x 32 = 1,600), same run:

* ``loop``: :func:`solve_frame` over the pandas problem frame in this process (1 core);
  it does exactly the per-warehouse work of a map task (cut, build, solve, emit rows).
* ``map``: :func:`solve_distributed` (mapInPandas, many warehouses per Arrow batch) on
  ``local[cores]``; the input is cached first and the Python workers are warmed up once,
  so the solve (incl. shuffle by warehouse, Arrow transfer and result collection) is timed.
* ``apply`` (optional, smallest size only): ``groupBy(warehouse).applyInPandas`` with the
  same body, the per-group design the issue measured as 3.4-7x slower.

Figures: seconds, LPs/s, per-core throughput of ``map`` relative to ``loop`` (goal >= 0.75)
and seconds per 1,000 LPs at each size (linear growth = flat). Ends with ONE JSON line.

Usage:
    .venv/bin/python bench/inventory.py --warehouses 10000           # the issue's size
    .venv/bin/python bench/inventory.py --warehouses 250,500,1000 --apply
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouses", default="250,500,1000", help="comma-separated sizes")
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--periods", type=int, default=8)
    ap.add_argument("--lead-time", type=int, default=0)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--batch-rows", type=int, default=20000)
    ap.add_argument("--apply", action="store_true", help="also time applyInPandas at the smallest size")
    args = ap.parse_args()

    from marketlab.config import load_settings
    from marketlab.inventory.batch import RESULT_SCHEMA, solve_distributed, solve_frame
    from marketlab.inventory.synthetic import synthetic_problems
    from marketlab.spark import get_spark

    settings = load_settings(ROOT / "conf" / "local.yaml", [f"spark.master=local[{args.cores}]",
                                                            "spark.conf.spark.ui.enabled=false"])
    spark = get_spark(settings)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch_rows))
    sizes = [int(s) for s in args.warehouses.split(",")]
    # Warm-up: start the Python workers and import scipy in them once (a long-running job
    # pays this once, not per size); not timed.
    warm = spark.createDataFrame(synthetic_problems(4 * args.cores, 5, 3, seed=1))
    solve_distributed(warm, partitions=args.cores).filter("record = 'status'").toPandas()
    out: dict = {"items": args.items, "periods": args.periods, "cores": args.cores, "sizes": {}}
    for n in sizes:
        pdf = synthetic_problems(n, args.items, args.periods, args.lead_time, infeasible_every=50, seed=n)
        sdf = spark.createDataFrame(pdf).repartition(args.cores).cache()
        sdf.count()
        t0 = time.perf_counter()
        ref = solve_frame(pdf)
        t_loop = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = solve_distributed(sdf, partitions=args.cores).filter("record = 'status'").toPandas()
        t_map = time.perf_counter() - t0
        ref_st = ref[ref.record == "status"].set_index("warehouse")["objective"]
        diff = float((res.set_index("warehouse")["objective"] - ref_st).abs().max())
        row = {
            "n_vars": int(res["n_vars"].median()), "loop_s": round(t_loop, 2), "map_s": round(t_map, 2),
            "loop_lp_per_s": round(n / t_loop, 1), "map_lp_per_s": round(n / t_map, 1),
            "per_core_vs_loop": round((n / t_map / args.cores) / (n / t_loop), 3),
            "map_s_per_1000": round(1000 * t_map / n, 2), "max_abs_objective_diff": diff,
            "solver_s_share_loop": round(float(ref.loc[ref.record == "status", "solve_seconds"].sum()) / t_loop, 3),
        }
        if args.apply and n == min(sizes):
            body = lambda g: solve_frame(g.sort_values(["item_id", "period"]))  # noqa: E731
            t0 = time.perf_counter()
            sdf.groupBy("warehouse").applyInPandas(body, RESULT_SCHEMA).filter("record = 'status'").toPandas()
            t_apply = time.perf_counter() - t0
            row.update(apply_s=round(t_apply, 2), map_speedup_vs_apply=round(t_apply / t_map, 2))
        out["sizes"][n] = row
        print(f"{n:>6} LPs x {row['n_vars']} vars: loop {t_loop:7.1f}s ({row['loop_lp_per_s']}/s)  "
              f"map[{args.cores}] {t_map:7.1f}s ({row['map_lp_per_s']}/s)  per-core vs loop "
              f"{row['per_core_vs_loop']:.2f}  map s/1000 LPs {row['map_s_per_1000']}"
              + (f"  applyInPandas {row['apply_s']}s ({row['map_speedup_vs_apply']}x slower than map)"
                 if "apply_s" in row else ""), flush=True)
        sdf.unpersist()
    per_1000 = [r["map_s_per_1000"] for r in out["sizes"].values()]
    out["growth_s_per_1000_max_over_min"] = round(max(per_1000) / min(per_1000), 3)
    spark.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
