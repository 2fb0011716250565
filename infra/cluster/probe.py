"""Where do the driver and the executors import marketlab from? A spark-submit main file.

    spark-submit <the flags `marketlab submit` prints> infra/cluster/probe.py [--conf conf/cluster.yaml]

Runs one task per executor core that reports ``marketlab.__file__``, the interpreter and
the working directory, and prints one JSON line ``PROBE {...}``. With ``--conf`` the
session comes from :func:`marketlab.spark.get_spark` (cluster mode), and the line also
holds the application name and settings the session ended up with, which shows whether
get_spark kept what spark-submit set. The cluster test submits it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys


def where() -> dict:
    import marketlab

    return {"marketlab": marketlab.__file__, "python": sys.executable, "host": socket.gethostname(),
            "pid": os.getpid(), "cwd": os.getcwd()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conf", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    if args.conf:
        from marketlab.config import load_settings
        from marketlab.spark import get_spark

        spark = get_spark(load_settings(args.conf, args.overrides))
    else:
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.appName("marketlab-probe").getOrCreate()
    sc = spark.sparkContext
    n = max(2, sc.defaultParallelism)
    seen = sc.parallelize(range(n), n).map(lambda _: json.dumps(where(), sort_keys=True)).distinct().collect()
    keys = ("spark.sql.shuffle.partitions", "spark.sql.extensions", "spark.sql.session.timeZone",
            "spark.executor.memory")
    out = {"driver": where(), "executors": [json.loads(s) for s in seen], "master": sc.master,
           "app_id": sc.applicationId, "app_name": sc.appName,
           "conf": {k: spark.conf.get(k, None) for k in keys}}
    print("PROBE " + json.dumps(out, sort_keys=True), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
