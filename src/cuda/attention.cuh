// KV-cache write and split-KV flash decoding (Dao et al., "Flash-Decoding for long-context inference", 2023):
// each block takes one (sequence, KV head, query-row group, KV split), streams its share of K and V through shared
// memory with cp.async (16-byte copies, double-buffered), keeps an online softmax (Milakov & Gimelshein 2018) per
// query row, and writes unnormalised partial sums; a second kernel merges the splits (log-sum-exp) and the sink.
// All query heads of a KV-head group share the block, so K and V are read once per group (GQA / MQA).
// Included by the generated instance files only; src/cuda/attention.cu dispatches through the kernel table.
#pragma once

#include <cuda_fp8.h>

#include <cfloat>
#include <cmath>

#include "cuda/common.cuh"
#include "kernels/attention.h"

namespace mlxn::cuda {

// ---- helpers of the attention kernels -----------------------------------------------------------------------------

__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));  // ex2(-inf) = +0
  return y;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// 8 16-bit elements (one 16-byte word) to floats.
template <typename T>
__device__ __forceinline__ void unpack8_16(const uint4& raw, float (&v)[8]) {
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = to_f32(e[i]);
}

// Opts a kernel into more than 48 KiB of dynamic shared memory, once per device.
template <typename K>
Status allow_smem(const ExecContext& ctx, K kernel, size_t smem, std::string_view op) {
  if (smem <= 48 * 1024) return Status::ok();
  return ctx.kernels->once(reinterpret_cast<const void*>(kernel), smem, [&]() -> Status {
    return launch_status(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                              cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
                         op);
  });
}

// ---- KV-cache write -----------------------------------------------------------------------------------------------

// One thread per 8 elements of a new row (VEC: 16-byte accesses; else element by element, for head dims that are
// not multiples of 8 or unaligned views): converts and stores at the row's cache position.
template <typename Ts, typename Tc, bool VEC>
__global__ void __launch_bounds__(256) kv_cache_write_kernel(kern::KvWriteParams p) {
  pdl_wait();
  pdl_trigger();
  const kern::KvCacheDesc& c = p.cache;
  const int64_t row = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  const int64_t n8 = (row + 7) / 8;
  const int64_t total = static_cast<int64_t>(p.batch) * p.q_len * n8;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t chunk = idx % n8;
    const int64_t bi = idx / n8;
    const int32_t i = static_cast<int32_t>(bi % p.q_len);
    const int32_t b = static_cast<int32_t>(bi / p.q_len);
    const kern::SeqRange r = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
    if (i >= r.n_q) continue;
    const int64_t dst = kern::kv_row(c, b, r.kv_len - r.n_q + i);
    if (dst < 0) continue;
    const Ts* ks = static_cast<const Ts*>(p.k) + bi * row + chunk * 8;
    const Ts* vs = static_cast<const Ts*>(p.v) + bi * row + chunk * 8;
    Tc* kd = static_cast<Tc*>(c.k) + dst * row + chunk * 8;
    Tc* vd = static_cast<Tc*>(c.v) + dst * row + chunk * 8;
    if constexpr (VEC) {
      float kv[8], vv[8];
      load8(ks, kv);
      load8(vs, vv);
      store8(kd, kv);
      store8(vd, vv);
    } else {
      const int n = static_cast<int>(min(int64_t{8}, row - chunk * 8));
      for (int e = 0; e < n; ++e) {
        kd[e] = from_f32<Tc>(to_f32(ks[e]));
        vd[e] = from_f32<Tc>(to_f32(vs[e]));
      }
    }
  }
}

template <typename Ts, typename Tc>
Status launch_kv_cache_write(const kern::KvWriteParams& p, const ExecContext& ctx) {
  const int64_t row = static_cast<int64_t>(p.cache.n_kv_heads) * p.cache.head_dim;
  const int64_t n = static_cast<int64_t>(p.batch) * p.q_len * ((row + 7) / 8);
  const int sms = ctx.props->multiprocessor_count > 0 ? ctx.props->multiprocessor_count : 132;
  const dim3 grid(grid_1d(n, 256, static_cast<int64_t>(sms) * 16));
  const bool vec = row % 8 == 0 && aligned16(p.k) && aligned16(p.v) && aligned16(p.cache.k) && aligned16(p.cache.v);
  const auto stream = static_cast<cudaStream_t>(ctx.stream);
  return launch_status(vec ? launch_kernel(kv_cache_write_kernel<Ts, Tc, true>, grid, dim3(256), stream, true, p)
                           : launch_kernel(kv_cache_write_kernel<Ts, Tc, false>, grid, dim3(256), stream, true, p),
                       "kv_cache_write");
}

// fp8 e4m3 caches (u8 with f32 scales): one warp per new (position, head) row: max |x| over D, the scale, then
// x * (1 / scale) rounded to nearest even and saturated (include/mlxn/ops/attention.h; the CPU reference does the
// same f32 operations, so both write identical bytes).
template <typename Ts>
__global__ void __launch_bounds__(256) kv_cache_write_fp8_kernel(kern::KvWriteParams p) {
  pdl_wait();
  pdl_trigger();
  const kern::KvCacheDesc& c = p.cache;
  const int D = c.head_dim;
  const int64_t n_vec = static_cast<int64_t>(p.batch) * p.q_len * c.n_kv_heads;
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t w = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; w < n_vec; w += warps) {
    const int32_t h = static_cast<int32_t>(w % c.n_kv_heads);
    const int64_t bi = w / c.n_kv_heads;
    const int32_t i = static_cast<int32_t>(bi % p.q_len);
    const int32_t b = static_cast<int32_t>(bi / p.q_len);
    const kern::SeqRange r = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
    if (i >= r.n_q) continue;
    const int64_t dst = kern::kv_row(c, b, r.kv_len - r.n_q + i);
    if (dst < 0) continue;
    const Ts* ks = static_cast<const Ts*>(p.k) + w * D;
    const Ts* vs = static_cast<const Ts*>(p.v) + w * D;
    float amk = 0.0f, amv = 0.0f;
    for (int e = lane; e < D; e += 32) {
      amk = fmaxf(amk, fabsf(to_f32(ks[e])));
      amv = fmaxf(amv, fabsf(to_f32(vs[e])));
    }
    amk = warp_max(amk);
    amv = warp_max(amv);
    const float sk = amk / 448.0f, sv = amv / 448.0f;
    const float ik = sk > 0.0f ? 1.0f / sk : 0.0f, iv = sv > 0.0f ? 1.0f / sv : 0.0f;
    const int64_t vec = dst * c.n_kv_heads + h;
    uint8_t* kd = static_cast<uint8_t*>(c.k) + vec * D;
    uint8_t* vd = static_cast<uint8_t*>(c.v) + vec * D;
    for (int e = lane; e < D; e += 32) {
      kd[e] = __nv_cvt_float_to_fp8(to_f32(ks[e]) * ik, __NV_SATFINITE, __NV_E4M3);
      vd[e] = __nv_cvt_float_to_fp8(to_f32(vs[e]) * iv, __NV_SATFINITE, __NV_E4M3);
    }
    if (lane == 0) {
      static_cast<float*>(c.k_scale)[vec] = sk;
      static_cast<float*>(c.v_scale)[vec] = sv;
    }
  }
}

template <typename Ts>
Status launch_kv_cache_write_fp8(const kern::KvWriteParams& p, const ExecContext& ctx) {
  if (p.cache.k_scale == nullptr || p.cache.v_scale == nullptr)
    return invalid_argument("kv_cache_write", "fp8 scales missing");
  const int64_t n_vec = static_cast<int64_t>(p.batch) * p.q_len * p.cache.n_kv_heads;
  const int sms = ctx.props->multiprocessor_count > 0 ? ctx.props->multiprocessor_count : 132;
  const dim3 grid(grid_1d(n_vec * 32, 256, static_cast<int64_t>(sms) * 16));
  return launch_status(
      launch_kernel(kv_cache_write_fp8_kernel<Ts>, grid, dim3(256), static_cast<cudaStream_t>(ctx.stream), true, p),
      "kv_cache_write");
}

// q8_0 / q4_0 caches (split GGML blocks: codes, then f16 scales per block of 32 along D): one warp per new
// (position, head) row, lane e holding element e of each block in turn. The arithmetic is ggml's reference quantizer
// step for step in f32 with no contraction (__fmul_rn / __fadd_rn), so the bytes equal the CPU backend's, which runs
// ggml's quantize_row_q8_0_ref / q4_0_ref: q8_0 d = max|x| / 127, code = round(x (1 / d)); q4_0 d = x_max / -8 (x_max
// the element of largest magnitude, the first on ties), code = min(15, trunc(x (1 / d) + 8.5)).
template <bool Q4>
__device__ __forceinline__ void quantize_block_warp(float x, int lane, uint8_t* codes, uint16_t* scale) {
  const float ax = fabsf(x);
  const float amax = warp_max(ax);
  float d;
  if constexpr (Q4) {
    // The first lane holding the maximum magnitude gives the signed maximum (+0 when the block is all zero).
    const unsigned at = __ballot_sync(0xffffffffu, ax == amax);
    const float mx = __shfl_sync(0xffffffffu, x, at != 0u ? __ffs(at) - 1 : 0);
    d = (amax > 0.0f ? mx : 0.0f) / -8.0f;
  } else {
    d = amax / 127.0f;
  }
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  if constexpr (Q4) {
    const float v = __fadd_rn(__fmul_rn(x, id), 8.5f);
    const int q = v == v ? min(15, v <= 0.0f ? 0 : v >= 127.0f ? 127 : static_cast<int>(v)) : 0;
    const int hi = __shfl_down_sync(0xffffffffu, q, 16);
    if (lane < 16) codes[lane] = static_cast<uint8_t>(q | (hi << 4));
  } else {
    const float v = roundf(__fmul_rn(x, id));
    const int q = v == v ? (v <= -128.0f ? -128 : v >= 127.0f ? 127 : static_cast<int>(v)) : -128;
    codes[lane] = static_cast<uint8_t>(static_cast<int8_t>(q));
  }
  if (lane == 0) *scale = __half_as_ushort(__float2half_rn(d));
}

template <typename Ts, bool Q4>
__global__ void __launch_bounds__(256) kv_cache_write_q_kernel(kern::KvWriteParams p) {
  pdl_wait();
  pdl_trigger();
  const kern::KvCacheDesc& c = p.cache;
  const int D = c.head_dim, n_blocks = D / 32, code_bytes = Q4 ? 16 : 32;
  const int64_t n_vec = static_cast<int64_t>(p.batch) * p.q_len * c.n_kv_heads;
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t w = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; w < n_vec; w += warps) {
    const int32_t h = static_cast<int32_t>(w % c.n_kv_heads);
    const int64_t bi = w / c.n_kv_heads;
    const int32_t i = static_cast<int32_t>(bi % p.q_len);
    const int32_t b = static_cast<int32_t>(bi / p.q_len);
    const kern::SeqRange r = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
    if (i >= r.n_q) continue;
    const int64_t dst = kern::kv_row(c, b, r.kv_len - r.n_q + i);
    if (dst < 0) continue;
    const Ts* ks = static_cast<const Ts*>(p.k) + w * D;
    const Ts* vs = static_cast<const Ts*>(p.v) + w * D;
    const int64_t vec = dst * c.n_kv_heads + h;
    uint8_t* kd = static_cast<uint8_t*>(c.k) + vec * n_blocks * code_bytes;
    uint8_t* vd = static_cast<uint8_t*>(c.v) + vec * n_blocks * code_bytes;
    uint16_t* ksd = static_cast<uint16_t*>(c.k_scale) + vec * n_blocks;
    uint16_t* vsd = static_cast<uint16_t*>(c.v_scale) + vec * n_blocks;
    for (int blk = 0; blk < n_blocks; ++blk) {
      quantize_block_warp<Q4>(to_f32(ks[blk * 32 + lane]), lane, kd + blk * code_bytes, ksd + blk);
      quantize_block_warp<Q4>(to_f32(vs[blk * 32 + lane]), lane, vd + blk * code_bytes, vsd + blk);
    }
  }
}

template <typename Ts, bool Q4>
Status launch_kv_cache_write_q(const kern::KvWriteParams& p, const ExecContext& ctx) {
  if (p.cache.k_scale == nullptr || p.cache.v_scale == nullptr || p.cache.head_dim % 32 != 0)
    return invalid_argument("kv_cache_write", "q8_0 / q4_0 scales missing or head dim not a multiple of 32");
  const int64_t n_vec = static_cast<int64_t>(p.batch) * p.q_len * p.cache.n_kv_heads;
  const int sms = ctx.props->multiprocessor_count > 0 ? ctx.props->multiprocessor_count : 132;
  const dim3 grid(grid_1d(n_vec * 32, 256, static_cast<int64_t>(sms) * 16));
  return launch_status(
      launch_kernel(kv_cache_write_q_kernel<Ts, Q4>, grid, dim3(256), static_cast<cudaStream_t>(ctx.stream), true, p),
      "kv_cache_write");
}

// ---- split-KV decode ----------------------------------------------------------------------------------------------

// Tile geometry per head dim. A tile holds TK positions of K and of V (TK * D = 8192 elements: 16 KiB each for 16-bit
// types), two tiles in flight (about 80 KiB of shared memory: two blocks per SM). Rows are padded by 16 bytes: the
// odd 16-byte pitch makes the score phase (8 threads reading the same chunk of 8 consecutive keys) conflict-free.
// Score phase: thread = (key, part of D); PV phase: thread = (16-byte chunk of D, subset of the keys), so each V
// element is read from shared memory once; the key subsets are summed once at the end of the split.
template <int D, int ROWS>
struct DecodeCfg {
  static constexpr int kThreads = 128;
  static constexpr int kRows = ROWS;
  static constexpr int kRowsPerWarp = ROWS / 4;  // softmax phase: 4 warps own the rows
  static constexpr int kChunks = D / 8;
  static constexpr int kTile = 8192 / D >= 128 ? 128 : 8192 / D >= 64 ? 64 : 8192 / D >= 32 ? 32 : 16;
  static constexpr int kParts = kThreads / kTile;
  static constexpr int kChunksPerPart = kChunks / kParts;
  static constexpr int kSubsets = kThreads / kChunks;
  static constexpr int kPitch = (kChunks + 1) * 8;  // elements
  static constexpr int kStageElems = 2 * kTile * kPitch;
  static constexpr size_t kStageBytes = static_cast<size_t>(kStageElems) * 2;
  // Shared memory: 2 stages | q rows f32 | partial scores f32 | p f32 | row alphas | key rows (2 x TK int64).
  static constexpr size_t kOffQ = 2 * kStageBytes;
  static constexpr size_t kOffPart = kOffQ + sizeof(float) * kRows * D;
  static constexpr size_t kOffP = kOffPart + sizeof(float) * kParts * kRows * kTile;
  static constexpr size_t kOffAlpha = kOffP + sizeof(float) * kRows * kTile;
  static constexpr size_t kOffRow = kOffAlpha + sizeof(float) * kRows;
  static constexpr size_t kSmem = kOffRow + sizeof(int64_t) * 2 * kTile;
  static_assert(D % 8 == 0 && kChunks % kParts == 0 && kParts >= 1, "decode tile geometry");
  static_assert(sizeof(float) * kSubsets * kRows * D <= 2 * kStageBytes, "subset reduction must fit the stages");
  static_assert((kRows == 4 || kRows == 8) && kThreads == 128, "softmax phase: 4 warps x 1 or 2 rows");
};

template <typename TQ, typename TKV, int D, int ROWS>
__global__ void __launch_bounds__(128) attention_decode_kernel(kern::AttentionParams p, int32_t n_splits) {
  using C = DecodeCfg<D, ROWS>;
  extern __shared__ __align__(16) unsigned char smem[];
  TKV* s_kv = reinterpret_cast<TKV*>(smem);
  float* s_q = reinterpret_cast<float*>(smem + C::kOffQ);
  float* s_part = reinterpret_cast<float*>(smem + C::kOffPart);
  float* s_p = reinterpret_cast<float*>(smem + C::kOffP);
  float* s_alpha = reinterpret_cast<float*>(smem + C::kOffAlpha);
  int64_t* s_row = reinterpret_cast<int64_t*>(smem + C::kOffRow);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int split = blockIdx.x;
  const int32_t b = static_cast<int32_t>(blockIdx.y / p.n_kv_heads);
  const int32_t hkv = static_cast<int32_t>(blockIdx.y % p.n_kv_heads);
  const int32_t group = p.n_heads / p.n_kv_heads;
  const int32_t row0 = static_cast<int32_t>(blockIdx.z) * C::kRows;  // first (query token, head-in-group) row
  const kern::KvCacheDesc& c = p.cache;

  pdl_wait();
  const kern::SeqRange sr = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
  // Rows r: global row gr = row0 + r -> query token gr / group, head hkv * group + gr % group.
  const int32_t rows_total = p.q_len * group;
  const int32_t valid_rows_end = min(rows_total, sr.n_q * group);  // rows past n_q hold no query
  const int32_t n_rows = max(0, min(C::kRows, valid_rows_end - row0));
  const int64_t first_pos = sr.kv_len - sr.n_q;  // position of query token 0

  // The block's key range: the union of its rows' visible ranges, split evenly (in whole tiles) among the splits.
  int64_t lo = 0, hi = 0;
  if (n_rows > 0) {
    const int64_t t_min = first_pos + row0 / group, t_max = first_pos + (row0 + n_rows - 1) / group;
    hi = p.causal ? t_max + 1 : sr.kv_len;
    if (p.window > 0) lo = max(int64_t{0}, t_min - p.window + 1);
    if (c.layout == kern::kKvRing) lo = max(lo, sr.kv_len - c.capacity);
  }
  const int64_t span = hi - lo;
  const int64_t per_split = ((span + n_splits - 1) / n_splits + C::kTile - 1) / C::kTile * C::kTile;
  const int64_t s_lo = lo + split * per_split;
  const int64_t s_hi = min(hi, s_lo + per_split);
  const int n_tiles = s_hi > s_lo ? static_cast<int>((s_hi - s_lo + C::kTile - 1) / C::kTile) : 0;

  // Query rows to shared memory (f32).
  for (int idx = tid; idx < C::kRows * D; idx += C::kThreads) {
    const int r = idx / D, d = idx % D;
    float v = 0.0f;
    if (r < n_rows) {
      const int32_t gr = row0 + r;
      const int64_t qrow = (static_cast<int64_t>(b) * p.q_len + gr / group) * p.n_heads + hkv * group + gr % group;
      v = to_f32(static_cast<const TQ*>(p.q)[qrow * D + d]);
    }
    s_q[idx] = v;
  }

  const int64_t row_elems = static_cast<int64_t>(p.n_kv_heads) * D;
  const TKV* gk = static_cast<const TKV*>(c.k) + static_cast<int64_t>(hkv) * D;
  const TKV* gv = static_cast<const TKV*>(c.v) + static_cast<int64_t>(hkv) * D;

  auto compute_rows = [&](int it) {
    if (tid < C::kTile) {
      const int64_t pos = s_lo + static_cast<int64_t>(it) * C::kTile + tid;
      s_row[(it & 1) * C::kTile + tid] = pos < s_hi ? kern::kv_row(c, b, pos) : -1;
    }
  };
  auto issue_tile = [&](int it) {
    TKV* sk = s_kv + (it & 1) * C::kStageElems;
    TKV* sv = sk + C::kTile * C::kPitch;
    const int64_t* rows = s_row + (it & 1) * C::kTile;
    for (int idx = tid; idx < C::kTile * C::kChunks; idx += C::kThreads) {
      const int j = idx / C::kChunks, ch = idx % C::kChunks;
      const int64_t r = rows[j];
      const int64_t off = r >= 0 ? r * row_elems + ch * 8 : 0;
      cp_async16(sk + j * C::kPitch + ch * 8, gk + off, r >= 0);
      cp_async16(sv + j * C::kPitch + ch * 8, gv + off, r >= 0);
    }
    cp_async_commit();
  };

  // Online-softmax state of the rows this warp owns (rows warp, warp + 4), uniform across its lanes.
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  float acc[C::kRows][8];
#pragma unroll
  for (int r = 0; r < C::kRows; ++r)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[r][e] = 0.0f;

  const int sc_key = tid % C::kTile, sc_part = tid / C::kTile;
  const int pv_chunk = tid % C::kChunks, pv_subset = tid / C::kChunks;

  if (n_tiles > 0) {
    compute_rows(0);
    __syncthreads();
    issue_tile(0);
  }
  for (int it = 0; it < n_tiles; ++it) {
    if (it + 1 < n_tiles) {
      compute_rows(it + 1);
      __syncthreads();  // rows visible to the copies; the stage being refilled was consumed by it - 1
      issue_tile(it + 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const TKV* sk = s_kv + (it & 1) * C::kStageElems;
    const TKV* sv = sk + C::kTile * C::kPitch;
    const int64_t* rows = s_row + (it & 1) * C::kTile;
    const int64_t t0 = s_lo + static_cast<int64_t>(it) * C::kTile;

    // Scores: partial dot products over this thread's part of D.
    {
      float dot[C::kRows];
#pragma unroll
      for (int r = 0; r < C::kRows; ++r) dot[r] = 0.0f;
#pragma unroll
      for (int cc = 0; cc < C::kChunksPerPart; ++cc) {
        const int ch = sc_part * C::kChunksPerPart + cc;
        float kf[8];
        unpack8_16<TKV>(*reinterpret_cast<const uint4*>(sk + sc_key * C::kPitch + ch * 8), kf);
#pragma unroll
        for (int r = 0; r < C::kRows; ++r) {
          const float4 q0 = *reinterpret_cast<const float4*>(s_q + r * D + ch * 8);
          const float4 q1 = *reinterpret_cast<const float4*>(s_q + r * D + ch * 8 + 4);
          dot[r] = fmaf(q0.x, kf[0], dot[r]);
          dot[r] = fmaf(q0.y, kf[1], dot[r]);
          dot[r] = fmaf(q0.z, kf[2], dot[r]);
          dot[r] = fmaf(q0.w, kf[3], dot[r]);
          dot[r] = fmaf(q1.x, kf[4], dot[r]);
          dot[r] = fmaf(q1.y, kf[5], dot[r]);
          dot[r] = fmaf(q1.z, kf[6], dot[r]);
          dot[r] = fmaf(q1.w, kf[7], dot[r]);
        }
      }
#pragma unroll
      for (int r = 0; r < C::kRows; ++r) s_part[(sc_part * C::kRows + r) * C::kTile + sc_key] = dot[r];
    }
    __syncthreads();

    // Softmax: warp w owns rows w and w + 4; lanes walk the tile's keys.
#pragma unroll
    for (int rr = 0; rr < C::kRowsPerWarp; ++rr) {
      const int r = warp + 4 * rr;
      const bool row_ok = r < n_rows;
      const int32_t gr = row0 + r;
      const int64_t t = first_pos + gr / group;
      float s_val[(C::kTile + 31) / 32];
      float tile_max = -INFINITY;
#pragma unroll
      for (int x = 0; x < (C::kTile + 31) / 32; ++x) {
        const int j = lane + 32 * x;
        float s = -INFINITY;
        if (row_ok && j < C::kTile) {
          const int64_t pos = t0 + j;
          bool vis = rows[j] >= 0 && (!p.causal || pos <= t) && (p.window == 0 || pos > t - p.window);
          if (vis) {
            float d = 0.0f;
#pragma unroll
            for (int pt = 0; pt < C::kParts; ++pt) d += s_part[(pt * C::kRows + r) * C::kTile + j];
            s = d * p.scale;
            if (p.softcap > 0.0f) s = p.softcap * tanhf(s / p.softcap);
            if (p.mask != nullptr)
              s += load_any_f32(p.mask, p.tmask, b * p.mask_batch_stride + (gr / group) * p.mask_row_stride + pos);
          }
        }
        s_val[x] = s;
        tile_max = fmaxf(tile_max, s);
      }
      tile_max = warp_max(tile_max);
      const float m_new = fmaxf(m_run[rr], tile_max);
      // Nothing visible yet: keep the state at zero (no exp(-inf - -inf)).
      const float alpha = m_new == -INFINITY ? 1.0f : __expf(m_run[rr] - m_new);
      float sum = 0.0f;
#pragma unroll
      for (int x = 0; x < (C::kTile + 31) / 32; ++x) {
        const int j = lane + 32 * x;
        const float pj = s_val[x] == -INFINITY ? 0.0f : __expf(s_val[x] - m_new);
        sum += pj;
        if (j < C::kTile) s_p[r * C::kTile + j] = pj;
      }
      sum = warp_sum(sum);
      m_run[rr] = m_new;
      l_run[rr] = l_run[rr] * alpha + sum;
      if (lane == 0) s_alpha[r] = alpha;
    }
    __syncthreads();

    // P V: this thread's 16-byte chunk of D over its subset of the tile's keys, for every row.
    if (pv_subset < C::kSubsets) {
#pragma unroll
      for (int r = 0; r < C::kRows; ++r) {
        const float a = s_alpha[r];
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[r][e] *= a;
      }
      for (int j = pv_subset; j < C::kTile; j += C::kSubsets) {
        float vf[8];
        unpack8_16<TKV>(*reinterpret_cast<const uint4*>(sv + j * C::kPitch + pv_chunk * 8), vf);
#pragma unroll
        for (int r = 0; r < C::kRows; ++r) {
          const float pj = s_p[r * C::kTile + j];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[r][e] = fmaf(pj, vf[e], acc[r][e]);
        }
      }
    }
    // The next iteration's first barrier (or the one below) separates this phase from the stage refill.
  }
  pdl_trigger();

  // Partial results: O (unnormalised) [.., split, D] then (m, l) pairs after all O rows.
  float* ws_o = static_cast<float*>(p.workspace);
  const int64_t n_parts = static_cast<int64_t>(p.batch) * p.q_len * p.n_heads * n_splits;
  float* ws_ml = ws_o + n_parts * D;
  auto part_index = [&](int r) {
    const int32_t gr = row0 + r;
    const int64_t h = static_cast<int64_t>(hkv) * group + gr % group;
    return ((static_cast<int64_t>(b) * p.q_len + gr / group) * p.n_heads + h) * n_splits + split;
  };
  if (lane == 0) {
#pragma unroll
    for (int rr = 0; rr < C::kRowsPerWarp; ++rr) {
      const int r = warp + 4 * rr;
      if (r < n_rows) {
        ws_ml[2 * part_index(r)] = m_run[rr];
        ws_ml[2 * part_index(r) + 1] = l_run[rr];
      }
    }
  }
  if (n_tiles == 0) return;  // m = -inf: the merge skips this split without reading O
  // Sum the key subsets through shared memory (the stages are free now).
  __syncthreads();
  float* s_red = reinterpret_cast<float*>(smem);
  if (pv_subset < C::kSubsets) {
#pragma unroll
    for (int r = 0; r < C::kRows; ++r)
#pragma unroll
      for (int e = 0; e < 8; ++e) s_red[(pv_subset * C::kRows + r) * D + pv_chunk * 8 + e] = acc[r][e];
  }
  __syncthreads();
  for (int idx = tid; idx < n_rows * D; idx += C::kThreads) {
    const int r = idx / D, d = idx % D;
    float v = 0.0f;
#pragma unroll
    for (int su = 0; su < C::kSubsets; ++su) v += s_red[(su * C::kRows + r) * D + d];
    ws_o[part_index(r) * D + d] = v;
  }
}

// Merges the splits of one (sequence, query token, head) row: M = max(m_s, sink), out = sum O_s e^(m_s - M) /
// (sum l_s e^(m_s - M) + e^(sink - M)); a row with nothing visible is zero. kBase2: the partials' m are in base 2
// (the tensor-core decode kernel folds log2 e into its scale; the sink is scaled by log2 e to match and the powers
// are 2^(m_s - M)), else natural (the CUDA-core kernel; e^x computed as 2^(x log2 e)).
// The splits' partial O are read in batches of 8 loads issued together and added in split order. One load per split
// behind a branch on its weight made each wait for the previous: ncu (H200, 1 x 4k keys, 16 splits) timed the merge
// at 7.1 us beside the main kernel's 15.9, at 0.2 instructions per cycle. A split without keys has weight 0 and is
// skipped by a select (its partial is never written and may hold anything).
template <typename TO, int D, bool kBase2>
__global__ void __launch_bounds__(128) attention_decode_merge_kernel(kern::AttentionParams p, int32_t n_splits) {
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr float kUnit = kBase2 ? 1.0f : kLog2e;  // base-2 exponent per unit of m
  const int64_t row = blockIdx.x;  // (b, i, h)
  const int32_t h = static_cast<int32_t>(row % p.n_heads);
  const int32_t i = static_cast<int32_t>(row / p.n_heads % p.q_len);
  const int32_t b = static_cast<int32_t>(row / (static_cast<int64_t>(p.n_heads) * p.q_len));
  TO* out = static_cast<TO*>(p.out) + row * D;
  pdl_wait();
  pdl_trigger();
  const kern::SeqRange sr = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, p.cache);
  if (i >= sr.n_q) {
    for (int d = threadIdx.x; d < D; d += blockDim.x) out[d] = from_f32<TO>(0.0f);
    return;
  }
  const float* ws_o = static_cast<const float*>(p.workspace);
  const int64_t n_parts = static_cast<int64_t>(p.batch) * p.q_len * p.n_heads * n_splits;
  const float* ml = ws_o + n_parts * D + 2 * row * n_splits;
  const float* o = ws_o + row * n_splits * D;
  // Split weights once per block (at most 256 splits).
  __shared__ float s_w[256];
  __shared__ float s_inv;
  if (threadIdx.x < 32) {
    float m = -INFINITY;
    for (int s = threadIdx.x; s < n_splits; s += 32) m = fmaxf(m, ml[2 * s]);
    m = warp_max(m);
    const bool has_sink = p.sinks != nullptr;
    const float sink = has_sink ? load_any_f32(p.sinks, p.tsinks, h) * (kBase2 ? kLog2e : 1.0f) : -INFINITY;
    m = fmaxf(m, sink);
    float l = 0.0f;
    for (int s = threadIdx.x; s < n_splits; s += 32) {
      const float ms = ml[2 * s];
      const float w = ms == -INFINITY ? 0.0f : exp2_approx((ms - m) * kUnit);
      s_w[s] = w;
      l = fmaf(ml[2 * s + 1], w, l);
    }
    l = warp_sum(l);
    if (threadIdx.x == 0) {
      if (has_sink && m != -INFINITY) l += exp2_approx((sink - m) * kUnit);
      s_inv = l > 0.0f ? 1.0f / l : 0.0f;
    }
  }
  __syncthreads();
  const float inv = s_inv;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.0f;
    for (int s0 = 0; s0 < n_splits; s0 += 8) {
      float ov[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) ov[k] = s0 + k < n_splits ? o[(s0 + k) * D + d] : 0.0f;
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float w = s0 + k < n_splits ? s_w[s0 + k] : 0.0f;
        acc = w != 0.0f ? fmaf(ov[k], w, acc) : acc;
      }
    }
    out[d] = from_f32<TO>(acc * inv);
  }
}

template <typename TQ, typename TKV, int D, int ROWS>
Status launch_attention_decode_rows(const kern::AttentionParams& p, const ExecContext& ctx) {
  using C = DecodeCfg<D, ROWS>;
  constexpr std::string_view op = "attention";
  const int32_t groups = kern::decode_row_groups(p.q_len, p.n_heads, p.n_kv_heads, D);
  const int32_t splits = kern::decode_splits(
      ctx.props->multiprocessor_count, static_cast<int64_t>(p.batch) * p.n_kv_heads * groups, p.cache.capacity, D);
  if (kern::decode_workspace_bytes(p.batch, p.q_len, p.n_heads, D, splits) > p.workspace_bytes)
    return invalid_argument(op, "workspace too small");
  if (static_cast<int64_t>(p.batch) * p.n_kv_heads > 0x7fffffff || groups > 65535)
    return unsupported(op, "batch x KV heads or query rows exceed one launch");
  auto kernel = attention_decode_kernel<TQ, TKV, D, ROWS>;
  MLXN_TRY(allow_smem(ctx, kernel, C::kSmem, op));
  const auto stream = static_cast<cudaStream_t>(ctx.stream);
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(p.batch * p.n_kv_heads),
                  static_cast<unsigned>(groups));
  MLXN_TRY(launch_status(launch_kernel_smem(kernel, grid, dim3(C::kThreads), C::kSmem, stream, true, p, splits), op));
  const int64_t rows = static_cast<int64_t>(p.batch) * p.q_len * p.n_heads;
  return launch_status(launch_kernel(attention_decode_merge_kernel<TQ, D, false>, dim3(static_cast<unsigned>(rows)),
                                     dim3(128), stream, /*pdl=*/true, p, splits),
                       op);
}

template <typename TQ, typename TKV, int D>
Status launch_attention_decode(const kern::AttentionParams& p, const ExecContext& ctx) {
  if (kern::decode_rows(p.q_len, p.n_heads, p.n_kv_heads, D) == 4)
    return launch_attention_decode_rows<TQ, TKV, D, 4>(p, ctx);
  return launch_attention_decode_rows<TQ, TKV, D, 8>(p, ctx);
}

}  // namespace mlxn::cuda
