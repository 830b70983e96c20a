// RoPE on the CPU backend against references written here: the rotation as a complex multiplication
// (x_a + i x_b) e^{i theta}, Hugging Face's rotate_half form for NeoX, ggml's YaRN written out again, the Llama 3
// frequency rule as HF states it, hand-made section tables for M-RoPE / IMROPE, and the error paths.
#include <complex>
#include <numbers>

#include "rope_cases.h"

namespace mlxn {
namespace {

using cd = std::complex<double>;

// The stream a pair reads, from a table spelled out for the test's section layout (not the library's rule).
int expected_stream(const test::RopeCase& c, const ops::RopeParams& p, int64_t i) {
  if (c.sections == ops::RopeSections::None) return 0;
  const int64_t s0 = p.sections[0], s1 = p.sections[1], s2 = p.sections[2];
  const int64_t total = s0 + s1 + s2 + p.sections[3];
  const int64_t k = i % total;
  int stream = 3;
  if (c.sections == ops::RopeSections::Mrope) {
    // Contiguous runs: [0, s0) t, then s1 of h, then s2 of w.
    if (k < s0)
      stream = 0;
    else if (k - s0 < s1)
      stream = 1;
    else if (k - s0 - s1 < s2)
      stream = 2;
  } else {
    // Interleaved t h w t h w ...: the j-th pair of stream m sits at 3j + m while j < that stream's section.
    const int64_t m = k % 3, j = k / 3;
    const int64_t sec = m == 0 ? s0 : m == 1 ? s1 : s2;
    if (j < sec) stream = static_cast<int>(m);
  }
  return stream < c.n_streams ? stream : 0;
}

// Angle and magnitude of pair i (ggml's rope_yarn, written out again in double).
std::pair<double, double> expected_angle(const test::RopeCase& c, const ops::RopeParams& p, const test::RopeRun& run,
                                         int64_t t, int64_t i) {
  const int64_t rd = c.rope_dim == 0 ? c.head_dim : c.rope_dim;
  const double pos = run.pos[static_cast<size_t>(expected_stream(c, p, i) * c.tokens + t)];
  double theta = pos / std::pow(static_cast<double>(p.base), static_cast<double>(2 * i) / static_cast<double>(rd));
  if (c.freq_factors) theta /= run.ff[static_cast<size_t>(i)];
  double mag = p.attn_factor;
  if (p.ext_factor == 0.0f) return {theta * p.freq_scale, mag};
  float corr[2];
  ops::yarn_corr_dims(rd, p.n_ctx_orig, p.base, p.beta_fast, p.beta_slow, corr);
  const double ramp =
      (1.0 - std::clamp((static_cast<double>(i) - corr[0]) / std::max(0.001, static_cast<double>(corr[1]) - corr[0]),
                        0.0, 1.0)) *
      p.ext_factor;
  mag *= 1.0 + 0.1 * std::log(1.0 / p.freq_scale);
  return {theta * p.freq_scale * (1 - ramp) + theta * ramp, mag};
}

// Closed form: per head, optional RMS norm, then each pair as a complex number times mag * e^{i theta}.
std::vector<float> reference(const test::RopeCase& c, const test::RopeRun& run) {
  const auto p = test::rope_params(c);
  const int64_t rd = c.rope_dim == 0 ? c.head_dim : c.rope_dim, half = rd / 2;
  std::vector<float> y(run.x.size());
  for (int64_t t = 0; t < c.tokens; ++t) {
    for (int64_t h = 0; h < c.heads; ++h) {
      const size_t base = static_cast<size_t>((t * c.heads + h) * c.head_dim);
      std::vector<double> v(run.x.begin() + static_cast<long>(base),
                            run.x.begin() + static_cast<long>(base + c.head_dim));
      if (c.norm) {
        double ss = 0;
        for (double a : v) ss += a * a;
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(c.head_dim) + 1e-6);
        for (int64_t e = 0; e < c.head_dim; ++e)
          v[static_cast<size_t>(e)] *= inv * (c.norm_weight ? run.w[static_cast<size_t>(e)] + c.w_offset : 1.0);
      }
      std::vector<double> o = v;
      for (int64_t i = 0; i < half; ++i) {
        const auto [theta, mag] = expected_angle(c, p, run, t, i);
        const size_t a = static_cast<size_t>(c.layout == ops::RopeLayout::Neox ? i : 2 * i);
        const size_t b = static_cast<size_t>(c.layout == ops::RopeLayout::Neox ? i + half : 2 * i + 1);
        const cd z = cd(v[a], v[b]) * std::polar(mag, theta);
        o[a] = z.real();
        o[b] = z.imag();
      }
      for (int64_t e = 0; e < c.head_dim; ++e)
        y[base + static_cast<size_t>(e)] = static_cast<float>(o[static_cast<size_t>(e)]);
    }
  }
  return y;
}

TEST(Rope, CpuMatchesClosedForm) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::rope_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    auto run = test::run_rope(Device::cpu(), c, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    // Double arithmetic both ways: one rounding of the output (and of the double result to f32 first).
    EXPECT_LE(test::max_scaled_err(run.y, reference(c, run), 1e-6, test::rtol_for(c.t)), 1.0);
  }
}

// HF's NeoX convention: q * cos + rotate_half(q) * sin with cos, sin = cat(freqs, freqs) and
// rotate_half(x) = cat(-x[half:], x[:half]); inv_freq = 1 / base^(arange(0, dim, 2) / dim).
TEST(Rope, NeoxMatchesHfRotateHalf) {
  const int64_t T = 3, H = 2, D = 64;
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const auto x = test::randn(static_cast<size_t>(T * H * D), seed);
  const std::vector<int32_t> pos = {0, 17, 4095};
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto xb = test::make_buffer(cpu, DType::F32, {T, H, D}, x);
  auto pb = cpu.alloc(DType::I32, {T}).value();
  ASSERT_TRUE(pb.upload(pos.data(), pos.size() * 4).is_ok());
  auto yb = cpu.alloc(DType::F32, {T, H, D}).value();
  test::poison(yb);
  ops::RopeParams p;
  p.base = 500000.0f;
  ASSERT_TRUE(ops::rope(s, xb, pb, Buffer(), yb, p).is_ok());
  const auto y = test::read_f32(yb);
  std::vector<float> ref(y.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float* q = x.data() + (t * H + h) * D;
      for (int64_t e = 0; e < D; ++e) {
        const int64_t j = e % (D / 2);
        const double inv_freq = 1.0 / std::pow(500000.0, static_cast<double>(2 * j) / D);
        const double ang = pos[static_cast<size_t>(t)] * inv_freq;
        const double rot = e < D / 2 ? -q[e + D / 2] : q[e - D / 2];
        ref[static_cast<size_t>((t * H + h) * D + e)] = static_cast<float>(q[e] * std::cos(ang) + rot * std::sin(ang));
      }
    }
  EXPECT_LE(test::max_scaled_err(y, ref, 1e-6, 1e-5), 1.0);
  // Position 0 is the identity.
  for (int64_t e = 0; e < H * D; ++e) EXPECT_NEAR(y[static_cast<size_t>(e)], x[static_cast<size_t>(e)], 1e-7);
}

TEST(Rope, NormalPairsAreAdjacent) {
  // One head [1, 0, 0, 0] at position 1, base 1: pair 0 turns by 1 rad, pair 1 (elements 2, 3) by 1 too.
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = test::make_buffer(cpu, DType::F32, {1, 1, 4}, {1, 0, 0, 1});
  auto pos = cpu.alloc(DType::I32, {1}).value();
  const int32_t one = 1;
  ASSERT_TRUE(pos.upload(&one, 4).is_ok());
  auto y = cpu.alloc(DType::F32, {1, 1, 4}).value();
  ops::RopeParams p;
  p.layout = ops::RopeLayout::Normal;
  p.base = 1.0f;
  ASSERT_TRUE(ops::rope(s, x, pos, Buffer(), y, p).is_ok());
  const auto v = test::read_f32(y);
  EXPECT_NEAR(v[0], std::cos(1.0), 1e-7);
  EXPECT_NEAR(v[1], std::sin(1.0), 1e-7);
  EXPECT_NEAR(v[2], -std::sin(1.0), 1e-7);
  EXPECT_NEAR(v[3], std::cos(1.0), 1e-7);
}

TEST(Rope, Llama3FrequencyFactors) {
  // HF's _compute_llama3_parameters, Llama 3.1: factor 8, low 1, high 4, original 8192, base 500000, dim 128.
  const auto f = ops::llama3_freq_factors(128, 500000.0f, 8.0f, 1.0f, 4.0f, 8192);
  ASSERT_EQ(f.size(), 64u);
  for (size_t i = 0; i < f.size(); ++i) {
    const double inv = std::pow(500000.0, -2.0 * static_cast<double>(i) / 128.0);
    const double wavelen = 2 * std::numbers::pi / inv;
    double want;
    if (wavelen < 8192.0 / 4.0) {
      want = 1.0;
    } else if (wavelen > 8192.0) {
      want = 8.0;
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      want = 1.0 / ((1 - smooth) / 8.0 + smooth);
    }
    EXPECT_NEAR(f[i], want, 1e-5 * want) << i;
  }
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[63], 8.0f);
}

TEST(Rope, YarnCorrDimsMatchGgml) {
  // ggml_rope_yarn_corr_dims for n_dims 128, n_ctx_orig 4096, base 10000, beta 32 / 1: floor(20.94) and ceil(45.03).
  float d[2];
  ops::yarn_corr_dims(128, 4096, 10000.0f, 32.0f, 1.0f, d);
  EXPECT_EQ(d[0], 20.0f);
  EXPECT_EQ(d[1], 46.0f);
}

TEST(Rope, SectionTables) {
  // Qwen3-VL-like IMROPE sections [24, 20, 20] over 64 pairs with three streams: pairs past the interleaved
  // sections (61, 62) read stream 0; with a 4th stream they read it.
  test::RopeCase c{1, 1, 128, 0, DType::F32, ops::RopeLayout::Neox};
  c.sections = ops::RopeSections::Imrope;
  c.n_streams = 3;
  ops::RopeParams p;
  p.sections[0] = 24;
  p.sections[1] = 20;
  p.sections[2] = 20;
  EXPECT_EQ(expected_stream(c, p, 0), 0);
  EXPECT_EQ(expected_stream(c, p, 1), 1);
  EXPECT_EQ(expected_stream(c, p, 59), 2);
  EXPECT_EQ(expected_stream(c, p, 61), 0);
  EXPECT_EQ(expected_stream(c, p, 63), 0);
  c.n_streams = 4;
  EXPECT_EQ(expected_stream(c, p, 61), 3);
  // And the library agrees: rotate one head with distinct positions per stream and compare.
  for (int streams : {3, 4}) {
    for (auto mode : {ops::RopeSections::Mrope, ops::RopeSections::Imrope}) {
      c.n_streams = streams;
      c.sections = mode;
      Device cpu = Device::cpu();
      auto s = Session::create(cpu).value();
      std::vector<float> x(128, 0.0f);
      for (int i = 0; i < 64; ++i) x[static_cast<size_t>(i)] = 1.0f;  // pair i = (1, 0): out = (cos, sin)
      auto xb = test::make_buffer(cpu, DType::F32, {1, 1, 128}, x);
      std::vector<int32_t> pos = {3, 50, 700, 9000};
      pos.resize(static_cast<size_t>(streams));
      auto pb = cpu.alloc(DType::I32, {streams, 1}).value();
      ASSERT_TRUE(pb.upload(pos.data(), pos.size() * 4).is_ok());
      auto yb = cpu.alloc(DType::F32, {1, 1, 128}).value();
      ops::RopeParams rp = p;
      rp.base = 1e6f;
      rp.sections_mode = mode;
      ASSERT_TRUE(ops::rope(s, xb, pb, Buffer(), yb, rp).is_ok());
      const auto y = test::read_f32(yb);
      for (int i = 0; i < 64; ++i) {
        const double theta = pos[static_cast<size_t>(expected_stream(c, p, i))] * std::pow(1e6, -i / 64.0);
        EXPECT_NEAR(y[static_cast<size_t>(i)], std::cos(theta), 1e-6) << i;
        EXPECT_NEAR(y[static_cast<size_t>(i + 64)], std::sin(theta), 1e-6) << i;
      }
    }
  }
}

TEST(Rope, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::BF16, {4, 8, 128}).value();
  auto y = cpu.alloc(DType::BF16, {4, 8, 128}).value();
  auto pos = cpu.alloc(DType::I32, {4}).value();
  ASSERT_TRUE(pos.fill_bytes(0).is_ok());
  ASSERT_TRUE(ops::rope(s, x, pos, Buffer(), y).is_ok());
  auto pos_bad = cpu.alloc(DType::I32, {5}).value();
  Status st = ops::rope(s, x, pos_bad, Buffer(), y);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  EXPECT_NE(st.message().find("[rope] positions has shape"), std::string::npos) << st.message();
  auto pos_f = cpu.alloc(DType::F32, {4}).value();
  EXPECT_NE(ops::rope(s, x, pos_f, Buffer(), y).message().find("i32"), std::string::npos);
  auto y32 = cpu.alloc(DType::F32, {4, 8, 128}).value();
  EXPECT_EQ(ops::rope(s, x, pos, Buffer(), y32).code(), StatusCode::Unsupported);
  ops::RopeParams p;
  p.rope_dim = 130;
  EXPECT_NE(ops::rope(s, x, pos, Buffer(), y, p).message().find("rope_dim"), std::string::npos);
  p.rope_dim = 63;
  EXPECT_EQ(ops::rope(s, x, pos, Buffer(), y, p).code(), StatusCode::InvalidArgument);
  p = {};
  auto ff = cpu.alloc(DType::F32, {63}).value();
  EXPECT_NE(ops::rope(s, x, pos, ff, y, p).message().find("freq_factors has 63 elements"), std::string::npos);
  p.ext_factor = 1.0f;  // YaRN without the original context
  EXPECT_EQ(ops::rope(s, x, pos, Buffer(), y, p).code(), StatusCode::InvalidArgument);
  p = {};
  p.sections_mode = ops::RopeSections::Mrope;  // all-zero sections
  EXPECT_EQ(ops::rope(s, x, pos, Buffer(), y, p).code(), StatusCode::InvalidArgument);
  // Partial overlap of x and out.
  auto big = cpu.alloc(DType::BF16, {5, 8, 128}).value();
  auto a = big.slice(0, 0, 4).value(), b = big.slice(0, 1, 4).value();
  EXPECT_NE(ops::rope(s, a, pos, Buffer(), b).message().find("overlap"), std::string::npos);
  // A strided head_dim.
  auto cols = x.view_strided(0, DType::BF16, {4, 8, 64}, {1024, 128, 2}).value();
  auto y64 = cpu.alloc(DType::BF16, {4, 8, 64}).value();
  EXPECT_NE(ops::rope(s, cols, pos, Buffer(), y64).message().find("unit stride"), std::string::npos);
  auto xi = cpu.alloc(DType::I32, {4, 8, 128}).value();
  EXPECT_EQ(ops::rope(s, xi, pos, Buffer(), xi).code(), StatusCode::Unsupported);
  // The fused norm: a weight of the wrong size / dtype.
  auto w_short = cpu.alloc(DType::BF16, {127}).value();
  EXPECT_NE(ops::rope_head_norm(s, x, w_short, pos, Buffer(), y).message().find("w has 127 elements"),
            std::string::npos);
  auto w16 = cpu.alloc(DType::F16, {128}).value();
  EXPECT_EQ(ops::rope_head_norm(s, x, w16, pos, Buffer(), y).code(), StatusCode::Unsupported);
  ops::HeadNormParams np;
  np.eps = -1.0f;
  EXPECT_EQ(ops::rope_head_norm(s, x, Buffer(), pos, Buffer(), y, {}, np).code(), StatusCode::InvalidArgument);
}

}  // namespace
}  // namespace mlxn
