// Plain parameter struct of the normalisation kernels, and the backend entry points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

// y[r, c] = x[r, c] * rsqrt(mean_c(x[r, :]^2) + eps) * (w[c] + w_offset); w may be null (no weight).
// x, w, y contiguous; rows x cols.
struct RmsNormParams {
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  DType tx = DType::F32, tw = DType::F32, ty = DType::F32;
  int64_t rows = 0, cols = 0;
  float eps = 1e-6f;
  float w_offset = 0.0f;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status rms_norm(const kern::RmsNormParams& p, const ExecContext& ctx);
}
namespace mlxn::cuda {
Status rms_norm(const kern::RmsNormParams& p, const ExecContext& ctx);
}
