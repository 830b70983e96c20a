// y = x W^T for 5 <= M <= 16 rows of x, W in a GGML block format or MLX affine, on the int8 tensor cores
// (mma.sync m16n8k32 s8), with the accuracy contract of the M <= 4 dp4a kernel of qgemv.cuh
// (include/mlxn/ops/matmul.h).
//
// Why: the tensor-core kernel of qmatmul.cuh forms every weight in f16 (about 25 instructions per four weight pairs)
// and is issue bound; at m = 8 it took 1.4-2.4x the m = 1 time (H200, 14336 x 4096). Here a weight block stays in its
// integer codes: one mma multiplies 16 rows x 32 k of codes by 32 k x 8 rows of int8 x, and the block's scale and
// offset are applied to the int32 result, as the dp4a kernel does per lane.
//
// Two launches (both with programmatic dependent launch, fixed grids: graph capture works):
// 1. quantize_x_kernel: x [M, K] (f32 / f16 / bf16) to int8 codes per 32-element block exactly as qgv::quantize_x
//    does (d = max|x| / 127, codes round-to-nearest-even of x * (127 / max|x|), the same f32 expressions), into the
//    workspace the op layer allocates from the session's scratch (kern::qgemm_i8_workspace_bytes):
//      codes [MP][K] int8, MP = 8 (M <= 8) or 16 rows (rows >= M are zero), each 32-block in F::pos() order;
//      info  [MP][K / 32] float4 {d, d * sum q, d * sum q(pos 0..15), d * sum q(pos 16..31)}.
//    One warp per (row, block): lane l takes element l (coalesced loads), max and sums by warp reductions.
// 2. qgemm_i8_kernel: a block of kWarps warps owns a tile of 16 rows of W (blockIdx.x) and all of K; warp w takes the
//    256-element steps w, w + kWarps, ... (eight 32-element blocks each) and the warps' partial tiles are added in
//    shared memory in a fixed order at the end (deterministic, no atomics). Per 32-element block kb and n-tile of 8 x
//    rows, one mma.sync.m16n8k32 (A = codes of the 16 weight rows, unsigned or signed per format; B = x codes), then
//      acc[row][col] += (d_w[row] d_x[col]) C[row][col] + m_w[row] (d_x sum)[col]        (w = d_w q + m_w).
//
// Fragment layout of mma.m16n8k32 with 8-bit A / B (PTX ISA, "Matrix Fragments for mma.m16n8k32"), lane = 4 g + tq:
//   A (row major 16 x 32), four .b32 of four bytes each: a0 = row g, k 4tq..4tq+3; a1 = row g + 8, k 4tq..4tq+3;
//                                                          a2 = row g, k 16+4tq..; a3 = row g + 8, k 16+4tq..
//   B (col major 32 x 8), two .b32: b0 = k 4tq..4tq+3 of column g; b1 = k 16+4tq.. of column g.
//   C / D (16 x 8 int32): c0 = (g, 2tq), c1 = (g, 2tq + 1), c2 = (g + 8, 2tq), c3 = (g + 8, 2tq + 1).
// m16n8k16 (8-bit): a0 = row g, k 4tq..; a1 = row g + 8, k 4tq..; b0 = k 4tq.. of column g; C as above.
// "k" here is the position of a code within its 32-block in F::pos() order (the decoders' output order; natural
// order for the GGML formats); x's codes are stored in the same order, so the products pair up.
//
// Weights, two paths:
// - direct (Q4_0, Q4_1, Q8_0, IQ4_NL): a lane loads exactly its fragment bytes from global memory: for the nibble
//   formats (byte e holds elements e and e + 16) one 32-bit word, bytes 4tq..4tq+3 of the block's codes, gives a0
//   (low nibbles) and a2 (high nibbles) of row g; a second word of row g + 8 gives a1 / a3. Q8_0: two words per row.
//   Per lane, block and row: 2 (Q4_1: 1) word loads as 16-bit pairs (GGML blocks are 2-byte aligned) + the scale;
//   about 12 instructions of decode per block for both rows, then per n-tile 4 x-word loads (b0, b1; L1 / L2
//   resident), 2 info loads, 1 mma, 4 cvt + 4 mul + 4 fma (+ 4 fma for the offset). About 30 + 20 NT instructions
//   per lane per 32-element block of 16 rows (512 weights): ~2.5 per 32 weights at M = 8, under the ~40 the dp4a
//   kernel spends on 32 weights at M = 1.
// - generic (every other format): per step, the warp's lanes decode the step's 16 x 8 blocks with the I8<T> decoders
//   of qgemv.cuh (4 blocks per lane, straight from global memory) into a per-warp shared-memory tile, then read the
//   fragments from there (padded rows: conflict-free). The formats with a scale per 16 elements (Q2_K, Q3_K, Q6_K)
//   run two m16n8k16 per block instead of one m16n8k32.
// Weights are read with plain (read-only) global loads, unrolled over the step's eight blocks for bytes in flight; NOT
// staged through shared memory with cp.async / bulk copies yet (see the report of branch s4-mma).
#pragma once

#include "cuda/qgemv.cuh"

namespace mlxn::cuda::qg8 {

using qgv::Dec;
using qgv::I8;
using qgv::Range;
using qgv::Staged;
using qmm::f16_bits;

inline constexpr int kWarps = 8, kThreads = kWarps * 32;
inline constexpr int kTileRows = 16;   // rows of W per block (one m16 tile)
inline constexpr int kStepBlocks = 8;  // 32-element blocks per warp step
// Generic path, one warp's shared tile: codes [16 rows][8 blocks][8 words] with rows padded to 68 words (row g of
// lane 4 g + tq reads word 68 g + 8 b + tq: banks 4 g + tq, distinct), then {d0, d1, m0, m1} per (row, block),
// rows padded to 9 float4.
inline constexpr int kRowWords = kStepBlocks * 8 + 4;
inline constexpr int kCodeBytes = kTileRows * kRowWords * 4;
inline constexpr int kInfoStride = kStepBlocks + 1;
inline constexpr int kWarpSmem = kCodeBytes + kTileRows * kInfoStride * 16;

// ---- 16-bit-aligned loads of read-only global memory ----
__device__ __forceinline__ uint32_t ldg16(const uint8_t* p) { return __ldg(reinterpret_cast<const uint16_t*>(p)); }
__device__ __forceinline__ uint32_t ldg32_a2(const uint8_t* p) { return ldg16(p) | ldg16(p + 2) << 16; }
__device__ __forceinline__ uint32_t ldg32(const uint8_t* p) { return __ldg(reinterpret_cast<const uint32_t*>(p)); }

// ---- direct decoders: a lane's A-fragment words of one row of block kb ----
// load() issues the global loads of the lane's bytes into kRaw words (no arithmetic on them, so the loads of a whole
// step go out before the first one is used); decode() forms lo = the code bytes at positions 4tq..4tq+3, hi =
// positions 16+4tq.., and d, m (w = d q + m).
template <DType T>
struct Direct {
  static constexpr bool kOn = false;
  static constexpr int kRaw = 1;
};
template <>
struct Direct<DType::Q4_0> {
  static constexpr bool kOn = true;
  static constexpr int kRaw = 3;
  __device__ static void load(const uint8_t* row, int64_t kb, int tq, uint32_t (&r)[kRaw]) {
    const uint8_t* b = row + kb * 18;
    r[0] = ldg16(b + 2 + 4 * tq), r[1] = ldg16(b + 4 + 4 * tq), r[2] = ldg16(b);
  }
  __device__ static void decode(const uint32_t (&r)[kRaw], uint32_t& lo, uint32_t& hi, float& d, float& m) {
    const uint32_t w = r[0] | r[1] << 16;
    lo = w & qmm::kLow4, hi = (w >> 4) & qmm::kLow4;
    d = f16_bits(r[2]);
    m = -8.0f * d;
  }
};
template <>
struct Direct<DType::Q4_1> {
  static constexpr bool kOn = true;
  static constexpr int kRaw = 2;
  __device__ static void load(const uint8_t* row, int64_t kb, int tq, uint32_t (&r)[kRaw]) {
    const uint8_t* b = row + kb * 20;  // 20-byte blocks: rows and blocks 4-byte aligned
    r[0] = ldg32(b + 4 + 4 * tq), r[1] = ldg32(b);
  }
  __device__ static void decode(const uint32_t (&r)[kRaw], uint32_t& lo, uint32_t& hi, float& d, float& m) {
    lo = r[0] & qmm::kLow4, hi = (r[0] >> 4) & qmm::kLow4;
    d = f16_bits(r[1]);
    m = f16_bits(r[1] >> 16);
  }
};
template <>
struct Direct<DType::Q8_0> {
  static constexpr bool kOn = true;
  static constexpr int kRaw = 5;
  __device__ static void load(const uint8_t* row, int64_t kb, int tq, uint32_t (&r)[kRaw]) {
    const uint8_t* b = row + kb * 34;
    r[0] = ldg16(b + 2 + 4 * tq), r[1] = ldg16(b + 4 + 4 * tq);
    r[2] = ldg16(b + 18 + 4 * tq), r[3] = ldg16(b + 20 + 4 * tq);
    r[4] = ldg16(b);
  }
  __device__ static void decode(const uint32_t (&r)[kRaw], uint32_t& lo, uint32_t& hi, float& d, float& m) {
    lo = r[0] | r[1] << 16, hi = r[2] | r[3] << 16;
    d = f16_bits(r[4]);
    m = 0.0f;
  }
};
template <>
struct Direct<DType::IQ4_NL> {
  static constexpr bool kOn = true;
  static constexpr int kRaw = 3;
  __device__ static void load(const uint8_t* row, int64_t kb, int tq, uint32_t (&r)[kRaw]) {
    Direct<DType::Q4_0>::load(row, kb, tq, r);  // Q4_0's layout
  }
  __device__ static void decode(const uint32_t (&r)[kRaw], uint32_t& lo, uint32_t& hi, float& d, float& m) {
    const uint32_t w = r[0] | r[1] << 16;
    lo = qgv::STable16<quant::kIQ4NLValues>::map(w & qmm::kLow4);
    hi = qgv::STable16<quant::kIQ4NLValues>::map((w >> 4) & qmm::kLow4);
    d = f16_bits(r[2]);
    m = 0.0f;
  }
};

// Which path a weight type takes (Ggml<T> direct where Direct<T> exists; affine always generic).
template <typename F>
struct PathOf {
  static constexpr bool kDirect = false;
  static constexpr DType kType = DType::F32;
};
template <DType T>
struct PathOf<qgv::Ggml<T>> {
  static constexpr bool kDirect = Direct<T>::kOn;
  static constexpr DType kType = T;
};

// ---- integer mma ----
// C = A B with A unsigned (u8: codes 0..255, the unsigned formats and 8-bit affine) or signed, B signed (x codes).
template <bool kSignedA>
__device__ __forceinline__ void mma_k32(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                        uint32_t b1) {
  if constexpr (kSignedA) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%10, %10, %10, %10};\n"
        : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(0));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%10, %10, %10, %10};\n"
        : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(0));
  }
}
template <bool kSignedA>
__device__ __forceinline__ void mma_k16(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t b0) {
  if constexpr (kSignedA) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%7, %7, %7, %7};\n"
                 : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
                 : "r"(a0), "r"(a1), "r"(b0), "r"(0));
  } else {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%7, %7, %7, %7};\n"
                 : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
                 : "r"(a0), "r"(a1), "r"(b0), "r"(0));
  }
}

// ---- 1. x quantization into the workspace ----
template <typename F>
__global__ void __launch_bounds__(256) quantize_x_kernel(kern::QMatmulParams p, int mp, uint8_t* ws) {
  pdl_wait();  // x may come from the previous kernel; the previous matmul may still read the workspace
  pdl_trigger();
  const int lane = threadIdx.x & 31;
  const int64_t nblk = p.K / 32;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  if (item >= mp * nblk) return;
  const int64_t m = item / nblk, b = item % nblk;
  float v = 0.0f;
  if (m < p.M) {
    const int64_t i = m * p.ldx + 32 * b + lane;
    if (p.tx == DType::F32)
      v = static_cast<const float*>(p.x)[i];
    else if (p.tx == DType::F16)
      v = __half2float(static_cast<const __half*>(p.x)[i]);
    else
      v = __bfloat162float(static_cast<const __nv_bfloat16*>(p.x)[i]);
  }
  // The same f32 expressions as qgv::quantize_x (max is exact in any order), so the codes are the dp4a kernel's.
  float amax = fabsf(v);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float d = amax / 127.0f;
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  const int q = __float2int_rn(v * id);
  const int ps = F::pos(lane);
  ws[m * nblk * 32 + 32 * b + ps] = static_cast<uint8_t>(q & 0xFF);
  const int s_lo = __reduce_add_sync(0xffffffffu, ps < 16 ? q : 0);
  const int s_hi = __reduce_add_sync(0xffffffffu, ps < 16 ? 0 : q);
  if (lane == 0) {
    float4* info = reinterpret_cast<float4*>(ws + mp * nblk * 32);
    info[item] =
        make_float4(d, d * static_cast<float>(s_lo + s_hi), d * static_cast<float>(s_lo), d * static_cast<float>(s_hi));
  }
}

// ---- 2. the matmul ----
// Accumulates one n-tile's mma result into acc (c: rows g / g + 8 x cols 2tq / 2tq + 1; dw / mw per row g, g + 8;
// xi per col).
template <bool kHasMin>
__device__ __forceinline__ void scale_acc(float (&acc)[4], const int (&c)[4], const float (&dw)[2],
                                          const float (&mw)[2], const float4 (&xi)[2]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = i >> 1, col = i & 1;
    acc[i] = fmaf(dw[r] * xi[col].x, static_cast<float>(c[i]), acc[i]);
    if constexpr (kHasMin) acc[i] = fmaf(mw[r], xi[col].y, acc[i]);
  }
}

template <typename F, int NT>
__global__ void __launch_bounds__(kThreads) qgemm_i8_kernel(kern::QMatmulParams p, F fmt, const uint8_t* ws) {
  using Path = PathOf<F>;
  constexpr bool kSigned = F::kSigned, kHasMin = F::kHasMin;
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[kWarps][NT * 4][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int64_t nblk = p.K / 32;
  const int64_t nsteps = (nblk + kStepBlocks - 1) / kStepBlocks;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTileRows;
  const int mp = NT * 8;
  const uint8_t* wbase = static_cast<const uint8_t*>(p.w);
  // Rows past N repeat the last row (computed, never stored).
  const int64_t r0 = min(n0 + g, p.N - 1), r1 = min(n0 + g + 8, p.N - 1);
  const uint8_t* xcodes = ws;
  const float4* xinfo = reinterpret_cast<const float4*>(ws + mp * nblk * 32);

  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.0f;

  // x fragments and infos of n-tile t, block kb.
  auto xfrag = [&](int t, int64_t kb, uint32_t& b0, uint32_t& b1, float4(&xi)[2]) {
    const uint8_t* xr = xcodes + (static_cast<int64_t>(t * 8 + g) * nblk + kb) * 32;
    b0 = *reinterpret_cast<const uint32_t*>(xr + 4 * tq);
    b1 = *reinterpret_cast<const uint32_t*>(xr + 16 + 4 * tq);
    xi[0] = xinfo[static_cast<int64_t>(t * 8 + 2 * tq) * nblk + kb];
    xi[1] = xinfo[static_cast<int64_t>(t * 8 + 2 * tq + 1) * nblk + kb];
  };

  if constexpr (Path::kDirect) {
    using D = Direct<Path::kType>;
    const uint8_t* row0 = wbase + r0 * p.row_bytes;
    const uint8_t* row1 = wbase + r1 * p.row_bytes;
    // The raw words of one step: every load of the step is issued before the first is used (predicated past K).
    uint32_t raw[kStepBlocks][2][D::kRaw];
    auto load = [&](int64_t step) {
#pragma unroll
      for (int i = 0; i < kStepBlocks; ++i) {
        const int64_t kb = step * kStepBlocks + i;
        if (kb < nblk) {
          D::load(row0, kb, tq, raw[i][0]);
          D::load(row1, kb, tq, raw[i][1]);
        } else {
#pragma unroll
          for (int j = 0; j < D::kRaw; ++j) raw[i][0][j] = raw[i][1][j] = 0;
        }
      }
    };
    // Weights are constants: the first step's loads go out before waiting for the previous kernels (safe even if W
    // was written by the op before this one: quantize_x_kernel lets this kernel start only after its own wait).
    int64_t step = warp;
    if (step < nsteps) load(step);
    pdl_wait();  // the workspace is written by quantize_x_kernel
    pdl_trigger();
    for (bool first = true; step < nsteps; step += kWarps, first = false) {
      if (!first) load(step);
#pragma unroll
      for (int i = 0; i < kStepBlocks; ++i) {
        const int64_t kb = step * kStepBlocks + i;
        if (kb >= nblk) break;
        uint32_t a0, a1, a2, a3;
        float dw[2], mw[2];
        D::decode(raw[i][0], a0, a2, dw[0], mw[0]);
        D::decode(raw[i][1], a1, a3, dw[1], mw[1]);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          uint32_t b0, b1;
          float4 xi[2];
          xfrag(t, kb, b0, b1, xi);
          int c[4];
          mma_k32<kSigned>(c, a0, a1, a2, a3, b0, b1);
          scale_acc<kHasMin>(acc[t], c, dw, mw, xi);
        }
      }
    }
  } else {
    pdl_wait();  // the workspace is written by quantize_x_kernel
    pdl_trigger();
    uint32_t* codes = reinterpret_cast<uint32_t*>(smem + warp * kWarpSmem);
    float4* sinfo = reinterpret_cast<float4*>(smem + warp * kWarpSmem + kCodeBytes);
    for (int64_t step = warp; step < nsteps; step += kWarps) {
      // Decode: item j * 32 + lane is (row (j * 32 + lane) / 8, block (j * 32 + lane) % 8) of the step.
#pragma unroll
      for (int j = 0; j < kTileRows * kStepBlocks / 32; ++j) {
        const int it = j * 32 + lane, r = it / kStepBlocks, bl = it % kStepBlocks;
        const int64_t kb = step * kStepBlocks + bl;
        if (kb >= nblk) continue;
        const int64_t n = min(n0 + r, p.N - 1);
        // The decoders address block kb as lane kb % 32 of the 1024-element step kb / 32 (qgv's layout).
        Range rr[F::kRanges];
        fmt.ranges(p, wbase, n, kb / 32, rr);
        Staged st;
#pragma unroll
        for (int t = 0; t < F::kRanges; ++t) st.p[t] = rr[t].src;
        st.step = kb / 32;
        const Dec dec = fmt.decode(st, static_cast<int>(kb % 32));
        uint4* dst = reinterpret_cast<uint4*>(codes + r * kRowWords + bl * 8);
        dst[0] = make_uint4(dec.q[0], dec.q[1], dec.q[2], dec.q[3]);
        dst[1] = make_uint4(dec.q[4], dec.q[5], dec.q[6], dec.q[7]);
        sinfo[r * kInfoStride + bl] = F::kSplit16 ? make_float4(dec.d[0], dec.d[1], dec.m[0], dec.m[1])
                                                  : make_float4(dec.d[0], dec.d[0], dec.m[0], dec.m[0]);
      }
      __syncwarp();
#pragma unroll 2
      for (int bl = 0; bl < kStepBlocks; ++bl) {
        const int64_t kb = step * kStepBlocks + bl;
        if (kb >= nblk) break;
        const uint32_t a0 = codes[g * kRowWords + bl * 8 + tq];
        const uint32_t a1 = codes[(g + 8) * kRowWords + bl * 8 + tq];
        const uint32_t a2 = codes[g * kRowWords + bl * 8 + 4 + tq];
        const uint32_t a3 = codes[(g + 8) * kRowWords + bl * 8 + 4 + tq];
        const float4 i0 = sinfo[g * kInfoStride + bl], i1 = sinfo[(g + 8) * kInfoStride + bl];
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          uint32_t b0, b1;
          float4 xi[2];
          xfrag(t, kb, b0, b1, xi);
          if constexpr (F::kSplit16) {
            // Scale per 16 positions: one m16n8k16 per half.
            int lo[4], hi[4];
            mma_k16<kSigned>(lo, a0, a1, b0);
            mma_k16<kSigned>(hi, a2, a3, b1);
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              const float4& ir = (i >> 1) ? i1 : i0;
              const float4& xc = xi[i & 1];
              const float t2 = fmaf(ir.x, static_cast<float>(lo[i]), ir.y * static_cast<float>(hi[i]));
              acc[t][i] = fmaf(xc.x, t2, acc[t][i]);
              acc[t][i] = fmaf(ir.z, xc.z, acc[t][i]);
              acc[t][i] = fmaf(ir.w, xc.w, acc[t][i]);
            }
          } else {
            int c[4];
            mma_k32<kSigned>(c, a0, a1, a2, a3, b0, b1);
            const float dw[2] = {i0.x, i1.x}, mw[2] = {i0.z, i1.z};
            scale_acc<kHasMin>(acc[t], c, dw, mw, xi);
          }
        }
      }
      __syncwarp();  // the tile is rewritten by the next step's decode
    }
  }

  // The warps' partial tiles, added in warp order by the first warp.
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) red[warp][t * 4 + i][lane] = acc[t][i];
  __syncthreads();
  if (warp != 0) return;
  const int rows = static_cast<int>(min(p.M, static_cast<int64_t>(mp)));
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float v = 0.0f;
      for (int w = 0; w < kWarps; ++w) v += red[w][t * 4 + i][lane];
      const int64_t n = n0 + g + 8 * (i >> 1);
      const int m = t * 8 + 2 * tq + (i & 1);
      if (n < p.N && m < rows) qgv::store_any(p.y, p.tx, m * p.ldy + n, v);
    }
}

// ---- host side ----
template <typename F>
constexpr int smem_bytes() {
  return PathOf<F>::kDirect ? 0 : kWarps * kWarpSmem;
}

template <typename F, int NT>
Status launch_nt(const kern::QMatmulParams& p, const F& fmt, cudaStream_t stream) {
  const int64_t nblk = p.K / 32, mp = NT * 8;
  uint8_t* ws = static_cast<uint8_t*>(p.workspace);
  const unsigned qgrid = static_cast<unsigned>((mp * nblk + 7) / 8);
  MLXN_TRY(launch_status(
      launch_kernel(quantize_x_kernel<F>, dim3(qgrid), dim3(256), stream, true, p, static_cast<int>(mp), ws),
      "matmul"));
  constexpr int smem = smem_bytes<F>();
  if constexpr (smem > 48 * 1024) {
    static const bool opted = [] {
      cudaFuncSetAttribute(qgemm_i8_kernel<F, NT>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      return true;
    }();
    (void)opted;
  }
  const unsigned grid = static_cast<unsigned>((p.N + kTileRows - 1) / kTileRows);
  return launch_status(launch_kernel_smem(qgemm_i8_kernel<F, NT>, dim3(grid), dim3(kThreads), static_cast<size_t>(smem),
                                          stream, true, p, fmt, static_cast<const uint8_t*>(ws)),
                       "matmul");
}

// y = x W^T for 5 <= M <= 16 (qgemm_i8_takes() must hold).
template <typename F>
Status launch(const kern::QMatmulParams& p, const F& fmt, cudaStream_t stream) {
  if (p.workspace_bytes < kern::qgemm_i8_workspace_bytes(p.M, p.K))
    return error(StatusCode::Internal, "matmul", "int8 workspace of ", p.workspace_bytes, " bytes, ",
                 kern::qgemm_i8_workspace_bytes(p.M, p.K), " needed");
  if (p.N > int64_t{kTileRows} * 0x7FFFFFFF) return unsupported("matmul", "N = ", p.N, " too large");
  if (p.M <= 8) return launch_nt<F, 1>(p, fmt, stream);
  return launch_nt<F, 2>(p, fmt, stream);
}

}  // namespace mlxn::cuda::qg8
