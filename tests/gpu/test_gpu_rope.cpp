// RoPE and the fused per-head norm + RoPE on CUDA against the CPU backend: both layouts, partial rotary, frequency
// factors, scaling, sections, strided views in a fused qkv row, in place, long positions, fallback shapes.
#include "rope_cases.h"

namespace mlxn {
namespace {

TEST(GpuRope, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::rope_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    auto cpu = test::run_rope(Device::cpu(), c, seed);
    auto cuda = test::run_rope(gpu, c, seed);
    ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
    ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
    // Angles in double on both; f32 rotation (and norm) on the device: a few f32 ulps, then one output rounding.
    EXPECT_LE(test::max_scaled_err(cuda.y, cpu.y, 2e-5, test::rtol_for(c.t)), 1.0);
  }
}

TEST(GpuRope, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  auto pos = gpu.alloc(DType::I32, {2}).value();
  ASSERT_TRUE(pos.fill_bytes(0).is_ok());
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I32}) {
    auto x = gpu.alloc(t, {2, 2, 64}).value();
    ASSERT_TRUE(x.fill_bytes(0).is_ok());
    for (const char* op : {"rope", "rope_head_norm"}) {
      const bool listed = gpu.kernels().supports(op, KernelRegistry::key({t}));
      Status st = std::string(op) == "rope" ? ops::rope(s, x, pos, Buffer(), x)
                                            : ops::rope_head_norm(s, x, Buffer(), pos, Buffer(), x);
      EXPECT_EQ(st.is_ok(), listed) << op << " " << t << ": " << st.to_string();
      if (!listed) {
        EXPECT_EQ(st.code(), StatusCode::Unsupported);
      }
    }
  }
  ASSERT_TRUE(s.finish().is_ok());
}

// A decode graph replays with new positions written into the device buffer: no re-capture.
TEST(GpuRope, GraphReplayReadsPositionsFromTheDevice) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  std::vector<float> xv(32 * 128, 0.0f);
  for (int h = 0; h < 32; ++h) xv[static_cast<size_t>(h * 128)] = 1.0f;  // pair 0 = (1, 0)
  auto x = test::make_buffer(gpu, DType::F32, {1, 32, 128}, xv);
  auto y = gpu.alloc(DType::F32, {1, 32, 128}).value();
  auto pos = gpu.alloc(DType::I32, {1}).value();
  ASSERT_TRUE(s.begin_capture().is_ok());
  ASSERT_TRUE(ops::rope(s, x, pos, Buffer(), y).is_ok());
  auto g = s.end_capture();
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  for (int32_t p : {0, 5, 1000}) {
    ASSERT_TRUE(pos.upload(&p, 4).is_ok());
    ASSERT_TRUE(g->replay().is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    const auto v = test::read_f32(y);
    EXPECT_NEAR(v[0], std::cos(static_cast<double>(p)), 1e-6) << p;
    EXPECT_NEAR(v[64], std::sin(static_cast<double>(p)), 1e-6) << p;
  }
}

}  // namespace
}  // namespace mlxn
