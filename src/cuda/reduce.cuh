// Row reductions: argmax, top-k, argsort, row sum, inclusive cumsum. Included by the generated instance files (and
// by the sample and moe kernels for the shared helpers); src/cuda/reduce.cu dispatches through the kernel table.
#pragma once

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "cuda/common.cuh"
#include "kernels/keys.h"
#include "kernels/reduce.h"

namespace mlxn::cuda {

// ---- shared helpers --------------------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t fkey(float v) { return kern::float_key_bits(__float_as_uint(v)); }
__device__ __forceinline__ float key_float(uint32_t k) { return __uint_as_float(kern::key_float_bits(k)); }

// (key, index) packed so that the larger key wins and, among equal keys, the lower index.
__device__ __forceinline__ uint64_t pack_key_idx(uint32_t key, uint32_t idx) {
  return (static_cast<uint64_t>(key) << 32) | (0xffffffffu - idx);
}
__device__ __forceinline__ uint32_t packed_idx(uint64_t v) { return 0xffffffffu - static_cast<uint32_t>(v); }

__device__ __forceinline__ uint64_t warp_max_u64(uint64_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const uint64_t w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// Block-wide max of a packed (key, index); every thread gets the result. scratch: 32 entries.
__device__ __forceinline__ uint64_t block_max_u64(uint64_t v, uint64_t* scratch) {
  v = warp_max_u64(v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = (blockDim.x + 31) >> 5;
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  uint64_t r = 0;
  for (int i = 0; i < n_warps; ++i) r = scratch[i] > r ? scratch[i] : r;
  return r;
}

// Block-wide sum in a fixed order (deterministic); every thread gets the result. scratch: 32 floats.
__device__ __forceinline__ float block_sum_f32(float v, float* scratch) {
  v = warp_sum(v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = 0.0f;
  for (int i = 0; i < n_warps; ++i) r += scratch[i];
  return r;
}

__device__ __forceinline__ float block_max_f32(float v, float* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = -INFINITY;
  for (int i = 0; i < n_warps; ++i) r = fmaxf(r, scratch[i]);
  return r;
}

// Calls f(i, value as f32) for every i in [begin, end) of x, spread over the block's threads, with 16-byte loads
// for the aligned middle (4 in flight per thread) and element loads for the unaligned head and tail.
template <typename T, typename F>
__device__ __forceinline__ void visit_range(const T* x, int64_t begin, int64_t end, F&& f) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
  constexpr int kUnroll = 4;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(x + begin);
  int64_t head = static_cast<int64_t>(((16 - (addr & 15)) & 15) / sizeof(T));
  if (head > end - begin) head = end - begin;
  for (int64_t i = begin + threadIdx.x; i < begin + head; i += blockDim.x) f(i, to_f32(x[i]));
  const int64_t vb = begin + head;
  const int64_t nvec = (end - vb) / kVec;
  const uint4* xv = reinterpret_cast<const uint4*>(x + vb);
  for (int64_t v0 = threadIdx.x; v0 < nvec; v0 += static_cast<int64_t>(blockDim.x) * kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t v = v0 + static_cast<int64_t>(u) * blockDim.x;
      if (v < nvec) raw[u] = __ldg(xv + v);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t v = v0 + static_cast<int64_t>(u) * blockDim.x;
      if (v < nvec) {
        const T* e = reinterpret_cast<const T*>(&raw[u]);
#pragma unroll
        for (int j = 0; j < kVec; ++j) f(vb + v * kVec + j, to_f32(e[j]));
      }
    }
  }
  for (int64_t i = vb + nvec * kVec + threadIdx.x; i < end; i += blockDim.x) f(i, to_f32(x[i]));
}

// ---- argmax ----------------------------------------------------------------------------------------------------

inline constexpr int kArgmaxThreads = 512;

// grid (split_blocks, rows): block b reduces its slice of row r; with one block per row it writes the result,
// otherwise a packed partial that argmax_merge_kernel combines.
template <typename T>
__global__ void __launch_bounds__(kArgmaxThreads) argmax_kernel(kern::ArgmaxParams p) {
  __shared__ uint64_t scratch[32];
  const int64_t row = blockIdx.y;
  const int64_t seg = (p.cols + p.split_blocks - 1) / p.split_blocks;
  const int64_t begin = blockIdx.x * seg, end = min(p.cols, begin + seg);
  const T* x = static_cast<const T*>(p.x) + row * p.cols;
  pdl_wait();
  uint64_t best = 0;
  visit_range(x, begin, end, [&](int64_t i, float v) {
    const uint64_t c = pack_key_idx(fkey(v), static_cast<uint32_t>(i));
    best = c > best ? c : best;
  });
  pdl_trigger();
  best = block_max_u64(best, scratch);
  if (threadIdx.x != 0) return;
  if (p.split_blocks > 1) {
    static_cast<uint64_t*>(p.ws)[row * p.split_blocks + blockIdx.x] = best;
  } else {
    const uint32_t idx = packed_idx(best);
    p.idx[row] = static_cast<int32_t>(idx);
    if (p.val) p.val[row] = to_f32(x[idx]);
  }
}

// One warp per row combines the split partials.
template <typename T>
__global__ void __launch_bounds__(256) argmax_merge_kernel(kern::ArgmaxParams p) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  pdl_wait();
  if (row >= p.rows) return;
  const uint64_t* part = static_cast<const uint64_t*>(p.ws) + row * p.split_blocks;
  uint64_t best = 0;
  for (int b = lane; b < p.split_blocks; b += 32) best = part[b] > best ? part[b] : best;
  best = warp_max_u64(best);
  if (lane == 0) {
    const uint32_t idx = packed_idx(best);
    p.idx[row] = static_cast<int32_t>(idx);
    if (p.val) p.val[row] = to_f32(static_cast<const T*>(p.x)[row * p.cols + idx]);
  }
}

template <typename T>
Status launch_argmax(const kern::ArgmaxParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  if (p.rows > 65535) return unsupported("argmax", p.rows, " rows exceed one launch");
  const dim3 grid(static_cast<unsigned>(p.split_blocks), static_cast<unsigned>(p.rows));
  MLXN_TRY(launch_status(launch_kernel(argmax_kernel<T>, grid, dim3(kArgmaxThreads), stream, true, p), "argmax"));
  if (p.split_blocks == 1) return Status::ok();
  return launch_status(launch_kernel(argmax_merge_kernel<T>, dim3(grid_1d(p.rows, 8)), dim3(256), stream, true, p),
                       "argmax");
}

// ---- row sum and cumsum ----------------------------------------------------------------------------------------

inline constexpr int kRowSumThreads = 256;

// One block per row (rows beyond 2^31 loop).
template <typename Tx, typename To>
__global__ void __launch_bounds__(kRowSumThreads) row_sum_kernel(kern::RowReduceParams p) {
  __shared__ float scratch[32];
  pdl_wait();
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    float acc = 0.0f;
    visit_range(static_cast<const Tx*>(p.x) + row * p.cols, 0, p.cols, [&](int64_t, float v) { acc += v; });
    acc = block_sum_f32(acc, scratch);
    if (threadIdx.x == 0) static_cast<To*>(p.out)[row] = from_f32<To>(acc);
  }
  pdl_trigger();
}

template <typename Tx, typename To>
Status launch_row_sum(const kern::RowReduceParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(p.rows, 1 << 30));
  return launch_status(launch_kernel(row_sum_kernel<Tx, To>, dim3(grid), dim3(kRowSumThreads), stream, true, p),
                       "row_sum");
}

// Inclusive scan of a row in tiles of 256 threads x 8 consecutive elements (one or two 16-byte accesses when the
// rows are aligned), a block scan per tile and a running carry between tiles. The next tile's loads are issued
// before the current tile's scan, so a row's tiles (two for 4096 bf16 columns) are in flight together.
inline constexpr int kScanThreads = 256;

template <typename Tx, typename To>
__global__ void __launch_bounds__(kScanThreads) cumsum_kernel(kern::RowReduceParams p, bool vec) {
  using Scan = cub::BlockScan<float, kScanThreads>;
  __shared__ typename Scan::TempStorage temp;
  constexpr int64_t kTile = kScanThreads * 8;
  pdl_wait();
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const Tx* x = static_cast<const Tx*>(p.x) + row * p.cols;
    To* y = static_cast<To*>(p.out) + row * p.cols;
    auto load_tile = [&](int64_t t0, float(&v)[8]) {
      const int64_t c0 = t0 + static_cast<int64_t>(threadIdx.x) * 8;
      if (vec && c0 + 8 <= p.cols) {
        load8(x + c0, v);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] = c0 + i < p.cols ? to_f32(x[c0 + i]) : 0.0f;
      }
    };
    float carry = 0.0f;
    float v[8], nxt[8] = {};
    load_tile(0, v);
    for (int64_t t0 = 0; t0 < p.cols; t0 += kTile) {
      if (t0 + kTile < p.cols) load_tile(t0 + kTile, nxt);
      const int64_t c0 = t0 + static_cast<int64_t>(threadIdx.x) * 8;
#pragma unroll
      for (int i = 1; i < 8; ++i) v[i] += v[i - 1];
      float excl, total;
      Scan(temp).ExclusiveSum(v[7], excl, total);
      __syncthreads();  // temp is reused by the next tile
      excl += carry;
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] += excl;
      if (vec && c0 + 8 <= p.cols) {
        store8(y + c0, v);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i)
          if (c0 + i < p.cols) y[c0 + i] = from_f32<To>(v[i]);
      }
      carry += total;
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = nxt[i];
    }
  }
  pdl_trigger();
}

template <typename Tx, typename To>
Status launch_cumsum(const kern::RowReduceParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const bool vec = p.cols % 8 == 0 && aligned16(p.x) && aligned16(p.out);
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(p.rows, 1 << 30));
  return launch_status(launch_kernel(cumsum_kernel<Tx, To>, dim3(grid), dim3(kScanThreads), stream, true, p, vec),
                       "cumsum");
}

// ---- top-k and argsort: CUB block radix sorts of 4096-element chunks ------------------------------------------

inline constexpr int kSortThreads = 1024;
inline constexpr int kSortItems = 4;  // kSortThreads * kSortItems == kern::kReduceChunk
using ChunkSort = cub::BlockRadixSort<uint32_t, kSortThreads, kSortItems, int32_t>;

// Exclusive prefix sum of v over the block's threads in thread order, and the block total (blockDim.x a multiple
// of 32). Every thread must call it; scratch: 32 ints.
__device__ __forceinline__ int block_exclusive_sum(int v, int* scratch, int& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  int incl = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int u = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += u;
  }
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  int before = 0;
  total = 0;
  for (int w = 0; w < n_warps; ++w) {
    const int s = scratch[w];
    before += w < warp ? s : 0;
    total += s;
  }
  return before + incl - v;
}

// Shared memory of block_kth_key.
struct KthScratch {
  int hist[256];
  int warp_tot[8];
  int bucket, above;
};

// The k-th largest (1 <= k <= the number of keys) of the block's keys, kSortItems per thread (a kSortThreads
// block), by four 8-bit radix passes over a shared histogram (no sort: the select is what top-k and the sampling
// pools need); n_greater gets how many keys are strictly larger. Every thread must call it and gets the result.
// Lanes adding to the same bucket are merged first (__match_any_sync): logits crowd a few high-byte buckets.
__device__ __forceinline__ uint32_t block_kth_key(const uint32_t (&keys)[kSortItems], int k, KthScratch& sc,
                                                  int& n_greater) {
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31;
  uint32_t prefix = 0;
  int remaining = k;  // how many keys matching `prefix` in the digits fixed so far still rank within the top k
  __syncthreads();    // sc may still be read by a previous call
  for (int pass = 3; pass >= 0; --pass) {
    const int shift = pass * 8;
    const uint32_t high = pass == 3 ? 0u : (0xffffffffu << (shift + 8));
    if (tid < 256) sc.hist[tid] = 0;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kSortItems; ++i) {
      const bool match = (keys[i] & high) == (prefix & high);
      const unsigned digit = (keys[i] >> shift) & 0xffu;
      const unsigned active = __ballot_sync(0xffffffffu, match);
      if (match) {
        const unsigned peers = __match_any_sync(active, digit);
        if (lane == __ffs(peers) - 1) atomicAdd(&sc.hist[digit], __popc(peers));
      }
    }
    __syncthreads();
    // Threads 0..255 scan the buckets from the top (bucket 255 - tid): the one where the running count reaches
    // `remaining` holds the k-th key.
    int cnt = 0, incl = 0;
    if (tid < 256) {
      cnt = sc.hist[255 - tid];
      incl = cnt;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int u = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += u;
      }
      if (lane == 31) sc.warp_tot[tid >> 5] = incl;
    }
    __syncthreads();
    if (tid < 256) {
      for (int w = 0; w < (tid >> 5); ++w) incl += sc.warp_tot[w];
      if (incl >= remaining && incl - cnt < remaining) {
        sc.bucket = 255 - tid;
        sc.above = incl - cnt;
      }
    }
    __syncthreads();
    prefix |= static_cast<uint32_t>(sc.bucket) << shift;
    remaining -= sc.above;
    __syncthreads();  // hist, bucket and above are rewritten by the next pass
  }
  n_greater = k - remaining;
  return prefix;
}

// Loads chunk [begin, begin + 4096) of a row in the blocked arrangement (thread t holds elements 4t .. 4t + 3), as
// keys with their indices; positions past `cols` get `pad_key` and index INT32_MAX (they sort after every element
// when pad_key is the extreme of the sort direction, and the stable sort keeps them after equal keys).
template <typename T>
__device__ __forceinline__ void load_chunk_keys(const T* x, int64_t begin, int64_t cols, uint32_t pad_key,
                                                uint32_t (&keys)[kSortItems], int32_t (&idx)[kSortItems]) {
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) {
    const int64_t c = begin + static_cast<int64_t>(threadIdx.x) * kSortItems + i;
    keys[i] = c < cols ? fkey(to_f32(x[c])) : pad_key;
    idx[i] = c < cols ? static_cast<int32_t>(c) : INT32_MAX;
  }
}

// grid (n_chunks, rows). One chunk (the whole row): sorts it descending and writes the first k. Several: keeps the
// chunk's `keep` largest as candidates in the workspace, found by a radix select of the keep-th largest key and a
// compaction in index order (every key above it, then the first ties), so equal keys stay in ascending index
// order as the merge needs; a full block sort of the chunk cost several times more (4-bit passes over 4096 keys).
template <typename T>
__global__ void __launch_bounds__(kSortThreads) topk_chunk_kernel(kern::TopKParams p) {
  __shared__ union {
    typename ChunkSort::TempStorage sort;
    KthScratch kth;
  } temp;
  __shared__ int iscratch[32];
  const int64_t row = blockIdx.y, chunk = blockIdx.x;
  const T* x = static_cast<const T*>(p.x) + row * p.cols;
  uint32_t keys[kSortItems];
  int32_t idx[kSortItems];
  pdl_wait();
  load_chunk_keys(x, chunk * kern::kReduceChunk, p.cols, 0u, keys, idx);
  pdl_trigger();
  const int keep = static_cast<int>(kern::topk_keep(p.cols, p.k));
  if (p.n_chunks == 1) {
    ChunkSort(temp.sort).SortDescending(keys, idx);
#pragma unroll
    for (int i = 0; i < kSortItems; ++i) {
      const int rank = static_cast<int>(threadIdx.x) * kSortItems + i;
      if (rank >= keep) continue;
      p.indices[row * p.k + rank] = idx[i];
      if (p.values) static_cast<T*>(p.values)[row * p.k + rank] = x[idx[i]];
    }
    return;
  }
  // Positions past the row hold key 0 (below every float's key) and index INT32_MAX, as the sort had them.
  int n_greater;
  const uint32_t t = block_kth_key(keys, keep, temp.kth, n_greater);
  const int ties = keep - n_greater;
  int g = 0, e = 0;
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) {
    g += keys[i] > t;
    e += keys[i] == t;
  }
  int total;
  const int before = block_exclusive_sum(g | (e << 16), iscratch, total);  // both counts <= 4096 < 2^16
  int pg = before & 0xffff, pe = before >> 16;
  uint2* out = static_cast<uint2*>(p.ws) + (row * p.n_chunks + chunk) * keep;
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) {
    const uint2 c = make_uint2(keys[i], static_cast<uint32_t>(idx[i]));
    if (keys[i] > t) {
      out[pg++] = c;
    } else if (keys[i] == t) {
      if (pe < ties) out[n_greater + pe] = c;
      ++pe;
    }
  }
}

// One block per row selects the final k from the chunks' candidates: a 4 x 8-bit radix select finds the k-th
// largest key t, the candidates > t and the first (lowest-index) ones == t are compacted in candidate order, and
// ranks by counting order them. Candidates of equal key sit in ascending index order (chunks in order, each
// compacted in index order), so the ties kept are those of the lowest indices.
template <typename T>
__global__ void __launch_bounds__(kSortThreads) topk_merge_kernel(kern::TopKParams p) {
  using Scan = cub::BlockScan<int, kSortThreads>;
  __shared__ union { typename Scan::TempStorage scan; } temp;
  __shared__ int hist[256];
  __shared__ uint32_t sel_key[kern::kTopKMax];
  __shared__ int32_t sel_idx[kern::kTopKMax];
  __shared__ int s_bucket, s_above;
  const int64_t row = blockIdx.x;
  const int keep = static_cast<int>(kern::topk_keep(p.cols, p.k));
  const int64_t n = p.n_chunks * keep;
  const uint2* cand = static_cast<const uint2*>(p.ws) + row * n;
  pdl_wait();

  uint32_t prefix = 0;
  int remaining = p.k;  // how many of the keys matching `prefix` still belong to the top k
  for (int pass = 3; pass >= 0; --pass) {
    const int shift = pass * 8;
    const uint32_t high_mask = pass == 3 ? 0u : (0xffffffffu << (shift + 8));
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const uint32_t kk = cand[i].x;
      if ((kk & high_mask) == (prefix & high_mask)) atomicAdd(&hist[(kk >> shift) & 0xffu], 1);
    }
    __syncthreads();
    // Counts from the top bucket down: the bucket where the running count reaches `remaining` holds the k-th key.
    const int b = 255 - static_cast<int>(threadIdx.x);
    const int cnt = threadIdx.x < 256 ? hist[b] : 0;
    int incl;
    Scan(temp.scan).InclusiveSum(cnt, incl);
    if (threadIdx.x < 256 && incl >= remaining && incl - cnt < remaining) {
      s_bucket = b;
      s_above = incl - cnt;
    }
    __syncthreads();
    prefix |= static_cast<uint32_t>(s_bucket) << shift;
    remaining -= s_above;
    __syncthreads();
  }
  const uint32_t t = prefix;
  const int n_greater = p.k - remaining;

  // Compaction in candidate order.
  int base_g = 0, base_e = 0;
  for (int64_t i0 = 0; i0 < n; i0 += blockDim.x) {
    const int64_t i = i0 + threadIdx.x;
    uint2 c = make_uint2(0u, 0u);
    if (i < n) c = cand[i];
    const int g = i < n && c.x > t, e = i < n && c.x == t;
    int pos_g, pos_e, tot_g, tot_e;
    Scan(temp.scan).ExclusiveSum(g, pos_g, tot_g);
    __syncthreads();
    Scan(temp.scan).ExclusiveSum(e, pos_e, tot_e);
    __syncthreads();
    if (g) {
      sel_key[base_g + pos_g] = c.x;
      sel_idx[base_g + pos_g] = static_cast<int32_t>(c.y);
    }
    if (e && base_e + pos_e < remaining) {
      sel_key[n_greater + base_e + pos_e] = c.x;
      sel_idx[n_greater + base_e + pos_e] = static_cast<int32_t>(c.y);
    }
    base_g += tot_g;
    base_e += tot_e;
  }
  __syncthreads();
  // The k selected, ordered by (key descending, index ascending) through ranks by counting: k <= 1024 entries,
  // one per thread, each compared with all (shared-memory broadcasts; cheaper than a 1024-key block radix sort).
  const int tid = static_cast<int>(threadIdx.x);
  uint32_t my_key = 0;
  int32_t my_idx = 0;
  int rank = 0;
  if (tid < p.k) {
    my_key = sel_key[tid];
    my_idx = sel_idx[tid];
    for (int j = 0; j < p.k; ++j) {
      const uint32_t kj = sel_key[j];
      rank += kj > my_key || (kj == my_key && sel_idx[j] < my_idx);
    }
  }
  pdl_trigger();
  if (tid < p.k) {
    p.indices[row * p.k + rank] = my_idx;
    if (p.values) static_cast<T*>(p.values)[row * p.k + rank] = static_cast<const T*>(p.x)[row * p.cols + my_idx];
  }
}

template <typename T>
Status launch_topk(const kern::TopKParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  if (p.rows > 65535) return unsupported("topk", p.rows, " rows exceed one launch");
  const dim3 grid(static_cast<unsigned>(p.n_chunks), static_cast<unsigned>(p.rows));
  MLXN_TRY(launch_status(launch_kernel(topk_chunk_kernel<T>, grid, dim3(kSortThreads), stream, true, p), "topk"));
  if (p.n_chunks == 1) return Status::ok();
  return launch_status(
      launch_kernel(topk_merge_kernel<T>, dim3(static_cast<unsigned>(p.rows)), dim3(kSortThreads), stream, true, p),
      "topk");
}

// One block per row of at most 4096 elements.
template <typename T>
__global__ void __launch_bounds__(kSortThreads) argsort_kernel(kern::ArgsortParams p) {
  __shared__ typename ChunkSort::TempStorage temp;
  const int64_t row = blockIdx.x;
  uint32_t keys[kSortItems];
  int32_t idx[kSortItems];
  pdl_wait();
  load_chunk_keys(static_cast<const T*>(p.x) + row * p.cols, 0, p.cols, p.descending ? 0u : 0xffffffffu, keys, idx);
  pdl_trigger();
  if (p.descending) {
    ChunkSort(temp).SortDescending(keys, idx);
  } else {
    ChunkSort(temp).Sort(keys, idx);
  }
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) {
    const int64_t rank = static_cast<int64_t>(threadIdx.x) * kSortItems + i;
    if (rank < p.cols) p.indices[row * p.cols + rank] = idx[i];
  }
}

template <typename T>
Status launch_argsort(const kern::ArgsortParams& p, const ExecContext& ctx) {
  if (p.cols > kern::kReduceChunk)
    return unsupported("argsort", "rows of ", p.cols, " elements: CUDA sorts rows of at most ", kern::kReduceChunk);
  if (p.rows > 0x7fffffff) return unsupported("argsort", p.rows, " rows exceed one launch");
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  return launch_status(
      launch_kernel(argsort_kernel<T>, dim3(static_cast<unsigned>(p.rows)), dim3(kSortThreads), stream, true, p),
      "argsort");
}

}  // namespace mlxn::cuda
