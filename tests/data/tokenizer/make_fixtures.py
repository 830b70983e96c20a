#!/usr/bin/env python3
"""Writes the tiny Hugging Face tokenizer folders the tokenizer tests load (tests/test_tokenizer.cpp):
  tiny_llama3/  Split(Llama 3 regex) + ByteLevel, ignore_merges, merges as [a, b] pairs, BOS by TemplateProcessing,
                eos from tokenizer_config.json, end ids from generation_config.json, a Llama 3 chat template.
  tiny_qwen2/   Split(Qwen2 regex) + ByteLevel, NFC normalizer, merges as "a b" strings, no BOS, ChatML template
                with Qwen2.5's default system prompt.
Both share one vocabulary: GPT-2's 256 byte characters (ids 0..255, in byte order, so a byte's id is its value),
then the merged tokens below. Re-run after changing it; the tests spell out the ids they expect."""
import json
import os


def byte_alphabet():
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in printable:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return [out[b] for b in range(256)]


MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"),
          ("Ġwor", "ld"), ("e", "l"), ("1", "2"), ("12", "3"), ("4", "5")]
EXTRA = ["he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "el", "12", "123", "45", "abc"]

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def added(i, content, special):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


def vocab():
    toks = byte_alphabet() + EXTRA
    return {t: i for i, t in enumerate(toks)}


def write(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name, obj in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            json.dump(obj, fh, ensure_ascii=False, indent=1)
            fh.write("\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    base = len(byte_alphabet()) + len(EXTRA)  # 270
    llama_added = [added(base + 0, "<|begin_of_text|>", True), added(base + 1, "<|eot_id|>", True),
                   added(base + 2, "<think>", False), added(base + 3, "<|start_header_id|>", True),
                   added(base + 4, "<|end_header_id|>", True), added(base + 5, "<|end_of_text|>", True)]
    write(os.path.join(here, "tiny_llama3"), {
        "tokenizer.json": {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": llama_added, "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            "post_processor": {"type": "Sequence", "processors": [
                {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                {"type": "TemplateProcessing",
                 "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                            {"Sequence": {"id": "A", "type_id": 0}}],
                 "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                          {"Sequence": {"id": "A", "type_id": 0}},
                          {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                          {"Sequence": {"id": "B", "type_id": 1}}],
                 "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [base],
                                                          "tokens": ["<|begin_of_text|>"]}}}]},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                      "vocab": vocab(), "merges": [list(m) for m in MERGES]},
        },
        "tokenizer_config.json": {
            "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
            "chat_template": "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
                             "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"},
        "generation_config.json": {"bos_token_id": base, "eos_token_id": [base + 5, base + 1]},
        "config.json": {"model_type": "llama"},
    })
    qwen_added = [added(base + 0, "<|endoftext|>", True), added(base + 1, "<|im_start|>", True),
                  added(base + 2, "<|im_end|>", True), added(base + 3, "<think>", False)]
    write(os.path.join(here, "tiny_qwen2"), {
        "tokenizer.json": {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": qwen_added,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                               "use_regex": False},
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab(), "merges": [" ".join(m) for m in MERGES]},
        },
        "tokenizer_config.json": {
            "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "add_bos_token": False,
            "chat_template": "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are Qwen, "
                             "created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
                             "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + "
                             "message.content + '<|im_end|>' + '\\n' }}{%- endfor %}"},
        "config.json": {"model_type": "qwen2"},
    })


if __name__ == "__main__":
    main()
