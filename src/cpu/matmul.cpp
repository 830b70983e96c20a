// Matmul reference: float64 accumulation of each dot product.
#include "cpu/common.h"
#include "kernels/matmul.h"

namespace mlxn::cpu {

Status matmul(const kern::MatmulParams& p, const ExecContext&) {
  // Convert W once per call into f32 rows (the CPU reference favours clarity over memory).
  std::vector<float> w(static_cast<size_t>(p.N * p.K));
  parallel_for(p.N, 64, [&](int64_t n) {
    for (int64_t k = 0; k < p.K; ++k) w[static_cast<size_t>(n * p.K + k)] = load_f32(p.w, p.tw, n * p.K + k);
  });
  parallel_for(p.M * p.N, 64, [&](int64_t i) {
    const int64_t m = i / p.N, n = i % p.N;
    const float* wr = w.data() + n * p.K;
    double acc = 0.0;
    for (int64_t k = 0; k < p.K; ++k) acc += static_cast<double>(load_f32(p.x, p.tx, m * p.ldx + k)) * wr[k];
    store_f32(p.y, p.ty, m * p.ldy + n, static_cast<float>(acc));
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
