// Quantized matmul reference: each row of W dequantized exactly as quant::dequantize / quant::affine_dequantize do
// (bit-identical to ggml and MLX), then float64 dot products. Rows are dequantized one at a time into a per-thread
// buffer (in parallel over the rows of W) rather than the whole matrix up front: an lm_head of 262144 x 640 was a
// 671 MB allocation and a single-threaded dequantize per decoded token.
#include <atomic>
#include <cmath>
#include <mutex>
#include <vector>

#include "cpu/common.h"
#include "cpu/qrow.h"

namespace mlxn::cpu {

Status qmatmul(const kern::QMatmulParams& p, const ExecContext&) {
  std::vector<float> x = rows_f32(p.x, p.tx, p.M, p.K, p.ldx);
  // The fused RMSNorm: x * (norm + offset) in float64 rounded once to f32 (the rows' 1 / rms is applied to the
  // float64 dot products, as the CUDA kernel applies it to its f32 sums).
  std::vector<double> g(static_cast<size_t>(p.M), 1.0);
  if (p.norm != nullptr) {
    for (int64_t m = 0; m < p.M; ++m) {
      float* row = x.data() + m * p.K;
      double ss = 0.0;
      for (int64_t k = 0; k < p.K; ++k) ss += static_cast<double>(row[k]) * row[k];
      g[static_cast<size_t>(m)] = 1.0 / std::sqrt(ss / static_cast<double>(p.K) + static_cast<double>(p.eps));
      for (int64_t k = 0; k < p.K; ++k)
        row[k] = static_cast<float>(static_cast<double>(row[k]) *
                                    (static_cast<double>(load_f32(p.norm, p.tn, k)) + p.norm_offset));
    }
  }
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error = Status::ok();
  parallel_for(p.N, 16, [&](int64_t n) {
    if (failed.load(std::memory_order_relaxed)) return;
    thread_local std::vector<float> w, u;
    w.resize(static_cast<size_t>(p.K));
    Status st = dequantize_row(p, n, p.K, w.data());
    if (st.is_ok() && p.glu) {  // the up projection's row n: row N + n of W
      u.resize(static_cast<size_t>(p.K));
      st = dequantize_row(p, p.N + n, p.K, u.data());
    }
    if (!st.is_ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failed.exchange(true)) first_error = st;
      return;
    }
    for (int64_t m = 0; m < p.M; ++m) {
      const double gm = g[static_cast<size_t>(m)];
      double v = dot_f64(x.data() + m * p.K, w.data(), p.K) * gm;
      if (p.glu) v = act_value(p.act, v) * (dot_f64(x.data() + m * p.K, u.data(), p.K) * gm);
      if (p.r != nullptr) v += static_cast<double>(load_f32(p.r, p.ty, m * p.ldy + n));
      store_f32(p.y, p.ty, m * p.ldy + n, static_cast<float>(v));
    }
  });
  return first_error;
}

}  // namespace mlxn::cpu
