// Quantized matmul cases: decode sizes (m = 1, 2, 4, 8, 16) as weight bandwidth against the copy ceiling, for every
// GGML format and MLX affine on the Llama-3-8B / Qwen3-8B projection shapes; and the expert-routed matmul of a
// 128-expert MoE layer (top 8, one token), counting the selected experts' bytes.
#include <cstdlib>
#include <map>

#include "harness.h"

namespace mlxn::bench {
namespace {

struct QCase {
  DType tw;      // GGML block type, or U32 for MLX affine
  int bits = 4;  // affine
  int64_t M, N, K;
};

std::string qname(const QCase& c) {
  return c.tw == DType::U32 ? "affine" + std::to_string(c.bits) + " g64" : std::string(dtype_name(c.tw));
}

// m = 1 time per (format, shape), to report m = 8 / 16 against it.
std::map<std::string, double>& m1_times() {
  static std::map<std::string, double> t;
  return t;
}

// MLXN_BENCH_QCASE="q4_0 m=1 14336x4096" (a substring of "<format> m=<M> <N>x<K>") runs only the matching cases:
// for profiling one kernel under ncu.
bool selected(const QCase& c) {
  const char* f = std::getenv("MLXN_BENCH_QCASE");
  if (f == nullptr || *f == 0) return true;
  const std::string key =
      qname(c) + " m=" + std::to_string(c.M) + " " + std::to_string(c.N) + "x" + std::to_string(c.K);
  return key.find(f) != std::string::npos;
}

Status bench_qmatmul(Harness& h, const QCase& c) {
  if (!selected(c)) return Status::ok();
  const bool affine = c.tw == DType::U32;
  constexpr int kGroup = 64;
  const double w_bytes = affine
                             ? static_cast<double>(c.N * c.K) * c.bits / 8 + static_cast<double>(c.N * c.K / kGroup) * 4
                             : static_cast<double>(dtype_storage_bytes(c.tw, c.N * c.K).value());
  const int sets = h.rotation(w_bytes);
  std::vector<Buffer> ws, ss, bs;
  for (int i = 0; i < sets; ++i) {
    if (affine) {
      MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(DType::U32, {c.N, c.K * c.bits / 32}));
      MLXN_ASSIGN_OR_RETURN(Buffer s, h.device().alloc(DType::F16, {c.N, c.K / kGroup}));
      MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(DType::F16, {c.N, c.K / kGroup}));
      MLXN_TRY(fill_random(w, 300 + static_cast<uint64_t>(i)));
      MLXN_TRY(fill_random(s, 400 + static_cast<uint64_t>(i)));
      MLXN_TRY(fill_random(b, 500 + static_cast<uint64_t>(i)));
      ws.push_back(w), ss.push_back(s), bs.push_back(b);
    } else {
      MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(c.tw, {c.N, c.K}));
      MLXN_TRY(fill_random(w, 300 + static_cast<uint64_t>(i)));  // random blocks: the kernels do not branch on data
      ws.push_back(w);
    }
  }
  MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(DType::BF16, {c.M, c.K}));
  MLXN_TRY(fill_random(x, 7));
  MLXN_ASSIGN_OR_RETURN(Buffer y, h.device().alloc(DType::BF16, {c.M, c.N}));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) -> Status {
    const size_t i = static_cast<size_t>(k) % ws.size();
    if (!affine) return ops::matmul(h.session(), x, ws[i], y);
    ops::AffineWeight aw{ws[i], ss[i], bs[i], c.bits, kGroup};
    return ops::matmul_affine(h.session(), x, aw, y);
  }));
  const std::string key = qname(c) + " " + std::to_string(c.N) + "x" + std::to_string(c.K);
  std::string note = sets > 1 ? "W rotated" : "";
  if (c.M == 1) {
    m1_times()[key] = us;
  } else if (auto it = m1_times().find(key); it != m1_times().end()) {
    char buf[48];
    std::snprintf(buf, sizeof(buf), "%.2fx the m=1 time", us / it->second);
    note = note.empty() ? buf : note + ", " + buf;
  }
  h.add({"qmatmul m=" + std::to_string(c.M), std::to_string(c.N) + "x" + std::to_string(c.K), qname(c) + " x bf16",
         note, us, c.M <= 16 ? w_bytes : 0});
  return Status::ok();
}

// One token through a 128-expert layer, top 8: y [1, 8, N] = x W_e^T for the 8 selected experts. The ids cycle
// through 16 disjoint sets of 8 experts, so consecutive calls read different experts (all 128 experts' weights,
// 50-400 MB, exceed the L2; one set would not).
Status bench_experts(Harness& h, DType tw, int64_t N, int64_t K) {
  constexpr int64_t kE = 128, kTop = 8, kSets = kE / kTop;
  MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(tw, {kE, N, K}));
  MLXN_TRY(fill_random(w, 900));
  // K = 768 is the down projection: one input row per slot ([1, 8, K]); the gate / up projections share x.
  const bool per_slot = K < N;
  MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(DType::BF16, per_slot ? Shape{1, kTop, K} : Shape{1, K}));
  MLXN_TRY(fill_random(x, 901));
  MLXN_ASSIGN_OR_RETURN(Buffer y, h.device().alloc(DType::BF16, {1, kTop, N}));
  std::vector<int32_t> perm(kE);
  for (int64_t i = 0; i < kE; ++i) perm[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37) % kE);  // 37 is odd
  std::vector<Buffer> ids;
  for (int64_t s = 0; s < kSets; ++s) {
    MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(DType::I32, {1, kTop}));
    MLXN_TRY(b.upload(perm.data() + s * kTop, kTop * 4));
    ids.push_back(b);
  }
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) -> Status {
    return ops::matmul_experts(h.session(), x, w, ids[static_cast<size_t>(k) % ids.size()], y);
  }));
  const double bytes = static_cast<double>(dtype_storage_bytes(tw, N * K).value()) * kTop;
  h.add({"matmul_experts m=1", "128x" + std::to_string(N) + "x" + std::to_string(K) + " top8",
         std::string(dtype_name(tw)) + " x bf16", per_slot ? "x per slot" : "x per token", us, bytes});
  return Status::ok();
}

// The gate / up half of a MoE decode step: one gated routed matmul against two routed matmuls and a glu (the
// unfused sequence a model would otherwise record), bytes counted over both weights' selected experts.
Status bench_experts_glu(Harness& h, DType tw, int64_t N, int64_t K) {
  constexpr int64_t kE = 128, kTop = 8, kSets = kE / kTop;
  MLXN_ASSIGN_OR_RETURN(Buffer wg, h.device().alloc(tw, {kE, N, K}));
  MLXN_ASSIGN_OR_RETURN(Buffer wu, h.device().alloc(tw, {kE, N, K}));
  MLXN_TRY(fill_random(wg, 902));
  MLXN_TRY(fill_random(wu, 903));
  MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(DType::BF16, {1, K}));
  MLXN_TRY(fill_random(x, 904));
  MLXN_ASSIGN_OR_RETURN(Buffer y, h.device().alloc(DType::BF16, {1, kTop, N}));
  MLXN_ASSIGN_OR_RETURN(Buffer yu, h.device().alloc(DType::BF16, {1, kTop, N}));
  std::vector<int32_t> perm(kE);
  for (int64_t i = 0; i < kE; ++i) perm[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37) % kE);
  std::vector<Buffer> ids;
  for (int64_t s = 0; s < kSets; ++s) {
    MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(DType::I32, {1, kTop}));
    MLXN_TRY(b.upload(perm.data() + s * kTop, kTop * 4));
    ids.push_back(b);
  }
  const double bytes = 2.0 * static_cast<double>(dtype_storage_bytes(tw, N * K).value()) * kTop;
  const std::string shape = "128x2x" + std::to_string(N) + "x" + std::to_string(K) + " top8";
  const std::string type = std::string(dtype_name(tw)) + " x bf16";
  MLXN_ASSIGN_OR_RETURN(double fused, h.time_us([&](int k) -> Status {
    return ops::matmul_experts_glu(h.session(), ops::Activation::Silu, x, wg, wu,
                                   ids[static_cast<size_t>(k) % ids.size()], y);
  }));
  MLXN_ASSIGN_OR_RETURN(double unfused, h.time_us([&](int k) -> Status {
    const Buffer& id = ids[static_cast<size_t>(k) % ids.size()];
    MLXN_TRY(ops::matmul_experts(h.session(), x, wg, id, y));
    MLXN_TRY(ops::matmul_experts(h.session(), x, wu, id, yu));
    return ops::glu(h.session(), ops::Activation::Silu, y, yu, y);
  }));
  char note[64];
  std::snprintf(note, sizeof(note), "unfused (2 matmuls + glu): %.2f us", unfused);
  h.add({"matmul_experts_glu m=1", shape, type, note, fused, bytes});
  return Status::ok();
}

const bool registered = [] {
  const DType all[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,   DType::Q8_0,   DType::Q2_K, DType::Q3_K,
                       DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4};
  const std::pair<int64_t, int64_t> shapes[] = {{4096, 4096},  {1024, 4096},  {14336, 4096},
                                                {4096, 14336}, {12288, 4096}, {151936, 4096}};
  std::vector<QCase> cases;
  for (DType t : all) {
    for (auto [N, K] : shapes) cases.push_back({t, 4, 1, N, K});
    // m = 2 and 4 run the dp4a int8 kernel as m = 1 does; 8 and 16 the int8 mma kernel (src/cuda/qgemm_i8.cuh;
    // MLXN_TUNE_QGEMM_I8=0: the f16 tensor-core one).
    for (int64_t m : {2, 4, 8, 16}) cases.push_back({t, 4, m, 14336, 4096});
  }
  // The int8 mma kernel across its range (m = 5, 13) and shapes: few rows (1024: 64 tiles of 16 rows for 132 SMs),
  // long rows (K = 14336), the largest N.
  for (DType t : {DType::Q4_0, DType::Q4_K, DType::Q8_0}) {
    for (int64_t m : {5, 13}) cases.push_back({t, 4, m, 14336, 4096});
    for (auto [N, K] : {std::pair<int64_t, int64_t>{1024, 4096}, {4096, 14336}, {151936, 4096}})
      cases.push_back({t, 4, 8, N, K});
  }
  for (int bits : {4, 8}) {
    for (auto [N, K] : shapes) cases.push_back({DType::U32, bits, 1, N, K});
    cases.push_back({DType::U32, bits, 8, 14336, 4096});
  }
  for (const QCase& c : cases)
    add_case(
        "qmatmul", 31, [c](Harness& h, const BenchEnv&) { return bench_qmatmul(h, c); }, true);
  for (DType t : {DType::Q4_0, DType::Q4_K, DType::Q8_0, DType::Q6_K, DType::BF16})
    for (auto [N, K] : {std::pair<int64_t, int64_t>{768, 2048}, {2048, 768}})
      add_case(
          "matmul_experts", 32, [=](Harness& h, const BenchEnv&) { return bench_experts(h, t, N, K); }, true);
  for (DType t : {DType::Q4_0, DType::Q4_K, DType::Q8_0, DType::Q6_K, DType::BF16})
    add_case(
        "matmul_experts_glu", 33, [=](Harness& h, const BenchEnv&) { return bench_experts_glu(h, t, 768, 2048); },
        true);
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
