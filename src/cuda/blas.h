// cuBLASLt for prefill-sized dense products.
#pragma once

#include "kernels/matmul.h"

namespace mlxn::cuda {

// x, W and y of one dtype among bf16, f16 and f32.
bool blas_supports(const kern::MatmulParams& p);
Status blas_matmul(const kern::MatmulParams& p, const ExecContext& ctx);

}  // namespace mlxn::cuda
