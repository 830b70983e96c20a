// Helpers of the CPU kernels: element access by dtype and a parallel loop. Written for clarity: the CPU backend is
// the reference the CUDA kernels are tested against.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

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

// Rows [0, rows) of a [rows, cols] matrix of any float dtype (row stride ld elements) as contiguous f32.
inline std::vector<float> rows_f32(const void* p, DType t, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[static_cast<size_t>(r * cols + c)] = load_f32(p, t, r * ld + c);
  return out;
}

// sum_k a[k] b[k] in double: four partial sums over k mod 4 (independent chains the compiler can vectorize; one
// chain was latency-bound), added as (s0 + s1) + (s2 + s3). Products of two floats are exact in double, so only the
// additions round (~1e-16 relative each).
inline double dot_f64(const float* a, const float* b, int64_t n) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int j = 0; j < 4; ++j) s[j] += static_cast<double>(a[k + j]) * static_cast<double>(b[k + j]);
  for (; k < n; ++k) s[k % 4] += static_cast<double>(a[k]) * static_cast<double>(b[k]);
  return (s[0] + s[1]) + (s[2] + s[3]);
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
