// Softmax and log-softmax over the last dimension (kern::SoftmaxParams), max-subtracted with f32 accumulation.
// Included by the generated instance files only; src/cuda/softmax.cu dispatches through the kernel table.
//
// Rows up to 32768 elements stay in registers (x read once): one block per row, or a group of 1 to 32 threads per
// row with several rows per block for short rows. Longer rows, and few rows that would leave SMs idle, are split
// over a thread-block cluster (sm_90) of up to 8 blocks that exchange their maxima, then their sums, through
// distributed shared memory, so one 262144-wide vocabulary row still reads x once, spread over 8 SMs (a split over
// independent blocks would need a workspace the op does not take, or a second read of x). Everything else (odd
// widths, misaligned views, rows past the cluster's reach, older GPUs) takes a two-pass kernel with an online
// (max, sum) first pass (Milakov & Gimelshein 2018).
#pragma once

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#include <cooperative_groups.h>
#endif

#include <algorithm>

#include "cuda/rows.cuh"
#include "kernels/softmax.h"

namespace mlxn::cuda {

inline constexpr int kSoftmaxMaxThreads = 512;  // per block: a thread may hold 8 f32 chunks (64 registers)
inline constexpr int kSoftmaxMaxVpt = 8;
inline constexpr int kSoftmaxMaxCluster = 8;  // the portable cluster size limit

__device__ __forceinline__ const void* mask_row(const kern::SoftmaxParams& p, int64_t row) {
  const size_t es = p.tm == DType::F32 ? 4 : 2;
  return static_cast<const char*>(p.mask) + static_cast<size_t>((row % p.mask_rows) * p.cols) * es;
}

// t = x * scale + mask for the 8 elements of chunk c of a row.
template <typename Tx>
__device__ __forceinline__ void softmax_inputs(const kern::SoftmaxParams& p, const Raw8<Tx>& raw, const void* mrow,
                                               int64_t c, float (&t)[8]) {
  unpack8(raw, t);
  float m[8];
  if (mrow != nullptr) {
    const size_t es = p.tm == DType::F32 ? 4 : 2;
    load8_any(static_cast<const char*>(mrow) + static_cast<size_t>(c * 8) * es, p.tm, m);
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) t[i] = mrow != nullptr ? fmaf(t[i], p.scale, m[i]) : t[i] * p.scale;
}

// The row's (max, sum) made safe to apply: a row of -inf gets max 0 and 1/sum = 0 (outputs 0, log outputs -inf).
struct SoftmaxNorm {
  float max, inv_sum, log_sum;
};
__device__ __forceinline__ SoftmaxNorm softmax_norm(float2 ms) {
  if (ms.x == -INFINITY || !(ms.y > 0.0f)) return {0.0f, 0.0f, 0.0f};
  return {ms.x, 1.0f / ms.y, logf(ms.y)};
}

__device__ __forceinline__ float softmax_out(bool log, float t, const SoftmaxNorm& n) {
  return log ? t - n.max - n.log_sum : __expf(t - n.max) * n.inv_sum;
}

// Rows of cols % 8 == 0 with x, y and mask 16-byte aligned. `cluster` blocks share a row (blockDim.y == 1 then);
// chunk k of a thread is first + k * blockDim.x * cluster, so each block reads interleaved 16-byte runs of the row.
// The row is held as f32 (t = x * scale + mask) between the passes: the max first, then exp(t - max) once per
// element, kept for the output. One exp per element matters: the online (max, sum) merge took about three MUFU
// operations per element, which bound the 16-bit rows (two elements per 4 bytes moved) on the SFU.
template <typename Tx, typename Ty, int VPT>
__global__ void __launch_bounds__(kSoftmaxMaxThreads) softmax_vec_kernel(kern::SoftmaxParams p, int cluster) {
  __shared__ float scratch[2][32];
  __shared__ float part[2];  // this block's max, then its sum, read by the other blocks of its cluster
  const int rank = static_cast<int>(blockIdx.x % static_cast<unsigned>(cluster));
  const int64_t row = static_cast<int64_t>(blockIdx.x / static_cast<unsigned>(cluster)) * blockDim.y + threadIdx.y;
  const bool live = row < p.rows;  // threads of rows past the end still take part in the reductions
  const int64_t n8 = p.cols >> 3;
  const int64_t first = static_cast<int64_t>(rank) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * cluster;
  auto chunk = [&](int k) { return first + k * stride; };
  const Tx* x = static_cast<const Tx*>(p.x) + row * p.cols;
  const void* mrow = p.mask != nullptr && live ? mask_row(p, row) : nullptr;

  float t[VPT][8];
  {
    Raw8<Tx> v[VPT];
    pdl_wait();
#pragma unroll
    for (int k = 0; k < VPT; ++k)
      if (live && chunk(k) < n8) v[k] = load_raw8(x + chunk(k) * 8);
    pdl_trigger();
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      if (live && chunk(k) < n8) {
        softmax_inputs(p, v[k], mrow, chunk(k), t[k]);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) t[k][i] = -INFINITY;
      }
    }
  }
  float mx = -INFINITY;
#pragma unroll
  for (int k = 0; k < VPT; ++k)
#pragma unroll
    for (int i = 0; i < 8; ++i) mx = fmaxf(mx, t[k][i]);
  mx = row_group_max(mx, scratch[0]);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  if (cluster > 1) {
    cg::cluster_group cl = cg::this_cluster();
    if (threadIdx.x == 0) part[0] = mx;
    cl.sync();
    for (int i = 0; i < cluster; ++i) mx = fmaxf(mx, *cl.map_shared_rank(&part[0], i));
  }
#elif defined(__CUDA_ARCH__)
  if (cluster > 1) __trap();  // the launcher splits rows only on sm_90 and newer
#endif
  // A row of nothing but -inf: base 0 makes every exp 0 (softmax 0, log-softmax -inf).
  const float base = mx == -INFINITY ? 0.0f : mx;
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < VPT; ++k)
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float e = __expf(t[k][i] - base);
      s += e;
      if (!p.log) t[k][i] = e;
    }
  s = row_group_sum(s, scratch[1]);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (cluster > 1) {
    cg::cluster_group cl = cg::this_cluster();
    if (threadIdx.x == 0) part[1] = s;
    cl.sync();
    // Every block adds the parts in the same order: all blocks of a row apply a bit-identical sum.
    s = 0.0f;
    for (int i = 0; i < cluster; ++i) s += *cl.map_shared_rank(&part[1], i);
    cl.sync();  // no block may exit (freeing its `part`) while another still reads it
  }
#endif
  if (!live) return;
  const float inv_sum = s > 0.0f ? 1.0f / s : 0.0f;
  const float log_sum = s > 0.0f ? logf(s) : 0.0f;
  Ty* y = static_cast<Ty*>(p.y) + row * p.cols;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    if (chunk(k) >= n8) continue;
#pragma unroll
    for (int i = 0; i < 8; ++i) t[k][i] = p.log ? (t[k][i] - base) - log_sum : t[k][i] * inv_sum;
    store8(y + chunk(k) * 8, t[k]);
  }
}

// Any width and alignment: an online (max, sum) pass, then the output pass reading x again.
template <typename Tx, typename Ty>
__global__ void __launch_bounds__(1024) softmax_any_kernel(kern::SoftmaxParams p) {
  __shared__ float2 scratch[32];
  pdl_wait();
  pdl_trigger();
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool live = row < p.rows;
  const Tx* x = static_cast<const Tx*>(p.x) + row * p.cols;
  const void* mrow = p.mask != nullptr && live ? mask_row(p, row) : nullptr;
  auto value = [&](int64_t c) {
    const float t = to_f32(x[c]);
    return mrow != nullptr ? fmaf(t, p.scale, load_any_f32(mrow, p.tm, c)) : t * p.scale;
  };
  float m = -INFINITY, s = 0.0f;
  if (live) {
    for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
      const float t = value(c);
      if (t > m) {
        s = s * __expf(m - t) + 1.0f;  // m = -inf: s is 0 and stays 0 before the + 1
        m = t;
      } else if (t > -INFINITY) {
        s += __expf(t - m);
      }
    }
  }
  const SoftmaxNorm n = softmax_norm(row_group_max_sum(make_float2(m, s), scratch));
  if (!live) return;
  Ty* y = static_cast<Ty*>(p.y) + row * p.cols;
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) y[c] = from_f32<Ty>(softmax_out(p.log, value(c), n));
}

template <typename Tx, typename Ty>
Status launch_softmax(const kern::SoftmaxParams& p, const ExecContext& ctx) {
  const char* op = p.log ? "log_softmax" : "softmax";
  if (p.rows == 0) return Status::ok();
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const int64_t n8 = p.cols / 8;
  const bool sm90 = ctx.props != nullptr && ctx.props->compute_capability_major >= 9;
  const int sms = ctx.props != nullptr && ctx.props->multiprocessor_count > 0 ? ctx.props->multiprocessor_count : 132;
  constexpr int64_t per_block = static_cast<int64_t>(kSoftmaxMaxThreads) * kSoftmaxMaxVpt;  // chunks in registers
  bool vec = p.cols % 8 == 0 && aligned16(p.x) && aligned16(p.y) && (p.mask == nullptr || aligned16(p.mask));
  int cluster = 1;
  if (vec && n8 > per_block) {
    if (sm90 && n8 <= per_block * kSoftmaxMaxCluster) {
      cluster = static_cast<int>((n8 + per_block - 1) / per_block);
    } else {
      vec = false;
    }
  }
  // Long rows (16384+ elements) too few to fill the GPU: spread each over more blocks of a cluster (two blocks per
  // SM), each keeping at least 256 chunks.
  if (vec && sm90 && n8 >= 2048) {
    const int64_t want = std::min<int64_t>({kSoftmaxMaxCluster, (2 * sms + p.rows - 1) / p.rows, n8 / 256});
    cluster = static_cast<int>(std::max<int64_t>(cluster, want));
  }
  if (!vec) {
    const int t = row_threads((p.cols + 7) / 8, 1024);
    const int r = t <= 32 ? 128 / t : 1;
    const int64_t blocks = (p.rows + r - 1) / r;
    if (blocks > 0x7fffffff) return unsupported(op, p.rows, " rows exceed one launch");
    return launch_status(launch_kernel(softmax_any_kernel<Tx, Ty>, dim3(static_cast<unsigned>(blocks)),
                                       dim3(static_cast<unsigned>(t), static_cast<unsigned>(r)), stream, true, p),
                         op);
  }
  // 128 threads per row with up to 8 chunks each, as the norms (tuned on an H100 at 4096 columns).
  const int64_t nb = (n8 + cluster - 1) / cluster;
  int vpt = 1;
  while (vpt < kSoftmaxMaxVpt && nb > static_cast<int64_t>(vpt) * 128) vpt *= 2;
  const int t = row_threads((nb + vpt - 1) / vpt, kSoftmaxMaxThreads);
  const int r = cluster == 1 && t <= 32 ? 128 / t : 1;
  const int64_t blocks = (p.rows + r - 1) / r * cluster;
  if (blocks > 0x7fffffff) return unsupported(op, p.rows, " rows exceed one launch");
  void (*kernel)(kern::SoftmaxParams, int) = softmax_vec_kernel<Tx, Ty, 8>;
  if (vpt == 1)
    kernel = softmax_vec_kernel<Tx, Ty, 1>;
  else if (vpt == 2)
    kernel = softmax_vec_kernel<Tx, Ty, 2>;
  else if (vpt == 4)
    kernel = softmax_vec_kernel<Tx, Ty, 4>;
  const dim3 grid(static_cast<unsigned>(blocks)), block(static_cast<unsigned>(t), static_cast<unsigned>(r));
  if (cluster == 1) return launch_status(launch_kernel(kernel, grid, block, stream, true, p, cluster), op);
  // Cluster launch, with programmatic dependent launch as the other kernels (CUTLASS's sm90 kernels combine the two
  // attributes the same way); MLXN_PDL=0 turns it off.
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = static_cast<unsigned>(cluster);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  static const bool pdl_allowed = tune_knob("MLXN_PDL", 1) != 0;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_allowed ? 2 : 1;
  return launch_status(cudaLaunchKernelEx(&cfg, kernel, p, cluster), op);
}

}  // namespace mlxn::cuda
