// Helpers of the CPU kernels: element access by dtype and a parallel loop. Written for clarity: the CPU backend is
// the reference the CUDA kernels are tested against.
#pragma once

#include <cstdint>
#include <cstring>

#include "mlxn/core/dtype.h"
#include "mlxn/core/half.h"

namespace mlxn::cpu {

inline float load_f32(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return 0.0f;  // callers validate dtypes first
  }
}

inline void store_f32(void* p, DType t, int64_t i, float v) {
  switch (t) {
    case DType::F32: static_cast<float*>(p)[i] = v; break;
    case DType::F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
    default: break;
  }
}

// Runs f(i) for i in [0, n), split across threads when there is enough work.
template <typename F>
void parallel_for(int64_t n, int64_t min_per_thread, F&& f) {
#if defined(_OPENMP)
  if (n >= 2 * min_per_thread) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#endif
  (void)min_per_thread;
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace mlxn::cpu
