// Reductions on the CPU backend against references written here: plain loops and std::sort with an explicit
// (value descending, index ascending) order.
#include "reduce_cases.h"

namespace mlxn {
namespace {

// Positions of one row ordered by value (descending or ascending), ties by lower index, with a plain std::sort.
std::vector<int32_t> ref_order(const std::vector<float>& x, int64_t base, int64_t cols, bool desc) {
  std::vector<int32_t> pos(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) pos[static_cast<size_t>(c)] = static_cast<int32_t>(c);
  std::sort(pos.begin(), pos.end(), [&](int32_t a, int32_t b) {
    const float va = x[static_cast<size_t>(base + a)], vb = x[static_cast<size_t>(base + b)];
    if (va != vb) return desc ? va > vb : va < vb;
    return a < b;
  });
  return pos;
}

TEST(Argmax, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto [rows, cols] : test::reduce_shapes(false)) {
    for (DType t : test::float_dtypes()) {
      SCOPED_TRACE(detail::cat(rows, "x", cols, " ", t));
      const auto x = test::tie_data(static_cast<size_t>(rows * cols), seed + static_cast<uint64_t>(i), t);
      auto run = test::run_argmax(Device::cpu(), t, rows, cols, x, static_cast<size_t>(i % 3), i % 2 == 0);
      ++i;
      ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
      for (int64_t r = 0; r < rows; ++r) {
        int64_t best = 0;
        for (int64_t c = 1; c < cols; ++c)
          if (x[static_cast<size_t>(r * cols + c)] > x[static_cast<size_t>(r * cols + best)]) best = c;
        EXPECT_EQ(run.idx[static_cast<size_t>(r)], best) << "row " << r;
        EXPECT_EQ(run.val[static_cast<size_t>(r)], x[static_cast<size_t>(r * cols + best)]);
      }
    }
  }
}

TEST(Argmax, NanAndSignedZero) {
  // NaN ranks above +inf (torch); -0 and +0 tie, so the lower index wins.
  auto run = test::run_argmax(Device::cpu(), DType::F32, 3, 4,
                              {1, INFINITY, NAN, 2, -0.0f, 0.0f, -1, -2, -INFINITY, -INFINITY, -INFINITY, -INFINITY}, 0,
                              false);
  ASSERT_TRUE(run.status.is_ok());
  EXPECT_EQ(run.idx, (std::vector<int32_t>{2, 0, 0}));
}

TEST(TopK, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto [rows, cols] : test::reduce_shapes(false)) {
    for (DType t : test::float_dtypes()) {
      for (int k : {1, 5, 40, 1024}) {
        if (k > cols) continue;
        SCOPED_TRACE(detail::cat(rows, "x", cols, " ", t, " k=", k));
        const auto x = test::tie_data(static_cast<size_t>(rows * cols), seed + static_cast<uint64_t>(i), t);
        auto run = test::run_topk(Device::cpu(), t, rows, cols, k, x, static_cast<size_t>(i % 3));
        ++i;
        ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
        for (int64_t r = 0; r < rows; ++r) {
          const auto order = ref_order(x, r * cols, cols, true);
          for (int j = 0; j < k; ++j) {
            ASSERT_EQ(run.idx[static_cast<size_t>(r * k + j)], order[static_cast<size_t>(j)])
                << "row " << r << " rank " << j;
            EXPECT_EQ(run.val[static_cast<size_t>(r * k + j)],
                      x[static_cast<size_t>(r * cols + order[static_cast<size_t>(j)])]);
          }
        }
      }
    }
  }
}

TEST(Argsort, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 7}, {4, 128}, {2, 1000}, {1, 4096}}) {
    for (DType t : test::float_dtypes()) {
      for (bool desc : {false, true}) {
        SCOPED_TRACE(detail::cat(rows, "x", cols, " ", t, desc ? " desc" : " asc"));
        const auto x = test::tie_data(static_cast<size_t>(rows * cols), seed + static_cast<uint64_t>(i), t);
        auto run = test::run_argsort(Device::cpu(), t, rows, cols, desc, x, static_cast<size_t>(i % 2));
        ++i;
        ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
        for (int64_t r = 0; r < rows; ++r) {
          const auto order = ref_order(x, r * cols, cols, desc);
          EXPECT_TRUE(std::equal(order.begin(), order.end(), run.idx.begin() + r * cols)) << "row " << r;
        }
      }
    }
  }
}

TEST(RowSumCumsum, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int i = 0;
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 7}, {2, 33}, {5, 4096}, {1, 5000}}) {
    for (DType tx : test::float_dtypes()) {
      for (DType to : test::float_dtypes()) {
        SCOPED_TRACE(detail::cat(rows, "x", cols, " ", tx, "->", to));
        const auto x =
            test::rounded(tx, test::randn(static_cast<size_t>(rows * cols), seed + static_cast<uint64_t>(i)));
        const size_t off = static_cast<size_t>(i % 3);
        ++i;
        auto sum = test::run_row_reduce(Device::cpu(), tx, to, rows, cols, x, off, false);
        auto scan = test::run_row_reduce(Device::cpu(), tx, to, rows, cols, x, off, true);
        ASSERT_TRUE(sum.status.is_ok()) << sum.status.to_string();
        ASSERT_TRUE(scan.status.is_ok()) << scan.status.to_string();
        std::vector<float> ref_sum(static_cast<size_t>(rows)), ref_scan(x.size());
        for (int64_t r = 0; r < rows; ++r) {
          double acc = 0;
          for (int64_t c = 0; c < cols; ++c) {
            acc += x[static_cast<size_t>(r * cols + c)];
            ref_scan[static_cast<size_t>(r * cols + c)] = static_cast<float>(acc);
          }
          ref_sum[static_cast<size_t>(r)] = static_cast<float>(acc);
        }
        // The reference rounds once to the output dtype.
        EXPECT_LE(test::max_scaled_err(sum.val, ref_sum, 1e-6, test::rtol_for(to) / 2), 1.0);
        EXPECT_LE(test::max_scaled_err(scan.val, ref_scan, 1e-6, test::rtol_for(to) / 2), 1.0);
      }
    }
  }
}

TEST(Reduce, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::BF16, {4, 5000}).value();
  auto idx = cpu.alloc(DType::I32, {4}).value();
  auto idx_bad = cpu.alloc(DType::I32, {5}).value();
  auto idx_f = cpu.alloc(DType::F32, {4}).value();
  Status st = ops::argmax(s, x, idx_bad);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  EXPECT_EQ(st.message(), "[argmax] idx has 5 elements, expected 4");
  EXPECT_EQ(ops::argmax(s, x, idx_f).code(), StatusCode::Unsupported);
  auto xi = cpu.alloc(DType::I32, {4, 8}).value();
  EXPECT_EQ(ops::argmax(s, xi, idx).code(), StatusCode::Unsupported);
  auto empty_rows = cpu.alloc(DType::F32, {4, 0}).value();
  EXPECT_EQ(ops::argmax(s, empty_rows, idx).code(), StatusCode::InvalidArgument);
  // top-k: k out of range, missing or short workspace, wrong value dtype.
  auto ti = cpu.alloc(DType::I32, {4, 8}).value();
  auto tv = cpu.alloc(DType::BF16, {4, 8}).value();
  const size_t need = ops::topk_workspace_bytes(4, 5000, 8);
  EXPECT_GT(need, 0u);
  auto ws = cpu.alloc(DType::U8, {static_cast<int64_t>(need)}).value();
  EXPECT_TRUE(ops::topk(s, x, 8, tv, ti, ws).is_ok());
  EXPECT_EQ(ops::topk(s, x, 0, tv, ti, ws).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(ops::topk(s, x, 2000, tv, ti, ws).code(), StatusCode::InvalidArgument);
  st = ops::topk(s, x, 8, tv, ti);
  EXPECT_NE(st.message().find("workspace"), std::string::npos) << st.to_string();
  auto ws_short = cpu.alloc(DType::U8, {static_cast<int64_t>(need - 1)}).value();
  EXPECT_EQ(ops::topk(s, x, 8, tv, ti, ws_short).code(), StatusCode::InvalidArgument);
  auto tv32 = cpu.alloc(DType::F32, {4, 8}).value();
  EXPECT_EQ(ops::topk(s, x, 8, tv32, ti, ws).code(), StatusCode::Unsupported);
  // Outputs overlapping the input.
  auto big = cpu.alloc(DType::F32, {64}).value();
  auto xin = big.view(0, DType::F32, {2, 16}).value();
  auto alias = big.view(0, DType::I32, {2}).value();
  EXPECT_NE(ops::argmax(s, xin, alias).message().find("overlaps"), std::string::npos);
  // cumsum: out shape and dtype; argsort index dtype.
  auto out_bad = cpu.alloc(DType::F32, {4, 4999}).value();
  EXPECT_EQ(ops::cumsum(s, x, out_bad).code(), StatusCode::InvalidArgument);
  auto out_i = cpu.alloc(DType::I32, {4}).value();
  EXPECT_EQ(ops::row_sum(s, x, out_i).code(), StatusCode::Unsupported);
  auto as_bad = cpu.alloc(DType::F32, {4, 5000}).value();
  EXPECT_EQ(ops::argsort(s, x, as_bad).code(), StatusCode::Unsupported);
  auto strided = x.slice(1, 0, 100).value();
  EXPECT_NE(ops::row_sum(s, strided, idx_f).message().find("contiguous"), std::string::npos);
}

}  // namespace
}  // namespace mlxn
