// RMSNorm reference: the sum of squares in double, the result rounded once to y's dtype.
#include "kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/common.h"

namespace mlxn::cpu {

Status rms_norm(const kern::RmsNormParams& p, const ExecContext&) {
  parallel_for(p.rows, 16, [&](int64_t r) {
    const int64_t base = r * p.cols;
    double ss = 0.0;
    for (int64_t c = 0; c < p.cols; ++c) {
      const double v = load_f32(p.x, p.tx, base + c);
      ss += v * v;
    }
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(p.cols) + static_cast<double>(p.eps));
    for (int64_t c = 0; c < p.cols; ++c) {
      double o = static_cast<double>(load_f32(p.x, p.tx, base + c)) * inv;
      if (p.w != nullptr) o *= static_cast<double>(load_f32(p.w, p.tw, c)) + static_cast<double>(p.w_offset);
      store_f32(p.y, p.ty, base + c, static_cast<float>(o));
    }
  });
  return Status::ok();
}

}  // namespace mlxn::cpu

namespace mlxn::cpu {

// The general normalisation (kern::NormParams): statistics in double over the row as the kernel sees it (h rounded
// to x's dtype when a residual is added first), the result rounded once to y's dtype.
Status norm(const kern::NormParams& p, const ExecContext&) {
  const bool add_before = p.r != nullptr && !p.residual_after;
  parallel_for(p.rows, 16, [&](int64_t row) {
    const int64_t base = row * p.cols;
    std::vector<double> v(static_cast<size_t>(p.cols));
    for (int64_t c = 0; c < p.cols; ++c) {
      float x = load_f32(p.x, p.tx, base + c);
      if (add_before) {
        store_f32(p.h, p.tx, base + c, x + load_f32(p.r, p.tr, base + c));  // r widened to f32 first
        x = load_f32(p.h, p.tx, base + c);  // the rounded sum, as stored
      }
      v[static_cast<size_t>(c)] = x;
    }
    const double n = static_cast<double>(p.cols);
    double mean = 0.0, scale = 1.0;
    if (p.kind == kern::NormKind::Layer) {
      for (double e : v) mean += e;
      mean /= n;
      double var = 0.0;
      for (double e : v) var += (e - mean) * (e - mean);
      scale = 1.0 / std::sqrt(var / n + static_cast<double>(p.eps));
    } else {
      double ss = 0.0;
      for (double e : v) ss += e * e;
      scale = p.kind == kern::NormKind::Rms ? 1.0 / std::sqrt(ss / n + static_cast<double>(p.eps))
                                            : 1.0 / std::max(std::sqrt(ss), static_cast<double>(p.eps));
    }
    for (int64_t c = 0; c < p.cols; ++c) {
      double o = (v[static_cast<size_t>(c)] - mean) * scale;
      if (p.w != nullptr) o *= static_cast<double>(load_f32(p.w, p.tw, c)) + static_cast<double>(p.w_offset);
      if (p.b != nullptr) o += static_cast<double>(load_f32(p.b, p.tw, c));
      if (p.residual_after) o += static_cast<double>(load_f32(p.r, p.tr, base + c));
      store_f32(p.y, p.ty, base + c, static_cast<float>(o));
    }
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
