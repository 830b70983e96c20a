// Quantized matmul cases shared by the CPU test and the GPU test. Weights are Gaussian data quantized with our
// reference quantizers (random bytes with a small scale for IQ4_XS, which has no reference quantizer); the
// reference dequantizes them with quant::dequantize (checked bit-exact against the gguf package by the oracle test)
// and takes float64 dot products.
#pragma once

#include "mlxn/quant/affine.h"
#include "mlxn/quant/quant.h"
#include "test_util.h"

namespace mlxn::test {

struct QMatmulCase {
  DType tw;       // a GGML block type, or U32 for MLX affine
  int bits = 0;   // affine
  int group = 0;  // affine
  DType ts = DType::F16;  // affine scales
  int64_t M, N, K;
  DType tx;
  int64_t x_row_pad;  // x is a 2-D view whose rows are K + pad apart (0: contiguous)
};

inline std::string describe(const QMatmulCase& c) {
  if (c.tw == DType::U32)
    return detail::cat("affine bits=", c.bits, " group=", c.group, " scales=", c.ts, " M=", c.M, " N=", c.N,
                       " K=", c.K, " x=", c.tx, " pad=", c.x_row_pad);
  return detail::cat(c.tw, " M=", c.M, " N=", c.N, " K=", c.K, " x=", c.tx, " pad=", c.x_row_pad);
}

struct QWeights {
  std::vector<uint8_t> blocks, scales, biases;  // GGML blocks or affine packed words, plus affine scales / biases
  std::vector<float> w;                         // the dequantized weight, [N, K]
};

inline QWeights make_qweights(const QMatmulCase& c, uint64_t seed) {
  QWeights q;
  auto src = randn(static_cast<size_t>(c.N * c.K), seed, 1.0f);
  q.w.resize(src.size());
  if (c.tw == DType::U32) {
    auto aq = quant::affine_quantize({c.bits, c.group}, c.N, c.K, src.data(), c.ts);
    EXPECT_TRUE(aq.is_ok()) << aq.status().to_string();
    q.blocks = aq->packed;
    q.scales = aq->scales;
    q.biases = aq->biases;
    EXPECT_TRUE(quant::affine_dequantize({c.bits, c.group}, c.N, c.K, q.blocks.data(), q.blocks.size(), c.ts,
                                         q.scales.data(), q.biases.data(), q.w.data())
                    .is_ok());
    return q;
  }
  q.blocks.resize(dtype_storage_bytes(c.tw, c.N * c.K).value());
  if (quant::can_quantize(c.tw)) {
    EXPECT_TRUE(quant::quantize(c.tw, src.data(), c.N * c.K, q.blocks.data(), q.blocks.size()).is_ok());
  } else {
    // IQ4_XS: random codes and sub-block scales under a small f16 super-block scale.
    std::mt19937_64 g(seed);
    for (auto& b : q.blocks) b = static_cast<uint8_t>(g());
    const size_t bb = static_cast<size_t>(dtype_info(c.tw).block_bytes);
    const uint16_t d = f32_to_f16(0.004f);
    for (size_t o = 0; o < q.blocks.size(); o += bb) std::memcpy(q.blocks.data() + o, &d, 2);
  }
  EXPECT_TRUE(quant::dequantize(c.tw, q.blocks.data(), q.blocks.size(), q.w.data(), c.N * c.K).is_ok());
  return q;
}

struct QMatmulRun {
  std::vector<float> x, y;  // x as rounded to its dtype, without padding
  std::vector<double> ref;
  std::vector<double> sum_xw;  // sum_k |x w| per output
  std::vector<double> sum_x_wmax;  // sum_k |x| * max_k |w[n, :]| per output
  std::vector<double> xq_bound;    // sum_b (d_b / 2) sum_{k in b} |w[n, k]|, d_b = max_{k in b} |x| / 127 per output
  Status status;
};

// The x-quantization bound of one output: each 32-element block b of the x row, quantized to int8 with d_b =
// max|x| / 127 and round to nearest, is off by at most d_b / 2 per element.
inline double int8_x_bound(const float* x, const float* w, int64_t K) {
  double total = 0;
  for (int64_t b = 0; b < K; b += 32) {
    double amax = 0, aw = 0;
    for (int64_t k = b; k < std::min(K, b + 32); ++k) {
      amax = std::max(amax, std::abs(static_cast<double>(x[k])));
      aw += std::abs(static_cast<double>(w[k]));
    }
    total += amax / 127 / 2 * aw;
  }
  return total;
}

// Largest |y - ref| / bound with the bound of the int8 kernel (x quantized per 32-element block, integer dot
// products, f32 scaling): xq_bound, plus f32 rounding of the per-block terms and of the x scales (<= 1e-5 of
// sum_k |x| max|w|: the offset terms can be several times the weights), plus `out` times |ref|. It is tight
// enough that dropping one 32-element block, or using a neighbour's scale, fails at the small K of the cases.
inline double qmatmul_err_int8(const QMatmulRun& r, double out) {
  double worst = 0;
  for (size_t i = 0; i < r.ref.size(); ++i) {
    if (!std::isfinite(r.y[i])) return INFINITY;
    const double bound = r.xq_bound[i] + 1e-5 * r.sum_x_wmax[i] + out * std::abs(r.ref[i]) + 1e-30;
    worst = std::max(worst, std::abs(r.y[i] - r.ref[i]) / bound);
  }
  return worst;
}

// Largest |y - ref| / bound over the outputs (<= 1 passes; NaN fails), with the worst-case bound of a kernel that
// forms each weight in a float type with unit roundoff u (the weight rounded relative to itself, its scale and
// offset relative to the row's largest weight) and rounds x relative to itself: u_w * sum|x w| + u_s * sum|x| *
// max|w| + u_x * sum|x w|, plus `out` times |ref| for the output rounding.
inline double qmatmul_err(const QMatmulRun& r, double u_w, double u_s, double u_x, double out) {
  double worst = 0;
  for (size_t i = 0; i < r.ref.size(); ++i) {
    if (!std::isfinite(r.y[i])) return INFINITY;
    const double bound =
        (u_w + u_x) * r.sum_xw[i] + u_s * r.sum_x_wmax[i] + out * std::abs(r.ref[i]) + 1e-30;
    worst = std::max(worst, std::abs(r.y[i] - r.ref[i]) / bound);
  }
  return worst;
}

inline QMatmulRun run_qmatmul(const Device& dev, const QMatmulCase& c, const QWeights& q, uint64_t seed) {
  QMatmulRun out;
  out.x = rounded(c.tx, randn(static_cast<size_t>(c.M * c.K), seed + 7));
  const int64_t ldx = c.K + c.x_row_pad;
  std::vector<float> xp(static_cast<size_t>(c.M * ldx), 3.0f);
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
  auto y = dev.alloc(c.tx, {c.M, c.N}).value();
  poison(y);
  auto s = Session::create(dev).value();
  if (c.tw == DType::U32) {
    ops::AffineWeight aw;
    aw.bits = c.bits;
    aw.group_size = c.group;
    aw.packed = dev.alloc(DType::U32, {c.N, c.K * c.bits / 32}).value();
    aw.scales = dev.alloc(c.ts, {c.N, c.K / c.group}).value();
    aw.biases = dev.alloc(c.ts, {c.N, c.K / c.group}).value();
    EXPECT_TRUE(aw.packed.upload(q.blocks.data(), q.blocks.size()).is_ok());
    EXPECT_TRUE(aw.scales.upload(q.scales.data(), q.scales.size()).is_ok());
    EXPECT_TRUE(aw.biases.upload(q.biases.data(), q.biases.size()).is_ok());
    out.status = ops::matmul_affine(s, x, aw, y);
  } else {
    auto w = dev.alloc(c.tw, {c.N, c.K}).value();
    EXPECT_TRUE(w.upload(q.blocks.data(), q.blocks.size()).is_ok());
    out.status = ops::matmul(s, x, w, y);
  }
  if (out.status.is_ok()) out.status = s.finish();
  if (out.status.is_ok()) out.y = read_f32(y);
  out.ref.resize(static_cast<size_t>(c.M * c.N));
  out.sum_xw.resize(out.ref.size());
  out.sum_x_wmax.resize(out.ref.size());
  out.xq_bound.resize(out.ref.size());
  for (int64_t n = 0; n < c.N; ++n) {
    double wmax = 0;
    for (int64_t k = 0; k < c.K; ++k) wmax = std::max(wmax, std::abs(static_cast<double>(q.w[n * c.K + k])));
    for (int64_t m = 0; m < c.M; ++m) {
      double acc = 0, axw = 0, ax = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double xv = out.x[static_cast<size_t>(m * c.K + k)];
        const double t = xv * q.w[static_cast<size_t>(n * c.K + k)];
        acc += t;
        axw += std::abs(t);
        ax += std::abs(xv);
      }
      const size_t i = static_cast<size_t>(m * c.N + n);
      out.ref[i] = acc;
      out.sum_xw[i] = axw;
      out.sum_x_wmax[i] = ax * wmax;
      out.xq_bound[i] = int8_x_bound(out.x.data() + m * c.K, q.w.data() + n * c.K, c.K);
    }
  }
  return out;
}

inline std::vector<DType> qmatmul_formats() {
  return {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,   DType::Q2_K,   DType::Q3_K,
          DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4};
}

// Shapes per format: K of one block, a few blocks, and just over 4096 (a partial last chunk); N = 1, odd, and
// not a multiple of the 16-row tile; M across the int8 kernel (1..4), the tensor-core tiles (8, 16) and beyond (33).
inline std::vector<QMatmulCase> qmatmul_cases(bool big) {
  std::vector<QMatmulCase> cases;
  int i = 0;
  const DType xs[] = {DType::F32, DType::BF16, DType::F16};
  // x row padding: none, 8 elements (rows stay 16-byte aligned), 3 (they do not: the kernels' scalar x loads).
  auto pad = [](int n) -> int64_t { return n % 4 == 3 ? 8 : n % 4 == 1 ? 3 : 0; };
  auto shapes = [&](int64_t kb) {
    std::vector<std::array<int64_t, 3>> v = {{1, 1, kb}, {3, 17, 3 * kb}, {8, 64, 9 * kb}, {16, 33, 3 * kb}};
    if (big) {
      // M <= 4 runs the int8 kernel: K over several 1024-element steps with few rows (warps of a row group split
      // K), more rows than one round of the grid fills (blocks loop), M = 2 and 4, and K not a multiple of 1024.
      v.push_back({1, 257, (4096 / kb + 1) * kb});
      v.push_back({2, 4501, kb});
      v.push_back({4, 7, (2048 / kb + 3) * kb});
      v.push_back({11, 40, 2 * kb});
      v.push_back({33, 19, kb});
    }
    return v;
  };
  for (DType t : qmatmul_formats())
    for (auto [M, N, K] : shapes(dtype_info(t).block_elems)) {
      QMatmulCase c{t, 0, 0, DType::F16, M, N, K, xs[i % 3], pad(i)};
      ++i;
      cases.push_back(c);
    }
  const DType ts[] = {DType::F16, DType::BF16, DType::F32};
  if (big) {
    // Long K on enough rows that each warp of the decode kernel owns a row pair (KS = 1): stages of 8 K steps, then
    // a shorter one ending in a half step (K = 9.5 steps of 1024), at M = 1 and 2.
    for (DType t : qmatmul_formats()) {
      const int64_t kb = dtype_info(t).block_elems;
      cases.push_back(QMatmulCase{t, 0, 0, DType::F16, 1 + i % 2, 2200, 9728 / kb * kb, xs[i % 3], pad(i)});
      ++i;
    }
    for (int bits : {3, 4}) {
      cases.push_back(QMatmulCase{DType::U32, bits, 64, ts[i % 3], 1 + i % 2, 2200, 9728, xs[i % 3], pad(i)});
      ++i;
    }
  }
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int group : {32, 64, 128})
      for (auto [M, N, K] : shapes(128)) {
        if (!big && group != 64) continue;
        QMatmulCase c{DType::U32, bits, group, ts[i % 3], M, N, K, xs[i % 3], pad(i)};
        ++i;
        cases.push_back(c);
      }
  return cases;
}

}  // namespace mlxn::test
