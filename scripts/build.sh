#!/usr/bin/env bash
# Configures and builds mlx-native into ${MLXN_BUILD_DIR:-build}. CUDA code is compiled where nvcc exists (for one
# architecture, ${MLXN_CUDA_ARCHS:-90a}, unless a release build is asked for with MLXN_CUDA_ARCHS=release).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${MLXN_BUILD_DIR:-build}"
archs="${MLXN_CUDA_ARCHS:-90a}"
args=(-S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLXN_KERNEL_SET="${MLXN_KERNEL_SET:-ci}")
[[ "$archs" != release ]] && args+=(-DCMAKE_CUDA_ARCHITECTURES="$archs")
[[ -d .deps/googletest ]] && args+=(-DMLXN_GTEST_SOURCE_DIR="$PWD/.deps/googletest")
cmake "${args[@]}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
