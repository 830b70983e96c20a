// Attention over a KV cache (decode and prefill) and the KV-cache write that feeds it.
//
// Convention (Hugging Face transformers and llama.cpp; the original library's mistakes are NOT repeated: softcap is
// applied, windows hold exactly W keys, causal masks are aligned bottom-right):
//
//   out[b, i, h, :] = sum_j p_j v[b, j, h / G, :],   G = Hq / Hkv (GQA / MQA: query head h reads KV head h / G)
//   s_j = scale * dot(q[b, i, h, :], k[b, j, h / G, :])
//   s_j = softcap * tanh(s_j / softcap)                if softcap > 0 (Gemma 2 attn_logit_softcapping)
//   s_j = s_j + mask[b, i, j]                           if a mask is given (additive; -inf blocks)
//   p_j = exp(s_j - m) / (sum_visible exp(s_k - m) + exp(sink[h] - m))
//         (the sink term only with sinks: gpt-oss's per-head logit that joins the denominator and has no value;
//          it is not scaled or softcapped; m is the max over the visible s_k and the sink)
//
// Positions: sequence b holds kv_len[b] keys at positions 0 .. kv_len[b] - 1 (including this step's new tokens).
// Its n = q_len[b] queries are the last n positions: query i sits at t = kv_len[b] - n + i, i.e. a chunk resuming
// at offset p = kv_len - n sees keys <= p + i (causal aligned bottom-right; a prefill from 0 is the usual lower
// triangle). Key j is visible from query position t iff
//   j < kv_len[b]  and  (not causal or j <= t)  and  (window == 0 or t - window < j)
// so a window holds exactly `window` keys t - window + 1 .. t (HF sliding_window, llama.cpp n_swa). Non-causal
// (encoders) sees every key j < kv_len[b]; a window requires causal. A query row with no visible key (everything
// masked, no sink) is written as zeros, never NaN; so are the rows i >= q_len[b] of a shorter sequence.
//
// Layouts (the K and V caches share one, and so do q / out and the new K / V rows):
//   q, out               [batch, q_len, Hq, D], contiguous, token-major (what the QKV projection writes)
//   new k, v rows        [batch, q_len, Hkv, D], contiguous, any float dtype (converted on write)
//   KvLayout::Contiguous cache [batch, capacity, Hkv, D]: position t of sequence b in row (b, t)
//   KvLayout::Ring       cache [batch, capacity, Hkv, D]: position t in row (b, t % capacity); kv_len may exceed the
//                        capacity (the ring keeps the last `capacity` positions) and needs a causal window with
//                        capacity >= window + q_len - 1, so every key a query can see is still in the ring
//   KvLayout::Paged      cache [n_pages, page_size, Hkv, D], page_table int32 [batch, max_pages]: position t in row
//                        (page_table[b, t / page_size], t % page_size); capacity = max_pages * page_size; page size
//                        a multiple of 16. A page-table entry outside [0, n_pages) is skipped on write and its
//                        positions are invisible on read.
// KV element types: f16, bf16, or fp8 e4m3 (OCP E4M3FN: bias 7, max 448, no infinities) stored as u8 (the core
// has no fp8 dtype) with one f32 scale per (position, head): cache.k_scale / v_scale, shaped like the cache without
// D ([batch, capacity, Hkv] or [n_pages, page_size, Hkv]). An fp8 value is e4m3(byte) x scale. kv_cache_write
// quantizes each (position, head) row x[0..D) of the new K / V as (the convention of vLLM's per-token fp8 KV and
// of llama.cpp's per-block q8_0, with e4m3's range): s = max|x| / 448 (f32), inv = s > 0 ? 1 / s : 0, byte =
// e4m3(x * inv) rounded to nearest even and saturated to +-448; the scale stored is s. This halves the bytes a
// decode step reads (bf16: 2 bytes per element; fp8: 1 + 4 / D).
// q8_0 / q4_0 caches (KvCache::quant; llama.cpp's --cache-type-k/v q8_0 / q4_0): each (position, head) row is cut
// into D / 32 blocks along D, quantized exactly as ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref (one f16
// scale d per block; q8_0: d = max|x| / 127, code = round(x / d) in [-127, 127], value = code x d; q4_0: d = x_max /
// -8 with x_max the element of largest magnitude (first on ties), code = min(15, trunc(x / d + 8.5)), value =
// (code - 8) x d). The block fields are stored split, not as 34- / 18-byte GGML blocks: codes in cache.k / v (q8_0:
// i8 [.., Hkv, D], byte e = element e; q4_0: u8 [.., Hkv, D / 2], byte 16 b + i holds element 32 b + i in its low
// nibble and 32 b + 16 + i in its high nibble, ggml's qs order) and the f16 scales d in cache.k_scale / v_scale
// [.., Hkv, D / 32]. Why split: a GGML row of 17 D / 16 (q8_0) or 9 D / 16 (q4_0) bytes is only 2- to 8-byte aligned,
// and its codes sit 2 bytes into each block, so the GPU could neither copy it with 16-byte cp.async nor read its
// codes with aligned words; split, the codes are 16-byte aligned runs like fp8's and a row's scales are one small
// aligned copy. The bytes are ggml's: a GGML block is (scale, 32 codes) gathered from the two arrays. Bytes per
// element read by a decode step: 1.0625 (q8_0), 0.5625 (q4_0). Head dims must be multiples of 32 (CUDA: 64, 128,
// 192, 256). CUDA decode forms code x d in f16 before the mma (one rounding, relative error <= 2^-11 per element),
// so |values| beyond f16's 65504 are not supported there; the CPU reference dequantizes in double.
// Token-major rows (Hkv x D per position) make a write one contiguous row per token and a paged page a plain block
// of rows, and still give 16-byte loads of D contiguous elements per (position, head) on read.
//
// Lengths come from device buffers read when the op runs (kv_lens int32 [batch], optional q_lens int32 [batch],
// both clamped: kv_len to [0, capacity] except for rings, q_len to [0, min(q_len, kv_len)]), so a captured graph
// replays with new lengths without re-capture: update the buffers before each replay.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

enum class KvLayout : uint8_t { Contiguous, Ring, Paged };

// Block-quantized caches (GGML q8_0 / q4_0 in the split layout above). None: the dtype says (f16, bf16, u8 = fp8).
enum class KvQuant : uint8_t { None, Q8_0, Q4_0 };

// One layer's K and V caches (same dtype, shape and layout). Dtypes: f16, bf16, u8 (fp8 e4m3 with scales); with
// quant = Q8_0: i8 codes [.., Hkv, D]; Q4_0: u8 codes [.., Hkv, D / 2].
struct KvCache {
  Buffer k, v;
  KvLayout layout = KvLayout::Contiguous;
  Buffer page_table;            // Paged only: int32 [batch, max_pages]
  Buffer k_scale{}, v_scale{};  // fp8 (u8): f32, the cache's shape without D; q8_0 / q4_0: f16 [.., Hkv, D / 32]
  KvQuant quant = KvQuant::None;
};

// Per-sequence lengths after this step's tokens are appended (see the convention above).
struct SeqLens {
  Buffer kv_lens;  // int32 [batch]
  Buffer q_lens;   // optional int32 [batch]: rows of q / new tokens per sequence (default: every row)
};

struct AttentionParams {
  float scale = 0.0f;    // 0: 1 / sqrt(D)
  bool causal = true;    // false: encoders (every key of the sequence is visible; no window)
  int32_t window = 0;    // > 0: sliding window of exactly `window` keys (key t - window + 1 .. t)
  float softcap = 0.0f;  // > 0: logits become softcap * tanh(logit / softcap) before the mask is added
};

// Appends this step's K and V rows: row i of sequence b (i < q_len[b]) goes to position kv_len[b] - q_len[b] + i
// of the cache, converted to the cache's dtype (round to nearest even). k, v: [batch, q_len, Hkv, D].
Status kv_cache_write(Session& s, const Buffer& k, const Buffer& v, const KvCache& cache, const SeqLens& lens);

// out = attention(q, cache) as above. q and out: f32 / f16 / bf16 [batch, q_len, Hq, D] (CUDA: f16 or bf16, out in
// q's dtype; head dims 64 ... 256 for fp8 caches, 64 / 128 / 192 / 256 for q8_0 / q4_0). sinks: optional [Hq] float.
// mask: optional additive float [1 or batch, q_len, cols] with cols >= capacity, column = key position (not with
// rings). workspace: scratch the CUDA kernels need (attention_workspace_bytes; may be empty on the CPU), written by the
// op, so give each concurrent call its own.
Status attention(Session& s, const Buffer& q, const KvCache& cache, const SeqLens& lens, const Buffer& out,
                 const AttentionParams& p = {}, const Buffer& sinks = {}, const Buffer& mask = {},
                 const Buffer& workspace = {});

// Bytes of workspace attention() needs for these q and cache shapes on `dev` (0 on the CPU). The split count of
// the CUDA decode kernel comes from the SM count and the cache capacity, never from the live lengths, so one
// workspace and one captured graph serve every length.
size_t attention_workspace_bytes(const Device& dev, const Buffer& q, const KvCache& cache);

}  // namespace mlxn::ops
