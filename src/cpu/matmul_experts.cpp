// Expert-routed matmul reference: for each (token, slot) the selected expert's rows dequantized exactly as
// quant::dequantize does (or read as floats), float64 dot products; ids outside [0, E) give zero rows.
#include <vector>

#include "cpu/common.h"
#include "kernels/qmatmul.h"
#include "mlxn/quant/quant.h"

namespace mlxn::cpu {

Status matmul_experts(const kern::ExpertsParams& p, const ExecContext&) {
  const int64_t slots = p.T * p.top_k;
  const bool dense = p.tw == DType::F32 || p.tw == DType::F16 || p.tw == DType::BF16;
  const auto* wb = static_cast<const uint8_t*>(p.w);
  // Rows of the experts that some slot selects, dequantized once each.
  std::vector<std::vector<float>> rows(static_cast<size_t>(p.E));
  for (int64_t z = 0; z < slots; ++z) {
    const int64_t e = p.ids[z];
    if (e < 0 || e >= p.E || !rows[static_cast<size_t>(e)].empty()) continue;
    auto& w = rows[static_cast<size_t>(e)];
    w.resize(static_cast<size_t>(p.N * p.K));
    for (int64_t n = 0; n < p.N; ++n) {
      const uint8_t* src = wb + (e * p.N + n) * p.row_bytes;
      if (dense) {
        for (int64_t k = 0; k < p.K; ++k) w[static_cast<size_t>(n * p.K + k)] = load_f32(src, p.tw, k);
      } else {
        MLXN_TRY(quant::dequantize(p.tw, src, static_cast<size_t>(p.row_bytes), w.data() + n * p.K, p.K));
      }
    }
  }
  parallel_for(slots * p.N, 64, [&](int64_t i) {
    const int64_t z = i / p.N, n = i % p.N;
    const int64_t e = p.ids[z];
    double acc = 0.0;
    if (e >= 0 && e < p.E) {
      const float* wr = rows[static_cast<size_t>(e)].data() + n * p.K;
      const int64_t xrow = p.x_per_slot ? z : z / p.top_k;
      for (int64_t k = 0; k < p.K; ++k) acc += static_cast<double>(load_f32(p.x, p.tx, xrow * p.ldx + k)) * wr[k];
    }
    store_f32(p.y, p.tx, z * p.N + n, static_cast<float>(acc));
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
