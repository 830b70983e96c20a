#include "mlxn/ops/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kernels/rope.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

using detail::check_buffer;
using detail::check_float;

// [tokens, heads, head_dim] (rank 3) or [tokens, head_dim] (rank 2, one head), unit stride along head_dim.
struct RopeShape {
  int64_t tokens = 0, heads = 1, head_dim = 0, stride_t = 0, stride_h = 0;
};

Result<RopeShape> rope_shape(std::string_view op, std::string_view arg, const Buffer& b) {
  RopeShape r;
  if (b.rank() == 3) {
    r.tokens = b.shape()[0];
    r.heads = b.shape()[1];
    r.head_dim = b.shape()[2];
    r.stride_t = b.strides()[0];
    r.stride_h = b.strides()[1];
  } else if (b.rank() == 2) {
    r.tokens = b.shape()[0];
    r.head_dim = b.shape()[1];
    r.stride_t = b.strides()[0];
    r.stride_h = r.head_dim;
  } else {
    return invalid_argument(op, arg, " has shape ", b.shape(),
                            "; expected [tokens, heads, head_dim] or [tokens, head_dim]");
  }
  if (r.head_dim > 1 && b.strides()[b.rank() - 1] != 1)
    return invalid_argument(op, arg, " must have unit stride along head_dim (strides of shape ", b.shape(), ")");
  // Rows of one token / head must not overlap each other (an aliasing view would race).
  if (r.heads > 1 && r.stride_h < r.head_dim)
    return invalid_argument(op, arg, " has head stride ", r.stride_h, " < head_dim ", r.head_dim);
  if (r.tokens > 1 && r.stride_t < (r.heads - 1) * r.stride_h + r.head_dim)
    return invalid_argument(op, arg, " has token stride ", r.stride_t, ", which makes tokens overlap");
  return r;
}

Status record_rope(Session& s, std::string_view op, const Buffer& x, const Buffer& w, const Buffer& positions,
                   const Buffer& ff, const Buffer& out, const RopeParams& p, const HeadNormParams* np) {
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_buffer(op, "out", s, out));
  MLXN_TRY(check_buffer(op, "positions", s, positions));
  MLXN_TRY(check_float(op, "x", x));
  if (out.dtype() != x.dtype()) return unsupported(op, "out has dtype ", out.dtype(), ", expected x's ", x.dtype());
  if (out.shape() != x.shape())
    return invalid_argument(op, "out has shape ", out.shape(), ", expected x's ", x.shape());
  MLXN_ASSIGN_OR_RETURN(const RopeShape xs, rope_shape(op, "x", x));
  MLXN_ASSIGN_OR_RETURN(const RopeShape os, rope_shape(op, "out", out));
  const bool in_place = x.storage_id() == out.storage_id() && x.byte_offset() == out.byte_offset() &&
                        xs.stride_t == os.stride_t && xs.stride_h == os.stride_h;
  if (!in_place && x.range().overlaps(out.range()))
    return invalid_argument(op, "x and out overlap without being the same view");

  const int64_t rope_dim = p.rope_dim == 0 ? xs.head_dim : p.rope_dim;
  if (rope_dim <= 0 || rope_dim % 2 != 0 || rope_dim > xs.head_dim)
    return invalid_argument(op, "rope_dim ", rope_dim, " must be even, > 0 and <= head_dim ", xs.head_dim);
  if (!(p.base > 0.0f) || !std::isfinite(p.base))
    return invalid_argument(op, "base ", p.base, " must be finite and > 0");
  if (!(p.freq_scale > 0.0f) || !std::isfinite(p.freq_scale))
    return invalid_argument(op, "freq_scale ", p.freq_scale, " must be finite and > 0");
  if (!std::isfinite(p.ext_factor) || !std::isfinite(p.attn_factor))
    return invalid_argument(op, "ext_factor and attn_factor must be finite");
  if (p.ext_factor != 0.0f && p.n_ctx_orig <= 0)
    return invalid_argument(op, "YaRN (ext_factor != 0) needs n_ctx_orig > 0");

  // Positions: [tokens] or [n_streams, tokens], contiguous int32.
  if (positions.dtype() != DType::I32)
    return invalid_argument(op, "positions has dtype ", positions.dtype(), "; expected i32");
  MLXN_TRY(detail::check_contiguous(op, "positions", positions));
  int n_streams = 1;
  if (positions.rank() == 1 && positions.shape()[0] == xs.tokens) {
    n_streams = 1;
  } else if (positions.rank() == 2 && positions.shape()[1] == xs.tokens && positions.shape()[0] >= 1 &&
             positions.shape()[0] <= 4) {
    n_streams = static_cast<int>(positions.shape()[0]);
  } else {
    return invalid_argument(op, "positions has shape ", positions.shape(), "; expected [", xs.tokens,
                            "] or [n_streams <= 4, ", xs.tokens, "]");
  }
  if (p.sections_mode != RopeSections::None) {
    int64_t total = 0;
    for (int32_t v : p.sections) {
      if (v < 0) return invalid_argument(op, "sections must be >= 0");
      total += v;
    }
    if (total == 0) return invalid_argument(op, "sections are all zero");
  }
  if (ff.valid()) {
    MLXN_TRY(check_buffer(op, "freq_factors", s, ff));
    MLXN_TRY(detail::check_contiguous(op, "freq_factors", ff));
    if (ff.dtype() != DType::F32) return invalid_argument(op, "freq_factors has dtype ", ff.dtype(), "; expected f32");
    if (ff.numel() != rope_dim / 2)
      return invalid_argument(op, "freq_factors has ", ff.numel(), " elements, expected rope_dim / 2 = ", rope_dim / 2);
    if (ff.range().overlaps(out.range())) return invalid_argument(op, "freq_factors and out overlap");
  }
  if (positions.range().overlaps(out.range())) return invalid_argument(op, "positions and out overlap");

  kern::RopeParams kp;
  kp.x = x.data();
  kp.out = out.data();
  kp.pos = positions.data_as<const int32_t>();
  kp.freq_factors = ff.valid() ? ff.data_as<const float>() : nullptr;
  kp.t = x.dtype();
  kp.tokens = xs.tokens;
  kp.heads = xs.heads;
  kp.head_dim = xs.head_dim;
  kp.rope_dim = rope_dim;
  kp.x_stride_t = xs.stride_t;
  kp.x_stride_h = xs.stride_h;
  kp.out_stride_t = os.stride_t;
  kp.out_stride_h = os.stride_h;
  kp.n_streams = n_streams;
  kp.neox = p.layout == RopeLayout::Neox;
  kp.in_place = in_place;
  kp.log2_base = std::log2(static_cast<double>(p.base));
  kp.freq_scale = p.freq_scale;
  kp.ext_factor = p.ext_factor;
  kp.attn_factor = p.attn_factor;
  if (p.ext_factor != 0.0f) {
    float corr[2];
    yarn_corr_dims(rope_dim, p.n_ctx_orig, p.base, p.beta_fast, p.beta_slow, corr);
    kp.corr_lo = corr[0];
    kp.corr_hi = corr[1];
  }
  kp.sections_mode = static_cast<int>(p.sections_mode);
  for (int i = 0; i < 4; ++i) kp.sections[i] = p.sections[i];

  MemRange reads[4] = {x.range(), positions.range(), {}, {}};
  int n_reads = 2;
  if (ff.valid()) reads[n_reads++] = ff.range();
  std::string key = KernelRegistry::key({kp.t});
  if (np != nullptr) {
    if (!(np->eps >= 0.0f) || !std::isfinite(np->eps))
      return invalid_argument(op, "eps ", np->eps, " must be finite and >= 0");
    if (!std::isfinite(np->weight_offset)) return invalid_argument(op, "weight_offset must be finite");
    kp.norm = true;
    kp.eps = np->eps;
    kp.w_offset = np->weight_offset;
    if (w.valid()) {
      MLXN_TRY(check_buffer(op, "w", s, w));
      MLXN_TRY(detail::check_contiguous(op, "w", w));
      if (w.dtype() != x.dtype() && w.dtype() != DType::F32)
        return unsupported(op, "w has dtype ", w.dtype(), "; expected x's (", x.dtype(), ") or f32");
      if (w.numel() != xs.head_dim)
        return invalid_argument(op, "w has ", w.numel(), " elements, expected head_dim ", xs.head_dim);
      if (w.range().overlaps(out.range())) return invalid_argument(op, "w and out overlap");
      kp.norm_w = w.data();
      kp.tw = w.dtype();
      reads[n_reads++] = w.range();
    }
  }
  MLXN_TRY(s.device().kernels().require(op, key));
  if (kp.tokens == 0 || kp.heads == 0) return Status::ok();
  const MemRange writes[1] = {out.range()};
  return s.record(op, std::span<const MemRange>(reads, static_cast<size_t>(n_reads)), writes,
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(rope, kp, ctx); });
}

}  // namespace

Status rope(Session& s, const Buffer& x, const Buffer& positions, const Buffer& freq_factors, const Buffer& out,
            const RopeParams& p) {
  return record_rope(s, "rope", x, Buffer(), positions, freq_factors, out, p, nullptr);
}

Status rope_head_norm(Session& s, const Buffer& x, const Buffer& w, const Buffer& positions, const Buffer& freq_factors,
                      const Buffer& out, const RopeParams& p, const HeadNormParams& np) {
  return record_rope(s, "rope_head_norm", x, w, positions, freq_factors, out, p, &np);
}

void yarn_corr_dims(int64_t rope_dim, int64_t n_ctx_orig, float base, float beta_fast, float beta_slow, float out[2]) {
  // The pair dimension whose wavelength makes n_rot turns over the original context (ggml_rope_yarn_corr_dim).
  auto corr_dim = [&](double n_rot) {
    return static_cast<double>(rope_dim) * std::log(static_cast<double>(n_ctx_orig) / (n_rot * 2 * std::numbers::pi)) /
           (2 * std::log(static_cast<double>(base)));
  };
  const double lo = std::floor(corr_dim(beta_fast)), hi = std::ceil(corr_dim(beta_slow));
  out[0] = static_cast<float>(std::max(0.0, lo));
  out[1] = static_cast<float>(std::min(static_cast<double>(rope_dim - 1), hi));
}

std::vector<float> llama3_freq_factors(int64_t rope_dim, float base, float factor, float low_freq_factor,
                                       float high_freq_factor, int64_t original_max_positions) {
  std::vector<float> out(static_cast<size_t>(std::max<int64_t>(rope_dim / 2, 0)));
  const double old_ctx = static_cast<double>(original_max_positions);
  const double low_wavelen = old_ctx / low_freq_factor, high_wavelen = old_ctx / high_freq_factor;
  for (size_t i = 0; i < out.size(); ++i) {
    const double inv_freq =
        std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(rope_dim));
    const double wavelen = 2 * std::numbers::pi / inv_freq;
    double scaled = inv_freq;
    if (wavelen > low_wavelen) {
      scaled = inv_freq / factor;  // low frequencies: interpolated by the full factor
    } else if (wavelen >= high_wavelen) {
      const double smooth = (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      scaled = (1 - smooth) * inv_freq / factor + smooth * inv_freq;
    }
    out[i] = static_cast<float>(inv_freq / scaled);
  }
  return out;
}

}  // namespace mlxn::ops
