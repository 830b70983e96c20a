// Softmax cases shared by the CPU test (against a double reference written here) and the GPU test (CUDA against
// the CPU backend).
#pragma once

#include <limits>

#include "test_util.h"

namespace mlxn::test {

// Absolute error floor of an output dtype: f16 results below 2^-14 are subnormal, spaced 2^-24 apart, so relative
// tolerances do not hold there.
inline double atol_for(DType t) { return t == DType::F16 ? 6e-8 : 1e-9; }

struct SoftmaxCase {
  int64_t rows, cols;
  DType tx, ty;
  int mask;  // 0 none, 1 one row broadcast to all, 2 rows / 2 rows (per-"head" repeat) with -inf entries
  DType tm;
  float scale;
  bool log;
  size_t off;             // x and y are views this many elements into larger allocations
  bool dead_row = false;  // mask kind 2: mask row 0 all -inf
};

inline std::string describe(const SoftmaxCase& c) {
  return detail::cat(c.log ? "log_softmax " : "softmax ", c.rows, "x", c.cols, " x=", c.tx, " y=", c.ty,
                     " mask=", c.mask, c.mask ? detail::cat("(", dtype_name(c.tm), ")") : std::string(),
                     " scale=", c.scale, " view+", c.off, c.dead_row ? " dead row" : "");
}

inline int64_t mask_rows_of(const SoftmaxCase& c) { return c.mask == 1 ? 1 : c.rows % 2 == 0 ? c.rows / 2 : c.rows; }

struct SoftmaxRun {
  std::vector<float> x, m, y;
  Status status;
};

inline SoftmaxRun run_softmax(const Device& dev, const SoftmaxCase& c, uint64_t seed) {
  SoftmaxRun out;
  const size_t n = static_cast<size_t>(c.rows * c.cols);
  out.x = rounded(c.tx, randn(n, seed, 3.0f));
  const float ninf = -std::numeric_limits<float>::infinity();
  if (c.mask) {
    const int64_t mr = mask_rows_of(c);
    out.m = rounded(c.tm, randn(static_cast<size_t>(mr * c.cols), seed + 1));
    for (size_t i = 0; i < out.m.size(); ++i)
      if (c.mask == 2 && i % 5 == 3) out.m[i] = ninf;
    if (c.dead_row)
      for (int64_t k = 0; k < c.cols; ++k) out.m[static_cast<size_t>(k)] = ninf;
  }
  auto xs = dev.alloc(c.tx, {static_cast<int64_t>(n + c.off)}).value();
  auto ys = dev.alloc(c.ty, {static_cast<int64_t>(n + c.off + 3)}).value();
  poison(ys);
  auto x = xs.view(c.off * dtype_size(c.tx), c.tx, {c.rows, c.cols}).value();
  auto y = ys.view(c.off * dtype_size(c.ty), c.ty, {c.rows, c.cols}).value();
  auto bytes = to_bytes(c.tx, out.x);
  EXPECT_TRUE(x.upload(bytes.data(), bytes.size()).is_ok());
  Buffer mask;
  if (c.mask) mask = make_buffer(dev, c.tm, {mask_rows_of(c), c.cols}, out.m);
  auto s = Session::create(dev).value();
  ops::SoftmaxParams p;
  p.scale = c.scale;
  out.status = c.log ? ops::log_softmax(s, x, mask, y, p) : ops::softmax(s, x, mask, y, p);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.y = read_f32(y);
  auto all = read_f32(ys);
  for (size_t i = 0; i < c.off; ++i) EXPECT_TRUE(std::isnan(all[i])) << "wrote before the view";
  for (size_t i = n + c.off; i < all.size(); ++i) EXPECT_TRUE(std::isnan(all[i])) << "wrote past the view";
  return out;
}

// Double reference from the definition: exp(t) / sum exp(t) with the max taken out for range only.
inline std::vector<float> softmax_reference(const SoftmaxCase& c, const SoftmaxRun& run) {
  std::vector<float> y(run.x.size());
  const int64_t mr = c.mask ? mask_rows_of(c) : 1;
  for (int64_t r = 0; r < c.rows; ++r) {
    std::vector<double> t(static_cast<size_t>(c.cols));
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < c.cols; ++k) {
      double v = static_cast<double>(run.x[static_cast<size_t>(r * c.cols + k)]) * c.scale;
      if (c.mask) v += run.m[static_cast<size_t>((r % mr) * c.cols + k)];
      t[static_cast<size_t>(k)] = v;
      mx = std::max(mx, v);
    }
    double sum = 0;
    for (double v : t) sum += std::isinf(v) ? 0.0 : std::exp(v - mx);
    for (int64_t k = 0; k < c.cols; ++k) {
      const double v = t[static_cast<size_t>(k)];
      double o;
      if (sum == 0) {
        o = c.log ? -std::numeric_limits<double>::infinity() : 0.0;
      } else {
        o = c.log ? v - mx - std::log(sum) : std::exp(v - mx) / sum;
      }
      y[static_cast<size_t>(r * c.cols + k)] = static_cast<float>(o);
    }
  }
  return y;
}

// |a - b| <= atol + rtol |b| elementwise, with equal infinities passing (log-softmax of masked columns).
inline double softmax_err(const std::vector<float>& a, const std::vector<float>& b, double atol, double rtol) {
  double worst = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (std::isinf(b[i]) && a[i] == b[i]) continue;
    if (std::isnan(a[i]) || std::isnan(b[i]) || std::isinf(a[i]) || std::isinf(b[i])) return INFINITY;
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / (atol + rtol * std::abs(b[i])));
  }
  return worst;
}

inline std::vector<SoftmaxCase> softmax_cases(bool large) {
  using P = std::pair<int64_t, int64_t>;
  // Large: rows that fit a block, rows split over a cluster (16384+ elements, 151936, 262144) and rows past the
  // cluster's reach (300000: the two-pass kernel).
  const std::vector<P> shapes =
      large ? std::vector<P>{{1, 1},       {3, 7},      {4, 8},      {6, 64},    {5, 100},    {2, 1000},
                             {4, 4096},    {3, 4097},   {2, 32768},  {2, 40000}, {4, 151936}, {1, 151936},
                             {32, 151936}, {1, 262144}, {1, 300000}, {130, 256}}
            : std::vector<P>{{1, 1}, {3, 7}, {4, 64}, {2, 1000}, {1, 4096}, {2, 4097}};
  std::vector<SoftmaxCase> cases;
  int i = 0;
  for (auto [rows, cols] : shapes) {
    for (DType tx : float_dtypes()) {
      for (DType ty : float_dtypes()) {
        const int mask = i % 3;
        const DType tm = float_dtypes()[static_cast<size_t>(i / 3) % 3];
        const float scale = i % 4 == 0 ? 1.0f : 0.125f;
        const bool log = i % 5 == 2;
        const size_t off = (i % 4 == 1) ? 1 : (i % 4 == 2) ? 8 : 0;
        cases.push_back({rows, cols, tx, ty, mask, tm, scale, log, off, mask == 2 && i % 7 == 2});
        ++i;
      }
    }
  }
  return cases;
}

}  // namespace mlxn::test
