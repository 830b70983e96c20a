// Expert-routed matmul cases shared by the CPU and GPU tests: stacked expert weights (quantized with our reference
// quantizers, or floats), random expert ids (repeats, and ids outside [0, E) where asked), x per token or per slot,
// and a float64 reference computed here from the dequantized weights.
#pragma once

#include "qmatmul_cases.h"

namespace mlxn::test {

struct ExpertsCase {
  DType tw;  // GGML weight format or a float type
  DType tx;
  int64_t E, N, K, T, k;
  bool per_slot;  // x is [T, k, K]
  bool bad_ids;   // some ids are -1 or E
};

inline std::string describe(const ExpertsCase& c) {
  return detail::cat(c.tw, " x=", c.tx, " E=", c.E, " N=", c.N, " K=", c.K, " T=", c.T, " k=", c.k,
                     c.per_slot ? " x per slot" : " x per token", c.bad_ids ? " with bad ids" : "");
}

inline bool dense_dtype(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

struct ExpertsData {
  std::vector<uint8_t> wbytes;
  std::vector<float> w;  // [E * N, K] as the reference sees it
  std::vector<float> x;  // rows as rounded to tx
  std::vector<int32_t> ids;
};

inline ExpertsData make_experts_data(const ExpertsCase& c, uint64_t seed) {
  ExpertsData d;
  if (dense_dtype(c.tw)) {
    d.w = rounded(c.tw, randn(static_cast<size_t>(c.E * c.N * c.K), seed, 0.5f));
    d.wbytes = to_bytes(c.tw, d.w);
  } else {
    const QMatmulCase qc{c.tw, 0, 0, DType::F16, 1, c.E * c.N, c.K, DType::F32, 0};
    auto q = make_qweights(qc, seed);
    d.wbytes = std::move(q.blocks);
    d.w = std::move(q.w);
  }
  const int64_t xrows = c.per_slot ? c.T * c.k : c.T;
  d.x = rounded(c.tx, randn(static_cast<size_t>(xrows * c.K), seed + 3));
  std::mt19937_64 g(seed + 5);
  d.ids.resize(static_cast<size_t>(c.T * c.k));
  for (auto& id : d.ids) id = static_cast<int32_t>(g() % static_cast<uint64_t>(c.E));
  if (c.bad_ids && d.ids.size() >= 2) {
    d.ids[1] = -1;
    d.ids.back() = static_cast<int32_t>(c.E);
  }
  return d;
}

struct ExpertsRun {
  std::vector<float> y;
  std::vector<double> ref, sum_xw, sum_x_wmax, xq_bound;
  Status status;
};

// The float64 product of slot z's x row with expert row n, and the terms of its error bound.
struct RowRef {
  double acc = 0, axw = 0, ax_wmax = 0, xq = 0;
};
inline RowRef row_ref(const ExpertsCase& c, const ExpertsData& d, int64_t z, int64_t e, int64_t n) {
  const float* xr = d.x.data() + (c.per_slot ? z : z / c.k) * c.K;
  const float* wr = d.w.data() + (e * c.N + n) * c.K;
  RowRef r;
  double ax = 0, wmax = 0;
  for (int64_t kk = 0; kk < c.K; ++kk) {
    r.acc += static_cast<double>(xr[kk]) * wr[kk];
    r.axw += std::abs(static_cast<double>(xr[kk]) * wr[kk]);
    ax += std::abs(static_cast<double>(xr[kk]));
    wmax = std::max(wmax, std::abs(static_cast<double>(wr[kk])));
  }
  r.ax_wmax = ax * wmax;
  r.xq = int8_x_bound(xr, wr, c.K);
  return r;
}

// The device buffers of a case: the stacked weights of `d`, x and ids, and a poisoned y.
struct ExpertsIo {
  Buffer w, x, ids, y;
};
inline ExpertsIo experts_io(const Device& dev, const ExpertsCase& c, const ExpertsData& d) {
  ExpertsIo io;
  io.w = dev.alloc(c.tw, {c.E, c.N, c.K}).value();
  EXPECT_TRUE(io.w.upload(d.wbytes.data(), d.wbytes.size()).is_ok());
  io.x = make_buffer(dev, c.tx, c.per_slot ? Shape{c.T, c.k, c.K} : Shape{c.T, c.K}, d.x);
  io.ids = dev.alloc(DType::I32, {c.T, c.k}).value();
  EXPECT_TRUE(io.ids.upload(d.ids.data(), d.ids.size() * 4).is_ok());
  io.y = dev.alloc(c.tx, {c.T, c.k, c.N}).value();
  poison(io.y);
  return io;
}

inline ExpertsRun run_experts(const Device& dev, const ExpertsCase& c, const ExpertsData& d) {
  ExpertsRun out;
  const ExpertsIo io = experts_io(dev, c, d);
  const Buffer &w = io.w, &x = io.x, &ids = io.ids, &y = io.y;
  auto s = Session::create(dev).value();
  out.status = ops::matmul_experts(s, x, w, ids, y);
  if (out.status.is_ok()) out.status = s.finish();
  if (out.status.is_ok()) out.y = read_f32(y);
  const size_t n_out = static_cast<size_t>(c.T * c.k * c.N);
  out.ref.assign(n_out, 0.0);
  out.sum_xw.assign(n_out, 0.0);
  out.sum_x_wmax.assign(n_out, 0.0);
  out.xq_bound.assign(n_out, 0.0);
  for (int64_t z = 0; z < c.T * c.k; ++z) {
    const int64_t e = d.ids[static_cast<size_t>(z)];
    if (e < 0 || e >= c.E) continue;
    for (int64_t n = 0; n < c.N; ++n) {
      const RowRef r = row_ref(c, d, z, e, n);
      const size_t i = static_cast<size_t>(z * c.N + n);
      out.ref[i] = r.acc;
      out.sum_xw[i] = r.axw;
      out.sum_x_wmax[i] = r.ax_wmax;
      out.xq_bound[i] = r.xq;
    }
  }
  return out;
}

// Gated routed matmul: y = act(x . W_gate) * (x . W_up). The activations here are written independently of the
// library's (closed forms in double).
inline double glu_ref_act(ops::Activation a, double g) {
  switch (a) {
    case ops::Activation::Silu:
      return g / (1.0 + std::exp(-g));
    case ops::Activation::Gelu:
      return 0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0)));
    case ops::Activation::GeluTanh:
      return 0.5 * g * (1.0 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
    case ops::Activation::Sigmoid:
      return 1.0 / (1.0 + std::exp(-g));
  }
  return 0.0;
}

struct GluRun {
  std::vector<float> y;
  std::vector<double> ref, bound;  // bound: what |y - ref| may reach
  Status status;
};

// `up` holds the up projection's weights; x and ids are taken from `gate`. `exact_x`: the backend does not quantize
// x (the CPU). Each product's error bound (as experts_err) goes through the product rule with |act'| <= 1.2 (SiLU and
// both GELUs peak near 1.1, the sigmoid at 0.25).
inline GluRun run_experts_glu(const Device& dev, const ExpertsCase& c, const ExpertsData& gate, const ExpertsData& up,
                              ops::Activation act, bool exact_x) {
  GluRun out;
  const ExpertsIo io = experts_io(dev, c, gate);
  auto wu = dev.alloc(c.tw, {c.E, c.N, c.K}).value();
  EXPECT_TRUE(wu.upload(up.wbytes.data(), up.wbytes.size()).is_ok());
  auto s = Session::create(dev).value();
  out.status = ops::matmul_experts_glu(s, act, io.x, io.w, wu, io.ids, io.y);
  if (out.status.is_ok()) out.status = s.finish();
  if (out.status.is_ok()) out.y = read_f32(io.y);
  const size_t n_out = static_cast<size_t>(c.T * c.k * c.N);
  out.ref.assign(n_out, 0.0);
  out.bound.assign(n_out, 0.0);
  const double rout = rtol_for(c.tx);
  for (int64_t z = 0; z < c.T * c.k; ++z) {
    const int64_t e = gate.ids[static_cast<size_t>(z)];
    if (e < 0 || e >= c.E) continue;
    for (int64_t n = 0; n < c.N; ++n) {
      const RowRef g = row_ref(c, gate, z, e, n), u = row_ref(c, up, z, e, n);
      auto err = [&](const RowRef& r) {
        return (exact_x || dense_dtype(c.tw) ? 0.0 : r.xq + 1e-5 * r.ax_wmax) + 1e-5 * r.axw;
      };
      const double eg = err(g), eu = err(u), ag = glu_ref_act(act, g.acc);
      const size_t i = static_cast<size_t>(z * c.N + n);
      out.ref[i] = ag * u.acc;
      out.bound[i] = 1.2 * eg * (std::abs(u.acc) + eu) + std::abs(ag) * eu + rout * std::abs(out.ref[i]) + 1e-30;
    }
  }
  return out;
}

// Largest |y - ref| / bound of a gated run; rows of bad ids must be exactly zero.
inline double glu_err(const ExpertsCase& c, const ExpertsData& d, const GluRun& r) {
  double worst = 0;
  for (size_t i = 0; i < r.ref.size(); ++i) {
    const bool out_of_range = c.tx == DType::F16 && std::abs(r.ref[i]) > 6.0e4;
    if (!std::isfinite(r.y[i]) && !out_of_range) return INFINITY;
    const int64_t e = d.ids[i / static_cast<size_t>(c.N)];
    if (e < 0 || e >= c.E) {
      if (r.y[i] != 0.0f) return INFINITY;
      continue;
    }
    if (c.tx == DType::F16 && std::abs(r.ref[i]) > 6.0e4) continue;  // the product leaves f16's range (65504)
    worst = std::max(worst, std::abs(r.y[i] - r.ref[i]) / r.bound[i]);
  }
  return worst;
}

// The up projection's data for a gated case: its own weights, gate's x and ids.
inline ExpertsData make_up_data(const ExpertsCase& c, const ExpertsData& gate, uint64_t seed) {
  ExpertsData u = make_experts_data(c, seed + 1000);
  u.x = gate.x;
  u.ids = gate.ids;
  return u;
}

// Largest |y - ref| / bound; zero rows (bad ids) must be exactly zero. Quantized w: the int8 kernel's bound
// (qmatmul_err_int8); float w: f32 accumulation (1e-5 of sum |x w|). `exact_x`: the backend does not quantize x
// (the CPU), so only accumulation and output rounding remain.
inline double experts_err(const ExpertsCase& c, const ExpertsData& d, const ExpertsRun& r, bool exact_x) {
  double worst = 0;
  const double out = rtol_for(c.tx);
  for (size_t i = 0; i < r.ref.size(); ++i) {
    if (!std::isfinite(r.y[i])) return INFINITY;
    const int64_t e = d.ids[i / static_cast<size_t>(c.N)];
    if (e < 0 || e >= c.E) {
      if (r.y[i] != 0.0f) return INFINITY;
      continue;
    }
    const double xq = exact_x || dense_dtype(c.tw) ? 0.0 : r.xq_bound[i] + 1e-5 * r.sum_x_wmax[i];
    const double bound = xq + 1e-5 * r.sum_xw[i] + out * std::abs(r.ref[i]) + 1e-30;
    worst = std::max(worst, std::abs(r.y[i] - r.ref[i]) / bound);
  }
  return worst;
}

inline std::vector<ExpertsCase> experts_cases(bool big) {
  std::vector<ExpertsCase> cases;
  std::vector<DType> ws = {DType::Q4_0, DType::Q4_K, DType::Q8_0, DType::Q6_K, DType::BF16, DType::F32};
  if (big)
    ws = {DType::Q4_0, DType::Q4_1, DType::Q5_0,   DType::Q5_1,   DType::Q8_0,  DType::Q2_K, DType::Q3_K, DType::Q4_K,
          DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4, DType::F32,  DType::F16,  DType::BF16};
  const DType xs[] = {DType::F32, DType::BF16, DType::F16};
  int i = 0;
  for (DType t : ws) {
    const int64_t kb = dense_dtype(t) ? 32 : dtype_info(t).block_elems;
    const int64_t odd = dense_dtype(t) ? 5 : 0;  // float w: K not a multiple of 8 (the scalar path)
    cases.push_back({t, xs[i++ % 3], 5, 33, 3 * kb, 3, 2, false, false});
    cases.push_back({t, xs[i++ % 3], 4, 1, kb + odd, 1, 3, true, true});
    cases.push_back({t, xs[i++ % 3], 7, 70, (2048 / kb + 1) * kb, 2, 4, i % 2 == 0, true});
    if (big) cases.push_back({t, xs[i++ % 3], 16, 300, 2 * kb + odd, 4, 8, true, false});
  }
  return cases;
}

}  // namespace mlxn::test
