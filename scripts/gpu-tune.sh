#!/usr/bin/env bash
# Tuning runs on the GPU machine: builds (reusing build-gpu), then runs mlxn_bench with --filter FILTER once per
# setting of MLXN_TUNE_* knobs given as arguments, e.g.
#   scripts/gpu-tune.sh rms_norm "MLXN_TUNE_RMS_TPR=64" "MLXN_TUNE_RMS_TPR=128 MLXN_TUNE_PDL=1"
# and prints one table per setting (logs under $OUT).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/mlxn-gpu-tune}"
mkdir -p "$out"
filter=$1
shift
build=build-gpu
if [[ ! -x $build/bench/mlxn_bench ]]; then
  args=(-S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLXN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a
        -DMLXN_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$PWD/.deps")
  cmake "${args[@]}" >"$out/configure.log" 2>&1 && cmake --build "$build" -j"$(nproc)" --target mlxn_bench \
    >"$out/build.log" 2>&1 || { grep -E "error" -A4 "$out/build.log" | head -40; exit 1; }
fi
i=0
for setting in "$@"; do
  echo "== $setting"
  env $setting "$build/bench/mlxn_bench" --device cuda --quick --filter "$filter" | grep -v "^op \|^mlxn_bench" \
    | tee -a "$out/tune.txt"
  i=$((i + 1))
done
