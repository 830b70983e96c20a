// Device helpers of the row-wise kernels (norms, softmax): 8-element chunks kept as raw 16-byte words, and
// reductions over the threads of one row.
#pragma once

#include "cuda/common.cuh"

namespace mlxn::cuda {

// 8 elements as raw 16-byte words (one for 16-bit types, two for f32): half the registers of 8 floats, so more
// rows stay resident and the next row can be prefetched.
template <typename T>
struct Raw8 {
  uint4 w[sizeof(T) == 4 ? 2 : 1];
};

template <typename T>
__device__ __forceinline__ Raw8<T> load_raw8(const T* p) {
  Raw8<T> r;
#pragma unroll
  for (int i = 0; i < (sizeof(T) == 4 ? 2 : 1); ++i) r.w[i] = __ldcs(reinterpret_cast<const uint4*>(p) + i);
  return r;
}

template <typename T>
__device__ __forceinline__ void unpack8(const Raw8<T>& r, float (&v)[8]) {
  const T* e = reinterpret_cast<const T*>(r.w);
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = to_f32(e[i]);
}

// v rounded to T.
template <typename T>
__device__ __forceinline__ Raw8<T> pack8(const float (&v)[8]) {
  Raw8<T> r;
  T* e = reinterpret_cast<T*>(r.w);
#pragma unroll
  for (int i = 0; i < 8; ++i) e[i] = from_f32<T>(v[i]);
  return r;
}

template <typename T>
__device__ __forceinline__ void store_raw8(T* p, const Raw8<T>& r) {
#pragma unroll
  for (int i = 0; i < (sizeof(T) == 4 ? 2 : 1); ++i) __stcs(reinterpret_cast<uint4*>(p) + i, r.w[i]);
}

// 8 elements of a float tensor whose dtype is only known at run time (masks): one 16-byte access for 16-bit
// types, two for f32; p (element 0 of the chunk) 16-byte aligned.
__device__ __forceinline__ void load8_any(const void* p, DType t, float (&v)[8]) {
  switch (t) {
    case DType::F16:
      load8(static_cast<const __half*>(p), v);
      break;
    case DType::BF16:
      load8(static_cast<const __nv_bfloat16*>(p), v);
      break;
    default:
      load8(static_cast<const float*>(p), v);
      break;
  }
}

// ---- reductions over the blockDim.x threads of one row ----
// blockDim.x is either a power of two <= 32 (several rows per block along threadIdx.y; each row's threads are an
// aligned group of lanes of one warp) or a multiple of 32 with blockDim.y == 1 (the whole block is one row). Every
// thread of the block must call these (threads of rows past the end too), and the result reaches every thread.
// Successive reductions need distinct `scratch` arrays (no barrier after the last read of one).

__device__ __forceinline__ float row_group_sum(float v, float* scratch) {
  const int width = blockDim.x < 32 ? blockDim.x : 32;
  for (int o = width >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (blockDim.x <= 32) return v;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float s = 0.0f;
  for (int i = 0; i < n_warps; ++i) s += scratch[i];
  return s;
}

__device__ __forceinline__ float row_group_max(float v, float* scratch) {
  const int width = blockDim.x < 32 ? blockDim.x : 32;
  for (int o = width >> 1; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (blockDim.x <= 32) return v;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float s = scratch[0];
  for (int i = 1; i < n_warps; ++i) s = fmaxf(s, scratch[i]);
  return s;
}

// (count, mean, centred sum of squares) triples merged as Chan, Golub & LeVeque (1979): numerically stable like two
// passes over the data, in one reduction. The merge is symmetric in its operands to the bit (no contraction into
// fma, empty parts handled on both sides), so the xor butterfly leaves every lane of a group with the same triple.
__device__ __forceinline__ float3 merge_mean_m2(float3 a, float3 b) {
  if (a.x == 0.0f) return b;
  if (b.x == 0.0f) return a;
  const float n = __fadd_rn(a.x, b.x);
  const float d = __fsub_rn(a.y, b.y);  // swapping a and b only flips the sign
  const float mean = __fdiv_rn(__fadd_rn(__fmul_rn(a.x, a.y), __fmul_rn(b.x, b.y)), n);
  const float m2 = __fadd_rn(__fadd_rn(a.z, b.z), __fmul_rn(__fmul_rn(d, d), __fdiv_rn(__fmul_rn(a.x, b.x), n)));
  return make_float3(n, mean, m2);
}

__device__ __forceinline__ float3 row_group_mean_m2(float3 v, float3* scratch) {
  const int width = blockDim.x < 32 ? blockDim.x : 32;
  for (int o = width >> 1; o > 0; o >>= 1) {
    const float3 u = make_float3(__shfl_xor_sync(0xffffffffu, v.x, o), __shfl_xor_sync(0xffffffffu, v.y, o),
                                 __shfl_xor_sync(0xffffffffu, v.z, o));
    v = merge_mean_m2(v, u);
  }
  if (blockDim.x <= 32) return v;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float3 s = scratch[0];
  for (int i = 1; i < n_warps; ++i) s = merge_mean_m2(s, scratch[i]);
  return s;
}

// Softmax partial (max m, sum s of exp(t - m)) pairs: merging rescales both sums to the larger maximum. A part with
// m = -inf (nothing but -inf seen) holds s = 0 and contributes nothing.
__device__ __forceinline__ float2 merge_max_sum(float2 a, float2 b) {
  const float m = fmaxf(a.x, b.x);
  if (m == -INFINITY) return make_float2(-INFINITY, 0.0f);
  return make_float2(m, a.y * __expf(a.x - m) + b.y * __expf(b.x - m));
}

__device__ __forceinline__ float2 row_group_max_sum(float2 v, float2* scratch) {
  const int width = blockDim.x < 32 ? blockDim.x : 32;
  for (int o = width >> 1; o > 0; o >>= 1) {
    const float2 u = make_float2(__shfl_xor_sync(0xffffffffu, v.x, o), __shfl_xor_sync(0xffffffffu, v.y, o));
    v = merge_max_sum(v, u);
  }
  if (blockDim.x <= 32) return v;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float2 s = scratch[0];
  for (int i = 1; i < n_warps; ++i) s = merge_max_sum(s, scratch[i]);
  return s;
}

// Threads per row for `work` units of work: the next power of two up to 32, else a multiple of 32.
inline int row_threads(int64_t work, int cap) {
  if (work <= 1) return 1;
  if (work <= 32) {
    int t = 1;
    while (t < work) t *= 2;
    return t;
  }
  const int64_t t = (work + 31) / 32 * 32;
  return static_cast<int>(t < cap ? t : cap);
}

}  // namespace mlxn::cuda
