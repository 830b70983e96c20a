// Cases of add_rms_norm with an f16 / bf16 residual r on an f32 stream x (the models' block output added to the
// residual stream), shared by the CPU test (against a reference written here) and the GPU test (CUDA against the CPU
// backend).
#pragma once

#include <cmath>
#include <string>

#include "mlxn/ops/norm.h"
#include "test_util.h"

namespace mlxn::test {

struct WideCase {
  int64_t rows = 1, cols = 8;
  DType tr = DType::F16, ty = DType::F32;
  bool in_place = true;  // h is x (the models' use) or a separate buffer
  int64_t offset = 0;    // elements before every view (misaligns the views unless a multiple of 8)
};

inline std::string describe(const WideCase& c) {
  return detail::cat("add_rms_norm ", c.rows, "x", c.cols, " r ", c.tr, " y ", c.ty, c.in_place ? " h=x" : " h",
                     " offset ", c.offset);
}

// Odd widths (scalar path), widths that are multiples of 8 (vectorized path, 4096 and 5120 model widths, beyond the
// register-resident limit at 16392), every r / y dtype, in place and not, aligned and offset views.
inline std::vector<WideCase> wide_cases() {
  std::vector<WideCase> out;
  const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 33}, {2, 4096}, {1, 4097}, {9, 256}, {2, 5120}, {1, 16392}};
  for (const auto& sh : shapes)
    for (DType tr : {DType::F16, DType::BF16})
      for (DType ty : float_dtypes()) {
        out.push_back({sh[0], sh[1], tr, ty, true, 0});
        if (ty == DType::F16) out.push_back({sh[0], sh[1], tr, ty, false, 3});
        if (ty == DType::BF16) out.push_back({sh[0], sh[1], tr, ty, false, 8});
      }
  return out;
}

// A [rows, cols] view `offset` elements into a poisoned allocation, holding v.
inline Buffer offset_view(const Device& dev, DType t, int64_t rows, int64_t cols, int64_t offset,
                          const std::vector<float>& v) {
  Buffer all = dev.alloc(t, Shape{offset + rows * cols + 5}).value();
  EXPECT_TRUE(all.fill_bytes(0xFF).is_ok());
  Buffer b = all.view(static_cast<size_t>(offset) * dtype_size(t), t, Shape{rows, cols}).value();
  if (!v.empty()) {
    const auto bytes = to_bytes(t, v);
    EXPECT_TRUE(b.upload(bytes.data(), bytes.size()).is_ok());
  }
  return b;
}

struct WideRun {
  Status status;
  std::vector<float> x, r, w, h, y;  // inputs as stored (r rounded to its dtype) and the outputs
};

inline WideRun run_wide(const Device& dev, const WideCase& c, uint64_t seed, float eps) {
  WideRun out;
  const auto n = static_cast<size_t>(c.rows * c.cols);
  out.x = randn(n, seed, 2.0f, 0.5f);  // a residual stream larger than the block output
  out.r = rounded(c.tr, randn(n, seed + 1));
  out.w = randn(static_cast<size_t>(c.cols), seed + 2, 0.2f, 1.0f);
  auto s = Session::create(dev).value();
  Buffer x = offset_view(dev, DType::F32, c.rows, c.cols, c.offset, out.x);
  Buffer r = offset_view(dev, c.tr, c.rows, c.cols, c.offset, out.r);
  Buffer w = make_buffer(dev, DType::F32, Shape{c.cols}, out.w);
  Buffer h = c.in_place ? x : offset_view(dev, DType::F32, c.rows, c.cols, c.offset, {});
  Buffer y = offset_view(dev, c.ty, c.rows, c.cols, c.offset, {});
  out.status = ops::add_rms_norm(s, x, r, w, h, y, {eps, 0.0f});
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.h = read_f32(h);
  out.y = read_f32(y);
  return out;
}

// h = x + r in f32 (r exact in f32), y = h * rsqrt(mean(h^2) + eps) * w in double.
inline void wide_reference(const WideCase& c, const WideRun& run, float eps, std::vector<float>& h,
                           std::vector<float>& y) {
  h.resize(run.x.size());
  y.resize(run.x.size());
  for (int64_t i = 0; i < c.rows; ++i) {
    double ss = 0.0;
    for (int64_t j = 0; j < c.cols; ++j) {
      const auto k = static_cast<size_t>(i * c.cols + j);
      h[k] = run.x[k] + run.r[k];
      ss += static_cast<double>(h[k]) * h[k];
    }
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(c.cols) + eps);
    for (int64_t j = 0; j < c.cols; ++j) {
      const auto k = static_cast<size_t>(i * c.cols + j);
      y[k] = static_cast<float>(h[k] * inv * run.w[static_cast<size_t>(j)]);
    }
  }
}

}  // namespace mlxn::test
