// Launcher of the embedding lookup: float tables through the generated variants of src/cuda/embedding.cuh; GGML
// block-type tables through the row dequantizer's (src/cuda/dequant.cuh, listed by scripts/kernels/dequant.py).
#include "cuda/kernel_table.h"
#include "kernels/embedding.h"

namespace mlxn::cuda {

Status embedding(const kern::EmbeddingParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::EmbeddingParams&, const ExecContext&);
  const std::string key = KernelRegistry::key({p.tt, p.to});
  Fn fn = kernel_table().find<Fn>("embedding", key);
  if (fn == nullptr) return ctx.kernels->require("embedding", key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
