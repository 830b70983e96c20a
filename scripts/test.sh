#!/usr/bin/env bash
# The test command: installs what is missing, builds (CUDA code compiled where nvcc exists), runs every test.
# GPU tests skip with a message where no CUDA device is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
ctest --test-dir "${MLXN_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" -LE model
