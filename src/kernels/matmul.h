// Plain parameter struct of the matmul kernels, and the backend entry points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

// y[m * ldy + n] = sum_k x[m * ldx + k] * w[n * K + k] for m < M, n < N.
struct MatmulParams {
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  DType tx = DType::F32, tw = DType::F32, ty = DType::F32;
  int64_t M = 0, N = 0, K = 0;
  int64_t ldx = 0, ldy = 0;  // row strides in elements
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status matmul(const kern::MatmulParams& p, const ExecContext& ctx);
}
namespace mlxn::cuda {
Status matmul(const kern::MatmulParams& p, const ExecContext& ctx);
}
