"""Benchmark: wall time of the whole pipeline (every stage) on the real data and on a
synthetic scale-up of it, in local mode, with per-stage times.

The scale-up ingests the real files once, then replicates each bronze table ``--scale``
times with disjoint invoice numbers, customer ids and source lines (the Hillstrom and
sessions customers are keyed by their source line, so copies are new customers), and runs
the pipeline from ``clean`` on it. Goals (docs/BENCHMARKS.md): real data <= 10 min on 2
cores; the scale-up <= ``scale`` x the real time.

    .venv/bin/python bench/pipeline.py [--profile fast] [--scale 10] [--master local[2]] [--driver-memory 8g]
        [--parallel N] [--compare-sequential]

``--scale 1`` skips the scale-up; ``--compare-sequential`` then also times the real data
with one stage at a time, in a fresh process (the baseline of the parallel runner).
Prints the figures, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from clean_features import scale_up as scale_orders  # noqa: E402
from marketlab.config import load_settings  # noqa: E402
from marketlab.pipeline_runner import run_pipeline  # noqa: E402
from marketlab.profiles import profile_overrides  # noqa: E402
from marketlab.tables import Lake  # noqa: E402

CONF = str(ROOT / "conf" / "local.yaml")


def scale_rows(df: DataFrame, k: int) -> DataFrame:
    """``k`` copies of a bronze table whose rows are keyed by source line."""
    n = df.count()
    copies = df.sparkSession.range(k).withColumnRenamed("id", "_copy")
    return (df.crossJoin(F.broadcast(copies)).withColumn("_line", F.col("_line") + F.col("_copy") * n)
            .drop("_copy"))


def overrides(work: Path, name: str, master: str, profile: str | None, driver_memory: str) -> tuple[str, ...]:
    return (*profile_overrides(profile, CONF), f"lake_root={work / name / 'lake'}",
            f"mlflow.tracking_uri=sqlite:///{work / name / 'mlflow.db'}",
            f"mlflow.artifact_root={work / name / 'artifacts'}", f"spark.master={master}", "spark.conf.spark.ui.enabled=false",
            f"spark.conf.spark.driver.memory={driver_memory}")


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine (Linux), for the busy fraction of a run."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def timed(ovr: tuple[str, ...], from_stage: str | None = None, parallel: int | None = None) -> dict:
    c0, t0 = _cpu_ticks(), time.perf_counter()
    res = run_pipeline(CONF, ovr, force=True, from_stage=from_stage, max_parallel=parallel)
    total, c1 = time.perf_counter() - t0, _cpu_ticks()
    if res.exit_code:
        raise SystemExit(f"pipeline failed: {[(s.stage, s.status, s.message) for s in res.stages]}")
    busy = round((c1[0] - c0[0]) / max(c1[1] - c0[1], 1), 3) if c0 and c1 else None
    return {"total_s": total, "cpu_busy": busy, "stages": {s.stage: round(s.seconds, 1) for s in res.stages}}


def sequential_baseline(args: argparse.Namespace, work: Path) -> dict:
    """The real data one stage at a time, in a process of its own.

    A fresh process, as the measured run had: in the same driver JVM the second pipeline
    runs on warm JIT-compiled code and would be 20-80 % faster per stage.
    """
    cmd = [sys.executable, __file__, "--scale", "1", "--parallel", "1", "--master", args.master,
           "--driver-memory", args.driver_memory, "--workdir", str(work), *(["--profile", args.profile] if args.profile else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"sequential baseline failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--profile", default=None, help="conf profile, e.g. fast (default: the full conf)")
    ap.add_argument("--workdir", default=None)
    # One driver JVM serves every stage of both runs (local mode: it is also the executor);
    # the 10x effect bootstrap needs more than the 4g default.
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--parallel", type=int, default=None,
                    help="stages at once (default: the conf's pipeline.max_parallel_stages)")
    ap.add_argument("--compare-sequential", action="store_true",
                    help="also run the real data one stage at a time (the baseline of the parallel runner)")
    args = ap.parse_args()
    from marketlab.spark import get_spark

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-pipeline-"))
    real_ovr = overrides(work, "real", args.master, args.profile, args.driver_memory)
    parallel = args.parallel or load_settings(CONF, list(real_ovr)).pipeline.max_parallel_stages
    # The baseline first, while this process has no Spark JVM yet to share the machine with.
    baseline = sequential_baseline(args, work / "sequential") if args.compare_sequential and parallel > 1 else None
    real = timed(real_ovr, parallel=parallel)
    out = {"bench": "pipeline", "master": args.master, "profile": args.profile or "default", "scale": args.scale,
           "driver_memory": args.driver_memory, "max_parallel_stages": parallel,
           "real_total_s": round(real["total_s"], 1), "real_stage_sum_s": round(sum(real["stages"].values()), 1),
           "real_cpu_busy": real["cpu_busy"], "real_stages_s": real["stages"]}
    print(f"master {args.master}; profile {out['profile']}; {parallel} stage(s) at once; workdir {work}")
    print(f"  real: {real['total_s']:.1f} s wall, {out['real_stage_sum_s']:.1f} s summed over stages, "
          f"CPU busy {real['cpu_busy']}  "
          + "  ".join(f"{k} {v}" for k, v in real["stages"].items()))
    if baseline is not None:
        out.update({"sequential_total_s": baseline["real_total_s"], "sequential_cpu_busy": baseline["real_cpu_busy"],
                    "sequential_stages_s": baseline["real_stages_s"],
                    "speedup_vs_sequential": round(baseline["real_total_s"] / real["total_s"], 3)})
        print(f"  one stage at a time: {baseline['real_total_s']:.1f} s  "
              + "  ".join(f"{k} {v}" for k, v in baseline["real_stages_s"].items()))
        print(f"  parallel runner: {out['speedup_vs_sequential']:.2f}x faster")
    if args.scale > 1:
        big_ovr = overrides(work, f"x{args.scale}", args.master, args.profile, args.driver_memory)
        st_real = load_settings(CONF, list(real_ovr))
        st_big = load_settings(CONF, list(big_ovr))
        spark = get_spark(st_real)
        src, dst = Lake(spark, st_real), Lake(spark, st_big)
        dst.write(scale_orders(src.read("bronze.orders"), args.scale), "bronze.orders")
        dst.write(scale_rows(src.read("bronze.campaign_log"), args.scale), "bronze.campaign_log")
        dst.write(scale_rows(src.read("bronze.sessions"), args.scale), "bronze.sessions")
        # The report reads ingest's log; the scaled lake was not ingested, so it gets the real one.
        dst.write(src.read("ops.ingest_log"), "ops.ingest_log")
        rows = {t: dst.read(t).count() for t in ("bronze.orders", "bronze.campaign_log", "bronze.sessions")}
        big = timed(big_ovr, from_stage="clean", parallel=parallel)
        real_wo_ingest = real["total_s"] - real["stages"].get("ingest", 0.0)
        ratio = big["total_s"] / real_wo_ingest
        print(f"  x{args.scale}: {big['total_s']:.1f} s  " + "  ".join(f"{k} {v}" for k, v in big["stages"].items()))
        print(f"  rows {rows}; scale-up cost (clean..end) {ratio:.2f}x for {args.scale}x rows (goal <= {args.scale}x)")
        out.update({"scaled_rows": rows, "scaled_total_s": round(big["total_s"], 1), "scaled_stages_s": big["stages"],
                    "cost_ratio": round(ratio, 3), "linear": ratio <= args.scale})
    out["real_within_10_min"] = real["total_s"] <= 600
    print(json.dumps(out))


if __name__ == "__main__":
    main()
