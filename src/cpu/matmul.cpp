// Matmul reference: float64 accumulation of each dot product. Each row of W is converted to f32 into a per-thread
// buffer (in parallel over the rows of W) and multiplied with every row of x.
#include <vector>

#include "cpu/common.h"
#include "kernels/matmul.h"

namespace mlxn::cpu {

Status matmul(const kern::MatmulParams& p, const ExecContext&) {
  const std::vector<float> x = rows_f32(p.x, p.tx, p.M, p.K, p.ldx);
  parallel_for(p.N, 16, [&](int64_t n) {
    thread_local std::vector<float> w;
    w.resize(static_cast<size_t>(p.K));
    for (int64_t k = 0; k < p.K; ++k) w[static_cast<size_t>(k)] = load_f32(p.w, p.tw, n * p.K + k);
    for (int64_t m = 0; m < p.M; ++m)
      store_f32(p.y, p.ty, m * p.ldy + n, static_cast<float>(dot_f64(x.data() + m * p.K, w.data(), p.K)));
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
