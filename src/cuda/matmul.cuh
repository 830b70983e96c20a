// y = x W^T for decode-sized M: a bandwidth-bound kernel that streams W once per tile of MT rows of x.
// Included by the generated instance files; src/cuda/matmul.cu dispatches through the kernel table.
#pragma once

#include <type_traits>

#include "cuda/common.cuh"
#include "kernels/matmul.h"

namespace mlxn::cuda {

inline constexpr int kGemvWarps = 8;
inline constexpr int kGemvChunk = 32 * 8;  // elements one warp covers per step: 8 per lane

// ROWS rows of W per block; the block's warps split K in 256-element chunks and meet in shared memory. Each lane
// loads 16 bytes of every row of W per chunk (ROWS loads in flight) and reuses each x chunk across the ROWS rows.
template <int MT>
constexpr int gemv_rows() {
  return MT >= 8 ? 2 : 4;
}

template <typename Tw, typename Tx, int MT, bool VEC>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_kernel(kern::MatmulParams p) {
  constexpr int ROWS = gemv_rows<MT>();
  constexpr int EPL = VEC ? 8 : 1;  // elements per lane per chunk
  constexpr int CHUNK = 32 * EPL;
  __shared__ float partial[kGemvWarps][ROWS * MT];
  pdl_wait();  // x may be the previous op's output
  pdl_trigger();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * ROWS;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * MT;
  const Tw* w = static_cast<const Tw*>(p.w);
  const Tx* x = static_cast<const Tx*>(p.x);

  float acc[ROWS][MT];
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.0f;

  for (int64_t k = static_cast<int64_t>(warp) * CHUNK + lane * EPL; k < p.K; k += kGemvWarps * CHUNK) {
    float xv[MT][EPL];
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const bool live = m0 + m < p.M;
      if constexpr (VEC) {
        if (live) {
          load8(x + (m0 + m) * p.ldx + k, xv[m]);
        } else {
#pragma unroll
          for (int i = 0; i < 8; ++i) xv[m][i] = 0.0f;
        }
      } else {
        xv[m][0] = live ? to_f32(x[(m0 + m) * p.ldx + k]) : 0.0f;
      }
    }
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      if (n0 + r >= p.N) continue;
      float wv[EPL];
      if constexpr (VEC) {
        load8(w + (n0 + r) * p.K + k, wv);
      } else {
        wv[0] = to_f32(w[(n0 + r) * p.K + k]);
      }
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int i = 0; i < EPL; ++i) acc[r][m] = fmaf(wv[i], xv[m][i], acc[r][m]);
    }
  }
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float v = warp_sum(acc[r][m]);
      if (lane == 0) partial[warp][r * MT + m] = v;
    }
  __syncthreads();
  const int t = threadIdx.x;
  if (t < ROWS * MT) {
    const int r = t / MT, m = t % MT;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kGemvWarps; ++i) s += partial[i][t];
    if (n0 + r < p.N && m0 + m < p.M) static_cast<Tx*>(p.y)[(m0 + m) * p.ldy + n0 + r] = from_f32<Tx>(s);
  }
}

template <typename Tw, typename Tx, int MT>
Status launch_gemv_tile(const kern::MatmulParams& p, cudaStream_t stream) {
  constexpr int ROWS = gemv_rows<MT>();
  const bool vec = p.K % 8 == 0 && aligned16(p.w) && aligned16(p.x) && (p.ldx * sizeof(Tx)) % 16 == 0;
  const int64_t gx = (p.N + ROWS - 1) / ROWS, gy = (p.M + MT - 1) / MT;
  if (gx > 0x7fffffff || gy > 65535) return unsupported("matmul", "shape exceeds one launch");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  const dim3 block(kGemvWarps * 32);
  return launch_status(vec ? launch_kernel(gemv_kernel<Tw, Tx, MT, true>, grid, block, stream, true, p)
                           : launch_kernel(gemv_kernel<Tw, Tx, MT, false>, grid, block, stream, true, p),
                       "matmul");
}

// ---- M = 2..16 with 16-bit W = x on the tensor cores ----
// A CUDA-core GEMV does M FMAs per weight element: at M = 8 that is more arithmetic than the SM can issue at the
// speed W streams in. Here W rows are the A side of mma.sync m16n8k16 (16 rows per warp, R groups of them) and x rows
// the B side (8 per tile, NT tiles), so the FMAs cost nothing and M = 16 reads W once like M = 1.
// Thread (g = lane / 4, c = lane % 4) loads 8 consecutive k of rows g and g + 8 (16-byte loads) at k0 + 8 c; the
// mma's logical k order is permuted (step j: logical 2c, 2c+1 <- physical 8c + 4j, +1; 2c+8, 2c+9 <- 8c + 4j + 2, +3)
// the same way for x, so each thread's x values are its own 16-byte load of x row g. The block's warps split K and
// meet in shared memory. x (at most 16 x K) is re-read by every block from L2; R = 2 row groups per warp halve that.
inline constexpr int kTcWarps = 8, kTcUnroll = 4, kTcGroups = 2;

template <typename T>
__device__ __forceinline__ void mma_16816_tc(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

__device__ __forceinline__ uint4 ldg16_or_zero(const void* p, bool live) {
  return live ? __ldg(static_cast<const uint4*>(p)) : make_uint4(0, 0, 0, 0);
}
__device__ __forceinline__ uint32_t word(const uint4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

template <typename T, int NT>
__global__ void __launch_bounds__(kTcWarps * 32) gemv_tc_kernel(kern::MatmulParams p) {
  constexpr int R = kTcGroups, U = kTcUnroll, ROWS = 16 * R, COLS = 8 * NT;
  __shared__ float partial[kTcWarps][ROWS][COLS + 1];
  pdl_wait();  // x may be the previous op's output
  pdl_trigger();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * ROWS;
  const T* w = static_cast<const T*>(p.w);
  const T* x = static_cast<const T*>(p.x);
  float acc[R][NT][4];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[r][t][i] = 0.0f;

  for (int64_t kb = static_cast<int64_t>(warp) * 32 * U; kb < p.K; kb += kTcWarps * 32 * U) {
    uint4 a[U][R][2], b[U][NT];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t k = kb + 32 * u + 8 * c;
      const bool kl = k < p.K;  // K % 8 == 0: a thread's 8 elements are all in or all out
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t n = n0 + 16 * r + 8 * h + g;
          a[u][r][h] = ldg16_or_zero(w + n * p.K + k, kl && n < p.N);
        }
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        const int64_t m = 8 * t + g;
        b[u][t] = ldg16_or_zero(x + m * p.ldx + k, kl && m < p.M);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint32_t af[4] = {word(a[u][r][0], 2 * j), word(a[u][r][1], 2 * j), word(a[u][r][0], 2 * j + 1),
                                  word(a[u][r][1], 2 * j + 1)};
#pragma unroll
          for (int t = 0; t < NT; ++t) mma_16816_tc<T>(acc[r][t], af, word(b[u][t], 2 * j), word(b[u][t], 2 * j + 1));
        }
  }
  // Accumulator (row g or g + 8 of group r, x column 2c, 2c + 1 of tile t) to shared memory, then a sum over warps.
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      partial[warp][16 * r + g][8 * t + 2 * c] = acc[r][t][0];
      partial[warp][16 * r + g][8 * t + 2 * c + 1] = acc[r][t][1];
      partial[warp][16 * r + g + 8][8 * t + 2 * c] = acc[r][t][2];
      partial[warp][16 * r + g + 8][8 * t + 2 * c + 1] = acc[r][t][3];
    }
  __syncthreads();
  for (int o = threadIdx.x; o < ROWS * COLS; o += kTcWarps * 32) {
    const int row = o % ROWS, col = o / ROWS;  // consecutive threads on consecutive n: coalesced stores of y
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kTcWarps; ++i) sum += partial[i][row][col];
    const int64_t n = n0 + row;
    if (n < p.N && col < p.M) static_cast<T*>(p.y)[col * p.ldy + n] = from_f32<T>(sum);
  }
}

// Whether the tensor-core path takes this product: 16-bit W = x, 2 <= M <= 16, 16-byte aligned rows.
template <typename Tw, typename Tx>
bool gemv_tc_ok(const kern::MatmulParams& p) {
  if constexpr (!std::is_same_v<Tw, Tx> || std::is_same_v<Tw, float>) {
    return false;
  } else {
    static const bool enabled = tune_knob("MLXN_TUNE_GEMV_TC", 1) != 0;  // 0: the CUDA-core kernel, to compare
    return enabled && p.M >= 2 && p.M <= 16 && p.K % 8 == 0 && aligned16(p.w) && aligned16(p.x) &&
           (p.ldx * static_cast<int64_t>(sizeof(Tx))) % 16 == 0;
  }
}

template <typename T>
Status launch_gemv_tc(const kern::MatmulParams& p, cudaStream_t stream) {
  const int64_t gx = (p.N + 16 * kTcGroups - 1) / (16 * kTcGroups);
  if (gx > 0x7fffffff) return unsupported("matmul", "shape exceeds one launch");
  const dim3 grid(static_cast<unsigned>(gx)), block(kTcWarps * 32);
  return launch_status(p.M <= 8 ? launch_kernel(gemv_tc_kernel<T, 1>, grid, block, stream, true, p)
                                : launch_kernel(gemv_tc_kernel<T, 2>, grid, block, stream, true, p),
                       "matmul");
}

// Decode path for any M: tiles of 1, 2, 4 or 8 rows of x (M > 8 runs several tiles of 8; W is then re-read, mostly
// from L2); M = 2..16 with 16-bit W = x on the tensor cores.
template <typename Tw, typename Tx>
Status launch_gemv(const kern::MatmulParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  if (p.M == 0 || p.N == 0) return Status::ok();
  if (p.M == 1) return launch_gemv_tile<Tw, Tx, 1>(p, stream);
  if constexpr (std::is_same_v<Tw, Tx> && !std::is_same_v<Tw, float>) {
    if (gemv_tc_ok<Tw, Tx>(p)) return launch_gemv_tc<Tw>(p, stream);
  }
  if (p.M == 2) return launch_gemv_tile<Tw, Tx, 2>(p, stream);
  if (p.M <= 4) return launch_gemv_tile<Tw, Tx, 4>(p, stream);
  return launch_gemv_tile<Tw, Tx, 8>(p, stream);
}

}  // namespace mlxn::cuda
