// The fused quantized matmul (ops::MatmulFusion: RMSNorm of x's rows with a weight, and a residual added to the
// product), shared by the CPU test and the GPU test. The reference is computed here from the dequantized weights
// (QWeights::w) in float64, independently of the library's CPU op, together with the error bound of each output
// for the two ways the library computes it: exactly (the CPU) and through the int8 decode kernel (CUDA, M <= 4).
#pragma once

#include <optional>

#include "qmatmul_cases.h"

namespace mlxn::test {

enum class FusedResidual {
  None,      // y = g x' W^T
  Separate,  // y = r + g x' W^T, r a buffer of its own
  InPlace,   // y += g x' W^T (the residual is y itself)
};

inline const char* residual_name(FusedResidual r) {
  return r == FusedResidual::None ? "none" : r == FusedResidual::Separate ? "separate" : "in-place";
}

struct FusedCase {
  QMatmulCase q{};          // weight format, M, N, K and x's dtype (x_row_pad unused: x is contiguous)
  DType ty = DType::F32;    // y's (and the residual's) dtype
  std::optional<DType> tn;  // the norm weight's dtype; none: no norm (g = 1, no weight factor)
  float norm_offset = 0.0f;
  FusedResidual residual = FusedResidual::None;
  float eps = 1e-6f;
  // x's standard deviation: away from 1 so that a result missing the row scale g (about 1 / x_scale) cannot pass.
  float x_scale = 3.0f;
};

inline std::string describe(const FusedCase& c) {
  return detail::cat(describe(c.q), " y=", c.ty, " norm=", c.tn ? std::string(dtype_name(*c.tn)) : "none",
                     " offset=", c.norm_offset, " residual=", residual_name(c.residual), " eps=", c.eps,
                     " x_scale=", c.x_scale);
}

// The inputs of a case as their dtypes hold them, and the reference split into its parts, so that a test can
// assemble y = r + reps * delta for a residual accumulated over `reps` runs.
struct FusedData {
  std::vector<float> x;       // [M, K], rounded to x's dtype
  std::vector<float> norm;    // [K], rounded to the norm's dtype (empty without a norm)
  std::vector<float> r;       // [M, N], rounded to y's dtype so the residual is exact in y (empty without one)
  std::vector<double> g;      // [M]: 1 / sqrt(mean_k x^2 + eps), or 1 without a norm
  std::vector<double> delta;  // [M, N]: g_m sum_k xe[m, k] W(n, k), xe = x * (norm + offset)
  // [M, N]: bounds on the error of delta, before y's rounding. exact_err, 1e-6 g sum_k |xe W|: xe rounded to f32
  // once (the CPU op; 2^-24 of each term) and g from an f32 mean of squares and rsqrt (the CUDA kernel; a few f32
  // roundings of g). int8_err: the int8 kernel, g times the quantization of xe per 32-element block (int8_x_bound
  // of xe) plus f32 rounding of the block terms and scales (1e-5 sum|xe| max|W|, as qmatmul_err_int8), plus
  // exact_err.
  std::vector<double> exact_err, int8_err;
};

inline FusedData make_fused_data(const FusedCase& c, const QWeights& q, uint64_t seed) {
  const int64_t M = c.q.M, N = c.q.N, K = c.q.K;
  FusedData d;
  d.x = rounded(c.q.tx, randn(static_cast<size_t>(M * K), seed + 11, c.x_scale));
  // Effective weights norm + offset around 1 +- 0.5 whatever the offset (so some are negative), as trained RMSNorm
  // weights are (Gemma stores w - 1 and adds the 1 back: offset 1).
  if (c.tn) d.norm = rounded(*c.tn, randn(static_cast<size_t>(K), seed + 13, 0.5f, 1.0f - c.norm_offset));
  d.g.assign(static_cast<size_t>(M), 1.0);
  d.delta.resize(static_cast<size_t>(M * N));
  d.exact_err.resize(d.delta.size());
  d.int8_err.resize(d.delta.size());
  std::vector<float> xe(static_cast<size_t>(K));  // one row of x * (norm + offset), as the kernel forms it in f32
  std::vector<double> wmax(static_cast<size_t>(N), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      wmax[static_cast<size_t>(n)] =
          std::max(wmax[static_cast<size_t>(n)], std::abs(static_cast<double>(q.w[n * K + k])));
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = d.x.data() + m * K;
    double ss = 0;
    for (int64_t k = 0; k < K; ++k) ss += static_cast<double>(xr[k]) * xr[k];
    std::vector<double> xe64(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k)
      xe64[static_cast<size_t>(k)] =
          c.tn ? static_cast<double>(xr[k]) * (static_cast<double>(d.norm[static_cast<size_t>(k)]) + c.norm_offset)
               : static_cast<double>(xr[k]);
    if (c.tn) d.g[static_cast<size_t>(m)] = 1.0 / std::sqrt(ss / static_cast<double>(K) + static_cast<double>(c.eps));
    for (int64_t k = 0; k < K; ++k) xe[static_cast<size_t>(k)] = static_cast<float>(xe64[static_cast<size_t>(k)]);
    const double g = d.g[static_cast<size_t>(m)];
    double axe = 0;
    for (double v : xe64) axe += std::abs(v);
    for (int64_t n = 0; n < N; ++n) {
      const float* wr = q.w.data() + n * K;
      double dot = 0, axw = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double t = xe64[static_cast<size_t>(k)] * wr[k];
        dot += t;
        axw += std::abs(t);
      }
      const size_t i = static_cast<size_t>(m * N + n);
      d.delta[i] = g * dot;
      d.exact_err[i] = 1e-6 * g * axw;
      d.int8_err[i] = g * (int8_x_bound(xe.data(), wr, K) + 1e-5 * axe * wmax[static_cast<size_t>(n)]) + d.exact_err[i];
    }
  }
  // The residual, drawn after the rest: at several times the mean int8 bound (which grows with K, to the size of the
  // products themselves at K ~ 10^4), so that a result missing it cannot pass the GPU test.
  if (c.residual != FusedResidual::None) {
    double mean_bound = 0;
    for (double b : d.int8_err) mean_bound += b / static_cast<double>(d.int8_err.size());
    const float scale = static_cast<float>(std::max(4.0, 4.0 * mean_bound));
    d.r = rounded(c.ty, randn(static_cast<size_t>(M * N), seed + 17, scale));
  }
  return d;
}

// The reference after `reps` runs of the op on the same buffers (reps > 1: the in-place residual accumulates).
inline double fused_ref(const FusedData& d, size_t i, int reps = 1) {
  return (d.r.empty() ? 0.0 : static_cast<double>(d.r[i])) + reps * d.delta[i];
}

// Largest |y - ref| / bound over the outputs (<= 1 passes; a non-finite y fails). The bound is reps times the
// error of delta (the int8 kernel's, or the exact evaluation's) plus one rounding to y's dtype per run, of that
// run's result (the residual itself is exact in y's dtype).
inline double fused_err(const std::vector<float>& y, const FusedCase& c, const FusedData& d, bool int8, int reps = 1) {
  if (y.size() != d.delta.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) return INFINITY;
    double bound = reps * (int8 ? d.int8_err[i] : d.exact_err[i]) + 1e-30;
    for (int j = 1; j <= reps; ++j) bound += rtol_for(c.ty) * std::abs(fused_ref(d, i, j));
    worst = std::max(worst, std::abs(y[i] - fused_ref(d, i, reps)) / bound);
  }
  return worst;
}

// A case's buffers on a device: the weight (GGML blocks, or the affine triple), x, the norm weight, the residual
// (y itself in place) and y (poisoned unless it holds the residual).
struct FusedBuffers {
  Buffer w;
  ops::AffineWeight aw;
  Buffer x, y;
  ops::MatmulFusion f;
};

inline FusedBuffers make_fused_buffers(const Device& dev, const FusedCase& c, const QWeights& q, const FusedData& d) {
  FusedBuffers b;
  const int64_t M = c.q.M, N = c.q.N, K = c.q.K;
  if (c.q.tw == DType::U32) {
    b.aw.bits = c.q.bits;
    b.aw.group_size = c.q.group;
    b.aw.packed = dev.alloc(DType::U32, {N, K * c.q.bits / 32}).value();
    b.aw.scales = dev.alloc(c.q.ts, {N, K / c.q.group}).value();
    b.aw.biases = dev.alloc(c.q.ts, {N, K / c.q.group}).value();
    EXPECT_TRUE(b.aw.packed.upload(q.blocks.data(), q.blocks.size()).is_ok());
    EXPECT_TRUE(b.aw.scales.upload(q.scales.data(), q.scales.size()).is_ok());
    EXPECT_TRUE(b.aw.biases.upload(q.biases.data(), q.biases.size()).is_ok());
  } else {
    b.w = dev.alloc(c.q.tw, {N, K}).value();
    EXPECT_TRUE(b.w.upload(q.blocks.data(), q.blocks.size()).is_ok());
  }
  b.x = make_buffer(dev, c.q.tx, {M, K}, d.x);
  if (c.tn) b.f.norm = make_buffer(dev, *c.tn, {K}, d.norm);
  b.f.norm_offset = c.norm_offset;
  b.f.eps = c.eps;
  if (c.residual == FusedResidual::InPlace) {
    b.y = make_buffer(dev, c.ty, {M, N}, d.r);
    b.f.residual = b.y;
  } else {
    b.y = dev.alloc(c.ty, {M, N}).value();
    poison(b.y);
    if (c.residual == FusedResidual::Separate) b.f.residual = make_buffer(dev, c.ty, {M, N}, d.r);
  }
  return b;
}

// Records the fused op of a case into a session (eagerly, or into a capture).
inline Status record_fused(Session& s, const FusedCase& c, const FusedBuffers& b) {
  return c.q.tw == DType::U32 ? ops::matmul_affine(s, b.x, b.aw, b.y, b.f) : ops::matmul(s, b.x, b.w, b.y, b.f);
}

struct FusedRun {
  std::vector<float> y;
  Status status;
};

// Runs a case once in a fresh session on `dev` and reads y back.
inline FusedRun run_fused(const Device& dev, const FusedCase& c, const QWeights& q, const FusedData& d) {
  FusedRun out;
  const auto b = make_fused_buffers(dev, c, q, d);
  auto s = Session::create(dev).value();
  out.status = record_fused(s, c, b);
  if (out.status.is_ok()) out.status = s.finish();
  if (out.status.is_ok()) out.y = read_f32(b.y);
  return out;
}

// A weight format of the cases: a GGML block type, or MLX affine (tw = U32) with its bits, group and scales' dtype.
struct FusedWeight {
  DType tw;
  int bits = 0;
  int group = 0;
  DType ts = DType::F16;
  // K must be a whole number of these.
  int64_t block() const { return tw == DType::U32 ? group : dtype_info(tw).block_elems; }
};

// Every GGML weight format and MLX affine at 4 and 8 bits (group 64).
inline std::vector<FusedWeight> fused_weights() {
  std::vector<FusedWeight> ws;
  for (DType t : qmatmul_formats()) ws.push_back(FusedWeight{t, 0, 0, DType::F16});
  ws.push_back(FusedWeight{DType::U32, 4, 64, DType::F16});
  ws.push_back(FusedWeight{DType::U32, 8, 64, DType::BF16});
  return ws;
}

inline FusedCase fused_case(const FusedWeight& w, int64_t M, int64_t N, int64_t K, DType tx, DType ty,
                            std::optional<DType> tn, float offset, FusedResidual residual) {
  FusedCase c;
  c.q = QMatmulCase{w.tw, w.bits, w.group, w.ts, M, N, K, tx, 0};
  c.ty = ty;
  c.tn = tn;
  c.norm_offset = offset;
  c.residual = residual;
  return c;
}

// The gated form (MatmulFusion::glu, SiLU): W of 2N rows, y[m, n] = silu(a) * b with a = delta[m, n] and
// b = delta[m, N + n] of the 2N-row case (norm as in c, no residual). Runs it on `dev` (y poisoned) and returns the
// largest |y - ref| / bound: with da, db the bounds of a and b (int8 or exact, as fused_err), |silu'| <= 1.1 and
// |silu(a)| <= |a|, |y - ref| <= 1.1 da |b| + |silu(a)| db + 1.1 da db, plus one rounding to y's dtype.
inline double run_glu_err(const Device& dev, const FusedCase& c2n, const QWeights& q, const FusedData& d, bool int8,
                          Status* status) {
  const int64_t M = c2n.q.M, N = c2n.q.N / 2;
  FusedBuffers b = make_fused_buffers(dev, c2n, q, d);
  b.y = dev.alloc(c2n.ty, {M, N}).value();
  poison(b.y);
  b.f.glu = true;
  b.f.act = ops::Activation::Silu;
  auto s = Session::create(dev).value();
  *status = ops::matmul(s, b.x, b.w, b.y, b.f);
  if (status->is_ok()) *status = s.finish();
  if (!status->is_ok()) return INFINITY;
  const auto y = read_f32(b.y);
  const auto& err = int8 ? d.int8_err : d.exact_err;
  double worst = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const size_t ia = static_cast<size_t>(m * 2 * N + n), ib = ia + static_cast<size_t>(N);
      const double a = d.delta[ia], bv = d.delta[ib], sa = a / (1.0 + std::exp(-a));
      const double ref = sa * bv;
      const double bound = 1.1 * err[ia] * std::abs(bv) + std::abs(sa) * err[ib] + 1.1 * err[ia] * err[ib] +
                           rtol_for(c2n.ty) * std::abs(ref) + 1e-30;
      const float yv = y[static_cast<size_t>(m * N + n)];
      if (!std::isfinite(yv)) return INFINITY;
      worst = std::max(worst, std::abs(yv - ref) / bound);
    }
  return worst;
}

// One gated case on `dev` against its bound.
inline void expect_glu_matches(const Device& dev, const FusedCase& c2n, uint64_t seed, bool int8) {
  SCOPED_TRACE(describe(c2n));
  const auto q = make_qweights(c2n.q, seed);
  const auto d = make_fused_data(c2n, q, seed);
  Status st;
  EXPECT_LE(run_glu_err(dev, c2n, q, d, int8, &st), 1.0);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

// The gated form on zero-filled buffers of M rows, a Q8_0 W of `w_rows` x 256 and y of M x y_cols (error paths).
inline Status glu_call(const Device& dev, int64_t M, int64_t w_rows, int64_t y_cols) {
  auto s = Session::create(dev).value();
  ops::MatmulFusion f;
  f.glu = true;
  auto x = dev.alloc(DType::F32, {M, 256}).value();
  auto w = dev.alloc(DType::Q8_0, {w_rows, 256}).value();
  auto y = dev.alloc(DType::F32, {M, y_cols}).value();
  EXPECT_TRUE(x.fill_bytes(0).is_ok());
  EXPECT_TRUE(w.fill_bytes(0).is_ok());
  Status st = ops::matmul(s, x, w, y, f);
  if (st.is_ok()) st = s.finish();
  return st;
}

}  // namespace mlxn::test
