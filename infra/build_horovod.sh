#!/usr/bin/env bash
# Build Horovod 0.28.1 (its last release) against the TensorFlow in the venv, CPU ops over
# gloo, no MPI/PyTorch/MXNet. The wheel is cached per user ($MARKETLAB_WHEEL_CACHE, default
# ~/.cache/marketlab/wheels, like pip's own wheel cache), so a rebuilt venv or a fresh clone
# does not recompile (~2-5 min). Installed without the [spark] extra: that pins pyarrow < 11,
# which PySpark 4 rejects; horovod.spark only needs pyspark + cloudpickle + psutil.
set -euo pipefail
py="${1:-.venv/bin/python}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${MARKETLAB_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/marketlab/wheels}"
# An older checkout kept the wheel inside the project: reuse it.
old="$root/.cache/wheels"
mkdir -p "$cache"
tfv=$("$py" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null)
if ! ls "$cache"/horovod-0.28.1-*.whl >/dev/null 2>&1 && ls "$old"/horovod-0.28.1-*.whl >/dev/null 2>&1; then
  cp "$old"/horovod-0.28.1-*.whl "$old/horovod-0.28.1.tf-version" "$cache/" 2>/dev/null || true
fi
whl=$(ls "$cache"/horovod-0.28.1-*.whl 2>/dev/null | head -1 || true)
if [ -z "$whl" ]; then
  command -v cmake >/dev/null || "$py" -m pip install -q cmake
  echo "building horovod 0.28.1 against tensorflow $tfv (one-off, ~5 min) ..." >&2
  tmp=$(mktemp -d)
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
  HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=GLOO \
  MAKEFLAGS="-j$(nproc)" \
    "$py" -m pip wheel -q --no-deps --no-build-isolation --no-binary horovod horovod==0.28.1 -w "$tmp"
  mv "$tmp"/horovod-0.28.1-*.whl "$cache/" && rm -rf "$tmp"
  echo "$tfv" > "$cache/horovod-0.28.1.tf-version"
fi
if [ "$(cat "$cache/horovod-0.28.1.tf-version" 2>/dev/null)" != "$tfv" ]; then
  echo "cached horovod wheel was built for another TensorFlow; rebuilding" >&2
  rm -f "$cache"/horovod-0.28.1-*.whl "$cache/horovod-0.28.1.tf-version"
  exec bash "$0" "$py"
fi
"$py" -m pip install -q --no-deps --force-reinstall "$(ls "$cache"/horovod-0.28.1-*.whl | head -1)"
"$py" -c 'import horovod.tensorflow as hvd; assert hvd.gloo_built(), "horovod built without gloo"'
