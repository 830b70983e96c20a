// Flash-attention prefill on tensor cores (FlashAttention-2, Dao 2023): a block takes 64 query tokens of one query
// head (16 per warp), streams K / V tiles of its visible key range through shared memory (cp.async, double-buffered),
// computes S = Q K^T and O += P V with mma.sync m16n8k16 (bf16 / f16 in, f32 accumulate; fragments through
// ldmatrix), and keeps the online softmax in registers. Tiles outside the causal / window range are never loaded;
// tiles entirely visible skip the per-element checks. Portable to sm_80; a wgmma / TMA kernel for sm_90a is the
// planned next step (see the header of src/cuda/attention.cu).
#pragma once

#include <type_traits>

#include "cuda/attention.cuh"

namespace mlxn::cuda {

template <typename T>
struct MmaType;
template <>
struct MmaType<__nv_bfloat16> {
  __device__ __forceinline__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
};
template <>
struct MmaType<__half> {
  __device__ __forceinline__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
};

__device__ __forceinline__ unsigned smem_u32(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x2(uint32_t& r0, uint32_t& r1, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(smem_u32(p)));
}

// The query rows one prefill block owns (rows i0 .. i0 + n_rows - 1 of the chunk) and the key positions [lo, hi)
// any of them can see after the causal, window and ring clamps; tiles outside are never loaded.
struct PrefillRows {
  int64_t first_pos;     // position of the chunk's query row 0
  int32_t n_rows;        // live rows of the block
  int64_t lo, hi;        // visible key positions
  int64_t t_min, t_max;  // positions of the block's first and last live row (t_max = t_min without live rows)
};
__device__ __forceinline__ PrefillRows prefill_rows(const kern::AttentionParams& p, const kern::SeqRange& sr,
                                                    int32_t i0, int32_t rows_per_block) {
  PrefillRows r;
  r.first_pos = sr.kv_len - sr.n_q;
  r.n_rows = max(0, min(rows_per_block, sr.n_q - i0));
  r.t_min = r.first_pos + i0;
  r.t_max = r.first_pos + i0 + max(r.n_rows, 1) - 1;
  r.lo = 0;
  r.hi = 0;
  if (r.n_rows > 0) {
    r.hi = p.causal ? r.t_max + 1 : sr.kv_len;
    if (p.window > 0) r.lo = max(int64_t{0}, r.t_min - p.window + 1);
    if (p.cache.layout == kern::kKvRing) r.lo = max(r.lo, sr.kv_len - p.cache.capacity);
  }
  return r;
}

// 1 / l for a query row at the end of flash attention (rows g and g + 8 of a quad: the four partial sums of l are
// added first), with the attention sink (base 2) as one more logit; zero for a row that saw no key.
__device__ __forceinline__ float prefill_row_scale(float l, float m, bool has_sink, float sink) {
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  float scale_o = 1.0f;
  if (has_sink) {
    const float mf = fmaxf(m, sink);
    if (mf != -INFINITY) {
      scale_o = m == -INFINITY ? 0.0f : exp2_approx(m - mf);
      l = l * scale_o + exp2_approx(sink - mf);
    }
  }
  return l > 0.0f ? scale_o / l : 0.0f;
}

// 64 query rows (4 warps x 16); 64 keys per tile up to D = 128, 32 above (register budget: the O accumulator is D / 2
// floats per thread). Rows padded by 16 bytes: ldmatrix's 8 row addresses then fall in distinct banks.
template <int D>
struct PrefillCfg {
  static constexpr int kThreads = 128;
  static constexpr int kRowsQ = 64;
  static constexpr int kTile = D <= 128 ? 64 : 32;
  static constexpr int kPitch = D + 8;
  static constexpr int kChunks = D / 8;
  static constexpr size_t kQBytes = static_cast<size_t>(kRowsQ) * kPitch * 2;
  static constexpr size_t kStageBytes = static_cast<size_t>(2) * kTile * kPitch * 2;  // K and V
  static constexpr size_t kOffRow = kQBytes + 2 * kStageBytes;
  static constexpr size_t kSmem = kOffRow + sizeof(int64_t) * 3 * kTile;  // key rows of 3 tiles
  static_assert(D % 16 == 0, "prefill head dims are multiples of 16");
};

template <typename T, int D>
__global__ void __launch_bounds__(128) attention_prefill_kernel(kern::AttentionParams p) {
  using C = PrefillCfg<D>;
  using M = MmaType<T>;
  constexpr int kNT = C::kTile / 8;  // key n-tiles of S
  constexpr int kDT = D / 8;         // dim n-tiles of O
  extern __shared__ __align__(16) unsigned char smem[];
  T* s_q = reinterpret_cast<T*>(smem);
  T* s_kv = reinterpret_cast<T*>(smem + C::kQBytes);
  int64_t* s_row = reinterpret_cast<int64_t*>(smem + C::kOffRow);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tq = lane & 3;
  // Heavier (later) query tiles first: under a causal mask they have the most keys.
  const int32_t i0 = static_cast<int32_t>(gridDim.x - 1 - blockIdx.x) * C::kRowsQ;
  const int32_t b = static_cast<int32_t>(blockIdx.y / p.n_heads);
  const int32_t h = static_cast<int32_t>(blockIdx.y % p.n_heads);
  const int32_t hkv = h / (p.n_heads / p.n_kv_heads);
  const kern::KvCacheDesc& c = p.cache;

  pdl_wait();
  const kern::SeqRange sr = kern::seq_range(p.kv_lens, p.q_lens, b, p.q_len, c);
  const PrefillRows pr = prefill_rows(p, sr, i0, C::kRowsQ);
  const int64_t first_pos = pr.first_pos, lo = pr.lo, hi = pr.hi, t_min = pr.t_min, t_max = pr.t_max;
  const int32_t n_rows = pr.n_rows;
  const int n_tiles = hi > lo ? static_cast<int>((hi - lo + C::kTile - 1) / C::kTile) : 0;

  // Q rows (zero past n_q).
  const int64_t q_row_stride = static_cast<int64_t>(p.n_heads) * D;
  const T* gq = static_cast<const T*>(p.q) + (static_cast<int64_t>(b) * p.q_len * p.n_heads + h) * D;
  for (int idx = tid; idx < C::kRowsQ * C::kChunks; idx += C::kThreads) {
    const int r = idx / C::kChunks, ch = idx % C::kChunks;
    const bool ok = r < n_rows;
    cp_async16(s_q + r * C::kPitch + ch * 8, ok ? gq + (i0 + r) * q_row_stride + ch * 8 : gq, ok);
  }
  cp_async_commit();

  const int64_t row_elems = static_cast<int64_t>(p.n_kv_heads) * D;
  const T* gk = static_cast<const T*>(c.k) + static_cast<int64_t>(hkv) * D;
  const T* gv = static_cast<const T*>(c.v) + static_cast<int64_t>(hkv) * D;
  // Key rows of tile `it`; returns (to every thread) whether any row of the tile is missing.
  auto compute_rows = [&](int it) -> bool {
    bool bad = false;
    if (tid < C::kTile) {
      const int64_t pos = lo + static_cast<int64_t>(it) * C::kTile + tid;
      const int64_t r = pos < hi ? kern::kv_row(c, b, pos) : -1;
      s_row[(it % 3) * C::kTile + tid] = r;  // 3 slots: the previous tile's may still be read
      bad = r < 0;
    }
    return __syncthreads_or(bad) != 0;
  };
  auto issue_tile = [&](int it) {
    T* sk = s_kv + (it & 1) * (C::kStageBytes / 2);
    T* sv = sk + C::kTile * C::kPitch;
    const int64_t* rows = s_row + (it % 3) * C::kTile;
    for (int idx = tid; idx < C::kTile * C::kChunks; idx += C::kThreads) {
      const int j = idx / C::kChunks, ch = idx % C::kChunks;
      const int64_t r = rows[j];
      const int64_t off = r >= 0 ? r * row_elems + ch * 8 : 0;
      cp_async16(sk + j * C::kPitch + ch * 8, gk + off, r >= 0);
      cp_async16(sv + j * C::kPitch + ch * 8, gv + off, r >= 0);
    }
    cp_async_commit();
  };

  float o[kDT][4];
#pragma unroll
  for (int n = 0; n < kDT; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};  // m in base 2
  constexpr bool kQReg = D <= 128;  // Q fragments loaded once (32 registers at d128), else per tile
  constexpr float kLog2e = 1.4426950408889634f;
  const float qk_scale = p.scale * kLog2e;
  const bool use_softcap = p.softcap > 0.0f;
  const float cap_in = use_softcap ? p.scale / p.softcap : 0.0f, cap_out = p.softcap * kLog2e;
  uint32_t qf[kQReg ? D / 16 : 1][4];
  auto load_qf = [&](int kc, uint32_t(&a)[4]) {
    const int m = lane >> 3;
    ldsm_x4(a, s_q + (warp * 16 + (m & 1) * 8 + (lane & 7)) * C::kPitch + kc * 16 + (m >> 1) * 8);
  };
  // This thread's two rows (g and g + 8 of its warp's 16) and their positions.
  const int32_t row_a = i0 + warp * 16 + g;
  const int64_t t_row[2] = {first_pos + row_a, first_pos + row_a + 8};
  const bool row_ok[2] = {row_a - i0 < n_rows, row_a + 8 - i0 < n_rows};

  bool bad_next = n_tiles > 0 ? compute_rows(0) : false;
  if (n_tiles > 0) issue_tile(0);
  for (int it = 0; it < n_tiles; ++it) {
    const bool bad = bad_next;
    if (it + 1 < n_tiles) {
      bad_next = compute_rows(it + 1);  // its barrier also ends the use (it - 1) of the stage refilled next
      issue_tile(it + 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* sk = s_kv + (it & 1) * (C::kStageBytes / 2);
    const T* sv = sk + C::kTile * C::kPitch;
    const int64_t t0 = lo + static_cast<int64_t>(it) * C::kTile;

    // S = Q K^T for this warp's 16 rows (K fragments of two k chunks per ldmatrix.x4).
    if constexpr (kQReg) {
      if (it == 0)
#pragma unroll
        for (int kc = 0; kc < D / 16; ++kc) load_qf(kc, qf[kc]);
    }
    float s[kNT][4];
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < D / 16; kc += 2) {
      uint32_t a0[4], a1[4];
      if constexpr (kQReg) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          a0[e] = qf[kc][e];
          a1[e] = qf[kc + 1 < D / 16 ? kc + 1 : kc][e];
        }
      } else {
        load_qf(kc, a0);
        if (kc + 1 < D / 16) load_qf(kc + 1, a1);
      }
#pragma unroll
      for (int n = 0; n < kNT; ++n) {
        const T* base = sk + (n * 8 + (lane & 7)) * C::kPitch + kc * 16;
        if (kc + 1 < D / 16) {
          uint32_t bb[4];
          ldsm_x4(bb, base + (lane >> 3) * 8);
          M::mma(s[n], a0, bb[0], bb[1]);
          M::mma(s[n], a1, bb[2], bb[3]);
        } else {
          uint32_t b0, b1;
          ldsm_x2(b0, b1, base + ((lane >> 3) & 1) * 8);
          M::mma(s[n], a0, b0, b1);
        }
      }
    }

    // Scale, softcap, mask, visibility.
    const bool full = !bad && n_rows == C::kRowsQ && t0 + C::kTile <= hi && (!p.causal || t0 + C::kTile - 1 <= t_min) &&
                      (p.window == 0 || t0 > t_max - p.window);
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hr = e >> 1;  // 0: row g, 1: row g + 8
        const int j = n * 8 + 2 * tq + (e & 1);
        const int64_t pos = t0 + j;
        // Base-2 logits: log2(e) folded into the scale (one FFMA + ex2 per element below).
        float v = use_softcap ? cap_out * tanhf(s[n][e] * cap_in) : s[n][e] * qk_scale;
        if (p.mask != nullptr && row_ok[hr] && pos < hi)
          v += kLog2e *
               load_any_f32(p.mask, p.tmask, b * p.mask_batch_stride + (row_a + 8 * hr) * p.mask_row_stride + pos);
        if (!full) {
          const bool vis = row_ok[hr] && pos < hi && s_row[(it % 3) * C::kTile + j] >= 0 &&
                           (!p.causal || pos <= t_row[hr]) && (p.window == 0 || pos > t_row[hr] - p.window);
          if (!vis) v = -INFINITY;
        }
        s[n][e] = v;
      }

      // Online softmax (rows g and g + 8; the 4 threads of a quad share a row).
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < kNT; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * hr], s[n][2 * hr + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m_run[hr], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // nothing visible yet: exp2(-inf - 0) = 0
      const float alpha = exp2_approx(m_run[hr] - m_use);
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < kNT; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float x = s[n][2 * hr + e];
          const float pj = exp2_approx(x - m_use);
          s[n][2 * hr + e] = pj;
          sum += pj;
        }
      m_run[hr] = m_new;
      l_run[hr] = l_run[hr] * alpha + sum;  // per-thread partial; the quad is summed at the end
#pragma unroll
      for (int n = 0; n < kDT; ++n) {
        o[n][2 * hr] *= alpha;
        o[n][2 * hr + 1] *= alpha;
      }
    }

    // O += P V: P from the S accumulators (two key n-tiles make one 16-key A fragment).
#pragma unroll
    for (int kk = 0; kk < C::kTile / 16; ++kk) {
      uint32_t a[4];
      a[0] = M::pack(s[2 * kk][0], s[2 * kk][1]);
      a[1] = M::pack(s[2 * kk][2], s[2 * kk][3]);
      a[2] = M::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = M::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bv[4];
        const int m = lane >> 3;
        ldsm_x4_trans(bv, sv + (kk * 16 + (m & 1) * 8 + (lane & 7)) * C::kPitch + np * 16 + (m >> 1) * 8);
        M::mma(o[2 * np], a, bv[0], bv[1]);
        M::mma(o[2 * np + 1], a, bv[2], bv[3]);
      }
    }
  }
  cp_async_wait<0>();  // nothing may land in shared memory after the block ends (no tiles: the Q copies)
  pdl_trigger();

  // Finish: quad sums of l, the sink, 1 / l; rows without a visible key (or past n_q) are zero.
  const bool has_sink = p.sinks != nullptr;
  const float sink = has_sink ? load_any_f32(p.sinks, p.tsinks, h) * kLog2e : -INFINITY;
  T* out = static_cast<T*>(p.out) + (static_cast<int64_t>(b) * p.q_len * p.n_heads + h) * D;
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float inv = prefill_row_scale(l_run[hr], m_run[hr], has_sink, sink);
    const int32_t i = row_a + 8 * hr;
    if (i >= p.q_len) continue;
    T* orow = out + static_cast<int64_t>(i) * q_row_stride;
#pragma unroll
    for (int n = 0; n < kDT; ++n) {
      const uint32_t v = M::pack(o[n][2 * hr] * inv, o[n][2 * hr + 1] * inv);
      *reinterpret_cast<uint32_t*>(orow + n * 8 + 2 * tq) = v;
    }
  }
}

template <typename T, int D>
Status launch_attention_prefill(const kern::AttentionParams& p, const ExecContext& ctx) {
  using C = PrefillCfg<D>;
  constexpr std::string_view op = "attention";
  if (static_cast<int64_t>(p.batch) * p.n_heads > 65535) return unsupported(op, "batch x heads above 65535 (prefill)");
  auto kernel = attention_prefill_kernel<T, D>;
  MLXN_TRY(allow_smem(ctx, kernel, C::kSmem, op));
  const dim3 grid(static_cast<unsigned>((p.q_len + C::kRowsQ - 1) / C::kRowsQ),
                  static_cast<unsigned>(p.batch * p.n_heads));
  return launch_status(
      launch_kernel_smem(kernel, grid, dim3(C::kThreads), C::kSmem, static_cast<cudaStream_t>(ctx.stream), true, p), op);
}

}  // namespace mlxn::cuda
