// RMSNorm reference: the sum of squares in double, the result rounded once to y's dtype.
#include <cmath>

#include "cpu/common.h"
#include "kernels/norm.h"

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
