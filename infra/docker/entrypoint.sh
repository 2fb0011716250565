#!/usr/bin/env bash
# Container entrypoint of the marketlab image, following Spark-on-Kubernetes' contract:
#   driver ARGS...    spark-submit in client mode inside the driver pod (Spark Operator / k8s://)
#   executor          a KubernetesExecutorBackend configured by the SPARK_* env of the pod
#   anything else     run as given (marketlab ..., spark-submit ..., bash)
set -euo pipefail

# Spark needs a passwd entry for the running uid (OpenShift-style random uids).
if ! getent passwd "$(id -u)" >/dev/null 2>&1 && [ -w /etc/passwd ]; then
    echo "$(id -u):x:$(id -u):$(id -g):spark:${MARKETLAB_HOME:-/opt/marketlab}:/bin/false" >> /etc/passwd
fi

classpath="${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}${SPARK_HOME}/jars/*"
[ -n "${SPARK_EXTRA_CLASSPATH:-}" ] && classpath="$classpath:$SPARK_EXTRA_CLASSPATH"
[ -n "${SPARK_CONF_DIR:-}" ] && classpath="$SPARK_CONF_DIR:$classpath"

case "${1:-}" in
    driver)
        shift
        # On Kubernetes, Spark sets SPARK_DRIVER_BIND_ADDRESS to the pod IP (status.podIP) so
        # executors can reach the driver; anywhere else the driver stays on loopback.
        exec /usr/bin/tini -s -- "$SPARK_HOME/bin/spark-submit" \
            --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:-127.0.0.1}" \
            --deploy-mode client "$@"
        ;;
    executor)
        shift
        # The operator passes JVM options as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ...
        mapfile -t java_opts < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')
        exec /usr/bin/tini -s -- "$JAVA_HOME/bin/java" "${java_opts[@]}" \
            -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
            -cp "$classpath${SPARK_DIST_CLASSPATH:+:$SPARK_DIST_CLASSPATH}" \
            org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
            --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
            --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
            --hostname "$SPARK_EXECUTOR_POD_IP" --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
            --podName "${SPARK_EXECUTOR_POD_NAME:-}"
        ;;
    *)
        exec /usr/bin/tini -s -- "$@"
        ;;
esac
