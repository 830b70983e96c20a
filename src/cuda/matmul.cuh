// y = x W^T for decode-sized M: a bandwidth-bound kernel that streams W once per tile of MT rows of x.
// Included by the generated instance files; src/cuda/matmul.cu dispatches through the kernel table.
#pragma once

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

// Decode path for any M: tiles of 1, 2, 4 or 8 rows of x (M > 8 runs several tiles of 8; W is then re-read, mostly
// from L2).
template <typename Tw, typename Tx>
Status launch_gemv(const kern::MatmulParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  if (p.M == 0 || p.N == 0) return Status::ok();
  if (p.M == 1) return launch_gemv_tile<Tw, Tx, 1>(p, stream);
  if (p.M == 2) return launch_gemv_tile<Tw, Tx, 2>(p, stream);
  if (p.M <= 4) return launch_gemv_tile<Tw, Tx, 4>(p, stream);
  return launch_gemv_tile<Tw, Tx, 8>(p, stream);
}

}  // namespace mlxn::cuda
