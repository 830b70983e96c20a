// Activation cases shared by the CPU test (against a double reference written here) and the GPU test (CUDA against
// the CPU backend).
#pragma once

#include <numbers>

#include "test_util.h"

namespace mlxn::test {

// What is run: a unary function, a gated one on two tensors, or a gated one on one [.., 2F] tensor.
enum class ActForm { Unary, Gated, Split };

struct ActCase {
  ActForm form;
  int op;              // ops::Activation, or -1 for softcap (unary only)
  int64_t rows, cols;  // output shape
  DType tx, ty;
  size_t off;  // inputs and output are views this many elements into larger allocations
};

inline const char* act_name(int op) {
  switch (op) {
    case 0:
      return "silu";
    case 1:
      return "gelu";
    case 2:
      return "gelu_tanh";
    case 3:
      return "sigmoid";
    default:
      return "softcap";
  }
}

inline std::string describe(const ActCase& c) {
  const char* form = c.form == ActForm::Unary ? "unary" : c.form == ActForm::Gated ? "gated" : "split";
  return detail::cat(form, " ", act_name(c.op), " ", c.rows, "x", c.cols, " x=", c.tx, " y=", c.ty, " view+", c.off);
}

// Absolute error floor of an output dtype: f16 results below 2^-14 are subnormal, spaced 2^-24 apart, so relative
// tolerances do not hold there.
inline double atol_for(DType t) { return t == DType::F16 ? 6e-8 : 1e-9; }

inline constexpr float kSoftcap = 5.0f;

// The function in double, written from the definitions (not from the library's code).
inline double act_ref(int op, double x) {
  switch (op) {
    case 0:
      return x * (1.0 / (1.0 + std::exp(-x)));
    case 1:
      return x * 0.5 * std::erfc(-x / std::numbers::sqrt2);
    case 2:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * std::pow(x, 3))));
    case 3:
      return 1.0 / (1.0 + std::exp(-x));
    default:
      return kSoftcap * std::tanh(x / kSoftcap);
  }
}

struct ActRun {
  std::vector<float> g, u, y;  // gate (or x), up (gated forms), output
  Status status;
};

inline ActRun run_act(const Device& dev, const ActCase& c, uint64_t seed) {
  ActRun out;
  const size_t n = static_cast<size_t>(c.rows * c.cols);
  // Spread wide enough to reach the tails of every function (and exp overflow for silu).
  out.g = rounded(c.tx, randn(n, seed, 4.0f));
  if (n > 0) out.g[0] = round_to(c.tx, -100.0f);
  if (n > 1) out.g[1] = round_to(c.tx, 60.0f);
  out.u = rounded(c.tx, randn(n, seed + 1));
  auto upload = [&](const Buffer& b, const std::vector<float>& v) {
    auto bytes = to_bytes(b.dtype(), v);
    EXPECT_TRUE(b.upload(bytes.data(), bytes.size()).is_ok());
  };
  auto ys = dev.alloc(c.ty, {static_cast<int64_t>(n + c.off + 3)}).value();
  poison(ys);
  auto y = ys.view(c.off * dtype_size(c.ty), c.ty, {c.rows, c.cols}).value();
  auto s = Session::create(dev).value();
  const auto act = static_cast<ops::Activation>(c.op);
  if (c.form == ActForm::Split) {
    // [rows, 2 cols]: gate columns first, then up.
    std::vector<float> gu(2 * n);
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t k = 0; k < c.cols; ++k) {
        gu[static_cast<size_t>(r * 2 * c.cols + k)] = out.g[static_cast<size_t>(r * c.cols + k)];
        gu[static_cast<size_t>(r * 2 * c.cols + c.cols + k)] = out.u[static_cast<size_t>(r * c.cols + k)];
      }
    auto all = dev.alloc(c.tx, {static_cast<int64_t>(2 * n + c.off)}).value();
    auto b = all.view(c.off * dtype_size(c.tx), c.tx, {c.rows, 2 * c.cols}).value();
    upload(b, gu);
    out.status = ops::glu_split(s, act, b, y);
  } else {
    auto ga = dev.alloc(c.tx, {static_cast<int64_t>(n + c.off)}).value();
    auto g = ga.view(c.off * dtype_size(c.tx), c.tx, {c.rows, c.cols}).value();
    upload(g, out.g);
    if (c.form == ActForm::Gated) {
      auto u = make_buffer(dev, c.tx, {c.rows, c.cols}, out.u);
      out.status = ops::glu(s, act, g, u, y);
    } else {
      out.status = c.op < 0 ? ops::softcap(s, g, y, kSoftcap) : ops::activation(s, act, g, y);
    }
  }
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.y = read_f32(y);
  auto all = read_f32(ys);
  for (size_t i = 0; i < c.off; ++i) EXPECT_TRUE(std::isnan(all[i])) << "wrote before the view";
  for (size_t i = n + c.off; i < all.size(); ++i) EXPECT_TRUE(std::isnan(all[i])) << "wrote past the view";
  return out;
}

inline std::vector<double> act_reference(const ActCase& c, const ActRun& run) {
  std::vector<double> y(run.g.size());
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = act_ref(c.op, run.g[i]);
    if (c.form != ActForm::Unary) y[i] *= run.u[i];
  }
  return y;
}

inline std::vector<ActCase> act_cases(bool large) {
  using P = std::pair<int64_t, int64_t>;
  const std::vector<P> shapes =
      large ? std::vector<P>{{1, 1}, {1, 7}, {3, 33}, {1, 4097}, {2, 8}, {5, 1000}, {16, 4096}, {3, 14336}, {1, 100003}}
            : std::vector<P>{{1, 1}, {1, 7}, {3, 33}, {2, 8}, {4, 1000}};
  std::vector<ActCase> cases;
  int i = 0;
  for (ActForm form : {ActForm::Unary, ActForm::Gated, ActForm::Split}) {
    for (int op = form == ActForm::Unary ? -1 : 0; op < 4; ++op) {
      for (auto [rows, cols] : shapes) {
        for (DType tx : float_dtypes()) {
          // Every output dtype for half the shapes, y = x's dtype for the others.
          for (DType ty : float_dtypes()) {
            if (ty != tx && i % 2 == 1) continue;
            const size_t off = (i % 3 == 1) ? 1 : (i % 3 == 2) ? 8 : 0;
            cases.push_back({form, op, rows, cols, tx, ty, off});
          }
          ++i;
        }
      }
    }
  }
  return cases;
}

}  // namespace mlxn::test
