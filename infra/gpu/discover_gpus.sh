#!/usr/bin/env bash
# Spark's GPU resource discovery script (spark.{driver,executor}.resource.gpu.discoveryScript):
# prints the GPUs this executor may use as Spark's ResourceInformation JSON,
#   {"name": "gpu", "addresses": ["0", "1"]}
# The indexes come from nvidia-smi; where CUDA_VISIBLE_DEVICES narrows the devices (a
# Kubernetes device plugin, a shared host), only those are offered. No nvidia-smi, or no
# GPU: an empty list, so an executor that asked for a GPU fails to start with Spark's own
# message rather than with a shell error.
set -euo pipefail
smi="${NVIDIA_SMI:-nvidia-smi}"
ids=()
if command -v "$smi" >/dev/null 2>&1; then
  while IFS= read -r line; do
    line="${line//[[:space:]]/}"
    [[ "$line" =~ ^[0-9]+$ ]] && ids+=("$line")
  done < <("$smi" --query-gpu=index --format=csv,noheader 2>/dev/null || true)
fi
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
  IFS=',' read -r -a visible <<< "${CUDA_VISIBLE_DEVICES// /}"
  keep=()
  for i in "${ids[@]}"; do
    for v in "${visible[@]}"; do [[ "$i" == "$v" ]] && keep+=("$i"); done
  done
  ids=("${keep[@]}")
fi
out=""
for i in "${ids[@]}"; do out+="${out:+,}\"$i\""; done
printf '{"name": "gpu", "addresses": [%s]}\n' "$out"
