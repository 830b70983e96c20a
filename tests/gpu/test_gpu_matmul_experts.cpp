// Expert-routed matmul on CUDA against the float64 reference (every GGML format and float w), against running each
// selected expert separately through ops::matmul on the device, under graph replay with new ids, and the registry.
#include "matmul_experts_cases.h"

namespace mlxn {
namespace {

TEST(GpuMatmulExperts, MatchesReference) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::experts_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    const auto d = test::make_experts_data(c, seed);
    const auto run = test::run_experts(gpu, c, d);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    EXPECT_LE(test::experts_err(c, d, run, false), 1.0);
  }
}

// Gated form on CUDA (the int8 kernel's paired gate / up rows, or the float kernel) against the float64 reference.
TEST(GpuMatmulExperts, GluMatchesReference) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const ops::Activation acts[] = {ops::Activation::Silu, ops::Activation::Gelu, ops::Activation::GeluTanh,
                                  ops::Activation::Sigmoid};
  int i = 0;
  for (const auto& c : test::experts_cases(true)) {
    const ops::Activation act = acts[i++ % 4];
    SCOPED_TRACE(detail::cat(test::describe(c), " act ", static_cast<int>(act)));
    const auto g = test::make_experts_data(c, seed);
    const auto u = test::make_up_data(c, g, seed);
    const auto run = test::run_experts_glu(gpu, c, g, u, act, false);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    EXPECT_LE(test::glu_err(c, g, run), 1.0);
  }
}

// Each slot equals ops::matmul of its x row with its expert's slice on the same device (same int8 quantization of
// x and the same integer products; only the f32 summation order may differ).
TEST(GpuMatmulExperts, EqualsPerExpertMatmul) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : {DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::BF16}) {
    const int64_t kb = test::dense_dtype(t) ? 32 : dtype_info(t).block_elems;
    const test::ExpertsCase c{t, DType::BF16, 6, 40, 2 * kb, 2, 3, false, false};
    SCOPED_TRACE(test::describe(c));
    const auto d = test::make_experts_data(c, seed);
    const auto run = test::run_experts(gpu, c, d);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    const size_t expert_bytes = d.wbytes.size() / static_cast<size_t>(c.E);
    auto s = Session::create(gpu).value();
    for (int64_t z = 0; z < c.T * c.k; ++z) {
      const int64_t e = d.ids[static_cast<size_t>(z)];
      const int64_t xr = z / c.k;
      auto x = test::make_buffer(gpu, c.tx, {1, c.K},
                                 std::vector<float>(d.x.begin() + xr * c.K, d.x.begin() + (xr + 1) * c.K));
      // The expert's bytes as their own buffer (a view at e * expert_bytes may not be 4-byte aligned).
      auto we = gpu.alloc(c.tw, {c.N, c.K}).value();
      ASSERT_TRUE(we.upload(d.wbytes.data() + static_cast<size_t>(e) * expert_bytes, expert_bytes).is_ok());
      auto y = gpu.alloc(c.tx, {1, c.N}).value();
      ASSERT_TRUE(ops::matmul(s, x, we, y).is_ok());
      ASSERT_TRUE(s.finish().is_ok());
      const auto yv = test::read_f32(y);
      for (int64_t n = 0; n < c.N; ++n) {
        const size_t i = static_cast<size_t>(z * c.N + n);
        EXPECT_NEAR(run.y[i], yv[static_cast<size_t>(n)],
                    1e-5 * run.sum_x_wmax[i] + 2 * test::rtol_for(c.tx) * std::abs(run.ref[i]))
            << "slot " << z << " row " << n;
      }
    }
  }
}

// The launch does not depend on the ids: a captured graph replays with ids uploaded after the capture.
TEST(GpuMatmulExperts, GraphReplayReadsNewIds) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  test::ExpertsCase c{DType::Q4_K, DType::F32, 8, 64, 512, 1, 4, false, false};
  auto d = test::make_experts_data(c, seed);
  auto w = gpu.alloc(c.tw, {c.E, c.N, c.K}).value();
  ASSERT_TRUE(w.upload(d.wbytes.data(), d.wbytes.size()).is_ok());
  auto x = test::make_buffer(gpu, c.tx, {c.T, c.K}, d.x);
  auto ids = gpu.alloc(DType::I32, {c.T, c.k}).value();
  auto y = gpu.alloc(c.tx, {c.T, c.k, c.N}).value();
  auto s = Session::create(gpu).value();
  ASSERT_TRUE(s.begin_capture().is_ok());
  ASSERT_TRUE(ops::matmul_experts(s, x, w, ids, y).is_ok());
  auto g = s.end_capture();
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  for (int rep = 0; rep < 3; ++rep) {
    for (auto& id : d.ids) id = (id + 3) % static_cast<int32_t>(c.E);
    ASSERT_TRUE(ids.upload(d.ids.data(), d.ids.size() * 4).is_ok());
    test::poison(y);
    ASSERT_TRUE(g->replay().is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    // The eager run on the same data is the reference here (its own correctness is checked above).
    const auto want = test::run_experts(gpu, c, d);
    ASSERT_TRUE(want.status.is_ok());
    EXPECT_EQ(test::read_f32(y), want.y) << "replay " << rep;
  }
}

TEST(GpuMatmulExperts, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  std::vector<DType> ws = test::qmatmul_formats();
  for (DType t : test::float_dtypes()) ws.push_back(t);
  for (DType tx : test::float_dtypes())
    for (DType tw : ws) {
      auto x = gpu.alloc(tx, {1, 256}).value();
      auto w = gpu.alloc(tw, {2, 16, 256}).value();
      auto ids = gpu.alloc(DType::I32, {1, 2}).value();
      auto y = gpu.alloc(tx, {1, 2, 16}).value();
      for (const Buffer* b : {&x, &w, &ids}) ASSERT_TRUE(b->fill_bytes(0).is_ok());
      const bool listed = gpu.kernels().supports("matmul_experts", KernelRegistry::key({tw, tx}));
      Status st = ops::matmul_experts(s, x, w, ids, y);
      EXPECT_EQ(st.is_ok(), listed) << tw << " " << tx << ": " << st.to_string();
    }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
