#!/usr/bin/env python3
"""PyTorch SDPA peer of bench/cases_attention.cpp: torch.nn.functional.scaled_dot_product_attention on the same
decode and prefill cases (32 query heads, 8 KV heads, head dim 128 unless noted, bf16), timed the way mlxn_bench
times (bench/harness.h): 3 warm-up calls, a calibration call, then 21 samples of back-to-back calls (about 300 µs
each) between CUDA events, the median per call; decode inputs rotate through sets spanning at least 4x the L2 cache
so the KV comes from HBM ("cold-ish"). Prints the mlxn_bench table (op, shape, dtype, µs, GB/s, % of the
device-to-device copy bandwidth measured here, note).

Layout: torch wants [batch, heads, tokens, D]; the caches are built that way (contiguous), not as mlx-native's
token-major [batch, tokens, Hkv, D], so SDPA gets its preferred layout. GQA: enable_gqa=True (torch >= 2.5) lets the
backend read each KV head once; older torch has no GQA path, and the KV is expanded to 32 heads before timing
(noted per row: the timed call then reads 4x the KV bytes, though the bytes counted stay the GQA ones).

Run on the GPU machine:  python3 bench/peers/sdpa.py [--quick] [--filter SUBSTRING] [--backend flash|efficient|cudnn|math]
"""
import argparse
import statistics
import sys

import torch
import torch.nn.functional as F

HQ, HKV, D = 32, 8, 128


def ceiling_gbps(quick):
    """Device-to-device copy of 1 GiB: bytes read + written per second (as mlxn_bench's copy ceiling)."""
    n = 1 << 29  # bf16 elements: 1 GiB
    a = torch.empty(n, dtype=torch.bfloat16, device="cuda").normal_()
    b = torch.empty_like(a)
    us = time_us(lambda k: b.copy_(a), quick)
    return 2 * a.numel() * a.element_size() / (us * 1e-6) / 1e9


def time_us(body, quick, target_sample_us=300.0):
    k = 0
    for _ in range(3):
        body(k)
        k += 1
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    body(k)
    k += 1
    e1.record()
    e1.synchronize()
    one_ms = e0.elapsed_time(e1)
    per_sample = int(min(max(target_sample_us / max(one_ms * 1e3, 0.05), 1), 2000))
    samples = []
    for _ in range(5 if quick else 21):
        e0.record()
        for _ in range(per_sample):
            body(k)
            k += 1
        e1.record()
        e1.synchronize()
        samples.append(e0.elapsed_time(e1) * 1e3 / per_sample)
    return statistics.median(samples)


def rotation(bytes_per_set):
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    if l2 <= 0 or bytes_per_set <= 0:
        return 1
    return max(1, min(int(4 * l2 / bytes_per_set) + 1, 64))


def _has_gqa():
    # scaled_dot_product_attention is a builtin without an inspectable signature in some torch builds: probe it.
    try:
        t = torch.zeros(1, 2, 1, 8, device="cuda", dtype=torch.float16)
        F.scaled_dot_product_attention(t, t[:, :1], t[:, :1], enable_gqa=True)
        return True
    except (TypeError, RuntimeError):
        return False


HAS_GQA = _has_gqa()


def sdpa(q, k, v, causal):
    if HAS_GQA:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def make_kv(batch, kv, d, hkv):
    k = torch.randn(batch, hkv, kv, d, dtype=torch.bfloat16, device="cuda")
    v = torch.randn(batch, hkv, kv, d, dtype=torch.bfloat16, device="cuda")
    if not HAS_GQA:  # expanded outside the timed call
        k = k.repeat_interleave(HQ // hkv, dim=1)
        v = v.repeat_interleave(HQ // hkv, dim=1)
    return k, v


def row(op, shape, dtype, us, nbytes, ceiling, note=""):
    if nbytes > 0:
        gbps = nbytes / (us * 1e-6) / 1e9
        pct = 100.0 * gbps / ceiling if ceiling > 0 else 0.0
        print(f"{op:<28} {shape:<16} {dtype:<16} {us:10.2f} {gbps:10.1f} {pct:7.1f}%  {note}")
    else:
        print(f"{op:<28} {shape:<16} {dtype:<16} {us:10.2f} {'-':>10} {'-':>8}  {note}")
    sys.stdout.flush()


def bench_decode(batch, kv, ceiling, quick):
    # The bytes mlxn_bench counts: the K and V read once per KV head, plus q and out.
    kv_bytes = batch * kv * HKV * 2 * D * 2
    n = rotation(kv_bytes)
    sets = []
    for i in range(n):
        k, v = make_kv(batch, kv, D, HKV)
        q = torch.randn(batch, HQ, 1, D, dtype=torch.bfloat16, device="cuda")
        sets.append((q, k, v))
    # Decode: the one query is the last position, so every key is visible: no causal mask needed.
    us = time_us(lambda i: sdpa(*sets[i % n], False), quick)
    nbytes = kv_bytes + batch * HQ * D * 2 * 2
    note = ("rotated" if n > 1 else "") + ("" if HAS_GQA else " (KV expanded to 32 heads: no enable_gqa)")
    row("sdpa_decode", f"{batch}x{kv}", "bf16 32/8 d128", us, nbytes, ceiling, note.strip())


def bench_prefill(n_tok, head_dim, ceiling, quick):
    k, v = make_kv(1, n_tok, head_dim, HKV)
    q = torch.randn(1, HQ, n_tok, head_dim, dtype=torch.bfloat16, device="cuda")
    us = time_us(lambda i: sdpa(q, k, v, True), quick)
    pairs = n_tok * (n_tok + 1) / 2
    flops = 4.0 * HQ * head_dim * pairs
    note = f"{flops / (us * 1e-6) / 1e12:.1f} TFLOP/s" + ("" if HAS_GQA else ", KV expanded to 32 heads")
    row("sdpa_prefill", f"1x{n_tok} causal", f"bf16 32/8 d{head_dim}", us, 0, ceiling, note)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="5 samples instead of 21")
    ap.add_argument("--filter", default="", help="run only cases whose op or shape contains this")
    ap.add_argument("--backend", default="", choices=["", "flash", "efficient", "cudnn", "math"],
                    help="force one SDPA backend (default: torch's choice)")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("sdpa.py: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = True
    p = torch.cuda.get_device_properties(0)
    print(f"sdpa peer on {p.name} (torch {torch.__version__}, sm_{p.major}{p.minor}, {p.multi_processor_count} SMs, "
          f"enable_gqa {'yes' if HAS_GQA else 'no'}, backend {a.backend or 'auto'})")
    ceiling = ceiling_gbps(a.quick)
    print(f"copy ceiling {ceiling:.1f} GB/s")
    print(f"{'op':<28} {'shape':<16} {'dtype':<16} {'us':>10} {'GB/s':>10} {'%copy':>8}  note")
    cases = [("sdpa_decode", f"1x{kv}", lambda kv=kv: bench_decode(1, kv, ceiling, a.quick))
             for kv in (4096, 8192, 32768, 131072)]
    cases.append(("sdpa_decode", "16x8192", lambda: bench_decode(16, 8192, ceiling, a.quick)))
    cases += [("sdpa_prefill", f"1x{n} d{d}", lambda n=n, d=d: bench_prefill(n, d, ceiling, a.quick))
              for n, d in ((2048, 128), (4096, 128), (8192, 128), (4096, 64), (4096, 256))]
    ctx = None
    if a.backend:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        ctx = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
               "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}[a.backend]
    for op, shape, fn in cases:
        if a.filter and a.filter not in op and a.filter not in shape:
            continue
        try:
            if ctx is not None:
                from torch.nn.attention import sdpa_kernel
                with sdpa_kernel(ctx):
                    fn()
            else:
                fn()
        except RuntimeError as e:  # a forced backend may not take a case (e.g. flash with d256 on some builds)
            print(f"{op:<28} {shape:<16} skipped: {str(e).splitlines()[0]}")
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
