// rms_norm cases shared by the CPU test (against a double-precision reference written here) and the GPU test
// (CUDA against the CPU backend).
#pragma once

#include "test_util.h"

namespace mlxn::test {

struct NormCase {
  int64_t rows, cols;
  DType tx, tw, ty;
  bool weight;
  float w_offset;
  size_t x_offset_elems;  // x and y are views this many elements into larger allocations
};

// y = x * rsqrt(mean(x^2) + eps) * (w + offset) in double from the (already rounded) inputs.
inline std::vector<float> rms_norm_reference(const std::vector<float>& x, const std::vector<float>* w, int64_t rows,
                                             int64_t cols, float eps, float w_offset) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c) ss += static_cast<double>(x[r * cols + c]) * x[r * cols + c];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c) {
      double v = x[r * cols + c] * inv;
      if (w) v *= static_cast<double>((*w)[c]) + w_offset;
      y[r * cols + c] = static_cast<float>(v);
    }
  }
  return y;
}

struct NormRun {
  std::vector<float> x, w, y;
  Status status;
};

// Runs rms_norm on `dev` for case `c` with inputs drawn from `seed`; y is poisoned first.
inline NormRun run_rms_norm(const Device& dev, const NormCase& c, uint64_t seed, float eps = 1e-6f) {
  NormRun out;
  const size_t n = static_cast<size_t>(c.rows * c.cols);
  // Values with a per-row scale so rows differ in magnitude (the norm must undo it).
  out.x = randn(n, seed);
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t k = 0; k < c.cols; ++k) out.x[static_cast<size_t>(r * c.cols + k)] *= 0.1f + static_cast<float>(r % 7);
  out.x = rounded(c.tx, out.x);
  out.w = rounded(c.tw, randn(static_cast<size_t>(c.cols), seed + 1, 0.5f, 1.0f));
  auto xs = dev.alloc(c.tx, {static_cast<int64_t>(n + c.x_offset_elems)}).value();
  auto ys = dev.alloc(c.ty, {static_cast<int64_t>(n + c.x_offset_elems + 3)}).value();
  poison(ys);
  auto x = xs.view(c.x_offset_elems * dtype_size(c.tx), c.tx, {c.rows, c.cols}).value();
  auto y = ys.view(c.x_offset_elems * dtype_size(c.ty), c.ty, {c.rows, c.cols}).value();
  auto bytes = to_bytes(c.tx, out.x);
  EXPECT_TRUE(x.upload(bytes.data(), bytes.size()).is_ok());
  Buffer w;
  if (c.weight) w = make_buffer(dev, c.tw, {c.cols}, out.w);
  auto s = Session::create(dev).value();
  ops::RmsNormParams p;
  p.eps = eps;
  p.weight_offset = c.w_offset;
  out.status = ops::rms_norm(s, x, w, y, p);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.y = read_f32(y);
  // The bytes around the view are still poison.
  auto all = read_f32(ys);
  for (size_t i = 0; i < c.x_offset_elems; ++i) EXPECT_TRUE(std::isnan(all[i])) << "wrote before the view";
  for (size_t i = n + c.x_offset_elems; i < all.size(); ++i) EXPECT_TRUE(std::isnan(all[i])) << "wrote past the view";
  return out;
}

inline std::vector<NormCase> norm_cases(bool large) {
  std::vector<NormCase> cases;
  const std::vector<std::pair<int64_t, int64_t>> shapes =
      large ? std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 8}, {5, 31}, {33, 64}, {7, 128}, {2, 1000},
                                                       {4, 4096}, {3, 4097}, {2, 8192}, {1, 32768}, {2, 40000},
                                                       {1, 65537}, {300, 256}}
            : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 31}, {2, 128}, {1, 4096}, {2, 4097}};
  int i = 0;
  for (auto [rows, cols] : shapes) {
    for (DType tx : float_dtypes()) {
      for (DType ty : float_dtypes()) {
        const DType tw = (i % 2) ? DType::F32 : tx;
        const bool weight = i % 5 != 0;
        const float off = (i % 3 == 0) ? 1.0f : 0.0f;
        const size_t x_off = (i % 4 == 1) ? 1 : (i % 4 == 2) ? 8 : 0;  // 1 breaks 16-byte alignment
        cases.push_back({rows, cols, tx, tw, ty, weight, off, x_off});
        ++i;
      }
    }
  }
  return cases;
}

inline std::string describe(const NormCase& c) {
  return detail::cat(c.rows, "x", c.cols, " x=", c.tx, " w=", c.weight ? dtype_name(c.tw) : "none", " y=", c.ty,
                     " off=", c.w_offset, " view+", c.x_offset_elems);
}

}  // namespace mlxn::test
