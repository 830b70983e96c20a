// Element types. Plain types have a size per element; quantized GGML block types are opaque storage described by
// (elements per block, bytes per block) and are only read by the kernels that understand them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "mlxn/core/status.h"

namespace mlxn {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  F64,
  I8,
  U8,
  I16,
  U16,
  I32,
  U32,
  I64,
  // GGML block formats (layouts in include/mlxn/quant/).
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q8_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  Q8_K,
  IQ4_NL,
  IQ4_XS,
  MXFP4,
  Count_,  // not a type
};

struct DTypeInfo {
  std::string_view name;
  int32_t block_elems;  // 1 for plain types
  int32_t block_bytes;  // element size for plain types
  bool is_float;        // f32 / f16 / bf16 / f64
  bool is_quantized;    // a GGML block format
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
inline bool is_quantized(DType t) { return dtype_info(t).is_quantized; }
// f32, f16 or bf16: the types compute kernels take for activations.
inline bool is_compute_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
// Size of one element of a plain type; 0 for block types.
inline size_t dtype_size(DType t) {
  const auto& i = dtype_info(t);
  return i.is_quantized ? 0 : static_cast<size_t>(i.block_bytes);
}
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes that `n_elems` elements take; an error if `n_elems` is not a whole number of blocks or the size overflows.
Result<size_t> dtype_storage_bytes(DType t, int64_t n_elems);

std::ostream& operator<<(std::ostream& os, DType t);

}  // namespace mlxn
