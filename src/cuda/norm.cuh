// RMSNorm over the last dimension (Zhang & Sennrich 2019): y = x * rsqrt(mean(x^2) + eps) * (w + w_offset), and
// the general row normalisation (LayerNorm, L2, group RMSNorm, fused residual adds) of kern::NormParams.
// Included by the generated instance files only; src/cuda/norm.cu dispatches through the kernel table.
#pragma once

#include "cuda/common.cuh"
#include "cuda/rows.cuh"
#include "kernels/norm.h"

namespace mlxn::cuda {

// Threads per row T (a multiple of 32) x rows per block R: blockDim = (T, R). R > 1 only when T == 32, so every
// reduction wider than a warp belongs to one row and a block never has a row past the end.
__device__ __forceinline__ float row_sum(float v, float* scratch) {
  v = warp_sum(v);
  if (blockDim.x == 32) return v;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float s = 0.0f;
  for (int i = 0; i < n_warps; ++i) s += scratch[i];
  return s;
}

// Rows whose length is a multiple of 8 with 16-byte aligned pointers: each thread keeps VPT chunks of 8 elements
// in registers, so x is read once from memory.
// At most 512 threads per row, so each thread may hold its chunks in up to 128 registers without spilling
// (1024-thread blocks cap a thread at 64).
template <int VPT>
constexpr int rms_norm_max_threads() {
  return 512;
}

// A thread's VPT chunks of 8 norm weights. PRE: read before the PDL wait (weights are constants:
// include/mlxn/ops/norm.h), so the row's loads are the only memory round trip after it; chosen per kernel where the
// registers allow. Otherwise each chunk is read where it is used.
template <typename Tw, int VPT, bool PRE>
struct WeightChunks {
  const Tw* w;
  Raw8<Tw> raw[PRE ? VPT : 1];
  template <typename Chunk>
  __device__ __forceinline__ WeightChunks(const Tw* w_, int64_t n8, Chunk chunk) : w(w_) {
    if constexpr (PRE) {
      if (w != nullptr) {
#pragma unroll
        for (int k = 0; k < VPT; ++k)
          if (chunk(k) < n8) raw[k] = load_raw8(w + chunk(k) * 8);
      }
    }
  }
  // Chunk k (column chunk c) as floats.
  __device__ __forceinline__ void get(int k, int64_t c, float (&v)[8]) const {
    if constexpr (PRE)
      unpack8(raw[k], v);
    else
      load8(w + c * 8, v);
  }
};

// Rows whose length is a multiple of 8 with 16-byte aligned pointers. Each thread keeps VPT chunks of 8 elements
// of its row in registers (x is read once) and prefetches the same chunks of the block's next row before it
// reduces and writes the current one, so loads stay in flight across the reduction. Blocks loop over rows.
template <typename Tx, typename Tw, typename Ty, int VPT>
__global__ void __launch_bounds__(rms_norm_max_threads<VPT>()) rms_norm_vec_kernel(kern::RmsNormParams p) {
  __shared__ float scratch[2][32];  // alternate rows use alternate halves: a fast warp cannot overwrite unread sums
  const int64_t n8 = p.cols >> 3;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.y;
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const Tw* w = static_cast<const Tw*>(p.w);
  const float inv_cols = 1.0f / static_cast<float>(p.cols);

  auto load_row = [&](int64_t r, Raw8<Tx>(&dst)[VPT]) {
    const Tx* x = static_cast<const Tx*>(p.x) + r * p.cols;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(k) * blockDim.x;
      if (c < n8) dst[k] = load_raw8(x + c * 8);
    }
  };

  const WeightChunks<Tw, VPT, VPT * (2 * sizeof(Raw8<Tx>) + sizeof(Raw8<Tw>)) <= 256> wc(
      w, n8, [](int k) { return threadIdx.x + static_cast<int64_t>(k) * blockDim.x; });
  Raw8<Tx> cur[VPT], nxt[VPT];
  pdl_wait();
  if (row < p.rows) load_row(row, cur);
  pdl_trigger();
  int half = 0;
  // With R > 1 rows per block (warp-wide rows) warps may leave the loop at different times: row_sum then uses
  // no block barrier. With R == 1 every thread of the block runs the same iterations.
  for (; row < p.rows; row += step) {
    if (row + step < p.rows) load_row(row + step, nxt);
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(k) * blockDim.x;
      if (c < n8) {
        float v[8];
        unpack8(cur[k], v);
#pragma unroll
        for (int i = 0; i < 8; ++i) ss = fmaf(v[i], v[i], ss);
      }
    }
    ss = row_sum(ss, scratch[half]);
    half ^= 1;
    const float r = rsqrtf(ss * inv_cols + p.eps);
    Ty* y = static_cast<Ty*>(p.y) + row * p.cols;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(k) * blockDim.x;
      if (c >= n8) continue;
      float v[8], o[8];
      unpack8(cur[k], v);
      if (w != nullptr) {
        float wv[8];
        wc.get(k, c, wv);
#pragma unroll
        for (int i = 0; i < 8; ++i) o[i] = v[i] * r * (wv[i] + p.w_offset);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) o[i] = v[i] * r;
      }
      store8(y + c * 8, o);
    }
#pragma unroll
    for (int k = 0; k < VPT; ++k) cur[k] = nxt[k];
  }
}

// Any row length and alignment: two passes over the row (the second read mostly hits L1/L2).
template <typename Tx, typename Tw, typename Ty>
__global__ void __launch_bounds__(1024) rms_norm_any_kernel(kern::RmsNormParams p) {
  __shared__ float scratch[32];
  pdl_wait();
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= p.rows) return;
  const Tx* x = static_cast<const Tx*>(p.x) + row * p.cols;
  Ty* y = static_cast<Ty*>(p.y) + row * p.cols;
  const Tw* w = static_cast<const Tw*>(p.w);
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
    const float v = to_f32(x[c]);
    ss = fmaf(v, v, ss);
  }
  ss = row_sum(ss, scratch);
  const float r = rsqrtf(__fdividef(ss, static_cast<float>(p.cols)) + p.eps);
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
    float o = to_f32(x[c]) * r;
    if (w != nullptr) o *= to_f32(w[c]) + p.w_offset;
    y[c] = from_f32<Ty>(o);
  }
}

inline int round_up32(int64_t v) { return static_cast<int>((v + 31) / 32 * 32); }

template <typename Tx, typename Tw, typename Ty>
Status launch_rms_norm(const kern::RmsNormParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  if (p.rows == 0) return Status::ok();
  const int64_t n8 = p.cols / 8;
  // f32 rows hold two words per chunk: at most 4 chunks per thread (current + prefetched rows in registers).
  constexpr int max_vpt = sizeof(Tx) == 4 ? 4 : 8;
  const bool vec = p.cols % 8 == 0 && aligned16(p.x) && aligned16(p.y) && (p.w == nullptr || aligned16(p.w)) &&
                   n8 <= max_vpt * rms_norm_max_threads<8>();
  // Aim at 128 threads per row with up to 8 chunks of 8 in flight per thread: enough bytes in flight per SM
  // (16 rows x 8 KiB for 4096-wide bf16 rows) while large rows still fit one block.
  // Measured on an H100 at 4096 x 4096 (bench/NOTES.md): one block per row (grid mode 0) with programmatic
  // dependent launch gives bf16 89.8% / f32 93.9% of copy bandwidth; resident row-looping grids (modes 1, 2) 82-85%;
  // 64 or 256 threads per row 86%; without PDL 86% / 91.6%.
  static const int target_tpr = tune_knob("MLXN_TUNE_RMS_TPR", 128);
  static const int grid_mode = tune_knob("MLXN_TUNE_RMS_GRID", 0);
  static const bool pdl = tune_knob("MLXN_TUNE_PDL", 1) != 0;
  int vpt = 1;
  while (vec && vpt < max_vpt && n8 > static_cast<int64_t>(vpt) * target_tpr) vpt *= 2;
  const int64_t work = vec ? (n8 + vpt - 1) / vpt : (p.cols + 7) / 8;
  const int t = std::min(1024, std::max(32, round_up32(work)));
  const int r = t == 32 ? 4 : 1;
  const dim3 block(static_cast<unsigned>(t), static_cast<unsigned>(r));
  int64_t blocks = (p.rows + r - 1) / r;
  void (*kernel)(kern::RmsNormParams) = rms_norm_any_kernel<Tx, Tw, Ty>;
  if (vec) {
    if (vpt == 1) kernel = rms_norm_vec_kernel<Tx, Tw, Ty, 1>;
    else if (vpt == 2) kernel = rms_norm_vec_kernel<Tx, Tw, Ty, 2>;
    else if (vpt == 4) kernel = rms_norm_vec_kernel<Tx, Tw, Ty, 4>;
    else if constexpr (max_vpt >= 8) kernel = rms_norm_vec_kernel<Tx, Tw, Ty, 8>;
    // The vectorized kernel loops over rows: as many blocks as stay resident (mode 1: occupancy query; mode 2:
    // 2048 threads per SM); mode 0: one block per row group.
    if (grid_mode == 1) {
      int per_sm = 0;
      if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, t * r, 0) != cudaSuccess || per_sm < 1)
        per_sm = 1;
      blocks = std::min<int64_t>(blocks, static_cast<int64_t>(ctx.props->multiprocessor_count) * per_sm);
    } else if (grid_mode == 2) {
      blocks = std::min<int64_t>(blocks, static_cast<int64_t>(ctx.props->multiprocessor_count) * (2048 / (t * r)));
    }
  }
  if (blocks > 0x7fffffff) return unsupported("rms_norm", p.rows, " rows exceed one launch");
  const dim3 grid(static_cast<unsigned>(std::max<int64_t>(blocks, 1)));
  return launch_status(launch_kernel(kernel, grid, block, stream, pdl, p), "rms_norm");
}

// ---- the general row normalisation (kern::NormParams) ----
// One row per group of blockDim.x threads (see row_group_sum), one block per row group, no row loop: the rms_norm
// measurements above found one block per row with PDL fastest. Small rows (head_dim 64 / 128 / 256 of q/k norms)
// take 8, 16 or 32 threads each with several rows per block instead of leaving lanes idle.

inline constexpr int kNormMaxThreads = 512;  // per row: a thread may hold x and r chunks in up to 128 registers

struct NormStats {
  float mean, scale;
};

// mean (LayerNorm only) and the factor every centred value is multiplied by, from the row's sums.
__device__ __forceinline__ NormStats norm_scale(const kern::NormParams& p, float s1, float s2) {
  const float n = static_cast<float>(p.cols);
  switch (p.kind) {
    case kern::NormKind::Layer:
      return {s1 / n, rsqrtf(s2 / n + p.eps)};
    case kern::NormKind::L2:
      return {0.0f, 1.0f / fmaxf(sqrtf(s1), p.eps)};
    default:
      return {0.0f, rsqrtf(s1 / n + p.eps)};
  }
}

// Rows whose length is a multiple of 8 with every pointer 16-byte aligned: each thread keeps VPT chunks of 8
// elements of x (and of r) in registers, so each input is read once. Tr is r's type: Tx, or f16 / bf16 under an
// f32 x (add_rms_norm of a block output into the f32 stream); with Tr == Tx the code is the same-dtype kernel's.
template <typename Tx, typename Tw, typename Ty, int VPT, typename Tr = Tx>
__global__ void __launch_bounds__(kNormMaxThreads) norm_vec_kernel(kern::NormParams p) {
  __shared__ float scratch[2][32];
  const int64_t n8 = p.cols >> 3;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool live = row < p.rows;  // threads of rows past the end still take part in the reductions
  const bool has_r = p.r != nullptr;
  const bool add_before = has_r && !p.residual_after;
  const Tx* x = static_cast<const Tx*>(p.x) + row * p.cols;
  const Tr* r = static_cast<const Tr*>(p.r) + row * p.cols;
  auto chunk = [&](int k) { return threadIdx.x + static_cast<int64_t>(k) * blockDim.x; };

  const Tw* w = static_cast<const Tw*>(p.w);
  const WeightChunks<Tw, VPT, VPT * (sizeof(Raw8<Tx>) + sizeof(Raw8<Tr>) + sizeof(Raw8<Tw>)) <= 320> wc(w, n8, chunk);
  Raw8<Tx> v[VPT];
  Raw8<Tr> rv[VPT];
  pdl_wait();
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    if (live && chunk(k) < n8) {
      v[k] = load_raw8(x + chunk(k) * 8);
      if (has_r) rv[k] = load_raw8(r + chunk(k) * 8);
    }
  }
  pdl_trigger();
  if (add_before) {
    Tx* h = static_cast<Tx*>(p.h) + row * p.cols;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      if (!live || chunk(k) >= n8) continue;
      float a[8], b[8];
      unpack8(v[k], a);
      unpack8(rv[k], b);
#pragma unroll
      for (int i = 0; i < 8; ++i) a[i] += b[i];
      v[k] = pack8<Tx>(a);  // the norm sees h as stored
      store_raw8(h + chunk(k) * 8, v[k]);
    }
  }
  const bool layer = p.kind == kern::NormKind::Layer;
  float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    if (!live || chunk(k) >= n8) continue;
    float a[8];
    unpack8(v[k], a);
#pragma unroll
    for (int i = 0; i < 8; ++i) s1 = layer ? s1 + a[i] : fmaf(a[i], a[i], s1);
  }
  s1 = row_group_sum(s1, scratch[0]);
  if (layer) {
    // Variance from the centred values (a second pass over registers): no cancellation for large means.
    const float mean = s1 / static_cast<float>(p.cols);
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      if (!live || chunk(k) >= n8) continue;
      float a[8];
      unpack8(v[k], a);
#pragma unroll
      for (int i = 0; i < 8; ++i) s2 = fmaf(a[i] - mean, a[i] - mean, s2);
    }
    s2 = row_group_sum(s2, scratch[1]);
  }
  if (!live) return;
  const NormStats st = norm_scale(p, s1, s2);
  const Tw* b = static_cast<const Tw*>(p.b);
  Ty* y = static_cast<Ty*>(p.y) + row * p.cols;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int64_t c = chunk(k);
    if (c >= n8) continue;
    float o[8];
    unpack8(v[k], o);
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = (o[i] - st.mean) * st.scale;
    if (w != nullptr) {
      float wv[8];
      wc.get(k, c, wv);
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] *= wv[i] + p.w_offset;
    }
    if (b != nullptr) {
      float bv[8];
      load8(b + c * 8, bv);
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] += bv[i];
    }
    if (p.residual_after) {
      float rr[8];
      unpack8(rv[k], rr);
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] += rr[i];
    }
    store8(y + c * 8, o);
  }
}

// Any row length and alignment: passes over the row in memory (the later ones mostly hit L1/L2). Each element is
// read and written by one thread only, so in-place outputs are safe, and a thread reads back its own h.
template <typename Tx, typename Tw, typename Ty, typename Tr = Tx>
__global__ void __launch_bounds__(1024) norm_any_kernel(kern::NormParams p) {
  __shared__ float scratch[2][32];
  pdl_wait();
  pdl_trigger();
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool live = row < p.rows;
  const bool add_before = p.r != nullptr && !p.residual_after;
  const int64_t base = row * p.cols;
  const Tx* x = static_cast<const Tx*>(p.x) + base;
  const Tr* r = static_cast<const Tr*>(p.r) + base;
  Tx* h = static_cast<Tx*>(p.h) + base;
  const Tx* src = add_before ? h : x;  // the normalised values, as stored
  const bool layer = p.kind == kern::NormKind::Layer;
  float s1 = 0.0f, s2 = 0.0f;
  if (live) {
    for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
      float v;
      if (add_before) {
        const Tx hv = from_f32<Tx>(to_f32(x[c]) + to_f32(r[c]));
        h[c] = hv;
        v = to_f32(hv);
      } else {
        v = to_f32(x[c]);
      }
      s1 = layer ? s1 + v : fmaf(v, v, s1);
    }
  }
  s1 = row_group_sum(s1, scratch[0]);
  if (layer) {
    const float mean = s1 / static_cast<float>(p.cols);
    if (live) {
      for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
        const float d = to_f32(src[c]) - mean;
        s2 = fmaf(d, d, s2);
      }
    }
    s2 = row_group_sum(s2, scratch[1]);
  }
  if (!live) return;
  const NormStats st = norm_scale(p, s1, s2);
  const Tw* w = static_cast<const Tw*>(p.w);
  const Tw* b = static_cast<const Tw*>(p.b);
  Ty* y = static_cast<Ty*>(p.y) + base;
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
    float o = (to_f32(src[c]) - st.mean) * st.scale;
    if (w != nullptr) o *= to_f32(w[c]) + p.w_offset;
    if (b != nullptr) o += to_f32(b[c]);
    if (p.residual_after) o += to_f32(r[c]);
    y[c] = from_f32<Ty>(o);
  }
}

template <typename Tx, typename Tw, typename Ty, typename Tr = Tx>
Status launch_norm(const kern::NormParams& p, const ExecContext& ctx) {
  if (p.rows == 0) return Status::ok();
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const int64_t n8 = p.cols / 8;
  // f32 chunks take two words: at most 4 per thread (8 with 16-bit types) for x and as many for r.
  constexpr int max_vpt = sizeof(Tx) == 4 ? 4 : 8;
  auto ok = [](const void* q) { return q == nullptr || aligned16(q); };
  const bool vec = p.cols % 8 == 0 && ok(p.x) && ok(p.r) && ok(p.w) && ok(p.b) && ok(p.h) && ok(p.y) &&
                   n8 <= static_cast<int64_t>(max_vpt) * kNormMaxThreads;
  // 128 threads per row with up to max_vpt chunks each, as rms_norm (tuned on an H100 at 4096 columns).
  int vpt = 1;
  while (vec && vpt < max_vpt && n8 > static_cast<int64_t>(vpt) * 128) vpt *= 2;
  const int64_t work = vec ? (n8 + vpt - 1) / vpt : (p.cols + 7) / 8;
  const int t = row_threads(work, vec ? kNormMaxThreads : 1024);
  const int r = t <= 32 ? 128 / t : 1;
  const dim3 block(static_cast<unsigned>(t), static_cast<unsigned>(r));
  const int64_t blocks = (p.rows + r - 1) / r;
  if (blocks > 0x7fffffff) return unsupported(p.op, p.rows, " rows exceed one launch");
  void (*kernel)(kern::NormParams) = norm_any_kernel<Tx, Tw, Ty, Tr>;
  if (vec) {
    if (vpt == 1)
      kernel = norm_vec_kernel<Tx, Tw, Ty, 1, Tr>;
    else if (vpt == 2)
      kernel = norm_vec_kernel<Tx, Tw, Ty, 2, Tr>;
    else if (vpt == 4)
      kernel = norm_vec_kernel<Tx, Tw, Ty, 4, Tr>;
    else if constexpr (max_vpt >= 8)
      kernel = norm_vec_kernel<Tx, Tw, Ty, 8, Tr>;
  }
  return launch_status(launch_kernel(kernel, dim3(static_cast<unsigned>(blocks)), block, stream, true, p), p.op);
}

}  // namespace mlxn::cuda
