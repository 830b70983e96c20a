// Sampling on CUDA: exact agreement with the CPU backend for greedy and one-token filters, agreement on nearly
// every row otherwise (same generator and formulas; rounding may move a boundary), filter membership, goodness of
// fit, and a captured graph that draws a fresh token per replay from the step slots.
#include "sample_cases.h"

namespace mlxn {
namespace {

struct GpuSampleCase {
  int64_t rows, vocab;
  DType t;
  ops::SampleParams p;
  bool history;
  const char* what;
};

std::vector<GpuSampleCase> gpu_cases() {
  std::vector<GpuSampleCase> v;
  auto add = [&](int64_t rows, int64_t vocab, DType t, ops::SampleParams p, bool hist, const char* what) {
    v.push_back({rows, vocab, t, p, hist, what});
  };
  ops::SampleParams greedy;
  greedy.temperature = 0.0f;
  ops::SampleParams k1;
  k1.top_k = 1;
  ops::SampleParams minp1;
  minp1.min_p = 1.0f;
  ops::SampleParams plain;
  ops::SampleParams k40;
  k40.top_k = 40;
  k40.temperature = 0.8f;
  ops::SampleParams p09;
  p09.top_p = 0.9f;
  ops::SampleParams k40p09;
  k40p09.top_k = 40;
  k40p09.top_p = 0.9f;
  ops::SampleParams k500;  // larger than a chunk's pool share at 262144: the full-row search
  k500.top_k = 500;
  ops::SampleParams mp;
  mp.min_p = 0.05f;
  mp.temperature = 1.5f;
  ops::SampleParams pen = k40;
  pen.repetition_penalty = 1.3f;
  pen.frequency_penalty = 0.3f;
  pen.presence_penalty = 0.2f;
  for (DType t : test::float_dtypes()) {
    add(4, 151936, t, greedy, false, "greedy");
    add(3, 262144, t, k1, false, "top-k 1");
    add(2, 32000, t, minp1, false, "min-p 1");
  }
  add(1, 262144, DType::BF16, k40p09, false, "top-k 40 + top-p 0.9");
  // The decode shape of the bar (Qwen vocabulary, batch 1 and 64): the small-set top-p path of the pool kernel.
  add(1, 151936, DType::BF16, k40p09, false, "top-k 40 + top-p 0.9");
  add(64, 151936, DType::BF16, k40p09, false, "top-k 40 + top-p 0.9");
  add(1, 151936, DType::F32, k40, false, "top-k 40");
  ops::SampleParams k1000p05;  // a small set of ~1000 ranked by counting
  k1000p05.top_k = 1000;
  k1000p05.top_p = 0.5f;
  add(2, 32000, DType::F32, k1000p05, false, "top-k 1000 + top-p 0.5");
  ops::SampleParams k2000p09;  // more than 1024 kept: the whole-pool sort
  k2000p09.top_k = 2000;
  k2000p09.top_p = 0.9f;
  add(2, 32000, DType::F32, k2000p09, false, "top-k 2000 + top-p 0.9");
  add(8, 151936, DType::BF16, p09, false, "top-p 0.9 alone");
  add(4, 151936, DType::F32, plain, false, "plain temperature (full-row pass)");
  add(2, 262144, DType::F16, k500, false, "top-k 500 (search)");
  add(16, 5000, DType::F32, mp, false, "min-p");
  add(5, 4096, DType::BF16, k40, false, "one chunk");
  add(3, 4097, DType::F32, k40, false, "two chunks");
  add(7, 7, DType::F32, plain, false, "tiny vocab");
  add(4, 151936, DType::BF16, pen, true, "penalties");
  ops::SampleParams pen_greedy = pen;
  pen_greedy.temperature = 0.0f;
  add(4, 32000, DType::F32, pen_greedy, true, "penalties greedy");
  return v;
}

TEST(GpuSample, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto c : gpu_cases()) {
    SCOPED_TRACE(detail::cat(c.what, ": ", c.rows, "x", c.vocab, " ", c.t));
    // Logits like a model's: N(0, 2), a few large ones; a flat row for the wide nucleus case.
    auto logits =
        test::rounded(c.t, test::randn(static_cast<size_t>(c.rows * c.vocab), seed + static_cast<uint64_t>(i), 2.0f));
    std::vector<int32_t> hist;
    if (c.history) {
      std::mt19937_64 g(seed + 99);
      for (int64_t r = 0; r < c.rows; ++r)
        for (int j = 0; j < 64; ++j)
          hist.push_back(
              j % 9 == 0 ? -1 : static_cast<int32_t>(g() % static_cast<uint64_t>(std::min<int64_t>(c.vocab, 200))));
      // Make the penalized tokens the large ones, so the penalties change the answer.
      for (int64_t r = 0; r < c.rows; ++r)
        for (int j = 0; j < 64; ++j)
          if (hist[static_cast<size_t>(r * 64 + j)] >= 0)
            logits[static_cast<size_t>(r * c.vocab + hist[static_cast<size_t>(r * 64 + j)])] = 6.0f;
    }
    c.p.seed = seed ^ 0x5a5a;
    c.p.step = static_cast<uint32_t>(i++);
    auto cpu = test::run_sample(Device::cpu(), c.t, c.rows, c.vocab, logits, hist, c.p, 1);
    auto cuda = test::run_sample(gpu, c.t, c.rows, c.vocab, logits, hist, c.p, 1);
    ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
    ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
    int agree = 0;
    for (int64_t r = 0; r < c.rows; ++r) {
      const int32_t tok = cuda.tokens[static_cast<size_t>(r)];
      ASSERT_TRUE(tok >= 0 && tok < c.vocab) << "row " << r << " token " << tok;
      agree += tok == cpu.tokens[static_cast<size_t>(r)];
      // Membership in the exact filtered set.
      const auto l = test::ref_penalized(logits.data() + r * c.vocab, c.vocab,
                                         hist.empty() ? nullptr : hist.data() + r * 64, hist.empty() ? 0 : 64, c.p);
      const auto dist = test::ref_distribution(l, c.p);
      EXPECT_GT(dist[static_cast<size_t>(tok)], 0.0) << "row " << r << " drew " << tok << " outside the filter";
      if (cuda.tokens[static_cast<size_t>(r)] == cpu.tokens[static_cast<size_t>(r)]) {
        EXPECT_NEAR(cuda.logprobs[static_cast<size_t>(r)], cpu.logprobs[static_cast<size_t>(r)], 2e-3);
      }
    }
    const bool exact = c.p.temperature <= 0 || c.p.top_k == 1 || c.p.min_p >= 1;
    if (exact) {
      EXPECT_EQ(cuda.tokens, cpu.tokens);
    } else {
      EXPECT_GE(agree, c.rows - std::max<int64_t>(1, c.rows / 8)) << "tokens differ from the CPU on too many rows";
    }
  }
}

TEST(GpuSample, GoodnessOfFit) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t rows = 20000, vocab = 10;
  const auto one = test::small_logits();
  std::vector<float> logits;
  for (int64_t r = 0; r < rows; ++r) logits.insert(logits.end(), one.begin(), one.end());
  std::vector<int32_t> hist;
  for (int64_t r = 0; r < rows; ++r) hist.insert(hist.end(), {0, 4, 0, -1});
  int i = 0;
  for (auto p : test::fit_configs()) {
    p.seed = seed + static_cast<uint64_t>(i++);
    p.step = 7;
    const bool pen = p.repetition_penalty != 1.0f;
    SCOPED_TRACE(detail::cat("config ", i));
    auto run = test::run_sample(gpu, DType::F32, rows, vocab, logits, pen ? hist : std::vector<int32_t>{}, p);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    const int32_t h[4] = {0, 4, 0, -1};
    const auto dist = test::ref_distribution(test::ref_penalized(one.data(), vocab, h, pen ? 4 : 0, p), p);
    int outside = 0;
    EXPECT_GT(test::goodness_of_fit(run.tokens, dist, &outside), 1e-4);
    EXPECT_EQ(outside, 0);
  }
}

TEST(GpuSample, GraphReplayDrawsPerStep) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t rows = 2, vocab = 151936;
  const auto logits = test::rounded(DType::BF16, test::randn(static_cast<size_t>(rows * vocab), seed, 2.0f));
  auto s = Session::create(gpu).value();
  auto lb = test::make_buffer(gpu, DType::BF16, {rows, vocab}, logits);
  auto tok = gpu.alloc(DType::I32, {rows}).value();
  auto ws = test::workspace(gpu, ops::sample_workspace_bytes(rows, vocab));
  for (const bool filtered : {true, false}) {
    ops::SampleParams q;
    q.top_k = filtered ? 40 : 0;
    q.top_p = filtered ? 0.9f : 1.0f;
    q.seed_slot = 4;
    q.step_slot = 3;
    ASSERT_TRUE(s.begin_capture().is_ok());
    ASSERT_TRUE(ops::sample(s, lb, Buffer(), tok, Buffer(), ws, q).is_ok());
    auto g = s.end_capture();
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    for (uint32_t step = 0; step < 6; ++step) {
      ASSERT_TRUE(s.set_step_u32(3, step).is_ok());
      ASSERT_TRUE(s.set_step_u32(4, static_cast<uint32_t>(seed)).is_ok());
      ASSERT_TRUE(g->replay().is_ok());
      ASSERT_TRUE(s.finish().is_ok());
      ops::SampleParams fixed = q;
      fixed.seed_slot = fixed.step_slot = -1;
      fixed.seed = static_cast<uint32_t>(seed);
      fixed.step = step;
      auto eager = test::run_sample(gpu, DType::BF16, rows, vocab, logits, {}, fixed);
      ASSERT_TRUE(eager.status.is_ok());
      EXPECT_EQ(test::read_i32(tok), eager.tokens) << "step " << step;
    }
  }
}

TEST(GpuSample, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType t : test::float_dtypes()) {
    auto x = gpu.alloc(t, {2, 64}).value();
    ASSERT_TRUE(x.fill_bytes(0).is_ok());
    auto tok = gpu.alloc(DType::I32, {2}).value();
    auto ws = test::workspace(gpu, ops::sample_workspace_bytes(2, 64));
    EXPECT_EQ(ops::sample(s, x, Buffer(), tok, Buffer(), ws).is_ok(),
              gpu.kernels().supports("sample", KernelRegistry::key({t})));
  }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
