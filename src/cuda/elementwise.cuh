// Elementwise ops (add, mul, scale, add_scalar, cast) and copies between views.
// Included by the generated instance files and by src/cuda/elementwise.cu, which dispatches through the kernel table.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "kernels/elementwise.h"

namespace mlxn::cuda {

// Launch shape: 256-thread blocks, one 8-element chunk per thread per step, a grid as large as the work up to 64 blocks
// per SM, then a grid-stride loop. Measured on an H100 at 4096x4096 against the 1 GiB copy bandwidth: add bf16 91%,
// mul f32 94%, cast f32->bf16 91%, scale bf16 86% (a cudaMemcpyAsync of the same 32 MiB also reaches 86%).
// Rejected: two chunks per thread (mul f32 90%: a warp's f32 accesses then span twice the bytes), grids capped at
// 8 to 16 blocks per SM (1 to 6% slower).
inline constexpr int kEwBlock = 256;
inline constexpr int kEwBlocksPerSm = 64;
// Elements per thread of the element-by-element kernels (unaligned views, strided copies): all of a thread's loads are
// issued before its first store, so 8 loads are in flight per thread instead of one.
inline constexpr int kEwIlp = 8;

inline unsigned ew_grid(int64_t threads, const ExecContext& ctx) {
  const int sms = ctx.props != nullptr && ctx.props->multiprocessor_count > 0 ? ctx.props->multiprocessor_count : 132;
  return grid_1d(threads, kEwBlock, static_cast<int64_t>(sms) * kEwBlocksPerSm);
}

__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }
__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

// ---- per-element operations: f32, and the _rn intrinsics keep the compiler from fusing them ----
template <kern::BinaryOp Op>
__device__ __forceinline__ float binary_op(float a, float b) {
  if constexpr (Op == kern::BinaryOp::Add) {
    return __fadd_rn(a, b);
  } else {
    return __fmul_rn(a, b);
  }
}

template <kern::UnaryOp Op>
__device__ __forceinline__ float unary_op(float x, float k) {
  if constexpr (Op == kern::UnaryOp::Scale) {
    return __fmul_rn(x, k);
  } else if constexpr (Op == kern::UnaryOp::AddScalar) {
    return __fadd_rn(x, k);
  } else {
    return x;
  }
}

// ---- binary ops ----

// Same shape, all pointers 16-byte aligned: 8-element chunks through 16-byte accesses; block 0 does the last n % 8.
// out may be a or b: every element is read once, by the thread that then writes it.
template <typename Ta, typename Tb, typename To, kern::BinaryOp Op>
__global__ void __launch_bounds__(kEwBlock) binary_vec_kernel(const Ta* a, const Tb* b, To* out, int64_t n) {
  pdl_wait();  // before the first read of an earlier op's output
  pdl_trigger();
  const int64_t n8 = n >> 3;
  for (int64_t c = global_thread(); c < n8; c += grid_stride()) {
    float va[8], vb[8], vo[8];
    load8(a + c * 8, va);
    load8(b + c * 8, vb);
#pragma unroll
    for (int i = 0; i < 8; ++i) vo[i] = binary_op<Op>(va[i], vb[i]);
    store8(out + c * 8, vo);
  }
  const int64_t i = n8 * 8 + threadIdx.x;
  if (blockIdx.x == 0 && i < n) out[i] = from_f32<To>(binary_op<Op>(to_f32(a[i]), to_f32(b[i])));
}

// Same shape, some pointer unaligned: kEwIlp elements per thread, kEwBlock apart so that a warp's accesses stay
// coalesced.
template <typename Ta, typename Tb, typename To, kern::BinaryOp Op>
__global__ void __launch_bounds__(kEwBlock) binary_scalar_kernel(const Ta* a, const Tb* b, To* out, int64_t n) {
  pdl_wait();  // before the first read of an earlier op's output
  pdl_trigger();
  for (int64_t i0 = static_cast<int64_t>(blockIdx.x) * kEwBlock * kEwIlp + threadIdx.x; i0 < n;
       i0 += grid_stride() * kEwIlp) {
    float v[kEwIlp];
#pragma unroll
    for (int k = 0; k < kEwIlp; ++k) {
      const int64_t i = i0 + k * kEwBlock;
      v[k] = i < n ? binary_op<Op>(to_f32(a[i]), to_f32(b[i])) : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < kEwIlp; ++k) {
      const int64_t i = i0 + k * kEwBlock;
      if (i < n) out[i] = from_f32<To>(v[k]);
    }
  }
}

// b's side of a broadcast: out's (collapsed) shape and b's strides, innermost dimension first so that the unrolled
// loops below index it with constants.
struct BroadcastIndex {
  int rank = 0;
  int64_t shape[kern::kMaxIndexDims] = {};
  int64_t stride[kern::kMaxIndexDims] = {};
};

inline BroadcastIndex broadcast_index(const kern::BinaryParams& p) {
  BroadcastIndex ix;
  ix.rank = p.rank;
  for (int d = 0; d < p.rank; ++d) {
    ix.shape[d] = p.shape[p.rank - 1 - d];
    ix.stride[d] = p.b_strides[p.rank - 1 - d];
  }
  return ix;
}

// b's offset of the first element of `row`, rows being the indices over every dimension but the innermost.
__device__ __forceinline__ int64_t row_offset(const BroadcastIndex& ix, int64_t row) {
  int64_t off = 0;
#pragma unroll
  for (int d = 1; d < kern::kMaxIndexDims; ++d) {
    if (d >= ix.rank) break;
    if (d == ix.rank - 1) {
      off += row * ix.stride[d];
      break;
    }
    const int64_t q = row / ix.shape[d];
    off += (row - q * ix.shape[d]) * ix.stride[d];
    row = q;
  }
  return off;
}

// b's values for the run of m <= 8 outputs from index i0, rows having 8 or more elements: one row decomposition, and
// one for the next row since such a run crosses at most one row boundary. A single load when b is constant along the
// row (per-row or scalar b), a 16-byte one when its 8 elements are contiguous and aligned (a bias row).
template <typename Tb>
__device__ __forceinline__ void broadcast_run(const BroadcastIndex& ix, const Tb* b, int64_t i0, int m,
                                              float (&vb)[8]) {
  const int64_t inner = ix.shape[0], inner_stride = ix.stride[0];
  const int64_t row = i0 / inner, j = i0 - row * inner;
  const int64_t off = row_offset(ix, row) + j * inner_stride;
  if (j + m <= inner && inner_stride == 0) {
    const float v = to_f32(b[off]);
#pragma unroll
    for (int k = 0; k < 8; ++k) vb[k] = v;
  } else if (m == 8 && j + 8 <= inner && inner_stride == 1 && aligned16(b + off)) {
    load8(b + off, vb);
  } else {
    // Element k is at off + k * inner_stride in this row, at next + k * inner_stride past its end.
    const int64_t next = row_offset(ix, row + 1) - (inner - j) * inner_stride;
#pragma unroll
    for (int k = 0; k < 8; ++k) vb[k] = k < m ? to_f32(b[(j + k < inner ? off : next) + k * inner_stride]) : 0.0f;
  }
}

// b broadcast against a: each thread takes a run of 8 outputs and loads a first (16-byte accesses when `vec`: a and
// out aligned), so that load is in flight while b's offsets are worked out. Rows shorter than 8 elements take the
// index math per element. Measured on an H100 at 4096x4096 bf16: a bias row reaches 77% of the copy bandwidth, a
// per-row scale 90%. Rejected: two runs per thread with all their loads first (69%, at 64 registers a thread).
template <typename Ta, typename Tb, typename To, kern::BinaryOp Op>
__global__ void __launch_bounds__(kEwBlock)
    binary_bcast_kernel(const Ta* a, const Tb* b, To* out, int64_t n, BroadcastIndex ix, bool vec) {
  pdl_wait();  // before the first read of an earlier op's output
  pdl_trigger();
  const int64_t inner = ix.shape[0], inner_stride = ix.stride[0];
  const int64_t runs = (n + 7) >> 3;
  for (int64_t r = global_thread(); r < runs; r += grid_stride()) {
    const int64_t i0 = r * 8;
    const int m = static_cast<int>(n - i0 < 8 ? n - i0 : 8);
    if (inner < 8) {
#pragma unroll 1
      for (int k = 0; k < m; ++k) {
        const int64_t i = i0 + k, row = i / inner;
        const int64_t bo = row_offset(ix, row) + (i - row * inner) * inner_stride;
        out[i] = from_f32<To>(binary_op<Op>(to_f32(a[i]), to_f32(b[bo])));
      }
      continue;
    }
    float va[8], vb[8], vo[8];
    if (vec && m == 8) {
      load8(a + i0, va);
    } else {
#pragma unroll
      for (int k = 0; k < 8; ++k) va[k] = k < m ? to_f32(a[i0 + k]) : 0.0f;
    }
    broadcast_run(ix, b, i0, m, vb);
#pragma unroll
    for (int k = 0; k < 8; ++k) vo[k] = binary_op<Op>(va[k], vb[k]);
    if (vec && m == 8) {
      store8(out + i0, vo);
    } else {
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        if (k < m) out[i0 + k] = from_f32<To>(vo[k]);
      }
    }
  }
}

template <typename Ta, typename Tb, typename To, kern::BinaryOp Op>
void enqueue_binary(const kern::BinaryParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const auto* a = static_cast<const Ta*>(p.a);
  const auto* b = static_cast<const Tb*>(p.b);
  auto* out = static_cast<To*>(p.out);
  if (!p.b_same) {
    launch_kernel(binary_bcast_kernel<Ta, Tb, To, Op>, ew_grid((p.n + 7) / 8, ctx), kEwBlock, stream, true, a, b, out,
                  p.n, broadcast_index(p), aligned16(a) && aligned16(out));
  } else if (aligned16(a) && aligned16(b) && aligned16(out)) {
    launch_kernel(binary_vec_kernel<Ta, Tb, To, Op>, ew_grid(p.n / 8, ctx), kEwBlock, stream, true, a, b, out, p.n);
  } else {
    launch_kernel(binary_scalar_kernel<Ta, Tb, To, Op>, ew_grid((p.n + kEwIlp - 1) / kEwIlp, ctx), kEwBlock, stream,
                  true, a, b, out, p.n);
  }
}

// The launcher of add and mul for one (a, b, out) dtype triple.
template <typename Ta, typename Tb, typename To>
Status launch_binary(const kern::BinaryParams& p, const ExecContext& ctx) {
  if (p.n == 0) return Status::ok();
  const bool add = p.op == kern::BinaryOp::Add;
  if (add) {
    enqueue_binary<Ta, Tb, To, kern::BinaryOp::Add>(p, ctx);
  } else {
    enqueue_binary<Ta, Tb, To, kern::BinaryOp::Mul>(p, ctx);
  }
  return launch_status(cudaGetLastError(), add ? "add" : "mul");
}

// ---- unary ops: k is read from the step-parameter block when the kernel runs (slot >= 0) ----

__device__ __forceinline__ float scalar_operand(float value, const uint32_t* step, int slot) {
  return slot >= 0 ? __uint_as_float(step[slot]) : value;
}

template <typename Tx, typename To, kern::UnaryOp Op>
__global__ void __launch_bounds__(kEwBlock)
    unary_vec_kernel(const Tx* x, To* out, int64_t n, float value, const uint32_t* step, int slot) {
  pdl_wait();  // before the first read of an earlier op's output
  pdl_trigger();
  const float k = scalar_operand(value, step, slot);
  const int64_t n8 = n >> 3;
  for (int64_t c = global_thread(); c < n8; c += grid_stride()) {
    float v[8];
    load8(x + c * 8, v);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = unary_op<Op>(v[i], k);
    store8(out + c * 8, v);
  }
  const int64_t i = n8 * 8 + threadIdx.x;
  if (blockIdx.x == 0 && i < n) out[i] = from_f32<To>(unary_op<Op>(to_f32(x[i]), k));
}

template <typename Tx, typename To, kern::UnaryOp Op>
__global__ void __launch_bounds__(kEwBlock)
    unary_scalar_kernel(const Tx* x, To* out, int64_t n, float value, const uint32_t* step, int slot) {
  pdl_wait();  // before the first read of an earlier op's output
  pdl_trigger();
  const float k = scalar_operand(value, step, slot);
  for (int64_t i0 = static_cast<int64_t>(blockIdx.x) * kEwBlock * kEwIlp + threadIdx.x; i0 < n;
       i0 += grid_stride() * kEwIlp) {
    float v[kEwIlp];
#pragma unroll
    for (int e = 0; e < kEwIlp; ++e) {
      const int64_t i = i0 + e * kEwBlock;
      v[e] = i < n ? unary_op<Op>(to_f32(x[i]), k) : 0.0f;
    }
#pragma unroll
    for (int e = 0; e < kEwIlp; ++e) {
      const int64_t i = i0 + e * kEwBlock;
      if (i < n) out[i] = from_f32<To>(v[e]);
    }
  }
}

template <typename Tx, typename To, kern::UnaryOp Op>
void enqueue_unary(const Tx* x, To* out, int64_t n, float value, const uint32_t* step, int slot,
                   const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  if (aligned16(x) && aligned16(out)) {
    launch_kernel(unary_vec_kernel<Tx, To, Op>, ew_grid(n / 8, ctx), kEwBlock, stream, true, x, out, n, value, step,
                  slot);
  } else {
    launch_kernel(unary_scalar_kernel<Tx, To, Op>, ew_grid((n + kEwIlp - 1) / kEwIlp, ctx), kEwBlock, stream, true, x,
                  out, n, value, step, slot);
  }
}

inline Status memcpy_status(cudaError_t e, std::string_view op) {
  if (e == cudaSuccess) return Status::ok();
  return error(StatusCode::DeviceError, op, "cudaMemcpyAsync failed: ", cudaGetErrorName(e), " (",
               cudaGetErrorString(e), ")");
}

// The launcher of scale, add_scalar and cast for one (x, out) dtype pair.
template <typename Tx, typename To>
Status launch_unary(const kern::UnaryParams& p, const ExecContext& ctx) {
  if (p.n == 0) return Status::ok();
  const auto* x = static_cast<const Tx*>(p.x);
  auto* out = static_cast<To*>(p.out);
  switch (p.op) {
    case kern::UnaryOp::Scale:
      enqueue_unary<Tx, To, kern::UnaryOp::Scale>(x, out, p.n, p.value, ctx.step_params, p.step_slot, ctx);
      return launch_status(cudaGetLastError(), "scale");
    case kern::UnaryOp::AddScalar:
      enqueue_unary<Tx, To, kern::UnaryOp::AddScalar>(x, out, p.n, p.value, ctx.step_params, p.step_slot, ctx);
      return launch_status(cudaGetLastError(), "add_scalar");
    case kern::UnaryOp::Cast:
      if constexpr (std::is_same_v<Tx, To>) {
        // Same dtype: the bits do not change.
        if (p.x == p.out) return Status::ok();
        return memcpy_status(cudaMemcpyAsync(p.out, p.x, static_cast<size_t>(p.n) * sizeof(Tx),
                                             cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(ctx.stream)),
                             "cast");
      } else {
        enqueue_unary<Tx, To, kern::UnaryOp::Cast>(x, out, p.n, 0.0f, nullptr, -1, ctx);
        return launch_status(cudaGetLastError(), "cast");
      }
  }
  return unsupported("unary", "unknown op ", static_cast<int>(p.op));
}

// ---- copies ----

// Both views of a strided copy, innermost dimension first (as BroadcastIndex).
struct CopyIndex {
  int rank = 0;
  int64_t shape[kern::kMaxIndexDims] = {};
  int64_t src[kern::kMaxIndexDims] = {};
  int64_t dst[kern::kMaxIndexDims] = {};
};

inline CopyIndex copy_index(const kern::CopyParams& p) {
  CopyIndex ix;
  ix.rank = p.rank;
  for (int d = 0; d < p.rank; ++d) {
    ix.shape[d] = p.shape[p.rank - 1 - d];
    ix.src[d] = p.src_strides[p.rank - 1 - d];
    ix.dst[d] = p.dst_strides[p.rank - 1 - d];
  }
  if (ix.rank == 0) {  // one element
    ix.rank = 1;
    ix.shape[0] = 1;
  }
  return ix;
}

inline bool copy_is_contiguous(const kern::CopyParams& p) {
  return p.rank == 0 || (p.rank == 1 && p.src_strides[0] == 1 && p.dst_strides[0] == 1);
}

// Element offsets of index i in both views. (nvcc divides 64-bit values that fit in 32 bits with a 32-bit division.)
__device__ __forceinline__ void copy_offsets(const CopyIndex& ix, int64_t i, int64_t& so, int64_t& dof) {
  so = 0;
  dof = 0;
#pragma unroll
  for (int d = 0; d < kern::kMaxIndexDims; ++d) {
    if (d == ix.rank - 1) {
      so += i * ix.src[d];
      dof += i * ix.dst[d];
      break;
    }
    const int64_t q = i / ix.shape[d], r = i - q * ix.shape[d];
    so += r * ix.src[d];
    dof += r * ix.dst[d];
    i = q;
  }
}

// dst[idx] = src[idx] over any two strided views: a bit copy when Ts is Td, else an f32 / f16 / bf16 conversion.
// Consecutive threads take consecutive indices, so whichever view is contiguous innermost is accessed coalesced.
template <typename Ts, typename Td>
__global__ void __launch_bounds__(kEwBlock) copy_strided_kernel(const Ts* src, Td* dst, int64_t n, CopyIndex ix) {
  pdl_wait();  // before the first read of an earlier op's output
  pdl_trigger();
  constexpr int kIlp = kEwIlp / 2;  // each element also keeps its 64-bit destination offset
  for (int64_t i0 = static_cast<int64_t>(blockIdx.x) * kEwBlock * kIlp + threadIdx.x; i0 < n;
       i0 += grid_stride() * kIlp) {
    Td v[kIlp];
    int64_t dof[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = i0 + k * kEwBlock;
      if (i >= n) continue;
      int64_t so;
      copy_offsets(ix, i, so, dof[k]);
      if constexpr (std::is_same_v<Ts, Td>) {
        v[k] = src[so];
      } else {
        v[k] = from_f32<Td>(to_f32(src[so]));
      }
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      if (i0 + k * kEwBlock < n) dst[dof[k]] = v[k];
    }
  }
}

template <typename Ts, typename Td>
void enqueue_copy_strided(const void* src, void* dst, int64_t n, const CopyIndex& ix, const ExecContext& ctx) {
  launch_kernel(copy_strided_kernel<Ts, Td>, ew_grid((n + kEwIlp / 2 - 1) / (kEwIlp / 2), ctx), kEwBlock,
                static_cast<cudaStream_t>(ctx.stream), true, static_cast<const Ts*>(src), static_cast<Td*>(dst), n, ix);
}

// The launcher of copies that convert between two float dtypes: contiguous views take the vectorized cast path,
// anything else the indexed kernel.
template <typename Ts, typename Td>
Status launch_convert_copy(const kern::CopyParams& p, const ExecContext& ctx) {
  if (p.n == 0) return Status::ok();
  if (copy_is_contiguous(p)) {
    enqueue_unary<Ts, Td, kern::UnaryOp::Cast>(static_cast<const Ts*>(p.src), static_cast<Td*>(p.dst), p.n, 0.0f,
                                               nullptr, -1, ctx);
  } else {
    enqueue_copy_strided<Ts, Td>(p.src, p.dst, p.n, copy_index(p), ctx);
  }
  return launch_status(cudaGetLastError(), "copy");
}

// The launcher of same-dtype copies of every dtype (src/cuda/elementwise.cu).
Status launch_copy_bits(const kern::CopyParams& p, const ExecContext& ctx);

}  // namespace mlxn::cuda
