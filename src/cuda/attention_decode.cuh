// Split-KV flash decoding on tensor cores (Dao et al., "Flash-Decoding", 2023; the warp layout of FlashAttention-2)
// for head dims that are multiples of 16 up to 256.
//
// Why not CUDA cores: at the copy bandwidth a GQA-4 decode needs 4 rows x 2 (q.k and p.v) = 8 FMA per KV element,
// about 8.4 TFMA/s on an H200, plus a bf16 -> f32 conversion per element and a shared-memory read per FMA pair; with
// the 8 warps per SM that fit, the old CUDA-core kernel spent more time issuing arithmetic than waiting for memory
// (48% of copy at 128k). With mma.sync m16n8k16 the query rows of a KV-head group (padded to 8 or 16 of the mma's M)
// cost a few hundred warp instructions per 16 KiB tile, well under 10% of the issue slots.
//
// Layout: a block (4 warps) takes one (sequence, KV head, row group, KV split). The split's keys are cut into tiles of
// kTK positions dealt round-robin to the warps; every warp runs its own kStages-deep cp.async pipeline (16-byte
// copies, zero-filled outside the range) with only __syncwarp between stages, its own online softmax (exp2, the
// log2(e) factor folded into the scale) and O accumulator in registers, so no block barrier sits in the loop. About
// 2 tiles x 4 warps x 16 KiB = 128 KiB are in flight per SM; bandwidth x latency needs ~32-64 KiB. The 4 warps
// merge through shared memory at the end; with one split the block normalises and writes out itself, else it writes
// (O, m, l) partials that attention_decode_merge_kernel (attention.cuh) combines in base 2 with the sink.
//
// Quantized caches are staged raw and converted per tile into an f16 tile before the mma: fp8 e4m3 -> f16 is exact
// (cvt.rn.f16x2.e4m3x2); the per-(position, head) scales are applied to the scores (K) and folded into P (V, with a
// per-tile normaliser so P stays in [0, 1] in f16). q8_0 / q4_0 (split codes + f16 block scales) become code x d in
// f16 during the conversion (the scale varies along D, so it cannot move to the scores or P).
#pragma once

#include <cuda_fp8.h>

#include "cuda/attention_prefill.cuh"
#include "cuda/attention_prefill_sm90.cuh"

namespace mlxn::cuda {

__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, bool full) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int n = full ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async8(void* smem, const void* gmem, bool full) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int n = full ? 8 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(s), "l"(gmem), "r"(n) : "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_n(void* smem, const void* gmem, bool full) {
  static_assert(N == 4 || N == 8 || N == 16, "cp.async sizes");
  if constexpr (N == 16) {
    cp_async16(smem, gmem, full);
  } else if constexpr (N == 8) {
    cp_async8(smem, gmem, full);
  } else {
    cp_async4(smem, gmem, full);
  }
}

// KV formats of the decode kernel: how many bytes one (position, head) row takes in the cache, whether the staged
// tile is converted before the mma, and the mma operand type.
// kScaled: one f32 scale per (position, head), applied to the scores (K) and P (V); kBlockScaled: one f16 scale per
// block of 32 along D (q8_0 / q4_0), applied while converting the tile.
template <typename T>
struct KvPlain {
  using TM = T;  // the cache's own type: ldmatrix straight from the staged tile
  static constexpr bool kConvert = false;
  static constexpr bool kScaled = false;
  static constexpr bool kBlockScaled = false;
  static constexpr int raw_bytes(int d) { return 2 * d; }
};
struct KvFp8 {
  using TM = __half;  // every e4m3 value is exact in f16
  static constexpr bool kConvert = true;
  static constexpr bool kScaled = true;
  static constexpr bool kBlockScaled = false;
  static constexpr int raw_bytes(int d) { return d; }
};
// q8_0 / q4_0 in the split layout (i8 codes or packed nibbles, f16 scales per block of 32): converted to code x d in
// f16 (one rounding) before the mma.
template <bool Q4>
struct KvQBlock {
  using TM = __half;
  static constexpr bool kConvert = true;
  static constexpr bool kScaled = false;
  static constexpr bool kBlockScaled = true;
  static constexpr bool kQ4 = Q4;
  static constexpr int raw_bytes(int d) { return Q4 ? d / 2 : d; }
};

// Four q8_0 codes (i8, one 32-bit word) times the block scale: 4 f16 in two half2, element order kept. code + 128 goes
// into the low mantissa byte of 1024 (0x64XX is 1024 + XX), 1152 is subtracted exactly, then one rounding in the
// multiply.
__device__ __forceinline__ void q8_word_to_half(uint32_t w, __half2 d2, uint32_t& lo, uint32_t& hi) {
  const uint32_t u = w ^ 0x80808080u;
  const __half2 bias = __half2half2(__ushort_as_half(0x6480u));  // 1152
  const uint32_t a = __byte_perm(u, 0x64646464u, 0x4140), b = __byte_perm(u, 0x64646464u, 0x4342);
  const __half2 ha = __hmul2(__hsub2(*reinterpret_cast<const __half2*>(&a), bias), d2);
  const __half2 hb = __hmul2(__hsub2(*reinterpret_cast<const __half2*>(&b), bias), d2);
  lo = *reinterpret_cast<const uint32_t*>(&ha);
  hi = *reinterpret_cast<const uint32_t*>(&hb);
}
// Four q4_0 nibbles (the low nibbles of one 32-bit word, moved there by the caller) to (nibble - 8) x d.
__device__ __forceinline__ void q4_nibbles_to_half(uint32_t n, __half2 d2, uint32_t& lo, uint32_t& hi) {
  const __half2 bias = __half2half2(__ushort_as_half(0x6408u));  // 1032
  const uint32_t a = __byte_perm(n, 0x64646464u, 0x4140), b = __byte_perm(n, 0x64646464u, 0x4342);
  const __half2 ha = __hmul2(__hsub2(*reinterpret_cast<const __half2*>(&a), bias), d2);
  const __half2 hb = __hmul2(__hsub2(*reinterpret_cast<const __half2*>(&b), bias), d2);
  lo = *reinterpret_cast<const uint32_t*>(&ha);
  hi = *reinterpret_cast<const uint32_t*>(&hb);
}

template <typename T>
__device__ __forceinline__ T to_mma(float v);
template <>
__device__ __forceinline__ __half to_mma<__half>(float v) {
  return __float2half_rn(fminf(fmaxf(v, -65504.0f), 65504.0f));  // a bf16 q outside f16's range saturates
}
template <>
__device__ __forceinline__ __nv_bfloat16 to_mma<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Tile geometry per head dim and format. kTK positions per warp tile (a multiple of 16: the p.v mma's k), chosen so
// one stage of K + V is 12-18 KiB; 3 stages per warp for 16-bit caches (about 210 KiB at d128: one block per SM),
// 4 for fp8 (half the bytes per stage; plus one converted f16 tile). Rows of mma tiles are padded by 16 bytes so
// the 8 row addresses of an ldmatrix hit distinct banks. Rejected: 2 stages (the warp then waits a full memory latency
// per tile unless 8+ warps share the SM, and 8 warps x 2 stages need the same shared memory); 8 warps per block with
// 2 stages each (twice the merge work, same bytes in flight).
template <int D, typename F>
struct Dec2Cfg {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kRowsMax = 16;
  static constexpr int kTK = D <= 64 ? 48 : D <= 128 ? 32 : 16;
  // 4-bit codes: a quarter of the bytes per stage, so more stages keep >= 64 KiB in flight per SM.
  static constexpr int kStages = !F::kConvert ? 3 : F::raw_bytes(D) * 2 <= D ? 6 : 4;
  static constexpr int kPitch = D + 8;  // elements of an mma tile row
  static constexpr int kRawBytes = F::raw_bytes(D);
  static constexpr int kRawChunks = kRawBytes / 16;
  static constexpr int kRawPitch = F::kConvert ? kRawBytes : kPitch * 2;    // bytes; plain: the stage is the mma tile
  static constexpr size_t kRawTile = static_cast<size_t>(kTK) * kRawPitch;  // K or V
  static constexpr size_t kStageBytes = 2 * kRawTile;
  static constexpr size_t kConvBytes = F::kConvert ? 2 * static_cast<size_t>(kTK) * kPitch * 2 : 0;
  static constexpr size_t kWarpBytes = kStages * kStageBytes + kConvBytes;
  static constexpr size_t kOffQ = kWarps * kWarpBytes;
  static constexpr size_t kOffRows = kOffQ + static_cast<size_t>(kRowsMax) * kPitch * 2;
  static constexpr size_t kOffScale = kOffRows + sizeof(int64_t) * kWarps * kStages * kTK;
  static constexpr size_t kOffBScale = kOffScale + (F::kScaled ? sizeof(float) * kWarps * kStages * 2 * kTK : 0);
  // q8_0 / q4_0: the f16 block scales of a (position, head), D / 16 bytes, copied in the widest aligned pieces.
  static constexpr int kSBytes = F::kBlockScaled ? D / 16 : 0;
  static constexpr int kSChunk = kSBytes % 16 == 0 ? 16 : kSBytes % 8 == 0 ? 8 : 4;
  static constexpr size_t kSmem = kOffBScale + static_cast<size_t>(kWarps) * kStages * 2 * kTK * kSBytes;
  static constexpr int kCopies = kTK * kRawChunks / 32;  // 16-byte copies per lane per tile, each of K and V
  static_assert(D % 16 == 0 && kRawBytes % 16 == 0 && kTK % 16 == 0, "decode tile geometry");
  static_assert(!F::kBlockScaled || (D % 32 == 0 && kSBytes % 4 == 0), "q8_0 / q4_0: D a multiple of 64");
  static_assert(kTK * kRawChunks % 32 == 0, "whole copies per lane");
  static_assert(kSmem <= 227 * 1024, "decode shared memory");
  static_assert(sizeof(float) * kWarps * kRowsMax * (D + 2) <= kOffQ, "the warp merge must fit the stages");
};

template <typename TQ, typename F, int D, int ROWS>
__global__ void __launch_bounds__(128, 1) attention_decode_mma_kernel(kern::AttentionParams p, int32_t n_splits) {
  using C = Dec2Cfg<D, F>;
  using TM = typename F::TM;
  using M = MmaType<TM>;
  constexpr int kNT = C::kTK / 8;   // key n-tiles of S
  constexpr int kKC = D / 16;       // k chunks of q.k
  constexpr int kDT = D / 8;        // dim n-tiles of O
  constexpr bool kHi = ROWS > 8;    // mma rows 8..15 hold queries
  constexpr bool kQReg = D <= 128;  // Q fragments held in registers (else re-read from shared memory per tile)
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) unsigned char smem[];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tq = lane & 3;
  unsigned char* w_base = smem + warp * C::kWarpBytes;
  TM* s_q = reinterpret_cast<TM*>(smem + C::kOffQ);
  int64_t* w_rows = reinterpret_cast<int64_t*>(smem + C::kOffRows) + warp * C::kStages * C::kTK;
  float* w_scale = reinterpret_cast<float*>(smem + C::kOffScale) + warp * C::kStages * 2 * C::kTK;
  unsigned char* w_bscale = smem + C::kOffBScale + static_cast<size_t>(warp) * C::kStages * 2 * C::kTK * C::kSBytes;

  const int32_t split = static_cast<int32_t>(blockIdx.x % static_cast<unsigned>(n_splits));
  const int64_t bh = blockIdx.x / static_cast<unsigned>(n_splits);
  const int32_t b = static_cast<int32_t>(bh / p.n_kv_heads);
  const int32_t hkv = static_cast<int32_t>(bh % p.n_kv_heads);
  const int32_t group = p.n_heads / p.n_kv_heads;
  const int32_t row0 = static_cast<int32_t>(blockIdx.z) * ROWS;  // first (query token, head-in-group) row
  const kern::KvCacheDesc& c = p.cache;

  pdl_wait();
  const kern::SeqRange sr = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
  // Row r: global row gr = row0 + r -> query token gr / group, head hkv * group + gr % group.
  const int32_t rows_total = p.q_len * group;
  const int32_t rows_here = max(0, min(ROWS, rows_total - row0));        // rows of out this block owns
  const int32_t n_rows = max(0, min(rows_here, sr.n_q * group - row0));  // of which hold a query
  const int64_t first_pos = sr.kv_len - sr.n_q;                          // position of query token 0

  // The block's key range: the union of its rows' visible ranges, split evenly (in whole tiles) among the splits.
  int64_t lo = 0, hi = 0;
  const int64_t t_min = first_pos + row0 / group, t_max = first_pos + (row0 + max(n_rows, 1) - 1) / group;
  if (n_rows > 0) {
    hi = p.causal ? t_max + 1 : sr.kv_len;
    if (p.window > 0) lo = max(int64_t{0}, t_min - p.window + 1);
    if (c.layout == kern::kKvRing) lo = max(lo, sr.kv_len - c.capacity);
  }
  const int64_t span = hi - lo;
  const int64_t per_split = ((span + n_splits - 1) / n_splits + C::kTK - 1) / C::kTK * C::kTK;
  const int64_t s_lo = lo + split * per_split;
  const int64_t s_hi = min(hi, s_lo + per_split);
  const int n_tiles = s_hi > s_lo ? static_cast<int>((s_hi - s_lo + C::kTK - 1) / C::kTK) : 0;
  const int my_tiles = n_tiles > warp ? (n_tiles - warp + C::kWarps - 1) / C::kWarps : 0;

  const int64_t row_bytes = static_cast<int64_t>(p.n_kv_heads) * C::kRawBytes;
  const unsigned char* gk = static_cast<const unsigned char*>(c.k) + static_cast<int64_t>(hkv) * C::kRawBytes;
  const unsigned char* gv = static_cast<const unsigned char*>(c.v) + static_cast<int64_t>(hkv) * C::kRawBytes;

  // Stages tile i of this warp (global tile warp + 4 i): cache rows of its positions (-1 outside the split or
  // unmapped), then the K and V bytes (and fp8 scales).
  auto issue = [&](int i) {
    const int st = i % C::kStages;
    const int64_t t0 = s_lo + static_cast<int64_t>(warp + C::kWarps * i) * C::kTK;
    int64_t* rows = w_rows + st * C::kTK;
    for (int j = lane; j < C::kTK; j += 32) {
      const int64_t pos = t0 + j;
      rows[j] = pos < s_hi ? kern::kv_row(c, b, pos) : -1;
    }
    __syncwarp();
    unsigned char* sk = w_base + st * C::kStageBytes;
    unsigned char* sv = sk + C::kRawTile;
#pragma unroll
    for (int x = 0; x < C::kCopies; ++x) {
      const int idx = lane + 32 * x;
      const int j = idx / C::kRawChunks, ch = idx % C::kRawChunks;
      const int64_t r = rows[j];
      const int64_t off = r >= 0 ? r * row_bytes + ch * 16 : 0;
      cp_async16(sk + j * C::kRawPitch + ch * 16, gk + off, r >= 0);
      cp_async16(sv + j * C::kRawPitch + ch * 16, gv + off, r >= 0);
    }
    if constexpr (F::kScaled) {
      for (int j = lane; j < C::kTK; j += 32) {
        const int64_t r = rows[j];
        const int64_t si = r >= 0 ? r * p.n_kv_heads + hkv : 0;
        cp_async4(w_scale + (st * 2) * C::kTK + j, static_cast<const float*>(c.k_scale) + si, r >= 0);
        cp_async4(w_scale + (st * 2 + 1) * C::kTK + j, static_cast<const float*>(c.v_scale) + si, r >= 0);
      }
    }
    if constexpr (F::kBlockScaled) {
      constexpr int kPer = C::kSBytes / C::kSChunk;
      for (int idx = lane; idx < C::kTK * kPer; idx += 32) {
        const int j = idx / kPer, part = idx % kPer;
        const int64_t r = rows[j];
        const int64_t off = r >= 0 ? (r * p.n_kv_heads + hkv) * C::kSBytes + part * C::kSChunk : 0;
        unsigned char* dk = w_bscale + (st * 2 * C::kTK + j) * C::kSBytes + part * C::kSChunk;
        cp_async_n<C::kSChunk>(dk, static_cast<const unsigned char*>(c.k_scale) + off, r >= 0);
        cp_async_n<C::kSChunk>(dk + C::kTK * C::kSBytes, static_cast<const unsigned char*>(c.v_scale) + off, r >= 0);
      }
    }
  };

  // The first tiles are in flight before Q is read: at short contexts a block streams only a few tiles, and the Q
  // load's latency would otherwise add to the first tile's.
#pragma unroll
  for (int i = 0; i < C::kStages - 1; ++i) {
    if (i < my_tiles) issue(i);
    cp_async_commit();
  }

  static_assert(sizeof(TQ) == 2, "q in f16 or bf16");
  // Q rows in the mma type; rows past n_rows are zero. 16-byte loads, all of a thread's issued before the first is
  // used (an element loop waited for each load in turn: ncu showed the Q load as the largest stall of a short decode).
  auto q_row = [&](int r) {
    const int32_t gr = row0 + r;
    return (static_cast<int64_t>(b) * p.q_len + gr / group) * p.n_heads + hkv * group + gr % group;
  };
  if ((reinterpret_cast<uintptr_t>(p.q) & 15u) == 0) {
    constexpr int kChunks = C::kRowsMax * D / 8, kPer = (kChunks + C::kThreads - 1) / C::kThreads;
    uint4 raw[kPer];
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int idx = tid + k * C::kThreads, r = idx / (D / 8), c8 = idx % (D / 8);
      raw[k] = make_uint4(0u, 0u, 0u, 0u);
      if (idx < kChunks && r < n_rows)
        raw[k] = *reinterpret_cast<const uint4*>(static_cast<const TQ*>(p.q) + q_row(r) * D + c8 * 8);
    }
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int idx = tid + k * C::kThreads, r = idx / (D / 8), c8 = idx % (D / 8);
      if (idx >= kChunks) continue;
      float v[8];
      unpack8_16<TQ>(raw[k], v);
#pragma unroll
      for (int e = 0; e < 8; ++e) s_q[r * C::kPitch + c8 * 8 + e] = to_mma<TM>(v[e]);
    }
  } else {
    for (int idx = tid; idx < C::kRowsMax * D; idx += C::kThreads) {
      const int r = idx / D, d = idx % D;
      const float v = r < n_rows ? to_f32(static_cast<const TQ*>(p.q)[q_row(r) * D + d]) : 0.0f;
      s_q[r * C::kPitch + d] = to_mma<TM>(v);
    }
  }

  __syncthreads();  // s_q written
  uint32_t qa[kQReg ? kKC : 1][4];
  auto load_qa = [&](int kc, uint32_t(&a)[4]) {
    const int m = lane >> 3;
    ldsm_x4(a, s_q + ((m & 1) * 8 + (lane & 7)) * C::kPitch + kc * 16 + (m >> 1) * 8);
  };
  if constexpr (kQReg) {
#pragma unroll
    for (int kc = 0; kc < kKC; ++kc) load_qa(kc, qa[kc]);
  }

  float o[kDT][4];
#pragma unroll
  for (int n = 0; n < kDT; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  float o_unit = 1.0f;  // fp8: O's true value is o_unit x o (the V scales' per-tile normaliser)
  const float qk_scale = p.scale * kLog2e;
  const bool use_softcap = p.softcap > 0.0f;
  const float cap_in = use_softcap ? p.scale / p.softcap : 0.0f, cap_out = p.softcap * kLog2e;
  // Positions of this thread's rows (g and g + 8).
  int64_t t_row[2];
  bool row_ok[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int r = g + 8 * hr;
    row_ok[hr] = r < n_rows;
    t_row[hr] = first_pos + (row0 + r) / group;
  }

  for (int i = 0; i < my_tiles; ++i) {
    __syncwarp();  // every lane is done with the stage refilled below (tile i - 1's)
    if (i + C::kStages - 1 < my_tiles) issue(i + C::kStages - 1);
    cp_async_commit();
    cp_async_wait<C::kStages - 1>();
    __syncwarp();  // tile i's copies by every lane are visible
    const int st = i % C::kStages;
    const int64_t t0 = s_lo + static_cast<int64_t>(warp + C::kWarps * i) * C::kTK;
    const int64_t* rows = w_rows + st * C::kTK;
    const TM* tk;
    const TM* tv;
    if constexpr (F::kConvert) {
      // e4m3 -> f16, 16 bytes per step, into the warp's converted tile.
      TM* ck = reinterpret_cast<TM*>(w_base + C::kStages * C::kStageBytes);
      const unsigned char* raw = w_base + st * C::kStageBytes;
#pragma unroll
      for (int x = 0; x < C::kCopies; ++x) {
        const int idx = lane + 32 * x;
        const int j = idx / C::kRawChunks, ch = idx % C::kRawChunks;
#pragma unroll
        for (int kv = 0; kv < 2; ++kv) {
          const uint4 w = *reinterpret_cast<const uint4*>(raw + kv * C::kRawTile + j * C::kRawPitch + ch * 16);
          const uint32_t words[4] = {w.x, w.y, w.z, w.w};
          if constexpr (F::kBlockScaled) {
            // q8_0: the chunk is 16 codes of block ch / 2; q4_0: the 16 code bytes of block ch (32 elements).
            constexpr int kQ4 = F::kQ4 ? 1 : 0;
            const int blk = kQ4 ? ch : ch / 2;
            const __half d =
                *reinterpret_cast<const __half*>(w_bscale + ((st * 2 + kv) * C::kTK + j) * C::kSBytes + blk * 2);
            const __half2 d2 = __half2half2(d);
            TM* dst = ck + kv * C::kTK * C::kPitch + j * C::kPitch + ch * (16 << kQ4);
            uint32_t h[8], h2[8];
#pragma unroll
            for (int q = 0; q < 4; ++q) {
              if constexpr (F::kQ4) {
                q4_nibbles_to_half(words[q] & 0x0f0f0f0fu, d2, h[2 * q], h[2 * q + 1]);           // elements 4q ..
                q4_nibbles_to_half((words[q] >> 4) & 0x0f0f0f0fu, d2, h2[2 * q], h2[2 * q + 1]);  // 16 + 4q ..
              } else {
                q8_word_to_half(words[q], d2, h[2 * q], h[2 * q + 1]);
              }
            }
            *reinterpret_cast<uint4*>(dst) = make_uint4(h[0], h[1], h[2], h[3]);
            *reinterpret_cast<uint4*>(dst + 8) = make_uint4(h[4], h[5], h[6], h[7]);
            if constexpr (F::kQ4) {
              *reinterpret_cast<uint4*>(dst + 16) = make_uint4(h2[0], h2[1], h2[2], h2[3]);
              *reinterpret_cast<uint4*>(dst + 24) = make_uint4(h2[4], h2[5], h2[6], h2[7]);
            }
          } else {
            uint32_t h[8];
#pragma unroll
            for (int q = 0; q < 4; ++q) {
              const __half2_raw lo2 =
                  __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(words[q] & 0xffffu), __NV_E4M3);
              const __half2_raw hi2 =
                  __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(words[q] >> 16), __NV_E4M3);
              h[2 * q] = static_cast<uint32_t>(lo2.x) | (static_cast<uint32_t>(lo2.y) << 16);
              h[2 * q + 1] = static_cast<uint32_t>(hi2.x) | (static_cast<uint32_t>(hi2.y) << 16);
            }
            TM* dst = ck + kv * C::kTK * C::kPitch + j * C::kPitch + ch * 16;
            *reinterpret_cast<uint4*>(dst) = make_uint4(h[0], h[1], h[2], h[3]);
            *reinterpret_cast<uint4*>(dst + 8) = make_uint4(h[4], h[5], h[6], h[7]);
          }
        }
      }
      __syncwarp();
      tk = ck;
      tv = ck + C::kTK * C::kPitch;
    } else {
      tk = reinterpret_cast<const TM*>(w_base + st * C::kStageBytes);
      tv = reinterpret_cast<const TM*>(w_base + st * C::kStageBytes + C::kRawTile);
    }

    // S = Q K^T (rows: query rows; columns: the tile's keys).
    float s[kNT][4];
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < kKC; kc += 2) {
      uint32_t a0[4], a1[4];
      if constexpr (kQReg) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          a0[e] = qa[kc][e];
          a1[e] = qa[kc + 1 < kKC ? kc + 1 : kc][e];
        }
      } else {
        load_qa(kc, a0);
        if (kc + 1 < kKC) load_qa(kc + 1, a1);
      }
#pragma unroll
      for (int n = 0; n < kNT; ++n) {
        const TM* base = tk + (n * 8 + (lane & 7)) * C::kPitch + kc * 16;
        if (kc + 1 < kKC) {
          uint32_t bb[4];
          ldsm_x4(bb, base + (lane >> 3) * 8);  // k columns 0-7, 8-15 of chunk kc, then of chunk kc + 1
          M::mma(s[n], a0, bb[0], bb[1]);
          M::mma(s[n], a1, bb[2], bb[3]);
        } else {
          uint32_t b0, b1;
          ldsm_x2(b0, b1, base + ((lane >> 3) & 1) * 8);
          M::mma(s[n], a0, b0, b1);
        }
      }
    }

    // Logits in base 2: scale (and softcap), mask, visibility. A tile entirely inside every row's visible range,
    // with no unmapped page and no mask, skips the per-element checks.
    bool bad = false;
    if (c.layout == kern::kKvPaged) {
      for (int j = lane; j < C::kTK; j += 32) bad |= rows[j] < 0;
      bad = __any_sync(0xffffffffu, bad);
    }
    const bool full = !bad && p.mask == nullptr && t0 + C::kTK <= s_hi && (!p.causal || t0 + C::kTK - 1 <= t_min) &&
                      (p.window == 0 || t0 > t_max - p.window);
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hr = e >> 1;
        if (!kHi && hr == 1) continue;
        const int j = n * 8 + 2 * tq + (e & 1);
        float v = s[n][e];
        if constexpr (F::kScaled) v *= w_scale[(st * 2) * C::kTK + j];
        v = use_softcap ? cap_out * tanhf(v * cap_in) : v * qk_scale;
        if (!full) {
          const int64_t pos = t0 + j;
          bool vis = row_ok[hr] && pos < s_hi && rows[j] >= 0 && (!p.causal || pos <= t_row[hr]) &&
                     (p.window == 0 || pos > t_row[hr] - p.window);
          if (vis && p.mask != nullptr)
            v += kLog2e *
                 load_any_f32(p.mask, p.tmask,
                              b * p.mask_batch_stride + ((row0 + g + 8 * hr) / group) * p.mask_row_stride + pos);
          if (!vis) v = -INFINITY;
        }
        s[n][e] = v;
      }

    // fp8: the tile's V scales over their maximum, so P x scale stays in [0, 1]; O is rescaled by the old unit over
    // the new one with alpha.
    float v_ratio = 1.0f, v_inv = 1.0f;
    if constexpr (F::kScaled) {
      float vmax = 0.0f;
      for (int j = lane; j < C::kTK; j += 32) vmax = fmaxf(vmax, w_scale[(st * 2 + 1) * C::kTK + j]);
      vmax = warp_max(vmax);
      if (!(vmax > 0.0f)) vmax = 1.0f;
      v_ratio = o_unit / vmax;
      v_inv = 1.0f / vmax;
      o_unit = vmax;
    }

    // Online softmax of rows g (hr 0) and g + 8 (hr 1); the 4 threads of a quad share a row.
#pragma unroll
    for (int hr = 0; hr < (kHi ? 2 : 1); ++hr) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < kNT; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * hr], s[n][2 * hr + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m_run[hr], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // nothing visible yet: exp2(-inf - 0) = 0
      const float alpha = exp2_approx(m_run[hr] - m_use);
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < kNT; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pj = exp2_approx(s[n][2 * hr + e] - m_use);
          s[n][2 * hr + e] = pj;
          sum += pj;
        }
      m_run[hr] = m_new;
      l_run[hr] = l_run[hr] * alpha + sum;  // per-thread partial; the quad is summed at the end
      const float f = alpha * v_ratio;
#pragma unroll
      for (int n = 0; n < kDT; ++n) {
        o[n][2 * hr] *= f;
        o[n][2 * hr + 1] *= f;
      }
    }

    // O += P V; P from the S accumulators (two key n-tiles make one 16-key A fragment).
#pragma unroll
    for (int kk = 0; kk < C::kTK / 16; ++kk) {
      float pv[2][4];
#pragma unroll
      for (int h2 = 0; h2 < 2; ++h2)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[2 * kk + h2][e];
          if constexpr (F::kScaled) x *= w_scale[(st * 2 + 1) * C::kTK + (2 * kk + h2) * 8 + 2 * tq + (e & 1)] * v_inv;
          pv[h2][e] = x;
        }
      uint32_t a[4];
      a[0] = M::pack(pv[0][0], pv[0][1]);
      a[1] = kHi ? M::pack(pv[0][2], pv[0][3]) : 0u;
      a[2] = M::pack(pv[1][0], pv[1][1]);
      a[3] = kHi ? M::pack(pv[1][2], pv[1][3]) : 0u;
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bv[4];
        const int m = lane >> 3;
        ldsm_x4_trans(bv, tv + (kk * 16 + (m & 1) * 8 + (lane & 7)) * C::kPitch + np * 16 + (m >> 1) * 8);
        M::mma(o[2 * np], a, bv[0], bv[1]);
        M::mma(o[2 * np + 1], a, bv[2], bv[3]);
      }
    }
  }
  cp_async_wait<0>();
  pdl_trigger();
  __syncthreads();  // every warp is done with its stages: reuse them for the merge of the 4 warps

  float* red_o = reinterpret_cast<float*>(smem);        // [warp][16 rows][D]
  float* red_ml = red_o + C::kWarps * C::kRowsMax * D;  // [warp][16 rows] (m, l)
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    float l = l_run[hr];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    if (!kHi && hr == 1) continue;
    const int r = g + 8 * hr;
    if (tq == 0) {
      red_ml[2 * (warp * C::kRowsMax + r)] = m_run[hr];
      red_ml[2 * (warp * C::kRowsMax + r) + 1] = l;
    }
#pragma unroll
    for (int n = 0; n < kDT; ++n) {
      float* dst = red_o + (warp * C::kRowsMax + r) * D + n * 8 + 2 * tq;
      dst[0] = o[n][2 * hr] * o_unit;
      dst[1] = o[n][2 * hr + 1] * o_unit;
    }
  }
  __syncthreads();

  const bool has_sink = p.sinks != nullptr;
  float* ws_o = static_cast<float*>(p.workspace);
  const int64_t n_parts = static_cast<int64_t>(p.batch) * p.q_len * p.n_heads * n_splits;
  float* ws_ml = ws_o + n_parts * D;
  for (int idx = tid; idx < rows_here * D; idx += C::kThreads) {
    const int r = idx / D, d = idx % D;
    const int32_t gr = row0 + r;
    const int64_t h = static_cast<int64_t>(hkv) * group + gr % group;
    const int64_t orow = (static_cast<int64_t>(b) * p.q_len + gr / group) * p.n_heads + h;
    float mx = -INFINITY, acc = 0.0f, l = 0.0f;
    if (r < n_rows) {
#pragma unroll
      for (int w = 0; w < C::kWarps; ++w) mx = fmaxf(mx, red_ml[2 * (w * C::kRowsMax + r)]);
#pragma unroll
      for (int w = 0; w < C::kWarps; ++w) {
        const float mw = red_ml[2 * (w * C::kRowsMax + r)];
        if (mw == -INFINITY) continue;
        const float f = exp2_approx(mw - mx);
        acc = fmaf(red_o[(w * C::kRowsMax + r) * D + d], f, acc);
        l = fmaf(red_ml[2 * (w * C::kRowsMax + r) + 1], f, l);
      }
    }
    if (n_splits == 1) {
      // Normalise here: (the sink joins the denominator in base 2), rows past n_q and empty rows are zero.
      float scale_o = 1.0f;
      if (has_sink && r < n_rows) {
        const float sink = load_any_f32(p.sinks, p.tsinks, h) * kLog2e;
        const float mf = fmaxf(mx, sink);
        scale_o = mx == -INFINITY ? 0.0f : exp2_approx(mx - mf);
        l = l * scale_o + exp2_approx(sink - mf);
      }
      const float inv = l > 0.0f ? scale_o / l : 0.0f;
      static_cast<TQ*>(p.out)[orow * D + d] = from_f32<TQ>(acc * inv);
    } else if (r < n_rows) {
      const int64_t part = orow * n_splits + split;
      ws_o[part * D + d] = acc;
      if (d == 0) {
        ws_ml[2 * part] = mx;
        ws_ml[2 * part + 1] = l;
      }
    }
  }
}

template <typename TQ, typename F, int D, int ROWS>
Status launch_attention_decode_mma_rows(const kern::AttentionParams& p, const ExecContext& ctx) {
  using C = Dec2Cfg<D, F>;
  constexpr std::string_view op = "attention";
  const int32_t groups = kern::decode_row_groups(p.q_len, p.n_heads, p.n_kv_heads, D);
  const int32_t splits = kern::decode_splits(
      ctx.props->multiprocessor_count, static_cast<int64_t>(p.batch) * p.n_kv_heads * groups, p.cache.capacity, D);
  if (splits > 1 && kern::decode_workspace_bytes(p.batch, p.q_len, p.n_heads, D, splits) > p.workspace_bytes)
    return invalid_argument(op, "workspace too small");
  const int64_t blocks_x = static_cast<int64_t>(p.batch) * p.n_kv_heads * splits;
  if (blocks_x > 0x7fffffff || groups > 65535)
    return unsupported(op, "batch x KV heads or query rows exceed one launch");
  auto kernel = attention_decode_mma_kernel<TQ, F, D, ROWS>;
  MLXN_TRY(allow_smem(ctx, kernel, C::kSmem, op));
  const auto stream = static_cast<cudaStream_t>(ctx.stream);
  const dim3 grid(static_cast<unsigned>(blocks_x), 1, static_cast<unsigned>(groups));
  MLXN_TRY(launch_status(launch_kernel_smem(kernel, grid, dim3(C::kThreads), C::kSmem, stream, true, p, splits), op));
  if (splits == 1) return Status::ok();
  const int64_t rows = static_cast<int64_t>(p.batch) * p.q_len * p.n_heads;
  return launch_status(launch_kernel(attention_decode_merge_kernel<TQ, D, true>, dim3(static_cast<unsigned>(rows)),
                                     dim3(128), stream, /*pdl=*/true, p, splits),
                       op);
}

template <typename TQ, typename F, int D>
Status launch_attention_decode_mma(const kern::AttentionParams& p, const ExecContext& ctx) {
  if (kern::decode_rows(p.q_len, p.n_heads, p.n_kv_heads, D) == 8)
    return launch_attention_decode_mma_rows<TQ, F, D, 8>(p, ctx);
  return launch_attention_decode_mma_rows<TQ, F, D, 16>(p, ctx);
}

// Query rows per sequence up to which the split-KV decode kernels run (speculative decoding); longer chunks go to the
// tensor-core prefill kernel where it exists (Q and a 16-bit KV of one dtype, D <= 256), else to a decode kernel,
// whose query-row groups cover any length (slower, but every head dim and dtype mix works).
inline constexpr int32_t kDecodeMaxQ = 16;

// Plain 16-bit caches.
template <typename TQ, typename TKV, int D>
Status launch_attention(const kern::AttentionParams& p, const ExecContext& ctx) {
  if (!aligned16(p.cache.k) || !aligned16(p.cache.v))
    return unsupported("attention", "CUDA needs 16-byte aligned K / V caches");
  if constexpr (std::is_same_v<TQ, TKV> && D <= 256 && D % 16 == 0) {
    if (p.q_len > kDecodeMaxQ && aligned16(p.q) && (reinterpret_cast<uintptr_t>(p.out) & 3u) == 0) {
      // MLXN_TUNE_PREFILL_SM90=0 forces the mma.sync kernel (comparison runs).
      static const bool sm90_allowed = tune_knob("MLXN_TUNE_PREFILL_SM90", 1) != 0;
      if constexpr (D == 128)
        if (sm90_allowed && sm90a_available(ctx)) return launch_attention_prefill_sm90<TQ, D>(p, ctx);
      return launch_attention_prefill<TQ, D>(p, ctx);
    }
  }
  if constexpr (D % 16 == 0 && D <= 256) {
    return launch_attention_decode_mma<TQ, KvPlain<TKV>, D>(p, ctx);
  } else {
    return launch_attention_decode<TQ, TKV, D>(p, ctx);
  }
}

// fp8 e4m3 caches (u8 storage with f32 scales per position and head): the decode kernel at any q_len.
template <typename TQ, int D>
Status launch_attention_fp8(const kern::AttentionParams& p, const ExecContext& ctx) {
  if (!aligned16(p.cache.k) || !aligned16(p.cache.v))
    return unsupported("attention", "CUDA needs 16-byte aligned K / V caches");
  if (p.cache.k_scale == nullptr || p.cache.v_scale == nullptr)
    return invalid_argument("attention", "fp8 scales missing");
  return launch_attention_decode_mma<TQ, KvFp8, D>(p, ctx);
}

// q8_0 / q4_0 caches (split layout: codes, f16 block scales): the decode kernel at any q_len.
template <typename TQ, bool Q4, int D>
Status launch_attention_q(const kern::AttentionParams& p, const ExecContext& ctx) {
  using C = Dec2Cfg<D, KvQBlock<Q4>>;
  if (!aligned16(p.cache.k) || !aligned16(p.cache.v))
    return unsupported("attention", "CUDA needs 16-byte aligned K / V caches");
  if (p.cache.k_scale == nullptr || p.cache.v_scale == nullptr)
    return invalid_argument("attention", "q8_0 / q4_0 scales missing");
  if (reinterpret_cast<uintptr_t>(p.cache.k_scale) % C::kSChunk != 0 ||
      reinterpret_cast<uintptr_t>(p.cache.v_scale) % C::kSChunk != 0)
    return unsupported("attention", "CUDA needs the q8_0 / q4_0 scales ", C::kSChunk, "-byte aligned");
  return launch_attention_decode_mma<TQ, KvQBlock<Q4>, D>(p, ctx);
}

}  // namespace mlxn::cuda
