#!/usr/bin/env bash
# The main job: builds and runs the per-op benchmark on the best device here (CUDA if present, else the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
exec "${MLXN_BUILD_DIR:-build}/bench/mlxn_bench" "$@"
