// RoPE reference: the angle straight from the formula in double (std::pow, std::cos, std::sin), the optional
// per-head RMS norm in double, one rounding to the output dtype.
#include "kernels/rope.h"

#include <cmath>
#include <vector>

#include "cpu/common.h"

namespace mlxn::cpu {
namespace {

int stream_of(const kern::RopeParams& p, int64_t i) {
  if (p.sections_mode == 0) return 0;
  const int64_t s0 = p.sections[0], s1 = p.sections[1], s2 = p.sections[2];
  const int64_t sector = i % (s0 + s1 + s2 + p.sections[3]);
  int stream = 3;
  if (p.sections_mode == 1) {
    if (sector < s0)
      stream = 0;
    else if (sector < s0 + s1)
      stream = 1;
    else if (sector < s0 + s1 + s2)
      stream = 2;
  } else {
    if (sector % 3 == 1 && sector < 3 * s1)
      stream = 1;
    else if (sector % 3 == 2 && sector < 3 * s2)
      stream = 2;
    else if (sector % 3 == 0 && sector < 3 * s0)
      stream = 0;
  }
  return stream < p.n_streams ? stream : 0;
}

}  // namespace

Status rope(const kern::RopeParams& p, const ExecContext&) {
  const int64_t half = p.rope_dim / 2;
  const double base = std::exp2(p.log2_base);
  parallel_for(p.tokens, 4, [&](int64_t t) {
    // cos / sin of every pair for this token (ggml's rope_yarn in double).
    std::vector<double> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      const double pos = p.pos[static_cast<int64_t>(stream_of(p, i)) * p.tokens + t];
      double theta_e = pos * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(p.rope_dim));
      if (p.freq_factors) theta_e /= p.freq_factors[i];
      const double theta_i = p.freq_scale * theta_e;
      double theta = theta_i, mscale = p.attn_factor;
      if (p.ext_factor != 0.0f) {
        const double y =
            (static_cast<double>(i) - p.corr_lo) / std::max(0.001, static_cast<double>(p.corr_hi) - p.corr_lo);
        const double ramp = (1.0 - std::min(1.0, std::max(0.0, y))) * p.ext_factor;
        theta = theta_i * (1.0 - ramp) + theta_e * ramp;
        mscale *= 1.0 + 0.1 * std::log(1.0 / static_cast<double>(p.freq_scale));
      }
      cs[static_cast<size_t>(i)] = std::cos(theta) * mscale;
      sn[static_cast<size_t>(i)] = std::sin(theta) * mscale;
    }
    std::vector<double> v(static_cast<size_t>(p.head_dim));
    for (int64_t h = 0; h < p.heads; ++h) {
      const int64_t xi = t * p.x_stride_t + h * p.x_stride_h, oi = t * p.out_stride_t + h * p.out_stride_h;
      for (int64_t e = 0; e < p.head_dim; ++e) v[static_cast<size_t>(e)] = load_f32(p.x, p.t, xi + e);
      if (p.norm) {
        double ss = 0;
        for (double a : v) ss += a * a;
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(p.head_dim) + p.eps);
        for (int64_t e = 0; e < p.head_dim; ++e) {
          double w = 1.0;
          if (p.norm_w) w = static_cast<double>(load_f32(p.norm_w, p.tw, e)) + p.w_offset;
          v[static_cast<size_t>(e)] *= inv * w;
        }
      }
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = p.neox ? i : 2 * i, b = p.neox ? i + half : 2 * i + 1;
        const double x0 = v[static_cast<size_t>(a)], x1 = v[static_cast<size_t>(b)];
        const double c = cs[static_cast<size_t>(i)], s = sn[static_cast<size_t>(i)];
        v[static_cast<size_t>(a)] = x0 * c - x1 * s;
        v[static_cast<size_t>(b)] = x0 * s + x1 * c;
      }
      for (int64_t e = 0; e < p.head_dim; ++e)
        store_f32(p.out, p.t, oi + e, static_cast<float>(v[static_cast<size_t>(e)]));
    }
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
