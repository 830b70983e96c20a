// Launchers of the attention family: pick the generated variant for the dtypes and head dim at hand.
//
// Kernels: q_len <= 16 (and fp8 / q8_0 / q4_0 caches at any q_len) run split-KV flash decoding, on tensor cores for
// head dims that are multiples of 16 up to 256 (src/cuda/attention_decode.cuh: per-warp cp.async pipelines, one block
// per SM, a merge kernel only when a sequence has several splits), on CUDA cores for 512 (src/cuda/attention.cuh);
// longer chunks with Q and a 16-bit KV of one dtype run the mma.sync prefill kernel (src/cuda/attention_prefill.cuh,
// FlashAttention-2 structure); on sm_90a, head dim 128 runs the wgmma prefill instead (src/cuda/
// attention_prefill_sm90.cuh: intra-warpgroup pipelining; not yet a TMA producer warp or ping-pong). Not yet here: a
// prefill kernel for quantized caches.
#include "cuda/kernel_table.h"
#include "kernels/attention.h"

namespace mlxn::cuda {

Status attention(const kern::AttentionParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::AttentionParams&, const ExecContext&);
  const std::string key = KernelRegistry::key({p.tq, p.cache.t, p.tout}) + ".d" + std::to_string(p.head_dim);
  Fn fn = kernel_table().find<Fn>("attention", key);
  if (fn == nullptr) return ctx.kernels->require("attention", key);
  return fn(p, ctx);
}

Status kv_cache_write(const kern::KvWriteParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::KvWriteParams&, const ExecContext&);
  const std::string key = KernelRegistry::key({p.tk, p.tv, p.cache.t});
  Fn fn = kernel_table().find<Fn>("kv_cache_write", key);
  if (fn == nullptr) return ctx.kernels->require("kv_cache_write", key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
