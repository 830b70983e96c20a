// y = x W^T for decode-sized M (1..4; expert-routed slots), W in a GGML block format or MLX affine: x is quantized to
// int8 inside the kernel and the products are integer dot products (dp4a) on the CUDA cores, as ggml's mmvq does.
//
// Why not the tensor-core kernel of qmatmul.cuh at M = 1: it forms every weight in f16 (about 25 instructions per
// four weight pairs) and is bound by instruction issue at 14-40 % of copy bandwidth. Here one lane owns one 32-element
// block of one row and spends about 35-45 instructions on it (counted per format below), which an H100 / H200 issues
// faster than the memory delivers the block's 17-34 bytes.
//
// x: each 32-element block b of a row of x is quantized as ggml's q8_1: d = max|x| / 127, codes round(x / d) in
// [-127, 127], and the sums of the codes (whole block and each half, times d). This happens in the kernel, into shared
// memory (every block of the grid quantizes the x rows it needs; the grid is at most one block per SM, so that is
// 132 copies of a 28 KB vector at K = 14336, hidden under the first weight stages in flight) rather than in a
// pre-kernel: no workspace buffer, no second launch in the graph. |x - d q| <= d / 2 per element, so the result is
// exact up to sum_b (d_b / 2) sum_{k in b} |W(n, k)| plus f32 rounding (include/mlxn/ops/matmul.h).
//
// W: a block of 32 weights is decoded to eight words of four byte codes q (unsigned, or signed for Q8_0 and the
// table formats) with a scale d and an offset m per 16 or 32 elements, w = d q + m. Then
//   sum_k w_k xq_k = d * (dx * dp4a(q, qx)) + m * (dx * sum qx)
// so the offset costs one FMA with the stored code sum (Q4_0's -8, K-quant mins, MLX affine biases alike).
//
// Work layout. A block has 16 warps and stays on its SM (one block per SM, persistent over "rounds"). A warp owns a
// group of 2 rows and a share of K: the 16 warps form 16 / KS row groups of KS warps each, each warp of a group
// taking a contiguous range of the 1024-element K steps (KS in {1, 2, 4, 8, 16}, chosen per shape on the host so
// that N = 1024 .. 151936 fills the SMs; see plan()). Per step, lane l handles 32-element block 32 step + l of both
// rows. The weight bytes are staged into the warp's own shared-memory ring of two slots, each holding a stage of up
// to 8 consecutive steps (as many as shared memory allows: stage_steps()), so one stage of a row is one contiguous
// range: on sm_90 lane 0 issues one bulk copy per row and range (the copy engine moves the bytes; an mbarrier per
// slot counts them in), below sm_90 every lane issues 16-byte cp.async copies. GGML blocks are only 2-byte aligned,
// so lanes read their block from the staged copy with aligned word loads (LDS) and funnel shifts. Profile with one
// step per stage (ncu, H200, q4_0 14336x4096): ~250 warp instructions per step of two rows, of which ~100 were lane
// 0's staging code and the barrier wait, ~150 the decode and dot products; the SM issued 2.6 instructions per cycle,
// so the kernel was issue bound at ~54 % of copy bandwidth. Stages of several steps divide the staging cost by their
// length. The first stage is issued before pdl_wait(): weights are constants, only x (and the expert ids) come from
// the previous kernel. At the end of a round the warp's sums are reduced across lanes; with KS > 1 the group's warps
// add their partials in shared memory in a fixed order after a barrier of that group only (deterministic, no
// atomics).
//
// Shared memory: per row of x, 1024 code bytes per step laid out [half][lane][16 bytes] (lane-consecutive 16-byte
// loads, no bank conflicts) and a float4 per block {d, d * sum, d * sum of positions 0-15, d * sum of 16-31}; then
// the warps' weight rings.
#pragma once

#include <algorithm>

#include "cuda/activation.cuh"
#include "cuda/qmatmul.cuh"

namespace mlxn::cuda::qgv {

using qmm::byte_of;
using qmm::byte_of3;
using qmm::e8m0_half;
using qmm::f16_bits;
using qmm::k4_scale_min;
using qmm::kLow4;
using qmm::ld16;
using qmm::ld32;
using qmm::ld8;
using qmm::load_words;
using qmm::lookup16;
using qmm::spread_bit4;

// Tuning (H100 / H200, 132 SMs; measured only where a figure is given):
// - 16 warps, one block per SM: the x quantization is paid once per SM rather than per block of rows (8 warps and two
//   blocks per SM would double it); a persistent grid keeps that true at N = 151936.
// - 2 rows per warp: the x loads (3 per block and row of x) are shared by both rows, and two independent decodes give
//   the scheduler ILP; 4 rows would leave N = 4096 with too few row groups (1024 for 2112 warps) to balance.
// - 1024-element steps: one 32-element block per lane (dp4a route: whole blocks, no cross-lane scale exchange).
// - M <= 4 only: x for M rows takes 1.5 M bytes per element of K of shared memory (86 KB at M = 4, K = 14336); M = 8
//   or 16 would not fit beside the rings: M = 5..16 runs the int8 mma.sync kernel of qgemm_i8.cuh (x quantized once
//   into a workspace), larger M the tensor-core kernel of qmatmul.cuh.
// - Rings of up to 160 KB per block, steps per stage as many as fit (H200, same machine, q4_0: capping a stage at 1 /
//   2 / 8 steps gave 140.5 / 102.5 / 91.0 us at 151936x4096 and 328 / 372 / 393 tokens/s on Llama-3-8B Q4_0).
inline constexpr int kWarps = 16, kThreads = kWarps * 32;
inline constexpr int kRows = 2;                 // rows of W per warp
inline constexpr int kStep = 1024;              // elements of K per warp step: 32 lanes x 32
inline constexpr int kStageBudget = 160 * 1024;  // shared memory for the weight rings of one block (at most)

// One lane's decoded block: byte j of q[i] pairs with x position 4 i + j; d / m per half (positions 0-15, 16-31)
// when the format has 16-element scales, else d[0] / m[0] for all 32.
struct Dec {
  uint32_t q[8];
  float d[2], m[2];
};

// The staged bytes of one row for one step: up to three byte ranges (MLX affine: codes, scales, biases).
struct Staged {
  const uint8_t* p[3];
  int64_t step;
};
struct Range {
  const uint8_t* src;
  int64_t bytes;
};

// 16 signed table values as four words of bytes (for lookup16).
template <const int8_t (&V)[16]>
struct STable16 {
  static constexpr uint32_t word(int i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i])) |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 1])) << 8 |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 2])) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 3])) << 24;
  }
  __device__ static __forceinline__ uint32_t map(uint32_t idx) {
    return lookup16(idx, word(0), word(1), word(2), word(3));
  }
};

// A block of a 2-byte header and NW words at a 2-byte aligned address: NW + 1 aligned word loads cover it exactly
// (one fewer than loading the header and the words apart), then funnel shifts by 16 or 0 bits.
template <int NW>
__device__ __forceinline__ uint32_t load_block(const uint8_t* p, uint32_t (&out)[NW]) {
  const uint32_t mis = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p)) & 2u;  // 0 or 2 (2-byte aligned)
  const uint32_t* base = reinterpret_cast<const uint32_t*>(p - mis);  // pointer arithmetic: stays an LDS
  const uint32_t sh = mis * 8;                                         // 0 or 16
  uint32_t w[NW + 1];
#pragma unroll
  for (int i = 0; i <= NW; ++i) w[i] = base[i];
#pragma unroll
  for (int i = 0; i < NW; ++i) out[i] = __funnelshift_rc(w[i], w[i + 1], 16 + sh);  // 32 clamps to w[i + 1]
  return (w[0] >> sh) & 0xFFFFu;
}

// ---- formats: decoders to int8 ----
// A format gives kSpan (elements of one stored block: 32 or 256), kBytes, kSigned (codes are int8), kHasMin,
// kSplit16, pos(e) (where element e of a 32-block sits among the x positions; natural order unless the packing is
// cheaper to decode another way), the staged ranges and decode(). Instruction counts are per lane and row.
template <DType T>
struct I8;

struct GgmlBase {
  static constexpr int kRanges = 1;
  static constexpr bool kSigned = false, kHasMin = true, kSplit16 = false;
  __host__ __device__ static constexpr int pos(int e) { return e; }
};

// Bytes of one step of one row, and the staged ranges, for a GGML format F.
template <typename F>
struct GgmlStage {
  static constexpr int kChunk = kStep / F::kSpan * F::kBytes;
  __host__ __device__ static constexpr int cap(int) { return kChunk; }
  __device__ void ranges(const kern::QMatmulParams& p, const uint8_t* w, int64_t row, int64_t step,
                         Range (&r)[1]) const {
    const int64_t off = step * kChunk;
    r[0].src = w + row * p.row_bytes + off;
    r[0].bytes = min(static_cast<int64_t>(kChunk), p.row_bytes - off);
  }
};

// Q4_0: d (f16), 16 bytes: element e low nibble of byte e, e + 16 high. ~20 instructions: 5 lds + 4 funnel shifts,
// 8 and / shift-and, header shift + cvt, 1 mul. Shared memory: the lanes' 18-byte stride makes each word load about
// 5-way bank conflicted, ~25 wavefronts per row and step (576 bytes); with the copies in and the x loads, about 17
// bytes of weights per wavefront, close to the ~16 per clock an H200 SM needs: a profile should check this.
template <>
struct I8<DType::Q4_0> : GgmlBase {
  static constexpr int kSpan = 32, kBytes = 18;
  __device__ static Dec decode(const Staged& s, int lane) {
    uint32_t w[4];
    const uint32_t h = load_block(s.p[0] + lane * kBytes, w);
    Dec r;
#pragma unroll
    for (int i = 0; i < 4; ++i) r.q[i] = w[i] & kLow4, r.q[4 + i] = (w[i] >> 4) & kLow4;
    r.d[0] = f16_bits(h);
    r.m[0] = -8.0f * r.d[0];
    return r;
  }
};

// Q4_1: d, m (f16), 16 bytes; blocks of 20 bytes keep rows 4-byte aligned: plain word loads (~16 instructions).
template <>
struct I8<DType::Q4_1> : GgmlBase {
  static constexpr int kSpan = 32, kBytes = 20;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + lane * kBytes;
    Dec r;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t w = ld32(p + 4 + 4 * i);
      r.q[i] = w & kLow4, r.q[4 + i] = (w >> 4) & kLow4;
    }
    const uint32_t dm = ld32(p);
    r.d[0] = f16_bits(dm);
    r.m[0] = f16_bits(dm >> 16);
    return r;
  }
};

// Q5_0: d, qh (bit e = fifth bit of element e), 16 bytes of nibbles; codes 0..31, offset -16 (~36 instructions).
template <>
struct I8<DType::Q5_0> : GgmlBase {
  static constexpr int kSpan = 32, kBytes = 22;
  __device__ static Dec decode(const Staged& s, int lane) {
    uint32_t w[5];
    const uint32_t hd = load_block(s.p[0] + lane * kBytes, w);
    Dec r;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      r.q[i] = (w[1 + i] & kLow4) | spread_bit4((w[0] >> (4 * i)) & 0xFu);
      r.q[4 + i] = ((w[1 + i] >> 4) & kLow4) | spread_bit4((w[0] >> (16 + 4 * i)) & 0xFu);
    }
    r.d[0] = f16_bits(hd);
    r.m[0] = -16.0f * r.d[0];
    return r;
  }
};

template <>
struct I8<DType::Q5_1> : GgmlBase {
  static constexpr int kSpan = 32, kBytes = 24;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + lane * kBytes;
    const uint32_t h = ld32(p + 4);
    Dec r;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t w = ld32(p + 8 + 4 * i);
      r.q[i] = (w & kLow4) | spread_bit4((h >> (4 * i)) & 0xFu);
      r.q[4 + i] = ((w >> 4) & kLow4) | spread_bit4((h >> (16 + 4 * i)) & 0xFu);
    }
    const uint32_t dm = ld32(p);
    r.d[0] = f16_bits(dm);
    r.m[0] = f16_bits(dm >> 16);
    return r;
  }
};

// Q8_0: the codes are the bytes (signed); ~20 instructions (9 lds + 8 funnel shifts + scale).
template <>
struct I8<DType::Q8_0> : GgmlBase {
  static constexpr int kSpan = 32, kBytes = 34;
  static constexpr bool kSigned = true, kHasMin = false;
  __device__ static Dec decode(const Staged& s, int lane) {
    Dec r;
    r.d[0] = f16_bits(load_block(s.p[0] + lane * kBytes, r.q));
    r.m[0] = 0.0f;
    return r;
  }
};

// IQ4_NL: Q4_0's layout, codes through the 16-entry table (two byte permutes and a select per word: ~44).
template <>
struct I8<DType::IQ4_NL> : GgmlBase {
  static constexpr int kSpan = 32, kBytes = 18;
  static constexpr bool kSigned = true, kHasMin = false;
  __device__ static Dec decode(const Staged& s, int lane) {
    uint32_t w[4];
    const uint32_t h = load_block(s.p[0] + lane * kBytes, w);
    Dec r;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      r.q[i] = STable16<quant::kIQ4NLValues>::map(w[i] & kLow4);
      r.q[4 + i] = STable16<quant::kIQ4NLValues>::map((w[i] >> 4) & kLow4);
    }
    r.d[0] = f16_bits(h);
    r.m[0] = 0.0f;
    return r;
  }
};

// MXFP4: E8M0 scale byte, 16 bytes of E2M1 codes (ggml's doubled table with a halved scale).
template <>
struct I8<DType::MXFP4> : GgmlBase {
  static constexpr int kSpan = 32, kBytes = 17;
  static constexpr bool kSigned = true, kHasMin = false;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + lane * kBytes;
    uint32_t w[4];
    load_words(p + 1, w);
    Dec r;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      r.q[i] = STable16<quant::kMXFP4Values>::map(w[i] & kLow4);
      r.q[4 + i] = STable16<quant::kMXFP4Values>::map((w[i] >> 4) & kLow4);
    }
    r.d[0] = e8m0_half(ld8(p));
    r.m[0] = 0.0f;
    return r;
  }
};

// ---- K formats: eight lanes share a 256-element super-block, lane & 7 = sub-block j of 32 elements ----

// Q2_K: sub-block j = 4 h + g: bits 2 g of qs[32 h + l]; scale bytes 2 j (l < 16) and 2 j + 1 (low nibble scale,
// high nibble min) under d and dmin. ~30 instructions.
template <>
struct I8<DType::Q2_K> : GgmlBase {
  static constexpr int kSpan = 256, kBytes = 84;
  static constexpr bool kSplit16 = true;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + (lane >> 3) * kBytes;
    const int j = lane & 7, h = j >> 2, g = j & 3;
    Dec r;
#pragma unroll
    for (int i = 0; i < 8; ++i) r.q[i] = (ld32(p + 16 + 32 * h + 4 * i) >> (2 * g)) & 0x03030303u;
    const uint32_t sc = ld16(p + 2 * j);
    const uint32_t dd = ld32(p + 80);
    const float d = f16_bits(dd), dmin = f16_bits(dd >> 16);
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const uint32_t b = byte_of(sc, t);
      r.d[t] = d * static_cast<float>(b & 0xF);
      r.m[t] = -dmin * static_cast<float>(b >> 4);
    }
    return r;
  }
};

// Q3_K: low two bits as Q2_K (qs at 32), the third is bit j of hmask[l] (set: +0, clear: -4), so the code
// low | hbit << 2 is 0..7 with offset -4 * scale; 16 six-bit scales minus 32, index 2 j + (l >= 16). ~60
// instructions (its 110-byte blocks are 2-byte aligned).
template <>
struct I8<DType::Q3_K> : GgmlBase {
  static constexpr int kSpan = 256, kBytes = 110;
  static constexpr bool kSplit16 = true;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + (lane >> 3) * kBytes;
    const int j = lane & 7, h = j >> 2, g = j & 3;
    uint32_t q[8], hm[8], sc[3];
    load_words(p + 32 + 32 * h, q);
    load_words(p, hm);
    load_words(p + 96, sc);
    Dec r;
#pragma unroll
    for (int i = 0; i < 8; ++i) r.q[i] = ((q[i] >> (2 * g)) & 0x03030303u) | (((hm[i] >> j) & 0x01010101u) << 2);
    const float d = f16_bits(ld16(p + 108));
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int idx = 2 * j + t;
      const uint32_t lo = (byte_of3(sc, idx % 8) >> (4 * (idx / 8))) & 0xF;
      const uint32_t hi = (byte_of3(sc, 8 + idx % 4) >> (2 * (idx / 4))) & 0x3;
      r.d[t] = d * static_cast<float>(static_cast<int>(lo | (hi << 4)) - 32);
      r.m[t] = -4.0f * r.d[t];
    }
    return r;
  }
};

// Q4_K: sub-block j is nibble j % 2 of qs[32 (j / 2) + l]; six-bit scale and min j. ~30 instructions.
template <>
struct I8<DType::Q4_K> : GgmlBase {
  static constexpr int kSpan = 256, kBytes = 144;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + (lane >> 3) * kBytes;
    const int j = lane & 7;
    Dec r;
#pragma unroll
    for (int i = 0; i < 8; ++i) r.q[i] = (ld32(p + 16 + 32 * (j >> 1) + 4 * i) >> (4 * (j & 1))) & kLow4;
    const uint32_t sc[3] = {ld32(p + 4), ld32(p + 8), ld32(p + 12)};
    uint32_t sd, sm;
    k4_scale_min(sc, j, sd, sm);
    const uint32_t dd = ld32(p);
    r.d[0] = f16_bits(dd) * static_cast<float>(sd);
    r.m[0] = -f16_bits(dd >> 16) * static_cast<float>(sm);
    return r;
  }
};

// Q5_K: Q4_K plus the fifth bit, bit j of qh[l].
template <>
struct I8<DType::Q5_K> : GgmlBase {
  static constexpr int kSpan = 256, kBytes = 176;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + (lane >> 3) * kBytes;
    const int j = lane & 7;
    Dec r;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t nib = (ld32(p + 48 + 32 * (j >> 1) + 4 * i) >> (4 * (j & 1))) & kLow4;
      r.q[i] = nib | (((ld32(p + 16 + 4 * i) >> j) & 0x01010101u) << 4);
    }
    const uint32_t sc[3] = {ld32(p + 4), ld32(p + 8), ld32(p + 12)};
    uint32_t sd, sm;
    k4_scale_min(sc, j, sd, sm);
    const uint32_t dd = ld32(p);
    r.d[0] = f16_bits(dd) * static_cast<float>(sd);
    r.m[0] = -f16_bits(dd >> 16) * static_cast<float>(sm);
    return r;
  }
};

// Q6_K: sub-block j = 4 h + t: low four bits nibble t / 2 of ql[64 h + 32 (t % 2) + l], high two bits 2 t of
// qh[32 h + l]; codes 0..63, offset -32 * scale; int8 scales 2 j and 2 j + 1 per 16. ~50 instructions (2-byte
// aligned blocks).
template <>
struct I8<DType::Q6_K> : GgmlBase {
  static constexpr int kSpan = 256, kBytes = 210;
  static constexpr bool kSplit16 = true;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + (lane >> 3) * kBytes;
    const int j = lane & 7, h = j >> 2, t = j & 3;
    uint32_t ql[8], qh[8];
    load_words(p + 64 * h + 32 * (t & 1), ql);
    load_words(p + 128 + 32 * h, qh);
    Dec r;
#pragma unroll
    for (int i = 0; i < 8; ++i)
      r.q[i] = ((ql[i] >> (4 * (t >> 1))) & kLow4) | (((qh[i] >> (2 * t)) & 0x03030303u) << 4);
    const uint32_t sc = ld16(p + 192 + 2 * j);
    const float d = f16_bits(ld16(p + 208));
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      r.d[u] = d * static_cast<float>(static_cast<int8_t>(byte_of(sc, u)));
      r.m[u] = -32.0f * r.d[u];
    }
    return r;
  }
};

// IQ4_XS: sub-block j has IQ4_NL's nibble layout in qs[16 j ..], scale ((scales_l nibble) | (scales_h 2 bits) << 4)
// - 32 under the f16 d.
template <>
struct I8<DType::IQ4_XS> : GgmlBase {
  static constexpr int kSpan = 256, kBytes = 136;
  static constexpr bool kSigned = true, kHasMin = false;
  __device__ static Dec decode(const Staged& s, int lane) {
    const uint8_t* p = s.p[0] + (lane >> 3) * kBytes;
    const int j = lane & 7;
    Dec r;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t w = ld32(p + 8 + 16 * j + 4 * i);
      r.q[i] = STable16<quant::kIQ4NLValues>::map(w & kLow4);
      r.q[4 + i] = STable16<quant::kIQ4NLValues>::map((w >> 4) & kLow4);
    }
    const uint32_t hdr = ld32(p), sl = ld32(p + 4);
    const uint32_t lo = (byte_of(sl, j / 2) >> (4 * (j % 2))) & 0xF;
    const uint32_t hi = ((hdr >> 16) >> (2 * j)) & 0x3;
    r.d[0] = f16_bits(hdr) * static_cast<float>(static_cast<int>(lo | (hi << 4)) - 32);
    r.m[0] = 0.0f;
    return r;
  }
};

// GGML formats through one interface (decode is static; ranges needs the row stride).
template <DType T>
struct Ggml : I8<T>, GgmlStage<I8<T>> {};

// MLX affine, BITS-bit codes little-endian in u32 words, one scale and bias per group (a multiple of 32 elements).
// The lane's 32 codes are BITS aligned words. 4 and 2 bits decode with one shift-and per output word when x is laid
// out in the order the masks produce (pos()); 3, 5 and 6 bits keep the natural order and extract fields (~5
// instructions per output word). 8 bits are the bytes.
template <int BITS, typename Ts>
struct Affine {
  static constexpr int kSpan = 32, kRanges = 3;
  static constexpr bool kSigned = false, kHasMin = true, kSplit16 = false;
  static constexpr int kChunk = kStep / 8 * BITS;
  // Most bytes of a step: the codes; up to 32 groups' scales and biases.
  __host__ __device__ static constexpr int cap(int t) {
    return t == 0 ? kChunk : kStep / 32 * static_cast<int>(sizeof(Ts));
  }
  int group;
  // Element e of a block: 4 bits: word e / 8 of the codes, nibble e % 8 -> output word 2 (e / 8) + e % 2, byte
  // (e % 8) / 2. 2 bits: word e / 16, field e % 16 -> output word 4 (e / 16) + e % 4, byte (e % 16) / 4.
  __host__ __device__ static constexpr int pos(int e) {
    if (BITS == 4) return 4 * (2 * (e / 8) + e % 2) + (e % 8) / 2;
    if (BITS == 2) return 4 * (4 * (e / 16) + e % 4) + (e % 16) / 4;
    return e;
  }
  __device__ void ranges(const kern::QMatmulParams& p, const uint8_t* w, int64_t row, int64_t step,
                         Range (&r)[3]) const {
    const int64_t off = step * kChunk;
    r[0].src = w + row * p.row_bytes + off;
    r[0].bytes = min(static_cast<int64_t>(kChunk), p.row_bytes - off);
    const int64_t groups = p.K / group;
    const int64_t g0 = step * kStep / group;
    const int64_t g1 = min((step * kStep + kStep - 1) / group, groups - 1);
    const int64_t base = (row * groups + g0) * static_cast<int64_t>(sizeof(Ts));
    r[1].src = static_cast<const uint8_t*>(p.scales) + base;
    r[2].src = static_cast<const uint8_t*>(p.biases) + base;
    r[1].bytes = r[2].bytes = (g1 - g0 + 1) * static_cast<int64_t>(sizeof(Ts));
  }
  __device__ Dec decode(const Staged& s, int lane) const {
    const uint32_t* v = reinterpret_cast<const uint32_t*>(s.p[0] + 4 * BITS * lane);
    uint32_t w[BITS];
#pragma unroll
    for (int i = 0; i < BITS; ++i) w[i] = v[i];
    Dec r;
    if constexpr (BITS == 8) {
#pragma unroll
      for (int i = 0; i < 8; ++i) r.q[i] = w[i];
    } else if constexpr (BITS == 4) {
#pragma unroll
      for (int i = 0; i < 4; ++i) r.q[2 * i] = w[i] & kLow4, r.q[2 * i + 1] = (w[i] >> 4) & kLow4;
    } else if constexpr (BITS == 2) {
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int t = 0; t < 4; ++t) r.q[4 * i + t] = (w[i] >> (2 * t)) & 0x03030303u;
    } else {
      constexpr uint32_t mask = (1u << BITS) - 1;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int bit = 4 * BITS * i, wi = bit / 32, off = bit % 32;
        uint32_t c = w[wi] >> off;
        if (off + 4 * BITS > 32) c |= w[wi + 1] << (32 - off);
        r.q[i] = (c & mask) | ((c >> BITS) & mask) << 8 | ((c >> (2 * BITS)) & mask) << 16 |
                 ((c >> (3 * BITS)) & mask) << 24;
      }
    }
    const int64_t k = s.step * kStep + 32 * lane;
    const int64_t gi = k / group - s.step * kStep / group;
    r.d[0] = to_f32(reinterpret_cast<const Ts*>(s.p[1])[gi]);
    r.m[0] = to_f32(reinterpret_cast<const Ts*>(s.p[2])[gi]);
    return r;
  }
};

// ---- shared-memory geometry ----
// A staged range: its capacity plus up to 15 bytes of misalignment, whole 16-byte pieces, plus 16 bytes that the
// funnel-shift loads may touch past the end.
__host__ __device__ constexpr int range_pieces(int cap) { return (cap + 30) / 16; }
__host__ __device__ constexpr int range_stride(int cap) { return range_pieces(cap) * 16 + 16; }

// Each warp's ring has 2 to 4 slots: one stage is computed while the others are in flight. A stage holds `sps`
// consecutive K steps of the warp's rows, so a GGML row costs one bulk copy per sps steps rather than one per step.
// Both are chosen per launch (stage_plan()): the most steps per stage with two slots, then as many slots as fit.
inline constexpr int kMaxSlots = 4;
inline constexpr int kMaxSps = 8;

template <typename F>
struct Geometry {
  int sps = 1;  // K steps per stage
  __host__ __device__ int offset(int j) const {
    int o = 0;
    for (int i = 0; i < j; ++i) o += range_stride(F::cap(i) * sps);
    return o;
  }
  __host__ __device__ int region() const { return offset(F::kRanges); }  // one row's bytes of one stage
  __host__ __device__ int stage_warp() const { return kRows * region(); }  // one warp's bytes of one stage
  __host__ __device__ int64_t ring_bytes(int slots) const {
    return static_cast<int64_t>(slots) * kWarps * stage_warp();
  }
};

// Dynamic shared memory of a launch: the quantized x rows and the weight rings.
template <typename F>
constexpr int64_t smem_bytes(int mt, int64_t nsteps, int sps, int slots) {
  return mt * nsteps * (kStep + 32 * 16) + Geometry<F>{sps}.ring_bytes(slots);
}

// ---- integer dot products ----
__device__ __forceinline__ int dp4a_us(uint32_t a, uint32_t b, int c) {
  int d;
  asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
__device__ __forceinline__ int dp4a_ss(uint32_t a, uint32_t b, int c) {
  int d;
  asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
template <bool kSigned>
__device__ __forceinline__ int dp4(uint32_t a, uint32_t b, int c) {
  if constexpr (kSigned) return dp4a_ss(a, b, c);
  return dp4a_us(a, b, c);
}

// acc += sum over the block of (d q + m) * xq. 8 dp4a, then 4 (one scale) or 7 (two) float instructions.
template <typename F>
__device__ __forceinline__ void block_dot(const Dec& w, const uint4& xa, const uint4& xb, const float4& xi,
                                          float& acc) {
  int s0 = dp4<F::kSigned>(w.q[0], xa.x, 0);
  s0 = dp4<F::kSigned>(w.q[1], xa.y, s0);
  s0 = dp4<F::kSigned>(w.q[2], xa.z, s0);
  s0 = dp4<F::kSigned>(w.q[3], xa.w, s0);
  if constexpr (F::kSplit16) {
    int s1 = dp4<F::kSigned>(w.q[4], xb.x, 0);
    s1 = dp4<F::kSigned>(w.q[5], xb.y, s1);
    s1 = dp4<F::kSigned>(w.q[6], xb.z, s1);
    s1 = dp4<F::kSigned>(w.q[7], xb.w, s1);
    const float t = fmaf(w.d[0], static_cast<float>(s0), w.d[1] * static_cast<float>(s1));
    acc = fmaf(xi.x, t, acc);
    acc = fmaf(w.m[0], xi.z, acc);
    acc = fmaf(w.m[1], xi.w, acc);
  } else {
    // Two chains of four (half the dependent latency of one chain of eight).
    int s1 = dp4<F::kSigned>(w.q[4], xb.x, 0);
    s1 = dp4<F::kSigned>(w.q[5], xb.y, s1);
    s1 = dp4<F::kSigned>(w.q[6], xb.z, s1);
    s1 = dp4<F::kSigned>(w.q[7], xb.w, s1);
    s0 += s1;
    acc = fmaf(w.d[0], xi.x * static_cast<float>(s0), acc);
    if constexpr (F::kHasMin) acc = fmaf(w.m[0], xi.y, acc);
  }
}

// ---- x quantization (prologue) ----
// N consecutive elements of x (f32, f16 or bf16) from element `off` as floats; vec: 16-byte loads (x and its row
// stride 16-byte aligned, off a multiple of 8).
template <int N>
__device__ __forceinline__ void load_x_run(const void* x, DType tx, int64_t off, bool vec, float (&v)[N]) {
  static_assert(N % 8 == 0, "whole 16-byte words");
  if (tx == DType::F32) {
    const float* src = static_cast<const float*>(x) + off;
    if (vec) {
#pragma unroll
      for (int i = 0; i < N / 4; ++i) {
        const float4 f = __ldg(reinterpret_cast<const float4*>(src) + i);
        v[4 * i] = f.x, v[4 * i + 1] = f.y, v[4 * i + 2] = f.z, v[4 * i + 3] = f.w;
      }
    } else {
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] = src[i];
    }
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(x) + off;
  const bool bf = tx == DType::BF16;
  auto cv = [bf](uint32_t h) {
    return bf ? __uint_as_float(h << 16) : __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
  };
  if (vec) {
#pragma unroll
    for (int i = 0; i < N / 8; ++i) {
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(src) + i);
      const uint32_t wd[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) v[8 * i + 2 * k] = cv(wd[k] & 0xFFFFu), v[8 * i + 2 * k + 1] = cv(wd[k] >> 16);
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = cv(src[i]);
  }
}

// The fused RMSNorm's input side (kern::QMatmulParams::norm): x's elements are multiplied by norm[k] + offset before
// quantization (the row's 1 / rms is a common factor, applied to the result), and their squares are summed.
struct XNorm {
  const void* w = nullptr;
  DType tw = DType::F32;
  float offset = 0.0f;
  bool vec = false;  // 16-byte aligned
};
// Scales the N elements of x from column k0 by the norm weights, adding the squares of the raw values to ss.
template <int N>
__device__ __forceinline__ void apply_xnorm(const XNorm& nm, int64_t k0, float (&v)[N], float& ss) {
#pragma unroll
  for (int c = 0; c < N / 8; ++c) {
    float w[8];
    load_x_run(nm.w, nm.tw, k0 + 8 * c, nm.vec, w);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      ss = fmaf(v[8 * c + i], v[8 * c + i], ss);
      v[8 * c + i] *= w[i] + nm.offset;
    }
  }
}
// N elements of x's row mt from column k0 as floats (zeros where `live` is false: rows past M, blocks past K), scaled
// by the fused norm's weights if there is one, with their squares added to the row's ss[mt].
template <int N, int MT>
__device__ __forceinline__ void load_x_normed(const void* x, DType tx, int64_t ldx, int mt, int64_t k0, bool vec,
                                              bool live, const XNorm& nm, float (&ss)[MT], float (&v)[N]) {
  if (!live) {
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = 0.0f;
    return;
  }
  load_x_run(x, tx, mt * ldx + k0, vec, v);
  if (nm.w == nullptr) return;
  float q = 0.0f;
  apply_xnorm(nm, k0, v, q);
#pragma unroll
  for (int m = 0; m < MT; ++m)
    if (m == mt) ss[m] += q;
}

// Quantizes `rows` rows of x (MT slots; slots past `rows` and blocks past K are zero) into xq / xinfo. One thread per
// 32-element block: 32 loads-and-converts, 32 max, 32 (mul, round), 32 byte inserts, 2 stores.
template <typename F, int MT>
__device__ void quantize_x(const void* x, DType tx, int64_t ldx, int rows, int64_t K, int nsteps, uint8_t* xq,
                           float4* xinfo, const XNorm& nm, float (&ss)[MT]) {
  const int64_t nblk = K / 32;
  const int nb = nsteps * 32;
  const size_t esize = tx == DType::F32 ? 4 : 2;
  const bool vec = (reinterpret_cast<uintptr_t>(x) % 16) == 0 && (ldx * esize) % 16 == 0;
  for (int it = threadIdx.x; it < MT * nb; it += kThreads) {
    const int mt = it / nb, b = it % nb;
    float v[32];
    load_x_normed(x, tx, ldx, mt, 32 * static_cast<int64_t>(b), vec, mt < rows && b < nblk, nm, ss, v);
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 32; ++i) amax = fmaxf(amax, fabsf(v[i]));
    const float d = amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    uint32_t w[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int s_lo = 0, s_hi = 0;
#pragma unroll
    for (int e = 0; e < 32; ++e) {
      const int q = __float2int_rn(v[e] * id);
      const int ps = F::pos(e);
      w[ps / 4] |= (static_cast<uint32_t>(q) & 0xFFu) << (8 * (ps % 4));
      if (ps < 16)
        s_lo += q;
      else
        s_hi += q;
    }
    uint8_t* dst = xq + (static_cast<int64_t>(mt) * nsteps + b / 32) * kStep + (b % 32) * 16;
    *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
    *reinterpret_cast<uint4*>(dst + kStep / 2) = make_uint4(w[4], w[5], w[6], w[7]);
    xinfo[static_cast<int64_t>(mt) * nb + b] =
        make_float4(d, d * static_cast<float>(s_lo + s_hi), d * static_cast<float>(s_lo), d * static_cast<float>(s_hi));
  }
}

// Whether a format's x layout keeps each 8-element chunk of a block in its own two words: pos(8 t + i) = 8 t + pos(i)
// (true for the natural order and 4-bit affine, not for 2-bit affine).
template <typename F>
__host__ __device__ constexpr bool chunk_local() {
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 8; ++i)
      if (F::pos(8 * t + i) != 8 * t + F::pos(i)) return false;
  return true;
}

// quantize_x with four threads per 32-element block (8 elements each; max and code sums through shuffles), so all 16
// warps share the prologue (one thread per block left three quarters of them idle at K = 4096, with ~20 % of the
// kernel's instructions in the prologue: ncu, q4_0 14336x4096). The same f32 expressions, so the same codes. For
// chunk_local formats; MT * nsteps * 32 * 4 is a multiple of kThreads, so every thread runs the same iterations (the
// shuffles need whole warps). Used where it is one pass (see launch_mt).
template <typename F, int MT>
__device__ void quantize_x4(const void* x, DType tx, int64_t ldx, int rows, int64_t K, int nsteps, uint8_t* xq,
                            float4* xinfo, const XNorm& nm, float (&ss)[MT]) {
  static_assert(chunk_local<F>(), "quantize_x4 needs chunk-local positions");
  const int64_t nblk = K / 32;
  const int nb = nsteps * 32;
  const size_t esize = tx == DType::F32 ? 4 : 2;
  const bool vec = (reinterpret_cast<uintptr_t>(x) % 16) == 0 && (ldx * esize) % 16 == 0;
  for (int it = threadIdx.x; it < MT * nb * 4; it += kThreads) {
    const int unit = it >> 2, t = it & 3;
    const int mt = unit / nb, b = unit % nb;
    float v[8];
    load_x_normed(x, tx, ldx, mt, 32 * static_cast<int64_t>(b) + 8 * t, vec, mt < rows && b < nblk, nm, ss, v);
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(v[i]));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    const float d = amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    uint32_t w[2] = {0, 0};
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int q = __float2int_rn(v[i] * id);
      const int ps = F::pos(i);  // within the chunk (chunk_local)
      w[ps / 4] |= (static_cast<uint32_t>(q) & 0xFFu) << (8 * (ps % 4));
      sum += q;
    }
    // Chunks 0, 1 hold positions 0-15 and chunks 2, 3 positions 16-31.
    const int pair = sum + __shfl_xor_sync(0xffffffffu, sum, 1);
    const int other = __shfl_xor_sync(0xffffffffu, pair, 2);
    uint8_t* dst = xq + (static_cast<int64_t>(mt) * nsteps + b / 32) * kStep + (b % 32) * 16 + (t >> 1) * (kStep / 2) +
                   (t & 1) * 8;
    *reinterpret_cast<uint2*>(dst) = make_uint2(w[0], w[1]);
    if (t == 0) {
      const float lo = static_cast<float>(pair), hi = static_cast<float>(other);
      xinfo[static_cast<int64_t>(mt) * nb + b] = make_float4(d, d * static_cast<float>(pair + other), d * lo, d * hi);
    }
  }
}

// Sum of each of NV values over the warp's lanes (NV a power of two <= 32): halves of the set are exchanged rather
// than every value reduced separately (NV / 2 + ... + 1 shuffles, then 5 - log2(NV) for the rest). Afterwards every
// lane holds the full sum of value lane >> (5 - log2(NV)).
template <int NV>
__device__ __forceinline__ float warp_sum_many(float (&v)[NV], int lane) {
  int n = NV, o = 16;
#pragma unroll
  for (; n > 1; n >>= 1, o >>= 1) {
    const bool up = lane & o;
#pragma unroll
    for (int i = 0; i < n / 2; ++i) {
      const float send = up ? v[i] : v[i + n / 2];
      const float keep = up ? v[i + n / 2] : v[i];
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
    }
  }
  float r = v[0];
#pragma unroll
  for (; o > 0; o >>= 1) r += __shfl_xor_sync(0xffffffffu, r, o);
  return r;
}

template <int NV>
constexpr int log2i() {
  return NV <= 1 ? 0 : 1 + log2i<NV / 2>();
}

// Expert routing of one launch (ids == nullptr: a plain matmul).
struct Route {
  const int32_t* ids = nullptr;  // [slots], the expert of slot blockIdx.z
  int64_t n_experts = 0;
  int64_t expert_bytes = 0;  // bytes of one expert's W (affine: unused)
  int64_t x_div = 1;         // x row of slot z is z / x_div
  // Gated (matmul_experts_glu): W is the gate, w_up the up projection stacked the same way; a warp's two rows are
  // gate row n and up row n, and y[n] = act(gate . x) * (up . x).
  const uint8_t* w_up = nullptr;
  kern::ActOp act = kern::ActOp::Silu;
};

__device__ __forceinline__ float glu_act(kern::ActOp op, float g) {
  switch (op) {
    case kern::ActOp::GeluErf:
      return act_fn<kern::ActOp::GeluErf>(g, 0.0f);
    case kern::ActOp::GeluTanh:
      return act_fn<kern::ActOp::GeluTanh>(g, 0.0f);
    case kern::ActOp::Sigmoid:
      return act_fn<kern::ActOp::Sigmoid>(g, 0.0f);
    default:
      return act_fn<kern::ActOp::Silu>(g, 0.0f);
  }
}

template <typename Tx>
__device__ __forceinline__ void store_y(void* y, int64_t i, float v) {
  static_cast<Tx*>(y)[i] = from_f32<Tx>(v);
}
__device__ __forceinline__ void store_any(void* y, DType t, int64_t i, float v) {
  if (t == DType::F32)
    store_y<float>(y, i, v);
  else if (t == DType::F16)
    store_y<__half>(y, i, v);
  else
    store_y<__nv_bfloat16>(y, i, v);
}

// Named barrier for the `warps` warps of one row group (id 1..15; id 0 is __syncthreads).
__device__ __forceinline__ void group_sync(int id, int warps) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(warps * 32) : "memory");
}

// The kernel. MT: x rows per launch (1, 2, 4; rows past M are zero). ks: warps per row group (divides 16); sps: K
// steps per stage and S: slots per ring (the geometry of the rings; S = 2 below sm_90).
template <typename F, int MT>
__global__ void __launch_bounds__(kThreads, 1)
    qgemv_kernel(kern::QMatmulParams p, F fmt, Route route, int ks, int sps, int S, bool qx4) {
  constexpr int NV = kRows * MT;
  // Partial sums of a row group's warps, by round parity: the group's one barrier per round orders the reads of
  // round i before the writes of round i + 2.
  __shared__ float partial[2][kWarps][NV];
  extern __shared__ __align__(16) uint8_t smem[];
  const Geometry<F> geo{sps};
  const int region = geo.region(), stage_warp = geo.stage_warp();
  int roff[F::kRanges];  // where each staged range starts within a row's region
#pragma unroll
  for (int t = 0; t < F::kRanges; ++t) roff[t] = geo.offset(t);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int kslot = warp % ks, gslot = warp / ks, gpb = kWarps / ks;
  const int nsteps = static_cast<int>((p.K + kStep - 1) / kStep);
  const int nblk32 = static_cast<int>(p.K / 32);
  // The group's warps take contiguous step ranges (so a stage of sps steps is one contiguous range of each row).
  const int spw = (nsteps + ks - 1) / ks;
  const int kbeg = min(kslot * spw, nsteps), kend = min(kbeg + spw, nsteps);
  const int ipr = (kend - kbeg + sps - 1) / sps;  // stages per round of this warp
  const bool glu = route.w_up != nullptr;         // MT = 1: routed, or the gated fused form
  const int64_t rowgroups = glu ? p.N : (p.N + kRows - 1) / kRows;
  const int64_t brounds = (rowgroups + gpb - 1) / gpb;
  const int rounds = static_cast<int>((brounds - blockIdx.x + gridDim.x - 1) / gridDim.x);
  const int nitems = rounds * ipr;
  uint8_t* xq = smem;
  float4* xinfo = reinterpret_cast<float4*>(smem + static_cast<int64_t>(MT) * nsteps * kStep);
  uint8_t* ring = smem + static_cast<int64_t>(MT) * nsteps * (kStep + 32 * 16) + warp * S * stage_warp;
  const int64_t z = blockIdx.z;

  const uint8_t* wbase = static_cast<const uint8_t*>(p.w);
  const uint8_t* wbase_up = route.w_up;
  // Row r of row group rg, and the weights it lives in (rows past N repeat the last; never stored).
  auto row_of = [&](int64_t rg, int r) { return glu ? rg : min(rg * kRows + r, p.N - 1); };
  auto base_of = [&](int r) { return glu && r == 1 ? wbase_up : wbase; };
  auto group_of = [&](int round) { return (static_cast<int64_t>(round) * gridDim.x + blockIdx.x) * gpb + gslot; };
#if MLXN_HAS_BULK_COPY
  // One mbarrier per ring slot of the warp: lane 0 copies a stage's byte ranges with bulk copies (one instruction
  // per row and range) and the lanes wait on the slot's barrier. The slot's k-th use completes phase k: parity k & 1.
  __shared__ uint64_t bars[kWarps][kMaxSlots];
  mbar_init_ring(bars[warp], lane);
#endif
  // Staging cursor: the (round, stage) of the next item to stage, S - 1 items ahead of the compute loop, with its row
  // group and the rows' addresses (64-bit arithmetic once per round, not per stage).
  struct Cursor {
    int round = 0, j = 0;
    int64_t rg = 0;
    const uint8_t* row[kRows];
  };
  Cursor cur;
  auto cursor_round = [&](int round) {
    cur.round = round;
    cur.j = 0;
    cur.rg = group_of(round);
#pragma unroll
    for (int r = 0; r < kRows; ++r) cur.row[r] = base_of(r) + row_of(cur.rg, r) * p.row_bytes;
  };
  // The byte ranges of row r of row group rg (whose row addresses are rowp) over steps [step0, step0 + cnt).
  auto stage_ranges = [&](const uint8_t* const (&rowp)[kRows], int64_t rg, int r, int64_t step0, int cnt,
                          Range(&rr)[F::kRanges]) {
    if constexpr (F::kRanges == 1) {
      const int64_t off = step0 * F::kChunk;
      rr[0].src = rowp[r] + off;
      rr[0].bytes = min(static_cast<int64_t>(cnt) * F::kChunk, p.row_bytes - off);
    } else {
      Range last[F::kRanges];
      fmt.ranges(p, base_of(r), row_of(rg, r), step0, rr);
      fmt.ranges(p, base_of(r), row_of(rg, r), step0 + cnt - 1, last);
#pragma unroll
      for (int t = 0; t < F::kRanges; ++t) rr[t].bytes = (last[t].src + last[t].bytes) - rr[t].src;
    }
  };
  // Stages the cursor's item into ring slot `slot` and advances the cursor.
  auto stage = [&](int slot) {
    // The item's row group, steps and row addresses, taken before the cursor moves on (possibly to the next round).
    const int64_t rg = cur.rg;
    const int step0 = kbeg + cur.j * sps;
    const int cnt = min(sps, kend - step0);
    const uint8_t* rowp[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) rowp[r] = cur.row[r];
    if (++cur.j == ipr) cursor_round(cur.round + 1);
    uint8_t* dst0 = ring + slot * stage_warp;
#if MLXN_HAS_BULK_COPY
    if (lane != 0) return;
    uint64_t* bar = &bars[warp][slot];
    if (rg >= rowgroups) {
      mbar_arrive_expect(bar, 0);
      return;
    }
    // Each range from its 16-byte aligned start, rounded up to whole 16-byte pieces (the region has room for both).
    const uint8_t* src[kRows][F::kRanges];
    uint32_t len[kRows][F::kRanges];
    uint32_t total = 0;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      Range rr[F::kRanges];
      stage_ranges(rowp, rg, r, step0, cnt, rr);
#pragma unroll
      for (int t = 0; t < F::kRanges; ++t) {
        const uint32_t mis = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(rr[t].src)) & 15u;
        src[r][t] = rr[t].src - mis;
        len[r][t] = (mis + static_cast<uint32_t>(rr[t].bytes) + 15u) & ~15u;
        total += len[r][t];
      }
    }
    mbar_arrive_expect(bar, total);
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int t = 0; t < F::kRanges; ++t) bulk_copy(dst0 + r * region + roff[t], src[r][t], len[r][t], bar);
#else
    if (rg >= rowgroups) return;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      Range rr[F::kRanges];
      stage_ranges(rowp, rg, r, step0, cnt, rr);
#pragma unroll
      for (int t = 0; t < F::kRanges; ++t) {
        const uint8_t* a = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(rr[t].src) & ~uintptr_t{15});
        const uint8_t* end = rr[t].src + rr[t].bytes;
        uint8_t* dst = dst0 + r * region + roff[t];
        const int pieces = static_cast<int>((end - a + 15) / 16);
        for (int q = lane; q < pieces; q += 32) cp_async16(dst + 16 * q, a + 16 * q, true);
      }
    }
#endif
  };

  // The expert of this slot: ids come from an earlier kernel, so the weight prefetch waits for them.
  const bool routed = route.ids != nullptr;
  int64_t expert = 0;
  auto prefetch = [&] {
    cursor_round(0);
    for (int i = 0; i < S - 1; ++i) {
      if (i < nitems) stage(i);
#if !MLXN_HAS_BULK_COPY
      cp_async_commit();
#endif
    }
  };
  if (!routed) prefetch();
  pdl_wait();
  pdl_trigger();
  int rows = static_cast<int>(min(p.M, static_cast<int64_t>(MT)));
  const uint8_t* xsrc = static_cast<const uint8_t*>(p.x);
  int64_t ybase = 0;
  if (routed) {
    expert = route.ids[z];
    ybase = z * p.ldy;
    if (expert < 0 || expert >= route.n_experts) {
      // Out-of-range ids give zero rows (documented in matmul.h); the whole block takes this branch.
      for (int round = 0; round < rounds; ++round) {
        const int64_t rg = group_of(round);
        const int64_t n = glu ? rg : rg * kRows + lane;
        if (kslot == 0 && lane < (glu ? 1 : kRows) && rg < rowgroups && n < p.N) store_any(p.y, p.ty, ybase + n, 0.0f);
      }
      return;
    }
    wbase += expert * route.expert_bytes;
    if (glu) wbase_up += expert * route.expert_bytes;
    xsrc += (z / route.x_div) * p.ldx * static_cast<int64_t>(p.tx == DType::F32 ? 4 : 2);
    rows = 1;
    prefetch();
  }
  XNorm nm;
  if (p.norm != nullptr) {
    nm.w = p.norm;
    nm.tw = p.tn;
    nm.offset = p.norm_offset;
    nm.vec = reinterpret_cast<uintptr_t>(p.norm) % 16 == 0;
  }
  float ss[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) ss[m] = 0.0f;
  if constexpr (chunk_local<F>()) {
    if (qx4)
      quantize_x4<F, MT>(xsrc, p.tx, p.ldx, rows, p.K, nsteps, xq, xinfo, nm, ss);
    else
      quantize_x<F, MT>(xsrc, p.tx, p.ldx, rows, p.K, nsteps, xq, xinfo, nm, ss);
  } else {
    quantize_x<F, MT>(xsrc, p.tx, p.ldx, rows, p.K, nsteps, xq, xinfo, nm, ss);
  }
  // The fused RMSNorm: the block's sums of squares per row, in a fixed order (every block gets the same scale).
  float gain[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) gain[m] = 1.0f;
  if (p.norm != nullptr) {
    __shared__ float ssw[kWarps][MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float t = warp_sum(ss[m]);
      if (lane == 0) ssw[warp][m] = t;
    }
    __syncthreads();
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      float t = 0.0f;
      for (int w = 0; w < kWarps; ++w) t += ssw[w][m];
      gain[m] = rsqrtf(t / static_cast<float>(p.K) + p.eps);
    }
  }
  __syncthreads();
  // One output: the row's norm scale, then the residual, then y's dtype.
  auto emit = [&](int m, int64_t n, float v) {
#pragma unroll
    for (int i = 0; i < MT; ++i)
      if (i == m) v *= gain[i];
    const int64_t at = ybase + m * p.ldy + n;
    if (p.r != nullptr) v += load_any_f32(p.r, p.ty, at);
    store_any(p.y, p.ty, at, v);
  };
  // The gated output of row group rg (M = 1): both products scaled by the norm's gain before the activation.
  auto emit_glu = [&](int64_t rg, float gate, float up) {
    float v = glu_act(route.act, gate * gain[0]) * (up * gain[0]);
    if (p.r != nullptr) v += load_any_f32(p.r, p.ty, ybase + rg);
    store_any(p.y, p.ty, ybase + rg, v);
  };

  float acc[kRows][MT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.0f;

  int item = 0;
  int cslot = 0;       // ring slot of `item` (item % S, kept without a division)
  uint32_t cpar = 0;   // its barrier phase parity ((item / S) & 1)
  for (int round = 0; round < rounds; ++round) {
    const int64_t rg = group_of(round);
    uint32_t row_lo[kRows];  // low 32 bits of each row's address
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      row_lo[r] = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(base_of(r))) +
                  static_cast<uint32_t>(row_of(rg, r)) * static_cast<uint32_t>(p.row_bytes);
    for (int j = 0; j < ipr; ++j, ++item) {
      if (item + S - 1 < nitems) stage(cslot == 0 ? S - 1 : cslot - 1);  // slot (item + S - 1) % S
#if MLXN_HAS_BULK_COPY
      mbar_wait(&bars[warp][cslot], cpar);
#else
      cp_async_commit();
      cp_async_wait<1>();  // S = 2 below sm_90 (ring_plan); with more slots this only waits longer
      __syncwarp();
#endif
      const int step0 = kbeg + j * sps;
      const int cnt = min(sps, kend - step0);
      const uint8_t* slot = ring + cslot * stage_warp;
      if (rg < rowgroups) {
        // Where each row's stage starts within its staged copy (the copy began at the 16-byte piece below).
        const uint8_t* sbase[kRows][F::kRanges];
        Range first[kRows][F::kRanges];
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          if constexpr (F::kRanges == 1) {
            // Low address bits only (32-bit arithmetic).
            const uint32_t mis = (row_lo[r] + static_cast<uint32_t>(step0) * static_cast<uint32_t>(F::kChunk)) & 15u;
            sbase[r][0] = slot + r * region + mis;
          } else {
            fmt.ranges(p, base_of(r), row_of(rg, r), step0, first[r]);
#pragma unroll
            for (int t = 0; t < F::kRanges; ++t)
              sbase[r][t] = slot + r * region + roff[t] + (reinterpret_cast<uintptr_t>(first[r][t].src) & 15);
          }
        }
        for (int s = 0; s < cnt; ++s) {
          const int step = step0 + s;
          // 32-bit: K is bounded by the quantized x in shared memory (1.5 bytes per element).
          const int blk = step * 32 + lane;
          if (blk >= nblk32) continue;
          Dec dec[kRows];
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            Staged st;
            if constexpr (F::kRanges == 1) {
              st.p[0] = sbase[r][0] + s * F::kChunk;
            } else {
              Range rr[F::kRanges];
              fmt.ranges(p, base_of(r), row_of(rg, r), step, rr);
#pragma unroll
              for (int t = 0; t < F::kRanges; ++t) st.p[t] = sbase[r][t] + (rr[t].src - first[r][t].src);
            }
            st.step = step;
            dec[r] = fmt.decode(st, lane);
          }
#pragma unroll
          for (int m = 0; m < MT; ++m) {
            const uint8_t* xrow = xq + (m * nsteps + step) * kStep + lane * 16;
            const uint4 xa = *reinterpret_cast<const uint4*>(xrow);
            const uint4 xb = *reinterpret_cast<const uint4*>(xrow + kStep / 2);
            const float4 xi = xinfo[m * nsteps * 32 + blk];
#pragma unroll
            for (int r = 0; r < kRows; ++r) block_dot<F>(dec[r], xa, xb, xi, acc[r][m]);
          }
        }
      }
      __syncwarp();  // every lane is done with this slot before lane 0's next copies refill it
      if (++cslot == S) cslot = 0, cpar ^= 1u;
    }
    // End of the round: lanes, then (KS > 1) the group's warps in a fixed order.
    float v[NV];
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int m = 0; m < MT; ++m) v[r * MT + m] = acc[r][m], acc[r][m] = 0.0f;
    const float sum = warp_sum_many<NV>(v, lane);
    const int idx = lane >> (5 - log2i<NV>());
    const bool writer = (lane & ((32 >> log2i<NV>()) - 1)) == 0;
    if (ks == 1) {
      if (glu) {  // lanes 0-15 hold the gate's sum, 16-31 the up projection's
        const float up = __shfl_sync(0xffffffffu, sum, 16);
        if (lane == 0 && rg < rowgroups) emit_glu(rg, sum, up);
      } else {
        const int r = idx / MT, m = idx % MT;
        const int64_t n = rg * kRows + r;
        if (writer && rg < rowgroups && n < p.N && m < rows) emit(m, n, sum);
      }
    } else {
      float(&part)[kWarps][NV] = partial[round & 1];
      if (writer) part[warp][idx] = sum;
      group_sync(1 + gslot, ks);  // only this group's warps: the others run on
      if (kslot == 0 && lane < NV && rg < rowgroups) {
        float t = 0.0f;
        for (int k = 0; k < ks; ++k) t += part[warp + k][lane];
        if (glu) {
          const float up = __shfl_sync((1u << NV) - 1, t, 1);
          if (lane == 0) emit_glu(rg, t, up);
        } else {
          const int r = lane / MT, m = lane % MT;
          const int64_t n = rg * kRows + r;
          if (n < p.N && m < rows) emit(m, n, t);
        }
      }
    }
  }
#if !MLXN_HAS_BULK_COPY
  cp_async_wait<0>();
#endif
}

// ---- host side ----
// A device attribute of the current device, cached per device (the launch path asks on every call).
inline int cached_device_attr(cudaDeviceAttr attr, int (&cache)[16]) {
  int dev = 0;
  cudaGetDevice(&dev);
  if (dev < 0 || dev >= 16) dev = 0;
  if (cache[dev] == 0) {
    int v = 0;
    cudaDeviceGetAttribute(&v, attr, dev);
    cache[dev] = v > 0 ? v : 1;
  }
  return cache[dev];
}
inline int sm_count() {
  static int cache[16] = {};
  return cached_device_attr(cudaDevAttrMultiProcessorCount, cache);
}
// Bulk copies (the copy engine, sm_90+): rings of more than two slots.
inline bool bulk_copy_device() {
  static int cache[16] = {};
  return cached_device_attr(cudaDevAttrComputeCapabilityMajor, cache) >= 9;
}
inline int64_t smem_optin() {
  static int64_t cached = [] {
    int dev = 0, v = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    return static_cast<int64_t>(v);
  }();
  return cached;
}

struct Plan {
  int ks = 1;
  unsigned grid = 1;
};

// KS and the grid for N rows and nsteps K steps on `target` blocks (the SMs, or the SMs per expert slot). Modelled
// time: (rounds of the busiest block) x (steps per warp and round + the round's fixed cost), in hundredths of a step.
// With KS > 1 a round ends in partials through shared memory and one barrier of the group's warps (a named barrier:
// the other groups run on), and its stages are shorter; with KS = 1 it is a few shuffles. Measured (H200,
// MLXN_TUNE_QGEMV_KS, q4_0): KS = 2 loses wherever KS = 1 fills the SMs, by more than its rounds suggest (14336x4096:
// 11.35 us at KS = 1, 14.96 at KS = 2, 7 rounds of 2 steps against 4 of 4; 151936x4096: 101 vs 115 us), and ties
// KS = 1 and 4 at 1024x4096 (4.1-4.2 us): the modelled cost of a KS > 1 round is 1.5 steps. The smallest KS among
// equals (fewer partials).
// MLXN_TUNE_QGEMV_KS=k (1, 2, 4, 8, 16) forces KS = k where k <= nsteps: tuning runs only.
inline Plan plan(int64_t N, int64_t nsteps, int64_t target) {
  static const int forced = tune_knob("MLXN_TUNE_QGEMV_KS", 0);
  // Other values (not a power of two up to 16, or more than the steps) are ignored.
  const bool forced_ok =
      forced > 0 && forced <= kWarps && (forced & (forced - 1)) == 0 && (forced == 1 || forced <= nsteps);
  const int64_t rowgroups = (N + kRows - 1) / kRows;
  Plan best;
  int64_t best_t = -1;
  for (int ks = 1; ks <= kWarps; ks *= 2) {
    if (ks > 1 && ks > nsteps) break;
    if (forced_ok && ks != forced) continue;
    const int64_t gpb = kWarps / ks;
    const int64_t br = (rowgroups + gpb - 1) / gpb;
    const int64_t grid = std::max<int64_t>(1, std::min(br, target));
    const int64_t t = (br + grid - 1) / grid * (100 * ((nsteps + ks - 1) / ks) + (ks > 1 ? 150 : 10));
    if (best_t < 0 || t < best_t) best_t = t, best.ks = ks, best.grid = static_cast<unsigned>(grid);
  }
  return best;
}

inline int mt_for(int64_t M) { return M <= 1 ? 1 : M <= 2 ? 2 : 4; }

// Whether this kernel takes the call: M <= 4 and the quantized x plus the rings (two slots of one step) fit the SM's
// shared memory.
template <typename F>
bool fits(const kern::QMatmulParams& p, int64_t slots_m) {
  if (slots_m > 4 || p.K <= 0) return false;
  const int64_t nsteps = (p.K + kStep - 1) / kStep;
  // 2 KiB for the kernel's static shared memory (partial sums, barriers).
  return smem_bytes<F>(mt_for(slots_m), nsteps, 1, 2) + 2048 <= smem_optin();
}

// Ring geometry of a launch: the most K steps per stage (up to kMaxSps, no more than a warp's steps per round) whose
// two slots fit beside x within kStageBudget, then up to kMaxSlots slots (bulk copies only; the cp.async path waits
// with a fixed depth). MLXN_TUNE_QGEMV_SPS / MLXN_TUNE_QGEMV_SLOTS cap them: tuning runs only.
struct RingPlan {
  int sps = 1, slots = 2;
};
template <typename F>
RingPlan ring_plan(int mt, int64_t nsteps, int ks, int64_t static_bytes, bool bulk) {
  static const int cap_sps = tune_knob("MLXN_TUNE_QGEMV_SPS", kMaxSps);
  static const int cap_slots = tune_knob("MLXN_TUNE_QGEMV_SLOTS", kMaxSlots);
  const int64_t spw = (nsteps + ks - 1) / ks;
  auto fits_in = [&](int sps, int slots) {
    return Geometry<F>{sps}.ring_bytes(slots) <= kStageBudget &&
           smem_bytes<F>(mt, nsteps, sps, slots) + static_bytes <= smem_optin();
  };
  RingPlan r;
  for (int s = 2; s <= std::min(kMaxSps, cap_sps) && s <= spw && fits_in(s, 2); s *= 2) r.sps = s;
  while (bulk && r.slots < std::min(kMaxSlots, cap_slots) && fits_in(r.sps, r.slots + 1)) ++r.slots;
  return r;
}

template <typename F, int MT>
Status launch_mt(const kern::QMatmulParams& p, const F& fmt, const Route& route, int64_t slots, cudaStream_t stream) {
  const int64_t nsteps = (p.K + kStep - 1) / kStep;
  const int64_t target = std::max<int64_t>(1, sm_count() / std::max<int64_t>(1, slots));
  const Plan pl = plan(route.w_up != nullptr ? 2 * p.N : p.N, nsteps, target);  // gated: one row group per n
  if (slots > 65535) return unsupported("matmul", "more than 65535 expert slots in one launch");
  // The dynamic limit is the opt-in maximum less the kernel's static shared memory (a larger value is rejected and
  // leaves the 48 KiB default in place).
  static const int64_t static_bytes = [] {
    cudaFuncAttributes fa{};
    cudaFuncGetAttributes(&fa, qgemv_kernel<F, MT>);
    cudaFuncSetAttribute(qgemv_kernel<F, MT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem_optin() - static_cast<int64_t>(fa.sharedSizeBytes)));
    return static_cast<int64_t>(fa.sharedSizeBytes);
  }();
  const RingPlan rp = ring_plan<F>(MT, nsteps, pl.ks, static_bytes, bulk_copy_device());
  // Four threads per x block where that is one pass of the block's threads (K <= 4096 at M = 1): at K = 14336 the
  // four dependent passes lost to one thread per block (H200, q4_0 4096x14336: 13.34 vs 12.39 us; at 4096 columns
  // 11.35 vs 11.76 us for 14336x4096). MLXN_TUNE_QGEMV_QX4=0 turns it off: A/B runs only.
  static const bool qx4_on = tune_knob("MLXN_TUNE_QGEMV_QX4", 1) != 0;
  const bool qx4 = qx4_on && MT * nsteps * 32 * 4 <= kThreads;
  const int64_t smem = smem_bytes<F>(MT, nsteps, rp.sps, rp.slots);
  const dim3 grid(pl.grid, 1, static_cast<unsigned>(slots));
  return launch_status(launch_kernel_smem(qgemv_kernel<F, MT>, grid, dim3(kThreads), static_cast<size_t>(smem), stream,
                                          true, p, fmt, route, pl.ks, rp.sps, rp.slots, qx4),
                       "matmul");
}

// The fused forms (norm, residual, y's dtype not x's) run only in this kernel: MLXN_TUNE_QGEMV=0 does not move them.
inline bool fused(const kern::QMatmulParams& p) {
  return p.norm != nullptr || p.r != nullptr || p.ty != p.tx || p.glu;
}
inline Status unfit_fused(const kern::QMatmulParams& p) {
  return unsupported("matmul", "the fused norm / residual forms at M = ", p.M, ", K = ", p.K,
                     " need more shared memory than this device has");
}

// y = x W^T for M <= 4 (fits() must hold).
template <typename F>
Status launch(const kern::QMatmulParams& p, const F& fmt, cudaStream_t stream) {
  if (p.glu) {  // M = 1 (the op layer checks): the up rows follow the gate rows
    Route r;
    r.w_up = static_cast<const uint8_t*>(p.w) + p.N * p.row_bytes;
    r.act = p.act;
    return launch_mt<F, 1>(p, fmt, r, 1, stream);
  }
  const Route none;
  switch (mt_for(p.M)) {
    case 1:
      return launch_mt<F, 1>(p, fmt, none, 1, stream);
    case 2:
      return launch_mt<F, 2>(p, fmt, none, 1, stream);
    default:
      return launch_mt<F, 4>(p, fmt, none, 1, stream);
  }
}

// Expert-routed: slot z (of `slots`) multiplies x row z / route.x_div by expert ids[z] into y row z (p.ldy apart).
template <typename F>
Status launch_routed(const kern::QMatmulParams& p, const F& fmt, const Route& route, int64_t slots,
                     cudaStream_t stream) {
  return launch_mt<F, 1>(p, fmt, route, slots, stream);
}

}  // namespace mlxn::cuda::qgv

namespace mlxn::cuda::qgv {

// ---- expert-routed matmul with float weights: one warp per output row, 16-byte loads of W and x; gated
// (p.w_up set): the warp also takes the up projection's row and writes act(gate) * up ----
template <typename Tw, typename Tx>
__device__ __forceinline__ float dense_row_dot(const Tw* w, const Tx* x, int64_t K, int lane) {
  float acc = 0.0f;
  if (aligned16(w) && aligned16(x) && K % 8 == 0) {
#pragma unroll 4
    for (int64_t k = 8 * lane; k < K; k += 256) {
      float wv[8], xv[8];
      load8(w + k, wv);
      load8(x + k, xv);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc = fmaf(wv[i], xv[i], acc);
    }
  } else {
    for (int64_t k = lane; k < K; k += 32) acc = fmaf(to_f32(w[k]), to_f32(x[k]), acc);
  }
  return warp_sum(acc);
}

template <typename Tw, typename Tx>
__global__ void __launch_bounds__(256) dense_experts_kernel(kern::ExpertsParams p) {
  pdl_wait();
  pdl_trigger();
  const int lane = threadIdx.x & 31;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  const int64_t z = blockIdx.y;
  if (n >= p.N) return;
  Tx* y = static_cast<Tx*>(p.y) + z * p.N;
  const int64_t e = p.ids[z];
  if (e < 0 || e >= p.E) {
    if (lane == 0) y[n] = from_f32<Tx>(0.0f);
    return;
  }
  const int64_t off = (e * p.N + n) * p.K;
  const Tx* x = static_cast<const Tx*>(p.x) + (p.x_per_slot ? z : z / p.top_k) * p.ldx;
  float v = dense_row_dot(static_cast<const Tw*>(p.w) + off, x, p.K, lane);
  if (p.w_up != nullptr) v = glu_act(p.act, v) * dense_row_dot(static_cast<const Tw*>(p.w_up) + off, x, p.K, lane);
  if (lane == 0) y[n] = from_f32<Tx>(v);
}

}  // namespace mlxn::cuda::qgv

namespace mlxn::cuda {

// Which kernel takes a quantized matmul: the int8 kernel above for M <= 4 (where the quantized x fits shared memory),
// the tensor-core kernel of qmatmul.cuh for the rest. MLXN_TUNE_QGEMV=0 forces the tensor-core kernel (A/B runs).
inline bool qgemv_enabled() {
  static const bool on = tune_knob("MLXN_TUNE_QGEMV", 1) != 0;
  return on;
}

// 5 <= M <= 16 with a workspace from the op layer: the int8 tensor-core kernel of qgemm_i8.cuh (instantiated per
// weight format in qgemm_i8_<format>.cu). MLXN_TUNE_QGEMM_I8=0 (or MLXN_TUNE_QGEMV=0) gives the tensor-core kernel.
namespace qg8 {
template <typename F>
Status launch(const kern::QMatmulParams& p, const F& fmt, cudaStream_t stream);
}
inline bool qgemm_i8_takes(const kern::QMatmulParams& p) {
  static const bool on = tune_knob("MLXN_TUNE_QGEMM_I8", 1) != 0;
  return on && qgemv_enabled() && kern::qgemm_i8_takes_m(p) && p.workspace != nullptr;
}

template <DType T, typename Tx>
Status launch_qmatmul_ggml(const kern::QMatmulParams& p, const ExecContext& ctx) {
  if (p.M == 0 || p.N == 0) return Status::ok();
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  if (qgv::fused(p)) {
    if (!qgv::fits<qgv::Ggml<T>>(p, p.M)) return qgv::unfit_fused(p);
    return qgv::launch(p, qgv::Ggml<T>{}, stream);
  }
  if (qgemv_enabled() && qgv::fits<qgv::Ggml<T>>(p, p.M)) return qgv::launch(p, qgv::Ggml<T>{}, stream);
  if (qgemm_i8_takes(p)) return qg8::launch(p, qgv::Ggml<T>{}, stream);
  return qmm::launch_tiles<qmm::Ggml<T>, Tx>(p, qmm::Ggml<T>{}, stream);
}

template <int BITS, typename Tx>
Status launch_qmatmul_affine(const kern::QMatmulParams& p, const ExecContext& ctx) {
  if (p.M == 0 || p.N == 0) return Status::ok();
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  return dispatch_float(p.ts, "matmul", "scales", [&](auto tag) {
    using Ts = typename decltype(tag)::type;
    if (qgv::fused(p) && !qgv::fits<qgv::Affine<BITS, Ts>>(p, p.M)) return qgv::unfit_fused(p);
    if ((qgemv_enabled() || qgv::fused(p)) && qgv::fits<qgv::Affine<BITS, Ts>>(p, p.M)) {
      qgv::Affine<BITS, Ts> f;
      f.group = p.group;
      return qgv::launch(p, f, stream);
    }
    if (qgemm_i8_takes(p)) {
      qgv::Affine<BITS, Ts> f;
      f.group = p.group;
      return qg8::launch(p, f, stream);
    }
    qmm::Affine<BITS, Ts> f;
    f.group = p.group;
    return qmm::launch_tiles<qmm::Affine<BITS, Ts>, Tx>(p, f, stream);
  });
}

// Expert-routed matmul over GGML blocks: the int8 kernel with one grid z-slice per (token, slot).
template <DType T>
Status launch_experts_ggml(const kern::ExpertsParams& e, const ExecContext& ctx) {
  const int64_t slots = e.T * e.top_k;
  if (slots == 0 || e.N == 0) return Status::ok();
  kern::QMatmulParams p;
  p.x = e.x;
  p.w = e.w;
  p.y = e.y;
  p.tx = e.tx;
  p.ty = e.tx;
  p.tw = T;
  p.M = 1;
  p.N = e.N;
  p.K = e.K;
  p.ldx = e.ldx;
  p.ldy = e.N;
  p.row_bytes = e.row_bytes;
  qgv::Route r;
  r.ids = e.ids;
  r.n_experts = e.E;
  r.expert_bytes = e.N * e.row_bytes;
  r.x_div = e.x_per_slot ? 1 : e.top_k;
  r.w_up = static_cast<const uint8_t*>(e.w_up);
  r.act = e.act;
  if (!qgv::fits<qgv::Ggml<T>>(p, 1))
    return unsupported("matmul_experts", "K = ", e.K, " needs more shared memory than this device has");
  return qgv::launch_routed(p, qgv::Ggml<T>{}, r, slots, static_cast<cudaStream_t>(ctx.stream));
}

template <typename Tw, typename Tx>
Status launch_experts_dense(const kern::ExpertsParams& e, const ExecContext& ctx) {
  const int64_t slots = e.T * e.top_k;
  if (slots == 0 || e.N == 0) return Status::ok();
  if (slots > 65535) return unsupported("matmul_experts", "more than 65535 slots in one launch");
  const dim3 grid(static_cast<unsigned>((e.N + 7) / 8), static_cast<unsigned>(slots));
  return launch_status(
      launch_kernel(qgv::dense_experts_kernel<Tw, Tx>, grid, dim3(256), static_cast<cudaStream_t>(ctx.stream), true, e),
      "matmul_experts");
}

}  // namespace mlxn::cuda
