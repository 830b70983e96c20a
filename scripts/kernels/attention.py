"""Attention family: split-KV decode + tensor-core prefill per (q dtype, KV dtype, head dim), and the KV-cache write.

Head dims and the models behind them: 64 (GPT-2 style, small Llama / Qwen, gpt-oss), 80 (Phi-2), 96 (Phi-3-mini),
128 (Llama 3, Qwen, Mistral), 192 (DeepSeek MLA q/k without the rope part), 256 (Gemma 2 / 3, Qwen3-Next), 512
(Gemma 3n / large-head experiments). The out dtype is q's. KV caches in f16 or bf16; the prefill kernel runs when q
and KV share a dtype (mma operands), decode takes any mix.
"""
from .common import FLOATS, SETS, instance

HEAD_DIMS = (64, 80, 96, 128, 192, 256, 512)
# fp8 e4m3 caches ("u8" in the keys: u8 storage + f32 scales) run the tensor-core decode kernel: D % 16 == 0, <= 256.
FP8_HEAD_DIMS = (64, 80, 96, 128, 192, 256)
# q8_0 / q4_0 caches (split GGML blocks: codes + f16 scales per 32) run the same kernel; D a multiple of 64 (the
# scales of a row are copied in 4-byte pieces).
Q_HEAD_DIMS = (64, 128, 192, 256)
KV_TYPES = ("f16", "bf16")
Q_TYPES = ("f16", "bf16")
CI_HEAD_DIMS = (128,)


def attention():
    for tq in Q_TYPES:
        for d in HEAD_DIMS:
            adds = [f't.add("attention", "{tq}.{tkv}.{tq}.d{d}", '
                    f'&launch_attention<{FLOATS[tq]}, {FLOATS[tkv]}, {d}>);' for tkv in KV_TYPES]
            if d in FP8_HEAD_DIMS:
                adds.append(f't.add("attention", "{tq}.u8.{tq}.d{d}", &launch_attention_fp8<{FLOATS[tq]}, {d}>);')
            if d in Q_HEAD_DIMS:
                adds += [f't.add("attention", "{tq}.{qt}.{tq}.d{d}", '
                         f'&launch_attention_q<{FLOATS[tq]}, {q4}, {d}>);'
                         for qt, q4 in (("q8_0", "false"), ("q4_0", "true"))]
            sets = SETS if d in CI_HEAD_DIMS else ("default", "all")
            yield instance(f"attention_{tq}_d{d}.cu", f"add_attention_{tq}_d{d}",
                           ["cuda/attention_decode.cuh", "cuda/kernel_table.h"], adds, sets)


def kv_cache_write():
    # New rows in any float dtype (k and v alike) into f16 / bf16 caches.
    adds = [f't.add("kv_cache_write", "{ts}.{ts}.{tc}", &launch_kv_cache_write<{FLOATS[ts]}, {FLOATS[tc]}>);'
            for ts in FLOATS for tc in KV_TYPES]
    adds += [f't.add("kv_cache_write", "{ts}.{ts}.u8", &launch_kv_cache_write_fp8<{FLOATS[ts]}>);' for ts in FLOATS]
    adds += [f't.add("kv_cache_write", "{ts}.{ts}.{qt}", &launch_kv_cache_write_q<{FLOATS[ts]}, {q4}>);'
             for ts in FLOATS for qt, q4 in (("q8_0", "false"), ("q4_0", "true"))]
    yield instance("kv_cache_write.cu", "add_kv_cache_write", ["cuda/attention.cuh", "cuda/kernel_table.h"], adds)


FAMILIES = [attention, kv_cache_write]
