// Flash-attention prefill on warpgroup MMA (sm_90a): FlashAttention-2's algorithm with Hopper's wgmma doing both
// products, FlashAttention-3's intra-warpgroup pipelining and a light form of its ping-pong (the two warpgroups'
// S products issued one after the other, ahead of the PV products; no producer warp).
//
// A block of two warpgroups takes 128 query rows of one head (64 per warpgroup, the wgmma M) and walks the visible
// key range in tiles of 128 keys. K and V tiles arrive by cp.async into 128-byte-swizzled shared memory (K and V one
// tile apart, two stages each, every thread copies a fixed chunk column); Q stays in shared memory for the block.
// Per tile and warpgroup:
//   S = Q K^T   wgmma m64n128k16, both operands K-major in shared memory, D / 16 steps;
//   online softmax on the S registers (base 2, the scale folded into the exponent FFMA on interior tiles);
//   O += P V    wgmma m64nDk16 with P from registers (the S accumulator layout is the A fragment layout, converted
//               to 16-bit) and V read MN-major (transposed) from the same swizzled tile layout as K.
// S of tile j + 1 and PV of tile j are in flight together and the softmax of tile j + 1 runs under the PV (see the
// schedule below). Interior tiles (no causal diagonal, window edge, padding or length edge, no softcap or mask) run
// no per-element code. Masking, windows, softcap, sinks, the additive mask and the cache layouts have the semantics
// of the mma.sync kernel (attention_prefill.cuh), which remains for sm_80-89, other head dims and unaligned views.
//
// Status. Before this version (H200, 32 / 8 heads, causal, bf16, head dim 128): 88 / 108 / 121 TFLOP/s at 2k / 4k /
// 8k, ncu: 0.28 issued instructions per cycle per scheduler, ~2,300 instructions per warp per tile, both warpgroups
// waiting on their MMAs and then on their softmax in lock step, and two MMA groups in flight made ptxas serialize
// every wgmma. This version (not yet measured on a GPU): an interior tile executes ~670 SASS instructions per warp
// (~600 when the O rescale is skipped; static count of the unrolled loop, contiguous cache), 255 registers, no
// spills, no C7513 / C7515 / C7520 serialization. Not done: TMA (tensor maps) with a producer warp and mbarriers instead of
// the two block barriers per tile, the full inter-warpgroup ping-pong (tried: a trailing warpgroup that softmaxes
// tile j - 1 before issuing its wgmmas; it spilled and ptxas wrapped the shuffles in WARPSYNC.COLLECTIVE loops at
// 255 registers), and head dim 64 (measured slower than mma.sync before, only 128 is routed here).
#pragma once

#include "cuda/attention_prefill.cuh"
#include "cuda/wgmma.cuh"

namespace mlxn::cuda {

template <int D>
struct PrefillSm90Cfg {
  static constexpr int kThreads = 256;  // two warpgroups
  static constexpr int kRowsQ = 128;
  static constexpr int kTile = 128;  // keys per tile (the S wgmma's N)
  static constexpr int kChunks = D / 8;
  static constexpr uint32_t kQBytes = kRowsQ * D * 2;
  static constexpr uint32_t kTileBytes = kTile * D * 2;
  static constexpr uint32_t kOffKv = kQBytes;
  static constexpr uint32_t kOffRow = kQBytes + 4 * kTileBytes;                  // two stages of K and V
  static constexpr size_t kSmem = 1024 + kOffRow + sizeof(int64_t) * 4 * kTile;  // cache rows of 4 tiles
  static_assert(D == 64 || D == 128, "the wgmma prefill takes head dims 64 and 128");
};

// tanh(x) = 1 - 2 / (exp(2x) + 1) on ex2.approx and a fast divide: absolute error ~1e-7 (cancellation near 0 only
// costs relative accuracy there), +-1 at the extremes (ex2 overflows to inf, 2 / inf = 0). tanhf's longer sequence
// pushes the kernel past 255 registers.
__device__ __forceinline__ float tanh_fast(float x) {
  return 1.0f - __fdividef(2.0f, exp2_approx(x * 2.8853900817779268f) + 1.0f);
}

template <typename T, int D>
__global__ void __launch_bounds__(256, 1) attention_prefill_sm90_kernel(kern::AttentionParams p) {
  using C = PrefillSm90Cfg<D>;
  using M = MmaType<T>;
  constexpr int kNT = C::kTile / 8;  // n-tiles of S per thread row
  constexpr int kDT = D / 8;         // n-tiles of O
  extern __shared__ unsigned char smem_raw[];
  // 1024-byte alignment for the swizzle atoms.
  const uint32_t raw_addr = smem_u32(smem_raw);
  unsigned char* smem = smem_raw + ((1024u - (raw_addr & 1023u)) & 1023u);
  const uint32_t base = smem_u32(smem);
  int64_t* s_row = reinterpret_cast<int64_t*>(smem + C::kOffRow);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = warp >> 2, wq = warp & 3;  // warpgroup, warp within it (its 16 rows of the warpgroup's 64)
  const int g = lane >> 2, tq = lane & 3;
  const int32_t i0 = static_cast<int32_t>(gridDim.x - 1 - blockIdx.x) * C::kRowsQ;  // heavier tiles first
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

  // Q rows (zero past n_q), swizzled.
  const int64_t q_row_stride = static_cast<int64_t>(p.n_heads) * D;
  const T* gq = static_cast<const T*>(p.q) + (static_cast<int64_t>(b) * p.q_len * p.n_heads + h) * D;
  for (int idx = tid; idx < C::kRowsQ * C::kChunks; idx += C::kThreads) {
    const int r = idx / C::kChunks, ch = idx % C::kChunks;
    const bool ok = r < n_rows;
    cp_async16(smem + wg::swizzle_offset(r, ch, C::kRowsQ), ok ? gq + (i0 + r) * q_row_stride + ch * 8 : gq, ok);
  }
  cp_async_commit();

  const int64_t row_elems = static_cast<int64_t>(p.n_kv_heads) * D;
  const T* gk = static_cast<const T*>(c.k) + static_cast<int64_t>(hkv) * D;
  const T* gv = static_cast<const T*>(c.v) + static_cast<int64_t>(hkv) * D;
  // K / V tile copies. Each thread owns one 16-byte chunk column (cch) of rows cj, cj + kRowsPass, ...: the swizzled
  // shared offsets of its rows differ by a constant (kRowsPass is a multiple of the 8-row swizzle period), so a
  // tile costs two cp.async and a few adds per row pass. Contiguous caches (the prefill case) address rows
  // directly from the position; ring and paged caches look the rows up once per tile (compute_rows) in s_row.
  // (Tensor-map TMA would take the copies off the consumer threads entirely; it needs a host-encoded tensor map per
  // call and a producer / mbarrier pipeline - not done here.)
  constexpr int kRowsPass = C::kThreads / C::kChunks;
  constexpr int kPasses = C::kTile / kRowsPass;
  static_assert(kRowsPass % 8 == 0 && C::kTile % kRowsPass == 0, "copy passes must keep the swizzle phase");
  const int cj = tid / C::kChunks, cch = tid % C::kChunks;
  const uint32_t c_so = wg::swizzle_offset(cj, cch, C::kTile);
  const bool linear = c.layout == kern::kKvContiguous;
  const int64_t lin_row0 = static_cast<int64_t>(b) * c.capacity;  // row of position 0 (contiguous layout)
  // Cache rows of tile `it` into slot it & 3 (written before the barrier, while slower warps may still read the slots
  // of tiles it - 2 and it - 1); returns, to every thread, whether a row of the tile is missing. Its barrier also
  // ends every use of the stages refilled next.
  auto compute_rows = [&](int it) -> bool {
    if (linear) {
      __syncthreads();
      return false;
    }
    bool bad = false;
    if (tid < C::kTile) {
      const int64_t pos = lo + static_cast<int64_t>(it) * C::kTile + tid;
      const int64_t r = pos < hi ? kern::kv_row(c, b, pos) : -1;
      s_row[(it & 3) * C::kTile + tid] = r;
      bad = r < 0;
    }
    return __syncthreads_or(bad) != 0;
  };
  // One operand (K or V) of tile `it` into its stage; the caller commits the cp.async group.
  auto issue_operand = [&](int it, const T* g, uint32_t stage_off) {
    unsigned char* sd = smem + stage_off + c_so;
    const int64_t t0 = lo + static_cast<int64_t>(it) * C::kTile;
    if (linear) {
      const int64_t off0 = (lin_row0 + t0 + cj) * row_elems + cch * 8;
#pragma unroll
      for (int k = 0; k < kPasses; ++k) {
        const bool ok = t0 + cj + k * kRowsPass < hi;
        const int64_t off = ok ? off0 + static_cast<int64_t>(k) * kRowsPass * row_elems : 0;
        cp_async16(sd + k * kRowsPass * 128, g + off, ok);
      }
    } else {
      const int64_t* rows = s_row + (it & 3) * C::kTile + cj;
#pragma unroll
      for (int k = 0; k < kPasses; ++k) {
        const int64_t r = rows[k * kRowsPass];
        cp_async16(sd + k * kRowsPass * 128, g + (r >= 0 ? r * row_elems + cch * 8 : 0), r >= 0);
      }
    }
  };
  // K of tile it sits in stage it & 1, V of tile it beside it.
  auto off_k = [&](int it) { return C::kOffKv + static_cast<uint32_t>(it & 1) * 2 * C::kTileBytes; };
  auto off_v = [&](int it) { return off_k(it) + C::kTileBytes; };

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  constexpr float kLog2e = 1.4426950408889634f;
  const float qk_scale = p.scale * kLog2e;
  const bool use_softcap = p.softcap > 0.0f;
  // Raw S with the scale folded into the softmax exponent (interior tiles need no per-element pass) unless a softcap
  // or an additive mask makes the logits nonlinear in S, or the scale is not positive (the max would flip).
  const bool fold = !use_softcap && p.mask == nullptr && qk_scale > 0.0f;
  const float sc = fold ? qk_scale : 1.0f;
  const float cap_in = use_softcap ? p.scale / p.softcap : 0.0f, cap_out = p.softcap * kLog2e;
  const int32_t row_a = i0 + wg * 64 + wq * 16 + g;
  const int64_t t_row[2] = {first_pos + row_a, first_pos + row_a + 8};
  const bool row_ok[2] = {row_a - i0 < n_rows, row_a + 8 - i0 < n_rows};
  const uint32_t q_base = base + static_cast<uint32_t>(wg) * 64 * 128;

  // S = Q K^T of tile `it` (one commit group).
  auto gemm_s = [&](float (&sacc)[C::kTile / 2], int it) {
    // Descriptors of the k16 steps: the first one's plus the byte offset / 16 (wg::desc_add), one add each.
    const uint64_t da0 = wg::desc_sw128(q_base, 16, 1024);
    const uint64_t db0 = wg::desc_sw128(base + off_k(it), 16, 1024);
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      const uint32_t koff = static_cast<uint32_t>(ks & 3) * 32;  // k16 step inside the 128-byte atom row
      const uint64_t da = wg::desc_add(da0, static_cast<uint32_t>(ks >> 2) * C::kRowsQ * 128 + koff);
      const uint64_t db = wg::desc_add(db0, static_cast<uint32_t>(ks >> 2) * C::kTile * 128 + koff);
      wg::wgmma_ss<T, C::kTile>(sacc, da, db, ks > 0 ? 1 : 0);
    }
    wg::commit();
  };
  // O += P V of tile `it` (one commit group).
  auto gemm_pv = [&](const uint32_t (&pa)[C::kTile / 16][4], int it) {
    const uint64_t db0 = wg::desc_sw128(base + off_v(it), C::kTile * 128, 1024);
#pragma unroll
    for (int kk = 0; kk < C::kTile / 16; ++kk)
      wg::wgmma_rs_tb<T, D>(o, pa[kk], wg::desc_add(db0, static_cast<uint32_t>(kk) * 16 * 128));
    wg::commit();
  };
  // Cache-row lookup (non-contiguous layouts) and the barrier that frees the stages refilled next, then the copies
  // of K of tile `kt` (when it exists) and V of tile `vt` as one group, and the wait for the previous group.
  bool bad_k = false;  // a row of the tile whose K is loaded next is missing (its rows are looked up with its K)
  auto load_step = [&](int kt, int vt) {
    if (kt < n_tiles) {
      bad_k = compute_rows(kt);
      issue_operand(kt, gk, off_k(kt));
    } else {
      __syncthreads();
    }
    issue_operand(vt, gv, off_v(vt));
    cp_async_commit();
    cp_async_wait<1>();
    wg::fence_async_smem();
    __syncthreads();
  };

  // Masking (boundary tiles only) and the online softmax of S of tile `it` into P (16-bit A fragments) and the
  // factors alpha that O must be rescaled by; touches neither O nor the P of the previous tile, which the PV wgmma
  // may still be reading.
  auto softmax_tile = [&](float (&s)[C::kTile / 2], int it, bool bad, uint32_t (&pf)[C::kTile / 16][4],
                          float (&alpha)[2]) {
    const int64_t t0 = lo + static_cast<int64_t>(it) * C::kTile;
    // Interior tiles (every key visible to every row of the block, no softcap, no additive mask, a positive scale)
    // skip the per-element code entirely: S stays raw and the softmax folds the scale into its exponent FFMA. The
    // test is block-uniform, so the branch never diverges. Boundary tiles (and every tile of a softcapped / masked
    // call, where `fold` is off and `sc` is 1) convert S to base-2 logits here and set invisible keys to -inf.
    const bool full = !bad && n_rows == C::kRowsQ && t0 + C::kTile <= hi && (!p.causal || t0 + C::kTile - 1 <= t_min) &&
                      (p.window == 0 || t0 > t_max - p.window);
    if (!(fold && full)) {
      if (!fold) {  // softcap or additive mask: base-2 logits now (sc is 1)
        if (use_softcap) {
#pragma unroll
          for (int i = 0; i < C::kTile / 2; ++i) s[i] = cap_out * tanh_fast(s[i] * cap_in);
        } else {
#pragma unroll
          for (int i = 0; i < C::kTile / 2; ++i) s[i] *= qk_scale;
        }
        if (p.mask != nullptr) {
#pragma unroll
          for (int n = 0; n < kNT; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int hr = e >> 1;
              const int64_t pos = t0 + n * 8 + 2 * tq + (e & 1);
              if (row_ok[hr] && pos < hi)
                s[4 * n + e] +=
                    kLog2e *
                    load_any_f32(p.mask, p.tmask, b * p.mask_batch_stride + (row_a + 8 * hr) * p.mask_row_stride + pos);
            }
        }
      }
      if (!full) {
        // Visible keys of a row are one run [j_lo, j_hi) of the tile: past the window start, before the causal
        // limit and the length; none for a row past the chunk. Missing cache rows (paged) are masked one by one.
        int j_lo[2], j_hi[2];
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          const int64_t end = p.causal ? min(hi, t_row[hr] + 1) : hi;
          const int64_t start = p.window > 0 ? t_row[hr] - p.window + 1 : t0;
          j_lo[hr] = static_cast<int>(max(int64_t{0}, min(int64_t{C::kTile}, start - t0)));
          j_hi[hr] = row_ok[hr] ? static_cast<int>(max(int64_t{0}, min(int64_t{C::kTile}, end - t0))) : 0;
        }
#pragma unroll
        for (int n = 0; n < kNT; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int hr = e >> 1;
            const int j = n * 8 + 2 * tq + (e & 1);
            if (j < j_lo[hr] || j >= j_hi[hr]) s[4 * n + e] = -INFINITY;
          }
        if (bad) {
#pragma unroll
          for (int n = 0; n < kNT; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e)
              if (s_row[(it & 3) * C::kTile + n * 8 + 2 * tq + (e & 1)] < 0) s[4 * n + e] = -INFINITY;
        }
      }
    }

    // Online softmax: the base-2 logit of a key is s * sc; the row max is taken on s (sc > 0), then each exponent
    // is one FFMA and one MUFU. The quad max needs 2 shuffles per row; the row sum stays per thread until the end.
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < kNT; ++n) mx = fmaxf(mx, fmaxf(s[4 * n + 2 * hr], s[4 * n + 2 * hr + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m_run[hr], mx * sc);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // nothing visible yet: exp2(-inf - 0) = 0
      alpha[hr] = exp2_approx(m_run[hr] - m_use);             // exactly 1 when the max did not change
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < kNT; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pj = exp2_approx(fmaf(s[4 * n + 2 * hr + e], sc, -m_use));
          s[4 * n + 2 * hr + e] = pj;
          sum += pj;
        }
      m_run[hr] = m_new;
      l_run[hr] = l_run[hr] * alpha[hr] + sum;
    }
#pragma unroll
    for (int kk = 0; kk < C::kTile / 16; ++kk) {
      pf[kk][0] = M::pack(s[8 * kk + 0], s[8 * kk + 1]);
      pf[kk][1] = M::pack(s[8 * kk + 2], s[8 * kk + 3]);
      pf[kk][2] = M::pack(s[8 * kk + 4], s[8 * kk + 5]);
      pf[kk][3] = M::pack(s[8 * kk + 6], s[8 * kk + 7]);
    }
  };
  // The O rescale, only where some row of the warp saw its max grow (rare after the first tiles of a row).
  auto rescale_o = [&](const float (&alpha)[2]) {
    if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
      for (int n = 0; n < kDT; ++n) {
        o[4 * n + 0] *= alpha[0];
        o[4 * n + 1] *= alpha[0];
        o[4 * n + 2] *= alpha[1];
        o[4 * n + 3] *= alpha[1];
      }
    }
  };

  // Issue order across the warpgroups, so that the tensor cores run S of warpgroup 0, S of warpgroup 1, then the two
  // PV products: each warpgroup's softmax starts as early as possible (warpgroup 0's while warpgroup 1's S runs,
  // warpgroup 1's under the PV products) instead of both waiting for two interleaved S products. Named barriers:
  // warpgroup 1 issues its S after warpgroup 0 has issued its S (barrier 1), warpgroup 0 its PV after warpgroup 1
  // has issued its S (barrier 2). Predicated, not branched (a branch would be divergent code around the wgmmas for
  // ptxas), and the predicate comes from %tid.x each time (no register kept across the loop: the kernel is at 255).
  auto order_before_s = []() {  // warpgroup 1 waits for warpgroup 0's S
    asm volatile(
        "{\n.reg .pred p;\n.reg .u32 t;\nmov.u32 t, %tid.x;\nsetp.ge.u32 p, t, 128;\n@p bar.sync 1, 256;\n}\n" ::
            : "memory");
  };
  auto order_after_s = []() {  // warpgroup 0 signals barrier 1 and waits on 2; warpgroup 1 signals barrier 2
    asm volatile(
        "{\n.reg .pred p;\n.reg .u32 t;\nmov.u32 t, %tid.x;\nsetp.lt.u32 p, t, 128;\n@p bar.arrive 1, 256;\n"
        "@!p bar.arrive 2, 256;\n@p bar.sync 2, 256;\n}\n" ::
            : "memory");
  };

  // Software pipeline (FlashAttention-3's intra-warpgroup overlap): iteration it issues S of tile it and then PV of
  // tile it - 1, waits for S only (wait_group 1: groups complete in order), runs the softmax of tile it while the
  // PV wgmma still runs, then waits for PV and rescales O. Loads run one tile ahead: the group issued in iteration
  // it holds K of tile it + 1 and V of tile it, so each stage is refilled only after the wgmmas that read it (the
  // previous iteration's, ended by load_step's first barrier) are done. The first tile (no PV yet) and the last PV
  // are peeled, so every wgmma and wait sits in straight-line code at a fixed group depth.
  if (n_tiles > 0) {
    const bool bad0 = compute_rows(0);
    issue_operand(0, gk, off_k(0));
    cp_async_commit();
    float s[C::kTile / 2];
    uint32_t pf[C::kTile / 16][4];
    float alpha[2];
    load_step(1, 0);
    wg::fence();
    gemm_s(s, 0);
    wg::wait<0>();
    wg::fence_regs(s);
    softmax_tile(s, 0, bad0, pf, alpha);  // O is still zero: no rescale
    // One pipelined step: S of tile it, PV of tile it - 1 from `pa`, softmax of tile it into `pb`. Two P buffers
    // used alternately (the loop is unrolled by two) keep the P being read by the in-flight PV apart from the one
    // the softmax writes: with one buffer and a copy, ptxas merges the two and serializes the wgmmas (C7513).
    auto step = [&](int it, const uint32_t (&pa)[C::kTile / 16][4], uint32_t (&pb)[C::kTile / 16][4]) {
      const bool bad_cur = bad_k;
      load_step(it + 1, it);
      order_before_s();
      wg::fence();
      gemm_s(s, it);
      order_after_s();
      gemm_pv(pa, it - 1);
      wg::wait<1>();
      wg::fence_regs(s);
      softmax_tile(s, it, bad_cur, pb, alpha);
      wg::wait<0>();
      wg::fence_regs(o);
      rescale_o(alpha);
    };
    uint32_t pf2[C::kTile / 16][4];
    int it = 1;
    for (; it + 1 < n_tiles; it += 2) {
      step(it, pf, pf2);
      step(it + 1, pf2, pf);
    }
    const bool odd = it < n_tiles;  // one tile left: its P ends in pf2
    if (odd) step(it, pf, pf2);
    cp_async_wait<0>();
    wg::fence_async_smem();
    __syncthreads();
    if (odd) {
      wg::fence();
      gemm_pv(pf2, n_tiles - 1);
    } else {
      wg::fence();
      gemm_pv(pf, n_tiles - 1);
    }
    wg::wait<0>();
    wg::fence_regs(o);
  }
  cp_async_wait<0>();
  pdl_trigger();

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
      const uint32_t v = M::pack(o[4 * n + 2 * hr] * inv, o[4 * n + 2 * hr + 1] * inv);
      *reinterpret_cast<uint32_t*>(orow + n * 8 + 2 * tq) = v;
    }
  }
}

// Whether this build carries sm_90a code and the device is an sm_90 part (wgmma exists only there).
inline bool sm90a_available(const ExecContext& ctx) {
#if defined(MLXN_CUDA_SM90A)
  return ctx.props != nullptr && ctx.props->compute_capability_major == 9 && ctx.props->compute_capability_minor == 0;
#else
  (void)ctx;
  return false;
#endif
}

template <typename T, int D>
Status launch_attention_prefill_sm90(const kern::AttentionParams& p, const ExecContext& ctx) {
  using C = PrefillSm90Cfg<D>;
  constexpr std::string_view op = "attention";
  if (static_cast<int64_t>(p.batch) * p.n_heads > 65535) return unsupported(op, "batch x heads above 65535 (prefill)");
  auto kernel = attention_prefill_sm90_kernel<T, D>;
  MLXN_TRY(allow_smem(ctx, kernel, C::kSmem, op));
  const dim3 grid(static_cast<unsigned>((p.q_len + C::kRowsQ - 1) / C::kRowsQ),
                  static_cast<unsigned>(p.batch * p.n_heads));
  return launch_status(
      launch_kernel_smem(kernel, grid, dim3(C::kThreads), C::kSmem, static_cast<cudaStream_t>(ctx.stream), true, p), op);
}

}  // namespace mlxn::cuda
