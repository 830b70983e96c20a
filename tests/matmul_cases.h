// Matmul cases shared by the CPU test (against a float64 reference computed here) and the GPU test (CUDA against
// the CPU backend).
#pragma once

#include "test_util.h"

namespace mlxn::test {

struct MatmulCase {
  int64_t M, N, K;
  DType tx, tw;
  int64_t x_row_pad;  // x is a 2-D view whose rows are K + pad apart (0: contiguous)
};

struct MatmulRun {
  std::vector<float> x, w, y;  // x and w as rounded to their dtypes, x without padding
  Status status;
};

inline MatmulRun run_matmul(const Device& dev, const MatmulCase& c, uint64_t seed) {
  MatmulRun out;
  out.x = rounded(c.tx, randn(static_cast<size_t>(c.M * c.K), seed));
  out.w = rounded(c.tw, randn(static_cast<size_t>(c.N * c.K), seed + 1, 1.0f / std::sqrt(static_cast<float>(c.K))));
  const int64_t ldx = c.K + c.x_row_pad;
  std::vector<float> xp(static_cast<size_t>(c.M * ldx), 7.0f);
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t k = 0; k < c.K; ++k) xp[static_cast<size_t>(m * ldx + k)] = out.x[static_cast<size_t>(m * c.K + k)];
  auto xs = make_buffer(dev, c.tx, {c.M, ldx}, xp);
  Buffer x = xs;
  if (c.x_row_pad) {
    Strides st{};
    st[0] = ldx;
    st[1] = 1;
    x = xs.view_strided(0, c.tx, {c.M, c.K}, st).value();
  }
  auto w = make_buffer(dev, c.tw, {c.N, c.K}, out.w);
  auto y = dev.alloc(c.tx, {c.M, c.N}).value();
  poison(y);
  auto s = Session::create(dev).value();
  out.status = ops::matmul(s, x, w, y);
  if (out.status.is_ok()) out.status = s.finish();
  if (out.status.is_ok()) out.y = read_f32(y);
  return out;
}

inline std::vector<double> matmul_reference(const MatmulRun& r, const MatmulCase& c) {
  std::vector<double> y(static_cast<size_t>(c.M * c.N));
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < c.K; ++k)
        acc += static_cast<double>(r.x[static_cast<size_t>(m * c.K + k)]) * r.w[static_cast<size_t>(n * c.K + k)];
      y[static_cast<size_t>(m * c.N + n)] = acc;
    }
  return y;
}

inline std::string describe(const MatmulCase& c) {
  return detail::cat("M=", c.M, " N=", c.N, " K=", c.K, " x=", c.tx, " w=", c.tw, " pad=", c.x_row_pad);
}

}  // namespace mlxn::test
