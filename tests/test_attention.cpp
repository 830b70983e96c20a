// Attention and KV-cache write on the CPU backend against the naive reference of attention_cases.h, closed-form
// window / causal boundary checks, and the error paths.
#include "attention_cases.h"

namespace mlxn {
namespace {

using L = ops::KvLayout;

void expect_matches_naive(const test::AttnCase& c, uint64_t seed) {
  SCOPED_TRACE(test::describe(c));
  auto run = test::run_attention(Device::cpu(), c, seed);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_TRUE(run.cache_ok) << run.cache_error;
  auto ref = test::attention_naive(c, run);
  std::vector<float> ref_f(ref.begin(), ref.end());
  // The reference rounds once to out's dtype; nothing else may differ.
  EXPECT_LE(test::max_scaled_err(run.out, ref_f, 1e-6, test::rtol_for(c.tout) / 2), 1.0);
}

TEST(Attention, CpuMatchesNaive) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<std::pair<DType, DType>> types = {
      {DType::BF16, DType::BF16}, {DType::F16, DType::F16}, {DType::F32, DType::BF16}};
  for (const auto& c : test::attn_cases({32}, types, false)) expect_matches_naive(c, seed);
}

TEST(Attention, CpuMatchesNaiveFp8) {
  // fp8 e4m3 caches: the write must produce the test's own quantization byte for byte (run_attention checks the
  // cache), and attention must match the naive reference over the dequantized values.
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<std::pair<DType, DType>> types = {
      {DType::BF16, DType::U8}, {DType::F16, DType::U8}, {DType::F32, DType::U8}};
  for (const auto& c : test::attn_cases({32}, types, false)) expect_matches_naive(c, seed);
}

TEST(KvCacheWrite, Fp8QuantizationError) {
  // Independent of the test's quantizer: each stored value is within half an e4m3 step (2^-4 relative for normals,
  // 2^-10 x scale below 2^-6) of the row written, the scale is max|x| / 448, and the largest element is exact.
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t D = 64, hkv = 3;
  auto x = test::randn(static_cast<size_t>(hkv * D), seed, 3.0f);
  x[5] = 0.0f;
  for (int64_t e = 0; e < D; ++e) x[static_cast<size_t>(2 * D + e)] = 0.0f;  // an all-zero head: scale 0
  auto k = test::make_buffer(cpu, DType::F32, {1, 1, hkv, D}, x);
  ops::KvCache cache{cpu.alloc(DType::U8, {1, 4, hkv, D}).value(),
                     cpu.alloc(DType::U8, {1, 4, hkv, D}).value(),
                     L::Contiguous,
                     Buffer(),
                     cpu.alloc(DType::F32, {1, 4, hkv}).value(),
                     cpu.alloc(DType::F32, {1, 4, hkv}).value()};
  ops::SeqLens lens;
  lens.kv_lens = cpu.alloc(DType::I32, {1}).value();
  const int32_t three = 3;
  ASSERT_TRUE(lens.kv_lens.upload(&three, 4).is_ok());
  ASSERT_TRUE(ops::kv_cache_write(s, k, k, cache, lens).is_ok());
  auto codes = test::read_u8(cache.k);
  auto scales = test::read_f32(cache.k_scale);
  for (int64_t h = 0; h < hkv; ++h) {
    double amax = 0;
    for (int64_t e = 0; e < D; ++e)
      amax = std::max(amax, std::fabs(static_cast<double>(x[static_cast<size_t>(h * D + e)])));
    const double sc = scales[static_cast<size_t>(2 * hkv + h)];  // position 2
    EXPECT_NEAR(sc, amax / 448.0, 1e-6 * amax) << "head " << h;
    for (int64_t e = 0; e < D; ++e) {
      const double xv = x[static_cast<size_t>(h * D + e)];
      const uint8_t code = static_cast<uint8_t>(codes[static_cast<size_t>((2 * hkv + h) * D + e)]);
      const double got = test::fp8_value(code) * sc;
      EXPECT_LE(std::fabs(got - xv), std::max(std::fabs(xv) / 16.0, sc / 1024.0) * (1 + 1e-6)) << h << " " << e;
      if (std::fabs(xv) == amax) {
        EXPECT_NEAR(got, xv, 1e-6 * amax);
      }
    }
  }
}

TEST(Attention, CpuMatchesNaiveQ8_0Q4_0) {
  // q8_0 / q4_0 caches (split GGML blocks): the write must produce the test's own ggml quantization byte for byte
  // (codes and f16 scales, run_attention checks the cache) and attention must match the naive reference over the
  // dequantized values, i.e. the reference is attention over the dequantized cache, in double. D 32 (one block) and
  // 96 (three: blocks are per 32 along D, not per row).
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<std::pair<DType, DType>> types = {
      {DType::BF16, DType::Q8_0}, {DType::F16, DType::Q4_0}, {DType::F32, DType::Q8_0}, {DType::BF16, DType::Q4_0}};
  for (const auto& c : test::attn_cases({32, 96}, types, false)) expect_matches_naive(c, seed);
  auto c = test::attn_case(1, 8, 2, 128, {4097, 17});
  c.tkv = DType::Q4_0;
  expect_matches_naive(c, seed);
}

TEST(KvCacheWrite, QuantBlockError) {
  // Closed-form bounds, independent of any quantizer: per block of 32, q8_0 stores d = max|x| / 127 (as f16) and each
  // value within d / 2 (plus the f16 rounding of d: 127 codes x 2^-11 d); q4_0 stores d = x_max / -8 and each value
  // within |d| (one step: the side opposite x_max clamps at code 15 = 7 |d|), x_max itself exactly (up to d's f16
  // rounding). An all-zero block has scale 0 and codes 0 (q8_0) / 8 (q4_0: byte 0x88).
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t D = 96, hkv = 2, nb = D / 32;
  auto x = test::randn(static_cast<size_t>(hkv * D), seed, 3.0f);
  for (int64_t e = 32; e < 64; ++e) x[static_cast<size_t>(D + e)] = 0.0f;  // head 1, block 1: all zero
  auto k = test::make_buffer(cpu, DType::F32, {1, 1, hkv, D}, x);
  ops::SeqLens lens;
  lens.kv_lens = cpu.alloc(DType::I32, {1}).value();
  const int32_t three = 3;
  ASSERT_TRUE(lens.kv_lens.upload(&three, 4).is_ok());
  for (bool q4 : {false, true}) {
    SCOPED_TRACE(q4 ? "q4_0" : "q8_0");
    const int64_t cb = q4 ? D / 2 : D;
    const DType ct = q4 ? DType::U8 : DType::I8;
    ops::KvCache cache{cpu.alloc(ct, {1, 4, hkv, cb}).value(),
                       cpu.alloc(ct, {1, 4, hkv, cb}).value(),
                       L::Contiguous,
                       Buffer(),
                       cpu.alloc(DType::F16, {1, 4, hkv, nb}).value(),
                       cpu.alloc(DType::F16, {1, 4, hkv, nb}).value(),
                       q4 ? ops::KvQuant::Q4_0 : ops::KvQuant::Q8_0};
    ASSERT_TRUE(ops::kv_cache_write(s, k, k, cache, lens).is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    auto codes = test::read_u8(cache.k);
    auto scales = test::read_f32(cache.k_scale);
    for (int64_t h = 0; h < hkv; ++h)
      for (int64_t blk = 0; blk < nb; ++blk) {
        const float* xb = &x[static_cast<size_t>(h * D + blk * 32)];
        double amax = 0, xmax = 0;
        for (int e = 0; e < 32; ++e)
          if (std::fabs(xb[e]) > amax) {
            amax = std::fabs(xb[e]);
            xmax = xb[e];
          }
        const double d = scales[static_cast<size_t>((2 * hkv + h) * nb + blk)];  // position 2
        const double want_d = q4 ? xmax / -8.0 : amax / 127.0;
        EXPECT_NEAR(d, want_d, std::fabs(want_d) / 1024.0) << "head " << h << " block " << blk;
        std::vector<uint8_t> row(static_cast<size_t>(cb));
        for (int64_t i = 0; i < cb; ++i)
          row[static_cast<size_t>(i)] = static_cast<uint8_t>(codes[static_cast<size_t>((2 * hkv + h) * cb + i)]);
        const uint8_t* cbytes = row.data() + blk * (q4 ? 16 : 32);
        for (int e = 0; e < 32; ++e) {
          const int code = q4 ? (e < 16 ? cbytes[e] & 15 : cbytes[e - 16] >> 4) - 8
                              : static_cast<int>(static_cast<int8_t>(cbytes[e]));
          const double got = code * d, xv = xb[e];
          const double bound = q4 ? std::fabs(d) * (1 + 1e-6) + 8 * std::fabs(d) / 1024.0
                                  : std::fabs(d) / 2 * (1 + 1e-6) + 127 * std::fabs(d) / 1024.0;
          EXPECT_LE(std::fabs(got - xv), bound) << "head " << h << " element " << blk * 32 + e;
          if (amax == 0) {
            EXPECT_EQ(code, 0);
          }
          if (q4 && xv == xmax && amax > 0) {
            EXPECT_EQ(code, -8);
          }
        }
      }
  }
}

TEST(Attention, CpuMatchesNaiveLong) {
  // The odd long length (4097) and a production head dim, once.
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  auto c = test::attn_case(1, 8, 1, 128, {4097, 17});
  expect_matches_naive(c, seed);
  c.window = 1000;
  expect_matches_naive(c, seed);
  auto r = test::attn_case(2, 8, 2, 64, {4097, 1}, L::Ring, 130);
  r.window = 128;
  expect_matches_naive(r, seed);
}

// Uniform attention (q = 0) over values that encode their position: the output is the mean position over the
// visible keys, so the window and causal edges show up exactly (a window one key too wide or too narrow moves the
// mean by 1/2).
TEST(Attention, WindowAndCausalBoundaries) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const int64_t kv = 300, D = 32, q_len = 4;
  for (int32_t window : {0, 1, 7, 64, 299, 300, 1000}) {
    for (bool ring : {false, true}) {
      if (ring && window == 0) continue;
      SCOPED_TRACE(detail::cat("window ", window, ring ? " ring" : ""));
      const int64_t cap = ring ? std::max<int64_t>(window + q_len - 1, 8) : kv;
      if (ring && cap >= kv) continue;
      std::vector<float> k(static_cast<size_t>(cap * D), 0.0f), v(static_cast<size_t>(cap * D), 0.0f);
      const int64_t first = ring ? kv - cap : 0;
      for (int64_t t = first; t < kv; ++t) {
        const int64_t r = ring ? t % cap : t;
        v[static_cast<size_t>(r * D)] = static_cast<float>(t % 64);  // exact in bf16
        v[static_cast<size_t>(r * D + 1)] = static_cast<float>(t / 64);
        k[static_cast<size_t>(r * D + 2)] = 1.0f;  // keys are irrelevant: q = 0
      }
      ops::KvCache cache{test::make_buffer(cpu, DType::BF16, {1, cap, 1, D}, k),
                         test::make_buffer(cpu, DType::BF16, {1, cap, 1, D}, v), ring ? L::Ring : L::Contiguous,
                         Buffer()};
      ops::SeqLens lens;
      lens.kv_lens = cpu.alloc(DType::I32, {1}).value();
      const int32_t kv32 = static_cast<int32_t>(kv);
      ASSERT_TRUE(lens.kv_lens.upload(&kv32, 4).is_ok());
      auto q = test::make_buffer(cpu, DType::F32, {1, q_len, 1, D}, std::vector<float>(q_len * D, 0.0f));
      auto out = cpu.alloc(DType::F32, {1, q_len, 1, D}).value();
      test::poison(out);
      ops::AttentionParams p;
      p.window = window;
      ASSERT_TRUE(ops::attention(s, q, cache, lens, out, p).is_ok());
      auto o = test::read_f32(out);
      for (int64_t i = 0; i < q_len; ++i) {
        const int64_t t = kv - q_len + i;  // bottom-right: the last query sees key kv - 1
        const int64_t lo = window > 0 ? std::max<int64_t>(0, t - window + 1) : 0;  // t - W + 1 visible, t - W not
        double m0 = 0, m1 = 0;
        for (int64_t j = lo; j <= t; ++j) {
          m0 += static_cast<double>(j % 64);
          m1 += static_cast<double>(j / 64);
        }
        const double n = static_cast<double>(t - lo + 1);
        EXPECT_NEAR(o[static_cast<size_t>(i * D)], m0 / n, 1e-4) << "query " << i;
        EXPECT_NEAR(o[static_cast<size_t>(i * D + 1)], m1 / n, 1e-4) << "query " << i;
      }
    }
  }
}

TEST(Attention, SinkAndEmptyRows) {
  // One visible key with logit 0 and a sink of logit log(3): p = 1 / (1 + 3), so out = v / 4. A sequence of length
  // 0 writes zeros (no NaN).
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const int64_t D = 32;
  std::vector<float> v(2 * 4 * D, 0.0f);
  for (int64_t e = 0; e < D; ++e) v[static_cast<size_t>(e)] = static_cast<float>(e);
  ops::KvCache cache{test::make_buffer(cpu, DType::F16, {2, 4, 1, D}, std::vector<float>(2 * 4 * D, 0.0f)),
                     test::make_buffer(cpu, DType::F16, {2, 4, 1, D}, v), L::Contiguous, Buffer()};
  ops::SeqLens lens;
  lens.kv_lens = cpu.alloc(DType::I32, {2}).value();
  const int32_t kvl[2] = {1, 0};
  ASSERT_TRUE(lens.kv_lens.upload(kvl, 8).is_ok());
  auto q = test::make_buffer(cpu, DType::F32, {2, 1, 2, D}, std::vector<float>(2 * 2 * D, 1.0f));
  auto out = cpu.alloc(DType::F32, {2, 1, 2, D}).value();
  test::poison(out);
  auto sinks = test::make_buffer(cpu, DType::F32, {2}, {std::log(3.0f), -INFINITY});
  ASSERT_TRUE(ops::attention(s, q, cache, lens, out, {}, sinks).is_ok());
  auto o = test::read_f32(out);
  for (int64_t e = 0; e < D; ++e) {
    EXPECT_NEAR(o[static_cast<size_t>(e)], e / 4.0, 1e-5);  // head 0: sink log 3
    EXPECT_NEAR(o[static_cast<size_t>(D + e)], e, 1e-5);    // head 1: sink -inf = no sink
    EXPECT_EQ(o[static_cast<size_t>(2 * D + e)], 0.0f);     // sequence 1: empty
    EXPECT_EQ(o[static_cast<size_t>(3 * D + e)], 0.0f);
  }
}

TEST(Attention, SoftcapApplied) {
  // Two keys with raw logits 0 and 10 (scale 1): with softcap 5 the second becomes 5 tanh(2).
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const int64_t D = 32;
  std::vector<float> k(2 * D, 0.0f), v(2 * D, 0.0f), q(D, 0.0f);
  q[0] = 1.0f;
  k[static_cast<size_t>(D)] = 10.0f;
  v[0] = 0.0f;
  v[static_cast<size_t>(D)] = 1.0f;
  ops::KvCache cache{test::make_buffer(cpu, DType::BF16, {1, 2, 1, D}, k),
                     test::make_buffer(cpu, DType::BF16, {1, 2, 1, D}, v), L::Contiguous, Buffer()};
  ops::SeqLens lens;
  lens.kv_lens = cpu.alloc(DType::I32, {1}).value();
  const int32_t two = 2;
  ASSERT_TRUE(lens.kv_lens.upload(&two, 4).is_ok());
  auto qb = test::make_buffer(cpu, DType::F32, {1, 1, 1, D}, q);
  auto out = cpu.alloc(DType::F32, {1, 1, 1, D}).value();
  for (float cap : {0.0f, 5.0f}) {
    ops::AttentionParams p;
    p.scale = 1.0f;
    p.softcap = cap;
    ASSERT_TRUE(ops::attention(s, qb, cache, lens, out, p).is_ok());
    const double l1 = cap > 0 ? 5.0 * std::tanh(2.0) : 10.0;
    EXPECT_NEAR(test::read_f32(out)[0], 1.0 / (1.0 + std::exp(-l1)), 1e-6) << "softcap " << cap;
  }
}

TEST(KvCacheWrite, ConvertsAndClamps) {
  // f32 rows into a bf16 cache; q_lens larger than kv_len clamp to kv_len; kv_len past the capacity clamps.
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const int64_t D = 32, cap = 6;
  auto cache_k = cpu.alloc(DType::BF16, {2, cap, 1, D}).value();
  auto cache_v = cpu.alloc(DType::BF16, {2, cap, 1, D}).value();
  test::poison(cache_k);
  test::poison(cache_v);
  std::vector<float> rows(2 * 3 * D);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = 1.0f + static_cast<float>(i) / 1024.0f;
  auto k = test::make_buffer(cpu, DType::F32, {2, 3, 1, D}, rows);
  ops::SeqLens lens;
  lens.kv_lens = cpu.alloc(DType::I32, {2}).value();
  lens.q_lens = cpu.alloc(DType::I32, {2}).value();
  const int32_t kvl[2] = {2, 100}, ql[2] = {3, 1};
  ASSERT_TRUE(lens.kv_lens.upload(kvl, 8).is_ok());
  ASSERT_TRUE(lens.q_lens.upload(ql, 8).is_ok());
  ASSERT_TRUE(ops::kv_cache_write(s, k, k, {cache_k, cache_v, L::Contiguous, Buffer()}, lens).is_ok());
  auto got = test::read_f32(cache_k);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < cap; ++t) {
      // seq 0: kv 2, rows 2 -> positions 0, 1 from rows 0, 1; seq 1: kv 6 (clamped), 1 row -> position 5.
      int64_t src = -1;
      if (b == 0 && t < 2) src = t;
      if (b == 1 && t == 5) src = 0;
      for (int64_t e = 0; e < D; ++e) {
        const float g = got[static_cast<size_t>((b * cap + t) * D + e)];
        if (src < 0) {
          EXPECT_TRUE(std::isnan(g)) << b << " " << t;
        } else {
          EXPECT_EQ(g, test::round_to(DType::BF16, rows[static_cast<size_t>((b * 3 + src) * D + e)])) << b << " " << t;
        }
      }
    }
}

TEST(Attention, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const int64_t D = 64;
  auto kc = cpu.alloc(DType::BF16, {2, 32, 2, D}).value();
  auto vc = cpu.alloc(DType::BF16, {2, 32, 2, D}).value();
  ops::KvCache cache{kc, vc, L::Contiguous, Buffer()};
  ops::SeqLens lens;
  lens.kv_lens = cpu.alloc(DType::I32, {2}).value();
  ASSERT_TRUE(lens.kv_lens.fill_bytes(0).is_ok());
  auto q = cpu.alloc(DType::BF16, {2, 1, 8, D}).value();
  auto out = cpu.alloc(DType::BF16, {2, 1, 8, D}).value();
  EXPECT_TRUE(ops::attention(s, q, cache, lens, out).is_ok());
  auto q7 = cpu.alloc(DType::BF16, {2, 1, 7, D}).value();
  Status st = ops::attention(s, q7, cache, lens, q7);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  st = ops::attention(s, q7, cache, lens, cpu.alloc(DType::BF16, {2, 1, 7, D}).value());
  EXPECT_EQ(st.message(), "[attention] 7 query heads are not a multiple of the cache's 2 KV heads");
  auto q3 = cpu.alloc(DType::BF16, {2, 1, 8, 32}).value();
  EXPECT_NE(
      ops::attention(s, q3, cache, lens, cpu.alloc(DType::BF16, {2, 1, 8, 32}).value()).message().find("head dim"),
      std::string::npos);
  ops::SeqLens bad_lens;
  bad_lens.kv_lens = cpu.alloc(DType::F32, {2}).value();
  EXPECT_EQ(ops::attention(s, q, cache, bad_lens, out).code(), StatusCode::Unsupported);
  bad_lens.kv_lens = cpu.alloc(DType::I32, {3}).value();
  EXPECT_EQ(ops::attention(s, q, cache, bad_lens, out).code(), StatusCode::InvalidArgument);
  ops::AttentionParams p;
  p.window = -1;
  EXPECT_EQ(ops::attention(s, q, cache, lens, out, p).code(), StatusCode::InvalidArgument);
  p.window = 8;
  p.causal = false;
  EXPECT_EQ(ops::attention(s, q, cache, lens, out, p).code(), StatusCode::Unsupported);
  p = {};
  p.softcap = NAN;
  EXPECT_EQ(ops::attention(s, q, cache, lens, out, p).code(), StatusCode::InvalidArgument);
  // Ring: needs a window that fits.
  ops::KvCache ring{kc, vc, L::Ring, Buffer()};
  EXPECT_NE(ops::attention(s, q, ring, lens, out).message().find("ring"), std::string::npos);
  p = {};
  p.window = 32;
  EXPECT_TRUE(ops::attention(s, q, ring, lens, out, p).is_ok());
  p.window = 33;
  EXPECT_NE(ops::attention(s, q, ring, lens, out, p).message().find("ring capacity"), std::string::npos);
  // Paged: a page table, page sizes of 16.
  ops::KvCache paged{kc, vc, L::Paged, Buffer()};
  EXPECT_EQ(ops::attention(s, q, paged, lens, out).code(), StatusCode::InvalidArgument);
  paged.page_table = cpu.alloc(DType::I32, {2, 4}).value();
  ASSERT_TRUE(paged.page_table.fill_bytes(0).is_ok());
  EXPECT_TRUE(ops::attention(s, q, paged, lens, out).is_ok());
  auto k17 = cpu.alloc(DType::BF16, {4, 17, 2, D}).value(), v17 = cpu.alloc(DType::BF16, {4, 17, 2, D}).value();
  EXPECT_NE(ops::attention(s, q, {k17, v17, L::Paged, paged.page_table}, lens, out).message().find("page size"),
            std::string::npos);
  // Cache dtypes and shapes.
  auto kf = cpu.alloc(DType::F32, {2, 32, 2, D}).value();
  EXPECT_EQ(ops::attention(s, q, {kf, kf, L::Contiguous, Buffer()}, lens, out).code(), StatusCode::Unsupported);
  EXPECT_NE(ops::attention(s, q, {kc, kc, L::Contiguous, Buffer()}, lens, out).message().find("overlap"),
            std::string::npos);
  // Mask and sinks shapes; out overlapping an input.
  auto mask = cpu.alloc(DType::BF16, {2, 1, 31}).value();
  EXPECT_NE(ops::attention(s, q, cache, lens, out, {}, Buffer(), mask).message().find("mask has shape"),
            std::string::npos);
  auto sinks = cpu.alloc(DType::F32, {7}).value();
  EXPECT_EQ(ops::attention(s, q, cache, lens, out, {}, sinks).code(), StatusCode::InvalidArgument);
  EXPECT_NE(ops::attention(s, q, cache, lens, q).message().find("overlap"), std::string::npos);
  // kv_cache_write.
  auto knew = cpu.alloc(DType::BF16, {2, 1, 2, D}).value();
  EXPECT_TRUE(ops::kv_cache_write(s, knew, knew, cache, lens).is_ok());
  auto k3 = cpu.alloc(DType::BF16, {2, 1, 3, D}).value();
  EXPECT_NE(ops::kv_cache_write(s, k3, k3, cache, lens).message().find("heads"), std::string::npos);
  auto kbig = cpu.alloc(DType::BF16, {2, 33, 2, D}).value();
  EXPECT_NE(ops::kv_cache_write(s, kbig, kbig, cache, lens).message().find("capacity"), std::string::npos);
  auto alias = kc.view(0, DType::BF16, {2, 1, 2, D}).value();
  EXPECT_NE(ops::kv_cache_write(s, alias, knew, cache, lens).message().find("overlaps the cache"), std::string::npos);
  // fp8 (u8) caches need f32 scales shaped like the cache without D; other caches take none.
  auto k8 = cpu.alloc(DType::U8, {2, 32, 2, D}).value(), v8 = cpu.alloc(DType::U8, {2, 32, 2, D}).value();
  auto ks = cpu.alloc(DType::F32, {2, 32, 2}).value(), vs = cpu.alloc(DType::F32, {2, 32, 2}).value();
  ops::KvCache fp8{k8, v8, L::Contiguous, Buffer(), ks, vs};
  ASSERT_TRUE(k8.fill_bytes(0).is_ok());
  ASSERT_TRUE(v8.fill_bytes(0).is_ok());
  ASSERT_TRUE(ks.fill_bytes(0).is_ok());
  ASSERT_TRUE(vs.fill_bytes(0).is_ok());
  EXPECT_TRUE(ops::attention(s, q, fp8, lens, out).is_ok());
  EXPECT_TRUE(ops::kv_cache_write(s, knew, knew, fp8, lens).is_ok());
  EXPECT_NE(ops::attention(s, q, {k8, v8, L::Contiguous, Buffer()}, lens, out).message().find("cache.k_scale"),
            std::string::npos);
  EXPECT_NE(
      ops::attention(s, q, {k8, v8, L::Contiguous, Buffer(), ks, cpu.alloc(DType::F32, {2, 32, 3}).value()}, lens, out)
          .message()
          .find("cache.v_scale has shape"),
      std::string::npos);
  EXPECT_EQ(
      ops::attention(s, q, {k8, v8, L::Contiguous, Buffer(), ks, cpu.alloc(DType::F16, {2, 32, 2}).value()}, lens, out)
          .code(),
      StatusCode::Unsupported);
  EXPECT_NE(ops::attention(s, q, {k8, v8, L::Contiguous, Buffer(), ks, ks}, lens, out).message().find("overlap"),
            std::string::npos);
  EXPECT_NE(ops::attention(s, q, {kc, vc, L::Contiguous, Buffer(), ks, vs}, lens, out).message().find("scales given"),
            std::string::npos);
  EXPECT_NE(ops::kv_cache_write(s, ks.view(0, DType::BF16, {2, 1, 2, D}).value(), knew, fp8, lens)
                .message()
                .find("overlaps the cache"),
            std::string::npos);
  // q8_0 / q4_0: i8 / u8 codes (D / 2 columns for q4_0) and f16 scales [.., Hkv, D / 32]; D a multiple of 32.
  auto ki8 = cpu.alloc(DType::I8, {2, 32, 2, D}).value(), vi8 = cpu.alloc(DType::I8, {2, 32, 2, D}).value();
  auto k4 = cpu.alloc(DType::U8, {2, 32, 2, D / 2}).value(), v4 = cpu.alloc(DType::U8, {2, 32, 2, D / 2}).value();
  auto kd = cpu.alloc(DType::F16, {2, 32, 2, D / 32}).value(), vd = cpu.alloc(DType::F16, {2, 32, 2, D / 32}).value();
  for (const Buffer* b : {&ki8, &vi8, &k4, &v4, &kd, &vd}) ASSERT_TRUE(b->fill_bytes(0).is_ok());
  ops::KvCache q8{ki8, vi8, L::Contiguous, Buffer(), kd, vd, ops::KvQuant::Q8_0};
  ops::KvCache q4c{k4, v4, L::Contiguous, Buffer(), kd, vd, ops::KvQuant::Q4_0};
  EXPECT_TRUE(ops::attention(s, q, q8, lens, out).is_ok());
  EXPECT_TRUE(ops::attention(s, q, q4c, lens, out).is_ok());
  EXPECT_TRUE(ops::kv_cache_write(s, knew, knew, q8, lens).is_ok());
  EXPECT_TRUE(ops::kv_cache_write(s, knew, knew, q4c, lens).is_ok());
  EXPECT_EQ(ops::attention(s, q, {k8, v8, L::Contiguous, Buffer(), kd, vd, ops::KvQuant::Q8_0}, lens, out).code(),
            StatusCode::Unsupported);  // q8_0 codes are i8
  EXPECT_NE(ops::attention(s, q, {k8, v8, L::Contiguous, Buffer(), kd, vd, ops::KvQuant::Q4_0}, lens, out)
                .message()
                .find("columns"),
            std::string::npos);  // q4_0 holds D / 2 bytes per row
  EXPECT_NE(ops::attention(s, q, {ki8, vi8, L::Contiguous, Buffer(), Buffer(), vd, ops::KvQuant::Q8_0}, lens, out)
                .message()
                .find("cache.k_scale is required"),
            std::string::npos);
  EXPECT_EQ(ops::attention(s, q, {ki8, vi8, L::Contiguous, Buffer(), ks, vs, ops::KvQuant::Q8_0}, lens, out).code(),
            StatusCode::Unsupported);  // f32 scales
  auto kd2 = cpu.alloc(DType::F16, {2, 32, 2, 3}).value();
  EXPECT_NE(ops::attention(s, q, {ki8, vi8, L::Contiguous, Buffer(), kd2, vd, ops::KvQuant::Q8_0}, lens, out)
                .message()
                .find("cache.k_scale has shape"),
            std::string::npos);
  EXPECT_NE(ops::attention(s, q, {ki8, vi8, L::Contiguous, Buffer(), kd, kd, ops::KvQuant::Q8_0}, lens, out)
                .message()
                .find("overlap"),
            std::string::npos);
  auto q48 = cpu.alloc(DType::BF16, {2, 1, 8, 48}).value(), o48 = cpu.alloc(DType::BF16, {2, 1, 8, 48}).value();
  auto k48 = cpu.alloc(DType::I8, {2, 32, 2, 48}).value(), v48 = cpu.alloc(DType::I8, {2, 32, 2, 48}).value();
  EXPECT_NE(ops::attention(s, q48, {k48, v48, L::Contiguous, Buffer(), kd, vd, ops::KvQuant::Q8_0}, lens, o48)
                .message()
                .find("multiple of 32"),
            std::string::npos);
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
