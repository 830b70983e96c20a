// Cases of the general normalisation ops (add_rms_norm, rms_norm_add, group_rms_norm, layer_norm, l2_norm), shared by
// the CPU test (against a double reference written here) and the GPU test (CUDA against the CPU backend).
#pragma once

#include <algorithm>

#include "test_util.h"

namespace mlxn::test {

enum class Norm2Op { AddRms, RmsAdd, Group, Layer, L2 };

inline const char* norm2_name(Norm2Op op) {
  switch (op) {
    case Norm2Op::AddRms:
      return "add_rms_norm";
    case Norm2Op::RmsAdd:
      return "rms_norm_add";
    case Norm2Op::Group:
      return "group_rms_norm";
    case Norm2Op::Layer:
      return "layer_norm";
    case Norm2Op::L2:
      return "l2_norm";
  }
  return "?";
}

struct Norm2Case {
  Norm2Op op;
  int64_t rows, cols;  // x is rows x cols
  int64_t group;       // group_rms_norm's group size (else cols)
  DType tx, tw, ty;
  bool weight, bias;
  float w_offset;
  size_t off;  // every tensor of rows x cols is a view this many elements into a larger allocation
};

struct Norm2Run {
  std::vector<float> x, r, w, b, h, y;
  Status status;
};

inline std::string describe(const Norm2Case& c) {
  return detail::cat(norm2_name(c.op), " ", c.rows, "x", c.cols, " group=", c.group, " x=", c.tx,
                     " w=", c.weight ? dtype_name(c.tw) : "none", " b=", c.bias ? dtype_name(c.tw) : "none",
                     " y=", c.ty, " off=", c.w_offset, " view+", c.off);
}

inline bool has_r(const Norm2Case& c) { return c.op == Norm2Op::AddRms || c.op == Norm2Op::RmsAdd; }

// A rows x cols view `off` elements into an allocation with 3 spare elements after it, poisoned when asked.
inline Buffer view_in(const Device& dev, DType t, int64_t rows, int64_t cols, size_t off, bool poisoned,
                      Buffer* whole = nullptr) {
  auto all = dev.alloc(t, {static_cast<int64_t>(static_cast<size_t>(rows * cols) + off + 3)}).value();
  if (poisoned) poison(all);
  if (whole) *whole = all;
  return all.view(off * dtype_size(t), t, {rows, cols}).value();
}

inline Norm2Run run_norm2(const Device& dev, const Norm2Case& c, uint64_t seed, float eps) {
  Norm2Run out;
  const size_t n = static_cast<size_t>(c.rows * c.cols);
  const int64_t wn = c.op == Norm2Op::Group ? c.group : c.cols;
  out.x = randn(n, seed);
  // Rows of different magnitudes and (for LayerNorm) a mean far from zero: the norm must undo both.
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t k = 0; k < c.cols; ++k) {
      float& v = out.x[static_cast<size_t>(r * c.cols + k)];
      v = v * (0.1f + static_cast<float>(r % 7)) + (c.op == Norm2Op::Layer ? 3.0f * static_cast<float>(r % 3) : 0.0f);
    }
  out.x = rounded(c.tx, out.x);
  out.r = rounded(c.tx, randn(n, seed + 1, 2.0f));
  out.w = rounded(c.tw, randn(static_cast<size_t>(wn), seed + 2, 0.5f, 1.0f));
  out.b = rounded(c.tw, randn(static_cast<size_t>(wn), seed + 3, 0.5f));
  auto x = view_in(dev, c.tx, c.rows, c.cols, c.off, false);
  EXPECT_TRUE(x.upload(to_bytes(c.tx, out.x).data(), n * dtype_size(c.tx)).is_ok());
  Buffer r, h, hs, ys;
  if (has_r(c)) {
    r = view_in(dev, c.tx, c.rows, c.cols, c.off, false);
    EXPECT_TRUE(r.upload(to_bytes(c.tx, out.r).data(), n * dtype_size(c.tx)).is_ok());
  }
  if (c.op == Norm2Op::AddRms) h = view_in(dev, c.tx, c.rows, c.cols, c.off, true, &hs);
  auto y = view_in(dev, c.ty, c.rows, c.cols, c.off, true, &ys);
  Buffer w = c.weight ? make_buffer(dev, c.tw, {wn}, out.w) : Buffer();
  Buffer b = c.bias ? make_buffer(dev, c.tw, {wn}, out.b) : Buffer();
  auto s = Session::create(dev).value();
  ops::RmsNormParams rp;
  rp.eps = eps;
  rp.weight_offset = c.w_offset;
  switch (c.op) {
    case Norm2Op::AddRms:
      out.status = ops::add_rms_norm(s, x, r, w, h, y, rp);
      break;
    case Norm2Op::RmsAdd:
      out.status = ops::rms_norm_add(s, x, w, r, y, rp);
      break;
    case Norm2Op::Group:
      out.status = ops::group_rms_norm(s, x, w, y, c.group, rp);
      break;
    case Norm2Op::Layer:
      out.status = ops::layer_norm(s, x, w, b, y, {eps});
      break;
    case Norm2Op::L2:
      out.status = ops::l2_norm(s, x, y, {eps});
      break;
  }
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.y = read_f32(y);
  if (h.valid()) out.h = read_f32(h);
  // The elements around the views are still poison.
  for (const Buffer* whole : {&ys, &hs}) {
    if (!whole->valid()) continue;
    auto all = read_f32(*whole);
    for (size_t i = 0; i < c.off; ++i) EXPECT_TRUE(std::isnan(all[i])) << "wrote before the view";
    for (size_t i = n + c.off; i < all.size(); ++i) EXPECT_TRUE(std::isnan(all[i])) << "wrote past the view";
  }
  return out;
}

inline std::vector<Norm2Case> norm2_cases(bool large) {
  using P = std::pair<int64_t, int64_t>;
  const std::vector<P> shapes =
      large ? std::vector<P>{{1, 1},    {3, 8},    {5, 31},    {33, 64},   {7, 128},   {2, 1000}, {4, 4096},
                             {3, 4097}, {2, 8192}, {1, 32768}, {2, 40000}, {300, 256}, {1, 4096}}
            : std::vector<P>{{1, 1}, {3, 31}, {2, 128}, {1, 4096}, {2, 4097}};
  // group_rms_norm: (rows, heads x head_dim, head_dim) of q/k norms, odd head dims too.
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> groups =
      large ? std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 32 * 128, 128}, {7, 8 * 128, 128}, {5, 4 * 64, 64},
                                                                 {3, 8 * 256, 256},  {9, 3 * 96, 96},   {2, 5 * 7, 7},
                                                                 {33, 2 * 16, 16},   {4, 2 * 8, 8}}
            : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{3, 4 * 128, 128}, {2, 3 * 7, 7}, {5, 2 * 8, 8}};
  std::vector<Norm2Case> cases;
  int i = 0;
  for (Norm2Op op : {Norm2Op::AddRms, Norm2Op::RmsAdd, Norm2Op::Layer, Norm2Op::L2, Norm2Op::Group}) {
    std::vector<std::tuple<int64_t, int64_t, int64_t>> dims;
    if (op == Norm2Op::Group) {
      dims = groups;
    } else {
      for (auto [r, c] : shapes) dims.emplace_back(r, c, c);
    }
    for (auto [rows, cols, group] : dims) {
      for (DType tx : float_dtypes()) {
        for (DType ty : float_dtypes()) {
          const DType tw = (i % 2) ? DType::F32 : tx;
          const bool weight = op != Norm2Op::L2 && i % 5 != 0;
          const bool bias = op == Norm2Op::Layer && i % 3 != 1;
          const float w_off = op != Norm2Op::Layer && op != Norm2Op::L2 && i % 3 == 0 ? 1.0f : 0.0f;
          const size_t off = (i % 4 == 1) ? 1 : (i % 4 == 2) ? 8 : 0;  // 1 breaks 16-byte alignment
          cases.push_back({op, rows, cols, group, tx, tw, ty, weight, bias, w_off, off});
          ++i;
        }
      }
    }
  }
  return cases;
}

// The double-precision reference of case c from the run's (rounded) inputs: {h, y}.
inline std::pair<std::vector<float>, std::vector<float>> norm2_reference(const Norm2Case& c, const Norm2Run& run,
                                                                         float eps) {
  const size_t n = static_cast<size_t>(c.rows * c.cols);
  std::vector<float> h(n), y(n);
  const int64_t g = c.op == Norm2Op::Group ? c.group : c.cols;
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) {
    v[i] = run.x[i];
    if (c.op == Norm2Op::AddRms) {
      h[i] = round_to(c.tx, run.x[i] + run.r[i]);
      v[i] = h[i];
    }
  }
  for (size_t s = 0; s < n; s += static_cast<size_t>(g)) {  // each normalised run of g elements
    double sum = 0, sq = 0;
    for (int64_t k = 0; k < g; ++k) {
      sum += v[s + k];
      sq += v[s + k] * v[s + k];
    }
    const double mean = sum / g;
    double var = 0;
    for (int64_t k = 0; k < g; ++k) var += (v[s + k] - mean) * (v[s + k] - mean);
    var /= g;
    for (int64_t k = 0; k < g; ++k) {
      double o;
      if (c.op == Norm2Op::Layer) {
        o = (v[s + k] - mean) / std::sqrt(var + eps);
        if (c.weight) o *= run.w[k];
        if (c.bias) o += run.b[k];
      } else if (c.op == Norm2Op::L2) {
        o = v[s + k] / std::max(std::sqrt(sq), static_cast<double>(eps));
      } else {
        o = v[s + k] / std::sqrt(sq / g + eps);
        if (c.weight) o *= static_cast<double>(run.w[k]) + c.w_offset;
        if (c.op == Norm2Op::RmsAdd) o += run.r[s + k];
      }
      y[s + k] = static_cast<float>(o);
    }
  }
  return {h, y};
}

}  // namespace mlxn::test
