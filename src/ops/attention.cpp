#include "mlxn/ops/attention.h"

#include <cmath>
#include <string>

#include "kernels/attention.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

using detail::check_buffer;
using detail::check_contiguous;
using detail::check_float;

// u8: fp8 e4m3 with f32 scales per (position, head).
bool is_kv_dtype(DType t) { return t == DType::F16 || t == DType::BF16 || t == DType::U8; }

Status check_scale(std::string_view op, std::string_view arg, const Session& s, const Buffer& scale,
                   const Buffer& cache) {
  if (!scale.valid()) return invalid_argument(op, arg, " is required for an fp8 (u8) cache");
  MLXN_TRY(check_buffer(op, arg, s, scale));
  MLXN_TRY(check_contiguous(op, arg, scale));
  if (scale.dtype() != DType::F32) return unsupported(op, arg, " has dtype ", scale.dtype(), "; expected f32");
  const Shape& cs = cache.shape();
  if (scale.rank() != 3 || scale.shape()[0] != cs[0] || scale.shape()[1] != cs[1] || scale.shape()[2] != cs[2])
    return invalid_argument(op, arg, " has shape ", scale.shape(), ", expected [", cs[0], ", ", cs[1], ", ", cs[2],
                            "]");
  if (reinterpret_cast<uintptr_t>(scale.data()) % 4 != 0) return invalid_argument(op, arg, " must be 4-byte aligned");
  return Status::ok();
}

// q8_0 / q4_0 scales: f16 [.., Hkv, D / 32] beside the codes.
Status check_block_scale(std::string_view op, std::string_view arg, const Session& s, const Buffer& scale,
                         const Buffer& cache, int64_t head_dim) {
  if (!scale.valid()) return invalid_argument(op, arg, " is required for a q8_0 / q4_0 cache");
  MLXN_TRY(check_buffer(op, arg, s, scale));
  MLXN_TRY(check_contiguous(op, arg, scale));
  if (scale.dtype() != DType::F16) return unsupported(op, arg, " has dtype ", scale.dtype(), "; expected f16");
  const Shape& cs = cache.shape();
  const Shape want{cs[0], cs[1], cs[2], head_dim / 32};
  if (scale.shape() != want) return invalid_argument(op, arg, " has shape ", scale.shape(), ", expected ", want);
  if (reinterpret_cast<uintptr_t>(scale.data()) % 4 != 0) return invalid_argument(op, arg, " must be 4-byte aligned");
  return Status::ok();
}

Status check_i32_vector(std::string_view op, std::string_view arg, const Session& s, const Buffer& b, int64_t batch) {
  MLXN_TRY(check_buffer(op, arg, s, b));
  if (b.dtype() != DType::I32) return unsupported(op, arg, " has dtype ", b.dtype(), "; expected i32");
  MLXN_TRY(check_contiguous(op, arg, b));
  if (b.rank() != 1 || b.shape()[0] != batch)
    return invalid_argument(op, arg, " has shape ", b.shape(), ", expected [", batch, "]");
  return Status::ok();
}

// Validates the cache against the token rows `x` ([batch, q_len, heads, D]; heads = Hkv for writes, Hq for
// attention) and fills the cache descriptor.
Status describe_cache(std::string_view op, const Session& s, const KvCache& c, int64_t batch, int64_t head_dim,
                      kern::KvCacheDesc& d) {
  MLXN_TRY(check_buffer(op, "cache.k", s, c.k));
  MLXN_TRY(check_buffer(op, "cache.v", s, c.v));
  MLXN_TRY(check_contiguous(op, "cache.k", c.k));
  MLXN_TRY(check_contiguous(op, "cache.v", c.v));
  const bool block_quant = c.quant != KvQuant::None;
  if (c.quant == KvQuant::Q8_0 && c.k.dtype() != DType::I8)
    return unsupported(op, "cache.k has dtype ", c.k.dtype(), "; a q8_0 cache holds i8 codes");
  if (c.quant == KvQuant::Q4_0 && c.k.dtype() != DType::U8)
    return unsupported(op, "cache.k has dtype ", c.k.dtype(), "; a q4_0 cache holds u8 codes (two per byte)");
  if (c.quant != KvQuant::None && c.quant != KvQuant::Q8_0 && c.quant != KvQuant::Q4_0)
    return invalid_argument(op, "unknown cache.quant");
  if (!block_quant && !is_kv_dtype(c.k.dtype()))
    return unsupported(op, "cache.k has dtype ", c.k.dtype(), "; expected f16, bf16 or u8 (fp8 e4m3)");
  if (c.v.dtype() != c.k.dtype())
    return unsupported(op, "cache.v has dtype ", c.v.dtype(), "; expected cache.k's (", c.k.dtype(), ")");
  if (c.k.rank() != 4) return invalid_argument(op, "cache.k must have rank 4, got shape ", c.k.shape());
  if (c.v.shape() != c.k.shape())
    return invalid_argument(op, "cache.v has shape ", c.v.shape(), ", expected cache.k's ", c.k.shape());
  if (c.k.range().overlaps(c.v.range())) return invalid_argument(op, "cache.k and cache.v overlap");
  if (block_quant && head_dim % 32 != 0)
    return invalid_argument(op, "head dim ", head_dim, " is not a multiple of 32 (q8_0 / q4_0 blocks)");
  const int64_t code_cols = c.quant == KvQuant::Q4_0 ? head_dim / 2 : head_dim;
  if (c.k.shape()[3] != code_cols)
    return invalid_argument(op, "cache.k has ", c.k.shape()[3], " columns, expected ", code_cols, " for head dim ",
                            head_dim);
  d = {};
  if (block_quant) {
    MLXN_TRY(check_block_scale(op, "cache.k_scale", s, c.k_scale, c.k, head_dim));
    MLXN_TRY(check_block_scale(op, "cache.v_scale", s, c.v_scale, c.v, head_dim));
    const MemRange rs[4] = {c.k.range(), c.v.range(), c.k_scale.range(), c.v_scale.range()};
    for (int i = 0; i < 4; ++i)
      for (int j = i + 1; j < 4; ++j)
        if (rs[i].overlaps(rs[j])) return invalid_argument(op, "the caches and their scales overlap");
    d.k_scale = c.k_scale.data();
    d.v_scale = c.v_scale.data();
  } else if (c.k.dtype() == DType::U8) {
    MLXN_TRY(check_scale(op, "cache.k_scale", s, c.k_scale, c.k));
    MLXN_TRY(check_scale(op, "cache.v_scale", s, c.v_scale, c.v));
    const MemRange rs[4] = {c.k.range(), c.v.range(), c.k_scale.range(), c.v_scale.range()};
    for (int i = 0; i < 4; ++i)
      for (int j = i + 1; j < 4; ++j)
        if (rs[i].overlaps(rs[j])) return invalid_argument(op, "the caches and their scales overlap");
    d.k_scale = c.k_scale.data_as<float>();
    d.v_scale = c.v_scale.data_as<float>();
  } else if (c.k_scale.valid() || c.v_scale.valid()) {
    return invalid_argument(op, "scales given for a ", c.k.dtype(),
                            " cache (only fp8 (u8), q8_0 and q4_0 caches take them)");
  }
  d.k = c.k.data();
  d.v = c.v.data();
  d.t = c.quant == KvQuant::Q8_0 ? DType::Q8_0 : c.quant == KvQuant::Q4_0 ? DType::Q4_0 : c.k.dtype();
  d.n_kv_heads = static_cast<int32_t>(c.k.shape()[2]);
  d.head_dim = static_cast<int32_t>(head_dim);
  switch (c.layout) {
    case KvLayout::Contiguous:
    case KvLayout::Ring:
      if (c.k.shape()[0] != batch)
        return invalid_argument(op, "cache has ", c.k.shape()[0], " sequences, the rows ", batch);
      d.layout = c.layout == KvLayout::Ring ? kern::kKvRing : kern::kKvContiguous;
      d.capacity = c.k.shape()[1];
      if (c.page_table.valid()) return invalid_argument(op, "page_table given for a non-paged layout");
      break;
    case KvLayout::Paged: {
      MLXN_TRY(check_buffer(op, "cache.page_table", s, c.page_table));
      MLXN_TRY(check_contiguous(op, "cache.page_table", c.page_table));
      if (c.page_table.dtype() != DType::I32)
        return unsupported(op, "cache.page_table has dtype ", c.page_table.dtype(), "; expected i32");
      if (c.page_table.rank() != 2 || c.page_table.shape()[0] != batch)
        return invalid_argument(op, "cache.page_table has shape ", c.page_table.shape(), ", expected [", batch,
                                ", max_pages]");
      const int64_t page = c.k.shape()[1];
      if (page < 16 || page % 16 != 0)
        return invalid_argument(op, "page size ", page, " must be a positive multiple of 16");
      d.layout = kern::kKvPaged;
      d.page_size = static_cast<int32_t>(page);
      d.max_pages = static_cast<int32_t>(c.page_table.shape()[1]);
      d.n_pages = c.k.shape()[0];
      d.page_table = c.page_table.data_as<const int32_t>();
      d.capacity = page * d.max_pages;
      break;
    }
    default:
      return invalid_argument(op, "unknown KV layout");
  }
  if (d.capacity < 1) return invalid_argument(op, "the cache holds no position");
  if (d.capacity > (int64_t{1} << 31) - 1) return invalid_argument(op, "cache capacity ", d.capacity, " too large");
  return Status::ok();
}

Status check_lens(std::string_view op, const Session& s, const SeqLens& lens, int64_t batch) {
  MLXN_TRY(check_i32_vector(op, "kv_lens", s, lens.kv_lens, batch));
  if (lens.q_lens.valid()) MLXN_TRY(check_i32_vector(op, "q_lens", s, lens.q_lens, batch));
  return Status::ok();
}

std::string head_dim_key(std::initializer_list<DType> dtypes, int64_t head_dim) {
  return KernelRegistry::key(dtypes) + ".d" + std::to_string(head_dim);
}

}  // namespace

Status kv_cache_write(Session& s, const Buffer& k, const Buffer& v, const KvCache& cache, const SeqLens& lens) {
  constexpr std::string_view op = "kv_cache_write";
  MLXN_TRY(check_buffer(op, "k", s, k));
  MLXN_TRY(check_buffer(op, "v", s, v));
  MLXN_TRY(check_float(op, "k", k));
  MLXN_TRY(check_float(op, "v", v));
  MLXN_TRY(check_contiguous(op, "k", k));
  MLXN_TRY(check_contiguous(op, "v", v));
  if (k.rank() != 4) return invalid_argument(op, "k must be [batch, q_len, Hkv, D], got ", k.shape());
  if (v.shape() != k.shape()) return invalid_argument(op, "v has shape ", v.shape(), ", expected k's ", k.shape());
  const int64_t batch = k.shape()[0], q_len = k.shape()[1];
  kern::KvWriteParams kp;
  MLXN_TRY(describe_cache(op, s, cache, batch, k.shape()[3], kp.cache));
  if (k.shape()[2] != kp.cache.n_kv_heads)
    return invalid_argument(op, "k has ", k.shape()[2], " heads, the cache ", kp.cache.n_kv_heads);
  if (q_len > kp.cache.capacity)
    return invalid_argument(op, q_len, " new rows exceed the cache capacity ", kp.cache.capacity);
  MLXN_TRY(check_lens(op, s, lens, batch));
  for (const Buffer* in : {&k, &v, &lens.kv_lens, &lens.q_lens, &cache.page_table}) {
    if (!in->valid()) continue;
    for (const Buffer* w : {&cache.k, &cache.v, &cache.k_scale, &cache.v_scale})
      if (w->valid() && in->range().overlaps(w->range())) return invalid_argument(op, "an input overlaps the cache");
  }
  kp.k = k.data();
  kp.v = v.data();
  kp.tk = k.dtype();
  kp.tv = v.dtype();
  kp.kv_lens = lens.kv_lens.data_as<const int32_t>();
  kp.q_lens = lens.q_lens.valid() ? lens.q_lens.data_as<const int32_t>() : nullptr;
  kp.batch = static_cast<int32_t>(batch);
  kp.q_len = static_cast<int32_t>(q_len);
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tk, kp.tv, kp.cache.t})));
  if (batch == 0 || q_len == 0) return Status::ok();
  MemRange reads[5] = {k.range(), v.range(), lens.kv_lens.range()};
  size_t n_reads = 3;
  if (lens.q_lens.valid()) reads[n_reads++] = lens.q_lens.range();
  if (cache.page_table.valid()) reads[n_reads++] = cache.page_table.range();
  // The rows written depend on the lengths at run time: declare the whole caches (and fp8 scales).
  MemRange writes[4] = {cache.k.range(), cache.v.range()};
  size_t n_writes = 2;
  if (kp.cache.k_scale != nullptr) {
    writes[n_writes++] = cache.k_scale.range();
    writes[n_writes++] = cache.v_scale.range();
  }
  return s.record(op, std::span<const MemRange>(reads, n_reads), std::span<const MemRange>(writes, n_writes),
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(kv_cache_write, kp, ctx); });
}

size_t attention_workspace_bytes(const Device& dev, const Buffer& q, const KvCache& cache) {
  if (dev.backend() == Backend::Cpu || q.rank() != 4 || cache.k.rank() != 4) return 0;
  const int64_t batch = q.shape()[0], q_len = q.shape()[1], hq = q.shape()[2], d = q.shape()[3];
  const int64_t hkv = cache.k.shape()[2];
  if (hkv < 1 || hq % hkv != 0) return 0;
  int64_t capacity = cache.k.shape()[1];
  if (cache.layout == KvLayout::Paged && cache.page_table.rank() == 2) capacity *= cache.page_table.shape()[1];
  const int32_t groups = kern::decode_row_groups(static_cast<int32_t>(q_len), static_cast<int32_t>(hq),
                                                 static_cast<int32_t>(hkv), static_cast<int32_t>(d));
  const int32_t splits = kern::decode_splits(dev.properties().multiprocessor_count, batch * hkv * groups, capacity,
                                             static_cast<int32_t>(d));
  return kern::decode_workspace_bytes(static_cast<int32_t>(batch), static_cast<int32_t>(q_len),
                                      static_cast<int32_t>(hq), static_cast<int32_t>(d), splits);
}

Status attention(Session& s, const Buffer& q, const KvCache& cache, const SeqLens& lens, const Buffer& out,
                 const AttentionParams& p, const Buffer& sinks, const Buffer& mask, const Buffer& workspace) {
  constexpr std::string_view op = "attention";
  MLXN_TRY(check_buffer(op, "q", s, q));
  MLXN_TRY(check_buffer(op, "out", s, out));
  MLXN_TRY(check_float(op, "q", q));
  MLXN_TRY(check_float(op, "out", out));
  MLXN_TRY(check_contiguous(op, "q", q));
  MLXN_TRY(check_contiguous(op, "out", out));
  if (q.rank() != 4) return invalid_argument(op, "q must be [batch, q_len, Hq, D], got ", q.shape());
  if (out.shape() != q.shape())
    return invalid_argument(op, "out has shape ", out.shape(), ", expected q's ", q.shape());
  const int64_t batch = q.shape()[0], q_len = q.shape()[1], hq = q.shape()[2], d = q.shape()[3];
  if (d < 1 || d > 1024) return invalid_argument(op, "head dim ", d, " is not in [1, 1024]");
  kern::AttentionParams kp;
  MLXN_TRY(describe_cache(op, s, cache, batch, d, kp.cache));
  const int64_t hkv = kp.cache.n_kv_heads;
  if (hkv < 1 || hq % hkv != 0)
    return invalid_argument(op, hq, " query heads are not a multiple of the cache's ", hkv, " KV heads");
  MLXN_TRY(check_lens(op, s, lens, batch));
  if (!std::isfinite(p.scale) || p.scale < 0) return invalid_argument(op, "scale ", p.scale, " must be finite, >= 0");
  if (!std::isfinite(p.softcap) || p.softcap < 0)
    return invalid_argument(op, "softcap ", p.softcap, " must be finite and >= 0 (0: off)");
  if (p.window < 0) return invalid_argument(op, "window ", p.window, " must be >= 0 (0: none)");
  if (p.window > 0 && !p.causal) return unsupported(op, "a sliding window needs causal attention");
  if (kp.cache.layout == kern::kKvRing) {
    if (p.window == 0 || !p.causal) return invalid_argument(op, "a ring cache needs a causal sliding window");
    if (kp.cache.capacity < static_cast<int64_t>(p.window) + q_len - 1)
      return invalid_argument(op, "ring capacity ", kp.cache.capacity,
                              " is below window + q_len - 1 = ", static_cast<int64_t>(p.window) + q_len - 1);
  }
  if (q.range().overlaps(out.range())) return invalid_argument(op, "q and out overlap");
  for (const Buffer* b :
       {&cache.k, &cache.v, &lens.kv_lens, &lens.q_lens, &cache.page_table, &cache.k_scale, &cache.v_scale})
    if (b->valid() && b->range().overlaps(out.range())) return invalid_argument(op, "out overlaps an input");
  if (sinks.valid()) {
    MLXN_TRY(check_buffer(op, "sinks", s, sinks));
    MLXN_TRY(check_float(op, "sinks", sinks));
    MLXN_TRY(check_contiguous(op, "sinks", sinks));
    if (sinks.numel() != hq) return invalid_argument(op, "sinks has ", sinks.numel(), " elements, expected ", hq);
    if (sinks.range().overlaps(out.range())) return invalid_argument(op, "sinks overlaps out");
  }
  if (mask.valid()) {
    MLXN_TRY(check_buffer(op, "mask", s, mask));
    MLXN_TRY(check_float(op, "mask", mask));
    MLXN_TRY(check_contiguous(op, "mask", mask));
    if (kp.cache.layout == kern::kKvRing) return unsupported(op, "an additive mask with a ring cache");
    if (mask.rank() != 3 || (mask.shape()[0] != 1 && mask.shape()[0] != batch) || mask.shape()[1] != q_len ||
        mask.shape()[2] < kp.cache.capacity)
      return invalid_argument(op, "mask has shape ", mask.shape(), ", expected [1 or ", batch, ", ", q_len,
                              ", >= ", kp.cache.capacity, "]");
    if (mask.range().overlaps(out.range())) return invalid_argument(op, "mask overlaps out");
    kp.mask = mask.data();
    kp.tmask = mask.dtype();
    kp.mask_row_stride = mask.shape()[2];
    kp.mask_batch_stride = mask.shape()[0] == 1 ? 0 : mask.shape()[1] * mask.shape()[2];
  }
  const size_t ws_need = attention_workspace_bytes(s.device(), q, cache);
  if (ws_need > 0) {
    if (!workspace.valid())
      return invalid_argument(op, "workspace needed: ", ws_need, " bytes (attention_workspace_bytes)");
    MLXN_TRY(check_buffer(op, "workspace", s, workspace));
    MLXN_TRY(check_contiguous(op, "workspace", workspace));
    if (workspace.nbytes() < ws_need)
      return invalid_argument(op, "workspace has ", workspace.nbytes(), " bytes, needs ", ws_need);
    if (reinterpret_cast<uintptr_t>(workspace.data()) % 16 != 0)
      return invalid_argument(op, "workspace must be 16-byte aligned");
    for (const Buffer* b : {&q, &out, &cache.k, &cache.v, &lens.kv_lens, &lens.q_lens, &cache.page_table, &sinks, &mask,
                            &cache.k_scale, &cache.v_scale})
      if (b->valid() && b->range().overlaps(workspace.range()))
        return invalid_argument(op, "workspace overlaps another argument");
  }
  kp.q = q.data();
  kp.out = out.data();
  kp.tq = q.dtype();
  kp.tout = out.dtype();
  kp.kv_lens = lens.kv_lens.data_as<const int32_t>();
  kp.q_lens = lens.q_lens.valid() ? lens.q_lens.data_as<const int32_t>() : nullptr;
  kp.batch = static_cast<int32_t>(batch);
  kp.q_len = static_cast<int32_t>(q_len);
  kp.n_heads = static_cast<int32_t>(hq);
  kp.n_kv_heads = static_cast<int32_t>(hkv);
  kp.head_dim = static_cast<int32_t>(d);
  kp.scale = p.scale > 0 ? p.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  kp.softcap = p.softcap;
  kp.window = p.window;
  kp.causal = p.causal;
  kp.sinks = sinks.valid() ? sinks.data() : nullptr;
  kp.tsinks = sinks.valid() ? sinks.dtype() : DType::F32;
  kp.workspace = ws_need > 0 ? workspace.data() : nullptr;
  kp.workspace_bytes = ws_need;
  MLXN_TRY(s.device().kernels().require(op, head_dim_key({kp.tq, kp.cache.t, kp.tout}, d)));
  if (batch == 0 || q_len == 0) return Status::ok();
  MemRange reads[10];
  size_t n_reads = 0;
  for (const Buffer* b : {&q, &cache.k, &cache.v, &lens.kv_lens, &lens.q_lens, &cache.page_table, &sinks, &mask,
                          &cache.k_scale, &cache.v_scale})
    if (b->valid()) reads[n_reads++] = b->range();
  MemRange writes[2] = {out.range()};
  size_t n_writes = 1;
  if (ws_need > 0) writes[n_writes++] = workspace.range();
  return s.record(op, std::span<const MemRange>(reads, n_reads), std::span<const MemRange>(writes, n_writes),
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(attention, kp, ctx); });
}

}  // namespace mlxn::ops
