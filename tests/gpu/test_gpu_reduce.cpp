// Reductions on CUDA against the CPU backend: exact indices (ties, split rows, chunked top-k), sums within one
// output rounding plus f32 accumulation error.
#include "reduce_cases.h"

namespace mlxn {
namespace {

TEST(GpuArgmax, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto [rows, cols] : test::reduce_shapes(true)) {
    for (DType t : test::float_dtypes()) {
      for (bool ws : {false, true}) {
        SCOPED_TRACE(detail::cat(rows, "x", cols, " ", t, ws ? " split" : ""));
        const auto x = test::tie_data(static_cast<size_t>(rows * cols), seed + static_cast<uint64_t>(i), t);
        const size_t off = static_cast<size_t>(i++ % 3);
        auto cpu = test::run_argmax(Device::cpu(), t, rows, cols, x, off, ws);
        auto cuda = test::run_argmax(gpu, t, rows, cols, x, off, ws);
        ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
        ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
        EXPECT_EQ(cuda.idx, cpu.idx);
        EXPECT_EQ(cuda.val, cpu.val);
      }
    }
  }
}

TEST(GpuArgmax, NanAndSignedZero) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto run = test::run_argmax(gpu, DType::F32, 3, 4,
                              {1, INFINITY, NAN, 2, -0.0f, 0.0f, -1, -2, -INFINITY, -INFINITY, -INFINITY, -INFINITY}, 0,
                              false);
  ASSERT_TRUE(run.status.is_ok());
  EXPECT_EQ(run.idx, (std::vector<int32_t>{2, 0, 0}));
}

TEST(GpuTopK, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto [rows, cols] : test::reduce_shapes(true)) {
    for (DType t : test::float_dtypes()) {
      for (int k : {1, 7, 40, 1000, 1024}) {
        if (k > cols) continue;
        SCOPED_TRACE(detail::cat(rows, "x", cols, " ", t, " k=", k));
        const auto x = test::tie_data(static_cast<size_t>(rows * cols), seed + static_cast<uint64_t>(i), t);
        const size_t off = static_cast<size_t>(i++ % 3);
        auto cpu = test::run_topk(Device::cpu(), t, rows, cols, k, x, off);
        auto cuda = test::run_topk(gpu, t, rows, cols, k, x, off);
        ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
        ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
        EXPECT_EQ(cuda.idx, cpu.idx);
        EXPECT_EQ(cuda.val, cpu.val);
      }
    }
  }
}

TEST(GpuArgsort, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 7}, {64, 128}, {5, 1000}, {2, 4096}}) {
    for (DType t : test::float_dtypes()) {
      for (bool desc : {false, true}) {
        SCOPED_TRACE(detail::cat(rows, "x", cols, " ", t, desc ? " desc" : " asc"));
        const auto x = test::tie_data(static_cast<size_t>(rows * cols), seed + static_cast<uint64_t>(i), t);
        const size_t off = static_cast<size_t>(i++ % 2);
        auto cpu = test::run_argsort(Device::cpu(), t, rows, cols, desc, x, off);
        auto cuda = test::run_argsort(gpu, t, rows, cols, desc, x, off);
        ASSERT_TRUE(cpu.status.is_ok() && cuda.status.is_ok()) << cuda.status.to_string();
        EXPECT_EQ(cuda.idx, cpu.idx);
      }
    }
  }
  // Rows past 4096 are a status on CUDA.
  auto s = Session::create(gpu).value();
  auto x = gpu.alloc(DType::F32, {1, 4097}).value();
  auto idx = gpu.alloc(DType::I32, {1, 4097}).value();
  EXPECT_EQ(ops::argsort(s, x, idx).code(), StatusCode::Unsupported);
}

TEST(GpuRowSumCumsum, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {3, 7}, {2, 33}, {300, 256}, {4, 4096}, {2, 4097}, {1, 100000}}) {
    for (DType tx : test::float_dtypes()) {
      for (DType to : test::float_dtypes()) {
        SCOPED_TRACE(detail::cat(rows, "x", cols, " ", tx, "->", to));
        const auto x =
            test::rounded(tx, test::randn(static_cast<size_t>(rows * cols), seed + static_cast<uint64_t>(i)));
        const size_t off = static_cast<size_t>(i++ % 3);
        for (bool scan : {false, true}) {
          auto cpu = test::run_row_reduce(Device::cpu(), tx, to, rows, cols, x, off, scan);
          auto cuda = test::run_row_reduce(gpu, tx, to, rows, cols, x, off, scan);
          ASSERT_TRUE(cpu.status.is_ok() && cuda.status.is_ok()) << cuda.status.to_string();
          // f32 accumulation of N(0, 1) values: absolute error grows like sqrt(cols) * 2^-24 * |partial sums|.
          const double atol = 1e-6 * std::sqrt(static_cast<double>(cols)) * 8;
          EXPECT_LE(test::max_scaled_err(cuda.val, cpu.val, atol, test::rtol_for(to)), 1.0)
              << (scan ? "cumsum" : "row_sum");
        }
      }
    }
  }
}

TEST(GpuReduce, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType t : test::float_dtypes()) {
    auto x = gpu.alloc(t, {2, 64}).value();
    ASSERT_TRUE(x.fill_bytes(0).is_ok());
    auto idx = gpu.alloc(DType::I32, {2}).value();
    auto ti = gpu.alloc(DType::I32, {2, 4}).value();
    auto si = gpu.alloc(DType::I32, {2, 64}).value();
    EXPECT_EQ(ops::argmax(s, x, idx).is_ok(), gpu.kernels().supports("argmax", KernelRegistry::key({t})));
    EXPECT_EQ(ops::topk(s, x, 4, Buffer(), ti).is_ok(), gpu.kernels().supports("topk", KernelRegistry::key({t})));
    EXPECT_EQ(ops::argsort(s, x, si).is_ok(), gpu.kernels().supports("argsort", KernelRegistry::key({t})));
    for (DType to : test::float_dtypes()) {
      auto o = gpu.alloc(to, {2}).value();
      auto o2 = gpu.alloc(to, {2, 64}).value();
      EXPECT_EQ(ops::row_sum(s, x, o).is_ok(), gpu.kernels().supports("row_sum", KernelRegistry::key({t, to})));
      EXPECT_EQ(ops::cumsum(s, x, o2).is_ok(), gpu.kernels().supports("cumsum", KernelRegistry::key({t, to})));
    }
  }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
