// Attention and KV-cache write on CUDA against the CPU backend: every head dim, dtype pair and layout of
// attention_cases.h (decode and prefill), graph replay with new lengths, and registry / dispatch agreement.
#include <cstdio>
#include <optional>

#include "attention_cases.h"

namespace mlxn {
namespace {

using L = ops::KvLayout;

const std::vector<int32_t> kHeadDims = {64, 80, 96, 128, 192, 256, 512};

bool supported(const Device& dev, const test::AttnCase& c) {
  return dev.kernels().supports("attention", KernelRegistry::key({c.tq, c.tkv, c.tout}) + ".d" + std::to_string(c.d));
}

// f32 accumulation with P rounded to the input dtype for the tensor-core product, then one output rounding.
double atol_for(DType t) { return t == DType::BF16 ? 1e-2 : 2e-3; }

void expect_gpu_matches_cpu(const Device& gpu, test::AttnCase c, uint64_t seed) {
  c.tout = c.tq;  // CUDA writes out in q's dtype
  SCOPED_TRACE(test::describe(c));
  if (!supported(gpu, c)) {
    std::printf("skipped (variant not in this build's kernel set): %s\n", test::describe(c).c_str());
    return;
  }
  auto cpu = test::run_attention(Device::cpu(), c, seed);
  auto cuda = test::run_attention(gpu, c, seed);
  ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
  ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
  EXPECT_TRUE(cuda.cache_ok) << cuda.cache_error;
  // q8_0 / q4_0 caches: CUDA rounds each dequantized K / V value once more, to f16, before the tensor-core
  // products (include/mlxn/ops/attention.h). Where the naive double reference is cheap, compare against it over
  // the cache values rounded the same way, within the f16 cache's allowance: that rounding moves the scores by up
  // to |q| |k| 2^-11 scale, which large logits turn into more than a fixed multiple of rtol (seen: 4.6x at d 256
  // with a mask). Larger cases: the CPU backend within twice the relative allowance.
  const bool block_kv = c.tkv == DType::Q8_0 || c.tkv == DType::Q4_0;
  int64_t work = 0;
  for (int32_t kv : c.kv_lens) work += static_cast<int64_t>(c.q_len) * c.hq * kv * c.d;
  if (block_kv && work <= 50'000'000) {
    test::AttnRun r = cuda;
    for (auto& v : r.k_abs) v = test::rounded(DType::F16, v);
    for (auto& v : r.v_abs) v = test::rounded(DType::F16, v);
    const auto ref64 = test::attention_naive(c, r);
    const std::vector<float> ref(ref64.begin(), ref64.end());
    EXPECT_LE(test::max_scaled_err(cuda.out, ref, atol_for(c.tout), 2 * test::rtol_for(c.tout)), 1.0);
    EXPECT_LE(test::rel_l2(cuda.out, ref), c.tout == DType::BF16 ? 8e-3 : 2e-3);
    return;
  }
  EXPECT_LE(test::max_scaled_err(cuda.out, cpu.out, atol_for(c.tout), (block_kv ? 4 : 2) * test::rtol_for(c.tout)),
            1.0);
  EXPECT_LE(test::rel_l2(cuda.out, cpu.out), c.tout == DType::BF16 ? 8e-3 : 2e-3);
}

TEST(GpuAttention, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<std::pair<DType, DType>> types = {
      {DType::BF16, DType::BF16}, {DType::F16, DType::F16}, {DType::BF16, DType::F16}};
  int run = 0;
  for (const auto& c : test::attn_cases(kHeadDims, types, true)) {
    test::AttnCase cc = c;
    cc.tout = cc.tq;
    if (!supported(gpu, cc)) continue;
    expect_gpu_matches_cpu(gpu, cc, seed);
    ++run;
  }
  EXPECT_GT(run, 0) << "no attention variant in this build";
}

TEST(GpuAttention, QuantBlockMatchesCpu) {
  // q8_0 / q4_0 caches (split GGML blocks): the CUDA write must store the test's ggml quantization exactly (codes and
  // f16 scales; run_attention checks the cache), and decode (any q_len) matches the CPU within the f16 tolerance: the
  // kernel forms code x d in f16 (one rounding, 2^-11 relative, as an f16 cache) and rounds P to f16.
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<std::pair<DType, DType>> types = {
      {DType::BF16, DType::Q8_0}, {DType::F16, DType::Q8_0}, {DType::BF16, DType::Q4_0}, {DType::F16, DType::Q4_0}};
  int run = 0;
  for (const auto& c : test::attn_cases({64, 128, 192, 256}, types, true)) {
    test::AttnCase cc = c;
    cc.tout = cc.tq;
    if (!supported(gpu, cc)) continue;
    expect_gpu_matches_cpu(gpu, cc, seed);
    ++run;
  }
  EXPECT_GT(run, 0) << "no q8_0 / q4_0 attention variant in this build";
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    auto c = test::attn_case(1, 32, 8, 128, {20000});
    c.tkv = t;
    expect_gpu_matches_cpu(gpu, c, seed);
    auto b = test::attn_case(1, 32, 8, 128, {9000, 3000, 1}, L::Paged, 9008);
    b.tkv = t;
    b.tq = DType::F16;
    expect_gpu_matches_cpu(gpu, b, seed);
  }
}

TEST(GpuAttention, Fp8MatchesCpu) {
  // fp8 e4m3 caches: the CUDA write must store the CPU's bytes and scales exactly (run_attention checks the cache
  // against the test's own quantization), and decode (any q_len: fp8 never takes the prefill kernel) matches the
  // CPU within the f16 tolerance (e4m3 -> f16 is exact; P is rounded to f16).
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<std::pair<DType, DType>> types = {{DType::BF16, DType::U8}, {DType::F16, DType::U8}};
  int run = 0;
  for (const auto& c : test::attn_cases({64, 80, 96, 128, 192, 256}, types, true)) {
    test::AttnCase cc = c;
    cc.tout = cc.tq;
    if (!supported(gpu, cc)) continue;
    expect_gpu_matches_cpu(gpu, cc, seed);
    ++run;
  }
  EXPECT_GT(run, 0) << "no fp8 attention variant in this build";
  auto c = test::attn_case(1, 32, 8, 128, {20000});
  c.tkv = DType::U8;
  expect_gpu_matches_cpu(gpu, c, seed);
  auto b = test::attn_case(1, 32, 8, 128, {9000, 3000, 1});
  b.tkv = DType::U8;
  b.tq = DType::F16;
  expect_gpu_matches_cpu(gpu, b, seed);
}

TEST(GpuAttention, LongDecodeAndPrefill) {
  // Lengths that use many splits and many prefill tiles, with a window and a ring.
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  expect_gpu_matches_cpu(gpu, test::attn_case(1, 32, 8, 128, {20000}), seed);
  expect_gpu_matches_cpu(gpu, test::attn_case(4, 32, 8, 128, {9000, 3000}), seed);
  // Batch 16 (one split per sequence: the decode block normalises and writes out itself), uneven lengths.
  {
    std::vector<int32_t> lens;
    for (int i = 0; i < 16; ++i) lens.push_back(1 + 577 * i);
    auto c = test::attn_case(1, 32, 8, 128, lens);
    c.sinks = true;
    expect_gpu_matches_cpu(gpu, c, seed);
  }
  // Sinks and a mask over several splits (merged by the merge kernel).
  {
    auto c = test::attn_case(1, 32, 8, 128, {3001});
    c.sinks = true;
    c.mask = true;
    expect_gpu_matches_cpu(gpu, c, seed);
  }
  // MHA (one real row of the mma's 8) and GQA 8 at q_len 2 (16 rows), head dims 64 and 256.
  expect_gpu_matches_cpu(gpu, test::attn_case(1, 4, 4, 64, {5000}), seed);
  expect_gpu_matches_cpu(gpu, test::attn_case(2, 16, 2, 256, {3000}), seed);
  auto w = test::attn_case(1, 16, 8, 256, {12000}, L::Ring, 4096);
  w.window = 4096;
  w.softcap = 50.0f;
  expect_gpu_matches_cpu(gpu, w, seed);
  expect_gpu_matches_cpu(gpu, test::attn_case(700, 8, 2, 128, {700}), seed);        // prefill from 0
  expect_gpu_matches_cpu(gpu, test::attn_case(300, 8, 2, 128, {1500, 301}), seed);  // chunked, uneven
  auto pw = test::attn_case(513, 8, 1, 64, {2000}, L::Paged, 2048);
  pw.window = 100;
  pw.sinks = true;
  expect_gpu_matches_cpu(gpu, pw, seed);
}

TEST(GpuAttention, PrefillSm90Schedules) {
  // Head dim 128 prefill, which takes the wgmma kernel on sm_90 (src/cuda/attention_prefill_sm90.cuh): tile counts
  // 1 to 5 per block (the two warpgroup schedules, the loop unrolled by two with an odd tail), interior tiles (raw S,
  // folded scale) next to boundary tiles, an explicit scale and softcap / mask calls (no folding), peaky rows (the O
  // rescale taken and skipped), contiguous batches with spare capacity, ring and paged caches, and the same call
  // twice for bitwise determinism. On other GPUs the mma.sync kernel runs the same cases.
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (auto [tq, tkv] : {std::pair{DType::BF16, DType::BF16}, std::pair{DType::F16, DType::F16}}) {
    auto run = [&](test::AttnCase c) {
      c.tq = tq;
      c.tkv = tkv;
      expect_gpu_matches_cpu(gpu, c, seed);
    };
    // Non-causal: every block sees all keys, 1..5 tiles of 128 (300 and 600: a partial last tile); 100 new rows (the
    // query rows are the last rows written to the cache, so q_len <= kv).
    for (int32_t kv : {128, 256, 300, 512, 600}) {
      auto c = test::attn_case(100, 8, 2, 128, {kv});
      c.causal = false;
      run(c);
    }
    // Causal prefill from 0, two sequences (row offsets b x capacity), peaky and flat softmax rows.
    {
      auto c = test::attn_case(1000, 8, 2, 128, {1000, 1000}, L::Contiguous, 1200);
      c.q_std = 4.0f;
      run(c);
      c.q_std = 0.3f;
      run(c);
    }
    // Chunked prefill resuming at offsets (the diagonal tile inside a block), uneven rows.
    {
      auto c = test::attn_case(384, 8, 2, 128, {1536, 700});
      c.q_lens = {384, 251};
      run(c);
    }
    // An explicit scale (folded into the exponent like the default one).
    {
      auto c = test::attn_case(300, 8, 2, 128, {600});
      c.scale = 0.21f;
      run(c);
    }
    // Softcap with sinks; an additive mask (non-causal, per sequence).
    {
      auto c = test::attn_case(260, 8, 2, 128, {900});
      c.softcap = 20.0f;
      c.sinks = true;
      c.q_std = 3.0f;
      run(c);
      auto m = test::attn_case(200, 8, 8, 128, {520, 200});
      m.causal = false;
      m.mask = true;
      m.mask_batch = true;
      run(m);
    }
    // Ring with a window (wrapped positions) and paged caches.
    {
      auto r = test::attn_case(300, 8, 2, 128, {2000}, L::Ring, 700);
      r.window = 256;
      run(r);
      auto pg = test::attn_case(500, 8, 2, 128, {1200, 640}, L::Paged, 1280);
      pg.q_lens = {500, 129};
      run(pg);
    }
  }
  // Determinism: the same call twice gives the same bits.
  auto c = test::attn_case(700, 8, 2, 128, {2100});
  auto a = test::run_attention(gpu, c, seed);
  auto b = test::run_attention(gpu, c, seed);
  ASSERT_TRUE(a.status.is_ok() && b.status.is_ok());
  ASSERT_EQ(a.out.size(), b.out.size());
  size_t diff = 0;
  for (size_t i = 0; i < a.out.size(); ++i) diff += a.out[i] != b.out[i] ? 1 : 0;
  EXPECT_EQ(diff, 0u);
}

TEST(GpuAttention, GraphReplayWithNewLengths) {
  // One captured decode step replayed with new lengths (device buffers updated between replays) matches eager CPU
  // runs at those lengths.
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const int32_t hq = 8, hkv = 2, D = 128, cap = 3000;
  if (!gpu.kernels().supports("attention", "bf16.bf16.bf16.d128")) GTEST_SKIP() << "no d128 kernels";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  auto kv_vals = test::rounded(DType::BF16, test::randn(static_cast<size_t>(cap) * hkv * D, seed));
  auto vv_vals = test::rounded(DType::BF16, test::randn(static_cast<size_t>(cap) * hkv * D, seed + 1));
  auto q_vals = test::rounded(DType::BF16, test::randn(static_cast<size_t>(hq) * D, seed + 2));
  auto run_on = [&](const Device& dev, const std::vector<int32_t>& lens_seq, bool graph) {
    std::vector<std::vector<float>> outs;
    ops::KvCache cache{test::make_buffer(dev, DType::BF16, {1, cap, hkv, D}, kv_vals),
                       test::make_buffer(dev, DType::BF16, {1, cap, hkv, D}, vv_vals), L::Contiguous, Buffer()};
    auto q = test::make_buffer(dev, DType::BF16, {1, 1, hq, D}, q_vals);
    auto out = dev.alloc(DType::BF16, {1, 1, hq, D}).value();
    ops::SeqLens lens;
    lens.kv_lens = dev.alloc(DType::I32, {1}).value();
    const size_t ws_bytes = ops::attention_workspace_bytes(dev, q, cache);
    Buffer ws = ws_bytes ? dev.alloc(DType::U8, {static_cast<int64_t>(ws_bytes)}).value() : Buffer();
    auto s = Session::create(dev).value();
    std::optional<Graph> g;
    if (graph) {
      EXPECT_TRUE(s.begin_capture().is_ok());
      EXPECT_TRUE(ops::attention(s, q, cache, lens, out, {}, Buffer(), Buffer(), ws).is_ok());
      g = s.end_capture().value();
    }
    for (int32_t len : lens_seq) {
      EXPECT_TRUE(lens.kv_lens.upload(&len, 4).is_ok());
      test::poison(out);
      if (graph) {
        EXPECT_TRUE(g->replay().is_ok());
      } else {
        EXPECT_TRUE(ops::attention(s, q, cache, lens, out, {}, Buffer(), Buffer(), ws).is_ok());
      }
      EXPECT_TRUE(s.finish().is_ok());
      outs.push_back(test::read_f32(out));
    }
    return outs;
  };
  const std::vector<int32_t> lens = {1, 17, 2999, 513, 3000};
  auto ref = run_on(Device::cpu(), lens, false);
  auto got = run_on(gpu, lens, true);
  for (size_t i = 0; i < lens.size(); ++i) {
    SCOPED_TRACE(detail::cat("kv_len ", lens[i]));
    EXPECT_LE(test::max_scaled_err(got[i], ref[i], atol_for(DType::BF16), 2 * test::rtol_for(DType::BF16)), 1.0);
  }
}

TEST(GpuAttention, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (int32_t d : {64, 100, 128, 512}) {
    for (DType tq : test::float_dtypes())
      for (DType tkv : {DType::F16, DType::BF16})
        for (DType tout : test::float_dtypes()) {
          ops::KvCache cache{gpu.alloc(tkv, {1, 32, 1, d}).value(), gpu.alloc(tkv, {1, 32, 1, d}).value(),
                             L::Contiguous, Buffer()};
          ASSERT_TRUE(cache.k.fill_bytes(0).is_ok());
          ASSERT_TRUE(cache.v.fill_bytes(0).is_ok());
          auto q = gpu.alloc(tq, {1, 1, 2, d}).value();
          auto out = gpu.alloc(tout, {1, 1, 2, d}).value();
          ASSERT_TRUE(q.fill_bytes(0).is_ok());
          ops::SeqLens lens;
          lens.kv_lens = gpu.alloc(DType::I32, {1}).value();
          ASSERT_TRUE(lens.kv_lens.fill_bytes(0).is_ok());
          auto ws =
              gpu.alloc(DType::U8, {static_cast<int64_t>(ops::attention_workspace_bytes(gpu, q, cache)) + 16}).value();
          const bool listed =
              gpu.kernels().supports("attention", KernelRegistry::key({tq, tkv, tout}) + ".d" + std::to_string(d));
          Status st = ops::attention(s, q, cache, lens, out, {}, Buffer(), Buffer(), ws);
          EXPECT_EQ(st.is_ok(), listed) << tq << " " << tkv << " " << tout << " d" << d << ": " << st.to_string();
          if (!listed) {
            EXPECT_EQ(st.code(), StatusCode::Unsupported);
          }
          auto kn = gpu.alloc(tq, {1, 1, 1, d}).value();
          ASSERT_TRUE(kn.fill_bytes(0).is_ok());
          const bool w_listed = gpu.kernels().supports("kv_cache_write", KernelRegistry::key({tq, tq, tkv}));
          EXPECT_EQ(ops::kv_cache_write(s, kn, kn, cache, lens).is_ok(), w_listed);
        }
  }
  ASSERT_TRUE(s.finish().is_ok());
}

TEST(GpuAttention, RegistryAgreesWithDispatchQuantBlock) {
  // q8_0 / q4_0: listed keys run, the rest (f32 q, head dims that are not multiples of 64) are Unsupported.
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (int32_t d : {64, 96, 128}) {
    for (DType tq : test::float_dtypes())
      for (DType tkv : {DType::Q8_0, DType::Q4_0}) {
        const bool q4 = tkv == DType::Q4_0;
        const DType ct = q4 ? DType::U8 : DType::I8;
        const int64_t cb = q4 ? d / 2 : d;
        ops::KvCache cache{gpu.alloc(ct, {1, 32, 1, cb}).value(),
                           gpu.alloc(ct, {1, 32, 1, cb}).value(),
                           L::Contiguous,
                           Buffer(),
                           gpu.alloc(DType::F16, {1, 32, 1, d / 32}).value(),
                           gpu.alloc(DType::F16, {1, 32, 1, d / 32}).value(),
                           q4 ? ops::KvQuant::Q4_0 : ops::KvQuant::Q8_0};
        for (const Buffer* b : {&cache.k, &cache.v, &cache.k_scale, &cache.v_scale})
          ASSERT_TRUE(b->fill_bytes(0).is_ok());
        auto q = gpu.alloc(tq, {1, 1, 2, d}).value();
        auto out = gpu.alloc(tq, {1, 1, 2, d}).value();
        ASSERT_TRUE(q.fill_bytes(0).is_ok());
        ops::SeqLens lens;
        lens.kv_lens = gpu.alloc(DType::I32, {1}).value();
        ASSERT_TRUE(lens.kv_lens.fill_bytes(0).is_ok());
        auto ws =
            gpu.alloc(DType::U8, {static_cast<int64_t>(ops::attention_workspace_bytes(gpu, q, cache)) + 16}).value();
        const bool listed =
            gpu.kernels().supports("attention", KernelRegistry::key({tq, tkv, tq}) + ".d" + std::to_string(d));
        Status st = ops::attention(s, q, cache, lens, out, {}, Buffer(), Buffer(), ws);
        EXPECT_EQ(st.is_ok(), listed) << tq << " " << tkv << " d" << d << ": " << st.to_string();
        if (!listed) {
          EXPECT_EQ(st.code(), StatusCode::Unsupported);
        }
        auto kn = gpu.alloc(tq, {1, 1, 1, d}).value();
        ASSERT_TRUE(kn.fill_bytes(0).is_ok());
        const bool w_listed = gpu.kernels().supports("kv_cache_write", KernelRegistry::key({tq, tq, tkv}));
        EXPECT_EQ(ops::kv_cache_write(s, kn, kn, cache, lens).is_ok(), w_listed);
      }
  }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
