#!/usr/bin/env bash
# The per-op benchmarks (formerly the main job): builds, then runs mlxn_bench on the best device here (CUDA if
# present, else the CPU). Arguments are passed to mlxn_bench (--filter, --quick, --json FILE, --device).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
exec "${MLXN_BUILD_DIR:-build}/bench/mlxn_bench" "$@"
