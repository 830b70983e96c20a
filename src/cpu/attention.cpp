// Attention and KV-cache write references: scores, softmax and the weighted sum in double, the result rounded once
// to out's dtype. Written for clarity (include/mlxn/ops/attention.h has the convention they implement).
#include "kernels/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "cpu/common.h"

namespace mlxn::cpu {

Status kv_cache_write(const kern::KvWriteParams& p, const ExecContext&) {
  const kern::KvCacheDesc& c = p.cache;
  const int64_t row = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  for (int32_t b = 0; b < p.batch; ++b) {
    const kern::SeqRange r = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
    for (int32_t i = 0; i < r.n_q; ++i) {
      const int64_t dst = kern::kv_row(c, b, r.kv_len - r.n_q + i);
      if (dst < 0) continue;
      const int64_t src = (static_cast<int64_t>(b) * p.q_len + i) * row;
      for (int64_t e = 0; e < row; ++e) {
        store_f32(c.k, c.t, dst * row + e, load_f32(p.k, p.tk, src + e));
        store_f32(c.v, c.t, dst * row + e, load_f32(p.v, p.tv, src + e));
      }
    }
  }
  return Status::ok();
}

Status attention(const kern::AttentionParams& p, const ExecContext&) {
  const kern::KvCacheDesc& c = p.cache;
  const int64_t D = p.head_dim;
  const int64_t kv_row_elems = static_cast<int64_t>(p.n_kv_heads) * D;
  const int32_t group = p.n_heads / p.n_kv_heads;
  const int64_t rows = static_cast<int64_t>(p.batch) * p.q_len * p.n_heads;
  parallel_for(rows, 4, [&](int64_t row) {
    const int32_t h = static_cast<int32_t>(row % p.n_heads);
    const int32_t i = static_cast<int32_t>(row / p.n_heads % p.q_len);
    const int32_t b = static_cast<int32_t>(row / (static_cast<int64_t>(p.n_heads) * p.q_len));
    const int64_t qo = row * D;
    const kern::SeqRange r = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
    std::vector<double> acc(static_cast<size_t>(D), 0.0);
    if (i < r.n_q) {
      const int64_t t = r.kv_len - r.n_q + i;  // bottom-right aligned position of this query
      int64_t lo = 0, hi = p.causal ? t + 1 : r.kv_len;
      if (p.window > 0) lo = std::max<int64_t>(lo, t - p.window + 1);
      if (c.layout == kern::kKvRing) lo = std::max<int64_t>(lo, r.kv_len - c.capacity);
      const int64_t kv_off = static_cast<int64_t>(h / group) * D;
      std::vector<double> s;
      std::vector<int64_t> rows_of;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = lo; j < hi; ++j) {
        const int64_t kr = kern::kv_row(c, b, j);
        if (kr < 0) continue;
        double dot = 0;
        for (int64_t e = 0; e < D; ++e)
          dot += static_cast<double>(load_f32(p.q, p.tq, qo + e)) *
                 static_cast<double>(load_f32(c.k, c.t, kr * kv_row_elems + kv_off + e));
        double v = dot * static_cast<double>(p.scale);
        if (p.softcap > 0) v = p.softcap * std::tanh(v / p.softcap);
        if (p.mask != nullptr) v += load_f32(p.mask, p.tmask, b * p.mask_batch_stride + i * p.mask_row_stride + j);
        if (v == -std::numeric_limits<double>::infinity()) continue;  // blocked by the mask
        s.push_back(v);
        rows_of.push_back(kr);
        m = std::max(m, v);
      }
      const bool sink = p.sinks != nullptr;
      const double sink_logit = sink ? load_f32(p.sinks, p.tsinks, h) : 0.0;
      if (sink) m = std::max(m, sink_logit);
      double den = sink && std::isfinite(m) ? std::exp(sink_logit - m) : 0.0;
      for (size_t k = 0; k < s.size(); ++k) {
        const double w = std::exp(s[k] - m);
        den += w;
        for (int64_t e = 0; e < D; ++e)
          acc[static_cast<size_t>(e)] +=
              w * static_cast<double>(load_f32(c.v, c.t, rows_of[k] * kv_row_elems + kv_off + e));
      }
      for (auto& a : acc) a = den > 0 ? a / den : 0.0;
    }
    for (int64_t e = 0; e < D; ++e) store_f32(p.out, p.tout, qo + e, static_cast<float>(acc[static_cast<size_t>(e)]));
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
