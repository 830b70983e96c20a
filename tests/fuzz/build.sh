#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 under ASan + UBSan into build-fuzz/ (separate from the normal build).
#   tests/fuzz/build.sh            then
#   build-fuzz/fuzz_gguf build-fuzz/corpus/gguf tests/data/gguf -max_total_time=600
#   build-fuzz/fuzz_safetensors build-fuzz/corpus/safetensors tests/data/safetensors -max_total_time=600
# The first directory collects new inputs; the second seeds it with the checked-in broken files.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${BUILD_FUZZ:-$root/build-fuzz}
cxx=${CXX_FUZZ:-clang++-14}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
cmake -S "$root" -B "$out" -G Ninja -DMLXN_CUDA=OFF -DMLXN_BUILD_TESTS=OFF -DMLXN_BUILD_BENCH=OFF -DMLXN_WERROR=OFF \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$san -fsanitize=fuzzer-no-link" >/dev/null
cmake --build "$out" --target mlxn
for t in gguf safetensors; do
  $cxx -std=c++20 $san -fsanitize=fuzzer -I"$root/include" "$root/tests/fuzz/fuzz_$t.cpp" "$out/libmlxn.a" \
    -o "$out/fuzz_$t"
  mkdir -p "$out/corpus/$t"
done
echo "built $out/fuzz_gguf $out/fuzz_safetensors"
