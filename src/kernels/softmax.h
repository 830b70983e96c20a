// Plain parameter struct of the softmax kernels, and the backend entry points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

// Per row r of rows x cols: t[c] = x[r, c] * scale + mask[r % mask_rows, c] (mask optional, dtype tm);
// softmax: y = exp(t - max t) / sum exp(t - max t); log: y = t - max t - log(sum exp(t - max t)).
// A row with no value above -inf gives 0 (softmax) or -inf (log). x, mask, y contiguous.
struct SoftmaxParams {
  const void* x = nullptr;
  const void* mask = nullptr;
  void* y = nullptr;
  DType tx = DType::F32, tm = DType::F32, ty = DType::F32;
  int64_t rows = 0, cols = 0, mask_rows = 1;
  float scale = 1.0f;
  bool log = false;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status softmax(const kern::SoftmaxParams& p, const ExecContext& ctx);
}
namespace mlxn::cuda {
Status softmax(const kern::SoftmaxParams& p, const ExecContext& ctx);
}
