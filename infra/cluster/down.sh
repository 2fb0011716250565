#!/usr/bin/env bash
# Stop what infra/cluster/up.sh started under $MARKETLAB_CLUSTER_ROOT (default
# /tmp/marketlab-cluster): TERM to each process group (executors and Python workers are in
# their worker's group), KILL after MARKETLAB_STOP_TIMEOUT seconds (default 20). Only
# processes whose command line names this root are touched. Idempotent: nothing running
# is not an error. The lake, MLflow store and logs stay (rm -rf the root to drop them).
set -uo pipefail

ROOT="${MARKETLAB_CLUSTER_ROOT:-/tmp/marketlab-cluster}"
TIMEOUT="${MARKETLAB_STOP_TIMEOUT:-20}"
[[ -d "$ROOT/pids" ]] || { echo "down: nothing started under $ROOT"; exit 0; }
ROOT="$(cd "$ROOT" && pwd)"

ours() {  # pgid -> 0 if a process of that group is alive and its command line names this root
    local p
    for p in $(pgrep -g "$1" 2>/dev/null); do
        [[ -r /proc/$p/cmdline ]] && tr '\0' ' ' < "/proc/$p/cmdline" | grep -qF "$ROOT" && return 0
    done
    return 1
}

group_alive() { kill -0 -- "-$1" 2>/dev/null; }

stopped=()
# MLflow first, then workers (their executors go with them), the master last.
for f in "$ROOT"/pids/mlflow.pid "$ROOT"/pids/worker-*.pid "$ROOT"/pids/master.pid; do
    [[ -f $f ]] || continue
    name="$(basename "$f" .pid)"
    pid="$(cat "$f")"
    if [[ $pid =~ ^[0-9]+$ ]] && ours "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 $((TIMEOUT * 5))); do
            group_alive "$pid" || break
            sleep 0.2
        done
        if group_alive "$pid"; then
            kill -KILL -- "-$pid" 2>/dev/null
            echo "  $name (pgid $pid) killed"
        else
            echo "  $name (pgid $pid) stopped"
        fi
        stopped+=("$name")
    fi
    rm -f "$f"
done
echo "down: ${#stopped[@]} process group(s) stopped under $ROOT"
