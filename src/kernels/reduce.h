// Plain parameter structs of the reduction kernels (argmax, top-k, argsort, row sum, cumsum), and the backend
// entry points. Rows are contiguous: x is rows x cols.
#pragma once

#include <cstdint>

#include "kernels/exec.h"
#include "kernels/keys.h"

namespace mlxn::kern {

// Elements of a row chunk that one CUDA block sorts or reduces at once in the split-row paths (1024 threads x 4).
inline constexpr int64_t kReduceChunk = 4096;
// Split-row top-k keeps at most this many candidates per chunk in the workspace.
inline constexpr int kTopKMax = 1024;

// idx[r] = the lowest c with x[r, c] maximal (NaN ranks above everything); val[r] = x[r, idx[r]] as f32 (optional).
// ws (optional, CUDA): split_blocks x rows partial (key, index) pairs, used when split_blocks > 1.
struct ArgmaxParams {
  const void* x = nullptr;
  int32_t* idx = nullptr;
  float* val = nullptr;
  DType tx = DType::F32;
  int64_t rows = 0, cols = 0;
  void* ws = nullptr;
  int split_blocks = 1;
};

// The k largest of each row, sorted descending, ties by lower index: values (x's dtype) and int32 indices.
// ws: rows x n_chunks x min(k, kReduceChunk) candidate (key, index) pairs when n_chunks > 1.
struct TopKParams {
  const void* x = nullptr;
  void* values = nullptr;  // may be null (indices only)
  int32_t* indices = nullptr;
  DType tx = DType::F32;
  int64_t rows = 0, cols = 0;
  int k = 1;
  void* ws = nullptr;
  int64_t n_chunks = 1;
};

// indices[r, :] = a stable sort of row r's positions by value, ascending or descending.
struct ArgsortParams {
  const void* x = nullptr;
  int32_t* indices = nullptr;
  DType tx = DType::F32;
  int64_t rows = 0, cols = 0;
  bool descending = false;
};

// out[r] = sum_c x[r, c] (RowSum); out[r, c] = sum_{c' <= c} x[r, c'] (Cumsum, inclusive). f32 accumulation.
struct RowReduceParams {
  const void* x = nullptr;
  void* out = nullptr;
  DType tx = DType::F32, tout = DType::F32;
  int64_t rows = 0, cols = 0;
};

// Split-row argmax workspace: one 64-bit partial per (row, block).
inline int64_t argmax_split_blocks(int64_t rows, int64_t cols) {
  // Split only when there are too few rows to fill the GPU and the rows are long (>= 4 chunks).
  if (rows >= 64 || cols < 4 * kReduceChunk) return 1;
  int64_t b = (cols + kReduceChunk - 1) / kReduceChunk;
  return b > 256 ? 256 : b;
}
inline int64_t topk_chunks(int64_t cols) { return (cols + kReduceChunk - 1) / kReduceChunk; }
// Candidates each chunk keeps (k <= kTopKMax < kReduceChunk, and k <= cols).
MLXN_HD int64_t topk_keep(int64_t cols, int k) { return k < cols ? k : cols; }

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status argmax(const kern::ArgmaxParams& p, const ExecContext& ctx);
Status topk(const kern::TopKParams& p, const ExecContext& ctx);
Status argsort(const kern::ArgsortParams& p, const ExecContext& ctx);
Status row_sum(const kern::RowReduceParams& p, const ExecContext& ctx);
Status cumsum(const kern::RowReduceParams& p, const ExecContext& ctx);
}  // namespace mlxn::cpu
namespace mlxn::cuda {
Status argmax(const kern::ArgmaxParams& p, const ExecContext& ctx);
Status topk(const kern::TopKParams& p, const ExecContext& ctx);
Status argsort(const kern::ArgsortParams& p, const ExecContext& ctx);
Status row_sum(const kern::RowReduceParams& p, const ExecContext& ctx);
Status cumsum(const kern::RowReduceParams& p, const ExecContext& ctx);
}  // namespace mlxn::cuda
