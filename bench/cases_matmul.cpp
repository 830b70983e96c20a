// Dense matmul cases: decode sizes (weight bandwidth) and prefill sizes (TFLOP/s).
#include "harness.h"

namespace mlxn::bench {
namespace {

// y = x W^T: decode sizes are bandwidth-bound (weight bytes over time), prefill sizes compute-bound.
Status bench_matmul(Harness& h, DType t, int64_t M, int64_t N, int64_t K) {
  const double w_bytes = static_cast<double>(N * K * static_cast<int64_t>(dtype_size(t)));
  const int sets = h.rotation(w_bytes);
  std::vector<Buffer> ws;
  for (int i = 0; i < sets; ++i) {
    MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(t, {N, K}));
    MLXN_TRY(fill_random(w, 300 + static_cast<uint64_t>(i)));
    ws.push_back(w);
  }
  MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(t, {M, K}));
  MLXN_TRY(fill_random(x, 7));
  MLXN_ASSIGN_OR_RETURN(Buffer y, h.device().alloc(t, {M, N}));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    return ops::matmul(h.session(), x, ws[static_cast<size_t>(k) % ws.size()], y);
  }));
  Row r{"matmul m=" + std::to_string(M), std::to_string(N) + "x" + std::to_string(K), std::string(dtype_name(t)),
        sets > 1 ? "W rotated" : "", us, M <= 16 ? w_bytes : 0};
  if (M > 16) r.flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  h.add(r);
  return Status::ok();
}

const bool registered = [] {
  struct S { DType t; int64_t M, N, K; };
  const S shapes[] = {{DType::BF16, 1, 4096, 4096},   {DType::BF16, 1, 1024, 4096},  {DType::BF16, 1, 14336, 4096},
                      {DType::BF16, 1, 4096, 14336},  {DType::BF16, 8, 14336, 4096}, {DType::BF16, 16, 14336, 4096},
                      {DType::BF16, 2, 14336, 4096},  {DType::BF16, 4, 14336, 4096}, {DType::BF16, 8, 4096, 14336},
                      {DType::F16, 8, 14336, 4096},   {DType::F16, 1, 14336, 4096},  {DType::BF16, 512, 4096, 14336},
                      {DType::BF16, 4096, 4096, 4096}};
  for (const S& c : shapes)
    add_case("matmul", 30, [c](Harness& h, const BenchEnv&) { return bench_matmul(h, c.t, c.M, c.N, c.K); }, true);
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
