#!/usr/bin/env bash
# CTest driver of the block-format oracle (label oracle): installs the `gguf` package (ggml's Python implementation)
# and numpy from PyPI into a virtual environment cached under the build directory, then compares the library's
# dequantize / quantize with it (check_quants.py). Fails, never skips, when PyPI cannot be reached.
#   run_oracle.sh BUILD_DIR QUANT_TOOL [check_quants.py options]
set -euo pipefail
build_dir=$1
tool=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
venv="$build_dir/oracle-venv"
# Pinned so a new release cannot change the reference silently; bump deliberately.
requirements=("gguf==0.19.0" "numpy>=1.24,<3")

if ! "$venv/bin/python" -c "import gguf, numpy" >/dev/null 2>&1; then
  echo "oracle: creating $venv and installing ${requirements[*]}"
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    echo "oracle: FAIL: python3 -m venv failed (install python3-venv)" >&2
    exit 1
  fi
  if ! "$venv/bin/pip" install --quiet --disable-pip-version-check --timeout 60 "${requirements[@]}"; then
    echo "oracle: FAIL: could not install ${requirements[*]} from PyPI; the oracle cannot run without them" >&2
    rm -rf "$venv"
    exit 1
  fi
fi
exec "$venv/bin/python" "$here/check_quants.py" "$tool" "$@"
