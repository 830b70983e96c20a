// Reduction, sampling and MoE routing cases: decode-sized calls (one row of logits, one batch of router logits) in
// microseconds, large inputs (row sum / cumsum 16384 x 4096, the weighted reduce) against the copy ceiling.
#include "harness.h"

namespace mlxn::bench {
namespace {

Result<Buffer> random_buffer(Harness& h, DType t, const Shape& shape, uint64_t seed) {
  MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(t, shape));
  MLXN_TRY(fill_random(b, seed));
  return b;
}

Result<Buffer> bytes_buffer(Harness& h, size_t bytes) {
  MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(DType::U8, {static_cast<int64_t>(std::max<size_t>(bytes, 1))}));
  MLXN_TRY(b.fill_bytes(0));
  return b;
}

Status bench_argmax(Harness& h, DType t, int64_t rows, int64_t cols) {
  MLXN_ASSIGN_OR_RETURN(Buffer x, random_buffer(h, t, {rows, cols}, 3));
  MLXN_ASSIGN_OR_RETURN(Buffer idx, h.device().alloc(DType::I32, {rows}));
  MLXN_ASSIGN_OR_RETURN(Buffer ws, bytes_buffer(h, ops::argmax_workspace_bytes(rows, cols)));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int) { return ops::argmax(h.session(), x, idx, Buffer(), ws); }));
  h.add({"argmax", shape_str(rows, cols), std::string(dtype_name(t)), "", us,
         static_cast<double>(rows * cols * static_cast<int64_t>(dtype_size(t)))});
  return Status::ok();
}

Status bench_topk(Harness& h, DType t, int64_t rows, int64_t cols, int k) {
  MLXN_ASSIGN_OR_RETURN(Buffer x, random_buffer(h, t, {rows, cols}, 4));
  MLXN_ASSIGN_OR_RETURN(Buffer idx, h.device().alloc(DType::I32, {rows, k}));
  MLXN_ASSIGN_OR_RETURN(Buffer val, h.device().alloc(t, {rows, k}));
  MLXN_ASSIGN_OR_RETURN(Buffer ws, bytes_buffer(h, ops::topk_workspace_bytes(rows, cols, k)));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int) { return ops::topk(h.session(), x, k, val, idx, ws); }));
  h.add({"topk k=" + std::to_string(k), shape_str(rows, cols), std::string(dtype_name(t)), "", us,
         static_cast<double>(rows * cols * static_cast<int64_t>(dtype_size(t)))});
  return Status::ok();
}

Status bench_sample(Harness& h, DType t, int64_t rows, int64_t vocab, const ops::SampleParams& p, const char* note,
                    bool history) {
  MLXN_ASSIGN_OR_RETURN(Buffer x, random_buffer(h, t, {rows, vocab}, 5));
  MLXN_ASSIGN_OR_RETURN(Buffer tok, h.device().alloc(DType::I32, {rows}));
  MLXN_ASSIGN_OR_RETURN(Buffer lp, h.device().alloc(DType::F32, {rows}));
  MLXN_ASSIGN_OR_RETURN(Buffer ws, bytes_buffer(h, ops::sample_workspace_bytes(rows, vocab)));
  Buffer hist;
  if (history) {
    MLXN_ASSIGN_OR_RETURN(hist, h.device().alloc(DType::I32, {rows, 64}));
    std::vector<int32_t> v(static_cast<size_t>(rows * 64));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>((i * 2654435761u) % static_cast<uint64_t>(vocab));
    MLXN_TRY(hist.upload(v.data(), v.size() * 4));
  }
  ops::SampleParams q = p;
  q.step_slot = 0;
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    MLXN_TRY(h.session().set_step_u32(0, static_cast<uint32_t>(k)));
    return ops::sample(h.session(), x, hist, tok, lp, ws, q);
  }));
  h.add({"sample", shape_str(rows, vocab), std::string(dtype_name(t)), note, us, 0});
  return Status::ok();
}

Status bench_row_reduce(Harness& h, DType t, int64_t rows, int64_t cols, bool scan) {
  const double bytes = static_cast<double>(rows * cols * static_cast<int64_t>(dtype_size(t))) * (scan ? 2.0 : 1.0) +
                       (scan ? 0.0 : static_cast<double>(rows * static_cast<int64_t>(dtype_size(t))));
  MLXN_ASSIGN_OR_RETURN(Sets sets, make_sets(h, h.rotation(bytes), t, t, rows, cols, false));
  MLXN_ASSIGN_OR_RETURN(Buffer sums, h.device().alloc(t, {rows}));
  const size_t n = sets.in.size();
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    const size_t i = static_cast<size_t>(k) % n;
    return scan ? ops::cumsum(h.session(), sets.in[i], sets.out[i]) : ops::row_sum(h.session(), sets.in[i], sums);
  }));
  h.add({scan ? "cumsum" : "row_sum", shape_str(rows, cols), std::string(dtype_name(t)), n > 1 ? "rotated" : "", us,
         bytes});
  return Status::ok();
}

Status bench_moe_route(Harness& h, DType t, int64_t tokens, int e, int k) {
  MLXN_ASSIGN_OR_RETURN(Buffer x, random_buffer(h, t, {tokens, e}, 6));
  MLXN_ASSIGN_OR_RETURN(Buffer ids, h.device().alloc(DType::I32, {tokens, k}));
  MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(DType::F32, {tokens, k}));
  ops::MoeRouteParams p;
  p.k = k;
  MLXN_ASSIGN_OR_RETURN(double us,
                        h.time_us([&](int) { return ops::moe_route(h.session(), x, Buffer(), Buffer(), ids, w, p); }));
  h.add({"moe_route", std::to_string(tokens) + "x" + std::to_string(e) + " k" + std::to_string(k),
         std::string(dtype_name(t)), "softmax, renormalize", us, 0});
  MLXN_ASSIGN_OR_RETURN(Buffer counts, h.device().alloc(DType::I32, {e}));
  MLXN_ASSIGN_OR_RETURN(Buffer offsets, h.device().alloc(DType::I32, {e + 1}));
  MLXN_ASSIGN_OR_RETURN(Buffer perm, h.device().alloc(DType::I32, {tokens * k}));
  MLXN_TRY(ops::moe_route(h.session(), x, Buffer(), Buffer(), ids, w, p));
  MLXN_ASSIGN_OR_RETURN(
      double us2, h.time_us([&](int) { return ops::moe_expert_lists(h.session(), ids, e, counts, offsets, perm); }));
  h.add({"moe_expert_lists", std::to_string(tokens) + "x" + std::to_string(k) + " E" + std::to_string(e), "i32", "",
         us2, 0});
  return Status::ok();
}

// MoE tail: weighted sum + RMSNorm + residual add (fused op) against the three ops it replaces. Bytes: x, w, the
// residual read and out written once (the minimum; the op's scratch round trip is not counted).
Status bench_reduce_norm_add(Harness& h, DType t, int64_t tokens, int k, int64_t dim) {
  const double bytes = static_cast<double>(tokens * k * dim + 2 * tokens * dim) * static_cast<double>(dtype_size(t)) +
                       static_cast<double>(tokens * k * 4 + dim * 4);
  MLXN_ASSIGN_OR_RETURN(Buffer x, random_buffer(h, t, {tokens, k, dim}, 41));
  MLXN_ASSIGN_OR_RETURN(Buffer w, random_buffer(h, DType::F32, {tokens, k}, 9));
  MLXN_ASSIGN_OR_RETURN(Buffer nw, random_buffer(h, DType::F32, {dim}, 10));
  MLXN_ASSIGN_OR_RETURN(Buffer r, random_buffer(h, t, {tokens, dim}, 11));
  MLXN_ASSIGN_OR_RETURN(Buffer out, h.device().alloc(t, {tokens, dim}));
  MLXN_ASSIGN_OR_RETURN(Buffer sum, h.device().alloc(t, {tokens, dim}));
  MLXN_ASSIGN_OR_RETURN(Buffer normed, h.device().alloc(t, {tokens, dim}));
  const std::string shape = std::to_string(tokens) + "x" + std::to_string(k) + "x" + std::to_string(dim);
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int) {
    return ops::moe_reduce_norm_add(h.session(), x, w, nw, r, out);
  }));
  h.add({"moe_reduce_norm_add (fused)", shape, std::string(dtype_name(t)), "", us, bytes});
  MLXN_ASSIGN_OR_RETURN(double us3, h.time_us([&](int) {
    MLXN_TRY(ops::moe_weighted_reduce(h.session(), x, w, sum));
    MLXN_TRY(ops::rms_norm(h.session(), sum, nw, normed));
    return ops::add(h.session(), r, normed, out);
  }));
  h.add({"moe reduce + norm + add (3 ops)", shape, std::string(dtype_name(t)), "for comparison", us3, bytes});
  return Status::ok();
}

Status bench_weighted_reduce(Harness& h, DType t, int64_t tokens, int k, int64_t dim) {
  const double bytes = static_cast<double>(tokens * k * dim + tokens * dim) * static_cast<double>(dtype_size(t)) +
                       static_cast<double>(tokens * k * 4);
  const int n_sets = h.rotation(bytes);
  std::vector<Buffer> xs;
  for (int i = 0; i < n_sets; ++i) {
    MLXN_ASSIGN_OR_RETURN(Buffer x, random_buffer(h, t, {tokens, k, dim}, 40 + static_cast<uint64_t>(i)));
    xs.push_back(x);
  }
  MLXN_ASSIGN_OR_RETURN(Buffer w, random_buffer(h, DType::F32, {tokens, k}, 8));
  MLXN_ASSIGN_OR_RETURN(Buffer out, h.device().alloc(t, {tokens, dim}));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int i) {
    return ops::moe_weighted_reduce(h.session(), xs[static_cast<size_t>(i) % xs.size()], w, out);
  }));
  h.add({"moe_weighted_reduce", std::to_string(tokens) + "x" + std::to_string(k) + "x" + std::to_string(dim),
         std::string(dtype_name(t)), n_sets > 1 ? "rotated" : "", us, bytes});
  return Status::ok();
}

const bool registered = [] {
  for (int64_t rows : {1, 32}) {
    add_case("argmax", 40, [rows](Harness& h, const BenchEnv&) { return bench_argmax(h, DType::BF16, rows, 151936); });
    for (int k : {40, 1024})
      add_case(
          "topk", 40, [rows, k](Harness& h, const BenchEnv&) { return bench_topk(h, DType::BF16, rows, 151936, k); },
          rows > 1);
  }
  auto sample_case = [](const char* note, ops::SampleParams p, bool hist = false, int64_t rows = 1,
                        int64_t vocab = 262144) {
    add_case("sample", 40, [note, p, hist, rows, vocab](Harness& h, const BenchEnv&) {
      return bench_sample(h, DType::BF16, rows, vocab, p, note, hist);
    });
  };
  ops::SampleParams kp;
  kp.top_k = 40;
  kp.top_p = 0.9f;
  // The decode bar (<= 20 us at batch 1): a 151936-token vocabulary, batch 1 and 64.
  sample_case("top-k 40, top-p 0.9", kp, false, 1, 151936);
  sample_case("top-k 40, top-p 0.9", kp, false, 64, 151936);
  sample_case("top-k 40, top-p 0.9", kp);
  sample_case(
      "top-k 40, top-p 0.9, penalties",
      [&] {
        ops::SampleParams q = kp;
        q.repetition_penalty = 1.1f;
        return q;
      }(),
      true);
  ops::SampleParams greedy;
  greedy.temperature = 0.0f;
  sample_case("greedy", greedy);
  sample_case("temperature only (full-row pass)", ops::SampleParams{});
  add_case("moe_route", 40, [](Harness& h, const BenchEnv&) { return bench_moe_route(h, DType::BF16, 512, 128, 8); });
  add_case("moe_route", 40, [](Harness& h, const BenchEnv&) { return bench_moe_route(h, DType::F32, 1, 128, 8); });
  add_case(
      "moe_weighted_reduce", 40,
      [](Harness& h, const BenchEnv&) { return bench_weighted_reduce(h, DType::BF16, 512, 8, 4096); }, true);
  for (int64_t tokens : {1, 512})
    add_case("moe_reduce_norm_add", 40, [tokens](Harness& h, const BenchEnv&) {
      return bench_reduce_norm_add(h, DType::BF16, tokens, 8, 4096);
    }, tokens > 1);
  for (bool scan : {false, true})
    add_case(scan ? "cumsum" : "row_sum", 40, [scan](Harness& h, const BenchEnv& e) {
      return bench_row_reduce(h, DType::BF16, e.gpu ? 16384 : e.big_rows, 4096, scan);
    });
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
