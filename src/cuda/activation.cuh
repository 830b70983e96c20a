// Activations and gated linear units (kern::ActivationParams). Included by the generated instance files only;
// src/cuda/activation.cu dispatches through the kernel table.
#pragma once

#include <algorithm>

#include "cuda/common.cuh"
#include "kernels/activation.h"

namespace mlxn::cuda {

// The launch shape of the elementwise family (src/cuda/elementwise.cuh, measured there at 86-94% of copy
// bandwidth): 256-thread blocks, one 8-element chunk per thread per step, up to 64 blocks per SM, grid-stride loop.
inline constexpr int kActBlock = 256;
inline constexpr int kActBlocksPerSm = 64;
inline constexpr int kActIlp = 8;  // elements per thread of the unaligned kernel, all loads issued first

// The element functions in f32, in forms without cancellation in either tail: GELU through erfc, and
// 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)). The accurate expf / erfcf / tanhf keep f32 outputs within a few ulp
// of the float64 reference (these kernels are memory-bound: the arithmetic is free).
template <kern::ActOp Op>
__device__ __forceinline__ float act_fn(float x, float cap) {
  if constexpr (Op == kern::ActOp::Silu) {
    return x / (1.0f + expf(-x));  // x below -88: exp overflows to inf and the quotient is -0
  } else if constexpr (Op == kern::ActOp::GeluErf) {
    return 0.5f * x * erfcf(x * -0.70710678118654752f);
  } else if constexpr (Op == kern::ActOp::GeluTanh) {
    const float u = 0.79788456080286536f * fmaf(0.044715f * x, x * x, x);
    return x / (1.0f + expf(-2.0f * u));
  } else if constexpr (Op == kern::ActOp::Sigmoid) {
    return 1.0f / (1.0f + expf(-x));
  } else {
    return cap * tanhf(x / cap);
  }
}

__device__ __forceinline__ int64_t act_thread() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t act_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Offsets of output element (row, col) in x and u: row 0 needs no division (unary ops and separate gate / up
// tensors are one row).
struct ActIndex {
  int64_t cols, x_stride, u_stride;
  bool one_row, small;  // small: every index fits 32 bits (32-bit division)
  __device__ __forceinline__ void split(int64_t i, int64_t& xo, int64_t& uo) const {
    if (one_row) {
      xo = uo = i;
      return;
    }
    const int64_t row = small ? static_cast<int64_t>(static_cast<uint32_t>(i) / static_cast<uint32_t>(cols)) : i / cols;
    const int64_t col = i - row * cols;
    xo = row * x_stride + col;
    uo = row * u_stride + col;
  }
};

// Every pointer 16-byte aligned and (rows > 1) cols and strides multiples of 8: 8-element chunks through 16-byte
// accesses; block 0 does the last n % 8 elements of a single row.
template <typename Tx, typename Ty, kern::ActOp Op, bool Gated>
__global__ void __launch_bounds__(kActBlock)
    act_vec_kernel(const Tx* x, const Tx* u, Ty* y, int64_t n, ActIndex ix, float cap) {
  pdl_wait();  // before the first read of an earlier op's output
  pdl_trigger();
  const int64_t n8 = n & ~int64_t{7};
  if (blockIdx.x == 0 && n8 + threadIdx.x < n) {
    const int64_t i = n8 + threadIdx.x;
    float o = act_fn<Op>(to_f32(x[i]), cap);
    if constexpr (Gated) o *= to_f32(u[i]);
    y[i] = from_f32<Ty>(o);
  }
  for (int64_t i = act_thread() * 8; i < n8; i += act_stride() * 8) {
    int64_t xo, uo;
    ix.split(i, xo, uo);
    float v[8], g[8];
    load8(x + xo, v);
    if constexpr (Gated) load8(u + uo, g);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      v[k] = act_fn<Op>(v[k], cap);
      if constexpr (Gated) v[k] *= g[k];
    }
    store8(y + i, v);
  }
}

// Any alignment and width: kActIlp elements per thread, kActBlock apart (coalesced), all loads first.
template <typename Tx, typename Ty, kern::ActOp Op, bool Gated>
__global__ void __launch_bounds__(kActBlock)
    act_any_kernel(const Tx* x, const Tx* u, Ty* y, int64_t n, ActIndex ix, float cap) {
  pdl_wait();
  pdl_trigger();
  for (int64_t i0 = static_cast<int64_t>(blockIdx.x) * kActBlock * kActIlp + threadIdx.x; i0 < n;
       i0 += act_stride() * kActIlp) {
    float v[kActIlp], g[kActIlp];
#pragma unroll
    for (int k = 0; k < kActIlp; ++k) {
      const int64_t i = i0 + static_cast<int64_t>(k) * kActBlock;
      v[k] = g[k] = 0.0f;
      if (i < n) {
        int64_t xo, uo;
        ix.split(i, xo, uo);
        v[k] = to_f32(x[xo]);
        if constexpr (Gated) g[k] = to_f32(u[uo]);
      }
    }
#pragma unroll
    for (int k = 0; k < kActIlp; ++k) {
      const int64_t i = i0 + static_cast<int64_t>(k) * kActBlock;
      if (i >= n) continue;
      float o = act_fn<Op>(v[k], cap);
      if constexpr (Gated) o *= g[k];
      y[i] = from_f32<Ty>(o);
    }
  }
}

template <typename Tx, typename Ty, kern::ActOp Op, bool Gated>
cudaError_t enqueue_activation(const kern::ActivationParams& p, const ExecContext& ctx) {
  const auto* x = static_cast<const Tx*>(p.x);
  const auto* u = static_cast<const Tx*>(p.u);
  auto* y = static_cast<Ty*>(p.y);
  const int64_t n = p.rows * p.cols;
  ActIndex ix{p.cols, p.x_stride, p.u_stride, p.rows == 1, false};
  ix.small = n < (int64_t{1} << 31) && p.rows * std::max(p.x_stride, p.u_stride) < (int64_t{1} << 31);
  const bool vec = aligned16(x) && (!Gated || aligned16(u)) && aligned16(y) &&
                   (ix.one_row || (p.cols % 8 == 0 && p.x_stride % 8 == 0 && p.u_stride % 8 == 0));
  const int sms = ctx.props != nullptr && ctx.props->multiprocessor_count > 0 ? ctx.props->multiprocessor_count : 132;
  const int64_t max_blocks = static_cast<int64_t>(sms) * kActBlocksPerSm;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  if (vec)
    return launch_kernel(act_vec_kernel<Tx, Ty, Op, Gated>, grid_1d((n + 7) / 8, kActBlock, max_blocks), kActBlock,
                         stream, true, x, u, y, n, ix, p.cap);
  return launch_kernel(act_any_kernel<Tx, Ty, Op, Gated>, grid_1d((n + kActIlp - 1) / kActIlp, kActBlock, max_blocks),
                       kActBlock, stream, true, x, u, y, n, ix, p.cap);
}

// The launcher of every activation op for one (x, y) dtype pair.
template <typename Tx, typename Ty>
Status launch_activation(const kern::ActivationParams& p, const ExecContext& ctx) {
  if (p.rows == 0 || p.cols == 0) return Status::ok();
  using kern::ActOp;
  cudaError_t e = cudaSuccess;
  if (p.u != nullptr) {
    switch (p.op) {
      case ActOp::Silu:
        e = enqueue_activation<Tx, Ty, ActOp::Silu, true>(p, ctx);
        break;
      case ActOp::GeluErf:
        e = enqueue_activation<Tx, Ty, ActOp::GeluErf, true>(p, ctx);
        break;
      case ActOp::GeluTanh:
        e = enqueue_activation<Tx, Ty, ActOp::GeluTanh, true>(p, ctx);
        break;
      case ActOp::Sigmoid:
        e = enqueue_activation<Tx, Ty, ActOp::Sigmoid, true>(p, ctx);
        break;
      case ActOp::Softcap:
        return unsupported(p.name, "softcap has no gated form");
    }
  } else {
    switch (p.op) {
      case ActOp::Silu:
        e = enqueue_activation<Tx, Ty, ActOp::Silu, false>(p, ctx);
        break;
      case ActOp::GeluErf:
        e = enqueue_activation<Tx, Ty, ActOp::GeluErf, false>(p, ctx);
        break;
      case ActOp::GeluTanh:
        e = enqueue_activation<Tx, Ty, ActOp::GeluTanh, false>(p, ctx);
        break;
      case ActOp::Sigmoid:
        e = enqueue_activation<Tx, Ty, ActOp::Sigmoid, false>(p, ctx);
        break;
      case ActOp::Softcap:
        e = enqueue_activation<Tx, Ty, ActOp::Softcap, false>(p, ctx);
        break;
    }
  }
  return launch_status(e, p.name);
}

}  // namespace mlxn::cuda
