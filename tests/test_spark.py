"""The session factory: where the driver and its UI listen (conf, not the caller's environment)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from conftest import ROOT, make_settings
from marketlab.errors import ConfError
from marketlab.spark import bind_conf, bind_environment

# A child process, because SPARK_LOCAL_IP must be in the environment before the JVM starts:
# start a session with the UI on a free port and report the JVM's listening sockets.
_CHILD = """
import json, os, sys
import psutil
from marketlab.config import load_settings
from marketlab.spark import get_spark
tmp = sys.argv[1]
st = load_settings(sys.argv[2], [f"lake_root={tmp}/lake", f"spark.bind_address={sys.argv[3]}",
                                 "spark.conf.spark.ui.enabled=true", "spark.conf.spark.ui.port=0"])
spark = get_spark(st)
conf = spark.sparkContext.getConf()
jvm = [p for p in psutil.Process().children(recursive=True) if "java" in p.name()]
listening = sorted({(c.laddr.ip.removeprefix("::ffff:"), c.laddr.port) for p in jvm
                    for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN})
print(json.dumps({"host": conf.get("spark.driver.host"), "bind": conf.get("spark.driver.bindAddress"),
                  "driver_port": int(conf.get("spark.driver.port")),
                  "ui_port": int(spark.sparkContext.uiWebUrl.rsplit(":", 1)[1]), "listening": listening}))
spark.stop()
"""


def _session_in_child(tmp_path, bind_address: str, local_ip: str) -> dict:
    env = {**os.environ, "SPARK_LOCAL_IP": local_ip, "PYTHONPATH": str(ROOT / "lib")}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), str(ROOT / "conf" / "test.yaml"), bind_address],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["by_port"] = {port: ip for ip, port in out["listening"]}
    return out


def test_an_inherited_wildcard_spark_local_ip_does_not_open_the_ui(tmp_path):
    got = _session_in_child(tmp_path, "127.0.0.1", "0.0.0.0")
    assert (got["host"], got["bind"]) == ("127.0.0.1", "127.0.0.1")
    assert got["by_port"][got["ui_port"]] == "127.0.0.1"
    assert got["by_port"][got["driver_port"]] == "127.0.0.1"
    assert {ip for ip, _ in got["listening"]} == {"127.0.0.1"}, got["listening"]


def test_env_honours_spark_local_ip(tmp_path):
    # 127.0.0.2 is a loopback address too: the check sees the address really used.
    got = _session_in_child(tmp_path, "env", "127.0.0.2")
    assert (got["host"], got["bind"]) == ("127.0.0.2", "127.0.0.2")
    assert got["by_port"][got["ui_port"]] == "127.0.0.2"
    assert got["by_port"][got["driver_port"]] == "127.0.0.2"


def test_bind_address_is_validated_and_resolved(tmp_path, monkeypatch):
    with pytest.raises(ConfError, match="spark.bind_address: .*not an IP address"):
        make_settings(tmp_path, ["spark.bind_address=eth0"])
    monkeypatch.setenv("SPARK_LOCAL_IP", "0.0.0.0")
    assert bind_environment(make_settings(tmp_path)) == {"SPARK_LOCAL_IP": "127.0.0.1"}
    wildcard = make_settings(tmp_path, ["spark.bind_address=env"])
    assert bind_environment(wildcard) == {"SPARK_LOCAL_IP": "0.0.0.0"}
    # Listening on every interface is allowed when conf says so; the driver then advertises loopback.
    assert bind_conf(wildcard) == {"spark.driver.bindAddress": "0.0.0.0", "spark.driver.host": "127.0.0.1"}
    monkeypatch.delenv("SPARK_LOCAL_IP")
    assert bind_environment(wildcard) == {"SPARK_LOCAL_IP": "127.0.0.1"}


def test_the_session_carries_every_session_conf_key(spark):
    from marketlab.spark import SESSION_CONF

    conf = spark.sparkContext.getConf()
    assert {k: conf.get(k) for k in SESSION_CONF} == SESSION_CONF
    assert SESSION_CONF["spark.python.authenticate.socketTimeout"] == "300s"


def test_a_collect_is_served_on_an_owner_only_socket_file_not_a_tcp_port(spark):
    """On TCP, whoever connects first to the one-shot collect port takes the connection, and
    the collect fails (CI did, twice: CANNOT_OPEN_SOCKET); a socket file has no port to take."""
    from pyspark.serializers import BatchedSerializer, CPickleSerializer
    from pyspark.util import _load_from_socket

    info = spark.range(3)._jdf.collectToPython()
    conn = info[0]
    assert isinstance(conn, str), f"collect served on TCP port {conn}"
    mode = os.stat(conn).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) & 0o077 == 0, oct(mode)
    with _load_from_socket(info, BatchedSerializer(CPickleSerializer())) as rows:
        assert [r.id for r in rows] == [0, 1, 2]
    deadline = time.monotonic() + 30  # one connection, then the server thread removes the file
    while os.path.exists(conn) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(conn)


# Tasks that end before their Python worker has written everything: first() and limit over a
# UDF and over mapInPandas (on Unix domain sockets PySpark's own daemon printed a
# BrokenPipeError traceback for most of them); then the worker daemons in use.
_EARLY_STOP = """
import json, sys
import psutil
from pyspark.sql import functions as F
from marketlab.config import load_settings
from marketlab.spark import get_spark
spark = get_spark(load_settings(sys.argv[2], [f"lake_root={sys.argv[1]}/lake"]))
df = spark.range(2_000_000, numPartitions=2).select(F.udf(lambda x: str(x) * 3, "string")("id").alias("s"))
got = [df.first().s, df.limit(5).count(), len(df.take(3))]
got.append(spark.range(2_000_000, numPartitions=2).mapInPandas(lambda it: (p for p in it), "id long").first().id)
daemons = sorted({" ".join(p.cmdline()[1:3]) for p in psutil.Process().children(recursive=True)
                  if p.name().startswith("python") and "daemon" in " ".join(p.cmdline())})
print(json.dumps({"got": got, "daemons": daemons}))
"""


def test_a_task_that_stops_early_prints_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    proc = subprocess.run([sys.executable, "-c", _EARLY_STOP, str(tmp_path), str(ROOT / "conf" / "test.yaml")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["got"] == ["000", 5, 3, 0]
    assert out["daemons"] == ["-m marketlab.pyspark_daemon"]
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr[-3000:]
