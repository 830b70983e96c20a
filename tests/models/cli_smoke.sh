#!/usr/bin/env bash
# The model subcommands of `mlxn` end to end on a tiny random-weight model (label cpu, seconds): bench prints its
# table and roofline line, logits writes [ids, vocab] f32 and greedy ids, generate prints the ids it generated.
#   cli_smoke.sh MLXN
set -euo pipefail
mlxn=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=passive
"$mlxn" synth --arch qwen3 --preset tiny --type Q4_0 -o "$tmp/m.gguf" >/dev/null 2>&1
vocab=512  # the tiny preset's

"$mlxn" bench --model "$tmp/m.gguf" -p 16 -n 4 -r 1 --device cpu --json "$tmp/b.jsonl" >"$tmp/bench.txt" 2>/dev/null
grep -q "| *pp16 |" "$tmp/bench.txt" || { cat "$tmp/bench.txt"; echo "FAIL: no pp16 row"; exit 1; }
grep -q "| *tg4 |" "$tmp/bench.txt" || { cat "$tmp/bench.txt"; echo "FAIL: no tg4 row"; exit 1; }
grep -q "ratio" "$tmp/bench.txt" || { cat "$tmp/bench.txt"; echo "FAIL: no roofline line"; exit 1; }
grep -q '"roofline_ratio"' "$tmp/b.jsonl" || { echo "FAIL: no JSON"; exit 1; }

"$mlxn" logits --model "$tmp/m.gguf" --ids 5,6,7 --out "$tmp/l.f32" --all --greedy 4 --greedy-out "$tmp/g.txt" \
  --device cpu 2>/dev/null
size=$(stat -c %s "$tmp/l.f32")
[[ $size -eq $((3 * vocab * 4)) ]] || { echo "FAIL: logits file has $size bytes, want $((3 * vocab * 4))"; exit 1; }
[[ $(tr ',' '\n' <"$tmp/g.txt" | grep -c .) -eq 4 ]] || { echo "FAIL: greedy ids '$(cat "$tmp/g.txt")'"; exit 1; }

# Greedy generation through `generate` gives the ids `logits --greedy` gave (both: prefill, then the decode graph).
out=$("$mlxn" generate --model "$tmp/m.gguf" --prompt-ids 5,6,7 -n 4 --temp 0 --print-ids --device cpu 2>/dev/null)
ids=$(grep '^ids: ' <<<"$out" | cut -c6-)
[[ "$ids" == "$(cat "$tmp/g.txt")" ]] || { echo "FAIL: generate gave '$ids', logits --greedy '$(cat "$tmp/g.txt")'"; exit 1; }

# synth: a mixture name types tensors per llama.cpp (reported on stderr), --help lists the accepted types, and an
# unknown type is an error listing them.
"$mlxn" synth --arch llama --preset tiny --type Q4_K_M -o "$tmp/mix.gguf" >/dev/null 2>"$tmp/mix.txt" ||
  { cat "$tmp/mix.txt"; echo "FAIL: synth Q4_K_M"; exit 1; }
grep -q "Q4_K_M (llama recipe, file type 15)" "$tmp/mix.txt" || { cat "$tmp/mix.txt"; echo "FAIL: synth summary"; exit 1; }
"$mlxn" synth --help | grep -q "Q5_K_S" || { echo "FAIL: synth --help does not list the mixtures"; exit 1; }
if "$mlxn" synth --arch llama --preset tiny --type Q9_K -o "$tmp/bad.gguf" 2>"$tmp/err.txt"; then
  echo "FAIL: synth accepted --type Q9_K"; exit 1
fi
grep -q "Q4_K_M" "$tmp/err.txt" || { cat "$tmp/err.txt"; echo "FAIL: the error does not list the types"; exit 1; }

# A missing model file is an error that names it, not a crash.
if "$mlxn" bench --model "$tmp/none.gguf" 2>"$tmp/err.txt"; then echo "FAIL: bench of a missing file succeeded"; exit 1; fi
grep -q "none.gguf" "$tmp/err.txt" || { cat "$tmp/err.txt"; echo "FAIL: the error does not name the file"; exit 1; }
echo "cli smoke: ok"
