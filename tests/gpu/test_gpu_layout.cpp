// Layout ops on CUDA: the same exact-byte checks as the CPU test (tests/layout_cases.h), large shapes for the tiled
// transpose, and the registry agreeing with dispatch.
#include "layout_cases.h"

namespace mlxn {
namespace {

TEST(GpuLayout, SameChecksAsCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  test::check_permute(gpu, seed);
  test::check_repeat(gpu, seed);
  test::check_concat_split(gpu, seed);
  test::check_slice(gpu, seed);
  test::check_gather_scatter(gpu, seed);
  test::check_qkv_split(gpu, seed);
}

// Large transposes against the CPU backend (tile edges, every element size).
TEST(GpuLayout, LargeTransposeMatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  // The first four shapes take the element kernel; the others the 16-byte one for 2- and 4-byte elements (inner
  // extents multiples of 8, partial 64 x 64 tiles at both edges, batched, 4096 x 4096 whole).
  for (DType t : {DType::U8, DType::BF16, DType::F32, DType::I64}) {
    for (auto [shape, perm] : std::vector<std::pair<Shape, std::vector<int>>>{{{1025, 777}, {1, 0}},
                                                                              {{3, 130, 1000}, {0, 2, 1}},
                                                                              {{70000, 3}, {1, 0}},
                                                                              {{2, 3, 200, 65}, {2, 3, 0, 1}},
                                                                              {{1000, 776}, {1, 0}},
                                                                              {{8, 8}, {1, 0}},
                                                                              {{3, 136, 1000}, {0, 2, 1}},
                                                                              {{2, 3, 200, 72}, {2, 3, 0, 1}},
                                                                              {{4096, 4096}, {1, 0}}}) {
      SCOPED_TRACE(detail::cat(t, " ", shape));
      std::vector<uint8_t> bytes;
      auto xg = test::random_buffer(gpu, t, shape, seed, &bytes);
      auto xc = Device::cpu().alloc(t, shape).value();
      ASSERT_TRUE(xc.upload(bytes.data(), bytes.size()).is_ok());
      Shape os = shape;
      for (int d = 0; d < shape.rank(); ++d) os[d] = shape[perm[static_cast<size_t>(d)]];
      auto yg = test::poisoned(gpu, t, os);
      auto yc = test::poisoned(Device::cpu(), t, os);
      auto sg = Session::create(gpu).value();
      auto sc = Session::create(Device::cpu()).value();
      ASSERT_TRUE(ops::permute(sg, xg, std::span<const int>(perm), yg).is_ok());
      ASSERT_TRUE(ops::permute(sc, xc, std::span<const int>(perm), yc).is_ok());
      ASSERT_TRUE(sg.finish().is_ok());
      EXPECT_EQ(test::read_bytes(yg), test::read_bytes(yc));
    }
  }
}

TEST(GpuLayout, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType t : {DType::F32, DType::BF16, DType::U8, DType::I64, DType::F64}) {
    auto x = gpu.alloc(t, {4, 8}).value();
    auto y = gpu.alloc(t, {8, 4}).value();
    ASSERT_TRUE(x.fill_bytes(0).is_ok());
    const bool listed = gpu.kernels().supports("permute", KernelRegistry::key({t}));
    Status st = ops::permute(s, x, {1, 0}, y);
    EXPECT_EQ(st.is_ok(), listed) << t << ": " << st.to_string();
    for (const char* op : {"concat", "split", "gather_rows", "scatter_rows"})
      EXPECT_TRUE(gpu.kernels().supports(op, KernelRegistry::key({t}))) << op << " " << t;
  }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
