// Sampling on the CPU backend: the generator's known answers, goodness of fit against the exact filtered
// distribution, filter membership, penalties against a hand-computed case, determinism and step-parameter slots.
#include "kernels/keys.h"
#include "sample_cases.h"

namespace mlxn {
namespace {

TEST(Philox, Random123KnownAnswers) {
  auto a = kern::philox4x32_10(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(std::vector<uint32_t>(a.v, a.v + 4),
            (std::vector<uint32_t>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  auto b = kern::philox4x32_10(~0u, ~0u, ~0u, ~0u, ~0u, ~0u);
  EXPECT_EQ(std::vector<uint32_t>(b.v, b.v + 4),
            (std::vector<uint32_t>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  auto c = kern::philox4x32_10(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0);
  EXPECT_EQ(std::vector<uint32_t>(c.v, c.v + 4),
            (std::vector<uint32_t>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Sample, GoodnessOfFit) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t rows = 20000, vocab = 10;
  const auto one = test::small_logits();
  std::vector<float> logits;
  for (int64_t r = 0; r < rows; ++r) logits.insert(logits.end(), one.begin(), one.end());
  // History for the penalty config: tokens 0 (twice) and 4 in every row.
  std::vector<int32_t> hist;
  for (int64_t r = 0; r < rows; ++r) hist.insert(hist.end(), {0, 4, 0, -1});
  int i = 0;
  for (auto p : test::fit_configs()) {
    p.seed = seed + static_cast<uint64_t>(i++);
    p.step = 3;
    const bool pen = p.repetition_penalty != 1.0f;
    SCOPED_TRACE(detail::cat("config ", i, " T=", p.temperature, " k=", p.top_k, " p=", p.top_p, " min_p=", p.min_p));
    auto run = test::run_sample(Device::cpu(), DType::F32, rows, vocab, logits, pen ? hist : std::vector<int32_t>{}, p);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    const int32_t h[4] = {0, 4, 0, -1};
    const auto dist = test::ref_distribution(test::ref_penalized(one.data(), vocab, h, pen ? 4 : 0, p), p);
    int outside = 0;
    const double pv = test::goodness_of_fit(run.tokens, dist, &outside);
    EXPECT_EQ(outside, 0) << "drawn outside the filtered set";
    EXPECT_GT(pv, 1e-4) << "chi-square p-value";
  }
}

TEST(Sample, ChiSquarePValueSanity) {
  // Known quantiles: chi2(1) at 3.841 -> 0.05, chi2(9) at 33.72 -> 1e-4, chi2(4) at 9.488 -> 0.05.
  EXPECT_NEAR(test::chi2_pvalue(3.841, 1), 0.05, 1e-3);
  EXPECT_NEAR(test::chi2_pvalue(33.72, 9), 1e-4, 1e-5);
  EXPECT_NEAR(test::chi2_pvalue(9.488, 4), 0.05, 1e-3);
}

TEST(Sample, FilterMembershipAndGreedy) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t rows = 48, vocab = 5000;
  for (DType t : test::float_dtypes()) {
    const auto logits = test::tie_data(static_cast<size_t>(rows * vocab), seed, t);
    std::vector<ops::SampleParams> configs(5);
    configs[0].temperature = 0.0f;
    configs[1].top_k = 50;
    configs[2].top_p = 0.3f;
    configs[3].min_p = 0.2f;
    configs[4].top_k = 1;  // one token: the argmax
    for (auto& p : configs) {
      p.seed = seed;
      p.step = 11;
      SCOPED_TRACE(detail::cat(t, " T=", p.temperature, " k=", p.top_k, " p=", p.top_p, " min_p=", p.min_p));
      auto run = test::run_sample(Device::cpu(), t, rows, vocab, logits, {}, p, 3);
      ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
      for (int64_t r = 0; r < rows; ++r) {
        const auto l = test::ref_penalized(logits.data() + r * vocab, vocab, nullptr, 0, p);
        const auto dist = test::ref_distribution(l, p);
        const int32_t tok = run.tokens[static_cast<size_t>(r)];
        ASSERT_TRUE(tok >= 0 && tok < vocab);
        EXPECT_GT(dist[static_cast<size_t>(tok)], 0.0) << "row " << r << " token " << tok;
        double mx = -INFINITY, z = 0;
        for (double v : l) mx = std::max(mx, v);
        for (double v : l) z += std::exp(v - mx);
        EXPECT_NEAR(run.logprobs[static_cast<size_t>(r)], l[static_cast<size_t>(tok)] - mx - std::log(z), 1e-4);
      }
    }
  }
}

TEST(Sample, PenaltiesHandComputed) {
  // Row 0: history {1, 1, 3, -1, 9, 2, 4, 4, 4, 5} (-1 and 9 are padding), repetition 2, frequency 0.5,
  // presence 0.25: token 1 (2x): 2 / 2 - 1.25 = -0.25; token 3: 0.5 / 2 - 0.75 = -0.5; token 2: -1 * 2 - 0.75 =
  // -2.75; token 4 (3x): 3 / 2 - 1.75 = -0.25; token 5: 0 * 2 - 0.75 = -0.75; token 0 unchanged (1).
  // Row 1: no history entries in range: logits unchanged, argmax 4.
  const std::vector<float> row = {1.0f, 2.0f, -1.0f, 0.5f, 3.0f, 0.0f};
  std::vector<float> logits = row;
  logits.insert(logits.end(), row.begin(), row.end());
  std::vector<int32_t> hist = {1, 1, 3, -1, 9, 2, 4, 4, 4, 5, -1, -1, 6, 7, -5, 100, -1, -1, -1, -1};
  ops::SampleParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  auto run = test::run_sample(Device::cpu(), DType::F32, 2, 6, logits, hist, p);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  const std::vector<double> pen = {1.0, -0.25, -2.75, -0.5, -0.25, -0.75};
  double z0 = 0, z1 = 0;
  for (double v : pen) z0 += std::exp(v - 1.0);
  for (float v : row) z1 += std::exp(v - 3.0);
  EXPECT_EQ(run.tokens, (std::vector<int32_t>{0, 4}));
  EXPECT_NEAR(run.logprobs[0], -std::log(z0), 1e-6);
  EXPECT_NEAR(run.logprobs[1], -std::log(z1), 1e-6);
}

TEST(Sample, DeterminismAndStepSlots) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  const int64_t rows = 64, vocab = 1000;
  const auto logits = test::randn(static_cast<size_t>(rows * vocab), seed);
  ops::SampleParams p;
  p.seed = seed;
  p.step = 5;
  auto a = test::run_sample(cpu, DType::F32, rows, vocab, logits, {}, p);
  auto b = test::run_sample(cpu, DType::F32, rows, vocab, logits, {}, p);
  ASSERT_TRUE(a.status.is_ok() && b.status.is_ok());
  EXPECT_EQ(a.tokens, b.tokens);
  p.step = 6;
  auto c = test::run_sample(cpu, DType::F32, rows, vocab, logits, {}, p);
  int differ = 0;
  for (int64_t r = 0; r < rows; ++r) differ += a.tokens[static_cast<size_t>(r)] != c.tokens[static_cast<size_t>(r)];
  EXPECT_GT(differ, rows / 2) << "a new step must draw new tokens";

  // Seed, step and temperature from step-parameter slots, eager and through a captured graph.
  auto s = Session::create(cpu).value();
  auto lb = test::make_buffer(cpu, DType::F32, {rows, vocab}, logits);
  auto tok = cpu.alloc(DType::I32, {rows}).value();
  auto ws = test::workspace(cpu, ops::sample_workspace_bytes(rows, vocab));
  ops::SampleParams q;
  q.seed = seed & 0xffffffff00000000ull;  // the high half stays fixed; the low half comes from slot 4
  q.seed_slot = 4;
  q.step_slot = 3;
  q.temperature_slot = 7;
  ASSERT_TRUE(s.begin_capture().is_ok());
  ASSERT_TRUE(ops::sample(s, lb, Buffer(), tok, Buffer(), ws, q).is_ok());
  auto g = s.end_capture();
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  for (uint32_t step : {5u, 6u, 9u}) {
    ASSERT_TRUE(s.set_step_u32(3, step).is_ok());
    ASSERT_TRUE(s.set_step_u32(4, static_cast<uint32_t>(seed)).is_ok());
    ASSERT_TRUE(s.set_step_f32(7, 1.0f).is_ok());
    ASSERT_TRUE(g->replay().is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    ops::SampleParams fixed;
    fixed.seed = seed;
    fixed.step = step;
    auto want = test::run_sample(cpu, DType::F32, rows, vocab, logits, {}, fixed);
    EXPECT_EQ(test::read_i32(tok), want.tokens) << "step " << step;
  }
  // Temperature 0 from the slot: greedy.
  ASSERT_TRUE(s.set_step_f32(7, 0.0f).is_ok());
  ASSERT_TRUE(g->replay().is_ok());
  ASSERT_TRUE(s.finish().is_ok());
  ops::SampleParams greedy;
  greedy.temperature = 0.0f;
  EXPECT_EQ(test::read_i32(tok), test::run_sample(cpu, DType::F32, rows, vocab, logits, {}, greedy).tokens);
}

TEST(Sample, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto logits = cpu.alloc(DType::BF16, {2, 100}).value();
  auto tok = cpu.alloc(DType::I32, {2}).value();
  auto ws = cpu.alloc(DType::U8, {static_cast<int64_t>(ops::sample_workspace_bytes(2, 100))}).value();
  EXPECT_TRUE(ops::sample(s, logits, Buffer(), tok, Buffer(), ws).is_ok());
  auto ws_short = cpu.alloc(DType::U8, {16}).value();
  Status st = ops::sample(s, logits, Buffer(), tok, Buffer(), ws_short);
  EXPECT_NE(st.message().find("sample_workspace_bytes"), std::string::npos) << st.to_string();
  auto tok3 = cpu.alloc(DType::I32, {3}).value();
  EXPECT_EQ(ops::sample(s, logits, Buffer(), tok3, Buffer(), ws).message(),
            "[sample] tokens has 3 elements, expected 2");
  auto tokf = cpu.alloc(DType::F32, {2}).value();
  EXPECT_EQ(ops::sample(s, logits, Buffer(), tokf, Buffer(), ws).code(), StatusCode::Unsupported);
  auto hist_bad = cpu.alloc(DType::I32, {3}).value();
  EXPECT_EQ(ops::sample(s, logits, hist_bad, tok, Buffer(), ws).code(), StatusCode::InvalidArgument);
  ops::SampleParams p;
  p.top_p = 0.0f;
  EXPECT_NE(ops::sample(s, logits, Buffer(), tok, Buffer(), ws, p).message().find("top_p"), std::string::npos);
  p = {};
  p.min_p = 1.5f;
  EXPECT_EQ(ops::sample(s, logits, Buffer(), tok, Buffer(), ws, p).code(), StatusCode::InvalidArgument);
  p = {};
  p.repetition_penalty = 0.0f;
  EXPECT_EQ(ops::sample(s, logits, Buffer(), tok, Buffer(), ws, p).code(), StatusCode::InvalidArgument);
  p = {};
  p.step_slot = 64;
  EXPECT_EQ(ops::sample(s, logits, Buffer(), tok, Buffer(), ws, p).code(), StatusCode::InvalidArgument);
  p = {};
  p.top_k = -1;
  EXPECT_EQ(ops::sample(s, logits, Buffer(), tok, Buffer(), ws, p).code(), StatusCode::InvalidArgument);
  // The workspace must not alias the outputs.
  auto big = cpu.alloc(DType::U8, {static_cast<int64_t>(ops::sample_workspace_bytes(2, 100)) + 64}).value();
  auto tok_in_ws = big.view(0, DType::I32, {2}).value();
  EXPECT_NE(ops::sample(s, logits, Buffer(), tok_in_ws, Buffer(), big).message().find("overlaps"), std::string::npos);
}

}  // namespace
}  // namespace mlxn
