"""Row counts of every catalog table and order-independent checksums of the gold tables.

usage: .venv/bin/python bench/table_checksums.py CONF LAKE_ROOT OUT.json

Used to show that a refactor leaves every table identical: run the same pipeline before and
after, compare the two JSON files. Not a timing benchmark; it ends with one JSON line.
Columns that carry run-time facts (timestamps, run ids, paths, `*_seconds` timings) are left out of the checksums.
"""
import argparse
import json
import os
import sys
from pathlib import Path

from pyspark.sql import functions as F

from marketlab.config import load_settings
from marketlab.spark import get_spark
from marketlab.tables import Lake

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("conf", nargs="?", default=str(ROOT / "conf" / "local.yaml"))
ap.add_argument("lake_root", nargs="?", default=None, help="default: the conf's lake_root")
ap.add_argument("out", nargs="?", default="table_checksums.json")
a = ap.parse_args()
conf, root, out = a.conf, a.lake_root, a.out
# A checksum reads whatever the lake holds, a version the gate refused included.
st = load_settings(conf, [*([f"lake_root={root}"] if root else []), "jobs.quality.guard_reads=false"])
spark = get_spark(st)
lake = Lake(spark, st)
res = {}
SKIP_TYPES = ("timestamp", "date")
for name in sorted(st.catalog):
    if not lake.exists(name):
        continue
    df = lake.read(name)
    entry = {"rows": df.count()}
    if name.startswith(("gold.", "silver.", "bronze.")):
        cols = [f.name for f in df.schema.fields
                if f.dataType.simpleString() not in SKIP_TYPES and not f.name.startswith("_")
                and not any(s in f.name for s in ("run_id", "path", "file", "ingested", "created", "model_version"))
                and not f.name.endswith("_seconds")]  # wall time of a solve: a run-time fact
        if cols:
            h = df.select(F.xxhash64(*[F.col(c).cast("string") for c in cols]).alias("h"))
            entry["checksum"] = h.agg(F.sum(F.col("h").cast("decimal(38,0)"))).first()[0].__str__()
            entry["cols"] = cols
    res[name] = entry
json.dump(res, open(out, "w"), indent=1, sort_keys=True)
print(json.dumps({k: (v["rows"], v.get("checksum")) for k, v in res.items()}))
