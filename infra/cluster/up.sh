#!/usr/bin/env bash
# Start a loopback Spark standalone cluster (1 master + N workers) and an MLflow tracking
# server, every one on 127.0.0.1, each in its own process group with a pid file and a log
# under $MARKETLAB_CLUSTER_ROOT. Waits until the master lists N ALIVE workers and MLflow
# answers. Stop everything with infra/cluster/down.sh. Re-running while it is up is a no-op.
# Spark runs with shared-secret authentication and UI ACLs and without the REST submission
# server; MLflow runs its basic-auth app. The secrets are files under $ROOT/secrets (0600),
# made on the first start and reused (python -m marketlab.cluster secrets; docs/CLUSTER.md).
#
# Environment (defaults in brackets):
#   MARKETLAB_CLUSTER_ROOT      [/tmp/marketlab-cluster]  pids/, logs/, work/, lake/, mlflow.db, mlartifacts/
#   MARKETLAB_PYTHON            [<repo>/.venv/bin/python] Python with pyspark + mlflow
#   MARKETLAB_MASTER_PORT       [7077]   master RPC port (spark://127.0.0.1:PORT)
#   MARKETLAB_MASTER_UI_PORT    [8080]   master web UI (+ /json/)
#   MARKETLAB_MASTER_REST_PORT  [6066]   master REST submission server's port (the server is off)
#   MARKETLAB_WORKER_UI_PORT    [8081]   first worker's web UI; worker i gets PORT+i-1 (0: random ports)
#   MARKETLAB_WORKERS           [2]      number of workers
#   MARKETLAB_WORKER_CORES      [1]      cores per worker
#   MARKETLAB_WORKER_MEMORY     [2g]     memory per worker (for its executors)
#   MARKETLAB_MLFLOW_PORT       [5001]   MLflow server port (0: no MLflow server)
#   MARKETLAB_START_TIMEOUT     [180]    seconds to wait for workers / MLflow
#   MARKETLAB_MLFLOW_ADMIN_USER, MARKETLAB_MLFLOW_ADMIN_PASSWORD  MLflow admin (default: generated)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
ROOT="${MARKETLAB_CLUSTER_ROOT:-/tmp/marketlab-cluster}"
PY="${MARKETLAB_PYTHON:-$repo/.venv/bin/python}"
MASTER_PORT="${MARKETLAB_MASTER_PORT:-7077}"
MASTER_UI_PORT="${MARKETLAB_MASTER_UI_PORT:-8080}"
MASTER_REST_PORT="${MARKETLAB_MASTER_REST_PORT:-6066}"
WORKER_UI_PORT="${MARKETLAB_WORKER_UI_PORT:-8081}"
WORKERS="${MARKETLAB_WORKERS:-2}"
WORKER_CORES="${MARKETLAB_WORKER_CORES:-1}"
WORKER_MEMORY="${MARKETLAB_WORKER_MEMORY:-2g}"
MLFLOW_PORT="${MARKETLAB_MLFLOW_PORT:-5001}"
TIMEOUT="${MARKETLAB_START_TIMEOUT:-180}"
HOST=127.0.0.1

export SPARK_LOCAL_IP=$HOST SPARK_PUBLIC_DNS=$HOST
export SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-512m}"
export SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
export PYTHONUNBUFFERED=1
# spark-class prints the launch command when this is set; never wanted here.
unset SPARK_PRINT_LAUNCH_COMMAND || true

mkdir -p "$ROOT"/{pids,logs,work,local,conf,lake,mlartifacts}
ROOT="$(cd "$ROOT" && pwd)"
export SPARK_LOCAL_DIRS="$ROOT/local" SPARK_WORKER_DIR="$ROOT/work" SPARK_LOG_DIR="$ROOT/logs"
export SPARK_CONF_DIR="$ROOT/conf"
"$PY" -m marketlab.cluster secrets "$ROOT" >/dev/null
SPARK_AUTH="$ROOT/secrets/spark-auth.conf"
# The daemons' file holds the secret too: 0600 from the start (umask), rewritten each time.
(
umask 077
rm -f "$ROOT/conf/spark-defaults.conf"
cat > "$ROOT/conf/spark-defaults.conf" <<CONF
# written by infra/cluster/up.sh for the daemons of $ROOT
spark.deploy.retainedApplications   500
# The REST server would run any code submitted to it without the secret.
spark.master.rest.enabled           false
spark.master.rest.port              $MASTER_REST_PORT
# With ACLs but no UI filter the UI knows no user, so a kill link would work for anyone.
spark.ui.killEnabled                false
spark.worker.cleanup.enabled        false
spark.log.structuredLogging.enabled false
CONF
grep -v '^#' "$SPARK_AUTH" >> "$ROOT/conf/spark-defaults.conf"
)
cp "$repo/conf/log4j2.properties" "$ROOT/conf/log4j2.properties" 2>/dev/null || true

running() {  # pid file -> 0 if its process is alive and belongs to this root
    local f="$ROOT/pids/$1.pid" pid
    [[ -f $f ]] || return 1
    pid="$(cat "$f")"
    [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$ROOT"
}

port_free() {
    [[ "$1" == 0 ]] && return 0
    if "$PY" -m marketlab.cluster port-in-use "$1"; then
        echo "up.sh: port $HOST:$1 is already in use (set MARKETLAB_*_PORT)" >&2
        return 1
    fi
}

start() {  # name, command... : own session/process group, pid = pgid
    local name=$1; shift
    if running "$name"; then
        echo "  $name already running (pid $(cat "$ROOT/pids/$name.pid"))"
        return 0
    fi
    setsid "$@" > "$ROOT/logs/$name.log" 2>&1 < /dev/null &
    echo $! > "$ROOT/pids/$name.pid"
    echo "  $name started (pid $!, log $ROOT/logs/$name.log)"
}

CLASS="$SPARK_HOME/bin/spark-class"
echo "marketlab cluster in $ROOT"
running master || port_free "$MASTER_PORT"
running master || port_free "$MASTER_UI_PORT"
start master "$CLASS" org.apache.spark.deploy.master.Master \
    --host $HOST --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT" --properties-file "$ROOT/conf/spark-defaults.conf"
"$PY" -m marketlab.cluster wait-http "http://$HOST:$MASTER_UI_PORT/json/" --timeout "$TIMEOUT" >/dev/null \
    || { echo "up.sh: master did not come up; tail of its log:" >&2; tail -n 30 "$ROOT/logs/master.log" >&2; exit 1; }

for i in $(seq 1 "$WORKERS"); do
    port=$(( WORKER_UI_PORT == 0 ? 0 : WORKER_UI_PORT + i - 1 ))
    running "worker-$i" || port_free "$port"
    mkdir -p "$ROOT/work/worker-$i"
    start "worker-$i" "$CLASS" org.apache.spark.deploy.worker.Worker \
        --host $HOST --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" --webui-port "$port" \
        --work-dir "$ROOT/work/worker-$i" --properties-file "$ROOT/conf/spark-defaults.conf" \
        "spark://$HOST:$MASTER_PORT"
done

if [[ "$MLFLOW_PORT" != 0 ]]; then
    running mlflow || port_free "$MLFLOW_PORT"
    (   # secrets in the server's environment only, never on a command line
        export MLFLOW_AUTH_CONFIG_PATH="$ROOT/secrets/mlflow-auth.ini"
        MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$ROOT/secrets/mlflow-flask.key")"
        export MLFLOW_FLASK_SERVER_SECRET_KEY
        if [[ -n "${MARKETLAB_MLFLOW_ADMIN_USER:-}" && -n "${MARKETLAB_MLFLOW_ADMIN_PASSWORD:-}" ]]; then
            export MLFLOW_AUTH_ADMIN_USERNAME="$MARKETLAB_MLFLOW_ADMIN_USER" MLFLOW_AUTH_ADMIN_PASSWORD="$MARKETLAB_MLFLOW_ADMIN_PASSWORD"
        fi
        start mlflow "$PY" -m mlflow server --app-name basic-auth --host $HOST --port "$MLFLOW_PORT" --workers 1 \
            --backend-store-uri "sqlite:///$ROOT/mlflow.db" --default-artifact-root "file://$ROOT/mlartifacts"
    )
fi

"$PY" -m marketlab.cluster wait-workers "http://$HOST:$MASTER_UI_PORT" "$WORKERS" --timeout "$TIMEOUT" \
    || { echo "up.sh: workers did not register; see $ROOT/logs/worker-*.log" >&2; tail -n 30 "$ROOT/logs/worker-1.log" >&2; exit 1; }
if [[ "$MLFLOW_PORT" != 0 ]]; then
    "$PY" -m marketlab.cluster wait-http "http://$HOST:$MLFLOW_PORT/health" --timeout "$TIMEOUT" >/dev/null \
        || { echo "up.sh: MLflow server did not answer; tail of its log:" >&2; tail -n 30 "$ROOT/logs/mlflow.log" >&2; exit 1; }
fi

cat > "$ROOT/cluster.env" <<ENV
SPARK_MASTER=spark://$HOST:$MASTER_PORT
SPARK_MASTER_UI=http://$HOST:$MASTER_UI_PORT
MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT
MARKETLAB_CLUSTER_ROOT=$ROOT
ENV
echo "up: master spark://$HOST:$MASTER_PORT (UI http://$HOST:$MASTER_UI_PORT), $WORKERS workers x $WORKER_CORES core(s)/$WORKER_MEMORY" \
     "$([[ $MLFLOW_PORT != 0 ]] && echo ", MLflow http://$HOST:$MLFLOW_PORT")"
