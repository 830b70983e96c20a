// Quantized matmul reference: each row of W dequantized exactly as quant::dequantize / quant::affine_dequantize do
// (bit-identical to ggml and MLX), then float64 dot products.
#include <vector>

#include "cpu/common.h"
#include "kernels/qmatmul.h"
#include "mlxn/quant/affine.h"
#include "mlxn/quant/quant.h"

namespace mlxn::cpu {

Status qmatmul(const kern::QMatmulParams& p, const ExecContext&) {
  std::vector<float> w(static_cast<size_t>(p.N * p.K));
  const auto* wb = static_cast<const uint8_t*>(p.w);
  Status first_error = Status::ok();
  if (p.layout == kern::QWeight::Ggml) {
    for (int64_t n = 0; n < p.N && first_error.is_ok(); ++n)
      first_error = quant::dequantize(p.tw, wb + n * p.row_bytes, static_cast<size_t>(p.row_bytes),
                                      w.data() + n * p.K, p.K);
  } else {
    const size_t ts = dtype_size(p.ts);
    const int64_t groups = p.K / p.group;
    for (int64_t n = 0; n < p.N && first_error.is_ok(); ++n)
      first_error = quant::affine_dequantize({p.bits, p.group}, 1, p.K, wb + n * p.row_bytes,
                                             static_cast<size_t>(p.row_bytes), p.ts,
                                             static_cast<const uint8_t*>(p.scales) + n * groups * ts,
                                             static_cast<const uint8_t*>(p.biases) + n * groups * ts,
                                             w.data() + n * p.K);
  }
  MLXN_TRY(first_error);
  parallel_for(p.M * p.N, 64, [&](int64_t i) {
    const int64_t m = i / p.N, n = i % p.N;
    const float* wr = w.data() + n * p.K;
    double acc = 0.0;
    for (int64_t k = 0; k < p.K; ++k) acc += static_cast<double>(load_f32(p.x, p.tx, m * p.ldx + k)) * wr[k];
    store_f32(p.y, p.tx, m * p.ldy + n, static_cast<float>(acc));
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
