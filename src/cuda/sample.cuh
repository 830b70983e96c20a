// Sampling (include/mlxn/ops/sample.h) in four kernels per call; every grid depends on shapes only, so a captured
// graph replays with new seed / step / temperature slots:
//  1. sample_chunk_kernel (chunks x rows): applies the penalties to a 4096-token chunk (keeping the penalized row
//     as f32 in the workspace when penalties apply), writes the chunk's max and sum of exp, and the chunk's top
//     pool_per_chunk tokens to the row's pool (at most 4096 tokens): a radix select of the pool's smallest key and a
//     compaction, no sort (greedy: only the chunk's argmax).
//  2. sample_pool_kernel (rows): merges the stats and resolves greedy, top-k, top-p and min-p on the pool. Every
//     token above tau (the largest key a chunk left out of the pool) is in the pool, so a threshold above tau is
//     exact; below it the kernel searches the full row by bisection on the key (rare: a top-k larger than the
//     pool, or a nucleus wider than it). top-k is a radix select; top-p ranks only the top-k set when it is small
//     (the usual top-k + top-p chain), and sorts the whole pool otherwise. When the kept set lies inside the pool it
//     draws the token there.
//  3./4. sample_full_kernel / sample_finish_kernel (only for rows whose kept set reaches past the pool, e.g. plain
//     temperature sampling): the Gumbel-max draw over the whole row, split over chunks, then merged.
#pragma once

#include "cuda/reduce.cuh"
#include "kernels/sample.h"

namespace mlxn::cuda {

struct SampleRuntime {
  float temperature;
  uint32_t seed_lo, step;
};

__device__ __forceinline__ SampleRuntime sample_runtime(const kern::SampleParams& p) {
  SampleRuntime r;
  r.temperature = p.temperature_slot >= 0 ? __uint_as_float(p.step_params[p.temperature_slot]) : p.temperature;
  r.seed_lo = p.seed_slot >= 0 ? p.step_params[p.seed_slot] : p.seed_lo;
  r.step = p.step_slot >= 0 ? p.step_params[p.step_slot] : p.step;
  return r;
}

__device__ __forceinline__ float nan_to_neg_inf(float v) { return isnan(v) ? -INFINITY : v; }

// The penalized logit of token i of row `row`: the f32 copy when penalties apply, else the input.
template <typename T>
__device__ __forceinline__ float sample_value(const kern::SampleParams& p, const kern::SampleLayout& l, int64_t row,
                                              int64_t i) {
  if (p.penalties())
    return reinterpret_cast<const float*>(static_cast<const char*>(p.ws) + l.work_off)[row * p.vocab + i];
  return nan_to_neg_inf(to_f32(static_cast<const T*>(p.logits)[row * p.vocab + i]));
}

template <typename T>
__global__ void __launch_bounds__(kSortThreads) sample_chunk_kernel(kern::SampleParams p, kern::SampleLayout l) {
  __shared__ float vals[kern::kSampleChunk];  // the chunk while penalties are applied
  __shared__ KthScratch ksc;
  __shared__ float scratch[32];
  __shared__ int iscratch[32];
  __shared__ uint64_t uscratch[32];
  const int64_t row = blockIdx.y, chunk = blockIdx.x;
  const int64_t begin = chunk * kern::kSampleChunk;
  const int64_t len = min(kern::kSampleChunk, p.vocab - begin);
  const T* x = static_cast<const T*>(p.logits) + row * p.vocab + begin;
  char* ws = static_cast<char*>(p.ws);
  const int t0 = static_cast<int>(threadIdx.x) * kSortItems;
  pdl_wait();
  const SampleRuntime rt = sample_runtime(p);
  float v[kSortItems];
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) v[i] = t0 + i < len ? nan_to_neg_inf(to_f32(x[t0 + i])) : -INFINITY;
  if (p.penalties()) {
#pragma unroll
    for (int i = 0; i < kSortItems; ++i) vals[t0 + i] = v[i];
    __syncthreads();
    // Each history position that is the first occurrence of a token of this chunk applies that token's penalty.
    const int32_t* hist = p.history + row * p.hist_len;
    for (int64_t j = threadIdx.x; j < p.hist_len; j += blockDim.x) {
      const int32_t tok = hist[j];
      if (tok < begin || tok >= begin + len) continue;
      int count = 0;
      bool first = true;
      for (int64_t jj = 0; jj < p.hist_len; ++jj) {
        if (hist[jj] != tok) continue;
        if (jj < j) {
          first = false;
          break;
        }
        ++count;
      }
      if (first)
        vals[tok - begin] = kern::apply_penalty(vals[tok - begin], count, p.repetition_penalty, p.frequency_penalty,
                                                p.presence_penalty);
    }
    __syncthreads();
    float* work = reinterpret_cast<float*>(ws + l.work_off) + row * p.vocab + begin;
#pragma unroll
    for (int i = 0; i < kSortItems; ++i) {
      v[i] = vals[t0 + i];
      if (t0 + i < len) work[t0 + i] = v[i];
    }
  }
  pdl_trigger();
  float m = -INFINITY;
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) m = fmaxf(m, v[i]);
  m = block_max_f32(m, scratch);
  float s = 0.0f;
  if (m > -INFINITY) {
#pragma unroll
    for (int i = 0; i < kSortItems; ++i) s += expf(v[i] - m);
  }
  s = block_sum_f32(s, scratch);
  if (threadIdx.x == 0) reinterpret_cast<float2*>(ws + l.stats_off)[row * l.chunks + chunk] = make_float2(m, s);

  // Positions past the chunk get key 0 (below every logit's key: it would be a NaN's, and NaN maps to the top).
  uint32_t keys[kSortItems];
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) keys[i] = t0 + i < len ? fkey(v[i]) : 0u;
  uint2* pool = reinterpret_cast<uint2*>(ws + l.pool_off) + (row * l.chunks + chunk) * l.pool_per_chunk;
  auto entry = [&](int i) {
    return make_uint2(keys[i], t0 + i < len ? static_cast<uint32_t>(begin + t0 + i) : static_cast<uint32_t>(INT32_MAX));
  };
  if (!(rt.temperature > 0.0f)) {
    // Greedy: the pool kernel reads only the chunk's best (key, lowest index), at the pool's first slot.
    uint64_t best = 0;
#pragma unroll
    for (int i = 0; i < kSortItems; ++i)
      if (t0 + i < len) {
        const uint64_t c = pack_key_idx(keys[i], static_cast<uint32_t>(begin + t0 + i));
        best = c > best ? c : best;
      }
    best = block_max_u64(best, uscratch);
    if (threadIdx.x == 0) pool[0] = make_uint2(static_cast<uint32_t>(best >> 32), packed_idx(best));
    return;
  }
  // The pool: the chunk's pool_per_chunk largest keys. A radix select finds the pool_per_chunk-th largest key kth;
  // every key above it and then the first (lowest-index) keys equal to it are written in index order, so the last
  // pooled entry holds kth itself (the pool kernel's tau) and the pool is the same on every run.
  const int ppc = static_cast<int>(l.pool_per_chunk);
  int n_greater;
  const uint32_t kth = block_kth_key(keys, ppc, ksc, n_greater);
  const int ties = ppc - n_greater;  // >= 1
  int g = 0, e = 0;
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) {
    g += keys[i] > kth;
    e += keys[i] == kth;
  }
  int total;
  const int before = block_exclusive_sum(g | (e << 16), iscratch, total);  // both counts <= 4096 < 2^16
  int pg = before & 0xffff, pe = before >> 16;
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) {
    if (keys[i] > kth) {
      pool[pg++] = entry(i);
    } else if (keys[i] == kth) {
      if (pe < ties) pool[n_greater + pe] = entry(i);
      ++pe;
    }
  }
}

// Full-row statistics for the rare thresholds the pool cannot decide: the number of tokens (count) or their
// probability mass relative to max_logit (mass) with key >= t.
template <typename T>
__device__ float row_stat_ge(const kern::SampleParams& p, const kern::SampleLayout& l, int64_t row, uint32_t t,
                             bool mass, float max_logit, float* scratch) {
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < p.vocab; i += blockDim.x) {
    const float v = sample_value<T>(p, l, row, i);
    if (fkey(v) >= t) acc += mass ? expf(v - max_logit) : 1.0f;
  }
  return block_sum_f32(acc, scratch);
}

// The largest key t with stat(key >= t) >= target, by bisection in [lo, hi] (stat(>= lo) >= target holds).
template <typename T>
__device__ uint32_t row_search(const kern::SampleParams& p, const kern::SampleLayout& l, int64_t row, uint32_t lo,
                               uint32_t hi, float target, bool mass, float max_logit, float* scratch) {
  while (lo < hi) {
    const uint32_t mid = lo + static_cast<uint32_t>((static_cast<uint64_t>(hi) - lo + 1) / 2);
    if (row_stat_ge<T>(p, l, row, mid, mass, max_logit, scratch) >= target) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

template <typename T>
__global__ void __launch_bounds__(kSortThreads) sample_pool_kernel(kern::SampleParams p, kern::SampleLayout l) {
  using Scan = cub::BlockScan<float, kSortThreads>;
  __shared__ union {
    typename ChunkSort::TempStorage sort;
    typename Scan::TempStorage scan;
  } temp;
  __shared__ uint32_t set_key[kSortThreads];  // the small-set path's candidates, then their keys by rank
  __shared__ KthScratch ksc;
  __shared__ float fscratch[32];
  __shared__ int iscratch[32];
  __shared__ uint64_t uscratch[32];
  __shared__ uint32_t s_key;
  __shared__ struct {
    float m, z;
    uint32_t tau, thresh;
  } keep;  // block-uniform values parked across the pool sort (registers are tight at 1024 threads)
  const int64_t row = blockIdx.x;
  const int tid = static_cast<int>(threadIdx.x);
  const char* ws = static_cast<const char*>(p.ws);
  const int t0 = tid * kSortItems;
  pdl_wait();

  // Row max and normaliser from the chunk stats, in a fixed order.
  const float2* stats = reinterpret_cast<const float2*>(ws + l.stats_off) + row * l.chunks;
  float m = -INFINITY;  // (not const: reloaded after the pool sort)
  for (int64_t b = tid; b < l.chunks; b += blockDim.x) m = fmaxf(m, stats[b].x);
  m = block_max_f32(m, fscratch);
  float z = 0.0f;
  if (m > -INFINITY)
    for (int64_t b = tid; b < l.chunks; b += blockDim.x) z += stats[b].y * expf(stats[b].x - m);
  z = block_sum_f32(z, fscratch);

  const uint2* pool = reinterpret_cast<const uint2*>(ws + l.pool_off) + row * l.chunks * l.pool_per_chunk;
  kern::SampleRowState* state = reinterpret_cast<kern::SampleRowState*>(const_cast<char*>(ws) + l.state_off) + row;
  auto finish = [&](int32_t token) {
    if (tid != 0) return;
    p.tokens[row] = token;
    if (p.logprobs) p.logprobs[row] = m > -INFINITY ? sample_value<T>(p, l, row, token) - m - logf(z) : NAN;
    state->pending = 0;
  };

  const bool greedy = !(sample_runtime(p).temperature > 0.0f);  // (the slots are re-read for the draw: registers)
  if (greedy || !(m > -INFINITY)) {
    // Greedy (or a row of -inf): the lowest index of the largest key. In greedy mode each chunk left only its best
    // (key, lowest index) at its first pool slot; otherwise every chunk's best is among its pooled entries.
    const int64_t n = greedy ? l.chunks : l.chunks * l.pool_per_chunk;
    uint64_t best = 0;
    for (int64_t i = tid; i < n; i += blockDim.x) {
      const uint2 c = pool[greedy ? i * l.pool_per_chunk : i];
      if (c.x == 0) continue;
      const uint64_t k = pack_key_idx(c.x, c.y);
      best = k > best ? k : best;
    }
    best = block_max_u64(best, uscratch);
    finish(static_cast<int32_t>(packed_idx(best)));
    return;
  }

  // tau: the largest key a chunk left out (its last pooled key when it held more tokens than it pooled); 0: none.
  uint64_t tau64 = 0;
  for (int64_t b = tid; b < l.chunks; b += blockDim.x) {
    const int64_t len = min(kern::kSampleChunk, p.vocab - b * kern::kSampleChunk);
    if (len > l.pool_per_chunk) {
      const uint64_t kk = pool[b * l.pool_per_chunk + l.pool_per_chunk - 1].x;
      tau64 = kk > tau64 ? kk : tau64;
    }
  }
  uint32_t tau = static_cast<uint32_t>(block_max_u64(tau64, uscratch));
  auto in_pool = [&](uint32_t key) { return tau == 0 || key > tau; };

  const int64_t n_pool = l.chunks * l.pool_per_chunk;
  uint32_t keys[kSortItems];
  int32_t idx[kSortItems];
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) {
    const uint2 c = t0 + i < n_pool ? pool[t0 + i] : make_uint2(0u, 0xffffffffu);
    keys[i] = c.x;
    idx[i] = c.x == 0 ? INT32_MAX : static_cast<int32_t>(c.y);
  }
  pdl_trigger();

  uint32_t thresh = 0;
  if (p.top_k > 0) {
    // The top_k-th largest pooled key (unused slots hold key 0, below every logit) by radix select.
    uint32_t kk = 0;
    if (p.top_k <= n_pool) {
      int n_greater;
      kk = block_kth_key(keys, p.top_k, ksc, n_greater);
    }
    if (p.top_k <= n_pool && in_pool(kk)) {
      thresh = kk;
    } else {
      thresh = row_search<T>(p, l, row, kk, 0xffffffffu, static_cast<float>(p.top_k), false, m, fscratch);
    }
  }
  if (p.top_p < 1.0f) {
    bool decided = false;
    if (thresh != 0 && in_pool(thresh)) {
      // Small kept set (top-k on): rank the pooled keys >= thresh (at most kSortThreads of them) by counting, scan
      // their masses in descending order and take the first key at which the cumulative mass reaches top_p times
      // the set's mass. Ties share a key, so their order among themselves does not matter.
      int mine = 0;
#pragma unroll
      for (int i = 0; i < kSortItems; ++i) mine += keys[i] != 0 && keys[i] >= thresh;
      int n_set;
      int pos = block_exclusive_sum(mine, iscratch, n_set);
      if (n_set <= kSortThreads) {
#pragma unroll
        for (int i = 0; i < kSortItems; ++i)
          if (keys[i] != 0 && keys[i] >= thresh) set_key[pos++] = keys[i];
        __syncthreads();
        uint32_t my_key = 0;
        int rank = 0;
        if (tid < n_set) {
          my_key = set_key[tid];
          for (int j = 0; j < n_set; ++j) {
            const uint32_t kj = set_key[j];
            rank += kj > my_key || (kj == my_key && j < tid);
          }
        }
        __syncthreads();
        if (tid < n_set) set_key[rank] = my_key;
        __syncthreads();
        const float mass = tid < n_set ? expf(key_float(set_key[tid]) - m) : 0.0f;
        float cum, zk;
        Scan(temp.scan).InclusiveSum(mass, cum, zk);
        const float target = p.top_p * zk;
        const uint64_t cand = tid < n_set && cum >= target ? 0xffffffffull - static_cast<uint64_t>(tid) : 0;
        const uint64_t first = block_max_u64(cand, uscratch);
        if (first != 0) {
          thresh = max(thresh, set_key[0xffffffffull - first]);
          decided = true;
        }
      }
    }
    if (!decided) {
      // Wide nucleus: sort the whole pool.
      if (tid == 0) keep = {m, z, tau, thresh};
      __syncthreads();
      ChunkSort(temp.sort).SortDescending(keys, idx);
      __syncthreads();
      m = keep.m;
      z = keep.z;
      tau = keep.tau;
      thresh = keep.thresh;
      // The key at a pool rank, through shared memory.
      auto key_at_rank = [&](int64_t rank) {
#pragma unroll
        for (int i = 0; i < kSortItems; ++i)
          if (t0 + i == rank) s_key = keys[i];
        __syncthreads();
        const uint32_t r = s_key;
        __syncthreads();
        return r;
      };
      float mass[kSortItems];
#pragma unroll
      for (int i = 0; i < kSortItems; ++i) mass[i] = keys[i] != 0 ? expf(key_float(keys[i]) - m) : 0.0f;
      float zk = z;
      if (thresh != 0) {
        if (in_pool(thresh)) {
          float part = 0.0f;
#pragma unroll
          for (int i = 0; i < kSortItems; ++i) part += keys[i] >= thresh ? mass[i] : 0.0f;
          zk = block_sum_f32(part, fscratch);
        } else {
          zk = row_stat_ge<T>(p, l, row, thresh, true, m, fscratch);
        }
      }
      const float target = p.top_p * zk;
      float cum[kSortItems];
      Scan(temp.scan).InclusiveSum(mass, cum);
      __syncthreads();
      uint64_t first = 0;  // 0xffffffff - rank of the first pool rank whose cumulative mass reaches target
#pragma unroll
      for (int i = 0; i < kSortItems; ++i) {
        const uint64_t cand = 0xffffffffull - static_cast<uint64_t>(t0 + i);
        if (keys[i] != 0 && cum[i] >= target && cand > first) first = cand;
      }
      first = block_max_u64(first, uscratch);
      const uint32_t kp = first != 0 ? key_at_rank(static_cast<int64_t>(0xffffffffull - first)) : 0u;
      if (first != 0 && in_pool(kp)) {
        thresh = max(thresh, kp);
      } else {
        thresh = row_search<T>(p, l, row, thresh, 0xffffffffu, target, true, m, fscratch);
      }
    }
  }
  if (p.min_p > 0.0f) thresh = max(thresh, fkey(m + logf(p.min_p)));

  if (!in_pool(thresh)) {
    if (tid == 0) *state = kern::SampleRowState{1u, thresh, m, logf(z)};
    return;
  }
  const SampleRuntime rt = sample_runtime(p);
  const float inv_t = 1.0f / rt.temperature;
  uint64_t best = 0;
#pragma unroll
  for (int i = 0; i < kSortItems; ++i) {
    if (keys[i] == 0 || keys[i] < thresh) continue;
    const float u =
        kern::sample_uniform(rt.seed_lo, p.seed_hi, rt.step, static_cast<uint32_t>(row), static_cast<uint32_t>(idx[i]));
    const uint64_t c =
        pack_key_idx(fkey(kern::gumbel_score(key_float(keys[i]), inv_t, u)), static_cast<uint32_t>(idx[i]));
    best = c > best ? c : best;
  }
  best = block_max_u64(best, uscratch);
  finish(static_cast<int32_t>(packed_idx(best)));
}

inline constexpr int kSampleFullThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kSampleFullThreads) sample_full_kernel(kern::SampleParams p, kern::SampleLayout l) {
  __shared__ uint64_t scratch[32];
  const int64_t row = blockIdx.y, chunk = blockIdx.x;
  pdl_wait();
  const kern::SampleRowState st =
      reinterpret_cast<const kern::SampleRowState*>(static_cast<const char*>(p.ws) + l.state_off)[row];
  if (!st.pending) return;
  const SampleRuntime rt = sample_runtime(p);
  const float inv_t = 1.0f / rt.temperature;
  const int64_t begin = chunk * kern::kSampleChunk, end = min(p.vocab, begin + kern::kSampleChunk);
  uint64_t best = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = sample_value<T>(p, l, row, i);
    if (fkey(v) < st.thresh_key) continue;
    const float u =
        kern::sample_uniform(rt.seed_lo, p.seed_hi, rt.step, static_cast<uint32_t>(row), static_cast<uint32_t>(i));
    const uint64_t c = pack_key_idx(fkey(kern::gumbel_score(v, inv_t, u)), static_cast<uint32_t>(i));
    best = c > best ? c : best;
  }
  best = block_max_u64(best, scratch);
  if (threadIdx.x == 0)
    reinterpret_cast<uint64_t*>(static_cast<char*>(p.ws) + l.part_off)[row * l.chunks + chunk] = best;
}

template <typename T>
__global__ void __launch_bounds__(32) sample_finish_kernel(kern::SampleParams p, kern::SampleLayout l) {
  const int64_t row = blockIdx.x;
  pdl_wait();
  const char* ws = static_cast<const char*>(p.ws);
  const kern::SampleRowState st = reinterpret_cast<const kern::SampleRowState*>(ws + l.state_off)[row];
  if (!st.pending) return;
  const uint64_t* part = reinterpret_cast<const uint64_t*>(ws + l.part_off) + row * l.chunks;
  uint64_t best = 0;
  for (int64_t b = threadIdx.x; b < l.chunks; b += 32) best = part[b] > best ? part[b] : best;
  best = warp_max_u64(best);
  if (threadIdx.x != 0) return;
  const int32_t token = static_cast<int32_t>(packed_idx(best));
  p.tokens[row] = token;
  if (p.logprobs) p.logprobs[row] = sample_value<T>(p, l, row, token) - st.max_logit - st.log_z;
}

template <typename T>
Status launch_sample(const kern::SampleParams& params, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  kern::SampleParams p = params;
  p.step_params = ctx.step_params;
  const kern::SampleLayout l = kern::sample_layout(p.rows, p.vocab);
  if (p.rows > 65535) return unsupported("sample", p.rows, " rows exceed one launch");
  if (l.chunks > kern::kSamplePool)
    return unsupported("sample", "a vocabulary of ", p.vocab, " exceeds ", kern::kSamplePool * kern::kSampleChunk);
  const dim3 chunks_grid(static_cast<unsigned>(l.chunks), static_cast<unsigned>(p.rows));
  const dim3 rows_grid(static_cast<unsigned>(p.rows));
  MLXN_TRY(launch_status(launch_kernel(sample_chunk_kernel<T>, chunks_grid, dim3(kSortThreads), stream, true, p, l),
                         "sample"));
  MLXN_TRY(
      launch_status(launch_kernel(sample_pool_kernel<T>, rows_grid, dim3(kSortThreads), stream, true, p, l), "sample"));
  MLXN_TRY(launch_status(
      launch_kernel(sample_full_kernel<T>, chunks_grid, dim3(kSampleFullThreads), stream, true, p, l), "sample"));
  return launch_status(launch_kernel(sample_finish_kernel<T>, rows_grid, dim3(32), stream, true, p, l), "sample");
}

}  // namespace mlxn::cuda
