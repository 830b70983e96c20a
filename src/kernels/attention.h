// Plain parameter structs of the attention and KV-cache kernels, the position -> cache-row mapping and the sequence
// length clamps both backends share, and the backend entry points. Semantics: include/mlxn/ops/attention.h.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kernels/exec.h"

#if defined(__CUDACC__)
#define MLXN_HD __host__ __device__ __forceinline__
#else
#define MLXN_HD inline
#endif

namespace mlxn::kern {

enum KvLayoutId : int32_t { kKvContiguous = 0, kKvRing = 1, kKvPaged = 2 };

// Where the K / V rows of a cache live. A row is the Hkv x D elements of one position.
struct KvCacheDesc {
  void* k = nullptr;
  void* v = nullptr;
  DType t = DType::BF16;  // f16, bf16, u8 (fp8 e4m3 with the scales below), q8_0 / q4_0 (split: i8 / u8 codes)
  // fp8: f32 per (row, KV head), index row * n_kv_heads + head. q8_0 / q4_0: f16 bits per (row, KV head, block of
  // 32 along D), index (row * n_kv_heads + head) * head_dim / 32 + block.
  void* k_scale = nullptr;
  void* v_scale = nullptr;
  int32_t layout = kKvContiguous;
  int64_t capacity = 0;   // positions per sequence (contiguous, ring) or max_pages * page_size (paged)
  int32_t page_size = 0;  // paged
  int32_t max_pages = 0;  // paged: columns of page_table
  int64_t n_pages = 0;    // paged: rows in the page pool
  const int32_t* page_table = nullptr;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
};

// q8_0 / q4_0 caches (include/mlxn/ops/attention.h): codes bytes per (row, head) and the f16 scale of element e.
MLXN_HD bool kv_block_quant(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }
MLXN_HD int32_t kv_code_bytes(DType t, int32_t head_dim) { return t == DType::Q4_0 ? head_dim / 2 : head_dim; }

// Row of (sequence b, position t) in the cache (in positions from the start of k / v), or -1 when the position has
// no row (a page-table entry out of range).
MLXN_HD int64_t kv_row(const KvCacheDesc& c, int32_t b, int64_t t) {
  if (c.layout == kKvPaged) {
    const int64_t page = c.page_table[static_cast<int64_t>(b) * c.max_pages + t / c.page_size];
    if (page < 0 || page >= c.n_pages) return -1;
    return page * c.page_size + t % c.page_size;
  }
  const int64_t slot = c.layout == kKvRing ? t % c.capacity : t;
  return static_cast<int64_t>(b) * c.capacity + slot;
}

// Lengths of sequence b after the documented clamps: kv_len to [0, capacity] (rings: >= 0 only), n_q (this step's
// rows) to [0, min(q_len, kv_len)].
struct SeqRange {
  int64_t kv_len;
  int32_t n_q;
};
MLXN_HD SeqRange seq_range(const int32_t* kv_lens, const int32_t* q_lens, int32_t b, int32_t q_len,
                           const KvCacheDesc& c) {
  int64_t kv = kv_lens[b];
  kv = kv < 0 ? 0 : kv;
  if (c.layout != kKvRing && kv > c.capacity) kv = c.capacity;
  int64_t n = q_lens != nullptr ? q_lens[b] : q_len;
  n = n < 0 ? 0 : n;
  n = n > q_len ? q_len : n;
  n = n > kv ? kv : n;
  return {kv, static_cast<int32_t>(n)};
}

// new K / V rows [batch, q_len, Hkv, D] -> cache positions kv_len - n_q + i.
struct KvWriteParams {
  const void* k = nullptr;
  const void* v = nullptr;
  DType tk = DType::BF16, tv = DType::BF16;
  KvCacheDesc cache;
  const int32_t* kv_lens = nullptr;
  const int32_t* q_lens = nullptr;
  int32_t batch = 0, q_len = 0;
};

struct AttentionParams {
  const void* q = nullptr;
  void* out = nullptr;
  DType tq = DType::BF16, tout = DType::BF16;
  KvCacheDesc cache;
  const int32_t* kv_lens = nullptr;
  const int32_t* q_lens = nullptr;
  int32_t batch = 0, q_len = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
  float softcap = 0.0f;
  int32_t window = 0;
  bool causal = true;
  const void* sinks = nullptr;  // [n_heads]
  DType tsinks = DType::F32;
  const void* mask = nullptr;  // additive, element (b, i, j) at b * mask_batch_stride + i * mask_row_stride + j
  DType tmask = DType::F32;
  int64_t mask_batch_stride = 0, mask_row_stride = 0;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// ---- CUDA decode geometry, shared with the workspace size the op reports --------------------------------------

// The tensor-core decode kernel (src/cuda/attention_decode.cuh) takes head dims that are multiples of 16 up to 256;
// others (512) run the CUDA-core kernel of src/cuda/attention.cuh.
inline bool decode_uses_mma(int32_t head_dim) { return head_dim % 16 == 0 && head_dim <= 256; }

// Query rows (query tokens x heads of one KV-head group) one decode block handles. Tensor-core kernel: 8 (the mma
// tile's upper half; GQA <= 8 at q_len 1) or 16. CUDA-core kernel: 4 when the group fits, else 8.
inline int32_t decode_rows(int32_t q_len, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim) {
  const int32_t rows = q_len * (n_heads / std::max(n_kv_heads, 1));
  if (decode_uses_mma(head_dim)) return rows <= 8 ? 8 : 16;
  return rows <= 4 ? 4 : 8;
}

inline int32_t decode_row_groups(int32_t q_len, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim) {
  const int32_t rows = q_len * (n_heads / std::max(n_kv_heads, 1));
  const int32_t per_block = decode_rows(q_len, n_heads, n_kv_heads, head_dim);
  return (rows + per_block - 1) / per_block;
}

// KV splits per (sequence, KV head, row group) of the flash-decoding kernels, from the SM count and the capacity
// only, so the grid (and a captured graph) does not depend on the live lengths; the kernel divides the live key
// range among the splits.
// Tensor-core kernel: one block per SM (about 210 KiB of shared memory: 4 warps x 3-4 stages in flight). Picks the
// split count with the lowest modelled time, waves x (keys per split + a fixed cost per block of about 160 keys:
// pipeline fill and the merge), preferring fewer splits unless more save 3%: batch 1 x 32 heads / 8 KV heads gets
// 16 splits (128 blocks on 132 SMs) at any length >= 2k; 16 sequences x 8 KV heads get 1 (no merge pass).
// CUDA-core kernel (head dim 512): 2 blocks per SM, the fewest splits whose blocks fill the slots evenly.
inline int32_t decode_splits(int sms, int64_t batch_heads_groups, int64_t capacity, int32_t head_dim) {
  const int64_t bhg = std::max<int64_t>(batch_heads_groups, 1);
  // MLXN_TUNE_DECODE_SPLITS=S forces S splits (at most one per 128 keys of capacity): tuning runs only.
  static const int forced = [] {
    const char* v = std::getenv("MLXN_TUNE_DECODE_SPLITS");
    return v != nullptr ? std::atoi(v) : 0;
  }();
  if (forced > 0)
    return static_cast<int32_t>(std::clamp<int64_t>(forced, 1, std::clamp<int64_t>((capacity + 127) / 128, 1, 256)));
  if (decode_uses_mma(head_dim)) {
    const int64_t slots = std::max(sms, 1);
    const int64_t max_s = std::clamp<int64_t>((capacity + 127) / 128, 1, 256);
    int64_t best = 1;
    double best_cost = 1e300;
    for (int64_t s = 1; s <= max_s; ++s) {
      const int64_t waves = (bhg * s + slots - 1) / slots;
      const double cost = static_cast<double>(waves) * (static_cast<double>((capacity + s - 1) / s) + 160.0);
      if (cost < 0.97 * best_cost) {
        best = s;
        best_cost = cost;
      }
      if (waves >= 8) break;
    }
    return static_cast<int32_t>(best);
  }
  const int64_t slots = 2 * static_cast<int64_t>(std::max(sms, 1));
  const int64_t max_s = std::clamp<int64_t>((capacity + 127) / 128, 1, 256);
  int64_t best = 1;
  double best_eff = -1.0;
  for (int64_t s = 1; s <= max_s; ++s) {
    const int64_t blocks = bhg * s;
    const int64_t waves = (blocks + slots - 1) / slots;
    const double eff = static_cast<double>(blocks) / static_cast<double>(waves * slots);
    if (eff > best_eff + 0.02) {
      best = s;
      best_eff = eff;
    }
    if (waves >= 4) break;
  }
  return static_cast<int32_t>(best);
}

// Workspace of the split-KV decode: per (b, i, h, split) D partial output sums plus (max, sum) in f32.
inline size_t decode_workspace_bytes(int32_t batch, int32_t q_len, int32_t n_heads, int32_t head_dim, int32_t splits) {
  const size_t rows = static_cast<size_t>(batch) * q_len * n_heads * splits;
  return rows * (static_cast<size_t>(head_dim) + 2) * sizeof(float);
}

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status kv_cache_write(const kern::KvWriteParams& p, const ExecContext& ctx);
Status attention(const kern::AttentionParams& p, const ExecContext& ctx);
}  // namespace mlxn::cpu
namespace mlxn::cuda {
Status kv_cache_write(const kern::KvWriteParams& p, const ExecContext& ctx);
Status attention(const kern::AttentionParams& p, const ExecContext& ctx);
}  // namespace mlxn::cuda
