// Launchers of the attention family: pick the generated variant for the dtypes and head dim at hand.
//
// Kernels (src/cuda/attention.cuh, attention_prefill.cuh): q_len <= 16 runs split-KV flash decoding (CUDA cores,
// cp.async double buffering, one block per KV-head group so K / V are read once, a merge kernel); longer chunks run
// the mma.sync prefill kernel (FlashAttention-2 structure). Not yet here: a wgmma / TMA prefill for sm_90a (the
// FlashAttention-3 structure: producer warp with TMA, two consumer warpgroups, ping-pong softmax), tensor cores in
// decode for large GQA groups x q_len, and quantized (fp8 / q8_0 / q4_0) caches.
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
