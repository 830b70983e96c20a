// MoE routing kernels: one warp per token for the router (top-k by repeated warp argmax), one block for the
// per-expert lists (a stable counting sort), and a bandwidth-bound weighted reduce.
#pragma once

#include "cuda/reduce.cuh"
#include "kernels/moe.h"

namespace mlxn::cuda {

inline constexpr int kMoeRouteWarps = 8;
inline constexpr int kMoePerLane = kern::kMoeMaxExperts / 32;

template <typename T>
__global__ void __launch_bounds__(kMoeRouteWarps * 32) moe_route_kernel(kern::MoeRouteParams p) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kMoeRouteWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  pdl_wait();
  if (t >= p.tokens) return;
  const T* logits = static_cast<const T*>(p.logits) + t * p.n_experts;
  float x[kMoePerLane], s[kMoePerLane], sel[kMoePerLane];
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < kMoePerLane; ++i) {
    const int e = lane + 32 * i;
    x[i] = e < p.n_experts ? to_f32(logits[e]) : -INFINITY;
    mx = fmaxf(mx, x[i]);
  }
  pdl_trigger();
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float z = 0.0f;
#pragma unroll
  for (int i = 0; i < kMoePerLane; ++i) z += lane + 32 * i < p.n_experts ? expf(x[i] - mx) : 0.0f;
  z = warp_sum(z);
#pragma unroll
  for (int i = 0; i < kMoePerLane; ++i) {
    const int e = lane + 32 * i;
    s[i] = p.sigmoid ? 1.0f / (1.0f + expf(-x[i])) : expf(x[i] - mx) / z;
    sel[i] = (p.softmax_after_topk ? x[i] : s[i]) + (p.bias && e < p.n_experts ? p.bias[e] : 0.0f);
  }
  // Repeated warp argmax; lane j keeps the j-th pick (id, score, logit).
  uint32_t taken = 0;
  int my_id = 0;
  float my_s = 0.0f, my_x = 0.0f;
  for (int j = 0; j < p.k; ++j) {
    uint64_t best = 0;
    float best_s = 0.0f, best_x = 0.0f;
#pragma unroll
    for (int i = 0; i < kMoePerLane; ++i) {
      const int e = lane + 32 * i;
      if (e >= p.n_experts || ((taken >> i) & 1u)) continue;
      const uint64_t c = pack_key_idx(fkey(sel[i]), static_cast<uint32_t>(e));
      if (c > best) best = c, best_s = s[i], best_x = x[i];
    }
    const uint64_t win = warp_max_u64(best);
    const int id = static_cast<int>(packed_idx(win));
    const int owner = id & 31;
    const float ws = __shfl_sync(0xffffffffu, best_s, owner);
    const float wx = __shfl_sync(0xffffffffu, best_x, owner);
    if (lane == owner) taken |= 1u << (id >> 5);
    if (lane == j) my_id = id, my_s = ws, my_x = wx;
  }
  const bool active = lane < p.k;
  float w;
  if (p.softmax_after_topk) {
    float m2 = active ? my_x : -INFINITY;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m2 = fmaxf(m2, __shfl_xor_sync(0xffffffffu, m2, o));
    const float ev = active ? expf(my_x - m2) : 0.0f;
    w = ev / warp_sum(ev);
  } else {
    const float sum = warp_sum(active ? my_s : 0.0f);
    w = p.renormalize && sum > 0.0f ? my_s / sum : my_s;
  }
  w *= p.routed_scale;
  if (p.expert_scale && active) w *= p.expert_scale[my_id];
  if (active) {
    p.ids[t * p.k + lane] = my_id;
    p.weights[t * p.k + lane] = w;
  }
}

template <typename T>
Status launch_moe_route(const kern::MoeRouteParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  return launch_status(launch_kernel(moe_route_kernel<T>, dim3(grid_1d(p.tokens, kMoeRouteWarps)),
                                     dim3(kMoeRouteWarps * 32), stream, true, p),
                       "moe_route");
}

// One block: counts by shared-memory atomics (integers: deterministic), an exclusive scan for the offsets, then a
// stable placement tile by tile: within a warp, lanes routing to the same expert rank by __match_any_sync; across
// the warps of a tile, by per-warp counts; across tiles, by running cursors.
inline constexpr int kListThreads = 1024;

// A template only so that every instance file may hold it (a plain __global__ in a header is defined once per file).
template <int kThreads>
__global__ void __launch_bounds__(kThreads) moe_lists_kernel(kern::MoeListsParams p) {
  static_assert(kThreads == kListThreads);
  using Scan = cub::BlockScan<int, kListThreads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ int cnt[kern::kMoeMaxExperts];
  __shared__ int cursor[kern::kMoeMaxExperts];
  __shared__ uint16_t warp_cnt[kListThreads / 32][kern::kMoeMaxExperts];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int64_t n = p.tokens * p.k;
  const int ne = p.n_experts;
  for (int e = tid; e < ne; e += kListThreads) cnt[e] = 0;
  __syncthreads();
  pdl_wait();
  for (int64_t i = tid; i < n; i += kListThreads) {
    const int e = p.ids[i];
    if (e >= 0 && e < ne) atomicAdd(&cnt[e], 1);
  }
  __syncthreads();
  const int c = tid < ne ? cnt[tid] : 0;
  int excl, total;
  Scan(scan).ExclusiveSum(c, excl, total);
  if (tid < ne) {
    p.counts[tid] = c;
    p.offsets[tid] = excl;
    cursor[tid] = excl;
  }
  if (tid == 0) p.offsets[ne] = total;
  for (int64_t i = total + tid; i < n; i += kListThreads) p.perm[i] = -1;
  __syncthreads();
  const unsigned lanes_below = (1u << lane) - 1u;
  for (int64_t base = 0; base < n; base += kListThreads) {
    for (int i = tid; i < (kListThreads / 32) * ne; i += kListThreads) warp_cnt[i / ne][i % ne] = 0;
    __syncthreads();
    const int64_t i = base + tid;
    const int e = i < n ? p.ids[i] : -1;
    const bool valid = e >= 0 && e < ne;
    const unsigned peers = __match_any_sync(0xffffffffu, valid ? e : -1);
    const int rank = __popc(peers & lanes_below);
    if (valid && rank == 0) warp_cnt[warp][e] = static_cast<uint16_t>(__popc(peers));
    __syncthreads();
    if (valid) {
      int before = 0;
      for (int w = 0; w < warp; ++w) before += warp_cnt[w][e];
      p.perm[cursor[e] + before + rank] = static_cast<int32_t>(i);
    }
    __syncthreads();
    for (int ex = tid; ex < ne; ex += kListThreads) {
      int add = 0;
      for (int w = 0; w < kListThreads / 32; ++w) add += warp_cnt[w][ex];
      cursor[ex] += add;
    }
    __syncthreads();
  }
  pdl_trigger();
}

inline Status launch_moe_lists(const kern::MoeListsParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  return launch_status(launch_kernel(moe_lists_kernel<kListThreads>, dim3(1), dim3(kListThreads), stream, true, p),
                       "moe_expert_lists");
}

// out[t, c .. c + 8) per thread: k 16-byte loads in flight, f32 accumulation in slot order.
inline constexpr int kMoeReduceThreads = 256;

template <typename Tx, typename To>
__global__ void __launch_bounds__(kMoeReduceThreads)
    moe_reduce_kernel(kern::MoeReduceParams p, bool vec, int64_t col_blocks) {
  const int64_t t = blockIdx.x / col_blocks;
  const int64_t c0 = (blockIdx.x % col_blocks) * (kMoeReduceThreads * 8) + static_cast<int64_t>(threadIdx.x) * 8;
  pdl_wait();
  if (t >= p.tokens || c0 >= p.dim) return;
  const Tx* x = static_cast<const Tx*>(p.x) + t * p.k * p.dim;
  const float* w = p.w + t * p.k;
  float acc[8] = {};
  if (vec) {
    for (int j = 0; j < p.k; ++j) {
      float v[8];
      load8(x + j * p.dim + c0, v);
      const float wj = w[j];
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] = fmaf(wj, v[i], acc[i]);
    }
    pdl_trigger();
    store8(static_cast<To*>(p.out) + t * p.dim + c0, acc);
    return;
  }
  for (int j = 0; j < p.k; ++j) {
    const float wj = w[j];
#pragma unroll
    for (int i = 0; i < 8; ++i)
      if (c0 + i < p.dim) acc[i] = fmaf(wj, to_f32(x[j * p.dim + c0 + i]), acc[i]);
  }
  pdl_trigger();
#pragma unroll
  for (int i = 0; i < 8; ++i)
    if (c0 + i < p.dim) static_cast<To*>(p.out)[t * p.dim + c0 + i] = from_f32<To>(acc[i]);
}

template <typename Tx, typename To>
Status launch_moe_reduce(const kern::MoeReduceParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const bool vec = p.dim % 8 == 0 && aligned16(p.x) && aligned16(p.out);
  const int64_t col_blocks = (p.dim + kMoeReduceThreads * 8 - 1) / (kMoeReduceThreads * 8);
  const int64_t blocks = p.tokens * col_blocks;
  if (blocks > 0x7fffffff) return unsupported("moe_weighted_reduce", "too many tokens for one launch");
  return launch_status(launch_kernel(moe_reduce_kernel<Tx, To>, dim3(static_cast<unsigned>(blocks)),
                                     dim3(kMoeReduceThreads), stream, true, p, vec, col_blocks),
                       "moe_weighted_reduce");
}

}  // namespace mlxn::cuda
