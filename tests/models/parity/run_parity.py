#!/usr/bin/env python3
"""Parity of mlx-native's models with Hugging Face transformers on small random-weight models (no network).

  run_parity.py --mlxn build/tools/mlxn [--devices cpu,cuda] [--archs llama,qwen2,qwen3,gemma3] [--work DIR]
                [--quick]

For each architecture a tiny model is built from a transformers config (hidden 256, 4 layers, vocab 1000; Gemma 3
with 6 layers, one of them global, and a sliding window of 16 keys, shorter than the prompts), given random weights
(norm weights included, so that a missed norm or offset shows), and saved as a safetensors folder in f32 and in
bf16. Then, on the same token ids:
  - transformers (eager attention) gives the logits of every position and a 32-token greedy continuation
    (recomputed from scratch each step: no cache, no stop token);
  - `mlxn logits --all` gives ours for every position (one token at a time through the decode path), and
    `mlxn logits --greedy 32` the greedy continuation (captured decode graph, argmax on the device);
  - the f32 weights are also written as a GGUF F32 file the way llama.cpp's converter does (tensor names, q / k row
    permutation for llama, Gemma's 1 + w norms) with the `gguf` package, or with a small writer of this script
    where that package is missing, and run again.
Checks (per row of the table; error = max |ours - ref| / max |ref| over all positions):
  - f32 activations (the CPU backend): error <= 1e-3 and the 32 greedy tokens equal (the KV cache is f16 even
    then, since kv_cache_write takes f16 / bf16 / fp8 only: that rounding is most of the ~2e-4 seen);
  - f16 / bf16 activations (CUDA runs f16 or bf16, the CPU bf16 rows): error <= 2e-2 and top-1 agreement >= 99%
    over the positions (greedy tokens reported, not required: one near-tie changes all later ones); the bf16
    checkpoint is compared with transformers' f32 forward on the same bf16 weights (its bf16 forward, which rounds
    the residual stream to bf16, is printed beside for information). A random model has many near-tied top-1s, so
    where transformers' own bf16 forward agrees with its f32 one on fewer than 99% of the positions, matching that
    agreement passes too (without --quick);
  - CUDA against the CPU backend with the same activation dtype (where both devices run): error <= 2e-2, top-1
    >= 99%.
Prints a table; exits 1 if a check fails, 2 if something could not run.
"""
import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

VOCAB = 1000
PROMPT_LEN = 48  # > the Gemma 3 sliding window (16)
N_PROMPTS = 4
N_GREEDY = 32


# RoPE bases differ from each architecture's default, so that a loader ignoring the saved one fails. Gemma 3's local
# base stays 10000: GGUF has no key for it (llama.cpp hard-codes 10000).
def make_config(arch):
    import transformers as tf
    common = dict(vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=1, eos_token_id=2,
                  pad_token_id=0, attn_implementation="eager")
    if arch == "llama":
        return tf.LlamaConfig(num_hidden_layers=4, rms_norm_eps=1e-5, rope_theta=50000.0, tie_word_embeddings=False,
                              **common)
    if arch == "qwen2":
        return tf.Qwen2Config(num_hidden_layers=4, rms_norm_eps=1e-6, rope_theta=300000.0,
                              tie_word_embeddings=False, use_sliding_window=False, **common)
    if arch == "qwen3":
        return tf.Qwen3Config(num_hidden_layers=4, head_dim=64, rms_norm_eps=1e-6, rope_theta=300000.0,
                              tie_word_embeddings=False, use_sliding_window=False, **common)
    if arch == "gemma3":
        c = dict(common, num_key_value_heads=1)
        return tf.Gemma3TextConfig(num_hidden_layers=6, head_dim=64, query_pre_attn_scalar=64, sliding_window=16,
                                   rms_norm_eps=1e-6, rope_theta=200000.0, rope_local_base_freq=10000.0,
                                   tie_word_embeddings=True, final_logit_softcapping=None,
                                   attn_logit_softcapping=None, **c)
    raise ValueError(arch)


def make_model(arch, seed):
    import torch
    import transformers as tf
    torch.manual_seed(seed)
    cfg = make_config(arch)
    cls = tf.Gemma3ForCausalLM if arch == "gemma3" else tf.AutoModelForCausalLM
    model = cls.from_config(cfg, torch_dtype=torch.float32) if arch != "gemma3" else cls(cfg)
    model = model.float().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and "norm" in name:
                # Gemma stores w and multiplies by 1 + w; the others multiply by w.
                base = 0.0 if arch == "gemma3" else 1.0
                p.copy_(base + 0.2 * (torch.rand(p.shape, generator=g) - 0.5))
            elif p.dim() == 1:  # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[1]
                std = 1.0 if "embed" in name else fan_in ** -0.5
                p.copy_(std * torch.randn(p.shape, generator=g))
    return model


def hf_logits(model, ids):
    import torch
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def hf_greedy(model, ids, n):
    import torch
    seq = list(ids)
    out = []
    with torch.no_grad():
        for _ in range(n):
            t = int(model(torch.tensor([seq])).logits[0, -1].float().argmax())
            out.append(t)
            seq.append(t)
    return out


# ---- GGUF F32, as llama.cpp's converter writes it ------------------------------------------------------------------

def permute_rope_rows(w, heads):
    """llama.cpp's converter reorders the rows of q / k per head so that ggml's interleaved RoPE pairs (2i, 2i+1)
    act on what rotate_half pairs (i, i + d/2) in the checkpoint."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf, arch):
    hf = hf.removeprefix("model.")
    fixed = {"embed_tokens.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    parts = hf.split(".")  # layers.N.module.proj.weight
    assert parts[0] == "layers", hf
    i, rest = parts[1], ".".join(parts[2:])
    m = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
         "input_layernorm": "attn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "pre_feedforward_layernorm": "ffn_norm",
         "post_feedforward_layernorm": "post_ffw_norm"}
    m["post_attention_layernorm"] = "post_attention_norm" if arch == "gemma3" else "ffn_norm"
    mod, kind = rest.rsplit(".", 1)
    return f"blk.{i}.{m[mod]}.{kind}"


def rope_theta(cfg):
    """The global RoPE base: rope_theta up to transformers 4, rope_parameters from 5 on (Gemma 3: per layer type)."""
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict):
        rp = rp.get("full_attention", rp)
        if "rope_theta" in rp:
            return float(rp["rope_theta"])
    return float(cfg.rope_theta)


class MiniGgufWriter:
    """GGUF v3 with u32 / f32 / string metadata and f32 tensors only, for machines without the `gguf` package. (Not
    `mlxn quantize --type F32`: the parity check should not depend on our own converter.)"""

    def __init__(self, path, arch):
        self.path, self.kv, self.tensors = path, [], []
        self.s("general.architecture", arch)
        self.arch = arch

    def s(self, key, v):
        self.kv.append((key, 8, v))

    def u32(self, key, v):
        self.kv.append((key, 4, int(v)))

    def f32(self, key, v):
        self.kv.append((key, 6, float(v)))

    def __getattr__(self, name):  # the GGUFWriter.add_* calls write_gguf makes
        keys = {"add_name": ("general.name", "s"), "add_block_count": ("{a}.block_count", "u32"),
                "add_context_length": ("{a}.context_length", "u32"),
                "add_embedding_length": ("{a}.embedding_length", "u32"),
                "add_feed_forward_length": ("{a}.feed_forward_length", "u32"),
                "add_head_count": ("{a}.attention.head_count", "u32"),
                "add_head_count_kv": ("{a}.attention.head_count_kv", "u32"),
                "add_key_length": ("{a}.attention.key_length", "u32"),
                "add_value_length": ("{a}.attention.value_length", "u32"),
                "add_rope_dimension_count": ("{a}.rope.dimension_count", "u32"),
                "add_rope_freq_base": ("{a}.rope.freq_base", "f32"),
                "add_layer_norm_rms_eps": ("{a}.attention.layer_norm_rms_epsilon", "f32"),
                "add_vocab_size": ("{a}.vocab_size", "u32"),
                "add_sliding_window": ("{a}.attention.sliding_window", "u32")}
        if name not in keys:
            raise AttributeError(name)
        key, kind = keys[name]
        return lambda v: getattr(self, kind)(key.format(a=self.arch), v)

    def add_tensor(self, name, a):
        self.tensors.append((name, np.ascontiguousarray(a, dtype=np.float32)))

    def write(self):
        import struct

        def string(b):
            b = b.encode()
            return struct.pack("<Q", len(b)) + b
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for key, t, v in self.kv:
            out += string(key) + struct.pack("<I", t)
            out += string(v) if t == 8 else struct.pack("<I" if t == 4 else "<f", v)
        offset = 0
        for name, a in self.tensors:
            out += string(name) + struct.pack("<I", a.ndim) + struct.pack(f"<{a.ndim}Q", *reversed(a.shape))
            out += struct.pack("<IQ", 0, offset)  # type F32, offset in the data section
            offset += (a.nbytes + 31) // 32 * 32
        out += b"\0" * (-len(out) % 32)
        with open(self.path, "wb") as f:
            f.write(out)
            for _, a in self.tensors:
                f.write(a.tobytes())
                f.write(b"\0" * (-a.nbytes % 32))


def write_gguf(model, arch, path, use_package=True):
    cfg = model.config
    if use_package:
        import gguf
        w = gguf.GGUFWriter(path, arch)
    else:
        w = MiniGgufWriter(path, arch)
    w.add_name(f"parity-{arch}")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(rope_theta(cfg))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    if arch == "gemma3":
        w.add_sliding_window(cfg.sliding_window)
    tied = getattr(cfg, "tie_word_embeddings", False)
    for name, t in model.state_dict().items():
        if tied and name == "lm_head.weight":
            continue
        a = t.float().numpy().copy()
        if arch == "llama" and name.endswith("self_attn.q_proj.weight"):
            a = permute_rope_rows(a, cfg.num_attention_heads)
        if arch == "llama" and name.endswith("self_attn.k_proj.weight"):
            a = permute_rope_rows(a, cfg.num_key_value_heads)
        if arch == "gemma3" and name.endswith("norm.weight"):
            a = a + 1.0  # llama.cpp stores Gemma's 1 + w
        w.add_tensor(gguf_name(name, arch), np.ascontiguousarray(a, dtype=np.float32))
    if use_package:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    else:
        w.write()


# ---- running mlxn ---------------------------------------------------------------------------------------------------

def run_mlxn(mlxn, model_path, ids, device, dtype, work, tag, greedy):
    out = os.path.join(work, f"{tag}.f32")
    gout = os.path.join(work, f"{tag}.greedy")
    cmd = [mlxn, "logits", "--model", model_path, "--ids", ",".join(map(str, ids)), "--out", out, "--device", device,
           "--all"]
    if dtype:
        cmd += ["--dtype", dtype]
    if greedy:
        cmd += ["--greedy", str(greedy), "--greedy-out", gout]
    # Passive OpenMP waits: spinning workers of the CPU backend starve each other on a shared machine.
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "passive"))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {r.stderr.strip()[-600:]}")
    logits = np.fromfile(out, dtype=np.float32).reshape(len(ids), -1)
    g = [int(x) for x in open(gout).read().strip().split(",")] if greedy else None
    return logits, g


def compare(ours, ref):
    err = float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))
    top1 = float((ours.argmax(-1) == ref.argmax(-1)).mean())
    return err, top1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlxn", required=True, help="path to the mlxn binary")
    ap.add_argument("--devices", default="cpu")
    ap.add_argument("--archs", default="llama,qwen2,qwen3,gemma3")
    ap.add_argument("--work", default=None, help="folder for the models (default: a temporary one, removed)")
    ap.add_argument("--quick", action="store_true", help="one prompt per model, no bf16 rows")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--own-gguf-writer", action="store_true", help="write the GGUF without the gguf package")
    a = ap.parse_args()

    import torch
    import transformers
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        import gguf  # noqa: F401
        gguf_writer = "gguf package"
    except ImportError:
        gguf_writer = "the script's own writer"
    work = a.work or tempfile.mkdtemp(prefix="mlxn_parity_")
    os.makedirs(work, exist_ok=True)
    devices = [d for d in a.devices.split(",") if d]
    n_prompts = 1 if a.quick else N_PROMPTS
    if a.own_gguf_writer:
        gguf_writer = "the script's own writer"
    print(f"transformers {transformers.__version__}, torch {torch.__version__}; GGUF written by {gguf_writer}; "
          f"work folder {work}", flush=True)

    rows = []  # (arch, source, device, act, err, top1, greedy, limit, ok)
    failed = broken = False
    rng = np.random.default_rng(a.seed)
    for arch in a.archs.split(","):
        t0 = time.time()
        try:
            model = make_model(arch, a.seed)
            d32 = os.path.join(work, f"{arch}-f32")
            model.save_pretrained(d32, safe_serialization=True)
            sources = [("safetensors f32", d32, torch.float32)]
            g32 = os.path.join(work, f"{arch}-f32.gguf")
            write_gguf(model, arch, g32, use_package=gguf_writer == "gguf package" and not a.own_gguf_writer)
            sources.append(("gguf f32", g32, torch.float32))
            m16 = None
            yardstick = None  # top-1 agreement of transformers' own bf16 forward with its f32 one
            if not a.quick:
                m16 = make_model(arch, a.seed).to(torch.bfloat16)
                d16 = os.path.join(work, f"{arch}-bf16")
                m16.save_pretrained(d16, safe_serialization=True)
                sources.append(("safetensors bf16", d16, torch.bfloat16))
            prompts = [rng.integers(3, VOCAB, PROMPT_LEN).tolist() for _ in range(n_prompts)]
            ref = {torch.float32: [hf_logits(model, p) for p in prompts]}
            ref_greedy = hf_greedy(model, prompts[0], N_GREEDY)
            if m16 is not None:
                # The bf16 checkpoint's reference is transformers computing in f32 on those bf16 weights: its bf16
                # forward rounds the residual stream to bf16 after every layer (ours stays f32), and that rounding
                # alone flips near-tied top-1s of a random model. Its bf16 run is printed for information.
                m16_f32 = copy.deepcopy(m16).float()  # .float() converts in place
                ref[torch.bfloat16] = [hf_logits(m16_f32, p) for p in prompts]
                hf_bf16 = np.concatenate([hf_logits(m16, p) for p in prompts])
                e, t1 = compare(hf_bf16, np.concatenate(ref[torch.bfloat16]))
                yardstick = t1
                print(f"{arch}: transformers' own bf16 forward vs its f32 forward on the bf16 weights: error "
                      f"{e:.2e}, top-1 {100 * t1:.1f}%", flush=True)
            for src, path, wdt in sources:
                per_device = {}
                for dev in devices:
                    # The CPU runs f32 activations (and bf16 for the bf16 checkpoint); CUDA its default (f16, or
                    # bf16 for Gemma 3 and bf16 checkpoints): attention on CUDA takes f16 / bf16 only.
                    acts = ["f32"] if dev == "cpu" else [""]
                    if wdt == torch.bfloat16:
                        acts = ["bf16"]
                    for act in acts:
                        ours, greedy = [], None
                        try:
                            for k, p in enumerate(prompts):
                                tag = f"{arch}-{src.replace(' ', '-')}-{dev}-{act or 'default'}-{k}"
                                lg, g = run_mlxn(a.mlxn, path, p, dev, act, work, tag,
                                                 N_GREEDY if k == 0 and wdt == torch.float32 else 0)
                                ours.append(lg)
                                greedy = g if g is not None else greedy
                        except RuntimeError as e:  # one configuration that does not run fails its row only
                            print(f"{arch} {src} {dev} {act or 'default'}: {e}", file=sys.stderr, flush=True)
                            rows.append((arch, src, dev, act or "default", float("nan"), float("nan"), None, 0,
                                         False))
                            failed = True
                            continue
                        ours_all = np.concatenate(ours)
                        err, top1 = compare(ours_all, np.concatenate(ref[wdt]))
                        exact = act == "f32"
                        limit = 1e-3 if exact else 2e-2
                        g_ok = greedy == ref_greedy if greedy is not None else None
                        top1_ok = top1 >= 0.99 or (yardstick is not None and top1 >= yardstick)
                        ok = err <= limit and (g_ok if exact else top1_ok)
                        rows.append((arch, src, dev, act or "default", err, top1, g_ok, limit, ok))
                        per_device[(dev, act)] = ours_all
                        failed |= not ok
                # CUDA against the CPU backend on the same model and activation dtype.
                if "cpu" in devices and "cuda" in devices:
                    cpu_bf16 = per_device.get(("cpu", "bf16"))
                    cuda = per_device.get(("cuda", "bf16")) if cpu_bf16 is not None else None
                    if cpu_bf16 is None and ("cuda", "") in per_device:
                        # Run the CPU backend with CUDA's activation dtype for this model.
                        act = "bf16" if arch == "gemma3" else "f16"
                        cpu_bf16 = np.concatenate([run_mlxn(a.mlxn, path, p, "cpu", act, work,
                                                            f"{arch}-{src[:4]}-cpu-{act}-{k}", 0)[0]
                                                   for k, p in enumerate(prompts)])
                        cuda = per_device.get(("cuda", ""))
                    if cuda is not None:
                        err, top1 = compare(cuda, cpu_bf16)
                        ok = err <= 2e-2 and top1 >= 0.99
                        rows.append((arch, src, "cuda vs cpu", "same", err, top1, None, 2e-2, ok))
                        failed |= not ok
        except Exception as e:  # report and go on with the next architecture
            print(f"{arch}: could not run: {e}", file=sys.stderr, flush=True)
            rows.append((arch, "-", "-", "-", float("nan"), float("nan"), None, 0, False))
            broken = True
        print(f"{arch}: done in {time.time() - t0:.1f} s", flush=True)

    print()
    print(f"{'arch':8} {'weights':17} {'device':12} {'act':8} {'max rel err':>12} {'limit':>7} {'top-1':>7} "
          f"{'greedy 32':>10}  result")
    for arch, src, dev, act, err, top1, g, limit, ok in rows:
        gs = "-" if g is None else ("equal" if g else "DIFFER")
        print(f"{arch:8} {src:17} {dev:12} {act:8} {err:12.2e} {limit:7.0e} {100 * top1:6.1f}% {gs:>10}  "
              f"{'ok' if ok else 'FAIL'}")
    n_fail = sum(not r[-1] for r in rows)
    print(f"\n{len(rows) - n_fail} passed, {n_fail} failed")
    if a.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 2 if broken else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
