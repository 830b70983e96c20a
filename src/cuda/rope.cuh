// RoPE (Su et al. 2021) with ggml's rope_yarn scaling, M-RoPE sections and an optional per-head RMS norm first
// (include/mlxn/ops/rope.h has the math). Included by the generated instance files; src/cuda/rope.cu dispatches.
#pragma once

#include "cuda/common.cuh"
#include "kernels/rope.h"

namespace mlxn::cuda {

// ---- the angle ----
// theta = pos * F_i for pair i, with F_i = base^(-2i / rope_dim) / ff_i * (freq_scale * (1 - ramp_i) + ramp_i) (ggml's
// rope_yarn: theta_i (1 - ramp) + theta_e ramp with theta_i = freq_scale theta_e). F_i / (2 pi) is worked out in
// double and the angle reduced there: x = pos * F_i / (2 pi) turns, r = 2 (x - rint(x)) in [-1, 1] (error ~1e-16
// relative to x, under 1e-10 turns for positions below 2^24), then cos / sin of pi r in float (sincospif, ~1 ulp,
// exact argument reduction). Rounding r to float costs at most 2^-24 pi rad: the rotation matches the double
// reference to ~2e-7 relative at any position. (The former all-double sincospi per pair cost ~4x the arithmetic.)

__device__ __forceinline__ int rope_stream(const kern::RopeParams& p, int i) {
  if (p.sections_mode == 0) return 0;
  const int s0 = p.sections[0], s1 = p.sections[1], s2 = p.sections[2];
  const int sector = i % (s0 + s1 + s2 + p.sections[3]);
  int stream;
  if (p.sections_mode == 1) {
    stream = sector < s0 ? 0 : sector < s0 + s1 ? 1 : sector < s0 + s1 + s2 ? 2 : 3;
  } else {  // interleaved (ggml's IMROPE)
    const int m = sector % 3;
    stream = (m == 1 && sector < 3 * s1) ? 1 : (m == 2 && sector < 3 * s2) ? 2 : (m == 0 && sector < 3 * s0) ? 0 : 3;
  }
  return stream < p.n_streams ? stream : 0;
}

// F_i / (2 pi): turns of pair i per unit of position.
__device__ __forceinline__ double rope_turns_per_pos(const kern::RopeParams& p, int i) {
  double f = exp2(-2.0 * i * p.log2_base / static_cast<double>(p.rope_dim));
  if (p.freq_factors != nullptr) f /= static_cast<double>(p.freq_factors[i]);
  double scale = p.freq_scale;
  if (p.ext_factor != 0.0f) {
    const double y = (i - static_cast<double>(p.corr_lo)) / fmax(0.001, static_cast<double>(p.corr_hi) - p.corr_lo);
    const double ramp = (1.0 - fmin(1.0, fmax(0.0, y))) * p.ext_factor;
    scale = p.freq_scale * (1.0 - ramp) + ramp;
  }
  return f * scale * 0.15915494309189533577;
}

// The magnitude scale of every pair (YaRN's attention factor).
__device__ __forceinline__ float rope_mscale(const kern::RopeParams& p) {
  return p.ext_factor != 0.0f ? p.attn_factor * (1.0f + 0.1f * logf(1.0f / p.freq_scale)) : p.attn_factor;
}

// (cos, sin) * mscale of pair i for token t.
__device__ __forceinline__ float2 rope_cos_sin(const kern::RopeParams& p, int i, int64_t t, float mscale) {
  const double pos = static_cast<double>(p.pos[static_cast<int64_t>(rope_stream(p, i)) * p.tokens + t]);
  const double x = pos * rope_turns_per_pos(p, i);
  float s, c;
  sincospif(static_cast<float>(2.0 * (x - rint(x))), &s, &c);
  return make_float2(c * mscale, s * mscale);
}

// ---- 8-element chunks held raw (16-byte words), converted to f32 when used ----

template <typename T>
struct Chunk8 {
  uint4 w[sizeof(T) == 4 ? 2 : 1];
};

template <typename T>
__device__ __forceinline__ Chunk8<T> load_chunk8(const T* p) {
  Chunk8<T> c;
#pragma unroll
  for (int i = 0; i < (sizeof(T) == 4 ? 2 : 1); ++i) c.w[i] = __ldg(reinterpret_cast<const uint4*>(p) + i);
  return c;
}

template <typename T>
__device__ __forceinline__ void unpack_chunk8(const Chunk8<T>& c, float (&v)[8]) {
  const T* e = reinterpret_cast<const T*>(c.w);
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = to_f32(e[i]);
}

// 8 weights (x's type or f32, chosen at run time: the weight is tiny and cached).
template <typename T>
__device__ __forceinline__ void load_weight8(const void* w, bool w_f32, int64_t e, float off, float (&v)[8]) {
  if (w_f32) {
    load8(static_cast<const float*>(w) + e, v);
  } else {
    load8(static_cast<const T*>(w) + e, v);
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] += off;
}

// Threads per block of the vectorized kernel, and the size of its cos / sin table (per block: the tokens its rows
// span x rope_dim / 2 pairs).
inline constexpr int kRopeThreads = 256;
inline constexpr int kRopeTable = 2048;
// 16-bit rows without the norm fit 64 registers: 4 blocks per SM keep enough loads in flight. f32 and the norm's
// held rows need up to 128 (64 spills there).
template <typename T, bool Norm>
constexpr int rope_min_blocks() {
  return sizeof(T) == 2 && !Norm ? 4 : 2;
}

// Rows of head_dim elements in 8-element units: rotated units first (Neox: elements [8u, 8u + 8) and their partners
// half further; Normal: 4 adjacent pairs), then the copied tail. A group of G threads (blockDim.x, a power of two
// <= 32) owns a row; blockDim.y rows per block. The block first works out cos / sin of every pair of the tokens
// its rows span into shared memory (once per token instead of once per head), with the first
// units' loads already in flight. With Norm, a thread holds all its units of the row (units <= G * KPT).
template <typename T, bool Neox, bool Norm, int KPT>
__global__ void __launch_bounds__(kRopeThreads, rope_min_blocks<T, Norm>()) rope_vec_kernel(kern::RopeParams p) {
  __shared__ float2 table[kRopeTable];
  const int G = blockDim.x;
  const int lane = threadIdx.x;
  const int half = static_cast<int>(p.rope_dim / 2);
  const int64_t rows = p.tokens * p.heads;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * blockDim.y;
  const int64_t row = row0 + threadIdx.y;
  const bool valid = row < rows;
  const int64_t t_first = row0 / p.heads;
  const int64_t t = valid ? row / p.heads : t_first, h = valid ? row - t * p.heads : 0;
  const int64_t last = (row0 + blockDim.y < rows ? row0 + blockDim.y : rows) - 1;
  const int n_tok = static_cast<int>(last / p.heads - t_first + 1);
  const int nr = static_cast<int>(Neox ? p.rope_dim / 16 : p.rope_dim / 8);
  const int np = (p.in_place && !Norm) ? 0 : static_cast<int>((p.head_dim - p.rope_dim) / 8);
  const int nu = nr + np;
  const T* x = static_cast<const T*>(p.x) + t * p.x_stride_t + h * p.x_stride_h;
  T* out = static_cast<T*>(p.out) + t * p.out_stride_t + h * p.out_stride_h;

  Chunk8<T> a[KPT], b[KPT];
  auto load_group = [&](int u0) {
#pragma unroll
    for (int k = 0; k < KPT; ++k) {
      const int u = u0 + k * G + lane;
      if (!valid || u >= nu) continue;
      if (u < nr) {
        a[k] = load_chunk8(x + 8 * u);
        if constexpr (Neox) b[k] = load_chunk8(x + 8 * u + half);
      } else {
        a[k] = load_chunk8(x + p.rope_dim + 8 * (u - nr));
      }
    }
  };

  pdl_wait();  // positions and x may come from the previous kernel
  load_group(0);
  const float mscale = rope_mscale(p);
  for (int i = threadIdx.y * G + lane; i < n_tok * half; i += G * blockDim.y) {
    const int tl = i / half, pair = i - tl * half;
    table[i] = rope_cos_sin(p, pair, t_first + tl, mscale);
  }
  pdl_trigger();
  __syncthreads();
  const float2* cs = table + (t - t_first) * half;

  for (int u0 = 0; u0 < nu; u0 += G * KPT) {  // uniform over the group: the norm's shuffles see every lane
    float scale = 1.0f;
    if constexpr (Norm) {
      float ss = 0.0f;
#pragma unroll
      for (int k = 0; k < KPT; ++k) {
        const int u = u0 + k * G + lane;
        if (!valid || u >= nu) continue;
        float v[8];
        unpack_chunk8(a[k], v);
#pragma unroll
        for (int j = 0; j < 8; ++j) ss = fmaf(v[j], v[j], ss);
        if (Neox && u < nr) {
          unpack_chunk8(b[k], v);
#pragma unroll
          for (int j = 0; j < 8; ++j) ss = fmaf(v[j], v[j], ss);
        }
      }
      for (int o = G / 2; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
      scale = rsqrtf(ss / static_cast<float>(p.head_dim) + p.eps);
    }
#pragma unroll
    for (int k = 0; k < KPT; ++k) {
      const int u = u0 + k * G + lane;
      if (!valid || u >= nu) continue;
      float va[8];
      unpack_chunk8(a[k], va);
      const int64_t ea = u < nr ? 8 * u : p.rope_dim + 8 * (u - nr);
      if constexpr (Norm) {
        float w[8];
        if (p.norm_w != nullptr) {
          load_weight8<T>(p.norm_w, p.tw == DType::F32, ea, p.w_offset, w);
        } else {
#pragma unroll
          for (int j = 0; j < 8; ++j) w[j] = 1.0f;
        }
#pragma unroll
        for (int j = 0; j < 8; ++j) va[j] *= scale * w[j];
      }
      if (u < nr) {
        if constexpr (Neox) {
          float vb[8];
          unpack_chunk8(b[k], vb);
          if constexpr (Norm) {
            float w[8];
            if (p.norm_w != nullptr) {
              load_weight8<T>(p.norm_w, p.tw == DType::F32, ea + half, p.w_offset, w);
            } else {
#pragma unroll
              for (int j = 0; j < 8; ++j) w[j] = 1.0f;
            }
#pragma unroll
            for (int j = 0; j < 8; ++j) vb[j] *= scale * w[j];
          }
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            const float2 c = cs[8 * u + j];
            const float x0 = va[j], x1 = vb[j];
            va[j] = x0 * c.x - x1 * c.y;
            vb[j] = x0 * c.y + x1 * c.x;
          }
          store8(out + ea + half, vb);
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const float2 c = cs[4 * u + j];
            const float x0 = va[2 * j], x1 = va[2 * j + 1];
            va[2 * j] = x0 * c.x - x1 * c.y;
            va[2 * j + 1] = x0 * c.y + x1 * c.x;
          }
        }
      }
      store8(out + ea, va);
    }
    if (u0 + G * KPT < nu) load_group(u0 + G * KPT);
  }
}

// Any alignment, stride and rope_dim: one warp per row, the angle worked out per pair (double precision, slower:
// the fallback for views the vectorized kernel cannot take). Norm: a first pass for the sum of squares.
template <typename T>
__global__ void __launch_bounds__(256) rope_any_kernel(kern::RopeParams p) {
  const int64_t rows = p.tokens * p.heads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  pdl_wait();
  pdl_trigger();
  if (row >= rows) return;  // whole warps leave together: a warp owns one row
  const int64_t t = row / p.heads, h = row - t * p.heads;
  const T* x = static_cast<const T*>(p.x) + t * p.x_stride_t + h * p.x_stride_h;
  T* out = static_cast<T*>(p.out) + t * p.out_stride_t + h * p.out_stride_h;
  const int half = static_cast<int>(p.rope_dim / 2);
  float scale = 1.0f;
  if (p.norm) {
    float ss = 0.0f;
    for (int64_t e = threadIdx.x; e < p.head_dim; e += 32) {
      const float v = to_f32(x[e]);
      ss = fmaf(v, v, ss);
    }
    scale = rsqrtf(warp_sum(ss) / static_cast<float>(p.head_dim) + p.eps);
  }
  auto weight = [&](int64_t e) -> float {
    if (!p.norm) return 1.0f;
    float w = 1.0f;
    if (p.norm_w != nullptr) {
      w = (p.tw == DType::F32 ? static_cast<const float*>(p.norm_w)[e] : to_f32(static_cast<const T*>(p.norm_w)[e])) +
          p.w_offset;
    }
    return scale * w;
  };
  const float mscale = rope_mscale(p);
  for (int i = threadIdx.x; i < half; i += 32) {
    const int64_t ia = p.neox ? i : 2 * i, ib = p.neox ? i + half : 2 * i + 1;
    const float2 c = rope_cos_sin(p, i, t, mscale);
    const float x0 = to_f32(x[ia]) * weight(ia), x1 = to_f32(x[ib]) * weight(ib);
    out[ia] = from_f32<T>(x0 * c.x - x1 * c.y);
    out[ib] = from_f32<T>(x0 * c.y + x1 * c.x);
  }
  if (p.in_place && !p.norm) return;
  for (int64_t e = p.rope_dim + threadIdx.x; e < p.head_dim; e += 32) out[e] = from_f32<T>(to_f32(x[e]) * weight(e));
}

inline int rope_next_pow2(int v) {
  int g = 1;
  while (g < v) g *= 2;
  return g;
}

template <typename T, bool Neox, bool Norm>
void (*rope_vec_variant(int kpt))(kern::RopeParams) {
  if (kpt == 1) return rope_vec_kernel<T, Neox, Norm, 1>;
  if (kpt == 2) return rope_vec_kernel<T, Neox, Norm, 2>;
  return rope_vec_kernel<T, Neox, Norm, 4>;
}

template <typename T>
Status launch_rope(const kern::RopeParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const std::string_view op = p.norm ? "rope_head_norm" : "rope";
  const int64_t rows = p.tokens * p.heads;
  if (rows == 0) return Status::ok();
  const int64_t half = p.rope_dim / 2;
  const int64_t nr = p.neox ? p.rope_dim / 16 : p.rope_dim / 8;
  const int64_t np = (p.in_place && !p.norm) ? 0 : (p.head_dim - p.rope_dim) / 8;
  const int64_t nu = nr + np;
  bool vec = aligned16(p.x) && aligned16(p.out) && p.head_dim % 8 == 0 && p.rope_dim % (p.neox ? 16 : 8) == 0 &&
             p.x_stride_t % 8 == 0 && p.x_stride_h % 8 == 0 && p.out_stride_t % 8 == 0 && p.out_stride_h % 8 == 0 &&
             (p.norm_w == nullptr || aligned16(p.norm_w)) && half <= kRopeTable;
  // Two units per thread: a group of half the row's units (head_dim 128 bf16: 64 bytes in flight per thread for
  // Neox, 32 for Normal, 32 or 64 rows per 256-thread block). One unit per thread left the Normal layout with 4 KiB
  // per block and most of the block's time in the cos / sin table and the launch.
  const int g =
      static_cast<int>(std::min<int64_t>(32, rope_next_pow2(static_cast<int>(std::min<int64_t>((nu + 1) / 2, 32)))));
  // With the norm every unit of the row is held (up to 4 per thread).
  int kpt = 2;
  if (p.norm) {
    const int64_t need = (nu + g - 1) / g;
    kpt = need <= 1 ? 1 : need <= 2 ? 2 : 4;
    if (need > 4) vec = false;
  }
  // Rows per block: as many as fill 256 threads while the table of the tokens they span fits.
  int r = kRopeThreads / g;
  auto span_tokens = [&](int rr) { return std::min<int64_t>(rr, (rr - 1) / p.heads + 2); };
  while (r > 1 && span_tokens(r) * half > kRopeTable) r /= 2;
  if (span_tokens(r) * half > kRopeTable) vec = false;
  if (vec) {
    const int64_t blocks = (rows + r - 1) / r;
    if (blocks > 0x7fffffff) return unsupported(op, rows, " rows exceed one launch");
    void (*kernel)(kern::RopeParams);
    if (p.neox) {
      kernel = p.norm ? rope_vec_variant<T, true, true>(kpt) : rope_vec_kernel<T, true, false, 2>;
    } else {
      kernel = p.norm ? rope_vec_variant<T, false, true>(kpt) : rope_vec_kernel<T, false, false, 2>;
    }
    return launch_status(launch_kernel(kernel, dim3(static_cast<unsigned>(blocks)), dim3(g, r), stream, true, p), op);
  }
  const int64_t blocks = (rows + 7) / 8;
  if (blocks > 0x7fffffff) return unsupported(op, rows, " rows exceed one launch");
  return launch_status(
      launch_kernel(rope_any_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(32, 8), stream, true, p), op);
}

}  // namespace mlxn::cuda
