#!/usr/bin/env python3
"""Independent reference for the default-model test (DefaultModel.* in tests/models/test_default_model.cpp).

  gemma3_greedy.py MODEL.gguf [--prompt TEXT] [-n 16]

Loads the GGUF with Hugging Face transformers (AutoModelForCausalLM.from_pretrained(dir, gguf_file=...), which
dequantizes every tensor to float32 with the `gguf` package and runs the PyTorch Gemma 3 implementation), tokenizes
the prompt with transformers' tokenizer converted from the same GGUF, and greedily generates n tokens. Prints JSON:
the prompt ids, the generated ids, and per step the top-1 / top-2 logits (the margin tells how close a step is to a
tie), plus the package versions. Nothing of mlx-native is used.

How the ids in the test were obtained (CPU, scratch venv): pip install torch transformers gguf sentencepiece
protobuf; python3 tests/models/oracle/gemma3_greedy.py ~/.cache/mlxn-models/gemma3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf
"""
import argparse
import json
import os
import sys

PROMPT = "The capital of France is Paris. The capital of Germany is"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("-n", type=int, default=16)
    a = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    d, f = os.path.split(os.path.abspath(a.gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    ids = tok(a.prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=a.n, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
    gen = out.sequences[0, ids.shape[1]:].tolist()
    steps = []
    for lg in out.logits:
        top = torch.topk(lg[0].float(), 2)
        steps.append({"top1": int(top.indices[0]), "top2": int(top.indices[1]),
                      "margin": float(top.values[0] - top.values[1])})
    print(json.dumps({
        "prompt": a.prompt,
        "prompt_ids": ids[0].tolist(),
        "generated_ids": gen,
        "text": tok.decode(gen),
        "steps": steps,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
