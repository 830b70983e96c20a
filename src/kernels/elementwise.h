// Plain parameter structs of the elementwise and copy kernels, and the backend entry points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

inline constexpr int kMaxIndexDims = 8;

enum class BinaryOp : uint8_t { Add, Mul };
enum class UnaryOp : uint8_t { Scale, AddScalar, Cast };

// out[i] = a[i] op b[bidx(i)] over n elements of a contiguous `out` (and a).
// When b_same is false, out's index is decomposed over `shape` (rank dims, outermost first) and b is read at
// sum(idx[d] * b_strides[d]) (stride 0 on broadcast dimensions).
struct BinaryParams {
  const void* a = nullptr;
  const void* b = nullptr;
  void* out = nullptr;
  DType ta = DType::F32, tb = DType::F32, tout = DType::F32;
  BinaryOp op = BinaryOp::Add;
  int64_t n = 0;
  bool b_same = true;
  int rank = 0;
  int64_t shape[kMaxIndexDims] = {};
  int64_t b_strides[kMaxIndexDims] = {};
};

// out[i] = f(x[i]) with f = x * k, x + k, or a conversion. k is `value`, or step[slot] read as f32 when slot >= 0.
struct UnaryParams {
  const void* x = nullptr;
  void* out = nullptr;
  DType tx = DType::F32, tout = DType::F32;
  UnaryOp op = UnaryOp::Cast;
  int64_t n = 0;
  float value = 0.0f;
  int step_slot = -1;
};

// dst[idx] = src[idx] for every index of `shape` (element strides per view). Same dtype: a bit copy of
// `elem_bytes`-sized elements (any plain type); otherwise f32 / f16 / bf16 conversion.
struct CopyParams {
  const void* src = nullptr;
  void* dst = nullptr;
  DType ts = DType::F32, td = DType::F32;
  int rank = 0;
  int64_t n = 0;
  int64_t shape[kMaxIndexDims] = {};
  int64_t src_strides[kMaxIndexDims] = {};
  int64_t dst_strides[kMaxIndexDims] = {};
  int elem_bytes = 4;
  // Both views contiguous and of the same dtype: one flat copy of n * elem_bytes bytes (block types too).
  bool flat = false;
  size_t flat_bytes = 0;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status binary(const kern::BinaryParams& p, const ExecContext& ctx);
Status unary(const kern::UnaryParams& p, const ExecContext& ctx);
Status copy(const kern::CopyParams& p, const ExecContext& ctx);
}  // namespace mlxn::cpu

namespace mlxn::cuda {
Status binary(const kern::BinaryParams& p, const ExecContext& ctx);
Status unary(const kern::UnaryParams& p, const ExecContext& ctx);
Status copy(const kern::CopyParams& p, const ExecContext& ctx);
}  // namespace mlxn::cuda
