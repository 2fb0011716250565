#!/usr/bin/env bash
# The GPU install path (issue 23): TensorFlow 2.15 with CUDA 12 from PyPI, and Horovod 0.28.1
# built with NCCL all-reduce for GPU tensors (gloo stays for the CPU ops and rendezvous).
# Run on a GPU machine, after `make install` (which builds the CPU venv):
#
#   bash infra/gpu/install_gpu.sh [.venv/bin/python] [--build-only]
#
# --build-only (an image build, infra/docker/Dockerfile.gpu: no GPU on the build machine)
# skips the driver check and the "TensorFlow sees a GPU" check; NCCL must still be built.
#
# Needs: an NVIDIA driver (nvidia-smi), and a CUDA 12 toolkit with nvcc for Horovod's CUDA
# kernels ($CUDA_HOME, default /usr/local/cuda). NCCL comes from the nvidia-nccl-cu12 wheel
# that tensorflow[and-cuda] installs. The CPU-only `make test` never runs this; no GPU was
# available to the sessions that wrote it, so it is checked by tests/infra only statically
# (docs/SEQUENCE_MODELS.md, "GPU").
set -euo pipefail
py="${1:-.venv/bin/python}"
build_only="${2:-}"
cuda="${CUDA_HOME:-/usr/local/cuda}"
if [ "$build_only" != "--build-only" ]; then
  command -v nvidia-smi >/dev/null || { echo "install_gpu: no nvidia-smi: this machine has no NVIDIA driver" >&2; exit 2; }
fi
[ -x "$cuda/bin/nvcc" ] || { echo "install_gpu: no nvcc under $cuda (set CUDA_HOME to a CUDA 12 toolkit)" >&2; exit 2; }
tfv=$("$py" -c 'import tensorflow as tf; print(tf.__version__)')
# The CPU wheel (tensorflow-cpu) and the CUDA one share the module: swap, same version.
"$py" -m pip uninstall -y -q tensorflow-cpu || true
"$py" -m pip install -q "tensorflow[and-cuda]==$tfv"
nccl=$("$py" -c 'import os, nvidia.nccl as m; print(os.path.dirname(m.__file__ if m.__file__ else list(m.__path__)[0]))')
# The wheel ships libnccl.so.2 only; Horovod's CMake looks for libnccl.so.
[ -e "$nccl/lib/libnccl.so" ] || ln -s libnccl.so.2 "$nccl/lib/libnccl.so"
command -v cmake >/dev/null || "$py" -m pip install -q cmake
echo "building horovod 0.28.1 with NCCL against tensorflow $tfv and $cuda ..." >&2
HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=GLOO \
HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_CUDA_HOME="$cuda" HOROVOD_NCCL_HOME="$nccl" \
MAKEFLAGS="-j$(nproc)" \
  "$py" -m pip install -q --no-deps --no-build-isolation --no-cache-dir --force-reinstall --no-binary horovod horovod==0.28.1
"$py" - "$build_only" <<'PY'
import sys

import horovod.tensorflow as hvd
import tensorflow as tf

assert hvd.nccl_built(), "horovod built without NCCL"
gpus = tf.config.list_physical_devices("GPU")
assert gpus or sys.argv[1] == "--build-only", "tensorflow sees no GPU"
print(f"horovod NCCL ok; tensorflow {tf.__version__} sees {len(gpus)} GPU(s)")
PY
