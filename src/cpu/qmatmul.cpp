// Quantized matmul reference: each row of W dequantized exactly as quant::dequantize / quant::affine_dequantize do
// (bit-identical to ggml and MLX), then float64 dot products. Rows are dequantized one at a time into a per-thread
// buffer (in parallel over the rows of W) rather than the whole matrix up front: an lm_head of 262144 x 640 was a
// 671 MB allocation and a single-threaded dequantize per decoded token.
#include <atomic>
#include <mutex>
#include <vector>

#include "cpu/common.h"
#include "cpu/qrow.h"

namespace mlxn::cpu {

Status qmatmul(const kern::QMatmulParams& p, const ExecContext&) {
  const std::vector<float> x = rows_f32(p.x, p.tx, p.M, p.K, p.ldx);
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error = Status::ok();
  parallel_for(p.N, 16, [&](int64_t n) {
    if (failed.load(std::memory_order_relaxed)) return;
    thread_local std::vector<float> w;
    w.resize(static_cast<size_t>(p.K));
    const Status st = dequantize_row(p, n, p.K, w.data());
    if (!st.is_ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failed.exchange(true)) first_error = st;
      return;
    }
    for (int64_t m = 0; m < p.M; ++m)
      store_f32(p.y, p.tx, m * p.ldy + n, static_cast<float>(dot_f64(x.data() + m * p.K, w.data(), p.K)));
  });
  return first_error;
}

}  // namespace mlxn::cpu
