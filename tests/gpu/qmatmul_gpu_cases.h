// Helpers shared by the CUDA quantized-matmul tests: the int8 kernels' check, dispatch against the kernel registry,
// and two matmuls that share the session scratch run eagerly, captured, and captured with explicit hazards.
#pragma once

#include <utility>
#include <vector>

#include "dequant_cases.h"

namespace mlxn::test {

// Runs case c on the GPU (y poisoned before the run) and checks the int8 kernels' bound (M <= 16: x quantized per
// 32-element block, exact integer block products).
inline void expect_int8_matches_reference(const Device& gpu, const QMatmulCase& c, uint64_t seed) {
  const auto q = make_qweights(c, seed);
  auto run = run_qmatmul(gpu, c, q, seed);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_LE(qmatmul_err_int8(run, rtol_for(c.tx)), 1.0);
}

// ops::matmul with an M-row x succeeds exactly for the (format, x dtype) pairs the registry lists.
inline void expect_qmatmul_registry_agrees(const Device& gpu, int64_t M) {
  auto s = Session::create(gpu).value();
  for (DType tx : float_dtypes())
    for (DType tw : qmatmul_formats()) {
      auto x = gpu.alloc(tx, {M, 256}).value();
      auto w = gpu.alloc(tw, {16, 256}).value();
      auto y = gpu.alloc(tx, {M, 16}).value();
      ASSERT_TRUE(x.fill_bytes(0).is_ok());
      ASSERT_TRUE(w.fill_bytes(0).is_ok());
      const bool listed = gpu.kernels().supports("qmatmul", KernelRegistry::key({tw, tx}));
      Status st = ops::matmul(s, x, w, y);
      EXPECT_EQ(st.is_ok(), listed) << tw << " " << tx << " M = " << M << ": " << st.to_string();
    }
  ASSERT_TRUE(s.finish().is_ok());
}

using YPair = std::pair<std::vector<float>, std::vector<float>>;
struct SharedScratchRuns {
  YPair eager, captured, explicit_run;
};

// y1 = x1 w1 and y2 = x2 w2 (bf16 x and y, [M, N]) recorded back to back: eagerly; captured and replayed twice; and
// captured in explicit-hazard mode without barriers, where only the scratch's own ordering keeps the two apart.
inline SharedScratchRuns run_shared_scratch_pair(const Device& gpu, const Buffer& x1, const Buffer& w1,
                                                 const Buffer& x2, const Buffer& w2, int64_t M, int64_t N) {
  auto run = [&](Session& s, bool capture) -> YPair {
    auto y1 = gpu.alloc(DType::BF16, {M, N}).value(), y2 = gpu.alloc(DType::BF16, {M, N}).value();
    poison(y1);
    poison(y2);
    if (capture) {
      EXPECT_TRUE(s.begin_capture().is_ok());
    }
    EXPECT_TRUE(ops::matmul(s, x1, w1, y1).is_ok());
    EXPECT_TRUE(ops::matmul(s, x2, w2, y2).is_ok());
    if (capture) {
      auto g = s.end_capture();
      EXPECT_TRUE(g.is_ok()) << g.status().to_string();
      if (!g.is_ok()) return {};
      EXPECT_TRUE(g->replay().is_ok());
      EXPECT_TRUE(g->replay().is_ok());
    }
    EXPECT_TRUE(s.finish().is_ok());
    return {read_f32(y1), read_f32(y2)};
  };
  SharedScratchRuns r;
  auto eager_s = Session::create(gpu).value();
  r.eager = run(eager_s, false);
  auto cap_s = Session::create(gpu).value();
  r.captured = run(cap_s, true);
  SessionOptions ex;
  ex.hazards = HazardMode::Explicit;
  auto ex_s = Session::create(gpu, ex).value();
  r.explicit_run = run(ex_s, true);
  return r;
}

}  // namespace mlxn::test
