#!/usr/bin/env python3
"""Hugging Face reference encodings for the tokenizer parity test (TokenizerParity in tests/test_tokenizer.cpp).

  tokenizer_parity.py PATH [-o OUT]

PATH is a tokenizer.json or the Hugging Face folder holding it. Encodes a fixed list of tricky strings (plus a few
built from the vocabulary's own added tokens) without and with special tokens, and writes one line per string:

  <utf-8 bytes in hex> TAB <ids, add_special_tokens=False> TAB <ids, add_special_tokens=True>

With transformers installed and a folder given, AutoTokenizer is used (it applies tokenizer_config.json's
add_bos_token / add_eos_token, as mlxn's from_hf_dir does); otherwise the `tokenizers` package alone. Then:

  MLXN_TOKENIZER_PARITY=OUT MLXN_TOKENIZER_DIR=FOLDER build/tests/mlxn_cpu_tests --gtest_filter='TokenizerParity*'
  MLXN_TOKENIZER_PARITY=OUT MLXN_TOKENIZER_GGUF=model.gguf build/tests/mlxn_cpu_tests --gtest_filter='TokenizerParity*'

Nothing is downloaded: PATH must be local.
"""
import argparse
import os
import sys

STRINGS = [
    "Hello world",
    "hello world",
    " Hello world",
    "  hello",
    "   leading and trailing   ",
    "I'm here, you're there, we've been, they'll go, he'd say, it's fine, don't",
    "I'M SHOUTING, YOU'RE TOO, DON'T",
    "123456",
    "1234567 and 3.14159 and 2024-05-01 and 1,000,000",
    "\n",
    "\n\n",
    "line one\nline two\n\nline four\r\nwindows",
    "tabs\tand\t\tmore\ttabs",
    "  \n  \n",
    "x \n\n y",
    "Hello!!\n\nWorld??",
    "def f(x):\n    return x * 2  # comment\n",
    "<html><body class=\"a\">text</body></html>",
    "naïve café résumé",
    "cafe\u0301 (combining acute)",
    "中文字符测试，你好世界。",
    "日本語のテキストです。",
    "한국어 텍스트",
    "مرحبا بالعالم",
    "Привет, мир!",
    "Emoji: 😀 👍🏽 👨‍👩‍👧 🇺🇸 ❤️",
    "ſtraße 's",
    "Ⅳ ½ ٣ ① superscript²",
    "\u00a0non-breaking\u2009thin\u3000ideographic",
    "mixed中文and English123数字",
    "a" * 300,
    " ".join(["word"] * 50),
    "",
]


def load(path):
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    if os.path.isdir(path):
        try:
            from transformers import AutoTokenizer  # noqa: PLC0415
            tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            added = [t for t in tok.get_vocab().keys() if t in tok.all_special_tokens][:4]
            return "transformers", lambda s, sp: tok.encode(s, add_special_tokens=sp), added
        except ImportError:
            pass
    from tokenizers import Tokenizer  # noqa: PLC0415
    file = os.path.join(folder, "tokenizer.json") if os.path.isdir(path) else path
    tok = Tokenizer.from_file(file)
    added = [t.content for t in tok.get_added_tokens_decoder().values() if t.special][:4]
    return "tokenizers", lambda s, sp: tok.encode(s, add_special_tokens=sp).ids, added


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("-o", "--out", default="-")
    args = ap.parse_args()
    how, encode, added = load(args.path)
    strings = list(STRINGS)
    for t in added:  # special tokens inside text, at the start, and glued to words
        strings += [t + "Hello", "Hello " + t + " world", "a" + t + t + "b"]
    out = sys.stdout if args.out == "-" else open(args.out, "w")
    out.write("# tokenizer_parity v1 %s via %s\n" % (args.path, how))
    for s in strings:
        plain = encode(s, False)
        special = encode(s, True)
        out.write("%s\t%s\t%s\n" % (s.encode("utf-8").hex(), " ".join(map(str, plain)), " ".join(map(str, special))))
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
