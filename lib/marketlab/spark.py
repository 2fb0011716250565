"""The one Spark session factory (local mode for tests and the demo; cluster mode attaches)."""

from __future__ import annotations

import glob
import logging
import os
import sys

from pyspark.sql import SparkSession

from marketlab.config import Settings
from marketlab.errors import ConfError

log = logging.getLogger(__name__)

#: What every MarketLab session needs, in every mode: Delta's SQL extensions and catalog,
#: and UTC so that dates do not move with the machine's zone. spark-submit commands
#: (:mod:`marketlab.submit`) and the generated manifests and DAG (:mod:`marketlab.deploy`)
#: pass the same keys.
SESSION_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
}

# Local-mode defaults: loopback only, small shuffles (2 cores), no console progress bars in logs.
_LOCAL_DEFAULTS = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.host": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "4",
    "spark.sql.adaptive.enabled": "true",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.databricks.delta.retentionDurationCheck.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "4g",
    # Plain-text logs; Spark 4's default JSON lines bury the one line that matters.
    "spark.log.structuredLogging.enabled": "false",
}


def delta_jars(settings: Settings) -> list[str]:
    """Delta Lake jars fetched by ``make`` (see infra/jars); empty if the folder is missing."""
    return sorted(glob.glob(os.path.join(settings.resolve(settings.spark.jars_dir), "*.jar")))


def get_spark(settings: Settings) -> SparkSession:
    """Return the session for these settings, building it once per process.

    Local mode builds a session bound to 127.0.0.1 with the Delta extensions and jars.
    Cluster mode attaches to the session spark-submit configured and only fills in keys
    that spark-submit left unset.

    Args:
        settings: Loaded settings.

    Returns:
        The active SparkSession.

    Raises:
        ConfError: Local mode and the Delta jars are missing (run ``make install``), or the
            local session did not start (one line naming the master and the conf keys).
    """
    cfg = settings.spark
    if cfg.mode == "cluster":
        # SparkConf() holds what spark-submit set (--name, --conf, spark-defaults.conf);
        # only keys it left unset are filled in, before the context starts so that core
        # settings (executor sizes) still apply. --name wins over spark.app_name.
        from pyspark import SparkConf, SparkContext

        SparkContext._ensure_initialized()  # the JVM spark-submit started; SparkConf() reads its spark.* properties
        submitted = SparkConf()
        builder = SparkSession.builder
        if not submitted.contains("spark.app.name"):
            builder = builder.appName(cfg.app_name)
        fill = {**SESSION_CONF, **cfg.conf}
        for key, value in fill.items():
            if not submitted.contains(key):
                builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel(cfg.log_level)
        log.debug("spark %s attached: master=%s app=%s", spark.version, spark.sparkContext.master,
                  spark.sparkContext.appName)
        return spark

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Executors must run the same interpreter (the venv) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    jars = delta_jars(settings)
    if not jars:
        raise ConfError(
            f"no Delta Lake jars in {settings.resolve(cfg.jars_dir)} (spark.jars_dir): run `make install` "
            "(fetches them from Maven Central)"
        )
    builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
    for key, value in {**_LOCAL_DEFAULTS, **SESSION_CONF, **cfg.conf}.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.jars", ",".join(jars))
    log4j = os.path.join(settings.project_root, "conf", "log4j2.properties")
    if os.path.isfile(log4j) and "spark.driver.extraJavaOptions" not in cfg.conf:
        builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: conf the validators could not judge (jars, memory, java)
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ConfError(f"Spark did not start (spark.master={cfg.master}, spark.conf {sorted(cfg.conf)}): "
                        f"{first[:300]}") from exc
    spark.sparkContext.setLogLevel(cfg.log_level)
    log.debug("spark %s up: master=%s", spark.version, cfg.master)
    return spark
