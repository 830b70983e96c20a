#!/usr/bin/env bash
# Copies the header-only / source dependencies the GPU machine lacks (it has no package registry) into .deps/,
# which is git-ignored and travels with the device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
mkdir -p .deps/include
[[ -d .deps/googletest ]] || cp -r /usr/src/googletest .deps/googletest
[[ -d .deps/include/nlohmann ]] || cp -r /usr/include/nlohmann .deps/include/nlohmann
# The package's CMake config finds its headers three levels up: .deps/share/cmake/nlohmann_json -> .deps/include.
mkdir -p .deps/share/cmake
[[ -d .deps/share/cmake/nlohmann_json ]] || cp -r /usr/share/cmake/nlohmann_json .deps/share/cmake/
du -sh .deps
