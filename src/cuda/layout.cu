// Layout kernels and their launchers: a shared-memory tiled transpose, the concat / split ("parts") row kernel and
// the row gather / scatter. They move bytes, so one launcher serves every dtype (the generated table lists them
// per dtype, see scripts/kernels/layout.py); each picks the widest access (up to 16 bytes) that every pointer,
// stride and row size allows.
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/kernel_table.h"
#include "kernels/layout.h"

namespace mlxn::cuda {
namespace {

template <typename P>
Status dispatch(std::string_view op, const std::string& key, const P& p, const ExecContext& ctx) {
  using Fn = Status (*)(const P&, const ExecContext&);
  Fn fn = kernel_table().find<Fn>(op, key);
  if (fn == nullptr) return ctx.kernels->require(op, key);
  return fn(p, ctx);
}

// Largest power of two <= 16 dividing v.
int pow2_divisor(uint64_t v) {
  int w = 16;
  while (w > 1 && v % static_cast<uint64_t>(w) != 0) w /= 2;
  return w;
}

unsigned blocks_for(int64_t items, int block, const ExecContext& ctx) {
  const int sms = ctx.props != nullptr && ctx.props->multiprocessor_count > 0 ? ctx.props->multiprocessor_count : 132;
  return grid_1d(items, block, static_cast<int64_t>(sms) * 32);
}

template <int W>
struct Word;
template <>
struct Word<1> {
  using type = uint8_t;
};
template <>
struct Word<2> {
  using type = uint16_t;
};
template <>
struct Word<4> {
  using type = uint32_t;
};
template <>
struct Word<8> {
  using type = uint2;
};
template <>
struct Word<16> {
  using type = uint4;
};

// Calls f(Word<W>{}) for the access width w.
template <typename F>
void with_width(int w, F&& f) {
  switch (w) {
    case 16:
      f(Word<16>{});
      break;
    case 8:
      f(Word<8>{});
      break;
    case 4:
      f(Word<4>{});
      break;
    case 2:
      f(Word<2>{});
      break;
    default:
      f(Word<1>{});
      break;
  }
}

// ---- tiled transpose ----

// out dims 0..3 (contiguous), dimension 3 out's innermost, dimension tile_dim x's unit-stride one; the other two
// dimensions (b0, b1) index tiles through blockIdx.z.
struct TransposeIndex {
  int64_t n3, nk, nb0, nb1;
  int64_t s3, sb0, sb1;  // src strides (sk is 1)
  int64_t dk, db0, db1;  // dst strides (d3 is 1)
};

// TILE x TILE tiles through shared memory (Harris, "An efficient matrix transpose in CUDA C/C++"): reads walk x's
// unit-stride dimension with threadIdx.x and writes walk out's, so both are coalesced. Rows padded by one 32-bit
// word so the column reads of the tile hit distinct banks.
template <typename E, int TILE>
__global__ void __launch_bounds__(256)
    transpose_kernel(const E* __restrict__ src, E* __restrict__ dst, TransposeIndex ix) {
  constexpr int kPad = sizeof(E) >= 4 ? 1 : 4 / static_cast<int>(sizeof(E));
  constexpr int kRows = 256 / TILE;
  __shared__ E tile[TILE][TILE + kPad];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t i3_0 = static_cast<int64_t>(blockIdx.x) * TILE, ik_0 = static_cast<int64_t>(blockIdx.y) * TILE;
  pdl_wait();
  pdl_trigger();
  for (int64_t z = blockIdx.z; z < ix.nb0 * ix.nb1; z += gridDim.z) {
    const int64_t b0 = z / ix.nb1, b1 = z - b0 * ix.nb1;
    const E* s = src + b0 * ix.sb0 + b1 * ix.sb1;
    E* d = dst + b0 * ix.db0 + b1 * ix.db1;
    const int64_t ik = ik_0 + tx;
    const E* sp = s + ik + (i3_0 + ty) * ix.s3;
#pragma unroll 4
    for (int j = 0; j < TILE; j += kRows) {
      if (ik < ix.nk && i3_0 + ty + j < ix.n3) tile[ty + j][tx] = sp[j * ix.s3];
    }
    __syncthreads();
    const int64_t o3 = i3_0 + tx;
    E* dp = d + (ik_0 + ty) * ix.dk + o3;
#pragma unroll 4
    for (int j = 0; j < TILE; j += kRows) {
      if (ik_0 + ty + j < ix.nk && o3 < ix.n3) dp[j * ix.dk] = tile[tx][ty + j];
    }
    __syncthreads();  // the tile is reused by the next batch index
  }
}

// 2- and 4-byte elements when every access can be 16 bytes wide (both inner extents and all strides multiples of 8
// or 4 elements, pointers 16-byte aligned): 64 x 64 tiles, each thread loading 16-byte vectors of x's unit-stride
// dimension (2 for bf16, 4 for f32 in flight) and storing 16-byte vectors of out's, assembled from a column of the
// tile. The element kernel above moved 2 or 4 bytes per access (33.8 % of copy for bf16 4096 x 4096 on an H200).
// Shared memory rows are padded by one 32-bit word; the 16-byte vectors go in as four 32-bit words (the padded row
// pitch is not a multiple of 16): one conflict-free wavefront per word for bf16 (8 vectors x 4 rows per warp). The
// column reads of a warp cover 8 out-rows x 4 vectors, which hits distinct banks for bf16 and at most two lanes per
// bank for f32.
inline constexpr int kTransposeVecTile = 64;

template <typename E>
__global__ void __launch_bounds__(256)
    transpose_vec_kernel(const E* __restrict__ src, E* __restrict__ dst, TransposeIndex ix) {
  constexpr int T = kTransposeVecTile;
  constexpr int NV = 16 / static_cast<int>(sizeof(E));  // elements per 16-byte vector
  constexpr int QN = T / NV;                            // vectors per tile row
  constexpr int kPerThread = T * QN / 256;              // vectors per thread and phase
  constexpr int kPad = 4 / static_cast<int>(sizeof(E));
  __shared__ __align__(16) E tile[T][T + kPad];  // [out inner (i3)][x inner (k)]
  const int tid = static_cast<int>(threadIdx.x);
  const int64_t i3_0 = static_cast<int64_t>(blockIdx.x) * T, k_0 = static_cast<int64_t>(blockIdx.y) * T;
  pdl_wait();
  pdl_trigger();
  for (int64_t z = blockIdx.z; z < ix.nb0 * ix.nb1; z += gridDim.z) {
    const int64_t b0 = z / ix.nb1, b1 = z - b0 * ix.nb1;
    const E* s = src + b0 * ix.sb0 + b1 * ix.sb1;
    E* d = dst + b0 * ix.db0 + b1 * ix.db1;
    uint4 v[kPerThread];
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int w = tid + 256 * j, r = w / QN, c = (w % QN) * NV;
      if (i3_0 + r < ix.n3 && k_0 + c < ix.nk)
        v[j] = __ldcs(reinterpret_cast<const uint4*>(s + (i3_0 + r) * ix.s3 + k_0 + c));
    }
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int w = tid + 256 * j, r = w / QN, c = (w % QN) * NV;
      if (i3_0 + r < ix.n3 && k_0 + c < ix.nk) {
        uint32_t* row = reinterpret_cast<uint32_t*>(&tile[r][c]);
        row[0] = v[j].x;
        row[1] = v[j].y;
        row[2] = v[j].z;
        row[3] = v[j].w;
      }
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int w = tid + 256 * j;
      const int kr = (w & 7) + 8 * ((w >> 3) / QN), i3 = ((w >> 3) % QN) * NV;
      if (k_0 + kr < ix.nk && i3_0 + i3 < ix.n3) {
        uint4 o;
        E* e = reinterpret_cast<E*>(&o);
#pragma unroll
        for (int t = 0; t < NV; ++t) e[t] = tile[i3 + t][kr];
        __stcs(reinterpret_cast<uint4*>(d + (k_0 + kr) * ix.dk + i3_0 + i3), o);
      }
    }
    __syncthreads();  // the tile is reused by the next batch index
  }
}

template <typename E>
Status enqueue_transpose(const kern::TransposeParams& p, const ExecContext& ctx) {
  constexpr int TILE = sizeof(E) <= 2 ? 64 : 32;
  TransposeIndex ix{};
  const int k = p.tile_dim;
  int64_t dstride[4];
  dstride[3] = 1;
  for (int d = 2; d >= 0; --d) dstride[d] = dstride[d + 1] * p.shape[d + 1];
  int others[2], n = 0;
  for (int d = 0; d < 3; ++d)
    if (d != k) others[n++] = d;
  ix.n3 = p.shape[3];
  ix.nk = p.shape[k];
  ix.s3 = p.src_strides[3];
  ix.dk = dstride[k];
  ix.nb0 = p.shape[others[0]];
  ix.nb1 = p.shape[others[1]];
  ix.sb0 = p.src_strides[others[0]];
  ix.sb1 = p.src_strides[others[1]];
  ix.db0 = dstride[others[0]];
  ix.db1 = dstride[others[1]];
  const int64_t gz = std::min<int64_t>(ix.nb0 * ix.nb1, 65535);
  if constexpr (sizeof(E) == 2 || sizeof(E) == 4) {
    constexpr int64_t NV = 16 / sizeof(E);
    constexpr int64_t VT = kTransposeVecTile;
    // Out's strides are multiples of n3, so n3 % NV == 0 covers dk, db0 and db1.
    const bool vec = aligned16(p.src) && aligned16(p.dst) && ix.n3 % NV == 0 && ix.nk % NV == 0 && ix.s3 % NV == 0 &&
                     ix.sb0 % NV == 0 && ix.sb1 % NV == 0;
    const int64_t vx = (ix.n3 + VT - 1) / VT, vy = (ix.nk + VT - 1) / VT;
    if (vec && vx <= 0x7fffffff && vy <= 65535) {
      const dim3 grid(static_cast<unsigned>(vx), static_cast<unsigned>(vy),
                      static_cast<unsigned>(std::max<int64_t>(gz, 1)));
      return launch_status(
          launch_kernel(transpose_vec_kernel<E>, grid, dim3(256), static_cast<cudaStream_t>(ctx.stream), true,
                        static_cast<const E*>(p.src), static_cast<E*>(p.dst), ix),
          "permute");
    }
  }
  const int64_t gx = (ix.n3 + TILE - 1) / TILE, gy = (ix.nk + TILE - 1) / TILE;
  if (gx > 0x7fffffff || gy > 65535) return unsupported("permute", "dimensions too large for one launch");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                  static_cast<unsigned>(std::max<int64_t>(gz, 1)));
  const dim3 block(TILE, 256 / TILE);
  return launch_status(launch_kernel(transpose_kernel<E, TILE>, grid, block, static_cast<cudaStream_t>(ctx.stream),
                                     true, static_cast<const E*>(p.src), static_cast<E*>(p.dst), ix),
                       "permute");
}

// ---- concat / split ----

template <typename V>
__global__ void __launch_bounds__(256) parts_kernel(kern::PartsParams p, int64_t words_per_row) {
  constexpr int64_t W = sizeof(V);
  pdl_wait();
  pdl_trigger();
  const int64_t total = p.rows * words_per_row;
  const int64_t first = p.part_col[0];
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < total;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = c / words_per_row;
    const int64_t col = first + (c - r * words_per_row) * W;
    int j = 0;
#pragma unroll
    for (int i = 1; i < kern::kMaxParts; ++i)
      if (i < p.n_parts && col >= p.part_col[i]) j = i;
    char* b = static_cast<char*>(p.big) + r * p.big_stride + col;
    char* q = static_cast<char*>(p.part[j]) + r * p.part_stride[j] + (col - p.part_col[j]);
    if (p.split) {
      *reinterpret_cast<V*>(q) = *reinterpret_cast<const V*>(b);
    } else {
      *reinterpret_cast<V*>(b) = *reinterpret_cast<const V*>(q);
    }
  }
}

// ---- gather / scatter ----

template <typename V>
__global__ void __launch_bounds__(256) gather_kernel(kern::GatherParams p, int64_t words_per_row) {
  constexpr int64_t W = sizeof(V);
  pdl_wait();
  pdl_trigger();
  const int64_t total = p.n * words_per_row;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < total;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = c / words_per_row;
    const int64_t off = (c - i * words_per_row) * W;
    const int64_t r = p.idx[i];
    const bool in = r >= 0 && r < p.table_rows;
    V* d = reinterpret_cast<V*>(static_cast<char*>(p.dense) + i * p.dense_stride + off);
    V* t = reinterpret_cast<V*>(static_cast<char*>(p.table) + (in ? r : 0) * p.table_stride + off);
    if (p.scatter) {
      if (in) *t = *d;
    } else {
      V v{};
      if (in) v = *t;
      *d = v;
    }
  }
}

}  // namespace

Status launch_transpose(const kern::TransposeParams& p, const ExecContext& ctx) {
  switch (p.elem_bytes) {
    case 1:
      return enqueue_transpose<uint8_t>(p, ctx);
    case 2:
      return enqueue_transpose<uint16_t>(p, ctx);
    case 4:
      return enqueue_transpose<uint32_t>(p, ctx);
    case 8:
      return enqueue_transpose<unsigned long long>(p, ctx);
    default:
      return unsupported("permute", "no transpose of ", p.elem_bytes, "-byte elements");
  }
}

Status launch_parts(const kern::PartsParams& p, const ExecContext& ctx) {
  const std::string_view op = p.split ? "split" : "concat";
  if (p.rows == 0 || p.n_parts == 0) return Status::ok();
  uint64_t bits = reinterpret_cast<uintptr_t>(p.big) | static_cast<uint64_t>(p.big_stride);
  for (int j = 0; j < p.n_parts; ++j)
    bits |= reinterpret_cast<uintptr_t>(p.part[j]) | static_cast<uint64_t>(p.part_stride[j]) |
            static_cast<uint64_t>(p.part_bytes[j]) | static_cast<uint64_t>(p.part_col[j]);
  const int w = pow2_divisor(bits == 0 ? 16 : bits);
  const int64_t span = p.part_col[p.n_parts - 1] + p.part_bytes[p.n_parts - 1] - p.part_col[0];
  const int64_t words = span / w;
  if (words == 0) return Status::ok();
  cudaError_t e = cudaSuccess;
  with_width(w, [&](auto tag) {
    using V = typename decltype(tag)::type;
    e = launch_kernel(parts_kernel<V>, blocks_for(p.rows * words, 256, ctx), 256, static_cast<cudaStream_t>(ctx.stream),
                      true, p, words);
  });
  return launch_status(e, op);
}

Status launch_gather(const kern::GatherParams& p, const ExecContext& ctx) {
  const std::string_view op = p.scatter ? "scatter_rows" : "gather_rows";
  if (p.n == 0 || p.row_bytes == 0) return Status::ok();
  const uint64_t bits = reinterpret_cast<uintptr_t>(p.table) | reinterpret_cast<uintptr_t>(p.dense) |
                        static_cast<uint64_t>(p.row_bytes) | static_cast<uint64_t>(p.table_stride) |
                        static_cast<uint64_t>(p.dense_stride);
  const int w = pow2_divisor(bits);
  const int64_t words = p.row_bytes / w;
  cudaError_t e = cudaSuccess;
  with_width(w, [&](auto tag) {
    using V = typename decltype(tag)::type;
    e = launch_kernel(gather_kernel<V>, blocks_for(p.n * words, 256, ctx), 256, static_cast<cudaStream_t>(ctx.stream),
                      true, p, words);
  });
  return launch_status(e, op);
}

Status transpose(const kern::TransposeParams& p, const ExecContext& ctx) {
  return dispatch("permute", KernelRegistry::key({p.t}), p, ctx);
}

Status parts(const kern::PartsParams& p, const ExecContext& ctx) {
  return dispatch(p.split ? "split" : "concat", KernelRegistry::key({p.t}), p, ctx);
}

Status gather(const kern::GatherParams& p, const ExecContext& ctx) {
  return dispatch(p.scatter ? "scatter_rows" : "gather_rows", KernelRegistry::key({p.t}), p, ctx);
}

}  // namespace mlxn::cuda
