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
//      codes [K / 32][MP][32] int8, MP = 8 (M <= 8) or 16 rows (rows >= M are zero), each block in F::pos() order;
//      info  [K / 32][MP] float4 {d, d * sum q, d * sum q(pos 0..15), d * sum q(pos 16..31)}.
//    Block-major, so the 8 x rows of an n-tile's fragments for one block are 256 contiguous bytes (2 cache lines
//    per fragment load rather than 8) and their infos 128 bytes.
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
// Weights: the GGML formats stream through a per-warp shared-memory ring of kStages slots (one 256-element step of
// the tile's 16 rows per slot): on sm_90 lanes 0-15 each issue one bulk copy (cp.async.bulk, an mbarrier per slot
// counts the bytes), below sm_90 16-byte cp.async. Two steps are in flight while one is used, the first ones issued
// before pdl_wait(). Direct loads of row-strided fragments from global memory would touch 8 cache lines per warp
// load (8 L1 wavefronts for 16 bytes of weights per row): the L1 would bound the kernel at a fraction of DRAM speed.
// MLX affine (three byte ranges) is decoded straight from global memory (not staged: a gap to close).
// Two ways to form the A fragments from the staged bytes:
// - direct (Q4_0, Q4_1, Q8_0, IQ4_NL): a lane loads exactly its fragment bytes: for the nibble
//   formats (byte e holds elements e and e + 16) one 32-bit word, bytes 4tq..4tq+3 of the block's codes, gives a0
//   (low nibbles) and a2 (high nibbles) of row g; a second word of row g + 8 gives a1 / a3. Q8_0: two words per row.
//   Per lane and block (PTX of Q4_0, M <= 8): 6 shared 16-bit loads (codes and scale of rows g and g + 8: GGML
//   blocks are 2-byte aligned), ~8 integer ops to form a0..a3, 2 cvt for the scales; per n-tile 2 x-word loads and 2
//   float4 info loads (L1 / L2 resident), 1 mma, 4 cvt + 4 mul + 8 fma: about 40 instructions per lane per mma of
//   16 rows x 32 k (512 weights), 0.08 warp instructions per weight (the dp4a kernel at M = 1: ~0.14); each further
//   n-tile (M > 8) adds ~22. Plus per step (8 blocks) ~25 for the bulk copies and the ring.
// - generic (every other format): per step, the warp's lanes decode the step's 16 x 8 blocks with the I8<T> decoders
//   of qgemv.cuh (4 blocks per lane, from the staged copy) into a per-warp shared-memory tile, then read the
//   fragments from there (padded rows: conflict-free). The formats with a scale per 16 elements (Q2_K, Q3_K, Q6_K)
//   run two m16n8k16 per block instead of one m16n8k32.
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

using qmm::ld16;
using qmm::ld32;

// ---- direct decoders: a lane's A-fragment words of one row of block kb (row: the row's staged step) ----
// load() reads the lane's bytes into kRaw words (GGML blocks are 2-byte aligned: 16-bit loads); decode() forms
// lo = the code bytes at positions 4tq..4tq+3, hi = positions 16+4tq.., and d, m (w = d q + m).
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
    r[0] = ld16(b + 2 + 4 * tq), r[1] = ld16(b + 4 + 4 * tq), r[2] = ld16(b);
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
    r[0] = ld32(b + 4 + 4 * tq), r[1] = ld32(b);
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
    r[0] = ld16(b + 2 + 4 * tq), r[1] = ld16(b + 4 + 4 * tq);
    r[2] = ld16(b + 18 + 4 * tq), r[3] = ld16(b + 20 + 4 * tq);
    r[4] = ld16(b);
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
  const int64_t m = item % mp, b = item / mp;  // item = b mp + m: the layout below
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
  ws[item * 32 + ps] = static_cast<uint8_t>(q & 0xFF);
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

// Staging of GGML weights (one byte range per row): a warp step of row n is the bytes of its 8 blocks (Q*_0 / Q*_1 /
// IQ4_NL / MXFP4) or of its one 256-element super-block (K formats), copied from the 16-byte aligned address below
// its start in whole 16-byte pieces (rows are only 2-byte aligned), plus 16 bytes of slack for the decoders' word
// loads past the end.
template <typename F>
constexpr int stage_chunk() {
  if constexpr (F::kRanges == 1)
    return kStepBlocks * 32 / F::kSpan * F::kBytes;
  else
    return 0;
}
template <typename F>
struct Stage {
  static constexpr bool kOn = F::kRanges == 1;
  static constexpr int kChunk = stage_chunk<F>();
  static constexpr int kRowStride = (kChunk + 30) / 16 * 16 + 16;
  static constexpr int kStageBytes = kTileRows * kRowStride;
  // Ring slots per warp: three (two steps in flight while one is used) where the block's rings fit 72 KB, so that
  // three blocks (24 warps) share an SM (Q4_0: 67.6 KB); else two (Q8_0: 77.8 KB, two blocks per SM).
  static constexpr int kStages = kOn && 3 * kWarps * kStageBytes > 72 * 1024 ? 2 : 3;
};

template <typename F>
constexpr int warp_smem() {
  return (Stage<F>::kOn ? Stage<F>::kStages * Stage<F>::kStageBytes : 0) + (PathOf<F>::kDirect ? 0 : kWarpSmem);
}

template <typename F, int NT>
__global__ void __launch_bounds__(kThreads) qgemm_i8_kernel(kern::QMatmulParams p, F fmt, const uint8_t* ws) {
  using Path = PathOf<F>;
  using St = Stage<F>;
  constexpr bool kSigned = F::kSigned, kHasMin = F::kHasMin;
  constexpr int S = St::kStages;
  extern __shared__ __align__(16) uint8_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int64_t nblk = p.K / 32;
  const int64_t nsteps = (nblk + kStepBlocks - 1) / kStepBlocks;
  const int64_t nitems = warp < nsteps ? (nsteps - warp + kWarps - 1) / kWarps : 0;  // steps of this warp
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTileRows;
  const int mp = NT * 8;
  const uint8_t* wbase = static_cast<const uint8_t*>(p.w);
  // Rows past N repeat the last row (computed, never stored).
  auto row_ptr = [&](int r) { return wbase + min(n0 + r, p.N - 1) * p.row_bytes; };
  const uint8_t* xcodes = ws;
  const float4* xinfo = reinterpret_cast<const float4*>(ws + mp * nblk * 32);
  uint8_t* wsm = smem + warp * warp_smem<F>();  // this warp's ring, then (generic) its decoded tile
  uint8_t* tile = wsm + (St::kOn ? S * St::kStageBytes : 0);

  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.0f;

#if MLXN_HAS_BULK_COPY
  __shared__ uint64_t bars[kWarps][S];  // one mbarrier per ring slot
  mbar_init_ring(bars[warp], lane);
#endif
  // The ring: item i (the warp's step warp + i kWarps) goes to slot i % S; lane r < 16 copies row r.
  const uint8_t* my_row = row_ptr(lane & 15);
  auto issue = [&](int64_t item) {
    if constexpr (St::kOn) {
      const int64_t off = (warp + item * kWarps) * St::kChunk;
      const uint8_t* a = my_row + off;
      const uint32_t mis = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(a)) & 15u;
      const uint32_t len =
          (mis + static_cast<uint32_t>(min(static_cast<int64_t>(St::kChunk), p.row_bytes - off)) + 15u) & ~15u;
      uint8_t* dst = wsm + (item % S) * St::kStageBytes + (lane & 15) * St::kRowStride;
#if MLXN_HAS_BULK_COPY
      // One bulk copy per row (lanes 0-15); lane 0 announces the slot's bytes first.
      const uint32_t total = __reduce_add_sync(0xffffffffu, lane < 16 ? len : 0u);
      uint64_t* bar = &bars[warp][item % S];
      if (lane == 0) mbar_arrive_expect(bar, total);
      __syncwarp();
      if (lane < 16) bulk_copy(dst, a - mis, len, bar);
#else
      // Below sm_90: 16-byte cp.async, lanes 0-15 and 16-31 taking alternate pieces of their row.
      for (uint32_t q = 16u * (lane >> 4); q < len; q += 32u) cp_async16(dst + q, a - mis + q, true);
#endif
    }
  };
  auto wait_slot = [&](int64_t item) {
    if constexpr (St::kOn) {
#if MLXN_HAS_BULK_COPY
      mbar_wait(&bars[warp][item % S], static_cast<uint32_t>(item / S) & 1u);
#else
      cp_async_commit();
      cp_async_wait<S - 1>();
      __syncwarp();
#endif
    }
  };
  // Where row r's step starts inside its staged copy.
  auto staged_row = [&](int64_t item, int r) -> const uint8_t* {
    const int64_t off = (warp + item * kWarps) * St::kChunk;
    const uint32_t mis = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(row_ptr(r) + off)) & 15u;
    return wsm + (item % S) * St::kStageBytes + r * St::kRowStride + mis;
  };

  // Weights are constants: the first stages are issued before waiting for the previous kernels (safe even if W was
  // written by the op before this one: quantize_x_kernel lets this kernel start only after its own wait).
  for (int i = 0; i < S - 1; ++i) {
    if (i < nitems) issue(i);
#if !MLXN_HAS_BULK_COPY
    if constexpr (St::kOn) cp_async_commit();
#endif
  }
  pdl_wait();  // the workspace is written by quantize_x_kernel
  pdl_trigger();

  // x fragments and infos of n-tile t, block kb (layout: codes [kb][mp][32], info [kb][mp]).
  auto xfrag = [&](int t, int64_t kb, uint32_t& b0, uint32_t& b1, float4(&xi)[2]) {
    const uint8_t* xr = xcodes + (kb * mp + t * 8 + g) * 32;
    b0 = *reinterpret_cast<const uint32_t*>(xr + 4 * tq);
    b1 = *reinterpret_cast<const uint32_t*>(xr + 16 + 4 * tq);
    xi[0] = xinfo[kb * mp + t * 8 + 2 * tq];
    xi[1] = xinfo[kb * mp + t * 8 + 2 * tq + 1];
  };

  for (int64_t item = 0; item < nitems; ++item) {
    const int64_t step = warp + item * kWarps;
    if (item + S - 1 < nitems) issue(item + S - 1);
    wait_slot(item);
    if constexpr (Path::kDirect) {
      using D = Direct<Path::kType>;
      const uint8_t* w0 = staged_row(item, g);
      const uint8_t* w1 = staged_row(item, g + 8);
#pragma unroll
      for (int i = 0; i < kStepBlocks; ++i) {
        const int64_t kb = step * kStepBlocks + i;
        if (kb >= nblk) break;
        uint32_t raw0[D::kRaw], raw1[D::kRaw];
        D::load(w0, i, tq, raw0);
        D::load(w1, i, tq, raw1);
        uint32_t a0, a1, a2, a3;
        float dw[2], mw[2];
        D::decode(raw0, a0, a2, dw[0], mw[0]);
        D::decode(raw1, a1, a3, dw[1], mw[1]);
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
    } else {
      uint32_t* codes = reinterpret_cast<uint32_t*>(tile);
      float4* sinfo = reinterpret_cast<float4*>(tile + kCodeBytes);
      // Decode: item j * 32 + lane of the step is (row (j * 32 + lane) / 8, block (j * 32 + lane) % 8).
#pragma unroll
      for (int j = 0; j < kTileRows * kStepBlocks / 32; ++j) {
        const int it = j * 32 + lane, r = it / kStepBlocks, bl = it % kStepBlocks;
        const int64_t kb = step * kStepBlocks + bl;
        if (kb >= nblk) continue;
        Dec dec;
        if constexpr (St::kOn) {
          // The staged step is "lanes" 0-7 of a qgv step: blocks bl (32-element formats) or sub-blocks bl of one
          // super-block (K formats).
          Staged st;
          st.p[0] = staged_row(item, r);
          st.step = 0;
          dec = fmt.decode(st, bl);
        } else {
          // MLX affine (three ranges), decoded straight from global memory: block kb is lane kb % 32 of the
          // 1024-element qgv step kb / 32.
          Range rr[F::kRanges];
          fmt.ranges(p, wbase, min(n0 + r, p.N - 1), kb / 32, rr);
          Staged st;
#pragma unroll
          for (int t = 0; t < F::kRanges; ++t) st.p[t] = rr[t].src;
          st.step = kb / 32;
          dec = fmt.decode(st, static_cast<int>(kb % 32));
        }
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
    }
    __syncwarp();  // every lane is done with this slot (and the tile) before they are refilled
  }
#if !MLXN_HAS_BULK_COPY
  if constexpr (St::kOn) cp_async_wait<0>();
#endif

  // The warps' partial tiles, added in warp order by the first warp, in the (now idle) dynamic shared memory: every
  // issued copy has been waited for, and the barrier keeps slower warps' last reads ahead of the writes.
  static_assert(kWarps * NT * 4 * 32 * 4 <= kWarps * warp_smem<F>(), "the partial tiles fit the rings");
  auto red = reinterpret_cast<float(*)[NT * 4][32]>(smem);
  __syncthreads();
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
  return kWarps * warp_smem<F>();
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
