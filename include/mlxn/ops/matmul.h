// Matrix products against weights: y = x W^T.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

// y[m, n] = sum_k x[m, k] * W[n, k] (W stored [N, K] row-major, as checkpoints store linear layers).
// x: [..., K] f32 / f16 / bf16, rows contiguous (a row stride larger than K is allowed: a 2-D strided view);
// y: [..., N] in x's dtype, same leading dimensions; W: [N, K] f32 / f16 / bf16.
// Accumulation is in f32 (float64 on the CPU reference). Decode-sized M (<= 16) runs a bandwidth-bound kernel that
// reads W once per 8 rows of x; larger M runs a tensor-core GEMM.
Status matmul(Session& s, const Buffer& x, const Buffer& w, const Buffer& y);

}  // namespace mlxn::ops
