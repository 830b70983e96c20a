// Expert-routed matmul reference: for each (token, slot) the selected expert's rows dequantized exactly as
// quant::dequantize does (or read as floats), float64 dot products; ids outside [0, E) give zero rows.
#include <vector>

#include "cpu/common.h"
#include "kernels/activation.h"
#include "kernels/qmatmul.h"
#include "mlxn/quant/quant.h"

namespace mlxn::cpu {

namespace {

// The selected experts' rows of one stacked weight [E, N, K], dequantized once each (empty for unselected experts).
Status expert_rows(const kern::ExpertsParams& p, const void* wp, std::vector<std::vector<float>>& rows) {
  const int64_t slots = p.T * p.top_k;
  const bool dense = p.tw == DType::F32 || p.tw == DType::F16 || p.tw == DType::BF16;
  const auto* wb = static_cast<const uint8_t*>(wp);
  rows.assign(static_cast<size_t>(p.E), {});
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
  return Status::ok();
}

}  // namespace

// Gated (p.w_up set): y = act(x . w_gate) * (x . w_up), both products and the activation in double.
Status matmul_experts(const kern::ExpertsParams& p, const ExecContext&) {
  const int64_t slots = p.T * p.top_k;
  std::vector<std::vector<float>> rows, up_rows;
  MLXN_TRY(expert_rows(p, p.w, rows));
  if (p.w_up != nullptr) MLXN_TRY(expert_rows(p, p.w_up, up_rows));
  parallel_for(slots * p.N, 64, [&](int64_t i) {
    const int64_t z = i / p.N, n = i % p.N;
    const int64_t e = p.ids[z];
    double out = 0.0;
    if (e >= 0 && e < p.E) {
      const int64_t xrow = p.x_per_slot ? z : z / p.top_k;
      auto dot = [&](const std::vector<std::vector<float>>& r) {
        const float* wr = r[static_cast<size_t>(e)].data() + n * p.K;
        double acc = 0.0;
        for (int64_t k = 0; k < p.K; ++k) acc += static_cast<double>(load_f32(p.x, p.tx, xrow * p.ldx + k)) * wr[k];
        return acc;
      };
      out = dot(rows);
      if (p.w_up != nullptr) out = act_value(p.act, out) * dot(up_rows);
    }
    store_f32(p.y, p.tx, z * p.N + n, static_cast<float>(out));
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
