// Layout and embedding cases: transpose 4096 x 4096 bf16, permutes of [T, H, D] activations, concat, qkv split,
// and gathering 128 rows of a 151936 x 4096 bf16 embedding table (bytes moved counted: rows read + written).
#include "harness.h"

namespace mlxn::bench {
namespace {

Result<std::vector<Buffer>> make_inputs(Harness& h, int n, DType t, const Shape& shape, uint64_t seed) {
  std::vector<Buffer> v;
  for (int i = 0; i < n; ++i) {
    MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(t, shape));
    MLXN_TRY(fill_random(b, seed + static_cast<uint64_t>(i)));
    v.push_back(b);
  }
  return v;
}

std::string shape_of(const Shape& s) {
  std::string r;
  for (int i = 0; i < s.rank(); ++i) {
    if (i) r += 'x';
    r += std::to_string(s[i]);
  }
  return r;
}

Status bench_permute(Harness& h, const Shape& shape, std::vector<int> perm, DType t) {
  const double bytes = 2.0 * static_cast<double>(shape.numel()) * static_cast<double>(dtype_size(t));
  const int n = h.rotation(bytes);
  MLXN_ASSIGN_OR_RETURN(auto xs, make_inputs(h, n, t, shape, 41));
  Shape os = shape;
  for (int d = 0; d < shape.rank(); ++d) os[d] = shape[perm[static_cast<size_t>(d)]];
  MLXN_ASSIGN_OR_RETURN(auto ys, make_inputs(h, n, t, os, 51));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    const size_t i = static_cast<size_t>(k) % xs.size();
    return ops::permute(h.session(), xs[i], std::span<const int>(perm), ys[i]);
  }));
  std::string p = "perm (";
  for (size_t d = 0; d < perm.size(); ++d) {
    if (d) p += ',';
    p += std::to_string(perm[d]);
  }
  h.add({"permute", shape_of(shape), std::string(dtype_name(t)), p + ")", us, bytes});
  return Status::ok();
}

// Two [rows, cols] halves concatenated along the last axis.
Status bench_concat(Harness& h, int64_t rows, int64_t cols, DType t) {
  const double bytes = 4.0 * static_cast<double>(rows * cols) * static_cast<double>(dtype_size(t));
  const int n = h.rotation(bytes);
  MLXN_ASSIGN_OR_RETURN(auto as, make_inputs(h, n, t, {rows, cols}, 61));
  MLXN_ASSIGN_OR_RETURN(auto bs, make_inputs(h, n, t, {rows, cols}, 71));
  MLXN_ASSIGN_OR_RETURN(auto outs, make_inputs(h, n, t, {rows, 2 * cols}, 81));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    const size_t i = static_cast<size_t>(k) % outs.size();
    const Buffer ins[2] = {as[i], bs[i]};
    return ops::concat(h.session(), ins, 1, outs[i]);
  }));
  h.add({"concat", "2x " + shape_str(rows, cols), std::string(dtype_name(t)), "axis 1", us, bytes});
  return Status::ok();
}

// Qwen3-8B-like fused qkv: 32 q heads, 8 kv heads, D 128.
Status bench_qkv_split(Harness& h, int64_t T, DType t) {
  const int64_t W = (32 + 16) * 128;
  const double bytes = 2.0 * static_cast<double>(T * W) * static_cast<double>(dtype_size(t));
  const int n = h.rotation(bytes);
  MLXN_ASSIGN_OR_RETURN(auto qkv, make_inputs(h, n, t, {T, W}, 91));
  MLXN_ASSIGN_OR_RETURN(auto q, make_inputs(h, n, t, {T, 32 * 128}, 92));
  MLXN_ASSIGN_OR_RETURN(auto k, make_inputs(h, n, t, {T, 8 * 128}, 93));
  MLXN_ASSIGN_OR_RETURN(auto v, make_inputs(h, n, t, {T, 8 * 128}, 94));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int c) {
    const size_t i = static_cast<size_t>(c) % qkv.size();
    return ops::qkv_split(h.session(), qkv[i], q[i], k[i], v[i]);
  }));
  h.add({"qkv_split", shape_str(T, W), std::string(dtype_name(t)), "32/8/8 heads x 128", us, bytes});
  return Status::ok();
}

// 128 random ids into a [vocab, dim] table: embedding (with Gemma's scale) and the plain row gather.
Status bench_gather(Harness& h, int64_t vocab, int64_t dim, int64_t n_ids, DType t, bool embedding) {
  MLXN_ASSIGN_OR_RETURN(Buffer table, h.device().alloc(t, {vocab, dim}));
  MLXN_TRY(table.fill_bytes(0x3c));
  std::mt19937_64 g(7);
  const int sets = 16;  // different ids per call: the rows read are cold
  std::vector<Buffer> ids;
  for (int s = 0; s < sets; ++s) {
    std::vector<int32_t> v(static_cast<size_t>(n_ids));
    for (auto& x : v) x = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
    MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(DType::I32, {n_ids}));
    MLXN_TRY(b.upload(v.data(), v.size() * 4));
    ids.push_back(b);
  }
  MLXN_ASSIGN_OR_RETURN(Buffer out, h.device().alloc(t, {n_ids, dim}));
  const double bytes = 2.0 * static_cast<double>(n_ids * dim) * static_cast<double>(dtype_size(t));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    const Buffer& id = ids[static_cast<size_t>(k) % ids.size()];
    return embedding ? ops::embedding(h.session(), table, id, out, {64.0f})
                     : ops::gather_rows(h.session(), table, id, out);
  }));
  h.add({embedding ? "embedding" : "gather_rows", std::to_string(n_ids) + " of " + shape_str(vocab, dim),
         std::string(dtype_name(t)), "", us, bytes});
  return Status::ok();
}

const bool registered = [] {
  add_case("transpose", 40, [](Harness& h, const BenchEnv& e) {
    const int64_t n = e.gpu ? 4096 : 1024;
    return bench_permute(h, {n, n}, {1, 0}, DType::BF16);
  });
  add_case("transpose", 40, [](Harness& h, const BenchEnv& e) {
    const int64_t n = e.gpu ? 4096 : 1024;
    return bench_permute(h, {n, n}, {1, 0}, DType::F32);
  });
  // [H, T, D] -> [H, D, T] (K^T per head) and [T, H, D] -> [H, T, D] (token-major to head-major: row copies).
  add_case("permute", 40, [](Harness& h, const BenchEnv& e) {
    return bench_permute(h, {32, e.gpu ? 4096 : 512, 128}, {0, 2, 1}, DType::BF16);
  });
  add_case("permute", 40, [](Harness& h, const BenchEnv& e) {
    return bench_permute(h, {e.gpu ? 16384 : 1024, 32, 128}, {1, 0, 2}, DType::BF16);
  });
  add_case("concat", 40,
           [](Harness& h, const BenchEnv& e) { return bench_concat(h, e.big_rows * 4, 2048, DType::BF16); });
  add_case("concat", 40, [](Harness& h, const BenchEnv&) { return bench_concat(h, 1, 2048, DType::BF16); });
  add_case("qkv_split", 40,
           [](Harness& h, const BenchEnv& e) { return bench_qkv_split(h, e.gpu ? 16384 : 1024, DType::BF16); });
  add_case("qkv_split", 40, [](Harness& h, const BenchEnv&) { return bench_qkv_split(h, 1, DType::BF16); });
  add_case("embedding", 40, [](Harness& h, const BenchEnv& e) {
    return bench_gather(h, e.gpu ? 151936 : 32000, 4096, 128, DType::BF16, true);
  });
  add_case("gather_rows", 40, [](Harness& h, const BenchEnv& e) {
    return bench_gather(h, e.gpu ? 151936 : 32000, 4096, 128, DType::BF16, false);
  });
  add_case("embedding", 40, [](Harness& h, const BenchEnv& e) {
    return bench_gather(h, e.gpu ? 151936 : 32000, 4096, 1, DType::BF16, true);
  });
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
