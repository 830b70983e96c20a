// Row dequantizer, quantized embedding and prefill-sized quantized matmul cases.
//   dequantize: large weights to bf16 (and one to f32), bytes read (blocks) + written (output) against the copy
//               ceiling.
//   embedding:  4096 token rows gathered from a quantized 151936 x 4096 table.
//   qmatmul prefill: M = 512 / 4096 on the Llama-3-8B MLP shapes in q4_0, q4_K, q6_K, q8_0 as TFLOP/s, with the
//               dense bf16 cuBLASLt product of the same shape timed in the same run (the bar: >= 60 %).
#include <map>

#include "harness.h"

namespace mlxn::bench {
namespace {

Status bench_dequant(Harness& h, DType tw, int bits, DType to, int64_t N, int64_t K) {
  const bool affine = tw == DType::U32;
  constexpr int kGroup = 64;
  const double w_bytes = affine ? static_cast<double>(N * K) * bits / 8 + static_cast<double>(N * K / kGroup) * 4
                                : static_cast<double>(dtype_storage_bytes(tw, N * K).value());
  const double out_bytes = static_cast<double>(N * K) * static_cast<double>(dtype_size(to));
  const int sets = h.rotation(w_bytes + out_bytes);
  std::vector<Buffer> ws, ss, bs, outs;
  for (int i = 0; i < sets; ++i) {
    if (affine) {
      MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(DType::U32, {N, K * bits / 32}));
      MLXN_ASSIGN_OR_RETURN(Buffer s, h.device().alloc(DType::F16, {N, K / kGroup}));
      MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(DType::F16, {N, K / kGroup}));
      MLXN_TRY(fill_random(w, 300 + static_cast<uint64_t>(i)));
      MLXN_TRY(fill_random(s, 400 + static_cast<uint64_t>(i)));
      MLXN_TRY(fill_random(b, 500 + static_cast<uint64_t>(i)));
      ws.push_back(w), ss.push_back(s), bs.push_back(b);
    } else {
      MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(tw, {N, K}));
      MLXN_TRY(fill_random(w, 300 + static_cast<uint64_t>(i)));
      ws.push_back(w);
    }
    MLXN_ASSIGN_OR_RETURN(Buffer o, h.device().alloc(to, {N, K}));
    outs.push_back(o);
  }
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) -> Status {
    const size_t i = static_cast<size_t>(k) % ws.size();
    if (!affine) return ops::dequantize(h.session(), ws[i], outs[i]);
    ops::AffineWeight aw{ws[i], ss[i], bs[i], bits, kGroup};
    return ops::dequantize_affine(h.session(), aw, outs[i]);
  }));
  const std::string name = affine ? "affine" + std::to_string(bits) + " g64" : std::string(dtype_name(tw));
  h.add({"dequantize", shape_str(N, K), name + " -> " + std::string(dtype_name(to)), sets > 1 ? "rotated" : "", us,
         w_bytes + out_bytes});
  return Status::ok();
}

Status bench_qembedding(Harness& h, DType tw, int64_t vocab, int64_t dim, int64_t n) {
  MLXN_ASSIGN_OR_RETURN(Buffer table, h.device().alloc(tw, {vocab, dim}));
  MLXN_TRY(fill_random(table, 3));
  std::vector<int32_t> idv(static_cast<size_t>(n));
  std::mt19937_64 g(5);
  for (auto& v : idv) v = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
  MLXN_ASSIGN_OR_RETURN(Buffer ids, h.device().alloc(DType::I32, {n}));
  MLXN_TRY(ids.upload(idv.data(), idv.size() * 4));
  MLXN_ASSIGN_OR_RETURN(Buffer out, h.device().alloc(DType::BF16, {n, dim}));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int) { return ops::embedding(h.session(), table, ids, out); }));
  const double bytes = static_cast<double>(n) *
                       (static_cast<double>(dtype_storage_bytes(tw, dim).value()) + static_cast<double>(dim) * 2);
  h.add({"embedding n=" + std::to_string(n), shape_str(vocab, dim), std::string(dtype_name(tw)) + " -> bf16", "", us,
         bytes});
  return Status::ok();
}

// Dense bf16 time per (M, N, K), measured in this run before the quantized cases of that shape.
std::map<std::tuple<int64_t, int64_t, int64_t>, double>& dense_us() {
  static std::map<std::tuple<int64_t, int64_t, int64_t>, double> t;
  return t;
}

Status bench_qprefill(Harness& h, DType tw, int64_t M, int64_t N, int64_t K) {
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(DType::BF16, {M, K}));
  MLXN_TRY(fill_random(x, 7));
  MLXN_ASSIGN_OR_RETURN(Buffer y, h.device().alloc(DType::BF16, {M, N}));
  const auto key = std::make_tuple(M, N, K);
  if (!dense_us().count(key)) {
    MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(DType::BF16, {N, K}));
    MLXN_TRY(fill_random(w, 11));
    MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int) { return ops::matmul(h.session(), x, w, y); }));
    dense_us()[key] = us;
    Row r{"qmatmul prefill m=" + std::to_string(M), shape_str(N, K), "bf16 (dense)", "", us, 0};
    r.flops = flops;
    h.add(r);
  }
  const double w_bytes = static_cast<double>(dtype_storage_bytes(tw, N * K).value());
  const int sets = h.rotation(w_bytes);
  std::vector<Buffer> ws;
  for (int i = 0; i < sets; ++i) {
    MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(tw, {N, K}));
    MLXN_TRY(fill_random(w, 300 + static_cast<uint64_t>(i)));
    ws.push_back(w);
  }
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    return ops::matmul(h.session(), x, ws[static_cast<size_t>(k) % ws.size()], y);
  }));
  char note[64];
  std::snprintf(note, sizeof(note), "%.0f%% of dense bf16", 100.0 * dense_us()[key] / us);
  Row r{"qmatmul prefill m=" + std::to_string(M),
        shape_str(N, K),
        std::string(dtype_name(tw)) + " x bf16",
        std::string(note) + (sets > 1 ? ", W rotated" : ""),
        us,
        0};
  r.flops = flops;
  h.add(r);
  return Status::ok();
}

const bool registered = [] {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4})
    add_case(
        "dequantize", 32, [t](Harness& h, const BenchEnv&) { return bench_dequant(h, t, 0, DType::BF16, 14336, 4096); },
        true);
  add_case(
      "dequantize", 32,
      [](Harness& h, const BenchEnv&) { return bench_dequant(h, DType::Q4_K, 0, DType::F32, 14336, 4096); }, true);
  for (int bits : {4, 8})
    add_case(
        "dequantize", 32,
        [bits](Harness& h, const BenchEnv&) { return bench_dequant(h, DType::U32, bits, DType::BF16, 14336, 4096); },
        true);
  for (DType t : {DType::Q4_K, DType::Q6_K, DType::Q8_0})
    add_case(
        "embedding quant", 32, [t](Harness& h, const BenchEnv&) { return bench_qembedding(h, t, 151936, 4096, 4096); },
        true);
  for (int64_t M : {512, 4096})
    for (const auto& nk : {std::pair<int64_t, int64_t>{14336, 4096}, {4096, 14336}})
      for (DType t : {DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::Q8_0}) {
        const int64_t N = nk.first, K = nk.second;
        add_case(
            "qmatmul prefill", 33, [t, M, N, K](Harness& h, const BenchEnv&) { return bench_qprefill(h, t, M, N, K); },
            true);
      }
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
