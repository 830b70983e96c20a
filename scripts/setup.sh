#!/usr/bin/env bash
# Installs what building and testing mlx-native needs on a Debian machine (run as root). Idempotent and quick when
# everything is already there. The CUDA 13 toolkit is expected at /usr/local/cuda where a GPU build is wanted.
set -euo pipefail

packages=(cmake ninja-build g++ libgtest-dev nlohmann-json3-dev python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: ok"
