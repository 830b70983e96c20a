// Embedding lookup of float tables: out[t, :] = table[ids[t], :] * scale, zeros for an id outside [0, vocab).
// Included by the generated instance files; src/cuda/embedding.cu dispatches (block-type tables: the row
// dequantizer, src/cuda/dequant.cuh).
#pragma once

#include "cuda/common.cuh"
#include "kernels/embedding.h"

namespace mlxn::cuda {

// 8-element units through 16-byte accesses (rows a multiple of 8 elements, pointers aligned); each thread loads
// its id once per unit (the ids are few and stay in L1).
template <typename Tt, typename To>
__global__ void __launch_bounds__(256) embedding_vec_kernel(kern::EmbeddingParams p) {
  pdl_wait();
  pdl_trigger();
  const int64_t per_row = p.dim / 8, total = p.n * per_row;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < total;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = c / per_row, u = c - t * per_row;
    const int64_t id = p.ids[t];
    float v[8];
    if (id >= 0 && id < p.vocab) {
      load8(static_cast<const Tt*>(p.table) + id * p.dim + u * 8, v);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] *= p.scale;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = 0.0f;
    }
    store8(static_cast<To*>(p.out) + t * p.dim + u * 8, v);
  }
}

template <typename Tt, typename To>
__global__ void __launch_bounds__(256) embedding_any_kernel(kern::EmbeddingParams p) {
  pdl_wait();
  pdl_trigger();
  const int64_t total = p.n * p.dim;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < total;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = c / p.dim, e = c - t * p.dim;
    const int64_t id = p.ids[t];
    const float v = id >= 0 && id < p.vocab ? to_f32(static_cast<const Tt*>(p.table)[id * p.dim + e]) * p.scale : 0.0f;
    static_cast<To*>(p.out)[c] = from_f32<To>(v);
  }
}

template <typename Tt, typename To>
Status launch_embedding(const kern::EmbeddingParams& p, const ExecContext& ctx) {
  if (p.n == 0 || p.dim == 0) return Status::ok();
  const int sms = ctx.props != nullptr && ctx.props->multiprocessor_count > 0 ? ctx.props->multiprocessor_count : 132;
  const int64_t max_blocks = static_cast<int64_t>(sms) * 32;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const bool vec = p.dim % 8 == 0 && aligned16(p.table) && aligned16(p.out);
  if (vec)
    return launch_status(
        launch_kernel(embedding_vec_kernel<Tt, To>, grid_1d(p.n * (p.dim / 8), 256, max_blocks), 256, stream, true, p),
        "embedding");
  return launch_status(
      launch_kernel(embedding_any_kernel<Tt, To>, grid_1d(p.n * p.dim, 256, max_blocks), 256, stream, true, p),
      "embedding");
}

}  // namespace mlxn::cuda
