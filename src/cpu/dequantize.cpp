// Row dequantizer reference: each selected row decoded by quant::dequantize (ggml's dequantize_row_*) or
// quant::affine_dequantize (MLX), multiplied by the scale in f32 and rounded once to the output dtype.
#include "kernels/dequantize.h"

#include <vector>

#include "cpu/common.h"
#include "cpu/qrow.h"

namespace mlxn::cpu {

Status dequantize(const kern::DequantParams& p, const ExecContext&) {
  std::vector<Status> errors(static_cast<size_t>(p.n), Status::ok());
  parallel_for(p.n, 1, [&](int64_t t) {
    const int64_t r = p.ids != nullptr ? p.ids[t] : t;
    if (p.ids != nullptr && (r < 0 || r >= p.vocab)) {
      for (int64_t c = 0; c < p.cols; ++c) store_f32(p.out, p.to, t * p.ldo + c, 0.0f);
      return;
    }
    std::vector<float> v(static_cast<size_t>(p.cols));
    Status st = dequantize_row(p, r, p.cols, v.data());
    if (!st.is_ok()) {
      errors[static_cast<size_t>(t)] = st;
      return;
    }
    for (int64_t c = 0; c < p.cols; ++c) store_f32(p.out, p.to, t * p.ldo + c, v[static_cast<size_t>(c)] * p.scale);
  });
  for (const Status& s : errors) MLXN_TRY(s);
  return Status::ok();
}

// The CPU has no separate prefill path: the quantized matmul reference serves every M.
Status qmatmul_prefill(const kern::QPrefillParams& p, const ExecContext& ctx) { return qmatmul(p.q, ctx); }

}  // namespace mlxn::cpu
