// Plain parameter structs of the layout kernels (include/mlxn/ops/layout.h), and the backend entry points. They
// move bytes: elem_bytes-sized elements or whole rows, whatever the dtype.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

// Batched tiled transpose: out (contiguous, shape[0..3]) takes out[i] = src[sum_d i_d * src_strides[d]] where
// dimension `tile_dim` (< 3) is the one src walks with stride 1 and dimension 3 is out's innermost (src stride
// != 1). Strides in elements.
struct TransposeParams {
  const void* src = nullptr;
  void* dst = nullptr;
  DType t = DType::F32;
  int elem_bytes = 4;
  int tile_dim = 2;
  int64_t shape[4] = {1, 1, 1, 1};
  int64_t src_strides[4] = {0, 0, 0, 0};
};

inline constexpr int kMaxParts = 4;

// Rows of a "big" matrix are the parts' rows side by side: big[r, col[j] : col[j] + bytes[j]] <-> part_j[r, :].
// concat (split == false) writes big, split reads it. Row strides and offsets in bytes.
struct PartsParams {
  void* big = nullptr;
  int64_t big_stride = 0;
  int64_t rows = 0;
  int n_parts = 0;
  void* part[kMaxParts] = {};
  int64_t part_stride[kMaxParts] = {};
  int64_t part_bytes[kMaxParts] = {};
  int64_t part_col[kMaxParts] = {};
  bool split = false;
  DType t = DType::F32;  // for the registry key only
};

// Gather: out[i] = table[idx[i]] (zeros for an index outside [0, table_rows)); scatter: table[idx[i]] = out[i]
// (indices outside skipped). Here `table` is the indexed side and `dense` the [n, row] side. Rows in bytes.
struct GatherParams {
  void* table = nullptr;
  void* dense = nullptr;
  const int32_t* idx = nullptr;
  int64_t n = 0, table_rows = 0, row_bytes = 0, table_stride = 0, dense_stride = 0;
  bool scatter = false;
  DType t = DType::F32;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status transpose(const kern::TransposeParams& p, const ExecContext& ctx);
Status parts(const kern::PartsParams& p, const ExecContext& ctx);
Status gather(const kern::GatherParams& p, const ExecContext& ctx);
}  // namespace mlxn::cpu
namespace mlxn::cuda {
Status transpose(const kern::TransposeParams& p, const ExecContext& ctx);
Status parts(const kern::PartsParams& p, const ExecContext& ctx);
Status gather(const kern::GatherParams& p, const ExecContext& ctx);
}  // namespace mlxn::cuda
