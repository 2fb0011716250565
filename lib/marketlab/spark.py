"""The one Spark session factory (local mode for tests and the demo; cluster mode attaches)."""

from __future__ import annotations

import glob
import ipaddress
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
    # Lake files owner-only (docs/CONTRACTS.md, "Owner-only files"): Hadoop chmods what it
    # creates by this mask, not by the process umask, so both are set; it also reaches the
    # executors of a cluster, whose processes MarketLab does not start.
    "spark.hadoop.fs.permissions.umask-mode": "077",
    # Python <-> JVM data (collect, createDataFrame, UDF workers, accumulators, barrier
    # allGather) over Unix domain sockets, not loopback TCP. The JVM serves each collect() on
    # a one-shot server that closes after its first connection, whoever makes it; on TCP any
    # process that connects to a port it believes free (a free-port probe, a client retrying
    # a server that is not up yet) can take that connection first, and the collect fails
    # with `CANNOT_OPEN_SOCKET ... Connection refused` (or `reset by peer`). CI failed twice
    # that way with two test workers beside each other. A socket file has no port to take,
    # and the umask (077) keeps other accounts of the machine off it.
    "spark.python.unix.domain.socket.enabled": "true",
    # PySpark's worker daemon, minus the BrokenPipeError traceback a task that ends early
    # (first(), limit) prints on a successful run (marketlab/pyspark_daemon.py).
    "spark.python.daemon.module": "marketlab.pyspark_daemon",
    # How long a Python worker waits for the JVM's authentication handshake (Spark's
    # default, 15 s, is short on a loaded 2-core machine).
    "spark.python.authenticate.socketTimeout": "300s",
}

#: Process umask of every MarketLab driver: what it writes outside Hadoop (the MLflow store
#: and artifacts, reports, the pseudonym secret) and the local-mode JVM, which inherits it.
PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Make every file and folder this process creates from now on owner-only.

    bronze and silver hold raw customer ids and MLflow artifacts hold keyed customers, so
    nothing MarketLab writes is for other accounts of the machine. Process-wide on purpose:
    called by the job harness and by :func:`get_spark` before the JVM starts.
    """
    os.umask(PRIVATE_UMASK)

# Local-mode defaults: small shuffles (2 cores), no console progress bars in logs. The
# addresses come from `spark.bind_address` (:func:`bind_conf`).
_LOCAL_DEFAULTS = {
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


def bind_address(settings: Settings) -> str:
    """The address Spark listens on: ``spark.bind_address``, or ``$SPARK_LOCAL_IP`` when it says ``env``."""
    addr = settings.spark.bind_address
    if addr == "env":
        return os.environ.get("SPARK_LOCAL_IP") or "127.0.0.1"
    return addr


def bind_environment(settings: Settings) -> dict[str, str]:
    """Environment a driver JVM must start with: ``SPARK_LOCAL_IP`` set to :func:`bind_address`.

    Spark's web UI binds to ``$SPARK_LOCAL_IP`` of the JVM's environment (``0.0.0.0`` when
    unset), not to ``spark.driver.bindAddress``, so the variable itself has to be right.
    """
    return {"SPARK_LOCAL_IP": bind_address(settings)}


def bind_conf(settings: Settings) -> dict[str, str]:
    """``spark.driver.bindAddress`` and ``spark.driver.host`` for :func:`bind_address`.

    A wildcard address (``0.0.0.0``, ``::``) is only something to listen on; the driver then
    advertises the loopback address to its in-process executors.
    """
    addr = bind_address(settings)
    unspecified = addr != "localhost" and ipaddress.ip_address(addr).is_unspecified
    return {"spark.driver.bindAddress": addr, "spark.driver.host": "127.0.0.1" if unspecified else addr}


def _launch_jvm_logging_to_python(builder) -> None:
    """Start the driver JVM with its stderr read into Python logging (``logging.format: json``).

    The JVM writes its own lines (log4j, its start-up warnings) straight to the inherited
    stderr, which would put plain text between the JSON lines; PySpark's launcher takes the
    child's pipes as arguments, so the gateway is started here, before the builder would.
    """
    import subprocess

    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    from marketlab.logs import log_lines

    if SparkContext._gateway is not None:  # a JVM of this process is already up
        return
    conf = SparkConf(loadDefaults=False)
    for key, value in builder._options.items():
        conf.set(key, value)
    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})
    log_lines(gateway.proc.stderr)
    SparkContext._gateway, SparkContext._jvm = gateway, gateway.jvm


def get_spark(settings: Settings) -> SparkSession:
    """Return the session for these settings, building it once per process.

    Local mode builds a session bound to ``spark.bind_address`` (127.0.0.1) with the Delta
    extensions and jars; the caller's ``$SPARK_LOCAL_IP`` is replaced unless that setting
    is ``env``.
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
        private_umask()
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

    # Conf decides, not the caller's environment: the JVM started below inherits it (and the umask).
    os.environ.update(bind_environment(settings))
    private_umask()
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
    for key, value in {**_LOCAL_DEFAULTS, **bind_conf(settings), **SESSION_CONF, **cfg.conf}.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.jars", ",".join(jars))
    log4j = os.path.join(settings.project_root, "conf", "log4j2.properties")
    if os.path.isfile(log4j) and "spark.driver.extraJavaOptions" not in cfg.conf:
        builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
    try:
        if settings.logging.format == "json":
            _launch_jvm_logging_to_python(builder)
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: conf the validators could not judge (jars, memory, java)
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ConfError(f"Spark did not start (spark.master={cfg.master}, spark.conf {sorted(cfg.conf)}): "
                        f"{first[:300]}") from exc
    spark.sparkContext.setLogLevel(cfg.log_level)
    log.debug("spark %s up: master=%s", spark.version, cfg.master)
    return spark
