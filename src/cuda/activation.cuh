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
// of the float64 reference.
//
// 16-bit outputs (Fast) need about 1e-4 relative accuracy only, and at two elements per 4 bytes moved the accurate
// erfcf / expf made them compute-bound (gelu bf16 reached half of copy bandwidth). There:
//  - exp is __expf (ex2.approx: relative error about 2^-21 plus |arg| * 2^-24 from scaling by log2(e); at most
//    ~1e-5 over the arguments that do not overflow or underflow);
//  - GELU uses erfc(z) = exp(-z^2) * R(z) for z = |x| / sqrt(2) clamped to [0, 10], R a [3/3] rational fit of the
//    scaled erfc (erfcx) with relative error 2.7e-6 on [0, 5] (fitted with mpmath, float coefficients; see
//    scripts/fit_erfcx.py). Beyond z = 5 |GELU| < 1e-11, far below every tolerance; the clamp keeps R finite. The
//    whole Phi(x) is relative-accurate to about 1e-5 in both tails: Phi = erfc / 2 for x < 0 (no cancellation),
//    1 - erfc / 2 for x >= 0 (erfc / 2 <= 1/2 there).
__device__ __forceinline__ float fast_erfc_pos(float z) {
  z = fminf(z, 10.0f);
  const float num = fmaf(fmaf(fmaf(-1.497034100e-04f, z, 1.851692349e-01f), z, 6.552245617e-01f), z, 1.000002623e+00f);
  const float den = fmaf(fmaf(fmaf(3.235273063e-01f, z, 1.196559548e+00f), z, 1.783752322e+00f), z, 1.0f);
  return __expf(-z * z) * __fdividef(num, den);
}

template <kern::ActOp Op, bool Fast = false>
__device__ __forceinline__ float act_fn(float x, float cap) {
  if constexpr (Op == kern::ActOp::Silu) {
    return x / (1.0f + (Fast ? __expf(-x) : expf(-x)));  // x below -88: exp overflows to inf and the quotient is -0
  } else if constexpr (Op == kern::ActOp::GeluErf) {
    if constexpr (Fast) {
      const float h = 0.5f * fast_erfc_pos(fabsf(x) * 0.70710678118654752f);
      return x * (x < 0.0f ? h : 1.0f - h);
    } else {
      return 0.5f * x * erfcf(x * -0.70710678118654752f);
    }
  } else if constexpr (Op == kern::ActOp::GeluTanh) {
    const float u = 0.79788456080286536f * fmaf(0.044715f * x, x * x, x);
    return x / (1.0f + (Fast ? __expf(-2.0f * u) : expf(-2.0f * u)));
  } else if constexpr (Op == kern::ActOp::Sigmoid) {
    return 1.0f / (1.0f + (Fast ? __expf(-x) : expf(-x)));
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
// accesses, two chunks per thread per step (a grid-stride apart, both loaded first: 64 bytes in flight per thread
// for f32); block 0 does the last n % 8 elements of a single row.
template <typename Tx, typename Ty, kern::ActOp Op, bool Gated>
__global__ void __launch_bounds__(kActBlock)
    act_vec_kernel(const Tx* x, const Tx* u, Ty* y, int64_t n, ActIndex ix, float cap) {
  constexpr bool kFast = sizeof(Ty) == 2;
  pdl_wait();  // before the first read of an earlier op's output
  pdl_trigger();
  const int64_t n8 = n & ~int64_t{7};
  if (blockIdx.x == 0 && n8 + threadIdx.x < n) {
    const int64_t i = n8 + threadIdx.x;
    float o = act_fn<Op, kFast>(to_f32(x[i]), cap);
    if constexpr (Gated) o *= to_f32(u[i]);
    y[i] = from_f32<Ty>(o);
  }
  const int64_t step = act_stride() * 8;
  for (int64_t i = act_thread() * 8; i < n8; i += 2 * step) {
    const int64_t i2 = i + step;
    const bool two = i2 < n8;
    float v[2][8], g[2][8];
    int64_t xo, uo;
    ix.split(i, xo, uo);
    load8(x + xo, v[0]);
    if constexpr (Gated) load8(u + uo, g[0]);
    if (two) {
      ix.split(i2, xo, uo);
      load8(x + xo, v[1]);
      if constexpr (Gated) load8(u + uo, g[1]);
    }
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      if (c == 1 && !two) break;
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        v[c][k] = act_fn<Op, kFast>(v[c][k], cap);
        if constexpr (Gated) v[c][k] *= g[c][k];
      }
      store8(y + (c == 0 ? i : i2), v[c]);
    }
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
      float o = act_fn<Op, sizeof(Ty) == 2>(v[k], cap);
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
