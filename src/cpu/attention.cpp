// Attention and KV-cache write references: scores, softmax and the weighted sum in double, the result rounded once
// to out's dtype. Written for clarity (include/mlxn/ops/attention.h has the convention they implement).
#include "kernels/attention.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/common.h"
#include "mlxn/core/half.h"
#include "mlxn/quant/blocks.h"
#include "mlxn/quant/quant.h"

namespace mlxn::cpu {
namespace {

// OCP E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities, S.1111.111 is NaN; max 448.
double e4m3_to_double(uint8_t v) {
  const int e = (v >> 3) & 15, m = v & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
  return (v & 0x80) ? -mag : mag;
}

// Round to nearest even, saturating to +-448 (what cvt.rn.satfinite.e4m3x2.f32 does on the GPU).
uint8_t e4m3_from_float(float x) {
  if (std::isnan(x)) return 0x7f;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  const double a = std::fabs(static_cast<double>(x));
  if (a >= 448.0) return sign | 0x7e;
  if (a == 0.0) return sign;  // frexp(0) has no binade
  int e;
  (void)std::frexp(a, &e);                                  // a = f 2^e, f in [0.5, 1)
  const int exp = std::max(e - 1, -6);                      // below 2^-6 the subnormal quantum 2^-9 applies
  const double q = std::nearbyint(std::ldexp(a, 3 - exp));  // mantissa with the leading bit, in quanta (ties to even)
  // q in [8, 16] for normals (16: carried into the next binade), [0, 8] for subnormals (8: the smallest normal).
  const int code = (exp + 6) * 8 + static_cast<int>(q);  // the codes are monotonic in the value
  return sign | static_cast<uint8_t>(std::min(code, 0x7e));
}

// Element e of the (row, head) vector in the cache (k or v with its scale), as a double. q8_0 / q4_0: ggml's
// dequantization (code x d, (nibble - 8) x d) of the split block fields.
double cache_value(const kern::KvCacheDesc& c, const void* data, const void* scale, int64_t row, int64_t head,
                   int64_t e) {
  const int64_t vec = row * c.n_kv_heads + head;
  if (kern::kv_block_quant(c.t)) {
    const double d = f16_to_f32(static_cast<const uint16_t*>(scale)[vec * (c.head_dim / 32) + e / 32]);
    const int64_t codes = vec * kern::kv_code_bytes(c.t, c.head_dim);
    if (c.t == DType::Q8_0) return static_cast<const int8_t*>(data)[codes + e] * d;
    const uint8_t byte = static_cast<const uint8_t*>(data)[codes + e / 32 * 16 + e % 16];
    const int nibble = e % 32 < 16 ? byte & 15 : byte >> 4;
    return (nibble - 8) * d;
  }
  const int64_t idx = vec * c.head_dim + e;
  if (c.t == DType::U8)
    return e4m3_to_double(static_cast<const uint8_t*>(data)[idx]) *
           static_cast<double>(static_cast<const float*>(scale)[vec]);
  return load_f32(data, c.t, idx);
}

// Stores one new (position, head) vector x[0..D) into the cache, quantizing for fp8 and q8_0 / q4_0 (header
// convention; the block formats through ggml's reference quantizers, then split into codes and scales).
void cache_store(const kern::KvCacheDesc& c, void* data, void* scale_ptr, int64_t row, int64_t head, const float* x) {
  const int64_t vec = row * c.n_kv_heads + head;
  if (kern::kv_block_quant(c.t)) {
    const int64_t n_blocks = c.head_dim / 32;
    const size_t block_bytes = c.t == DType::Q8_0 ? sizeof(quant::BlockQ8_0) : sizeof(quant::BlockQ4_0);
    const size_t code_bytes = block_bytes - 2;  // the f16 d first, then the codes (ggml's struct order)
    std::vector<uint8_t> blocks(static_cast<size_t>(n_blocks) * block_bytes);
    (void)quant::quantize(c.t, x, c.head_dim, blocks.data(), blocks.size());  // D % 32 == 0: checked by the op
    auto* codes = static_cast<uint8_t*>(data) + vec * static_cast<int64_t>(n_blocks * code_bytes);
    auto* scales = static_cast<uint16_t*>(scale_ptr) + vec * n_blocks;
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      const uint8_t* src = blocks.data() + static_cast<size_t>(blk) * block_bytes;
      std::memcpy(&scales[blk], src, 2);
      std::memcpy(codes + blk * static_cast<int64_t>(code_bytes), src + 2, code_bytes);
    }
    return;
  }
  float* scale = static_cast<float*>(scale_ptr);
  const int64_t base = vec * c.head_dim;
  if (c.t != DType::U8) {
    for (int64_t e = 0; e < c.head_dim; ++e) store_f32(data, c.t, base + e, x[e]);
    return;
  }
  float amax = 0.0f;
  for (int64_t e = 0; e < c.head_dim; ++e) amax = std::max(amax, std::fabs(x[e]));
  const float s = amax / 448.0f;
  const float inv = s > 0.0f ? 1.0f / s : 0.0f;
  for (int64_t e = 0; e < c.head_dim; ++e) static_cast<uint8_t*>(data)[base + e] = e4m3_from_float(x[e] * inv);
  scale[row * c.n_kv_heads + head] = s;
}

}  // namespace

Status kv_cache_write(const kern::KvWriteParams& p, const ExecContext&) {
  const kern::KvCacheDesc& c = p.cache;
  const int64_t D = c.head_dim;
  const int64_t row = static_cast<int64_t>(c.n_kv_heads) * D;
  std::vector<float> xk(static_cast<size_t>(D)), xv(static_cast<size_t>(D));
  for (int32_t b = 0; b < p.batch; ++b) {
    const kern::SeqRange r = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
    for (int32_t i = 0; i < r.n_q; ++i) {
      const int64_t dst = kern::kv_row(c, b, r.kv_len - r.n_q + i);
      if (dst < 0) continue;
      const int64_t src = (static_cast<int64_t>(b) * p.q_len + i) * row;
      for (int64_t h = 0; h < c.n_kv_heads; ++h) {
        for (int64_t e = 0; e < D; ++e) {
          xk[static_cast<size_t>(e)] = load_f32(p.k, p.tk, src + h * D + e);
          xv[static_cast<size_t>(e)] = load_f32(p.v, p.tv, src + h * D + e);
        }
        cache_store(c, c.k, c.k_scale, dst, h, xk.data());
        cache_store(c, c.v, c.v_scale, dst, h, xv.data());
      }
    }
  }
  return Status::ok();
}

Status attention(const kern::AttentionParams& p, const ExecContext&) {
  const kern::KvCacheDesc& c = p.cache;
  const int64_t D = p.head_dim;
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
      const int64_t kvh = h / group;
      std::vector<double> s;
      std::vector<int64_t> rows_of;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = lo; j < hi; ++j) {
        const int64_t kr = kern::kv_row(c, b, j);
        if (kr < 0) continue;
        double dot = 0;
        for (int64_t e = 0; e < D; ++e)
          dot += static_cast<double>(load_f32(p.q, p.tq, qo + e)) * cache_value(c, c.k, c.k_scale, kr, kvh, e);
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
          acc[static_cast<size_t>(e)] += w * cache_value(c, c.v, c.v_scale, rows_of[k], kvh, e);
      }
      for (auto& a : acc) a = den > 0 ? a / den : 0.0;
    }
    for (int64_t e = 0; e < D; ++e) store_f32(p.out, p.tout, qo + e, static_cast<float>(acc[static_cast<size_t>(e)]));
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
