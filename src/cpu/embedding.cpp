// Embedding reference: float rows converted in f32; GGML block rows decoded with mlxn::quant::dequantize (ggml's
// dequantize_row_*), then scaled and rounded once to out's dtype.
#include "kernels/embedding.h"

#include <vector>

#include "cpu/common.h"
#include "mlxn/quant/quant.h"

namespace mlxn::cpu {

Status embedding(const kern::EmbeddingParams& p, const ExecContext&) {
  const auto* table = static_cast<const uint8_t*>(p.table);
  const bool blocks = is_quantized(p.tt);
  for (int64_t t = 0; t < p.n; ++t) {
    const int32_t id = p.ids[t];
    if (id < 0 || id >= p.vocab) {
      for (int64_t c = 0; c < p.dim; ++c) store_f32(p.out, p.to, t * p.dim + c, 0.0f);
      continue;
    }
    const uint8_t* row = table + static_cast<int64_t>(id) * p.row_bytes;
    if (blocks) {
      std::vector<float> v(static_cast<size_t>(p.dim));
      MLXN_TRY(quant::dequantize(p.tt, row, static_cast<size_t>(p.row_bytes), v.data(), p.dim));
      for (int64_t c = 0; c < p.dim; ++c) store_f32(p.out, p.to, t * p.dim + c, v[static_cast<size_t>(c)] * p.scale);
    } else {
      for (int64_t c = 0; c < p.dim; ++c) store_f32(p.out, p.to, t * p.dim + c, load_f32(row, p.tt, c) * p.scale);
    }
  }
  return Status::ok();
}

}  // namespace mlxn::cpu
