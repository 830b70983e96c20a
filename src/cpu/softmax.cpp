// Softmax reference: max, sum and the outputs in double, rounded once to y's dtype.
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/common.h"

namespace mlxn::cpu {

Status softmax(const kern::SoftmaxParams& p, const ExecContext&) {
  const double inf = std::numeric_limits<double>::infinity();
  parallel_for(p.rows, 4, [&](int64_t r) {
    std::vector<double> t(static_cast<size_t>(p.cols));
    const int64_t mrow = (r % p.mask_rows) * p.cols;
    double mx = -inf;
    for (int64_t c = 0; c < p.cols; ++c) {
      double v = static_cast<double>(load_f32(p.x, p.tx, r * p.cols + c)) * static_cast<double>(p.scale);
      if (p.mask != nullptr) v += static_cast<double>(load_f32(p.mask, p.tm, mrow + c));
      t[static_cast<size_t>(c)] = v;
      mx = std::max(mx, v);
    }
    double sum = 0.0;
    if (mx > -inf) {
      for (double v : t) sum += std::exp(v - mx);
    }
    for (int64_t c = 0; c < p.cols; ++c) {
      const double v = t[static_cast<size_t>(c)];
      double o;
      if (p.log) {
        o = sum > 0.0 ? v - mx - std::log(sum) : -inf;
      } else {
        o = sum > 0.0 ? std::exp(v - mx) / sum : 0.0;
      }
      store_f32(p.y, p.ty, r * p.cols + c, static_cast<float>(o));
    }
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
