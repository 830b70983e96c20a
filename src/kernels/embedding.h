// Plain parameter struct of the embedding lookup (include/mlxn/ops/embedding.h), and the backend entry points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

// out[t, :] = table[ids[t], :] * scale, zeros for an id outside [0, vocab). table rows are row_bytes apart
// (whole blocks for GGML block types); out is contiguous [n, dim].
struct EmbeddingParams {
  const void* table = nullptr;
  const int32_t* ids = nullptr;
  void* out = nullptr;
  DType tt = DType::F32, to = DType::F32;
  int64_t n = 0, vocab = 0, dim = 0, row_bytes = 0;
  float scale = 1.0f;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status embedding(const kern::EmbeddingParams& p, const ExecContext& ctx);
}
namespace mlxn::cuda {
Status embedding(const kern::EmbeddingParams& p, const ExecContext& ctx);
}
