#!/usr/bin/env bash
# A native BLAS/LAPACK (OpenBLAS) for Spark ML. Spark's netlib loads libblas.so.3 and
# liblapack.so.3 when present and falls back to its Java (Vector API) kernels otherwise:
# the same results up to floating-point rounding, but ALS at rank 96 fits in 17-19 s
# instead of 29-32 s here (docs/benchmarks/recommender.md). Optional: never fails the install.
set -uo pipefail
bash "$(dirname "$0")/ensure_apt.sh" ensure_blas "Spark ML uses its slower Java BLAS" \
  "ldconfig -p 2>/dev/null | grep -q 'libblas.so.3 ' && ldconfig -p 2>/dev/null | grep -q 'liblapack.so.3 '" \
  libopenblas0-pthread
