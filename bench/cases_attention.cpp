// Attention cases (32 query heads, 8 KV heads, head dim 128, bf16): decode against the KV bytes read (GB/s and the
// share of the copy ceiling), prefill in TFLOP/s counting the causal half, and the KV-cache write in GB/s.
#include "harness.h"

namespace mlxn::bench {
namespace {

constexpr int64_t kHq = 32, kHkv = 8, kD = 128;

struct AttnSet {
  ops::KvCache cache;
  Buffer q, out, ws;
};

// tkv: bf16, u8 = fp8 e4m3 (constant codes, random f32 scales: the timing does not depend on the values), or q8_0 /
// q4_0 (split layout: constant codes, random f16 block scales).
Result<AttnSet> make_attn_set(Harness& h, int64_t batch, int64_t q_len, int64_t kv, uint64_t seed,
                              DType tkv = DType::BF16) {
  AttnSet s;
  const bool block = tkv == DType::Q8_0 || tkv == DType::Q4_0;
  const DType storage = tkv == DType::Q8_0 ? DType::I8 : tkv == DType::Q4_0 ? DType::U8 : tkv;
  const int64_t cols = tkv == DType::Q4_0 ? kD / 2 : kD;
  MLXN_ASSIGN_OR_RETURN(s.cache.k, h.device().alloc(storage, {batch, kv, kHkv, cols}));
  MLXN_ASSIGN_OR_RETURN(s.cache.v, h.device().alloc(storage, {batch, kv, kHkv, cols}));
  if (block) {
    MLXN_TRY(s.cache.k.fill_bytes(0x35));
    MLXN_TRY(s.cache.v.fill_bytes(0x53));
    MLXN_ASSIGN_OR_RETURN(s.cache.k_scale, h.device().alloc(DType::F16, {batch, kv, kHkv, kD / 32}));
    MLXN_ASSIGN_OR_RETURN(s.cache.v_scale, h.device().alloc(DType::F16, {batch, kv, kHkv, kD / 32}));
    MLXN_TRY(fill_random(s.cache.k_scale, seed));
    MLXN_TRY(fill_random(s.cache.v_scale, seed + 1));
    s.cache.quant = tkv == DType::Q8_0 ? ops::KvQuant::Q8_0 : ops::KvQuant::Q4_0;
  } else if (tkv == DType::U8) {
    MLXN_TRY(s.cache.k.fill_bytes(0x38));  // 1.0
    MLXN_TRY(s.cache.v.fill_bytes(0x30));  // 0.5
    MLXN_ASSIGN_OR_RETURN(s.cache.k_scale, h.device().alloc(DType::F32, {batch, kv, kHkv}));
    MLXN_ASSIGN_OR_RETURN(s.cache.v_scale, h.device().alloc(DType::F32, {batch, kv, kHkv}));
    MLXN_TRY(fill_random(s.cache.k_scale, seed));
    MLXN_TRY(fill_random(s.cache.v_scale, seed + 1));
  } else {
    MLXN_TRY(fill_random(s.cache.k, seed));
    MLXN_TRY(fill_random(s.cache.v, seed + 1));
  }
  MLXN_ASSIGN_OR_RETURN(s.q, h.device().alloc(DType::BF16, {batch, q_len, kHq, kD}));
  MLXN_TRY(fill_random(s.q, seed + 2));
  MLXN_ASSIGN_OR_RETURN(s.out, h.device().alloc(DType::BF16, {batch, q_len, kHq, kD}));
  MLXN_TRY(s.out.fill_bytes(0));
  const size_t ws = ops::attention_workspace_bytes(h.device(), s.q, s.cache);
  if (ws > 0) {
    MLXN_ASSIGN_OR_RETURN(s.ws, h.device().alloc(DType::U8, {static_cast<int64_t>(ws)}));
  }
  return s;
}

Result<Buffer> lens_buffer(Harness& h, int64_t batch, int32_t len) {
  MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(DType::I32, {batch}));
  std::vector<int32_t> v(static_cast<size_t>(batch), len);
  MLXN_TRY(b.upload(v.data(), v.size() * 4));
  return b;
}

// Decode: one query token per sequence over kv cached tokens; the bytes are the K and V read (with fp8, q8_0 and
// q4_0, the scales too; q and out are noise).
Status bench_decode(Harness& h, int64_t batch, int64_t kv, DType tkv = DType::BF16) {
  const double per_vec = tkv == DType::U8     ? kD + 4.0
                         : tkv == DType::Q8_0 ? kD + kD / 16.0
                         : tkv == DType::Q4_0 ? kD / 2.0 + kD / 16.0
                                              : 2.0 * kD;
  const double kv_bytes = static_cast<double>(batch * kv * kHkv) * per_vec * 2;
  const int n = h.rotation(kv_bytes);
  std::vector<AttnSet> sets;
  for (int i = 0; i < n; ++i) {
    MLXN_ASSIGN_OR_RETURN(AttnSet s, make_attn_set(h, batch, 1, kv, 100 + static_cast<uint64_t>(i) * 3, tkv));
    sets.push_back(std::move(s));
  }
  ops::SeqLens lens;
  MLXN_ASSIGN_OR_RETURN(lens.kv_lens, lens_buffer(h, batch, static_cast<int32_t>(kv)));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    const AttnSet& s = sets[static_cast<size_t>(k) % sets.size()];
    return ops::attention(h.session(), s.q, s.cache, lens, s.out, {}, Buffer(), Buffer(), s.ws);
  }));
  const double bytes = kv_bytes + static_cast<double>(batch * kHq * kD) * 2 * 2;
  h.add({"attention_decode", std::to_string(batch) + "x" + std::to_string(kv),
         tkv == DType::U8     ? "fp8 kv 32/8 d128"
         : tkv == DType::Q8_0 ? "q8_0 kv 32/8 d128"
         : tkv == DType::Q4_0 ? "q4_0 kv 32/8 d128"
                              : "bf16 32/8 d128",
         n > 1 ? "rotated" : "", us, bytes});
  return Status::ok();
}

// Causal prefill from position 0: flops = 4 * Hq * D * (number of visible (query, key) pairs) ~ 2 * Hq * D * n^2.
Status bench_prefill(Harness& h, int64_t n_tok, int64_t head_dim = kD) {
  AttnSet s;
  const int64_t hkv = kHkv, hq = kHq;
  MLXN_ASSIGN_OR_RETURN(s.cache.k, h.device().alloc(DType::BF16, {1, n_tok, hkv, head_dim}));
  MLXN_ASSIGN_OR_RETURN(s.cache.v, h.device().alloc(DType::BF16, {1, n_tok, hkv, head_dim}));
  MLXN_TRY(fill_random(s.cache.k, 7));
  MLXN_TRY(fill_random(s.cache.v, 8));
  MLXN_ASSIGN_OR_RETURN(s.q, h.device().alloc(DType::BF16, {1, n_tok, hq, head_dim}));
  MLXN_TRY(fill_random(s.q, 9));
  MLXN_ASSIGN_OR_RETURN(s.out, h.device().alloc(DType::BF16, {1, n_tok, hq, head_dim}));
  const size_t ws = ops::attention_workspace_bytes(h.device(), s.q, s.cache);
  if (ws > 0) {
    MLXN_ASSIGN_OR_RETURN(s.ws, h.device().alloc(DType::U8, {static_cast<int64_t>(ws)}));
  }
  ops::SeqLens lens;
  MLXN_ASSIGN_OR_RETURN(lens.kv_lens, lens_buffer(h, 1, static_cast<int32_t>(n_tok)));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int) {
    return ops::attention(h.session(), s.q, s.cache, lens, s.out, {}, Buffer(), Buffer(), s.ws);
  }));
  const double pairs = static_cast<double>(n_tok) * static_cast<double>(n_tok + 1) / 2;
  Row r{"attention_prefill",
        "1x" + std::to_string(n_tok) + " causal",
        "bf16 32/8 d" + std::to_string(head_dim),
        "",
        us,
        0};
  r.flops = 4.0 * static_cast<double>(hq * head_dim) * pairs;
  h.add(r);
  return Status::ok();
}

// KV write of `tokens` new rows per sequence for `batch` sequences (bytes: rows read + written, K and V).
Status bench_kv_write(Harness& h, int64_t batch, int64_t tokens) {
  const int64_t cap = tokens + 16;
  MLXN_ASSIGN_OR_RETURN(Buffer kc, h.device().alloc(DType::BF16, {batch, cap, kHkv, kD}));
  MLXN_ASSIGN_OR_RETURN(Buffer vc, h.device().alloc(DType::BF16, {batch, cap, kHkv, kD}));
  MLXN_ASSIGN_OR_RETURN(Buffer k, h.device().alloc(DType::BF16, {batch, tokens, kHkv, kD}));
  MLXN_ASSIGN_OR_RETURN(Buffer v, h.device().alloc(DType::BF16, {batch, tokens, kHkv, kD}));
  MLXN_TRY(fill_random(k, 1));
  MLXN_TRY(fill_random(v, 2));
  ops::SeqLens lens;
  MLXN_ASSIGN_OR_RETURN(lens.kv_lens, lens_buffer(h, batch, static_cast<int32_t>(cap)));
  const ops::KvCache cache{kc, vc, ops::KvLayout::Contiguous, Buffer()};
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int) { return ops::kv_cache_write(h.session(), k, v, cache, lens); }));
  const double bytes = static_cast<double>(batch * tokens * kHkv * kD) * 2 * 2 * 2;
  h.add({"kv_cache_write", std::to_string(batch) + "x" + std::to_string(tokens), "bf16 8x128", "", us, bytes});
  return Status::ok();
}

const bool registered = [] {
  add_case("attention_decode", 30, [](Harness& h, const BenchEnv&) { return bench_decode(h, 1, 4096); });
  add_case(
      "attention_decode", 30, [](Harness& h, const BenchEnv&) { return bench_decode(h, 1, 32768); }, true);
  add_case(
      "attention_decode", 30, [](Harness& h, const BenchEnv&) { return bench_decode(h, 1, 131072); }, true);
  add_case(
      "attention_decode", 30, [](Harness& h, const BenchEnv&) { return bench_decode(h, 16, 8192); }, true);
  add_case(
      "attention_decode", 30, [](Harness& h, const BenchEnv&) { return bench_decode(h, 1, 8192); }, true);
  // fp8 e4m3 KV (u8 + f32 scales): the bar is >= 1.6x less time than bf16 at 32k.
  add_case(
      "attention_decode", 30, [](Harness& h, const BenchEnv&) { return bench_decode(h, 1, 32768, DType::U8); }, true);
  add_case(
      "attention_decode", 30, [](Harness& h, const BenchEnv&) { return bench_decode(h, 1, 131072, DType::U8); }, true);
  // q8_0 / q4_0 KV (split GGML blocks): the same bar as fp8 for q8_0 (>= 1.6x less time than bf16 at 32k).
  for (DType t : {DType::Q8_0, DType::Q4_0})
    for (int64_t kv : {int64_t{4096}, int64_t{32768}, int64_t{131072}})
      add_case(
          "attention_decode", 30, [t, kv](Harness& h, const BenchEnv&) { return bench_decode(h, 1, kv, t); }, true);
  add_case(
      "attention_prefill", 30, [](Harness& h, const BenchEnv&) { return bench_prefill(h, 4096); }, true);
  add_case(
      "attention_prefill", 30, [](Harness& h, const BenchEnv&) { return bench_prefill(h, 2048); }, true);
  add_case(
      "attention_prefill", 30, [](Harness& h, const BenchEnv&) { return bench_prefill(h, 8192); }, true);
  add_case(
      "attention_prefill", 30, [](Harness& h, const BenchEnv&) { return bench_prefill(h, 4096, 64); }, true);
  add_case(
      "attention_prefill", 30, [](Harness& h, const BenchEnv&) { return bench_prefill(h, 4096, 256); }, true);
  add_case(
      "kv_cache_write", 30, [](Harness& h, const BenchEnv&) { return bench_kv_write(h, 64, 512); }, true);
  add_case("kv_cache_write", 30, [](Harness& h, const BenchEnv&) { return bench_kv_write(h, 1, 1); });
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
